package node

import (
	"context"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pyrsia/pyrsia-build/quorum"
)

// deafToRequests makes node i ignore every gossiped build request (its
// requests topic validator replaced by one that ignores all), as a node
// that missed a request would.
func (c *cluster) deafToRequests(i int) {
	c.t.Helper()
	n := c.nodes[i].node
	reqTopic, _ := quorum.Topics(n.net().Digest())
	ps := n.gossip.PubSub()
	if err := ps.UnregisterTopicValidator(reqTopic); err != nil {
		c.t.Fatal(err)
	}
	if err := ps.RegisterTopicValidator(reqTopic, func(context.Context, peer.ID, *pubsub.Message) pubsub.ValidationResult {
		return pubsub.ValidationIgnore
	}); err != nil {
		c.t.Fatal(err)
	}
}

// A node that saw the votes of a request before the request itself (its
// round opened from the majority's votes) builds and votes once the
// request comes, even though the entry is in the log by then.
func TestRoundFromVotesVotesWhenRequestComes(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.startAll()
	ctx := c.ctx()
	c.leader(ctx)
	// Votes are gossiped once: one published before node-c subscribed
	// never reaches it (a round of fakes can be final within half a
	// second of node-c's start), and node-c then has no quorum of votes
	// to open its round from.
	c.waitGossip(ctx, 2)
	c.deafToRequests(2)
	spec := testSpec(70)
	input, evs := c.publish(ctx, 0, spec)
	if ev := lastEvent(evs); ev.Type != EventFinal {
		t.Fatalf("round ended with %v, want final (node-a and node-b agree)", ev)
	}
	a, cn := c.nodes[0].node, c.nodes[2].node
	// node-c's round opened from node-a's and node-b's votes.
	var r *round
	for r == nil {
		cn.mu.Lock()
		if rr := cn.rounds[input]; rr != nil && len(rr.votes) >= 2 {
			r = rr
		}
		cn.mu.Unlock()
		select {
		case <-ctx.Done():
			t.Fatal("node-c opened no round from the votes of node-a and node-b")
		case <-time.After(10 * time.Millisecond):
		}
	}
	cn.mu.Lock()
	fromVotes, mine := r.req == nil, r.votes["node-c"]
	cn.mu.Unlock()
	if !fromVotes || mine != nil {
		t.Fatalf("node-c's round: opened from votes %v, own vote %v; want a round from votes without node-c's vote", fromVotes, mine)
	}
	// The request reaches node-c late (as its request loop hands it on).
	a.mu.Lock()
	req := a.rounds[input].req
	a.mu.Unlock()
	from, _ := cn.net().ByName("node-a")
	if !cn.sched.Submit(quorum.Received[*quorum.BuildRequest]{Msg: req, From: from, PeerID: a.Host().ID()}) {
		t.Fatal("node-c's scheduler refused the request")
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	c.waitVotes(wctx, 0, input, 3)
	if b, err := cn.builds.get(input); err != nil || b == nil {
		t.Errorf("node-c has no build of %s (err %v)", input, err)
	}
}
