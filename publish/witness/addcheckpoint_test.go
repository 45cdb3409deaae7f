package witness_test

import (
	"context"
	"errors"
	"testing"

	"github.com/pyrsia/pyrsia-build/publish/witness"
)

// AddCheckpoint answers as C2SP tlog-witness's add-checkpoint does.
func TestAddCheckpoint(t *testing.T) {
	a, b := forkedTrees(4, 12)
	ctx := context.Background()
	proof := func(tree interface {
		ConsistencyProof(uint64, uint64) ([][]byte, error)
	}, from, to uint64) [][]byte {
		p, err := tree.ConsistencyProof(from, to)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	const (
		ok = iota
		conflict
		fork
		badProof
		badRequest
		forbidden
	)
	tests := []struct {
		name   string
		old    uint64
		proof  [][]byte
		note   []byte
		want   int
		latest uint64 // for a conflict
	}{
		{"extends", 5, proof(a, 5, 9), signTree(t, a, 9), ok, 0},
		{"same again", 5, nil, signTree(t, a, 5), ok, 0},
		{"old size behind", 3, proof(a, 3, 9), signTree(t, a, 9), conflict, 5},
		{"old size ahead", 7, proof(a, 7, 9), signTree(t, a, 9), conflict, 5},
		{"stale checkpoint", 0, nil, signTree(t, a, 3), conflict, 5},
		{"old size beyond the checkpoint", 9, nil, signTree(t, a, 8), badRequest, 0},
		{"same size, another root", 5, nil, signTree(t, b, 5), fork, 0},
		{"proof of another tree", 5, proof(b, 5, 9), signTree(t, b, 9), badProof, 0},
		{"bad proof", 5, proof(a, 5, 8), signTree(t, a, 9), badProof, 0},
		{"not signed by the log", 5, proof(a, 5, 9), []byte("x\n9\nAAAA\n\n— other AAAAAAAA\n"), forbidden, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newCosigner(t, t.TempDir())
			if _, err := c.AddCheckpoint(ctx, 0, nil, signTree(t, a, 5)); err != nil {
				t.Fatalf("first checkpoint, from size 0: %v", err)
			}
			sig, err := c.AddCheckpoint(ctx, tt.old, tt.proof, tt.note)
			var ce *witness.ConflictError
			switch tt.want {
			case ok:
				if err != nil {
					t.Fatalf("got %v, want a cosignature", err)
				}
				checkCosignature(t, tt.note, sig)
			case conflict:
				if !errors.As(err, &ce) || ce.Latest != tt.latest || errors.Is(err, witness.ErrFork) {
					t.Fatalf("got %v, want a conflict with latest size %d", err, tt.latest)
				}
			case fork:
				if !errors.Is(err, witness.ErrFork) {
					t.Fatalf("got %v, want a fork", err)
				}
			case badProof:
				if !errors.Is(err, witness.ErrBadProof) || errors.Is(err, witness.ErrFork) {
					t.Fatalf("got %v, want a bad proof", err)
				}
			case badRequest:
				if !errors.Is(err, witness.ErrOldSizeTooLarge) {
					t.Fatalf("got %v, want ErrOldSizeTooLarge", err)
				}
			case forbidden:
				if err == nil || errors.Is(err, witness.ErrConflict) || errors.Is(err, witness.ErrBadProof) {
					t.Fatalf("got %v, want a refusal of the note", err)
				}
			}
		})
	}
	// A first checkpoint with a non-empty proof from 0 is refused.
	c := newCosigner(t, t.TempDir())
	if _, err := c.AddCheckpoint(ctx, 0, proof(a, 4, 5), signTree(t, a, 5)); !errors.Is(err, witness.ErrBadProof) {
		t.Errorf("proof from size 0: got %v, want a bad proof", err)
	}
}
