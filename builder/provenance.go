package builder

import (
	"fmt"
	"strings"
	"time"

	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/pyrsia/pyrsia-build/attest"
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
	imgHex := strings.TrimPrefix(res.BuilderImageDigest, "sha256:")
	deps = append(deps, &intoto.ResourceDescriptor{Name: spec.BuilderImage.Name, Uri: "oci-layout:" + spec.BuilderImage.Name, Digest: map[string]string{"sha256": imgHex}})
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
	return subjects, prov, nil
}
