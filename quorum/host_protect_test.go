package quorum

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
)

// TestHostKeepsPolicyPeersWhenTrimming: a build node's host past its
// connection manager's high water mark trims the connections of other
// peers (regular nodes) but never those of the policy's build nodes, and
// follows the gater's peers as a policy change replaces them.
func TestHostKeepsPolicyPeersWhenTrimming(t *testing.T) {
	nodes := testNodes(t, 6)
	policyPeer, later := nodes[1].id, nodes[2].id
	cm, err := connmgr.NewConnManager(1, 2, connmgr.WithGracePeriod(0))
	if err != nil {
		t.Fatal(err)
	}
	g := NewGater([]peer.ID{nodes[0].id, policyPeer})
	g.AllowOthers(true)
	build, err := NewHost(HostOptions{Key: nodes[0].key, Gater: g, ConnManager: cm, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { build.Close() })
	var others []host.Host
	for _, nd := range nodes[1:] {
		og := NewGater(nil)
		og.AllowOthers(true)
		h, err := NewHost(HostOptions{Key: nd.key, Gater: og, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.Close() })
		others = append(others, h)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	// connectAll connects every other host, until the build node's side
	// has the connection too (a side that was trimmed may not know yet).
	connectAll := func() {
		for _, h := range others {
			for len(build.Network().ConnsToPeer(h.ID())) == 0 {
				if err := Bootstrap(ctx, h, []peer.AddrInfo{AddrInfo(build)}); err != nil {
					t.Fatal(err)
				}
				select {
				case <-ctx.Done():
					t.Fatalf("connecting %s to the build node: %v", h.ID(), ctx.Err())
				case <-time.After(20 * time.Millisecond):
				}
			}
		}
	}
	connectAll()
	cm.TrimOpenConns(ctx)
	if len(build.Network().ConnsToPeer(policyPeer)) == 0 {
		t.Fatal("the connection manager trimmed the connection of a policy build node")
	}
	if n := len(build.Network().Peers()); n > 2 {
		t.Fatalf("%d peers connected after trimming to 1-2: the test's trim did nothing", n)
	}

	// A policy change: policyPeer removed, later added.
	g.SetPeers([]peer.ID{nodes[0].id, later})
	if cm.IsProtected(policyPeer, ProtectTag) || !cm.IsProtected(later, ProtectTag) {
		t.Fatalf("after the change: removed peer protected %v, added peer protected %v; want false, true",
			cm.IsProtected(policyPeer, ProtectTag), cm.IsProtected(later, ProtectTag))
	}
	connectAll()
	cm.TrimOpenConns(ctx)
	if len(build.Network().ConnsToPeer(later)) == 0 {
		t.Fatal("the connection manager trimmed the connection of a build node the change added")
	}
}
