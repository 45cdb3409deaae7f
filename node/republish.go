package node

import (
	"context"
	"sync"
	"time"

	"github.com/pyrsia/pyrsia-build/quorum"
)

// Gossip gives no delivery guarantee: a message published while the mesh
// is still forming is lost even when the topic lists the peers, and a build
// node that never saw a request would never build or vote on it. So a node
// gossips the requests it signed again, at growing intervals (1s, 2s, 4s,
// then every 8s), until their round has a verdict, every policy node has
// voted, or the deadline passes (an entry in the log is not enough: the
// votes after it are the dissent status shows). The signed request is the
// same each time: nodes that have it already ignore the copy.

// maxOwnRequests bounds the requests a node keeps gossiping; past it, the
// oldest are dropped (they were sent at least once).
const maxOwnRequests = 1000

type ownRequest struct {
	req   *quorum.BuildRequest
	start time.Time
	next  time.Time
	wait  time.Duration
}

type ownRequests struct {
	mu       sync.Mutex
	deadline time.Duration
	reqs     map[string]*ownRequest // by request id
}

func newOwnRequests(deadline time.Duration) *ownRequests {
	return &ownRequests{deadline: deadline, reqs: map[string]*ownRequest{}}
}

// add remembers req, just gossiped for the first time.
func (o *ownRequests) add(req *quorum.BuildRequest) {
	now := time.Now()
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.reqs) >= maxOwnRequests {
		var oldest string
		for id, r := range o.reqs {
			if oldest == "" || r.start.Before(o.reqs[oldest].start) {
				oldest = id
			}
		}
		delete(o.reqs, oldest)
	}
	o.reqs[req.ID()] = &ownRequest{req: req, start: now, next: now.Add(time.Second), wait: time.Second}
}

// due returns the requests to gossip again now, forgetting those whose
// round is over (done reports it) or whose deadline passed.
func (o *ownRequests) due(now time.Time, done func(*quorum.BuildRequest) bool) []*quorum.BuildRequest {
	o.mu.Lock()
	defer o.mu.Unlock()
	var out []*quorum.BuildRequest
	for id, r := range o.reqs {
		switch {
		case now.Sub(r.start) > o.deadline || done(r.req):
			delete(o.reqs, id)
		case !now.Before(r.next):
			out = append(out, r.req)
			r.wait = min(2*r.wait, 8*time.Second)
			r.next = now.Add(r.wait)
		}
	}
	return out
}

// republishLoop gossips this node's open requests again (see above).
func (n *Node) republishLoop(ctx context.Context) error {
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			for _, req := range n.mine.due(now, n.requestSettled) {
				pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				if err := n.gossip.PublishRequest(pctx, req, quorum.PublishOptions{}); err != nil && ctx.Err() == nil {
					n.log.DebugContext(ctx, "gossiping a request again", "input", req.InputDigest, "err", err)
				}
				cancel()
			}
		}
	}
}

// requestSettled reports whether the round of req needs no more votes: the
// round has a verdict, or every build node of the policy the round opened
// under has voted. An entry in the log does not settle it: a node that
// missed the request still votes when it comes (its word on the build,
// the dissent status shows), and a round that is final within a second
// would otherwise leave a node that lost the first copy without a vote
// for good. The deadline bounds the gossiping again (ownRequests.due).
func (n *Node) requestSettled(req *quorum.BuildRequest) bool {
	n.mu.Lock()
	r := n.byRequest[req.ID()]
	settled := r != nil && (r.verdict != nil || len(r.votes) >= len(r.net.Members()))
	n.mu.Unlock()
	if r == nil {
		// Not seen back yet, or forgotten after its grace.
		_, ok := n.fsm.Lookup(req.InputDigest)
		return ok
	}
	return settled
}
