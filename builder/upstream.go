package builder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// UpstreamResult is a Maven build compared with the official release: the
// files the configured Maven repository serves for the coordinate.
type UpstreamResult struct {
	// Coordinate is groupId:artifactId:version.
	Coordinate string `json:"coordinate"`
	// Same is true when every compared artifact is identical to the
	// official file.
	Same bool `json:"same"`
	// Official maps each compared artifact's name to the official file's
	// digest, "sha256:<hex>".
	Official map[string]string `json:"official"`
	// Unpublished are the build's artifacts the repository does not serve
	// (a -tests.jar, say) and those that are not files of the coordinate
	// (another module's jar, a parent pom); they are not compared.
	Unpublished []string `json:"unpublished,omitempty"`
	// Diff is the build (A) against the official files (B).
	Diff *DiffResult `json:"diff"`
}

// CompareUpstream fetches from the Maven repository at base ([MavenRepository]
// when empty) the official file for each jar and pom in the build output
// folder out, under the coordinate groupId:artifactId:version, and compares
// them with [Diff]'s logic. It fails when the repository serves no jar of
// the coordinate that the build made.
func CompareUpstream(ctx context.Context, out, coordinate, base string) (*UpstreamResult, error) {
	parts := strings.Split(coordinate, ":")
	if len(parts) != 3 || !mavenPartRE.MatchString(parts[0]) || !mavenPartRE.MatchString(parts[1]) || !mavenVerRE.MatchString(parts[2]) {
		return nil, fmt.Errorf("builder: upstream: %q is not groupId:artifactId:version", coordinate)
	}
	m, err := ReadManifest(filepath.Join(out, "manifest.json"))
	if err != nil {
		return nil, fmt.Errorf("builder: upstream: %w", err)
	}
	repo, _, err := mavenRepoOpts{base: base, cache: "-"}.resolve()
	if err != nil {
		return nil, err
	}
	client := repo.client()
	tmp, err := os.MkdirTemp("", "pyrsia-upstream-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if err := os.Mkdir(filepath.Join(tmp, "artifacts"), 0o755); err != nil {
		return nil, err
	}
	dir := strings.ReplaceAll(parts[0], ".", "/") + "/" + parts[1] + "/" + parts[2] + "/"
	res := &UpstreamResult{Coordinate: coordinate, Official: map[string]string{}}
	official := &OutputManifest{Version: 1}
	built := &OutputManifest{Version: 1}
	jars := 0
	for _, a := range m.Artifacts {
		if !strings.HasSuffix(a.Name, ".jar") && !strings.HasSuffix(a.Name, ".pom") {
			continue
		}
		if strings.Contains(a.Name, "/") || a.Name != path.Base(a.Name) {
			return nil, fmt.Errorf("builder: upstream: artifact name %q is not a file name", a.Name)
		}
		if !isFileOf(parts[1], parts[2], a.Name) {
			// Not a file of this coordinate (another module's, a parent
			// pom, or a name the build made up, which goes into the
			// request's path): not fetched, not compared.
			res.Unpublished = append(res.Unpublished, a.Name)
			continue
		}
		local := filepath.Join(tmp, "artifacts", a.Name)
		f, err := os.Create(local)
		if err != nil {
			return nil, err
		}
		sha, _, err := client.get(ctx, dir+a.Name, f)
		f.Close()
		var fe *FetchError
		if errors.As(err, &fe) && fe.Status == 404 {
			os.Remove(local)
			res.Unpublished = append(res.Unpublished, a.Name)
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("builder: upstream: %w", err)
		}
		om, err := ManifestFile(ctx, a.Name, local)
		if err != nil {
			return nil, fmt.Errorf("builder: upstream: official %s: %w", a.Name, err)
		}
		om.Path = "artifacts/" + a.Name
		official.Artifacts = append(official.Artifacts, om)
		built.Artifacts = append(built.Artifacts, a)
		res.Official[a.Name] = "sha256:" + sha
		if strings.HasSuffix(a.Name, ".jar") {
			jars++
		}
	}
	if jars == 0 {
		return nil, fmt.Errorf("builder: upstream: the repository serves none of the jars the build made under %s (looked for them in %s): check the coordinate, or whether the release published its jar", coordinate, dir)
	}
	// Compare only what both have: write the two manifests side by side.
	builtDir := filepath.Join(tmp, "built")
	if err := os.Mkdir(builtDir, 0o755); err != nil {
		return nil, err
	}
	for i := range built.Artifacts {
		a := &built.Artifacts[i]
		src, err := locateArtifact(out, a)
		if err != nil {
			return nil, fmt.Errorf("builder: upstream: %w", err)
		}
		if src, err = filepath.Abs(src); err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Join(builtDir, "artifacts"), 0o755); err != nil {
			return nil, err
		}
		if err := os.Symlink(src, filepath.Join(builtDir, "artifacts", a.Name)); err != nil {
			return nil, err
		}
		a.Path = "artifacts/" + a.Name
	}
	if err := WriteManifest(filepath.Join(builtDir, "manifest.json"), built); err != nil {
		return nil, err
	}
	if err := WriteManifest(filepath.Join(tmp, "manifest.json"), official); err != nil {
		return nil, err
	}
	d, err := Diff(ctx, builtDir, tmp)
	if err != nil {
		return nil, fmt.Errorf("builder: upstream: %w", err)
	}
	res.Diff = d
	res.Same = d.Same
	return res, nil
}

// isFileOf reports whether name is a file of artifactId a, version v in
// Maven's layout: a-v.ext or a-v-classifier.ext, of the characters a
// lock allows.
func isFileOf(a, v, name string) bool {
	rest, ok := strings.CutPrefix(name, a+"-"+v)
	if !ok || !lockFileRE.MatchString(name) || len(rest) < 2 || strings.HasSuffix(rest, ".") {
		return false
	}
	return rest[0] == '.' || rest[0] == '-' && strings.Contains(rest[1:], ".")
}
