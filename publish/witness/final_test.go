package witness_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/pyrsia/pyrsia-build/publish/witness"
	"golang.org/x/mod/sumdb/note"
)

func TestThreshold(t *testing.T) {
	for n, want := range map[int]int{1: 1, 2: 2, 3: 2, 4: 3, 5: 3, 7: 4, 15: 8} {
		if got := witness.Threshold(n); got != want {
			t.Errorf("Threshold(%d): got %d, want %d", n, got, want)
		}
	}
}

func TestVerifyFinal(t *testing.T) {
	a, _ := forkedTrees(4, 12)
	signed := signTree(t, a, 7)
	other := signTree(t, a, 8)
	n1, n2, n3 := testNode(t, "node-a", 10), testNode(t, "node-b", 11), testNode(t, "node-c", 12)
	stranger := testNode(t, "node-x", 13)
	cosigners := []note.Verifier{n1.verifier, n2.verifier, n3.verifier}
	threshold := witness.Threshold(len(cosigners))

	// A plain note signature by node-b's key: not a cosignature/v1.
	skeyB, _ := testKey(t, "node-b", 11)
	plainB, err := witness.NewLogSigner(skeyB)
	if err != nil {
		t.Fatal(err)
	}
	plain := cosign(t, node{signer: plainB}, signed)

	tests := []struct {
		name    string
		sigs    []note.Signature
		extra   string // raw signature lines appended after sigs
		want    []string
		missing string // "" if final
	}{
		{"no cosignature", nil, "", nil, "0 of 3 cosigners, need 2; missing node-a, node-b, node-c"},
		{"one cosignature", []note.Signature{cosign(t, n2, signed)}, "", []string{"node-b"}, "1 of 3 cosigners, need 2; missing node-a, node-c"},
		{"two cosignatures", []note.Signature{cosign(t, n3, signed), cosign(t, n1, signed)}, "", []string{"node-a", "node-c"}, ""},
		{"three cosignatures", []note.Signature{cosign(t, n1, signed), cosign(t, n2, signed), cosign(t, n3, signed)}, "", []string{"node-a", "node-b", "node-c"}, ""},
		{"unknown key does not count", []note.Signature{cosign(t, n1, signed), cosign(t, stranger, signed)}, "", []string{"node-a"}, "1 of 3"},
		{"cosignature of another checkpoint does not count", []note.Signature{cosign(t, n1, signed), cosign(t, n2, other)}, "", []string{"node-a"}, "missing node-c; cosignature does not verify: node-b"},
		{"bad cosignature before a good one", []note.Signature{cosign(t, n1, signed), cosign(t, n2, other)}, "— node-b " + cosign(t, n2, signed).Base64 + "\n", []string{"node-a", "node-b"}, ""},
		{"same cosigner twice counts once", []note.Signature{cosign(t, n1, signed)}, "— node-a " + cosign(t, n1, signed).Base64 + "\n", []string{"node-a"}, "1 of 3"},
		{"plain note signature does not count", []note.Signature{cosign(t, n1, signed), plain}, "", []string{"node-a"}, "1 of 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := witness.AddSignatures(signed, tt.sigs...)
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, tt.extra...)
			cp, names, err := witness.VerifyFinal(b, testOrigin, []note.Verifier{logVerifier(t)}, cosigners, threshold)
			if cp == nil || cp.Size != 7 {
				t.Errorf("got checkpoint %v, want size 7", cp)
			}
			if !slices.Equal(names, tt.want) {
				t.Errorf("got cosigners %q, want %q", names, tt.want)
			}
			if tt.missing == "" {
				if err != nil {
					t.Errorf("got %v, want final", err)
				}
				return
			}
			var nf *witness.NotFinalError
			if !errors.Is(err, witness.ErrNotFinal) || !errors.As(err, &nf) || !strings.Contains(err.Error(), tt.missing) {
				t.Errorf("got %v, want a NotFinalError saying %q", err, tt.missing)
			}
		})
	}
}

func TestVerifyFinalErrors(t *testing.T) {
	a, _ := forkedTrees(4, 12)
	n1, n2 := testNode(t, "node-a", 10), testNode(t, "node-b", 11)
	signed, err := witness.AddSignatures(signTree(t, a, 7), cosign(t, n1, signTree(t, a, 7)), cosign(t, n2, signTree(t, a, 7)))
	if err != nil {
		t.Fatal(err)
	}
	two := []note.Verifier{n1.verifier, n2.verifier}
	tests := []struct {
		name      string
		note      []byte
		origin    string
		cosigners []note.Verifier
		threshold int
		want      string
	}{
		{"zero threshold", signed, testOrigin, two, 0, "threshold 0 out of range"},
		{"threshold above cosigners", signed, testOrigin, two, 3, "threshold 3 out of range"},
		{"cosigner listed twice", signed, testOrigin, []note.Verifier{n1.verifier, n1.verifier}, 2, `threshold 2 out of range 1 to 1 cosigners (2 listed`},
		{"wrong origin", signed, "other.example/log", two, 2, "want \"other.example/log\""},
		{"not signed by the log", []byte(strings.Replace(string(signed), "— log ", "— nolog ", 1)), testOrigin, two, 2, "no signature by log key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := witness.VerifyFinal(tt.note, tt.origin, []note.Verifier{logVerifier(t)}, tt.cosigners, tt.threshold)
			if err == nil || errors.Is(err, witness.ErrNotFinal) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

// One cosigner key listed under two names counts once: a cosignature/v1
// signature does not cover the name, so anyone can copy node-a's
// cosignature line under the name "node-a2" with the key hash that name
// gives. Before the fix, such a note was final at 2 of 3.
func TestVerifyFinalOneKeyTwoNames(t *testing.T) {
	a, _ := forkedTrees(4, 12)
	_, vkey := testKey(t, "node-a", 10)
	n1, n3 := testNode(t, "node-a", 10), testNode(t, "node-c", 12)
	// The same public key under another name.
	alias := "node-a2" + vkey[len("node-a"):]
	aliasV, err := witness.NewCosignatureVerifier(fixHash(t, alias))
	if err != nil {
		t.Fatal(err)
	}
	cp := signTree(t, a, 7)
	sig := cosign(t, n1, cp)
	relabelled := note.Signature{Name: "node-a2", Hash: aliasV.KeyHash(), Base64: relabel(t, sig.Base64, aliasV.KeyHash())}
	signed, err := witness.AddSignatures(cp, sig, relabelled)
	if err != nil {
		t.Fatal(err)
	}
	cosigners := []note.Verifier{n1.verifier, aliasV, n3.verifier}
	// The relabelled line verifies under the alias: that is the attack.
	if _, names, err := witness.VerifyFinal(signed, testOrigin, []note.Verifier{logVerifier(t)}, []note.Verifier{aliasV}, 1); err != nil || len(names) != 1 {
		t.Fatalf("relabelled cosignature: got %v, %v, want it to verify under the alias", names, err)
	}
	_, names, err := witness.VerifyFinal(signed, testOrigin, []note.Verifier{logVerifier(t)}, cosigners, 2)
	if !errors.Is(err, witness.ErrNotFinal) {
		t.Fatalf("got %v, %v, want not final: one key signed, under two names", names, err)
	}
	if len(names) != 1 || names[0] != "node-a" {
		t.Errorf("got signers %q, want [node-a]", names)
	}
	kept, dups := witness.Distinct(cosigners)
	if len(kept) != 2 || len(dups["node-a"]) != 1 {
		t.Errorf("Distinct: got %d kept, dups %v, want 2 kept and node-a2 a duplicate of node-a", len(kept), dups)
	}
}

// fixHash recomputes the key hash of a verifier key after its name changed.
func fixHash(t testing.TB, vkey string) string {
	t.Helper()
	parts := strings.SplitN(vkey, "+", 3)
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil {
		t.Fatal(err)
	}
	k, err := note.NewEd25519VerifierKey(parts[0], ed25519.PublicKey(raw[1:]))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// relabel replaces the 4-byte key hash at the front of a signature.
func relabel(t *testing.T, sig64 string, hash uint32) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(sig64)
	if err != nil {
		t.Fatal(err)
	}
	binary.BigEndian.PutUint32(raw[:4], hash)
	return base64.StdEncoding.EncodeToString(raw)
}
