package builder

import (
	"fmt"
	"strings"
	"time"

	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/pyrsia/pyrsia-build/attest"
	"google.golang.org/protobuf/types/known/structpb"
)

// BuildType names provenance written for a build of a build spec v1: the
// externalParameters hold the spec.
const BuildType = "https://pyrsia.io/pyrsia-build/build-spec/v1"

// Provenance returns the attestation subjects and the SLSA provenance v1
// predicate for a finished build: externalParameters = the spec,
// resolvedDependencies = the source and the builder image, builder.id = the
// node.
func Provenance(spec *Spec, res *Result, builderID string, started, finished time.Time) ([]*intoto.ResourceDescriptor, *slsa.Provenance, error) {
	var subjects []*intoto.ResourceDescriptor
	for _, a := range res.Artifacts {
		hexDigest, ok := strings.CutPrefix(a.Digest, "sha256:")
		if !ok {
			return nil, nil, fmt.Errorf("builder: artifact %s has digest %q, want \"sha256:<hex>\"", a.Name, a.Digest)
		}
		subjects = append(subjects, &intoto.ResourceDescriptor{Name: a.Name, Digest: map[string]string{"sha256": hexDigest}, MediaType: a.MediaType})
	}
	params, err := spec.Map()
	if err != nil {
		return nil, nil, err
	}
	deps := specDependencies(spec, res.BuilderImageDigest)
	prov, err := attest.NewProvenance(attest.ProvenanceOptions{
		BuildType:            BuildType,
		ExternalParameters:   map[string]any{"spec": params},
		ResolvedDependencies: deps,
		BuilderID:            builderID,
		StartedOn:            started.UTC(),
		FinishedOn:           finished.UTC(),
	})
	if err != nil {
		return nil, nil, err
	}
	// The official release, when the build compared itself with it: each
	// official file's digest and whether the build's file is identical.
	if up := res.Upstream; up != nil && up.Diff != nil {
		for _, ad := range up.Diff.Artifacts {
			official, ok := up.Official[ad.Name]
			if !ok {
				continue
			}
			f := LockFile{Coordinate: up.Coordinate, File: ad.Name}
			annotations, err := structpb.NewStruct(map[string]any{"official": true, "matchesBuild": ad.DigestA == ad.DigestB})
			if err != nil {
				return nil, nil, err
			}
			prov.RunDetails.Byproducts = append(prov.RunDetails.Byproducts, &intoto.ResourceDescriptor{
				Name: ad.Name, Uri: mavenPURL(f), Digest: map[string]string{"sha256": strings.TrimPrefix(official, "sha256:")}, Annotations: annotations,
			})
		}
	}
	return subjects, prov, nil
}

// specDependencies are a build's resolvedDependencies, all made from the
// spec: the source, the lock, and the builder image (whose digest the
// build used, imageDigest). [Spec.Validate] counts their names and URIs in
// the spec's size, as every attestation repeats them.
func specDependencies(spec *Spec, imageDigest string) []*intoto.ResourceDescriptor {
	var deps []*intoto.ResourceDescriptor
	switch {
	case spec.Source.Git != nil:
		deps = append(deps, &intoto.ResourceDescriptor{Uri: "git+" + spec.Source.Git.URL, Digest: map[string]string{"gitCommit": spec.Source.Git.Commit}})
	case spec.Source.Archive != nil:
		uri := spec.Source.Archive.URL
		if uri == "" {
			uri = spec.Source.Archive.Path
		}
		deps = append(deps, &intoto.ResourceDescriptor{Uri: uri, Digest: map[string]string{"sha256": spec.Source.Archive.SHA256}})
	}
	if m := spec.Source.Maven; m != nil {
		f := m.lockFile()
		deps = append(deps, &intoto.ResourceDescriptor{Name: f.File, Uri: mavenPURL(f), Digest: map[string]string{"sha256": f.SHA256}})
	}
	if r := spec.Recipe.Maven; r != nil && r.Lock != nil {
		deps = append(deps, &intoto.ResourceDescriptor{Name: "maven-lock", Uri: r.Lock.Path, Digest: map[string]string{"sha256": r.Lock.SHA256}, MediaType: "application/json"})
	}
	imgHex := strings.TrimPrefix(imageDigest, "sha256:")
	deps = append(deps, &intoto.ResourceDescriptor{Name: spec.BuilderImage.Name, Uri: "oci-layout:" + spec.BuilderImage.Name, Digest: map[string]string{"sha256": imgHex}})
	return deps
}

// mavenPURL is the package URL of a file in a Maven repository:
// pkg:maven/group/artifact@version?classifier=c&type=ext (classifier and
// type read from the file name).
func mavenPURL(f LockFile) string {
	g, a, v := splitCoordinate(f.Coordinate)
	rest := strings.TrimPrefix(f.File, a+"-"+v)
	u := "pkg:maven/" + g + "/" + a + "@" + v
	var q []string
	if c, ext, ok := strings.Cut(strings.TrimPrefix(rest, "-"), "."); strings.HasPrefix(rest, "-") && ok {
		q = append(q, "classifier="+c, "type="+ext)
	} else if ext := strings.TrimPrefix(rest, "."); ext != "" && ext != "jar" {
		q = append(q, "type="+ext)
	}
	if len(q) > 0 {
		u += "?" + strings.Join(q, "&")
	}
	return u
}
