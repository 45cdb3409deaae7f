package quorum

import (
	"context"
	"fmt"
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
