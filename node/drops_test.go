package node

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pyrsia/pyrsia-build/builder"
	"github.com/pyrsia/pyrsia-build/quorum"
)

// faultyNode is a policy build node that runs no node: a libp2p host with
// its key and a gossip router on the network's topics without validators,
// which sends what the test gives it.
type faultyNode struct {
	host       host.Host
	reqs, vots *pubsub.Topic
}

func (c *cluster) startFaulty(ctx context.Context, i int) *faultyNode {
	c.t.Helper()
	tn := c.nodes[i]
	net, err := quorum.NetworkFromPolicy(c.policy)
	if err != nil {
		c.t.Fatal(err)
	}
	h, err := quorum.NewHost(quorum.HostOptions{Key: tn.keys.P2P, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Gater: quorum.NewGater(net.PeerIDs())})
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { h.Close() })
	ps, err := pubsub.NewGossipSub(ctx, h, pubsub.WithMessageSignaturePolicy(pubsub.StrictSign), pubsub.WithMaxMessageSize(1<<20))
	if err != nil {
		c.t.Fatal(err)
	}
	reqName, voteName := quorum.Topics(net.Digest())
	f := &faultyNode{host: h}
	if f.reqs, err = ps.Join(reqName); err != nil {
		c.t.Fatal(err)
	}
	if f.vots, err = ps.Join(voteName); err != nil {
		c.t.Fatal(err)
	}
	// Subscribed, so that the topics have a mesh to publish into.
	for _, tp := range []*pubsub.Topic{f.reqs, f.vots} {
		sub, err := tp.Subscribe()
		if err != nil {
			c.t.Fatal(err)
		}
		c.t.Cleanup(sub.Cancel)
	}
	for _, o := range c.nodes {
		if o.node != nil {
			if err := h.Connect(ctx, peer.AddrInfo{ID: o.node.Host().ID(), Addrs: o.node.Host().Addrs()}); err != nil {
				c.t.Fatal(err)
			}
		}
	}
	return f
}

// send publishes b once the running nodes are in the topic's mesh.
func (f *faultyNode) send(ctx context.Context, t *testing.T, topic *pubsub.Topic, peers int, b []byte, opts ...pubsub.PubOpt) {
	t.Helper()
	opts = append(opts, pubsub.WithReadiness(pubsub.MinTopicSize(peers)))
	if err := topic.Publish(ctx, b, opts...); err != nil {
		t.Fatal(err)
	}
}

// mustCanonical returns a spec's canonical JSON.
func mustCanonical(t testing.TB, spec []byte) []byte {
	t.Helper()
	s, err := builder.ParseSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.CanonicalJSON()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// apiStatus reads node i's GET /status through its API.
func (c *cluster) apiStatus(i int) Status {
	c.t.Helper()
	resp, err := http.Get("http://" + c.nodes[i].api.Addr().String() + "/status")
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var s Status
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		c.t.Fatal(err)
	}
	return s
}

// Every kind of bad message reaches the running nodes from node-d, a
// policy build node gone bad (no validators of its own): each node drops
// it, and GET /status counts it by reason. An outsider cannot even
// connect.
func TestStatusCountsDroppedMessages(t *testing.T) {
	c := newCluster(t, 4, nil)
	for i := range 3 {
		c.start(i)
	}
	ctx := c.ctx()
	c.leader(ctx)
	f := c.startFaulty(ctx, 3)
	d := c.nodes[3]

	// An outsider's host is refused by the gater.
	okey, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	outsiderID, _ := peer.IDFromPrivateKey(okey)
	oh, err := quorum.NewHost(quorum.HostOptions{Key: okey, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Gater: quorum.NewGater(c.nodes[0].node.net().PeerIDs())})
	if err != nil {
		t.Fatal(err)
	}
	defer oh.Close()
	a := c.nodes[0].node
	// Over TCP the dialer may finish its side of the handshake before
	// node-a refuses; either way no connection stays, and it is counted.
	_ = oh.Connect(ctx, peer.AddrInfo{ID: a.Host().ID(), Addrs: a.Host().Addrs()})
	for c.apiStatus(0).RefusedPeers < 1 || len(oh.Network().Peers()) > 0 {
		select {
		case <-ctx.Done():
			t.Fatalf("node-a: the outsider's connection is not refused and counted: %d refused, outsider connected to %v", c.apiStatus(0).RefusedPeers, oh.Network().Peers())
		case <-time.After(20 * time.Millisecond):
		}
	}

	// A genuine request by node-d (a build node may request builds): the
	// network builds it. Then the same bytes again: a replay.
	req, err := quorum.NewBuildRequest(quorum.RequestOptions{Policy: a.net().Digest(), Spec: mustCanonical(t, testSpec(80)), Signer: d.keys.Cosign})
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := req.Marshal()
	f.send(ctx, t, f.reqs, 3, rb)
	for i := range 3 {
		c.waitLogged(ctx, i, []string{req.InputDigest})
	}
	f.send(ctx, t, f.reqs, 3, rb)

	// A request written by the outsider, forwarded by node-d.
	req2, err := quorum.NewBuildRequest(quorum.RequestOptions{Policy: a.net().Digest(), Spec: mustCanonical(t, testSpec(81)), Signer: d.keys.Cosign})
	if err != nil {
		t.Fatal(err)
	}
	rb2, _ := req2.Marshal()
	f.send(ctx, t, f.reqs, 3, rb2, pubsub.WithSecretKeyAndPeerId(okey, outsiderID))
	// Malformed and oversized messages.
	f.send(ctx, t, f.reqs, 3, []byte(`{"v":1,"type":"build-request","policy":`))
	f.send(ctx, t, f.reqs, 3, []byte(`{"v":1,"pad":"`+strings.Repeat("x", quorum.MaxRequestSize)+`"}`))

	// Votes: node-a's genuine attestation sent by node-d as its own (a
	// signature by the wrong key), and node-d claiming to be node-a.
	b, err := a.builds.get(req.InputDigest)
	if err != nil || b == nil {
		t.Fatalf("node-a has no build of the request: %v", err)
	}
	for _, as := range []string{d.name, "node-a"} {
		v, err := quorum.NewVote(quorum.VoteFor{Policy: a.net().Digest(), Request: req.ID(), InputDigest: req.InputDigest, Node: as}, b.Bundle, b.ManifestDigest)
		if err != nil {
			t.Fatal(err)
		}
		vb, _ := v.Marshal()
		f.send(ctx, t, f.vots, 3, vb)
	}
	f.send(ctx, t, f.vots, 3, []byte(`not json`))
	f.send(ctx, t, f.vots, 3, []byte(`{"v":2,"type":"vote","pad":"`+strings.Repeat("x", quorum.MaxVoteSize)+`"}`))

	want := map[string]uint64{
		"requests/" + quorum.DropReplay:      1,
		"requests/" + quorum.DropUnknownPeer: 1,
		"requests/" + quorum.DropMalformed:   1,
		"requests/" + quorum.DropOversized:   1,
		"votes/" + quorum.DropBadSignature:   1,
		"votes/" + quorum.DropWrongNode:      1,
		"votes/" + quorum.DropMalformed:      1,
		"votes/" + quorum.DropOversized:      1,
	}
	for i := range 3 {
		var got map[string]uint64
		for {
			got = c.apiStatus(i).Dropped
			done := true
			for k, n := range want {
				if got[k] < n {
					done = false
				}
			}
			if done {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s: /status dropped %v, want %v", c.nodes[i].name, got, want)
			case <-time.After(20 * time.Millisecond):
			}
		}
		for k, n := range want {
			if got[k] != n {
				t.Errorf("%s: /status dropped[%q] = %d, want %d", c.nodes[i].name, k, got[k], n)
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				t.Errorf("%s: /status dropped[%q] = %d, want none", c.nodes[i].name, k, got[k])
			}
		}
	}
}
