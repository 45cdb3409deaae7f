package witness_test

import (
	"context"
	"errors"
	"testing"

	"github.com/pyrsia/pyrsia-build/publish/witness"
	"golang.org/x/mod/sumdb/note"
)

// TestCosignAll: three local cosigners, one of which has already cosigned
// a fork of the log; the round returns the two good cosignatures on the
// note, the fork as the third one's error, and the note is final at 2 of 3.
func TestCosignAll(t *testing.T) {
	a, b := forkedTrees(4, 12)
	nodes := []node{testNode(t, "node-a", 10), testNode(t, "node-b", 11), testNode(t, "node-c", 12)}
	var clients []witness.CosignerClient
	var verifiers []note.Verifier
	for _, n := range nodes {
		c, err := witness.NewCosigner(witness.CosignerOptions{Signer: n.signer, Origin: testOrigin, LogVerifier: logVerifier(t), StateDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
		verifiers = append(verifiers, n.verifier)
	}
	// node-c cosigned tree B at size 10 first.
	if _, err := clients[2].Cosign(context.Background(), signTree(t, b, 10), proofs(b, nil)); err != nil {
		t.Fatal(err)
	}
	cpNote := signTree(t, a, 10)
	signed, errs, err := witness.CosignAll(context.Background(), cpNote, proofs(a, nil), clients)
	if err != nil {
		t.Fatal(err)
	}
	if len(errs) != 3 || errs[0] != nil || errs[1] != nil || !errors.Is(errs[2], witness.ErrFork) {
		t.Fatalf("got errors %v, want nil, nil and a fork", errs)
	}
	_, names, err := witness.VerifyFinal(signed, testOrigin, []note.Verifier{logVerifier(t)}, verifiers, 2)
	if err != nil || len(names) != 2 || names[0] != "node-a" || names[1] != "node-b" {
		t.Fatalf("VerifyFinal: got %v, %v, want node-a and node-b", names, err)
	}
	if _, _, err := witness.VerifyFinal(signed, testOrigin, []note.Verifier{logVerifier(t)}, verifiers, 3); !errors.Is(err, witness.ErrNotFinal) {
		t.Errorf("at 3 of 3: got %v, want ErrNotFinal", err)
	}

	// No cosignature (ctx is done before the proofs are fetched): the
	// note is returned as it was.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	src := witness.ProofSourceFunc(func(ctx context.Context, oldSize, newSize uint64) ([][]byte, error) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		return a.ConsistencyProof(oldSize, newSize)
	})
	signed, errs, err = witness.CosignAll(ctx, signTree(t, a, 12), src, clients[:2])
	if err != nil || string(signed) != string(signTree(t, a, 12)) {
		t.Fatalf("cancelled: got %q, %v, want the note unchanged", signed, err)
	}
	for i, e := range errs {
		if !errors.Is(e, context.Canceled) {
			t.Errorf("cancelled: cosigner %d: got %v, want context.Canceled", i, e)
		}
	}
}
