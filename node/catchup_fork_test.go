package node

import (
	"context"
	"strings"
	"testing"
)

// TestCatchUpRefusesAFork: a node whose own log entries are not the
// peers' (its log has forked: entry 1 differs) stops its catch-up with
// the evidence (the index, both entries' digests, the checkpoint that
// proves the network's) before appending anything: its log is not
// extended, and its own entries are left as they were.
func TestCatchUpRefusesAFork(t *testing.T) {
	cp := newCatchupPeer(t, 6)
	ctx := context.Background()
	l := cp.wiped(t, "forked")
	t.Cleanup(func() { l.Close() })
	own0, err := cp.svc.EntryAt(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	other, err := benchEntry(1000, cp.keys[1:]) // attested by node-b and node-c: valid, but not the network's entry 1
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.AppendBatch(ctx, [][]byte{own0, other}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	err = cp.entries(l).catchup().CatchUpInputs(ctx, l, 2, 6, map[string]uint64{})
	if err == nil || !strings.Contains(err.Error(), "entry 1") || !strings.Contains(err.Error(), "forked") {
		t.Fatalf("catching up a forked log: got %v, want the fork at entry 1 named", err)
	}
	if l.Size() != 2 {
		t.Fatalf("the forked log was extended to %d entries", l.Size())
	}
	if got, _ := l.Entry(ctx, 1); string(got) != string(other) {
		t.Fatal("the node's own entry 1 was overwritten")
	}

	// The same log without the fork catches up.
	good := cp.wiped(t, "good")
	t.Cleanup(func() { good.Close() })
	own1, err := cp.svc.EntryAt(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := good.AppendBatch(ctx, [][]byte{own0, own1}); err != nil {
		t.Fatal(err)
	}
	if _, err := good.Publish(ctx); err != nil {
		t.Fatal(err)
	}
	if err := cp.entries(good).catchup().CatchUpInputs(ctx, good, 2, 6, map[string]uint64{}); err != nil {
		t.Fatal(err)
	}
	if good.Size() != 6 {
		t.Fatalf("caught up to %d entries, want 6", good.Size())
	}
}
