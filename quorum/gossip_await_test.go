package quorum

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
)

// TestGossipAwaitsAPolicyChange: nodes apply a policy change at the same
// log index, not at the same instant. A vote gossiped under the new
// policy by a node that applied it first reaches a node a little behind:
// without AwaitPolicy it is dropped (and the router's seen-cache drops
// its copies for minutes, so its round stalls); with it, the validator
// waits for the node to apply the change and accepts it.
func TestGossipAwaitsAPolicyChange(t *testing.T) {
	for _, await := range []bool{false, true} {
		t.Run(map[bool]string{false: "without", true: "with"}[await], func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			nodes := testNodes(t, 2)
			first := testNetwork(t, nodes, NetworkOptions{})
			next := testNetwork(t, nodes, NetworkOptions{Digest: "sha256:" + strings.Repeat("5", 64)})
			hosts := []host.Host{startHost(t, nodes[0].key, NewGater(first.PeerIDs())), startHost(t, nodes[1].key, NewGater(first.PeerIDs()))}
			connectAll(t, hosts)
			var behind atomic.Pointer[Network]
			behind.Store(first)
			o := GossipOptions{Host: hosts[1], Network: first, Members: behind.Load}
			if await {
				o.AwaitPolicy = func(ctx context.Context, digest string) *Network {
					for ctx.Err() == nil {
						if n := behind.Load(); n.Digest() == digest {
							return n
						}
						time.Sleep(5 * time.Millisecond)
					}
					return nil
				}
			}
			ahead, err := NewGossip(ctx, GossipOptions{Host: hosts[0], Network: first, Members: func() *Network { return next }})
			if err != nil {
				t.Fatal(err)
			}
			defer ahead.Close()
			late, err := NewGossip(ctx, o)
			if err != nil {
				t.Fatal(err)
			}
			defer late.Close()
			waitFor(t, 10*time.Second, "the two nodes to see each other on the votes topic", func() bool {
				_, a := ahead.Peers()
				_, b := late.Peers()
				return len(a) == 1 && len(b) == 1
			})
			spec, input := testSpec(t, "demo:1")
			if err := ahead.PublishVote(ctx, testVote(t, next.Digest(), nodes[0], spec, input, "artifact"), PublishOptions{MinPeers: 1}); err != nil {
				t.Fatal(err)
			}
			// The late node applies the change 300 ms later.
			time.AfterFunc(300*time.Millisecond, func() { behind.Store(next) })
			vctx, vcancel := context.WithTimeout(ctx, 3*time.Second)
			defer vcancel()
			got, err := late.NextVote(vctx)
			switch {
			case await && err != nil:
				t.Fatalf("the vote under the new policy was not delivered: %v; drops %v, at the sender %v", err, late.Drops(), ahead.Drops())
			case await && got.Msg.Policy != next.Digest():
				t.Fatalf("delivered a vote of policy %s", got.Msg.Policy)
			case !await && err == nil:
				t.Fatalf("without AwaitPolicy the vote was delivered (the test shows nothing)")
			case !await && late.Drops()["votes/"+DropPolicy] == 0:
				t.Fatalf("without AwaitPolicy: drops %v, want a policy drop", late.Drops())
			}
		})
	}
}
