package exchange

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
)

// lateSeed is a bootstrap peer known before it is up: its identity and
// loopback address, where nothing listens until up.
type lateSeed struct {
	t    *testing.T
	priv crypto.PrivKey
	info peer.AddrInfo
}

func newLateSeed(t *testing.T) *lateSeed {
	t.Helper()
	priv, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0") // a port free now
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	addr := multiaddr.StringCast(fmt.Sprintf("/ip4/127.0.0.1/tcp/%d", port))
	return &lateSeed{t: t, priv: priv, info: peer.AddrInfo{ID: id, Addrs: []multiaddr.Multiaddr{addr}}}
}

// up starts the seed's host and Exchange (no bootstrap peers of its own).
func (s *lateSeed) up() *node {
	t := s.t
	t.Helper()
	h, err := libp2p.New(libp2p.Identity(s.priv), libp2p.ListenAddrs(s.info.Addrs...), libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	st := newStore(t)
	x, err := New(context.Background(), Options{Host: h, Store: st, Namespace: "test", Server: true, ChunkSize: 64 << 10, Logger: slog.New(slog.NewTextHandler(t.Output(), nil))})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	return &node{x: x, store: st}
}

// joiner starts a node whose only bootstrap peer is the seed, not up yet:
// its first dial fails.
func (s *lateSeed) joiner(o Options) *node {
	t := s.t
	t.Helper()
	st := newStore(t)
	o.Host, o.Store, o.Namespace, o.Server = newHost(t), st, "test", true
	o.Bootstrap = []peer.AddrInfo{s.info}
	o.ChunkSize = 64 << 10
	o.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
	x, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	if x.dht.RoutingTable().Size() != 0 {
		t.Fatal("the routing table has a peer before the bootstrap peer is up")
	}
	return &node{x: x, store: st}
}

func (nd *node) hasPeer(p peer.ID) bool { return nd.x.dht.RoutingTable().Find(p) != "" }

// A node whose bootstrap peer was down as it started joins the DHT once
// the peer is up, on its own (before, it stayed without DHT peers: the DHT
// itself tries again after 2 minutes, and the failed dial's backoff
// blocks even that).
func TestRejoinWhenTheBootstrapPeerIsUpLater(t *testing.T) {
	s := newLateSeed(t)
	nd := s.joiner(Options{})
	time.Sleep(200 * time.Millisecond) // the seed comes up later
	seed := s.up()
	deadline := time.Now().Add(8 * time.Second)
	for !nd.hasPeer(s.info.ID) {
		if time.Now().After(deadline) {
			t.Fatalf("8 s after the bootstrap peer is up, it is not in the routing table (%d peers; %d attempts to rejoin)", nd.x.dht.RoutingTable().Size(), nd.x.rejoins.Load())
		}
		time.Sleep(50 * time.Millisecond)
	}
	data := randomBytes(300 << 10)
	d := seed.seed(t, data)
	nd.mustOpen(t, d, int64(len(data)), data)
}

// A lookup that finds the routing table empty has the node rejoin at
// once, not at its next periodic attempt (here an hour away). (Not
// reproviding: its lookup of the table as the node starts would be that
// one attempt, before the seed is up.)
func TestRejoinWhenALookupFindsNobody(t *testing.T) {
	s := newLateSeed(t)
	nd := s.joiner(Options{Rejoin: time.Hour, rejoinFirst: time.Hour, Reprovide: -1})
	seed := s.up()
	data := randomBytes(200 << 10)
	d := seed.put(t, data)
	provided := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		provided <- seed.x.Provide(ctx, d) // waits for a peer in its table
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	start := time.Now()
	b, err := nd.x.Open(ctx, d, int64(len(data)))
	if err != nil {
		t.Fatalf("Open with an empty routing table and the bootstrap peer up: %v (%d attempts to rejoin)", err, nd.x.rejoins.Load())
	}
	b.Close()
	if err := <-provided; err != nil {
		t.Fatal(err)
	}
	t.Logf("fetched in %v, %d attempt(s) to rejoin", time.Since(start), nd.x.rejoins.Load())
}

// While the bootstrap peer stays down, the attempts back off (about
// log2(Rejoin/first) of them, then one per Rejoin), and a node whose table
// is not thin makes none.
func TestRejoinBacksOff(t *testing.T) {
	s := newLateSeed(t)
	const first, most, window = 40 * time.Millisecond, 320 * time.Millisecond, 2 * time.Second
	nd := s.joiner(Options{Rejoin: most, rejoinFirst: first, rejoinCheck: first, PeerTimeout: time.Second})
	time.Sleep(window)
	// Looks at 40 ms, then attempts every 40, 80, 160, 320, 320, ... ms:
	// about 9 in 2 s; without backoff, 50.
	if n := nd.x.rejoins.Load(); n < 4 || n > 14 {
		t.Errorf("%d attempts to rejoin in %v with the bootstrap peer down (first %v, at most %v apart): want about 9", n, window, first, most)
	}
	s.up()
	deadline := time.Now().Add(5 * time.Second)
	for !nd.hasPeer(s.info.ID) {
		if time.Now().After(deadline) {
			t.Fatal("the node did not rejoin once the bootstrap peer was up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// Joined (its one bootstrap peer in the table): no more attempts,
	// though the table is looked at every 40 ms.
	time.Sleep(2 * first)
	n0 := nd.x.rejoins.Load()
	time.Sleep(10 * first)
	if n := nd.x.rejoins.Load(); n != n0 {
		t.Errorf("%d attempts to rejoin in %v with the bootstrap peer in the routing table", n-n0, 10*first)
	}
}
