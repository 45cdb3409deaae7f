package publish_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"google.golang.org/protobuf/types/known/structpb"
)

// Regression (review finding 3): VerifyEntry (what the Raft FSM applies) and
// VerifyProof (what every client runs) judged different envelopes. VerifyEntry counts,
// per key, any envelope that binds the entry's spec and subjects and skips
// the others; VerifyProof then runs attest.Verifier over all the entry's
// envelopes, which takes each key's first envelope and fails the whole
// verification if that one is not a statement, or not of the predicate
// type asked for. One build node (a minority of one) that adds a junk or
// other-typed envelope to the entries it votes in makes them pass the FSM
// and fail every client's verify, for good: the log is append-only.
func TestVerifyProofJudgesTheBoundEnvelopes(t *testing.T) {
	signers, _ := nodeKeys(t)
	const content = "hello jar"
	sum := sha256.Sum256([]byte(content))
	digest := hex.EncodeToString(sum[:])
	other, err := attest.Attest(signers[2], []*intoto.ResourceDescriptor{{Name: "hello.jar", Digest: map[string]string{"sha256": digest}}},
		"https://example.com/not-provenance/v1", &structpb.Struct{})
	if err != nil {
		t.Fatal(err)
	}
	junk, err := signers[2].SignEnvelope(attest.InTotoPayloadType, []byte(`{"not":"a statement"}`))
	if err != nil {
		t.Fatal(err)
	}
	for name, extra := range map[string]*dssepb.Envelope{"other predicate type": other.Envelope(), "not a statement": junk} {
		t.Run(name, func(t *testing.T) {
			f := published(t, 2, content, func(e *publish.Entry) { e.Envelopes = append(e.Envelopes, extra) })
			trust, err := policy.NewTrust(f.trust)
			if err != nil {
				t.Fatal(err)
			}
			entry, err := f.pb.Entry()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := publish.VerifyEntry(context.Background(), entry, trust); err != nil {
				t.Fatalf("VerifyEntry: %v (the FSM would refuse it: then this is no finding)", err)
			}
			ev, err := f.verify(context.Background())
			if err != nil {
				t.Fatalf("VerifyProof: %v; want it verified, as VerifyEntry did: node-a and node-b, a majority, attested it", err)
			}
			if got := ev.Statement.GetPredicateType(); got != attest.PredicateSLSAProvenanceV1 {
				t.Errorf("the verdict shows a statement of predicate type %q, want a bound one (%q)", got, attest.PredicateSLSAProvenanceV1)
			}
			for _, sd := range ev.Signed {
				if sd.Envelope == extra {
					t.Errorf("the evidence counts the extra envelope of %s", sd.Key.Name)
				}
			}
		})
	}
}

// VerifyEntry counts only SLSA provenance: a majority's statements that
// carry the spec and subjects under another predicate type are not an
// attestation of the build.
func TestVerifyEntryRequiresProvenance(t *testing.T) {
	signers, pubs := nodeKeys(t)
	const content = "hello jar"
	sum := sha256.Sum256([]byte(content))
	digest := hex.EncodeToString(sum[:])
	f := published(t, 2, content, func(e *publish.Entry) {
		e.Envelopes = nil
		for i := range 2 {
			prov, err := attest.NewProvenance(attest.ProvenanceOptions{
				BuildType: "https://example.com/test", ExternalParameters: map[string]any{"spec": map[string]any{"coordinate": "org.example:hello:1.0", "ecosystem": "maven"}},
				BuilderID: "urn:test:" + pubs[i].Name,
			})
			if err != nil {
				t.Fatal(err)
			}
			b, err := attest.Attest(signers[i], []*intoto.ResourceDescriptor{{Name: "hello.jar", Digest: map[string]string{"sha256": digest}}}, "https://example.com/not-provenance/v1", prov)
			if err != nil {
				t.Fatal(err)
			}
			e.Envelopes = append(e.Envelopes, b.Envelope())
		}
	})
	trust, err := policy.NewTrust(f.trust)
	if err != nil {
		t.Fatal(err)
	}
	entry, err := f.pb.Entry()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := publish.VerifyEntry(context.Background(), entry, trust); err == nil || !strings.Contains(err.Error(), "not SLSA provenance") {
		t.Errorf("VerifyEntry: got %v, want the statements refused for their predicate type", err)
	}
}

// Regression (review finding 13): CheckLabels read the spec's "ecosystem" and
// "coordinate" with encoding/json, which matches keys case-insensitively
// and folds "ſ" (U+017F) to "s" and "K" (U+212A) to "k". A spec with no
// "coordinate" key but a "Coordinate" one, or with "ecoſystem" after
// "ecosystem" (sorted later, so it wins), passes as naming what it does
// not: the label check relies on the builder never signing such a spec.
func TestCheckLabelsExactKeys(t *testing.T) {
	for name, e := range map[string]*publish.Entry{
		"Coordinate": {Ecosystem: "maven", Coordinate: "org.victim:core:9.9",
			Spec: []byte(`{"Coordinate":"org.victim:core:9.9","ecosystem":"maven"}`)},
		"ecoſystem": {Ecosystem: "oci", Coordinate: "org.example:hello:1.0",
			Spec: []byte(`{"coordinate":"org.example:hello:1.0","ecosystem":"maven","ecoſystem":"oci"}`)},
	} {
		if err := publish.CheckLabels(e); err == nil {
			t.Errorf("%s: CheckLabels accepted labels %s %s for spec %s", name, e.Ecosystem, e.Coordinate, e.Spec)
		}
	}
}

// Regression (review finding 14): a Trust whose BuildThreshold is 0 (a literal,
// as the logclient tests and any embedder may write; NewTrust would have
// made it a majority) fails open: VerifyEntry and VerifyProof take 0 as 1,
// and one build node of three publishes alone. CosignThreshold 0 fails
// closed (VerifyFinal refuses it); the two should agree, closed.
func TestZeroBuildThresholdFailsClosed(t *testing.T) {
	f := published(t, 1, "hello jar")
	trust := &policy.Trust{Origin: f.trust.Origin, LogVerifiers: f.trust.LogVerifiers, Cosigners: f.trust.Cosigners,
		CosignThreshold: 2, BuildKeys: f.trust.BuildKeys, BuildThreshold: 0}
	entry, err := f.pb.Entry()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := publish.VerifyEntry(context.Background(), entry, trust); err == nil {
		t.Errorf("VerifyEntry accepted an entry signed by 1 of %d build nodes under a Trust with BuildThreshold 0", len(trust.BuildKeys))
	}
	if _, err := publish.VerifyProof(context.Background(), attest.FileArtifact(f.artifact), f.pb, trust, publish.ProofOptions{}); err == nil {
		t.Errorf("VerifyProof accepted a bundle under a Trust with BuildThreshold 0")
	}
}
