package witness_test

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pyrsia/pyrsia-build/publish/witness"
	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// Regression (review finding 2): [witness.PublicKey] identified a key by
// the base64 text of its verifier key, but note.NewVerifier and the
// cosignature/v1 verifier decode it with base64.StdEncoding, which skips
// '\r' and '\n'. The same public key written with a newline inside its
// base64 was "another key": Distinct kept both, and one cosignature,
// relabelled, counted twice. Keys are now told apart by their bytes, and
// key text that is not canonical (white space, non-canonical base64) is
// refused where it is parsed.
func TestKeyWithNewlineIsRefused(t *testing.T) {
	a, _ := forkedTrees(4, 12)
	_, vkey := testKey(t, "node-a", 10)
	n1, n3 := testNode(t, "node-a", 10), testNode(t, "node-c", 12)
	canonical := fixHash(t, "node-a2"+vkey[len("node-a"):])
	parts := strings.SplitN(canonical, "+", 3)
	for name, alias := range map[string]string{
		"newline":  parts[0] + "+" + parts[1] + "+" + parts[2][:10] + "\n" + parts[2][10:],
		"crlf":     parts[0] + "+" + parts[1] + "+" + parts[2][:10] + "\r\n" + parts[2][10:],
		"trailing": canonical + "\n",
	} {
		if _, err := witness.NewCosignatureVerifier(alias); err == nil || !strings.Contains(err.Error(), "white space") {
			t.Errorf("%s: NewCosignatureVerifier(%q) = %v, want an error about white space", name, alias, err)
		}
		if _, err := witness.NewLogVerifier(alias); err == nil {
			t.Errorf("%s: NewLogVerifier(%q) accepted it", name, alias)
		}
	}
	// The canonical key under another name is still one key.
	aliasV, err := witness.NewCosignatureVerifier(canonical)
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
	if kept, _ := witness.Distinct(cosigners); len(kept) != 2 {
		t.Errorf("Distinct kept %d verifiers, want 2: node-a and node-a2 are one public key", len(kept))
	}
	_, names, err := witness.VerifyFinal(signed, testOrigin, []note.Verifier{logVerifier(t)}, cosigners, 2)
	if !errors.Is(err, witness.ErrNotFinal) {
		t.Errorf("VerifyFinal: got %v, %v; want not final: one key cosigned, under two names", names, err)
	}
}

// Regression (review finding 1): in a network every node's note key is a
// log key (policy.Trust.CosignerOptions passes all of them), and a
// Cosigner checked only that a checkpoint extends the last one it
// cosigned, with a proof from the submitter, never that the network's log
// holds the new entries. One node (a minority of one) signed, as "the
// log", a tree that extends the real one with entries of its choosing; the
// honest cosigners cosigned it, and then refused the real log's next
// checkpoint as a fork. A Cosigner with several log keys now needs its
// node's own Replica and cosigns only the replica's roots.
func TestOneNodeCannotAdvanceTheWitnessedTree(t *testing.T) {
	ctx := context.Background()
	real, rogue := forkedTrees(8, 12) // the same 8 entries, then two histories
	rogueSkey, rogueVkey := testKey(t, "node-rogue", 30)
	rogueSigner, err := witness.NewLogSigner(rogueSkey)
	if err != nil {
		t.Fatal(err)
	}
	rogueV, err := witness.NewLogVerifier(rogueVkey)
	if err != nil {
		t.Fatal(err)
	}
	n := testNode(t, "node-b", 31)
	opts := witness.CosignerOptions{Signer: n.signer, Origin: testOrigin,
		LogVerifiers: []note.Verifier{logVerifier(t), rogueV}, StateDir: t.TempDir()}
	if _, err := witness.NewCosigner(opts); err == nil {
		t.Fatal("NewCosigner accepted two log keys and no replica")
	}
	// node-b's own replica is the real log, at size 10.
	replicaSize := uint64(10)
	opts.Replica = witness.ReplicaFunc(func(_ context.Context, size uint64) ([]byte, error) {
		if size > replicaSize {
			return nil, fmt.Errorf("the replica holds %d entries, not %d", replicaSize, size)
		}
		return real.HashAt(size), nil
	})
	c, err := witness.NewCosigner(opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Cosign(ctx, signTree(t, real, 8), proofs(real, nil)); err != nil {
		t.Fatal(err)
	}
	forged, err := witness.SignCheckpoint(rogueSigner, log.Checkpoint{Origin: testOrigin, Size: 10, Hash: rogue.HashAt(10)})
	if err != nil {
		t.Fatal(err)
	}
	_, rogueErr := c.Cosign(ctx, forged, proofs(rogue, nil))
	var re *witness.ReplicaError
	if !errors.As(rogueErr, &re) || !errors.Is(rogueErr, witness.ErrNotReplica) || !strings.Contains(rogueErr.Error(), "node-rogue") {
		t.Errorf("the rogue node's own tree: got %v, want a *ReplicaError naming node-rogue", rogueErr)
	}
	if _, realErr := c.Cosign(ctx, signTree(t, real, 10), proofs(real, nil)); realErr != nil {
		t.Errorf("the real log's checkpoint of size 10 is refused (%v) after one node's own tree was offered (%v)", realErr, rogueErr)
	}
	// A size the replica does not hold yet is not cosigned, on anyone's word.
	if _, err := c.Cosign(ctx, signTree(t, real, 12), proofs(real, nil)); !errors.Is(err, witness.ErrNotReplica) {
		t.Errorf("a checkpoint beyond the replica: got %v, want ErrNotReplica", err)
	}
	// The submitter's proofs are not asked for: the replica judges.
	replicaSize = 12
	noProofs := witness.ProofSourceFunc(func(context.Context, uint64, uint64) ([][]byte, error) {
		return nil, errors.New("the submitter's proofs must not be used")
	})
	if _, err := c.Cosign(ctx, signTree(t, real, 12), noProofs); err != nil {
		t.Errorf("the real log at size 12, once the replica holds it: %v", err)
	}
}

// A "fork" of two checkpoints signed by two log keys is two nodes
// disagreeing, not the log forking: the evidence names both keys.
func TestForkEvidenceNamesBothSigners(t *testing.T) {
	ctx := context.Background()
	real, rogue := forkedTrees(8, 12)
	rogueSkey, rogueVkey := testKey(t, "node-rogue", 30)
	rogueSigner, _ := witness.NewLogSigner(rogueSkey)
	rogueV, _ := witness.NewLogVerifier(rogueVkey)
	n := testNode(t, "node-b", 31)
	// A replica that (wrongly, or before this node caught up) agrees with
	// whatever it is asked: the state was cosigned from the real tree.
	which := real
	c, err := witness.NewCosigner(witness.CosignerOptions{Signer: n.signer, Origin: testOrigin,
		LogVerifiers: []note.Verifier{logVerifier(t), rogueV}, StateDir: t.TempDir(),
		Replica: witness.ReplicaFunc(func(_ context.Context, size uint64) ([]byte, error) { return which.HashAt(size), nil })})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Cosign(ctx, signTree(t, real, 10), nil); err != nil {
		t.Fatal(err)
	}
	which = rogue
	forged, _ := witness.SignCheckpoint(rogueSigner, log.Checkpoint{Origin: testOrigin, Size: 10, Hash: rogue.HashAt(10)})
	_, err = c.Cosign(ctx, forged, nil)
	var fe *witness.ForkError
	if !errors.As(err, &fe) {
		t.Fatalf("got %v, want a *ForkError", err)
	}
	if fe.SameSigner() || !strings.HasPrefix(fe.OldSigner, "log+") || !strings.HasPrefix(fe.NewSigner, "node-rogue+") {
		t.Errorf("signers %q and %q, want the log's and node-rogue's keys", fe.OldSigner, fe.NewSigner)
	}
	if errors.Is(err, witness.ErrFork) || !errors.Is(err, witness.ErrDisagree) {
		t.Errorf("got %v; want ErrDisagree, not ErrFork: two keys signed", err)
	}
	for _, want := range []string{"node-rogue", "log", "proves no fork"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
}

// Regression (review finding 11): AddSignatures kept the first signature line
// of a key (name and key hash) and dropped later ones, without checking
// either. A note that already carries a junk line for cosigner X (anyone
// can append one on the way) loses X's genuine cosignature when it is
// added: the checkpoint stays short of final.
func TestAddSignaturesKeepsTheGoodLine(t *testing.T) {
	a, _ := forkedTrees(4, 8)
	n1 := testNode(t, "node-a", 10)
	cp := signTree(t, a, 6)
	good := cosign(t, n1, cp)
	raw, _ := base64.StdEncoding.DecodeString(good.Base64)
	for i := 4; i < len(raw); i++ {
		raw[i] = 0
	}
	junk := note.Signature{Name: good.Name, Hash: good.Hash, Base64: base64.StdEncoding.EncodeToString(raw)}
	withJunk, err := witness.AddSignatures(cp, junk)
	if err != nil {
		t.Fatal(err)
	}
	signed, err := witness.AddSignatures(withJunk, good)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := witness.VerifyFinal(signed, testOrigin, []note.Verifier{logVerifier(t)}, []note.Verifier{n1.verifier}, 1); err != nil {
		t.Errorf("the genuine cosignature was dropped behind a junk line: %v", err)
	}
}
