package witness_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/pyrsia/pyrsia-build/publish/witness"
	"golang.org/x/mod/sumdb/note"
)

// seedNotes returns the testdata checkpoints and a few made here: a final
// one, one cosigned twice under two names with one key, a fork.
func seedNotes(f *testing.F) [][]byte {
	files, err := filepath.Glob("testdata/*.checkpoint")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata/*.checkpoint: %v", err)
	}
	var seeds [][]byte
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	a, b := forkedTrees(4, 12)
	n1, n2 := testNode(f, "node-a", 10), testNode(f, "node-b", 11)
	for _, cp := range [][]byte{signTree(f, a, 7), signTree(f, b, 7), signTree(f, a, 9)} {
		final, err := witness.AddSignatures(cp, cosign(f, n1, cp), cosign(f, n2, cp))
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, cp, final)
	}
	return seeds
}

func FuzzVerifyFinal(f *testing.F) {
	for _, s := range seedNotes(f) {
		f.Add(s)
	}
	n1, n2, n3 := testNode(f, "node-a", 10), testNode(f, "node-b", 11), testNode(f, "node-c", 12)
	// node-a's key again, under another name.
	_, vkey := testKey(f, "node-a", 10)
	alias, err := witness.NewCosignatureVerifier(fixHash(f, "node-a2"+vkey[len("node-a"):]))
	if err != nil {
		f.Fatal(err)
	}
	cosigners := []note.Verifier{n1.verifier, alias, n2.verifier, n3.verifier}
	logs := []note.Verifier{logVerifier(f)}
	f.Fuzz(func(t *testing.T, b []byte) {
		cp, names, err := witness.VerifyFinal(b, testOrigin, logs, cosigners, 2)
		var nf *witness.NotFinalError
		switch {
		case err == nil:
			if cp == nil || cp.Origin != testOrigin || len(names) < 2 {
				t.Fatalf("final with checkpoint %+v and cosigners %q, want origin %q and 2 cosigners", cp, names, testOrigin)
			}
		case errors.As(err, &nf):
			if cp == nil || len(names) >= 2 {
				t.Fatalf("not final with checkpoint %+v and cosigners %q", cp, names)
			}
		default:
			if cp != nil || names != nil {
				t.Fatalf("error %v with a checkpoint or names", err)
			}
			return
		}
		// One key counts once: node-a and node-a2 never both.
		if slices.Contains(names, "node-a") && slices.Contains(names, "node-a2") {
			t.Fatalf("one key counted twice: %q", names)
		}
		if _, _, err := witness.ParseCheckpoint(b, testOrigin, logs...); err != nil {
			t.Fatalf("VerifyFinal accepted a note ParseCheckpoint refuses: %v", err)
		}
	})
}

// FuzzCosign feeds a cosigner that vouched for size 5 of tree A a checkpoint
// note and a consistency proof from outside. It never cosigns what does not
// extend what it cosigned, reports a fork only with the proof of one, and its
// state only grows.
func FuzzCosign(f *testing.F) {
	a, b := forkedTrees(4, 12)
	flat := func(p [][]byte) []byte { return bytes.Join(p, nil) }
	p59, _ := a.ConsistencyProof(5, 9)
	p512, _ := a.ConsistencyProof(5, 12)
	pb59, _ := b.ConsistencyProof(5, 9)
	for _, s := range seedNotes(f) {
		f.Add(s, flat(p59))
	}
	f.Add(signTree(f, a, 9), flat(p59))
	f.Add(signTree(f, a, 12), flat(p512))
	f.Add(signTree(f, b, 9), flat(pb59))
	f.Add(signTree(f, b, 5), []byte(nil))
	f.Add(signTree(f, a, 5), []byte(nil))
	f.Add(signTree(f, a, 3), []byte(nil))
	// The state of a cosigner that cosigned size 5 of A, made once: each
	// run starts from a copy, without an fsync.
	seedDir := f.TempDir()
	if _, err := newCosigner(f, seedDir).Cosign(context.Background(), signTree(f, a, 5), nil); err != nil {
		f.Fatal(err)
	}
	state, err := os.ReadFile(filepath.Join(seedDir, witness.StateFile))
	if err != nil {
		f.Fatal(err)
	}
	lv := logVerifier(f)
	nodeA := testNode(f, "node-a", 10)
	f.Fuzz(func(t *testing.T, in, proofBytes []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, witness.StateFile), state, 0o600); err != nil {
			t.Fatal(err)
		}
		c := newCosigner(t, dir)
		ctx := context.Background()
		var proof [][]byte
		for len(proofBytes) > 0 {
			n := min(32, len(proofBytes))
			proof, proofBytes = append(proof, proofBytes[:n]), proofBytes[n:]
		}
		src := witness.ProofSourceFunc(func(context.Context, uint64, uint64) ([][]byte, error) { return proof, nil })
		sig, err := c.Cosign(ctx, in, src)
		last, _, perr := witness.ParseCheckpoint(c.Last(), testOrigin, lv)
		if perr != nil {
			t.Fatalf("state does not parse after Cosign: %v", perr)
		}
		if err != nil {
			if last.Size != 5 || !bytes.Equal(last.Hash, a.HashAt(5)) {
				t.Fatalf("state changed after a refusal: size %d", last.Size)
			}
			var fe *witness.ForkError
			if errors.As(err, &fe) {
				o, _, err1 := witness.ParseCheckpoint(fe.Old, testOrigin, lv)
				n, _, err2 := witness.ParseCheckpoint(fe.New, testOrigin, lv)
				if err1 != nil || err2 != nil || o.Size != n.Size || bytes.Equal(o.Hash, n.Hash) {
					t.Fatalf("a fork reported without its proof: %v, %v", err1, err2)
				}
			}
			return
		}
		cp, _, err := witness.ParseCheckpoint(in, testOrigin, lv)
		if err != nil {
			t.Fatalf("cosigned a note that does not parse: %v", err)
		}
		if cp.Size < 5 || cp.Size > 12 || !bytes.Equal(cp.Hash, a.HashAt(cp.Size)) {
			// Anything else cosigned is a checkpoint that does not extend
			// size 5 of A, whatever the proof said.
			t.Fatalf("cosigned size %d, root not tree A's", cp.Size)
		}
		if last.Size != cp.Size {
			t.Fatalf("state at size %d after cosigning size %d", last.Size, cp.Size)
		}
		withSig, err := witness.AddSignatures(in, sig)
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := witness.VerifyFinal(withSig, testOrigin, []note.Verifier{lv}, []note.Verifier{nodeA.verifier}, 1); err != nil {
			t.Fatalf("the cosignature does not verify: %v", err)
		}
	})
}

// FuzzAddCheckpoint is FuzzCosign for the C2SP tlog-witness request: an old
// size, a proof and a note, all from outside.
func FuzzAddCheckpoint(f *testing.F) {
	a, b := forkedTrees(4, 12)
	flat := func(p [][]byte) []byte { return bytes.Join(p, nil) }
	p59, _ := a.ConsistencyProof(5, 9)
	pb59, _ := b.ConsistencyProof(5, 9)
	f.Add(signTree(f, a, 9), uint64(5), flat(p59))
	f.Add(signTree(f, b, 9), uint64(5), flat(pb59))
	f.Add(signTree(f, b, 5), uint64(5), []byte(nil))
	f.Add(signTree(f, a, 3), uint64(0), []byte(nil))
	for _, s := range seedNotes(f) {
		f.Add(s, uint64(5), flat(p59))
	}
	seedDir := f.TempDir()
	if _, err := newCosigner(f, seedDir).AddCheckpoint(context.Background(), 0, nil, signTree(f, a, 5)); err != nil {
		f.Fatal(err)
	}
	state, err := os.ReadFile(filepath.Join(seedDir, witness.StateFile))
	if err != nil {
		f.Fatal(err)
	}
	lv := logVerifier(f)
	f.Fuzz(func(t *testing.T, in []byte, oldSize uint64, proofBytes []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, witness.StateFile), state, 0o600); err != nil {
			t.Fatal(err)
		}
		c := newCosigner(t, dir)
		var proof [][]byte
		for len(proofBytes) > 0 {
			n := min(32, len(proofBytes))
			proof, proofBytes = append(proof, proofBytes[:n]), proofBytes[n:]
		}
		_, err := c.AddCheckpoint(context.Background(), oldSize, proof, in)
		last, _, perr := witness.ParseCheckpoint(c.Last(), testOrigin, lv)
		if perr != nil {
			t.Fatalf("state does not parse: %v", perr)
		}
		if err != nil {
			if last.Size != 5 {
				t.Fatalf("state changed after a refusal")
			}
			return
		}
		if oldSize != 5 || last.Size < 5 || !bytes.Equal(last.Hash, a.HashAt(last.Size)) {
			t.Fatalf("cosigned size %d from old size %d, not an extension of A's size 5", last.Size, oldSize)
		}
	})
}
