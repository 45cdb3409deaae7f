package publish

import (
	"fmt"
	"testing"
	"time"

	intoto "github.com/in-toto/attestation/go/v1"

	"github.com/pyrsia/pyrsia-build/attest"
)

// benchStatement is a build node's statement: a spec in
// externalParameters, as builder.Provenance writes it.
func benchStatement(b *testing.B) []byte {
	b.Helper()
	prov, err := attest.NewProvenance(attest.ProvenanceOptions{
		BuildType: "https://pyrsia.io/pyrsia-build/build-spec/v1",
		ExternalParameters: map[string]any{"spec": map[string]any{
			"version": 1, "ecosystem": "maven", "coordinate": "org.example:hello:1.0",
			"source":  map[string]any{"git": map[string]any{"url": "https://example.org/hello.git", "commit": "0123456789abcdef0123456789abcdef01234567"}},
			"builder": map[string]any{"image": "maven@sha256:00", "command": []any{"mvn", "-B", "package"}},
			"env":     map[string]any{"TZ": "UTC", "LANG": "C.UTF-8"},
		}},
		ResolvedDependencies: []*intoto.ResourceDescriptor{
			{Uri: "git+https://example.org/hello.git", Digest: map[string]string{"gitCommit": "0123456789abcdef0123456789abcdef01234567"}},
			{Uri: "pkg:docker/maven", Digest: map[string]string{"sha256": fmt.Sprintf("%064x", 1)}},
		},
		BuilderID:  "https://pyrsia.io/node/a",
		StartedOn:  time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		FinishedOn: time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC),
	})
	if err != nil {
		b.Fatal(err)
	}
	st, err := attest.NewStatement([]*intoto.ResourceDescriptor{
		{Name: "hello-1.0.jar", Digest: map[string]string{"sha256": fmt.Sprintf("%064x", 2)}},
		{Name: "hello-1.0.pom", Digest: map[string]string{"sha256": fmt.Sprintf("%064x", 3)}},
	}, attest.PredicateSLSAProvenanceV1, prov)
	if err != nil {
		b.Fatal(err)
	}
	p, err := attest.MarshalStatement(st)
	if err != nil {
		b.Fatal(err)
	}
	return p
}

// BenchmarkParseStatement is publish.ParseStatement of a build node's
// statement: attest.ParseStatement and the spec's canonical JSON.
func BenchmarkParseStatement(b *testing.B) {
	payload := benchStatement(b)
	b.ReportAllocs()
	b.SetBytes(int64(len(payload)))
	for b.Loop() {
		ps, err := ParseStatement(payload)
		if err != nil || ps.SpecErr != nil {
			b.Fatal(err, ps.SpecErr)
		}
	}
}
