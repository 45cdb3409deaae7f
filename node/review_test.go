package node

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pyrsia/pyrsia-build/builder"
	"github.com/pyrsia/pyrsia-build/quorum"
)

// Regression tests for the findings of a hostile review of the build
// network; each failed on the code as reviewed.

// flaky fails the first build of each input, then builds honestly (a
// transient failure: a registry down, a full disk).
type flaky struct {
	mu   sync.Mutex
	seen map[string]bool
}

func (f *flaky) Build(ctx context.Context, spec *builder.Spec, out string) (*builder.Result, error) {
	input, _ := spec.InputDigest()
	f.mu.Lock()
	first := !f.seen[input]
	f.seen[input] = true
	f.mu.Unlock()
	if first {
		return failingBuild(ctx, spec, out)
	}
	return fakeBuild("honest")(ctx, spec, out)
}

// A round that got a verdict keeps it for the life of the process: votes
// for its input are no longer counted (voteLoop: r.verdict == nil) and
// nothing is proposed (maybePropose), so a new request for the same input
// never publishes, even when every node now agrees. The same path lets a
// single faulty build node censor an input in advance: a vote for a
// predictable input digest opens a round on every node, whose verdict at
// the deadline then blocks the real request.
func TestReviewRetryAfterVerdictNeverPublishes(t *testing.T) {
	c := newCluster(t, 3, map[int]Builder{0: &flaky{seen: map[string]bool{}}, 1: &flaky{seen: map[string]bool{}}, 2: &flaky{seen: map[string]bool{}}})
	c.deadline = 2 * time.Second
	c.startAll()
	ctx := c.ctx()
	spec := testSpec(41)
	input, evs := c.publish(ctx, 0, spec)
	if ev := lastEvent(evs); ev.Type != EventVerdict {
		t.Fatalf("first round ended with %+v, want a verdict (every build failed)", ev)
	}
	// Every node would now build it: ask again.
	if _, err := c.nodes[0].node.Publish(ctx, spec); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * c.deadline)
	for time.Now().Before(deadline) {
		if _, ok := c.nodes[0].node.fsm.Lookup(input); ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: re-requested after a no-quorum verdict, with every node now building it, and not published after %v", input, 3*c.deadline)
}

// The API signs every POSTed spec with the node's own cosign key (a build
// node may always request). It accepts a cross-site "simple" request (a
// form or fetch() with Content-Type text/plain from any web page the
// operator opens), so any web page can make the network build specs of its
// choice under this node's name. It must refuse a request with a foreign
// Origin (or demand a token / a JSON content type that forces a CORS
// preflight).
func TestReviewAPIPublishAcceptsCrossSiteRequest(t *testing.T) {
	n := &Node{}
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:7888/v1/publish", strings.NewReader("not: [a spec"))
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Content-Type", "text/plain")
	rec := httptest.NewRecorder()
	n.servePublish(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("a cross-origin text/plain POST reached Publish (status %d: %s), want 403 before the spec is read", rec.Code, strings.TrimSpace(rec.Body.String()))
	}
}

// One faulty build node censors an input before anyone asks for it: input
// digests are predictable (the sha256 of the spec, e.g. the next release's),
// and a single failed vote opens a round on every node. At the deadline
// each node stores a verdict, and from then on the real request's votes
// are ignored: the input is never published, with every node honest but
// one.
func TestReviewPreVoteCensorsInput(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.deadline = 2 * time.Second
	c.startAll()
	ctx := c.ctx()
	c.leader(ctx)
	spec := testSpec(43)
	s, err := builder.ParseSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	input, _ := s.InputDigest()
	evil := c.nodes[2].node
	v, err := quorum.NewFailedVote(quorum.VoteFor{Policy: evil.net().Digest(), Request: "sha256:" + strings.Repeat("0", 64), InputDigest: input, Node: c.nodes[2].name}, "censored")
	if err != nil {
		t.Fatal(err)
	}
	if err := evil.gossip.PublishVote(ctx, v, quorum.PublishOptions{MinPeers: 2}); err != nil {
		t.Fatal(err)
	}
	// node-a holds the vote aside (no request opened a round for it) and
	// makes no verdict of it.
	a := c.nodes[0].node
	for {
		a.mu.Lock()
		buffered, rounds := a.pending.len(), len(a.rounds)
		a.mu.Unlock()
		if rounds > 0 {
			t.Fatalf("node-c's lone vote for %s opened a round on node-a", input)
		}
		if buffered > 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("node-a never received node-c's vote")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if v, _ := a.LastVerdict(input); v != nil {
		t.Fatalf("a verdict before any request: %s", v.Text)
	}
	if _, err := c.nodes[0].node.Publish(ctx, spec); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * c.deadline)
	for time.Now().Before(deadline) {
		if _, ok := c.nodes[0].node.fsm.Lookup(input); ok {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s: requested after node-c's lone pre-vote, node-a and node-b honest (2 of 3 needed), and not published after %v", input, 3*c.deadline)
}

// A requester that floods is not slowed: quorum.Scheduler (a token bucket
// per requester, quorum/rate.go) is not used by the daemon, and
// requestLoop starts one goroutine per validated request, each parked on
// the build semaphore, plus a round per input that is never forgotten.
// 300 requests from one requester hold ~300 goroutines and 300 rounds.
func TestReviewRequestFloodIsNotRateLimited(t *testing.T) {
	block := make(chan struct{})
	slow := BuilderFunc(func(ctx context.Context, spec *builder.Spec, out string) (*builder.Result, error) {
		select {
		case <-block:
			return nil, errors.New("test over")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
	c := newCluster(t, 1, map[int]Builder{0: slow})
	c.deadline = time.Minute
	c.startAll()
	t.Cleanup(func() { close(block) })
	ctx := c.ctx()
	c.leader(ctx)
	n := c.nodes[0].node
	before := runtime.NumGoroutine()
	const flood = 300
	for i := range flood {
		if _, err := n.Publish(ctx, testSpec(1000+i)); err != nil {
			t.Fatal(err)
		}
	}
	for n.requests.Load() < flood { // gossip delivers them to the request loop
		select {
		case <-ctx.Done():
			t.Fatalf("the request loop received %d of %d requests", n.requests.Load(), flood)
		case <-time.After(20 * time.Millisecond):
		}
	}
	n.mu.Lock()
	rounds := len(n.rounds)
	n.mu.Unlock()
	grew := runtime.NumGoroutine() - before
	if grew > flood/3 || rounds > flood/3 {
		t.Fatalf("%d requests from one requester: %d more goroutines, %d open rounds; want the requester slowed (a bounded queue per requester)", flood, grew, rounds)
	}
}
