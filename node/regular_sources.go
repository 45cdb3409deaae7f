package node

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pyrsia/pyrsia-build/publish/exchange"
	"github.com/pyrsia/pyrsia-build/publish/logclient"
)

// growingSource is the log sources of a regular node: those it started
// with and the build nodes of each policy change it followed since, as
// one [logclient.Failover]. Proof bundles, the /log/ mirror and the
// status read it; the follower is given the new peers' sources apart
// ([logclient.Follower.AddSources]).
type growingSource struct {
	cur atomic.Pointer[logclient.Source]

	mu   sync.Mutex
	seen map[peer.ID]bool // the peers read, and this node
}

func newGrowingSource(first logclient.Source, seen map[peer.ID]bool) *growingSource {
	g := &growingSource{seen: seen}
	if g.seen == nil {
		g.seen = map[peer.ID]bool{}
	}
	g.cur.Store(&first)
	return g
}

// addPeers adds a source for each of peers not read yet and returns
// them as one source, nil when none is new.
func (g *growingSource) addPeers(h host.Host, peers []peer.ID) (logclient.Source, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var fresh []peer.ID
	for _, p := range peers {
		if !g.seen[p] {
			fresh = append(fresh, p)
		}
	}
	if len(fresh) == 0 {
		return nil, nil
	}
	s, err := exchange.NewPeerSource(h, fresh, exchange.PeerSourceOptions{})
	if err != nil {
		return nil, err
	}
	for _, p := range fresh {
		g.seen[p] = true
	}
	all := logclient.Failover(*g.cur.Load(), s)
	g.cur.Store(&all)
	return s, nil
}

func (g *growingSource) source() logclient.Source { return *g.cur.Load() }

func (g *growingSource) ReadCheckpoint(ctx context.Context) ([]byte, error) {
	return g.source().ReadCheckpoint(ctx)
}

func (g *growingSource) ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
	return g.source().ReadTile(ctx, level, index, p)
}

func (g *growingSource) ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error) {
	return g.source().ReadEntryBundle(ctx, index, p)
}

func (g *growingSource) String() string { return g.source().String() }
func (g *growingSource) Close() error   { return g.source().Close() }
