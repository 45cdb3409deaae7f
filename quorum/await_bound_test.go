package quorum

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
)

// TestAwaitPolicyBounded (review9): a validator that meets a policy
// digest not in force waits for it (AwaitPolicy, up to 5 s in a node),
// and it did so before it judged the author, for any number of messages
// at once. A stranger that a serving build node lets connect
// (Gater.AllowOthers; pubsub validates what any connected peer publishes
// on a subscribed topic, the peer filter only shapes the mesh) sent
// well-formed requests and votes under a made-up digest, each holding
// one of the topic validator's 1,024 slots for the whole wait: some 200
// small messages a second kept every slot busy, and the router dropped
// the build nodes' own requests and votes as throttled. Now the messages
// of authors outside the policy in force wait within one small pool per
// topic, and each member's within its own: the rest are judged at once
// by the policy in force (dropped). A member's message still waits.
func TestAwaitPolicyBounded(t *testing.T) {
	nodes := testNodes(t, 5)
	net := testNetwork(t, nodes[:3], NetworkOptions{})
	stranger, member := nodes[3], nodes[1]
	bogus := "sha256:" + strings.Repeat("7", 64)
	release := make(chan struct{})
	var waiting, most atomic.Int64
	g := validatorGossip(net, 10_000, 10_000)
	g.o.AwaitPolicy = func(ctx context.Context, digest string) *Network {
		n := waiting.Add(1)
		defer waiting.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		select {
		case <-release:
		case <-ctx.Done():
		}
		return nil
	}
	ctx := context.Background()
	spec, input := testSpec(t, "demo:await")
	const flood = 300
	var returned atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	results := map[pubsub.ValidationResult]int{}
	validate := func(f func() pubsub.ValidationResult) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := f()
			mu.Lock()
			results[r]++
			mu.Unlock()
			returned.Add(1)
		}()
	}
	for i := range flood {
		req, err := NewBuildRequest(RequestOptions{Policy: bogus, Spec: spec, Signer: stranger.signer})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := req.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		vote, err := testVote(t, bogus, stranger, spec, input, fmt.Sprint("artifact ", i)).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		validate(func() pubsub.ValidationResult {
			return g.validateRequest(ctx, stranger.id, gossipMsg(stranger.id, raw))
		})
		validate(func() pubsub.ValidationResult { return g.validateVote(ctx, stranger.id, gossipMsg(stranger.id, vote)) })
	}
	waitFor(t, 20*time.Second, "every stranger's message to be judged or waiting", func() bool {
		return returned.Load()+waiting.Load() == 2*flood
	})
	if n := waiting.Load(); n > 2*maxAwaitsOthers {
		t.Errorf("%d of a stranger's %d messages wait for a policy at once, want at most %d (of the validators' 1,024 slots a topic)", n, 2*flood, 2*maxAwaitsOthers)
	}
	// A member's message under a digest not in force still waits, the
	// strangers' pool full.
	before := waiting.Load()
	req, err := NewBuildRequest(RequestOptions{Policy: bogus, Spec: spec, Signer: member.signer})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	validate(func() pubsub.ValidationResult { return g.validateRequest(ctx, member.id, gossipMsg(member.id, raw)) })
	waitFor(t, 10*time.Second, "the member's request to wait for its policy", func() bool { return waiting.Load() == before+1 })
	close(release)
	wg.Wait()
	if results[pubsub.ValidationAccept] != 0 {
		t.Errorf("results %v: a message under a policy never in force was accepted", results)
	}
	if d := g.Drops(); d["requests/"+DropUnknownPeer]+d["votes/"+DropUnknownPeer] != 2*flood || d["requests/"+DropPolicy] != 1 {
		t.Errorf("drops %v, want the %d strangers' messages as unknown-peer and the member's as wrong-policy", d, 2*flood)
	}
	t.Logf("at most %d waiting at once", most.Load())
}

// TestStrangersMessagesNotParsed (review9): a message whose author is no
// build node of the policy in force, under that policy's digest, is
// dropped before it is parsed. The votes validator parsed a stranger's
// vote (its bundle and statement) before it judged the author: a 64 KiB
// statement of small JSON values takes megabytes of heap to parse, and
// the router runs up to 1,024 validations of a topic at once, so a
// stranger that a serving build node admits could make it hold gigabytes
// for a moment, for the price of sending 64 MiB. Dropped unparsed, such a
// vote allocates next to nothing; a member's vote is parsed as before.
func TestStrangersMessagesNotParsed(t *testing.T) {
	nodes := testNodes(t, 4)
	net := testNetwork(t, nodes[:3], NetworkOptions{})
	g := validatorGossip(net, 100_000, 100_000)
	g.o.Envelopes = NewVerifiedEnvelopes(0)
	stranger := nodes[3]
	raw := paddedVote(t, net.Digest(), stranger, "stranger", 8000)
	ctx := context.Background()
	if r := g.validateVote(ctx, stranger.id, gossipMsg(stranger.id, raw)); r != pubsub.ValidationReject {
		t.Fatalf("the stranger's vote: %v", r)
	}
	if _, parsed := g.o.Envelopes.StatementHits(); parsed != 0 {
		t.Errorf("the stranger's vote was parsed (%d statements) before its author was judged (drops %v)", parsed, g.Drops())
	}
	var ms runtime.MemStats
	heap := func() uint64 { runtime.ReadMemStats(&ms); return ms.TotalAlloc }
	const n = 20
	before := heap()
	for range n {
		g.validateVote(ctx, stranger.id, gossipMsg(stranger.id, raw))
	}
	if per := (heap() - before) / n; per > 16<<10 {
		t.Errorf("a stranger's %d-byte vote allocates %d bytes to be dropped, want under 16 KiB", len(raw), per)
	}
	spec, _ := testSpec(t, "demo:stranger")
	req, err := NewBuildRequest(RequestOptions{Policy: net.Digest(), Spec: spec, Signer: stranger.signer})
	if err != nil {
		t.Fatal(err)
	}
	rb, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if r := g.validateRequest(ctx, stranger.id, gossipMsg(stranger.id, rb)); r != pubsub.ValidationReject {
		t.Fatalf("the stranger's request: %v", r)
	}
	if d := g.Drops(); d["votes/"+DropUnknownPeer] != n+1 || d["requests/"+DropUnknownPeer] != 1 {
		t.Errorf("drops %v, want every stranger's message as unknown-peer", d)
	}
	mine := paddedVote(t, net.Digest(), nodes[1], "member", 8000)
	if r := g.validateVote(ctx, nodes[1].id, gossipMsg(nodes[1].id, mine)); r != pubsub.ValidationAccept {
		t.Fatalf("a member's vote: %v (drops %v)", r, g.Drops())
	}
	// A build node that a change adds, under the new policy's digest,
	// before this node applied the change: it waits, and is accepted
	// once the change is in force.
	next := testNetwork(t, nodes, NetworkOptions{Digest: "sha256:" + strings.Repeat("6", 64)})
	var cur atomic.Pointer[Network]
	cur.Store(net)
	g.o.Members = cur.Load
	g.o.AwaitPolicy = func(ctx context.Context, digest string) *Network {
		time.Sleep(50 * time.Millisecond)
		cur.Store(next)
		return next
	}
	added := paddedVote(t, next.Digest(), stranger, "added", 10)
	if r := g.validateVote(ctx, stranger.id, gossipMsg(stranger.id, added)); r != pubsub.ValidationAccept {
		t.Fatalf("the vote of a build node a change adds, under the change's digest: %v (drops %v)", r, g.Drops())
	}
}

// paddedVote is nd's vote under policy for a spec padded with n array
// elements (a statement of many small JSON values).
func paddedVote(t *testing.T, policy string, nd *testNode, tag string, n int) []byte {
	t.Helper()
	spec, _ := testSpec(t, "demo:"+tag)
	spec = []byte(strings.TrimSuffix(string(spec), "}") + `,"pad":[` + strings.Repeat("0,", n) + `0]}`)
	spec, input := canonSpec(t, spec)
	b := testBundle(t, nd.signer, spec, map[string]string{"demo": hexDigest(tag)})
	v, err := NewVote(testVoteFor(policy, input, nd.name), b, "sha256:"+hexDigest("m"+tag))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := v.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
