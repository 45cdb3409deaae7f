package node

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/pyrsia/pyrsia-build/quorum"
)

// The manifest handler answers only the policy's build nodes, not a
// stranger that got past (or around) the connection gater.
func TestManifestServerRefusesStrangers(t *testing.T) {
	c := newCluster(t, 2, nil)
	net, err := quorum.NetworkFromPolicy(c.policy)
	if err != nil {
		t.Fatal(err)
	}
	n := &Node{log: slog.New(slog.DiscardHandler), builds: &buildStore{dir: filepath.Join(t.TempDir(), "builds")}}
	n.cur.Store(&membership{net: net})
	server := newHost(t)
	(&manifestServer{n: n}).register(server)
	member, err := libp2p.New(libp2p.Identity(c.nodes[1].keys.P2P), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { member.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	input := "sha256:" + strings.Repeat("ab", 32)
	for _, h := range []struct {
		name     string
		stranger bool
	}{{"stranger", true}, {"member", false}} {
		from := member
		if h.stranger {
			from = newHost(t)
		}
		from.Peerstore().AddAddrs(server.ID(), server.Addrs(), time.Hour)
		_, err := fetchManifest(ctx, from, server.ID(), input)
		if err == nil {
			t.Fatalf("%s: got a manifest of a build the node does not have", h.name)
		}
		if refused := strings.Contains(err.Error(), "not a build node"); refused != h.stranger {
			t.Errorf("%s: %v", h.name, err)
		}
	}
}
