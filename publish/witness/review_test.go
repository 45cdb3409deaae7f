package witness_test

import (
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/pyrsia/pyrsia-build/publish/witness"
	"golang.org/x/mod/sumdb/note"
)

// Review finding: [witness.PublicKey] identifies a key by the base64 text of
// its verifier key, but note.NewVerifier and the cosignature/v1 verifier
// decode it with base64.StdEncoding, which skips '\r' and '\n'. The same
// public key written with a newline inside its base64 is "another key":
// Distinct keeps both, and one cosignature, relabelled, counts twice.
func TestReviewDistinctBase64Newline(t *testing.T) {
	if os.Getenv("PYRSIA_REVIEW") == "" {
		t.Skip("review finding: witness.PublicKey compares base64 text; a newline in a verifier key's base64 makes one key two")
	}
	a, _ := forkedTrees(4, 12)
	_, vkey := testKey(t, "node-a", 10)
	n1, n3 := testNode(t, "node-a", 10), testNode(t, "node-c", 12)
	alias := fixHash(t, "node-a2"+vkey[len("node-a"):])
	// Same bytes, a newline in the base64: still a valid verifier key.
	parts := strings.SplitN(alias, "+", 3)
	alias = parts[0] + "+" + parts[1] + "+" + parts[2][:10] + "\n" + parts[2][10:]
	aliasV, err := witness.NewCosignatureVerifier(alias)
	if err != nil {
		t.Fatalf("NewCosignatureVerifier(%q): %v (if this is refused, the finding is fixed at the parser)", alias, err)
	}
	cp := signTree(t, a, 7)
	sig := cosign(t, n1, cp)
	relabelled := note.Signature{Name: "node-a2", Hash: aliasV.KeyHash(), Base64: relabel(t, sig.Base64, aliasV.KeyHash())}
	signed, err := witness.AddSignatures(cp, sig, relabelled)
	if err != nil {
		t.Fatal(err)
	}
	cosigners := []note.Verifier{n1.verifier, aliasV, n3.verifier}
	if kept, _ := witness.Distinct(cosigners); len(kept) != 2 {
		t.Errorf("Distinct kept %d verifiers, want 2: node-a and node-a2 are one public key", len(kept))
	}
	_, names, err := witness.VerifyFinal(signed, testOrigin, []note.Verifier{logVerifier(t)}, cosigners, 2)
	if !errors.Is(err, witness.ErrNotFinal) {
		t.Errorf("VerifyFinal: got %v, %v; want not final: one key cosigned, under two names", names, err)
	}
}
