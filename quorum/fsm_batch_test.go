package quorum

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/pyrsia/pyrsia-build/publish/tlog"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	"golang.org/x/mod/sumdb/note"
)

// openTestLog opens a real tlog in dir.
func openTestLog(t *testing.T, dir string) *tlog.Log {
	t.Helper()
	skey, _, err := witness.GenerateKey("test-log")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tlog.Open(context.Background(), tlog.Options{Dir: dir, Origin: "test", Signer: signer, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// raftBatch makes the Raft logs of commands, from raft index first on.
func raftBatch(first uint64, cmds ...[]byte) []*raft.Log {
	var out []*raft.Log
	for i, c := range cmds {
		out = append(out, &raft.Log{Index: first + uint64(i), Type: raft.LogCommand, Data: c})
	}
	return out
}

// countingLog is a real tlog that counts the appends the FSM makes.
type countingLog struct {
	*tlog.Log
	appends, batches int
}

func (c *countingLog) Append(ctx context.Context, e []byte) (uint64, error) {
	c.appends++
	return c.Log.Append(ctx, e)
}

// EntryAt reads an entry back, after signing a candidate checkpoint that
// covers it (as logservice.Service does).
func (c *countingLog) EntryAt(ctx context.Context, i uint64) ([]byte, error) {
	if _, err := c.Log.Publish(ctx); err != nil {
		return nil, err
	}
	return c.Log.Entry(ctx, i)
}

func (c *countingLog) AppendBatch(ctx context.Context, es [][]byte) (uint64, error) {
	c.batches++
	return c.Log.AppendBatch(ctx, es)
}

// TestFSMApplyBatch applies one Raft batch holding refused entries, a
// second entry for an input, and a command of an unknown type among good
// entries, to three replicas: the good ones are appended in order with one
// log append, the others are refused with their reasons, and the three
// replicas hold the same log.
func TestFSMApplyBatch(t *testing.T) {
	good := func(s string) []byte { return AppendEntryCommand([]byte(s)) }
	cmds := [][]byte{
		good("one"),
		good("bad: no quorum"), // refused by the checker, in the middle
		good("two"),
		good("one"), // a second entry for "one"'s input, in the same batch
		{99, 'x'},   // unknown command type
		{},          // empty
		good("three"),
		good("two"), // and for "two"'s
	}
	type want struct {
		index uint64
		err   error // nil: appended
	}
	wants := []want{{0, nil}, {0, ErrRefused}, {1, nil}, {0, ErrDuplicateInput}, {0, errors.New("unknown command type")}, {0, errors.New("empty")}, {2, nil}, {1, ErrDuplicateInput}}
	var roots [][]byte
	for r := range 3 {
		t.Run(fmt.Sprintf("replica-%d", r), func(t *testing.T) {
			l := &countingLog{Log: openTestLog(t, filepath.Join(t.TempDir(), "log"))}
			var observed []string
			f, err := NewFSM(FSMOptions{Checker: digestChecker, Applier: l, Logger: slog.New(slog.DiscardHandler),
				Observe: func(idx uint64, r ApplyResult) { observed = append(observed, fmt.Sprintf("%d:%v", idx, r.Err == nil)) }})
			if err != nil {
				t.Fatal(err)
			}
			res := f.ApplyBatch(raftBatch(10, cmds...))
			if len(res) != len(cmds) {
				t.Fatalf("got %d results, want %d", len(res), len(cmds))
			}
			for i, w := range wants {
				got := res[i].(ApplyResult)
				switch {
				case w.err == nil && got.Err != nil:
					t.Errorf("command %d: got error %v, want appended at %d", i, got.Err, w.index)
				case w.err == nil && got.Index != w.index:
					t.Errorf("command %d: got index %d, want %d", i, got.Index, w.index)
				case w.err != nil && got.Err == nil:
					t.Errorf("command %d: appended at %d, want an error (%v)", i, got.Index, w.err)
				case w.err != nil && !errors.Is(got.Err, w.err) && !bytes.Contains([]byte(got.Err.Error()), []byte(w.err.Error())):
					t.Errorf("command %d: got error %v, want %v", i, got.Err, w.err)
				}
			}
			if len(observed) != len(cmds) {
				t.Errorf("observed %d commands, want %d", len(observed), len(cmds))
			}
			if f.Size() != 3 || l.Size() != 3 {
				t.Fatalf("FSM size %d, log size %d, want 3 and 3", f.Size(), l.Size())
			}
			if l.batches != 1 || l.appends != 0 {
				t.Errorf("the log got %d batches and %d single appends, want 1 and 0", l.batches, l.appends)
			}
			for i, e := range []string{"one", "two", "three"} {
				got, err := l.EntryAt(context.Background(), uint64(i))
				if err != nil {
					t.Fatal(err)
				}
				if string(got) != e {
					t.Errorf("log entry %d: got %q, want %q", i, got, e)
				}
			}
			if _, ok := f.Lookup(mustDigest(t, "two")); !ok {
				t.Error("the input of \"two\" is not recorded")
			}
			// The duplicates stay refused in a later batch too.
			later := f.ApplyBatch(raftBatch(20, good("three"), good("four")))
			if err := later[0].(ApplyResult).Err; !errors.Is(err, ErrDuplicateInput) {
				t.Errorf("\"three\" again in a later batch: got %v, want ErrDuplicateInput", err)
			}
			if r := later[1].(ApplyResult); r.Err != nil || r.Index != 3 {
				t.Errorf("\"four\": got %+v, want index 3", r)
			}
			cp, err := l.Publish(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			roots = append(roots, cp.Hash)
		})
	}
	for i := 1; i < len(roots); i++ {
		if !bytes.Equal(roots[i], roots[0]) {
			t.Errorf("replica %d's root %x differs from replica 0's %x", i, roots[i], roots[0])
		}
	}
}

func mustDigest(t *testing.T, entry string) string {
	t.Helper()
	d, err := digestChecker.CheckEntry([]byte(entry))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestFSMApplyBatchReplay: after a crash between the log's append and
// Raft's record of it, Raft replays a batch the log already holds in
// part; the held entries are compared, not appended again, and the rest
// is appended.
func TestFSMApplyBatchReplay(t *testing.T) {
	l := &countingLog{Log: openTestLog(t, filepath.Join(t.TempDir(), "log"))}
	for _, e := range []string{"one", "two"} {
		if _, err := l.Append(context.Background(), []byte(e)); err != nil {
			t.Fatal(err)
		}
	}
	f, _ := NewFSM(FSMOptions{Checker: digestChecker, Applier: l, Logger: slog.New(slog.DiscardHandler)})
	res := f.ApplyBatch(raftBatch(1, AppendEntryCommand([]byte("one")), AppendEntryCommand([]byte("two")), AppendEntryCommand([]byte("three"))))
	for i, r := range res {
		if r := r.(ApplyResult); r.Err != nil || r.Index != uint64(i) {
			t.Errorf("command %d: got %+v, want index %d", i, r, i)
		}
	}
	if l.Size() != 3 || f.Size() != 3 {
		t.Fatalf("log size %d, FSM size %d, want 3", l.Size(), f.Size())
	}
	// A replay that differs from the log stops the FSM.
	f2, _ := NewFSM(FSMOptions{Checker: digestChecker, Applier: l, Logger: slog.New(slog.DiscardHandler)})
	res = f2.ApplyBatch(raftBatch(1, AppendEntryCommand([]byte("one")), AppendEntryCommand([]byte("other")), AppendEntryCommand([]byte("four"))))
	if r := res[1].(ApplyResult); r.Err == nil {
		t.Error("a replayed entry that differs from the log was accepted")
	}
	if r := res[2].(ApplyResult); r.Err == nil || f2.Err() == nil {
		t.Errorf("the FSM went on after the log and Raft disagreed: %+v", r)
	}
	if l.Size() != 3 {
		t.Errorf("log size %d, want 3 (nothing appended after the disagreement)", l.Size())
	}
}

// failingBatchLog fails its batch appends.
type failingBatchLog struct{ *tlog.Log }

func (failingBatchLog) AppendBatch(context.Context, [][]byte) (uint64, error) {
	return 0, errors.New("disk on fire")
}

// TestFSMApplyBatchLogFails: a log that fails the batch stops the FSM;
// no entry of the batch is recorded as applied, and later commands get
// the error.
func TestFSMApplyBatchLogFails(t *testing.T) {
	l := failingBatchLog{openTestLog(t, filepath.Join(t.TempDir(), "log"))}
	f, _ := NewFSM(FSMOptions{Checker: digestChecker, Applier: l, Logger: slog.New(slog.DiscardHandler)})
	res := f.ApplyBatch(raftBatch(1, AppendEntryCommand([]byte("one")), AppendEntryCommand([]byte("bad")), AppendEntryCommand([]byte("two"))))
	for _, i := range []int{0, 2} {
		if r := res[i].(ApplyResult); r.Err == nil {
			t.Errorf("command %d: acknowledged although the log failed", i)
		}
	}
	if !errors.Is(res[1].(ApplyResult).Err, ErrRefused) {
		t.Errorf("command 1: got %v, want ErrRefused", res[1].(ApplyResult).Err)
	}
	if f.Size() != 0 {
		t.Errorf("FSM size %d, want 0", f.Size())
	}
	if _, ok := f.Lookup(mustDigest(t, "one")); ok {
		t.Error("the input of an entry the log did not take is recorded")
	}
	if r := f.Apply(&raft.Log{Index: 9, Type: raft.LogCommand, Data: AppendEntryCommand([]byte("three"))}).(ApplyResult); r.Err == nil {
		t.Error("the FSM went on after the log failed")
	}
}

// TestRaftClusterBatches proposes, from many callers at once, good
// entries, refused ones and several entries for one input, so that Raft
// commits them in batches: every replica applies the same sequence and
// holds the same log, each input once, and the FSMs did batch.
func TestRaftClusterBatches(t *testing.T) {
	c := newRaftCluster(t, 3)
	leader := c.leader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				e := fmt.Sprintf("entry %d", (w*20+i)%150) // 320 proposals, 150 inputs
				if i%7 == 3 {
					e = fmt.Sprintf("bad %d %d", w, i)
				}
				r, err := propose(ctx, leader, e)
				if err != nil {
					t.Error(err)
					return
				}
				switch {
				case r.Err == nil:
					mu.Lock()
					acked[e] = true
					mu.Unlock()
				case errors.Is(r.Err, ErrRefused) || errors.Is(r.Err, ErrDuplicateInput):
				default:
					t.Errorf("%q: %v", e, r.Err)
				}
			}
		}()
	}
	wg.Wait()
	c.check(acked)
	for e := range acked {
		if len(e) > 3 && e[:3] == "bad" {
			t.Errorf("refused entry %q was appended", e)
		}
	}
	st := leader.fsm.Stats()
	if st.Batches >= st.Entries {
		t.Logf("note: %d entries in %d batches (Raft did not batch this time)", st.Entries, st.Batches)
	}
	if got := len(leader.log.entries()); got != len(acked) || slices.Contains(leader.log.entries(), "") {
		t.Errorf("log holds %d entries, %d acknowledged", got, len(acked))
	}
}
