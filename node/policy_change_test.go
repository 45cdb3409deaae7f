package node

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/pyrsia/pyrsia-build/quorum"
)

// changeBy is the log entry of a change from old to new approved by the
// cluster's nodes at idx.
func (c *cluster) changeBy(old, new *policy.Policy, idx ...int) []byte {
	c.t.Helper()
	ch := &policy.Change{Previous: old.Digest(), New: new}
	for _, i := range idx {
		if _, err := ch.Approve(old, c.nodes[i].keys.Cosign); err != nil {
			c.t.Fatal(err)
		}
	}
	b, err := publish.MarshalPolicyChange(ch)
	if err != nil {
		c.t.Fatal(err)
	}
	return b
}

// proposeOnLeader proposes cmd on the Raft leader, and on the next one
// when the node found no longer leads (just after the first election, as
// the nodes start one after another, a leader may lose it): a follower
// enqueues nothing. A leadership lost once the command was enqueued is
// returned (the command may still be applied).
func (c *cluster) proposeOnLeader(ctx context.Context, cmd []byte) (any, error) {
	c.t.Helper()
	for {
		res, err := c.nodes[c.leader(ctx)].node.raft.Propose(ctx, cmd)
		if err == nil || !errors.Is(err, raft.ErrNotLeader) || ctx.Err() != nil {
			return res, err
		}
		c.t.Logf("proposing: %v; again", err)
	}
}

// TestPolicyChangeInTheLog: a change a minority approved is refused by
// every node's FSM, even proposed by the leader; one a majority approved
// is applied by every node at the same index, and a proof bundle of a
// later entry carries it and verifies from the first policy.
func TestPolicyChangeInTheLog(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.startAll()
	ctx := c.ctx()
	open := *c.policy
	open.Open = true
	res, err := c.proposeOnLeader(ctx, quorum.AppendEntryCommand(c.changeBy(c.policy, &open, 0)))
	if err != nil {
		t.Fatal(err)
	}
	if r := res.(quorum.ApplyResult); !errors.Is(r.Err, quorum.ErrRefused) {
		t.Fatalf("a minority's change: got %+v, want ErrRefused", r)
	}
	res, err = c.proposeOnLeader(ctx, quorum.AppendEntryCommand(c.changeBy(c.policy, &open, 0, 2)))
	if err != nil {
		t.Fatal(err)
	}
	if r := res.(quorum.ApplyResult); r.Err != nil || r.Index != 0 {
		t.Fatalf("a majority's change: got %+v, want it at index 0", r)
	}
	// Every node applies it, at index 0, and nothing else, and acts on
	// it: the FSM's chain holds the change a moment before the node acts
	// on it (FSM observer, followChain), and a request signed in between
	// names the old policy, which the nodes acting on the new one drop.
	for _, tn := range c.nodes {
		for tn.node.chain.Changes() == nil || tn.node.net().Digest() != open.Digest() {
			select {
			case <-ctx.Done():
				t.Fatalf("%s did not apply the change and act on it", tn.name)
			case <-time.After(20 * time.Millisecond):
			}
		}
		if p, from := tn.node.chain.Current(); p.Digest() != open.Digest() || from != 1 {
			t.Errorf("%s: policy %s from %d, want %s from 1", tn.name, p.Digest(), from, open.Digest())
		}
	}
	spec := testSpec(1)
	input, evs := c.publish(ctx, 0, spec)
	if ev := lastEvent(evs); ev.Type != EventFinal {
		t.Fatalf("round ended with %+v, want final", ev)
	}
	n := c.nodes[0].node
	rec, _ := n.Log().Index().ByInputDigest(input)
	if _, err := n.Log().WaitFinal(ctx, rec.LogIndex+1); err != nil {
		t.Fatal(err)
	}
	pb, err := n.Log().ProofBundle(ctx, rec.LogIndex)
	if err != nil {
		t.Fatal(err)
	}
	if len(pb.PolicyChanges) != 1 || pb.PolicyChanges[0].Index != 0 {
		t.Fatalf("the proof bundle carries %+v, want the change at 0", pb.PolicyChanges)
	}
	a := attest.Artifact{Name: "hello-1.0.pom", Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(expected(t, spec))), nil }}
	ev, err := publish.VerifyProofChain(ctx, a, pb, c.policy, publish.ProofOptions{})
	if err != nil {
		t.Fatalf("VerifyProofChain from the first policy: %v", err)
	}
	if ev.Policy != open.Digest() {
		t.Errorf("policy in force %s, want %s", ev.Policy, open.Digest())
	}
	if got := n.Log().Size(); got != 2 {
		t.Errorf("log size %d, want 2 (the change and the entry)", got)
	}
}
