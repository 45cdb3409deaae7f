package witness_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/pyrsia/pyrsia-build/publish/witness"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/note"
)

const testOrigin = "pyrsia-build.example/log"

// testKey returns a note key pair for name made from a fixed seed, so that
// signatures (Ed25519 is deterministic) and testdata are reproducible.
func testKey(t testing.TB, name string, seed byte) (skey, vkey string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{seed}, 32)), name)
	if err != nil {
		t.Fatal(err)
	}
	return skey, vkey
}

func logSigner(t testing.TB) note.Signer {
	t.Helper()
	skey, _ := testKey(t, "log", 1)
	s, err := witness.NewLogSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func logVerifier(t testing.TB) note.Verifier {
	t.Helper()
	_, vkey := testKey(t, "log", 1)
	v, err := witness.NewLogVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

type node struct {
	name     string
	signer   note.Signer
	verifier note.Verifier
}

func testNode(t testing.TB, name string, seed byte) node {
	t.Helper()
	skey, vkey := testKey(t, name, seed)
	s, err := witness.NewCosignatureSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := witness.NewCosignatureVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return node{name, s, v}
}

// forkedTrees returns two trees of n leaves that share their first k leaves.
func forkedTrees(k, n int) (a, b *testonly.Tree) {
	a, b = testonly.New(rfc6962.DefaultHasher), testonly.New(rfc6962.DefaultHasher)
	for i := range n {
		a.AppendData(fmt.Appendf(nil, "entry %d", i))
		if i < k {
			b.AppendData(fmt.Appendf(nil, "entry %d", i))
		} else {
			b.AppendData(fmt.Appendf(nil, "forked entry %d", i))
		}
	}
	return a, b
}

// signTree returns the log's signed checkpoint of tree at size.
func signTree(t testing.TB, tree *testonly.Tree, size uint64) []byte {
	t.Helper()
	b, err := witness.SignCheckpoint(logSigner(t), log.Checkpoint{Origin: testOrigin, Size: size, Hash: tree.HashAt(size)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// proofs returns a ProofSource serving consistency proofs of tree, passed
// through edit when it is not nil.
func proofs(tree *testonly.Tree, edit func([][]byte) [][]byte) witness.ProofSource {
	return witness.ProofSourceFunc(func(ctx context.Context, oldSize, newSize uint64) ([][]byte, error) {
		p, err := tree.ConsistencyProof(oldSize, newSize)
		if err != nil {
			return nil, err
		}
		if edit != nil {
			p = edit(p)
		}
		return p, nil
	})
}
