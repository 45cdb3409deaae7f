package quorum

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// batchApplier is a memApplier that is a BatchAppender and counts its
// appends (a unit-test log).
type batchApplier struct {
	memApplier
	batches, singles int
}

func (b *batchApplier) Append(ctx context.Context, e []byte) (uint64, error) {
	b.singles++
	return b.memApplier.Append(ctx, e)
}

func (b *batchApplier) AppendBatch(_ context.Context, es [][]byte) (uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.batches++
	first := uint64(len(b.entries))
	b.entries = append(b.entries, es...)
	return first, nil
}

func sliceSource(entries [][]byte) EntrySource {
	return entrySourceFunc(func(_ context.Context, start, end uint64) ([][]byte, error) {
		if end > uint64(len(entries)) {
			return nil, fmt.Errorf("the peer has %d entries", len(entries))
		}
		return entries[start:end], nil
	})
}

// TestCatchupAppendsBatches: a catch-up appends each fetch of entries in
// one AppendBatch (one fsync), not entry by entry, in the peer's order.
func TestCatchupAppendsBatches(t *testing.T) {
	var peer [][]byte
	for i := range 10 {
		peer = append(peer, fmt.Appendf(nil, "entry %d", i))
	}
	log := &batchApplier{}
	c := &CheckedCatchup{Source: sliceSource(peer), Checker: digestChecker, Batch: 4}
	inputs := map[string]uint64{}
	if err := c.CatchUpInputs(context.Background(), log, 0, 10, inputs); err != nil {
		t.Fatal(err)
	}
	if log.batches != 3 || log.singles != 0 {
		t.Fatalf("10 entries in fetches of 4: %d batch appends and %d single ones, want 3 and 0", log.batches, log.singles)
	}
	for i, e := range peer {
		if string(log.entries[i]) != string(e) {
			t.Fatalf("log entry %d is %q, want %q", i, log.entries[i], e)
		}
		in, _ := digestChecker(e)
		if inputs[in] != uint64(i) {
			t.Fatalf("input of entry %d recorded at %d", i, inputs[in])
		}
	}
}

// TestCatchupBatchRefusedInTheMiddle: a refused entry (no quorum, or a
// second entry for an input) in the middle of a fetch stops the catch-up
// with the entries before it appended, none after it, and its index named.
func TestCatchupBatchRefusedInTheMiddle(t *testing.T) {
	for _, tc := range []struct {
		name string
		bad  []byte
		want error
	}{
		{"no quorum", []byte("bad entry"), ErrRefused},
		{"duplicate input", []byte("entry 1"), ErrDuplicateInput},
	} {
		t.Run(tc.name, func(t *testing.T) {
			peer := [][]byte{[]byte("entry 0"), []byte("entry 1"), []byte("entry 2"), tc.bad, []byte("entry 4"), []byte("entry 5")}
			for _, batch := range []uint64{1, 3, 4, 16} {
				log := &batchApplier{}
				c := &CheckedCatchup{Source: sliceSource(peer), Checker: digestChecker, Batch: batch}
				inputs := map[string]uint64{}
				err := c.CatchUpInputs(context.Background(), log, 0, uint64(len(peer)), inputs)
				if !errors.Is(err, tc.want) {
					t.Fatalf("batch %d: got %v, want %v", batch, err, tc.want)
				}
				if got := fmt.Sprint(err); !strings.Contains(got, "entry 3 from the peer") {
					t.Fatalf("batch %d: the error does not name entry 3: %v", batch, got)
				}
				if log.Size() != 3 {
					t.Fatalf("batch %d: the log holds %d entries, want the 3 before the refused one", batch, log.Size())
				}
				if len(inputs) != 3 {
					t.Fatalf("batch %d: %d inputs recorded, want 3", batch, len(inputs))
				}
			}
		})
	}
}

// TestCatchupBatchRefusesInputsTheLogHolds: an entry for an input the log
// held before the catch-up is refused before anything of its fetch
// after it reaches the log.
func TestCatchupBatchRefusesInputsTheLogHolds(t *testing.T) {
	log := &batchApplier{}
	log.entries = [][]byte{[]byte("entry 0")}
	peer := [][]byte{[]byte("entry 0"), []byte("entry 1"), []byte("entry 0"), []byte("entry 3")}
	c := &CheckedCatchup{Source: sliceSource(peer), Checker: digestChecker}
	err := c.CatchUp(context.Background(), log, 1, 4)
	if !errors.Is(err, ErrDuplicateInput) {
		t.Fatalf("got %v, want the second entry for entry 0's input refused", err)
	}
	if log.Size() != 2 {
		t.Fatalf("the log holds %d entries, want 2 (its own and entry 1)", log.Size())
	}
}
