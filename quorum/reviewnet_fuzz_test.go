package quorum

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// shortInputChecker refuses entries that start with '!' and keys the others
// by their first two bytes, so that distinct entries can share an input.
var shortInputChecker = CheckerFunc(func(entry []byte) (string, error) {
	if len(entry) == 0 || entry[0] == '!' {
		return "", errors.New("no quorum")
	}
	return fmt.Sprintf("in:%x", entry[:min(2, len(entry))]), nil
})

// batchMemApplier is memApplier with AppendBatch.
type batchMemApplier struct{ memApplier }

func (b *batchMemApplier) AppendBatch(ctx context.Context, es [][]byte) (uint64, error) {
	first := b.Size()
	for _, e := range es {
		if _, err := b.Append(ctx, e); err != nil {
			return 0, err
		}
	}
	return first, nil
}

// FuzzApplyBatchDeterministic: Raft commands from the leader are outside
// input to every replica, and replicas see them in batches of their own
// (timing decides where a batch ends). Whatever the commands (empty, an
// unknown type, refused, duplicate inputs in or across batches) and
// however they are cut into batches, every replica's log holds the same
// entries in the same order, and every command gets the same result.
func FuzzApplyBatchDeterministic(f *testing.F) {
	f.Add([]byte("\x01aa\n\x01ab\n\x01aa\n\x01!x\n\x01ba"), []byte{3, 1, 2})
	f.Add([]byte("\x01aa\n\x02aa\n\n\x01aa\n\x01aa"), []byte{1})
	f.Add([]byte("\x01x\n\x01y\n\x01x"), []byte{0})
	f.Fuzz(func(t *testing.T, cmds, cuts []byte) {
		var logs []*raft.Log
		for i, c := range bytes.Split(cmds, []byte("\n")) {
			typ := raft.LogCommand
			if len(c) > 0 && c[0] == 0xff {
				typ = raft.LogNoop
			}
			logs = append(logs, &raft.Log{Type: typ, Index: uint64(i + 1), Data: c})
		}
		if len(logs) > 64 {
			logs = logs[:64]
		}
		one := &memApplier{}
		batched := &batchMemApplier{}
		cut := &batchMemApplier{}
		var results [3][]ApplyResult
		for r, a := range []Applier{one, batched, cut} {
			fsm, err := NewFSM(FSMOptions{Checker: shortInputChecker, Applier: a, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				t.Fatal(err)
			}
			var batches [][]*raft.Log
			switch r {
			case 0: // one command at a time
				for _, l := range logs {
					batches = append(batches, []*raft.Log{l})
				}
			case 1: // all at once
				batches = [][]*raft.Log{logs}
			case 2: // cut where the fuzzer says
				rest := logs
				for k := 0; len(rest) > 0; k++ {
					n := 1
					if len(cuts) > 0 {
						n = 1 + int(cuts[k%len(cuts)])%len(rest)
					}
					batches = append(batches, rest[:n])
					rest = rest[n:]
				}
			}
			for _, b := range batches {
				out := fsm.ApplyBatch(b)
				if len(out) != len(b) {
					t.Fatalf("%d results for %d logs", len(out), len(b))
				}
				for _, o := range out {
					res, _ := o.(ApplyResult)
					results[r] = append(results[r], res)
				}
			}
			if fsm.Err() != nil {
				t.Fatalf("replica %d stopped: %v", r, fsm.Err())
			}
			if fsm.Size() != a.Size() {
				t.Fatalf("replica %d: FSM size %d, log size %d", r, fsm.Size(), a.Size())
			}
		}
		for r := 1; r < 3; r++ {
			for i := range results[0] {
				a, b := results[0][i], results[r][i]
				if a.Index != b.Index || a.InputDigest != b.InputDigest || (a.Err == nil) != (b.Err == nil) ||
					errors.Is(a.Err, ErrDuplicateInput) != errors.Is(b.Err, ErrDuplicateInput) || errors.Is(a.Err, ErrRefused) != errors.Is(b.Err, ErrRefused) {
					t.Fatalf("command %d: one at a time %+v, replica %d %+v", i, a, r, b)
				}
			}
		}
		want := one.entries
		for r, got := range [][][]byte{batched.entries, cut.entries} {
			if len(got) != len(want) {
				t.Fatalf("replica %d holds %d entries, the one-at-a-time replica %d", r+1, len(got), len(want))
			}
			for i := range want {
				if !bytes.Equal(got[i], want[i]) {
					t.Fatalf("replica %d's entry %d is %q, the one-at-a-time replica's %q", r+1, i, got[i], want[i])
				}
			}
		}
		seen := map[string]bool{}
		for _, e := range want {
			in, err := shortInputChecker(e)
			if err != nil || seen[in] {
				t.Fatalf("the log holds %q: refused or a second entry for %s", e, in)
			}
			seen[in] = true
		}
	})
}

// FuzzRestoreSnapshot: a snapshot comes from the leader (InstallSnapshot)
// and is outside input. Restore never panics; a snapshot it refuses
// leaves the FSM as it was; one it takes leaves the FSM's size at the
// snapshot's and its inputs those of the log's entries.
func FuzzRestoreSnapshot(f *testing.F) {
	f.Add([]byte(`{"v":2,"size":2}`))
	f.Add([]byte(`{"v":2,"size":4}`))
	f.Add([]byte(`{"v":1,"size":2,"inputs":{"x":0}}`))
	f.Add([]byte(`{"v":2,"size":18446744073709551615}`))
	f.Add([]byte(`{"v":3,"size":1}`))
	f.Add([]byte(`{"v":2,"size":1,"extra":1}`))
	f.Fuzz(func(t *testing.T, snap []byte) {
		log := &memApplier{}
		served := []string{"aa", "ab", "ba", "bb", "aa", "ca"}
		cc := &CheckedCatchup{Checker: shortInputChecker, Source: entrySourceFunc(func(_ context.Context, start, end uint64) ([][]byte, error) {
			if end > uint64(len(served)) {
				return nil, fmt.Errorf("the peer has %d entries", len(served))
			}
			var out [][]byte
			for i := start; i < end; i++ {
				out = append(out, []byte(served[i]))
			}
			return out, nil
		})}
		fsm, err := NewFSM(FSMOptions{Checker: shortInputChecker, Applier: log, Catchup: cc, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		for i, e := range served[:2] {
			if r := fsm.Apply(&raft.Log{Type: raft.LogCommand, Index: uint64(i + 1), Data: AppendEntryCommand([]byte(e))}).(ApplyResult); r.Err != nil {
				t.Fatal(r.Err)
			}
		}
		err = fsm.Restore(ioNopCloser(string(snap)))
		if err != nil {
			if fsm.Size() != 2 {
				t.Fatalf("a refused snapshot (%v) changed the FSM's size to %d", err, fsm.Size())
			}
			for _, e := range served[:2] {
				in, _ := shortInputChecker([]byte(e))
				if i, ok := fsm.Lookup(in); !ok || served[i] != e {
					t.Fatalf("a refused snapshot (%v) made the FSM forget %s", err, in)
				}
			}
			return
		}
		var s fsmSnapshot
		if json.NewDecoder(strings.NewReader(string(snap))).Decode(&s) != nil {
			t.Fatalf("Restore took %q, which does not decode", snap)
		}
		if fsm.Size() != s.Size || log.Size() < s.Size {
			t.Fatalf("after a snapshot of size %d: FSM size %d, log size %d", s.Size, fsm.Size(), log.Size())
		}
		for i := range min(log.Size(), s.Size) {
			e, _ := log.EntryAt(context.Background(), i)
			in, _ := shortInputChecker(e)
			if j, ok := fsm.Lookup(in); !ok || j != i {
				t.Fatalf("after a snapshot of size %d: entry %d's input %s is at %d, %v", s.Size, i, in, j, ok)
			}
		}
	})
}
