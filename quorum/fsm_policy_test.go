package quorum

import (
	"errors"
	"log/slog"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/pyrsia/pyrsia-build/attest"
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

// TestFSMPolicyChange: every node's FSM refuses a change a minority
// signed, applies one a majority signed at one log index, and judges the
// entries after it by the new policy: a sixth node joins and publishes
// with the new majority, the old majority is no longer enough.
func TestFSMPolicyChange(t *testing.T) {
	nodes := testNodes(t, 6)
	five := testPolicy(t, nodes[:5])
	six := &policy.Policy{Version: 1, Name: five.Name, Nodes: append(append([]policy.Node{}, five.Nodes...), testPolicy(t, nodes[5:]).Nodes[0])}
	if err := six.Validate(); err != nil {
		t.Fatal(err)
	}
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
	var logs []*raft.Log
	for i, c := range cmds {
		logs = append(logs, &raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: AppendEntryCommand(c)})
	}
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
		var results []ApplyResult
		if batch {
			for _, r := range f.ApplyBatch(logs) {
				results = append(results, r.(ApplyResult))
			}
		} else {
			for _, lg := range logs {
				results = append(results, f.Apply(lg).(ApplyResult))
			}
		}
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
