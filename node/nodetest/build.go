// Package nodetest holds what the tests of package node and of the
// pyrsia-build command share to run a network of nodes: a builder that
// makes, in milliseconds and without buildkitd, the outputs a real build
// of an oci or maven spec would have.
package nodetest

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/pyrsia/pyrsia-build/builder"
	"github.com/pyrsia/pyrsia-build/publish"
)

// Digest is "sha256:<hex>" of b.
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Build builds an oci spec into an OCI image layout (one layer holding
// hello.txt) and a maven spec into a jar and a pom, under out as a build
// of [builder] lays them out (out/artifacts, out/manifest.json). The
// bytes are a function of the spec's input digest only, so that every
// node that builds a spec votes for the same digests. It has the
// signature of node.BuilderFunc.
func Build(ctx context.Context, spec *builder.Spec, out string) (*builder.Result, error) {
	input, err := spec.InputDigest()
	if err != nil {
		return nil, err
	}
	art := filepath.Join(out, "artifacts")
	if err := os.MkdirAll(art, 0o755); err != nil {
		return nil, err
	}
	res := &builder.Result{InputDigest: input, SourceDigest: "sha256:" + spec.Source.Archive.SHA256, BuilderImageDigest: spec.BuilderImage.Digest}
	om := builder.OutputManifest{Version: builder.ManifestVersion}
	if spec.Ecosystem == publish.EcosystemOCI {
		layer, config, manifest := Image(input)
		blobs := filepath.Join(art, "blobs", "sha256")
		if err := os.MkdirAll(blobs, 0o755); err != nil {
			return nil, err
		}
		for _, b := range [][]byte{layer, config, manifest} {
			if err := os.WriteFile(filepath.Join(blobs, Digest(b)[7:]), b, 0o644); err != nil {
				return nil, err
			}
		}
		idx := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%d}]}`, Digest(manifest), len(manifest))
		if err := os.WriteFile(filepath.Join(art, "index.json"), []byte(idx), 0o644); err != nil {
			return nil, err
		}
		if err := os.WriteFile(filepath.Join(art, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
			return nil, err
		}
		am, err := builder.ManifestOCILayout(ctx, spec.Coordinate, art)
		if err != nil {
			return nil, err
		}
		am.Path = "artifacts"
		om.Artifacts = append(om.Artifacts, am)
		res.Artifacts = []builder.Artifact{{Name: spec.Coordinate, Digest: Digest(manifest), Path: "artifacts", MediaType: "application/vnd.oci.image.manifest.v1+json"}}
	} else {
		files, err := MavenFiles(spec.Coordinate, input)
		if err != nil {
			return nil, err
		}
		for _, name := range slices.Sorted(maps.Keys(files)) {
			data := files[name]
			p := filepath.Join(art, name)
			if err := os.WriteFile(p, data, 0o644); err != nil {
				return nil, err
			}
			am, err := builder.ManifestFile(ctx, name, p)
			if err != nil {
				return nil, err
			}
			am.Path = "artifacts/" + name
			om.Artifacts = append(om.Artifacts, am)
			res.Artifacts = append(res.Artifacts, builder.Artifact{Name: name, Digest: Digest(data), Path: "artifacts/" + name})
		}
	}
	if err := builder.WriteManifest(filepath.Join(out, "manifest.json"), &om); err != nil {
		return nil, err
	}
	return res, nil
}

// Image returns the layer, config and manifest of the image Build makes
// for input.
func Image(input string) (layer, config, manifest []byte) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := []byte("hello from " + input + "\n")
	tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(1700000000, 0), Typeflag: tar.TypeReg})
	tw.Write(body)
	tw.Close()
	layer = buf.Bytes()
	config = fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]},"config":{"Cmd":["cat","/hello.txt"]}}`, Digest(layer))
	manifest = fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}`,
		Digest(config), len(config), Digest(layer), len(layer))
	return layer, config, manifest
}

// MavenFiles returns the jar and the pom Build makes for a coordinate
// "group:artifact:version" and input, by file name.
func MavenFiles(coordinate, input string) (map[string][]byte, error) {
	parts := strings.Split(coordinate, ":")
	if len(parts) != 3 {
		return nil, fmt.Errorf("nodetest: coordinate %q is not group:artifact:version", coordinate)
	}
	g, a, v := parts[0], parts[1], parts[2]
	base := a + "-" + v
	return map[string][]byte{
		base + ".jar": Jar(input),
		base + ".pom": fmt.Appendf(nil, "<project><groupId>%s</groupId><artifactId>%s</artifactId><version>%s</version><!-- %s --></project>\n", g, a, v, input),
	}, nil
}

// Jar returns a small jar whose bytes depend on input only.
func Jar(input string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "hello.txt", Method: zip.Store, Modified: time.Unix(1700000000, 0).UTC()})
	io.WriteString(w, "hello from "+input+"\n")
	zw.Close()
	return buf.Bytes()
}
