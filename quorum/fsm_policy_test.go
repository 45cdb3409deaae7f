package quorum

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/pyrsia/pyrsia-build/publish/policy/policytest"
)

// testChange is the log entry of a change from old to new approved by
// approvers.
func testChange(t testing.TB, old, new *policy.Policy, approvers ...*testNode) []byte {
	t.Helper()
	var signers []*attest.Signer
	for _, a := range approvers {
		signers = append(signers, a.signer)
	}
	return policytest.ChangeEntry(t, old, new, signers...)
}

// grownPolicy returns the policy of nodes[:n] and the one that adds
// nodes[n] to it.
func grownPolicy(t testing.TB, nodes []*testNode, n int) (old, grown *policy.Policy) {
	t.Helper()
	old = testPolicy(t, nodes[:n])
	grown = &policy.Policy{Version: 1, Name: old.Name, Nodes: append(append([]policy.Node{}, old.Nodes...), testPolicy(t, nodes[n:n+1]).Nodes[0])}
	if err := grown.Validate(); err != nil {
		t.Fatal(err)
	}
	return old, grown
}

// TestFSMPolicyChange: every node's FSM refuses a change a minority
// signed, applies one a majority signed at one log index, and judges the
// entries after it by the new policy: a sixth node joins and publishes
// with the new majority, the old majority is no longer enough.
func TestFSMPolicyChange(t *testing.T) {
	nodes := testNodes(t, 6)
	five, six := grownPolicy(t, nodes, 5)
	spec1, _ := testSpec(t, "demo:1")
	spec2, _ := testSpec(t, "demo:2")
	spec3, in3 := testSpec(t, "demo:3")
	cmds := [][]byte{
		testEntry(t, nodes[:3], spec1, "a"),                                           // 0: 3 of 5
		testChange(t, five, six, nodes[0], nodes[1]),                                  // refused: 2 of 5
		testChange(t, five, six, nodes[0], nodes[2], nodes[4]),                        // 1: 3 of 5
		testEntry(t, nodes[:3], spec2, "b"),                                           // refused: 3 of 6
		testEntry(t, []*testNode{nodes[1], nodes[2], nodes[3], nodes[5]}, spec3, "c"), // 2: 4 of 6
	}
	logs := commandLogs(cmds)
	run := func(t *testing.T, batch bool) *memLog {
		chain, err := policy.NewChain(five)
		if err != nil {
			t.Fatal(err)
		}
		l := &memLog{}
		f, err := NewFSM(FSMOptions{Checker: &ChainChecker{Chain: chain}, Applier: l, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		results := applyLogs(f, logs, batch)
		for i, want := range []bool{true, false, true, false, true} {
			if (results[i].Err == nil) != want {
				t.Errorf("command %d: got %v, want accepted=%v", i, results[i].Err, want)
			}
			if !want && !errors.Is(results[i].Err, ErrRefused) {
				t.Errorf("command %d: got %v, want ErrRefused", i, results[i].Err)
			}
		}
		if r := results[4]; r.Index != 2 || r.InputDigest != in3 {
			t.Errorf("the new majority's entry: got %+v, want index 2 for %s", r, in3)
		}
		if p, from := chain.Current(); p.Digest() != six.Digest() || from != 2 {
			t.Errorf("policy in force %s from %d, want %s from 2", p.Digest(), from, six.Digest())
		}
		return l
	}
	one := run(t, false)
	other := run(t, true) // another node, which gets the commands as one batch
	if len(one.entries) != 3 || len(other.entries) != 3 {
		t.Fatalf("logs of %d and %d entries, want 3 each", len(one.entries), len(other.entries))
	}
	for i := range one.entries {
		if string(one.entries[i]) != string(other.entries[i]) {
			t.Errorf("entry %d differs between the nodes", i)
		}
	}
}

// Regression (hostile review of the policy chain): ChainChecker.CheckEntry,
// the Checker method without an index, applied a policy change to the
// chain at the index the latest policy holds from. A caller checking a
// submitted change before proposing it (what a Checker is for) put a
// phantom change into the node's chain, in force over entries already in
// the log; the FSM then refused the real change at its index ("it
// replaces policy ..., but the policy in force is ...") and judged every
// later entry by a policy the network never applied.
func TestChainCheckerCheckEntryAppliesNothing(t *testing.T) {
	nodes := testNodes(t, 4)
	three, four := grownPolicy(t, nodes, 3)
	chain, err := policy.NewChain(three)
	if err != nil {
		t.Fatal(err)
	}
	c := &ChainChecker{Chain: chain}
	spec, _ := testSpec(t, "demo:1")
	if _, err := c.CheckEntryAt(0, testEntry(t, nodes[:2], spec, "a")); err != nil {
		t.Fatal(err)
	}
	change := testChange(t, three, four, nodes[0], nodes[1])
	key, err := c.CheckEntry(change)
	if err != nil || key != publish.PolicyKeyPrefix+four.Digest() {
		t.Fatalf("CheckEntry of an approved change: %q, %v", key, err)
	}
	if got := chain.Changes(); len(got) != 0 {
		t.Fatalf("CheckEntry applied the change to the chain at %v", got)
	}
	if _, err := c.CheckEntry(testChange(t, three, four, nodes[0])); err == nil {
		t.Fatal("CheckEntry accepted a change of one approval in three")
	}
	// The FSM's check at the change's real index applies it.
	if _, err := c.CheckEntryAt(1, change); err != nil {
		t.Fatalf("the change at its index after CheckEntry: %v", err)
	}
	if p, from := chain.Current(); p.Digest() != four.Digest() || from != 2 {
		t.Errorf("policy in force %s from %d, want %s from 2", p.Digest(), from, four.Digest())
	}
}

// parsedLog is a memLog that takes the entries' parses along
// (a ParsedBatchAppender, as logservice.Service is).
type parsedLog struct {
	memLog
	parsed []*publish.Entry
}

func (p *parsedLog) AppendBatch(ctx context.Context, es [][]byte) (uint64, error) {
	return p.AppendParsedBatch(ctx, es, nil)
}

func (p *parsedLog) AppendParsedBatch(_ context.Context, es [][]byte, parsed []*publish.Entry) (uint64, error) {
	first := p.Size()
	p.entries = append(p.entries, es...)
	for k := range es {
		var e *publish.Entry
		if k < len(parsed) {
			e = parsed[k]
		}
		p.parsed = append(p.parsed, e)
	}
	return first, nil
}

// The FSM's batch scan for policy changes takes bytes that start as a
// publish entry for one (publish.LogEntryKind) and checks the batch in
// parallel: a change approved by a majority but hidden behind a publish
// entry's prefix (a second "kind") is still refused by the full check,
// and not applied; the entries around it are appended, each with the
// Checker's parse passed on to the log, in either way of applying.
func TestFSMHiddenPolicyChangeRefused(t *testing.T) {
	nodes := testNodes(t, 4)
	three, four := grownPolicy(t, nodes, 3)
	change := testChange(t, three, four, nodes[0], nodes[1], nodes[2])
	rest, ok := bytes.CutPrefix(change, []byte(`{"v":1,"kind":"policy",`))
	if !ok {
		t.Fatalf("the change starts %.40q", change)
	}
	hidden := append([]byte(`{"v":1,"kind":"publish","kind":"policy",`), rest...)
	spec1, in1 := testSpec(t, "demo:1")
	spec2, in2 := testSpec(t, "demo:2")
	cmds := [][]byte{testEntry(t, nodes[:2], spec1, "a"), hidden, testEntry(t, nodes[1:3], spec2, "b")}
	logs := commandLogs(cmds)
	for _, batch := range []bool{true, false} {
		chain, err := policy.NewChain(three)
		if err != nil {
			t.Fatal(err)
		}
		l := &parsedLog{}
		f, err := NewFSM(FSMOptions{Checker: &ChainChecker{Chain: chain}, Applier: l, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		results := applyLogs(f, logs, batch)
		if r := results[1]; !errors.Is(r.Err, ErrRefused) {
			t.Errorf("batch=%v: the hidden change: %+v, want ErrRefused", batch, r)
		}
		if got := chain.Changes(); got != nil {
			t.Fatalf("batch=%v: the hidden change was applied at %v", batch, got)
		}
		if results[0].Err != nil || results[0].InputDigest != in1 || results[2].Err != nil || results[2].InputDigest != in2 || results[2].Index != 1 {
			t.Fatalf("batch=%v: the publish entries: %+v, %+v", batch, results[0], results[2])
		}
		if len(l.entries) != 2 {
			t.Fatalf("batch=%v: log of %d entries, want 2", batch, len(l.entries))
		}
		for k, e := range l.parsed {
			if e == nil {
				t.Errorf("batch=%v: entry %d: no parse passed to the log", batch, k)
				continue
			}
			if b, _ := e.MarshalBinary(); !bytes.Equal(b, l.entries[k]) {
				t.Errorf("batch=%v: entry %d: the parse passed on is not the entry's", batch, k)
			}
		}
	}
}

// commandLogs are Raft log entries, from index 1, appending cmds.
func commandLogs(cmds [][]byte) []*raft.Log {
	var logs []*raft.Log
	for i, c := range cmds {
		logs = append(logs, &raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: AppendEntryCommand(c)})
	}
	return logs
}

// applyLogs applies logs to f in one batch or one at a time, and returns
// the results.
func applyLogs(f *FSM, logs []*raft.Log, batch bool) []ApplyResult {
	var results []ApplyResult
	if batch {
		for _, r := range f.ApplyBatch(logs) {
			results = append(results, r.(ApplyResult))
		}
		return results
	}
	for _, lg := range logs {
		results = append(results, f.Apply(lg).(ApplyResult))
	}
	return results
}
