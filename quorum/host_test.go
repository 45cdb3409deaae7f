package quorum

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	ma "github.com/multiformats/go-multiaddr"
)

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "libp2p.key")
	k1, id1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v, mode %v, want 0600", err, fi.Mode())
	}
	k2, id2, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if id1 != id2 || !k1.Equals(k2) {
		t.Fatalf("loaded %s, made %s", id2, id1)
	}
	if !strings.HasPrefix(id1.String(), "12D3Koo") {
		t.Fatalf("peer id %s is not an Ed25519 one", id1)
	}
	bad := filepath.Join(t.TempDir(), "bad.key")
	os.WriteFile(bad, []byte("garbage"), 0o600)
	if _, _, err := LoadOrCreateKey(bad); err == nil || !strings.Contains(err.Error(), "not a libp2p private key") {
		t.Fatalf("got %v, want an error naming the file", err)
	}
	if got, _ := os.ReadFile(bad); string(got) != "garbage" {
		t.Fatal("a damaged key file was overwritten")
	}
}

func TestParseBootstrap(t *testing.T) {
	nodes := testNodes(t, 1)
	addr := "/ip4/127.0.0.1/tcp/4001/p2p/" + nodes[0].id.String()
	infos, err := ParseBootstrap([]string{addr, "/ip4/127.0.0.2/udp/4001/quic-v1/p2p/" + nodes[0].id.String()})
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 || infos[0].ID != nodes[0].id || len(infos[0].Addrs) != 2 {
		t.Fatalf("got %v, want one peer with two addresses", infos)
	}
	for _, bad := range []string{"127.0.0.1:4001", "/ip4/127.0.0.1/tcp/4001"} {
		if _, err := ParseBootstrap([]string{bad}); err == nil {
			t.Errorf("%q was accepted", bad)
		}
	}
}

func TestExpiringSet(t *testing.T) {
	now := time.Unix(1000, 0)
	s := newExpiringSet(2)
	add := func(key string, exp, now time.Time) addResult { r, _ := s.add(key, "", exp, now); return r }
	if add("a", now.Add(time.Minute), now) != addNew || add("a", now.Add(time.Minute), now) != addSeen {
		t.Fatal("a key added twice was not seen")
	}
	add("b", now.Add(2*time.Minute), now)
	if got := add("c", now.Add(time.Minute), now); got != addFull {
		t.Fatalf("got %v, want addFull: an unexpired key must not be evicted (it would open a replay)", got)
	}
	later := now.Add(90 * time.Second)
	if got := add("c", later.Add(time.Minute), later); got != addNew {
		t.Fatalf("got %v after a's expiry, want addNew", got)
	}
	if s.len() != 2 {
		t.Fatalf("set holds %d keys, want 2", s.len())
	}
	if add("a", later.Add(time.Minute), later) != addFull {
		t.Fatal("an expired key came back while the set is full of unexpired ones")
	}
}

// TestValidatorJudgesAuthor: a message written by a peer outside the
// policy is dropped, whoever forwarded it; the validator reads the signed
// author, not the forwarder. (A stranger cannot connect to a build node:
// this is the validator's own check, should the gater ever let one in.)
func TestValidatorJudgesAuthor(t *testing.T) {
	requester := testSigner(t, 10)
	gn := newGossipNet(t, 2, 0, NetworkOptions{})
	outsider := testNodes(t, 1)[0]
	spec, _ := testSpec(t, "demo:1")
	req, err := NewBuildRequest(RequestOptions{Policy: gn.net.Digest(), Spec: spec, Signer: requester})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := req.Marshal()
	g := gn.gs[0]
	msg := &pubsub.Message{Message: &pb.Message{From: []byte(outsider.id), Data: b}, ReceivedFrom: gn.nodes[1].id}
	if got := g.validateRequest(t.Context(), gn.nodes[1].id, msg); got != pubsub.ValidationReject {
		t.Fatalf("got %v, want a rejection", got)
	}
	// The same message from a policy node, through an outsider: judged by
	// its author (then refused here for its unlisted requester).
	msg = &pubsub.Message{Message: &pb.Message{From: []byte(gn.nodes[1].id), Data: b}, ReceivedFrom: outsider.id}
	g.validateRequest(t.Context(), outsider.id, msg)
	d := g.Drops()
	if d["requests/"+DropUnknownPeer] != 1 || d["requests/"+DropUnknownRequester] != 1 {
		t.Fatalf("drops %v, want one unknown-peer and one unknown-requester", d)
	}
}

// TestHostQUIC: build nodes connect over QUIC too (Noise on TCP, QUIC's
// own TLS 1.3; the gater admits by peer id on both).
func TestHostQUIC(t *testing.T) {
	nodes := testNodes(t, 2)
	g := NewGater([]peer.ID{nodes[0].id, nodes[1].id})
	var hosts []host.Host
	for _, nd := range nodes {
		h, err := NewHost(HostOptions{Key: nd.key, Gater: g, Listen: []string{"/ip4/127.0.0.1/udp/0/quic-v1"}, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		hosts = append(hosts, h)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := Bootstrap(ctx, hosts[0], []peer.AddrInfo{AddrInfo(hosts[1])}); err != nil {
		t.Fatal(err)
	}
	conns := hosts[0].Network().ConnsToPeer(hosts[1].ID())
	if len(conns) == 0 || !strings.Contains(conns[0].RemoteMultiaddr().String(), "/quic-v1") {
		t.Fatalf("connections %v, want one over QUIC", conns)
	}
	stranger := testNodes(t, 3)[2]
	if err := Bootstrap(ctx, hosts[0], []peer.AddrInfo{{ID: stranger.id, Addrs: hosts[1].Addrs()}}); err == nil {
		t.Fatal("bootstrapping to a peer outside the policy succeeded")
	}
}

// A host with both transports connects to a peer that has both over TCP
// (tcpFirstRanker), and reaches a QUIC-only peer over QUIC all the same.
func TestHostPrefersTCP(t *testing.T) {
	nodes := testNodes(t, 3)
	g := NewGater([]peer.ID{nodes[0].id, nodes[1].id, nodes[2].id})
	var hosts []host.Host
	for i, nd := range nodes {
		var listen []string // both
		if i == 2 {
			listen = []string{"/ip4/127.0.0.1/udp/0/quic-v1"}
		}
		h, err := NewHost(HostOptions{Key: nd.key, Gater: g, Listen: listen, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		hosts = append(hosts, h)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	for _, want := range []struct {
		to    int
		proto string
	}{{1, "/tcp/"}, {2, "/quic-v1"}} {
		if err := Bootstrap(ctx, hosts[0], []peer.AddrInfo{AddrInfo(hosts[want.to])}); err != nil {
			t.Fatal(err)
		}
		conns := hosts[0].Network().ConnsToPeer(hosts[want.to].ID())
		if len(conns) != 1 || !strings.Contains(conns[0].RemoteMultiaddr().String(), want.proto) {
			t.Fatalf("connections to host %d: %v, want one over %s", want.to, conns, want.proto)
		}
		if sec := conns[0].ConnState().Security; want.proto == "/tcp/" && sec != libp2ptls.ID {
			t.Fatalf("connection over TCP secured by %q, want %q", sec, libp2ptls.ID)
		}
	}
}

func TestTCPFirstRanker(t *testing.T) {
	q := ma.StringCast("/ip4/10.0.0.1/udp/4001/quic-v1")
	c := ma.StringCast("/ip4/10.0.0.1/tcp/4001")
	got := tcpFirstRanker([]ma.Multiaddr{q, c})
	if len(got) != 2 || !got[0].Addr.Equal(c) || got[0].Delay != 0 || !got[1].Addr.Equal(q) || got[1].Delay != quicDialDelay {
		t.Fatalf("ranked %v, want TCP at once, then QUIC after %v", got, quicDialDelay)
	}
	if got := tcpFirstRanker([]ma.Multiaddr{q}); len(got) != 1 || got[0].Delay != 0 {
		t.Fatalf("QUIC alone ranked %v, want it at once", got)
	}
}
