package witness_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pyrsia/pyrsia-build/publish/witness"
	"github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

func newCosigner(t testing.TB, dir string) *witness.Cosigner {
	t.Helper()
	c, err := witness.NewCosigner(witness.CosignerOptions{
		Signer:      testNode(t, "node-a", 10).signer,
		Origin:      testOrigin,
		LogVerifier: logVerifier(t),
		StateDir:    dir,
	})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCosignFork(t *testing.T) {
	// Trees A and B share their first 4 leaves, then differ.
	a, b := forkedTrees(4, 12)
	drop := func(p [][]byte) [][]byte { return p[:len(p)-1] }
	flip := func(p [][]byte) [][]byte { p[0] = bytes.Clone(p[0]); p[0][0] ^= 1; return p }
	short := func(p [][]byte) [][]byte { p[0] = p[0][:31]; return p }
	extra := func(p [][]byte) [][]byte { return append(p, p[0]) }
	const (
		ok       = ""
		fork     = "fork"     // proven: two log-signed checkpoints, one size, two roots
		conflict = "conflict" // stale: the offered checkpoint is behind
		badProof = "badproof" // the proof source failed: nothing proven
	)
	tests := []struct {
		name   string
		first  []byte
		second []byte
		src    witness.ProofSource
		want   string
	}{
		{"extension", signTree(t, a, 5), signTree(t, a, 9), proofs(a, nil), ok},
		{"extension from a power of two", signTree(t, a, 4), signTree(t, a, 11), proofs(a, nil), ok},
		{"same checkpoint again", signTree(t, a, 5), signTree(t, a, 5), nil, ok},
		{"from the empty tree", signTree(t, a, 0), signTree(t, a, 5), nil, ok},
		{"B extends the shared prefix", signTree(t, a, 3), signTree(t, b, 8), proofs(b, nil), ok},
		{"fork with B's proof", signTree(t, a, 5), signTree(t, b, 8), proofs(b, nil), badProof},
		{"fork with A's proof", signTree(t, a, 5), signTree(t, b, 8), proofs(a, nil), badProof},
		{"smaller size", signTree(t, a, 8), signTree(t, a, 5), proofs(a, nil), conflict},
		{"smaller size of another tree", signTree(t, a, 8), signTree(t, b, 5), proofs(b, nil), conflict},
		{"same size, different root", signTree(t, a, 6), signTree(t, b, 6), proofs(b, nil), fork},
		{"truncated proof", signTree(t, a, 5), signTree(t, a, 9), proofs(a, drop), badProof},
		{"bad proof", signTree(t, a, 5), signTree(t, a, 9), proofs(a, flip), badProof},
		{"wrong-length hash in proof", signTree(t, a, 5), signTree(t, a, 9), proofs(a, short), badProof},
		{"extra hash in proof", signTree(t, a, 5), signTree(t, a, 9), proofs(a, extra), badProof},
		{"empty proof", signTree(t, a, 5), signTree(t, a, 9), proofs(a, func([][]byte) [][]byte { return nil }), badProof},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCosigner(t, t.TempDir())
			if _, err := c.Cosign(context.Background(), tt.first, nil); err != nil {
				t.Fatalf("first checkpoint: %v", err)
			}
			stored := c.Last()
			sig, err := c.Cosign(context.Background(), tt.second, tt.src)
			if tt.want == ok {
				if err != nil {
					t.Fatalf("got %v, want the checkpoint cosigned", err)
				}
				checkCosignature(t, tt.second, sig)
				return
			}
			defer func() {
				if !bytes.Equal(c.Last(), stored) {
					t.Errorf("state changed after a refusal: got\n%s\nwant\n%s", c.Last(), stored)
				}
			}()
			if tt.want != fork && errors.Is(err, witness.ErrFork) {
				t.Fatalf("got %v, want no fork reported: nothing is proven", err)
			}
			switch tt.want {
			case conflict:
				var ce *witness.ConflictError
				if !errors.Is(err, witness.ErrConflict) || !errors.As(err, &ce) {
					t.Fatalf("got %v, want a ConflictError", err)
				}
				oldCP, _, _ := witness.ParseCheckpoint(stored, testOrigin, logVerifier(t))
				if ce.Latest != oldCP.Size {
					t.Errorf("got latest size %d, want %d", ce.Latest, oldCP.Size)
				}
				return
			case badProof:
				if !errors.Is(err, witness.ErrBadProof) {
					t.Fatalf("got %v, want a BadProofError", err)
				}
				return
			}
			var fe *witness.ForkError
			if !errors.Is(err, witness.ErrFork) || !errors.As(err, &fe) {
				t.Fatalf("got %v, want a ForkError", err)
			}
			if !bytes.Equal(fe.Old, stored) || !bytes.Equal(fe.New, tt.second) {
				t.Errorf("got old note\n%s\nnew note\n%s\nwant\n%s\nand\n%s", fe.Old, fe.New, stored, tt.second)
			}
			// The evidence holds on its own: both notes verify with the log key.
			oldCP, _, err1 := witness.ParseCheckpoint(fe.Old, testOrigin, logVerifier(t))
			newCP, _, err2 := witness.ParseCheckpoint(fe.New, testOrigin, logVerifier(t))
			if err1 != nil || err2 != nil {
				t.Fatalf("fork evidence does not verify: %v, %v", err1, err2)
			}
			if oldCP.Size != newCP.Size || bytes.Equal(oldCP.Hash, newCP.Hash) {
				t.Errorf("fork evidence is not one size with two roots: %+v, %+v", oldCP, newCP)
			}
			for _, want := range []string{
				fmt.Sprintf("size %d root %s", oldCP.Size, base64.StdEncoding.EncodeToString(oldCP.Hash)),
				fmt.Sprintf("size %d root %s", newCP.Size, base64.StdEncoding.EncodeToString(newCP.Hash)),
			} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("got error %q, want it to contain %q", err, want)
				}
			}
		})
	}
}

// checkCosignature checks that sig is node-a's cosignature/v1 of signed.
func checkCosignature(t *testing.T, signed []byte, sig note.Signature) {
	t.Helper()
	ts, err := fnote.CoSigV1Timestamp(sig)
	if err != nil || time.Since(ts) > time.Minute || time.Until(ts) > time.Minute {
		t.Errorf("got cosignature timestamp %v, %v, want about now", ts, err)
	}
	withSig, err := witness.AddSignatures(signed, sig)
	if err != nil {
		t.Fatal(err)
	}
	nodeA := testNode(t, "node-a", 10)
	if _, names, err := witness.VerifyFinal(withSig, testOrigin, []note.Verifier{logVerifier(t)}, []note.Verifier{nodeA.verifier}, 1); err != nil || len(names) != 1 {
		t.Errorf("got %v, %v, want the cosignature to verify", names, err)
	}
}

func TestCosignOtherErrors(t *testing.T) {
	a, _ := forkedTrees(4, 12)
	otherOrigin, err := witness.SignCheckpoint(logSigner(t), log.Checkpoint{Origin: "other.example/log", Size: 6, Hash: a.HashAt(6)})
	if err != nil {
		t.Fatal(err)
	}
	failing := witness.ProofSourceFunc(func(ctx context.Context, oldSize, newSize uint64) ([][]byte, error) {
		return nil, errors.New("connection refused")
	})
	tests := []struct {
		name   string
		second []byte
		src    witness.ProofSource
		want   string
	}{
		{"other origin", otherOrigin, proofs(a, nil), `is for log "other.example/log"`},
		{"not signed by the log", bytes.Replace(signTree(t, a, 6), []byte("— log "), []byte("— other "), 1), proofs(a, nil), "no signature by log key"},
		{"no proof source", signTree(t, a, 6), nil, "no proof source given"},
		{"proof source fails", signTree(t, a, 6), failing, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCosigner(t, t.TempDir())
			if _, err := c.Cosign(context.Background(), signTree(t, a, 5), nil); err != nil {
				t.Fatal(err)
			}
			_, err := c.Cosign(context.Background(), tt.second, tt.src)
			if err == nil || errors.Is(err, witness.ErrFork) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want a non-fork error saying %q", err, tt.want)
			}
		})
	}
}

func TestCosignerRestart(t *testing.T) {
	a, b := forkedTrees(4, 12)
	dir := t.TempDir()
	c := newCosigner(t, dir)
	if _, err := c.Cosign(context.Background(), signTree(t, a, 6), nil); err != nil {
		t.Fatal(err)
	}

	c = newCosigner(t, dir)
	_, err := c.Cosign(context.Background(), signTree(t, b, 6), nil)
	var fe *witness.ForkError
	if !errors.As(err, &fe) {
		t.Fatalf("after restart: got %v, want a ForkError", err)
	}
	if fe.OldCheckpoint.Size != 6 || fe.NewCheckpoint.Size != 6 {
		t.Errorf("got sizes %d and %d, want 6 and 6", fe.OldCheckpoint.Size, fe.NewCheckpoint.Size)
	}
	if _, err := c.Cosign(context.Background(), signTree(t, b, 9), proofs(b, nil)); !errors.Is(err, witness.ErrBadProof) {
		t.Fatalf("after restart: got %v, want a bad proof", err)
	}
	if _, err := c.Cosign(context.Background(), signTree(t, a, 9), proofs(a, nil)); err != nil {
		t.Fatalf("after restart: got %v, want the extension cosigned", err)
	}

	c = newCosigner(t, dir)
	cp, _, err := witness.ParseCheckpoint(c.Last(), testOrigin, logVerifier(t))
	if err != nil || cp.Size != 9 {
		t.Errorf("after second restart: got state %v, %v, want size 9", cp, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 || entries[0].Name() != witness.StateFile {
		t.Errorf("got state directory %v, %v, want only %s", entries, err, witness.StateFile)
	}
	// The state is the cosigner's own: written for its owner alone.
	if fi, err := os.Stat(filepath.Join(dir, witness.StateFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("state file: got %v, %v, want mode 0600", fi, err)
	}
}

func TestCosignerCorruptState(t *testing.T) {
	a, _ := forkedTrees(4, 12)
	good := signTree(t, a, 6)
	other, err := witness.SignCheckpoint(logSigner(t), log.Checkpoint{Origin: "other.example/log", Size: 6, Hash: a.HashAt(6)})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		state []byte
		want  string
	}{
		{"empty", nil, "not a signed note"},
		{"truncated", good[:len(good)-20], "not a signed note"},
		{"garbage", []byte("\x00\x01garbage"), "not a signed note"},
		{"flipped bit", bytes.Replace(good, []byte("\n6\n"), []byte("\n7\n"), 1), "does not verify"},
		{"other log", other, `is for log "other.example/log"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, witness.StateFile)
			if err := os.WriteFile(path, tt.state, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := witness.NewCosigner(witness.CosignerOptions{
				Signer: testNode(t, "node-a", 10).signer, Origin: testOrigin, LogVerifier: logVerifier(t), StateDir: dir,
			})
			if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error naming %s and saying %q", err, path, tt.want)
			}
		})
	}
}

func TestNewCosignerOptions(t *testing.T) {
	good := witness.CosignerOptions{Signer: testNode(t, "node-a", 10).signer, Origin: testOrigin, LogVerifier: logVerifier(t), StateDir: t.TempDir()}
	tests := []struct {
		name string
		edit func(*witness.CosignerOptions)
		want string
	}{
		{"no signer", func(o *witness.CosignerOptions) { o.Signer = nil }, "no signer"},
		{"no origin", func(o *witness.CosignerOptions) { o.Origin = "" }, "no log origin"},
		{"no log verifier", func(o *witness.CosignerOptions) { o.LogVerifier = nil }, "no log verifier"},
		{"no state dir", func(o *witness.CosignerOptions) { o.StateDir = "" }, "no state directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := good
			tt.edit(&opts)
			if _, err := witness.NewCosigner(opts); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

func TestCosignConcurrent(t *testing.T) {
	a, _ := forkedTrees(4, 12)
	c := newCosigner(t, t.TempDir())
	var wg sync.WaitGroup
	for size := uint64(1); size <= 12; size++ {
		wg.Go(func() {
			_, err := c.Cosign(context.Background(), signTree(t, a, size), proofs(a, nil))
			if err != nil && !errors.Is(err, witness.ErrConflict) {
				t.Errorf("size %d: got %v, want a cosignature or a ConflictError", size, err)
			}
		})
	}
	wg.Wait()
	cp, _, err := witness.ParseCheckpoint(c.Last(), testOrigin, logVerifier(t))
	if err != nil || cp.Size != 12 {
		t.Errorf("got last %v, %v, want size 12", cp, err)
	}
}

// TestCosignSameCheckpointStoresNothing: cosigning the checkpoint already
// stored (every build node asks for its own note of one body) gives a
// valid cosignature without writing the state again, and a larger
// checkpoint is stored as before.
func TestCosignSameCheckpointStoresNothing(t *testing.T) {
	a, _ := forkedTrees(4, 12)
	dir := t.TempDir()
	c := newCosigner(t, dir)
	ctx := context.Background()
	if _, err := c.Cosign(ctx, signTree(t, a, 5), nil); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, witness.StateFile)
	// Remove the state file: a write would bring it back.
	if err := os.Remove(state); err != nil {
		t.Fatal(err)
	}
	again := signTree(t, a, 5)
	sig, err := c.Cosign(ctx, again, nil)
	if err != nil {
		t.Fatal(err)
	}
	checkCosignature(t, again, sig)
	if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the state was written again for the checkpoint it holds (stat: %v)", err)
	}
	// Still refused: a smaller size, and the same size with another root.
	if _, err := c.Cosign(ctx, signTree(t, a, 4), proofs(a, nil)); !errors.Is(err, witness.ErrConflict) {
		t.Errorf("smaller size: got %v, want ErrConflict", err)
	}
	larger := signTree(t, a, 9)
	if _, err := c.Cosign(ctx, larger, proofs(a, nil)); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(state)
	if err != nil {
		t.Fatalf("the larger checkpoint was not stored: %v", err)
	}
	if cp, _, err := witness.ParseCheckpoint(b, testOrigin, logVerifier(t)); err != nil || cp.Size != 9 {
		t.Errorf("stored state: %+v, %v; want size 9", cp, err)
	}
}
