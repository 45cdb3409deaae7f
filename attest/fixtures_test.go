package attest_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	intoto "github.com/in-toto/attestation/go/v1"

	"github.com/pyrsia/pyrsia-build/attest"
)

// -update rewrites testdata/pyrsia.sigstore.json and testdata/pyrsia.pub
// with a fresh key, made at run time and thrown away:
//
//	go test ./attest -run TestFixtures -update
var update = flag.Bool("update", false, "rewrite testdata/pyrsia.sigstore.json and testdata/pyrsia.pub")

// The fixtures, each verified against testdata/a.txt ("hello\n"):
//
//   - cosign-attest-blob.sigstore.json and cosign.pub were made by cosign
//     v2.6.5: `cosign attest-blob --new-bundle-format --key cosign.key
//     --type slsaprovenance1 ... a.txt`, with a predicate whose builder id
//     is "cosign-test"; the private key was not kept. cosign writes an
//     in-toto Statement v0.1.
//   - pyrsia.sigstore.json and pyrsia.pub were made by this package's
//     Attest (see -update).
var fixtures = []struct {
	bundle, key   string
	statementType string
	builderID     string
}{
	{"cosign-attest-blob.sigstore.json", "cosign.pub", attest.StatementTypeV01, "cosign-test"},
	{"pyrsia.sigstore.json", "pyrsia.pub", attest.StatementTypeV1, "https://pyrsia.io/node/fixture"},
}

func TestFixtures(t *testing.T) {
	if *update {
		writePyrsiaFixture(t)
	}
	for _, f := range fixtures {
		t.Run(f.bundle, func(t *testing.T) {
			key := testdataKey(t, f.key)
			b := mustParseTestdataBundle(t, f.bundle)
			if got, want := b.MediaType(), attest.BundleMediaType; got != want {
				t.Errorf("MediaType: got %q, want %q", got, want)
			}
			v := newVerifier(t, attest.VerifierOptions{Keys: []*attest.PublicKey{key}, PredicateType: attest.PredicateSLSAProvenanceV1})
			ev, err := v.Verify(context.Background(), attest.FileArtifact(filepath.Join("testdata", "a.txt")), b)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if len(ev.Signers) != 1 || ev.Signers[0] != key {
				t.Errorf("Signers: got %v, want [%s]", ev.Signers, key.Name)
			}
			if got, want := ev.DigestHex(), "sha256:"+digestHello; got != want {
				t.Errorf("digest: got %s, want %s", got, want)
			}
			if got, want := ev.Subject.GetName(), "a.txt"; got != want {
				t.Errorf("subject name: got %q, want %q", got, want)
			}
			if got := ev.Statement.GetType(); got != f.statementType {
				t.Errorf("statement _type: got %q, want %q", got, f.statementType)
			}
			builder := ev.Statement.GetPredicate().GetFields()["runDetails"].GetStructValue().GetFields()["builder"].GetStructValue()
			if got := builder.GetFields()["id"].GetStringValue(); got != f.builderID {
				t.Errorf("predicate runDetails.builder.id: got %q, want %q", got, f.builderID)
			}
			// cosign's key hint is base64(sha256(PKIX DER)); ours must match it.
			if got, want := b.KeyHint(), keyHint(t, key.ID); got != want {
				t.Errorf("KeyHint: got %q, want %q", got, want)
			}
		})
	}
	t.Run("keys do not cross", func(t *testing.T) {
		for _, f := range fixtures {
			for _, g := range fixtures {
				if f.key == g.key {
					continue
				}
				v := newVerifier(t, attest.VerifierOptions{Keys: []*attest.PublicKey{testdataKey(t, g.key)}})
				_, err := v.Verify(context.Background(), attest.FileArtifact(filepath.Join("testdata", "a.txt")), mustParseTestdataBundle(t, f.bundle))
				if err == nil {
					t.Errorf("%s verified with %s: got no error, want one", f.bundle, g.key)
				}
			}
		}
	})
}

// writePyrsiaFixture signs testdata/a.txt with a new key, writes the bundle
// and the public key, and drops the private key.
func writePyrsiaFixture(t *testing.T) {
	t.Helper()
	k, err := newTestKey("pyrsia.pub")
	if err != nil {
		t.Fatal(err)
	}
	subject, err := attest.FileSubject(context.Background(), filepath.Join("testdata", "a.txt"))
	if err != nil {
		t.Fatal(err)
	}
	pred, err := attest.NewProvenance(attest.ProvenanceOptions{
		BuildType:          "https://pyrsia.io/build/fixture/v1",
		ExternalParameters: map[string]any{"package": "a.txt", "version": "1"},
		ResolvedDependencies: []*intoto.ResourceDescriptor{{
			Uri:    "git+https://github.com/pyrsia/pyrsia-build",
			Digest: map[string]string{"gitCommit": "0123456789abcdef0123456789abcdef01234567"},
		}},
		BuilderID:      "https://pyrsia.io/node/fixture",
		BuilderVersion: map[string]string{"pyrsia-build": "fixture"},
		InvocationID:   "fixture",
		StartedOn:      time.Date(2025, 11, 24, 0, 0, 0, 0, time.UTC),
		FinishedOn:     time.Date(2025, 11, 24, 0, 0, 1, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := attest.Attest(k.Signer, []*intoto.ResourceDescriptor{subject}, attest.PredicateSLSAProvenanceV1, pred)
	if err != nil {
		t.Fatal(err)
	}
	data, err := b.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", "pyrsia.sigstore.json"), append(data, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", "pyrsia.pub"), k.Pair.Public, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote testdata/pyrsia.sigstore.json and testdata/pyrsia.pub (key id %s)", k.Signer.KeyID())
}
