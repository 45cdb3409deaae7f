package quorum

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	rcmgr "github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
)

const windowTestProto protocol.ID = "/pyrsia-build/test/window/1"

// peerMemory is the memory h's resource manager has reserved for p.
func peerMemory(t *testing.T, h host.Host, p peer.ID) int64 {
	t.Helper()
	var mem int64
	if err := h.Network().ResourceManager().ViewPeer(p, func(ps network.PeerScope) error {
		mem = ps.Stat().Memory
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return mem
}

// openStreams opens n streams from a to b (each with a byte written, so
// that b has it open too) and returns how many opened.
func openStreams(t *testing.T, a, b host.Host, n int) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	opened := 0
	for range n {
		st, err := a.NewStream(ctx, b.ID(), windowTestProto)
		if err != nil {
			break
		}
		t.Cleanup(func() { st.Reset() })
		if _, err := st.Write([]byte{1}); err != nil {
			break
		}
		opened++
	}
	return opened
}

// A node host's streams reserve their whole 1 MiB receive window with the
// resource manager, on both sides: go-yamux alone reserves 256 KiB of it.
func TestHostStreamWindowAccounted(t *testing.T) {
	nodes := testNodes(t, 2)
	g := NewGater([]peer.ID{nodes[0].id, nodes[1].id})
	var hosts []host.Host
	for _, nd := range nodes {
		h, err := NewHost(HostOptions{Key: nd.key, Gater: g, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		h.SetStreamHandler(windowTestProto, func(st network.Stream) { <-t.Context().Done() })
		hosts = append(hosts, h)
	}
	a, b := hosts[0], hosts[1]
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := Bootstrap(ctx, a, []peer.AddrInfo{AddrInfo(b)}); err != nil {
		t.Fatal(err)
	}
	const n = 4
	if got := openStreams(t, a, b, n); got != n {
		t.Fatalf("opened %d of %d streams", got, n)
	}
	// Each side's memory for the other covers a 1 MiB window for every
	// stream it has open with it (those of the test, and any of libp2p's
	// own still open).
	streams := func(h host.Host, p peer.ID) int64 {
		k := 0
		for _, c := range h.Network().ConnsToPeer(p) {
			k += len(c.GetStreams())
		}
		return int64(k)
	}
	deadline := time.Now().Add(5 * time.Second)
	for streams(b, a.ID()) < n && time.Now().Before(deadline) { // b registers its side as the first bytes come
		time.Sleep(10 * time.Millisecond)
	}
	for _, side := range []struct {
		name string
		h    host.Host
		p    peer.ID
	}{{"opener", a, b.ID()}, {"receiver", b, a.ID()}} {
		k, mem := streams(side.h, side.p), peerMemory(t, side.h, side.p)
		if k < n || mem < k<<20 {
			t.Errorf("the %s reserved %d bytes for %d open streams, want at least %d (a 1 MiB window each)", side.name, mem, k, k<<20)
		}
	}
}

// The resource manager's memory limit bounds the streams whose windows
// fit: with a peer limit of 3.5 MiB, three streams of 1 MiB windows open
// and the fourth is refused (with go-yamux's own accounting, 256 KiB a
// stream, thirteen would open).
func TestHostStreamWindowWithinLimits(t *testing.T) {
	limits := rcmgr.InfiniteLimits.ToPartialLimitConfig()
	limits.PeerDefault.Memory = rcmgr.LimitVal64(3<<20 + 512<<10)
	mk := func() host.Host {
		rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(limits.Build(rcmgr.InfiniteLimits)))
		if err != nil {
			t.Fatal(err)
		}
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.Muxer(yamux.ID, bulkYamux()),
			libp2p.ResourceManager(rm), libp2p.DisableRelay(), libp2p.DisableMetrics())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		h.SetStreamHandler(windowTestProto, func(st network.Stream) { <-t.Context().Done() })
		return h
	}
	a, b := mk(), mk()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	if err := a.Connect(ctx, peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
	// Three fit; the peer's other streams (identify, ping) may hold part
	// of the limit as the streams open, leaving room for two.
	if got := openStreams(t, a, b, 8); got < 2 || got > 3 {
		t.Errorf("%d streams of 1 MiB windows opened within a 3.5 MiB peer limit, want 3 (2 while identify holds memory)", got)
	}
}
