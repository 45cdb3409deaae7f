package quorum

import (
	"context"
	"strings"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pyrsia/pyrsia-build/attest"
)

// gossipNet is a test network: honest nodes running Gossip and, at the end,
// faulty nodes running a bare gossipsub router without validators (as
// modified software would) on the same topics.
type gossipNet struct {
	nodes  []*testNode
	net    *Network
	hosts  []host.Host
	gs     []*Gossip // nil for faulty nodes
	raw    []*pubsub.Topic
	gaters []*Gater
}

func newGossipNet(t testing.TB, honest, faulty int, o NetworkOptions) *gossipNet {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	n := honest + faulty
	gn := &gossipNet{nodes: testNodes(t, n)}
	gn.net = testNetwork(t, gn.nodes, o)
	for _, nd := range gn.nodes {
		g := NewGater(gn.net.PeerIDs())
		gn.gaters = append(gn.gaters, g)
		gn.hosts = append(gn.hosts, startHost(t, nd.key, g))
	}
	connectAll(t, gn.hosts)
	reqName, voteName := Topics(gn.net.Digest())
	for i, h := range gn.hosts {
		if i < honest {
			g, err := NewGossip(ctx, GossipOptions{Host: h, Network: gn.net})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { g.Close() })
			gn.gs = append(gn.gs, g)
			gn.raw = append(gn.raw, nil, nil)
			continue
		}
		// A faulty node: the same router, its validators removed.
		g, err := NewGossip(ctx, GossipOptions{Host: h, Network: gn.net})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { g.Close() })
		if err := g.ps.UnregisterTopicValidator(reqName); err != nil {
			t.Fatal(err)
		}
		if err := g.ps.UnregisterTopicValidator(voteName); err != nil {
			t.Fatal(err)
		}
		rt, vt := g.reqTopic, g.votTopic
		gn.gs = append(gn.gs, nil)
		gn.raw = append(gn.raw, rt, vt)
	}
	waitFor(t, 10*time.Second, "every honest node to see every peer on both topics", func() bool {
		for i, g := range gn.gs {
			if g == nil {
				r, v := gn.raw[2*i].ListPeers(), gn.raw[2*i+1].ListPeers()
				if len(r) < n-1 || len(v) < n-1 {
					return false
				}
				continue
			}
			r, v := g.Peers()
			if len(r) < n-1 || len(v) < n-1 {
				return false
			}
		}
		return true
	})
	return gn
}

func (gn *gossipNet) honest() []*Gossip {
	var out []*Gossip
	for _, g := range gn.gs {
		if g != nil {
			out = append(out, g)
		}
	}
	return out
}

func TestGossipRequestsAndVotes(t *testing.T) {
	requester := testSigner(t, 10)
	gn := newGossipNet(t, 4, 0, NetworkOptions{Requesters: []*attest.PublicKey{publicKey(t, requester, "requester")}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	spec, input := testSpec(t, "demo:1")
	req, err := NewBuildRequest(RequestOptions{Policy: gn.net.Digest(), Spec: spec, Signer: requester})
	if err != nil {
		t.Fatal(err)
	}
	if req.InputDigest != input {
		t.Fatalf("got input digest %s, want %s", req.InputDigest, input)
	}
	if err := gn.gs[0].PublishRequest(ctx, req, PublishOptions{MinPeers: 3}); err != nil {
		t.Fatal(err)
	}
	for i, g := range gn.gs {
		got, err := g.NextRequest(ctx)
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		if got.Msg.InputDigest != input || got.From.Name != "node-a" || got.Local != (i == 0) {
			t.Fatalf("node %d: got request %s from %s (local %v), want %s from node-a", i, got.Msg.InputDigest, got.From.Name, got.Local, input)
		}
	}
	for i, g := range gn.gs {
		v := testVote(t, gn.net.Digest(), gn.nodes[i], spec, input, "artifact")
		if err := g.PublishVote(ctx, v, PublishOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	for i, g := range gn.gs {
		seen := map[string]bool{}
		for len(seen) < 4 {
			got, err := g.NextVote(ctx)
			if err != nil {
				t.Fatalf("node %d: got votes from %v, then %v", i, seen, err)
			}
			if got.Msg.Node != got.From.Name || got.PeerID != got.From.PeerID {
				t.Fatalf("node %d: vote of %q delivered as from %q", i, got.Msg.Node, got.From.Name)
			}
			seen[got.Msg.Node] = true
		}
	}
	for i, g := range gn.gs {
		if d := g.Drops(); len(d) != 0 {
			t.Errorf("node %d dropped %v, want nothing dropped", i, d)
		}
	}
}

// TestGossipOwnRequestAgain: a request its node gossips again reaches its
// own subscription marked Again (the first copy is not); the peer that has
// it drops the copy as a replay.
func TestGossipOwnRequestAgain(t *testing.T) {
	requester := testSigner(t, 10)
	gn := newGossipNet(t, 2, 0, NetworkOptions{Requesters: []*attest.PublicKey{publicKey(t, requester, "requester")}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	spec, _ := testSpec(t, "demo:1")
	req, err := NewBuildRequest(RequestOptions{Policy: gn.net.Digest(), Spec: spec, Signer: requester})
	if err != nil {
		t.Fatal(err)
	}
	a, b := gn.gs[0], gn.gs[1]
	for i, want := range []bool{false, true} {
		if err := a.PublishRequest(ctx, req, PublishOptions{MinPeers: 1}); err != nil {
			t.Fatal(err)
		}
		got, err := a.NextRequest(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Local || got.Again != want {
			t.Fatalf("copy %d: local %v, again %v; want local, again %v", i+1, got.Local, got.Again, want)
		}
	}
	if got, err := b.NextRequest(ctx); err != nil || got.Again {
		t.Fatalf("node-b: got %+v, %v; want the request, not again", got, err)
	}
	waitFor(t, 10*time.Second, "node-b to drop the copy as a replay", func() bool { return b.Drops()["requests/"+DropReplay] == 1 })
}

// TestGossipDropsBadMessages has a faulty policy node (node-d, running no
// validators) send every kind of bad message; the honest nodes drop each
// and count it by reason, and deliver none.
func TestGossipDropsBadMessages(t *testing.T) {
	requester := testSigner(t, 10)
	stranger := testSigner(t, 11)
	gn := newGossipNet(t, 3, 1, NetworkOptions{Requesters: []*attest.PublicKey{publicKey(t, requester, "requester")}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	faulty := gn.nodes[3]
	reqT, voteT := gn.raw[6], gn.raw[7]
	send := func(topic *pubsub.Topic, b []byte) {
		t.Helper()
		// Wait for the mesh: a message published before it forms can be
		// lost (DESIGN.md).
		if err := topic.Publish(ctx, b, pubsub.WithReadiness(pubsub.MinTopicSize(3))); err != nil {
			t.Fatal(err)
		}
	}
	spec, input := testSpec(t, "demo:1")
	policy := gn.net.Digest()

	// A request, then the same bytes again: a replay.
	req, err := NewBuildRequest(RequestOptions{Policy: policy, Spec: spec, Signer: requester})
	if err != nil {
		t.Fatal(err)
	}
	reqBytes, _ := req.Marshal()
	send(reqT, reqBytes)
	for i, g := range gn.honest() {
		if _, err := g.NextRequest(ctx); err != nil {
			t.Fatalf("node %d: the first copy of the request did not arrive: %v", i, err)
		}
	}
	send(reqT, reqBytes)

	mustRequest := func(o RequestOptions) []byte {
		r, err := NewBuildRequest(o)
		if err != nil {
			t.Fatal(err)
		}
		b, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	// Signed by a key the policy does not list.
	send(reqT, mustRequest(RequestOptions{Policy: policy, Spec: spec, Signer: stranger, IncludeKey: true}))
	// Outside the replay window.
	send(reqT, mustRequest(RequestOptions{Policy: policy, Spec: spec, Signer: requester, Now: time.Now().Add(-time.Hour)}))
	// Another network's request.
	send(reqT, mustRequest(RequestOptions{Policy: "sha256:" + strings.Repeat("2", 64), Spec: spec, Signer: requester}))
	// A forged signature: the requester's key id over another's signature.
	forged := *req
	forged.Nonce = strings.Repeat("ab", 16)
	fb, _ := forged.Marshal()
	send(reqT, fb)
	// Malformed, version 2, oversized.
	send(reqT, []byte(`{"v":1,"type":"build-request","policy":`))
	send(reqT, []byte(`{"v":2,"type":"build-request"}`))
	send(reqT, []byte(`{"v":1,"pad":"`+strings.Repeat("x", MaxRequestSize)+`"}`))

	// A vote whose attestation node-a signed, sent by node-d as its own.
	stolen := testBundle(t, gn.nodes[0].signer, spec, map[string]string{"demo": hexDigest("artifact")})
	v, err := NewVote(testVoteFor(policy, input, faulty.name), stolen, "sha256:"+hexDigest("m"))
	if err != nil {
		t.Fatal(err)
	}
	vb, _ := v.Marshal()
	send(voteT, vb)
	// node-d claiming to be node-a (with node-a's genuine attestation).
	v2, err := NewVote(testVoteFor(policy, input, "node-a"), stolen, "sha256:"+hexDigest("m"))
	if err != nil {
		t.Fatal(err)
	}
	vb2, _ := v2.Marshal()
	send(voteT, vb2)
	send(voteT, []byte(`not json`))
	send(voteT, []byte(`{"v":2,"type":"vote","pad":"`+strings.Repeat("x", MaxVoteSize)+`"}`))

	want := map[string]uint64{
		"requests/" + DropReplay:           1,
		"requests/" + DropUnknownRequester: 1,
		"requests/" + DropStale:            1,
		"requests/" + DropPolicy:           1,
		"requests/" + DropBadSignature:     1,
		"requests/" + DropMalformed:        1,
		"requests/" + DropVersion:          1,
		"requests/" + DropOversized:        1,
		"votes/" + DropBadSignature:        1,
		"votes/" + DropWrongNode:           1,
		"votes/" + DropMalformed:           1,
		"votes/" + DropOversized:           1,
	}
	var total uint64
	for _, n := range want {
		total += n
	}
	for i, g := range gn.honest() {
		waitFor(t, 10*time.Second, "the drops to be counted", func() bool { return g.DropsTotal() >= total })
		got := g.Drops()
		for k, n := range want {
			if got[k] != n {
				t.Errorf("node %d: drops[%q] = %d, want %d (all: %v)", i, k, got[k], n, got)
			}
		}
		if g.DropsTotal() != total {
			t.Errorf("node %d: %d drops, want %d: %v", i, g.DropsTotal(), total, got)
		}
	}
	// Nothing bad was delivered: the next message each node gets is a
	// good vote of node-d's.
	good := testVote(t, policy, faulty, spec, input, "artifact")
	gb, _ := good.Marshal()
	send(voteT, gb)
	for i, g := range gn.honest() {
		got, err := g.NextVote(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got.From.Name != faulty.name || got.Msg.Node != faulty.name || got.Msg.Manifest != good.Manifest {
			t.Fatalf("node %d: got a vote of %q (manifest %s), want node-d's good vote", i, got.Msg.Node, got.Msg.Manifest)
		}
	}
}

// TestGaterRefusesOutsider: a peer outside the policy cannot connect to a
// build node (so none of its messages can arrive), and the refusal is
// counted.
func TestGaterRefusesOutsider(t *testing.T) {
	nodes := testNodes(t, 2)
	net := testNetwork(t, nodes[:1], NetworkOptions{})
	g := NewGater(net.PeerIDs())
	h := startHost(t, nodes[0].key, g)
	out := startHost(t, nodes[1].key, NewGater([]peer.ID{nodes[0].id}))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Over TCP the dialer may finish its side of the handshake before the
	// build node refuses; either way no connection stays.
	_ = out.Connect(ctx, AddrInfo(h))
	waitFor(t, 5*time.Second, "the refusal to be counted", func() bool { return g.Refused() >= 1 })
	waitFor(t, 5*time.Second, "the outsider to be disconnected", func() bool {
		return len(h.Network().Peers()) == 0 && len(out.Network().Peers()) == 0
	})
	// Once regular nodes are allowed, the same peer connects, and gossip
	// still does not speak with it (peer filter).
	g.AllowOthers(true)
	if err := out.Connect(ctx, AddrInfo(h)); err != nil {
		t.Fatalf("with AllowOthers: %v", err)
	}
}
