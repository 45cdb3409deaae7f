package quorum

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/pyrsia/pyrsia-build/publish/policy"
)

// brokenLog is a BatchAppender whose appends all fail (a full disk).
type brokenLog struct{ memApplier }

func (f *brokenLog) AppendBatch(context.Context, [][]byte) (uint64, error) {
	return 0, errors.New("disk full")
}

func (f *brokenLog) Append(context.Context, []byte) (uint64, error) {
	return 0, errors.New("disk full")
}

// TestCatchupChangeNotAppliedBeforeAppend: a catch-up whose append of a
// policy change fails leaves the chain without the change: the node would
// otherwise judge the entries after it by a policy its log does not hold.
// An append that succeeds applies the change.
func TestCatchupChangeNotAppliedBeforeAppend(t *testing.T) {
	nodes := testNodes(t, 6)
	five, six := grownPolicy(t, nodes, 5)
	spec1, _ := testSpec(t, "demo:1")
	spec2, _ := testSpec(t, "demo:2")
	peer := [][]byte{
		testEntry(t, nodes[:3], spec1, "a"),
		testChange(t, five, six, nodes[0], nodes[2], nodes[4]),
		testEntry(t, []*testNode{nodes[1], nodes[2], nodes[3], nodes[5]}, spec2, "b"),
	}
	for _, batch := range []uint64{1, 2, 3} {
		chain, err := policy.NewChain(five)
		if err != nil {
			t.Fatal(err)
		}
		c := &CheckedCatchup{Source: sliceSource(peer), Checker: &ChainChecker{Chain: chain}, Batch: batch}
		err = c.CatchUpInputs(context.Background(), &brokenLog{}, 0, 3, map[string]uint64{})
		if err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("batch %d: catch-up into a log that cannot append: %v, want the append's error", batch, err)
		}
		if got := chain.Changes(); len(got) != 0 {
			t.Fatalf("batch %d: the append failed, yet the chain holds changes at %v", batch, got)
		}

		chain, err = policy.NewChain(five)
		if err != nil {
			t.Fatal(err)
		}
		log := &batchApplier{}
		c = &CheckedCatchup{Source: sliceSource(peer), Checker: &ChainChecker{Chain: chain}, Batch: batch}
		if err := c.CatchUpInputs(context.Background(), log, 0, 3, map[string]uint64{}); err != nil {
			t.Fatalf("batch %d: %v", batch, err)
		}
		if got := chain.Changes(); len(got) != 1 || got[0] != 1 {
			t.Fatalf("batch %d: the chain holds changes at %v, want [1]", batch, got)
		}
		if len(log.entries) != 3 {
			t.Fatalf("batch %d: the log has %d entries, want 3", batch, len(log.entries))
		}
	}
}

// TestCatchupRefusedBeforeChangeKeepsChainWithLog: a fetch whose entry
// after a change is refused (a second entry for an input) stops there:
// the change after the refused entry is not in the log, nor in the chain.
func TestCatchupRefusedBeforeChangeKeepsChainWithLog(t *testing.T) {
	nodes := testNodes(t, 6)
	five, six := grownPolicy(t, nodes, 5)
	seven := &policy.Policy{Version: 1, Name: five.Name, Nodes: six.Nodes[1:]}
	if err := seven.Validate(); err != nil {
		t.Fatal(err)
	}
	spec1, in1 := testSpec(t, "demo:1")
	peer := [][]byte{
		testEntry(t, nodes[:3], spec1, "a"),
		testChange(t, five, six, nodes[0], nodes[2], nodes[4]),
		testEntry(t, nodes[1:5], spec1, "a"), // a second entry for in1
		testChange(t, six, seven, nodes[1], nodes[2], nodes[3], nodes[5]),
	}
	chain, err := policy.NewChain(five)
	if err != nil {
		t.Fatal(err)
	}
	log := &batchApplier{}
	c := &CheckedCatchup{Source: sliceSource(peer), Checker: &ChainChecker{Chain: chain}, Batch: 4}
	err = c.CatchUpInputs(context.Background(), log, 0, 4, map[string]uint64{})
	if !errors.Is(err, ErrDuplicateInput) {
		t.Fatalf("a second entry for %s: %v, want ErrDuplicateInput", in1, err)
	}
	if len(log.entries) != 2 {
		t.Fatalf("the log has %d entries, want 2", len(log.entries))
	}
	if got := chain.Changes(); len(got) != 1 || got[0] != 1 {
		t.Fatalf("the chain holds changes at %v, want [1] (those of the log)", got)
	}
}
