package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pyrsia/pyrsia-build/publish/exchange"
	"github.com/pyrsia/pyrsia-build/publish/logclient"
	"github.com/pyrsia/pyrsia-build/publish/logservice"
	"github.com/pyrsia/pyrsia-build/publish/tlog"
	"github.com/pyrsia/pyrsia-build/quorum"
)

// A node that restores a Raft snapshot larger than its log (wiped, or down
// while the others compacted their Raft logs) fetches the missing entries
// from its peers' logs over /pyrsia-build/tiles/1 (publish/exchange) and
// checks them as quorum.Catchup's design asks:
//
//  1. the peers' latest final checkpoint (cosigned by a majority of the
//     policy, checked by logclient.Client against the policy's Trust) of
//     at least the size to reach, waited for a while if the peers have not
//     cosigned that far yet;
//  2. each entry proven included in that checkpoint at its index
//     (logclient.Client.Entries), then re-checked by the FSM's Checker
//     (its quorum against the policy) by quorum.CheckedCatchup, and
//     appended;
//  3. the entries the log held before are compared with the peers' (also
//     proven included): the log's tree is then the checkpoint's, or the
//     node refuses to rejoin rather than cosign a fork.

// catchupWait bounds the wait for the peers' final checkpoint to reach the
// size of a restored snapshot.
const catchupWait = 2 * time.Minute

// liveSource is this node's log as a logclient.Source, for the peers that
// catch up from it: its latest final checkpoint and the tiles under it.
type liveSource struct{ svc *logservice.Service }

func (s liveSource) ReadCheckpoint(ctx context.Context) ([]byte, error) {
	cp := s.svc.Log().Checkpoint()
	if cp == nil {
		return nil, fmt.Errorf("no final checkpoint yet: %w", fs.ErrNotExist)
	}
	return cp.Note, nil
}

func (s liveSource) ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
	if level > 63 {
		return nil, fmt.Errorf("tile level %d: %w", level, fs.ErrNotExist)
	}
	return s.read(ctx, tlog.TileID{Level: uint8(level), Index: index, Width: uint16(p)})
}

func (s liveSource) ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error) {
	return s.read(ctx, tlog.TileID{Entries: true, Index: index, Width: uint16(p)})
}

func (s liveSource) read(ctx context.Context, id tlog.TileID) ([]byte, error) {
	b, err := s.svc.Log().ReadTile(ctx, id)
	if errors.Is(err, tlog.ErrNotPublished) {
		return nil, fmt.Errorf("%s: %w (%w)", id.Path(), fs.ErrNotExist, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", id.Path(), err)
	}
	return b, nil
}

func (liveSource) String() string { return "this node's log" }
func (liveSource) Close() error   { return nil }

// peerEntries is the quorum.EntrySource of a catch-up: the peers' logs
// read through a logclient.Client under the policy's Trust.
type peerEntries struct {
	n *Node

	mu     sync.Mutex
	client *logclient.Client
	net    *quorum.Network // the policy in force client reads from
	cp     *logclient.Checkpoint
	had    uint64 // the log's size when the catch-up began
	began  bool
	same   bool // the log's entries [0, had) are proven the peers'

	// own reads this node's log entries (default: n.svc's).
	own func(ctx context.Context, i uint64) ([]byte, error)

	fetched atomic.Uint64 // entries fetched from peers, for status and tests
}

func (p *peerEntries) catchup() *quorum.CheckedCatchup {
	return &quorum.CheckedCatchup{Source: p, Checker: &quorum.ChainChecker{Chain: p.n.chain}, Verify: p.verify}
}

func (p *peerEntries) open() (*logclient.Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.n.cur.Load()
	if p.client != nil && (m == nil || p.net == m.net) {
		return p.client, nil // m == nil: a client given by a test
	}
	if m == nil {
		return nil, errors.New("node: catch-up: no policy in force")
	}
	net := m.net
	// Made again when the policy in force changed: its build nodes are
	// the peers to read from.
	var peers []peer.ID
	for _, m := range net.Members() {
		if m.Name != p.n.o.Keys.Name {
			peers = append(peers, m.PeerID)
		}
	}
	src, err := exchange.NewPeerSource(p.n.host, peers, exchange.PeerSourceOptions{})
	if err != nil {
		return nil, err
	}
	p.client, p.net = logclient.New(src, p.clientOptions()), net
	return p.client, nil
}

// clientOptions are the options of the catch-up's log client. With the
// node's policy chain, the client takes checkpoints unverified and
// [peerEntries.judge] checks each by the policy in force at its size (the
// first policy's trust would take a checkpoint cosigned by nodes that a
// change removed, and refuse one signed by nodes it added).
func (p *peerEntries) clientOptions() logclient.Options {
	if p.n.chain == nil {
		return logclient.Options{Trust: p.n.trust}
	}
	first, _ := p.n.chain.At(0) // a change keeps the network's name, the log's origin
	return logclient.Options{Origin: first.Name}
}

// judge checks a checkpoint of the peers by the policy in force at its
// size, as the node judges its own log's (Node.checkpointTrust).
func (p *peerEntries) judge(cp *logclient.Checkpoint) error {
	if p.n.chain == nil {
		return nil // the client checked it against p.n.trust
	}
	if _, _, err := p.n.checkpointTrust(cp.Note).VerifyCheckpoint(cp.Note); err != nil {
		return fmt.Errorf("the peers' checkpoint of %d entries, judged by the policy in force at its size: %w", cp.Size, err)
	}
	return nil
}

// checkpoint returns the peers' latest final checkpoint of at least size
// entries, waiting up to catchupWait for one.
func (p *peerEntries) checkpoint(ctx context.Context, size uint64) (*logclient.Client, *logclient.Checkpoint, error) {
	c, err := p.open()
	if err != nil {
		return nil, nil, err
	}
	p.mu.Lock()
	cp := p.cp
	p.mu.Unlock()
	if cp != nil && cp.Size >= size {
		return c, cp, nil
	}
	ctx, cancel := context.WithTimeout(ctx, catchupWait)
	defer cancel()
	var last error
	for {
		cp, err := c.Checkpoint(ctx)
		if err == nil {
			err = p.judge(cp)
		}
		switch {
		case err == nil && cp.Size >= size:
			p.mu.Lock()
			p.cp = cp
			p.mu.Unlock()
			return c, cp, nil
		case err == nil:
			last = fmt.Errorf("the peers' latest final checkpoint has %d entries", cp.Size)
		default:
			last = err
		}
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("node: no final checkpoint of %d entries from the peers in %v: %w", size, catchupWait, last)
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// Entries implements quorum.EntrySource: entries [start, end) of the
// peers' log, each proven included in a final checkpoint.
func (p *peerEntries) Entries(ctx context.Context, start, end uint64) ([][]byte, error) {
	p.mu.Lock()
	if !p.began {
		p.began, p.had = true, start
	}
	p.mu.Unlock()
	c, cp, err := p.checkpoint(ctx, end)
	if err != nil {
		return nil, err
	}
	// Before the first entry is appended: a log whose own entries are
	// not the peers' has forked, and is not extended.
	if err := p.compare(ctx, c, cp); err != nil {
		return nil, err
	}
	out := make([][]byte, 0, end-start)
	if err := c.Entries(ctx, cp, start, end, func(_ uint64, e []byte) error {
		out = append(out, bytes.Clone(e))
		return nil
	}); err != nil {
		return nil, err
	}
	p.fetched.Add(uint64(len(out)))
	return out, nil
}

// verify is step 3: the entries the log held before the catch-up are the
// peers' (proven included in the checkpoint), so the log's tree up to the
// checkpoint is the checkpoint's. Entries compares them before it returns
// the first entries to append; verify does if it has not (nothing was
// fetched).
func (p *peerEntries) verify(ctx context.Context, size uint64) error {
	p.mu.Lock()
	had, same := p.had, p.same
	p.mu.Unlock()
	if had == 0 || same {
		return nil
	}
	c, cp, err := p.checkpoint(ctx, min(had, size))
	if err != nil {
		return err
	}
	return p.compare(ctx, c, cp)
}

// compare checks that the log's entries [0, had) are those cp proves at
// their indices, once; an entry that differs is the evidence of a fork,
// named by index with both entries' SHA-256.
func (p *peerEntries) compare(ctx context.Context, c *logclient.Client, cp *logclient.Checkpoint) error {
	p.mu.Lock()
	had, same := p.had, p.same
	p.mu.Unlock()
	if had == 0 || same {
		return nil
	}
	own := p.own
	if own == nil {
		own = p.n.svc.EntryAt
	}
	err := c.Entries(ctx, cp, 0, min(had, cp.Size), func(i uint64, e []byte) error {
		mine, err := own(ctx, i)
		if err != nil {
			return fmt.Errorf("node: reading this node's entry %d: %w", i, err)
		}
		if !bytes.Equal(mine, e) {
			return fmt.Errorf("node: this node's log entry %d (sha256:%x) is not the network's (sha256:%x, proven by the final checkpoint of %d entries): its log has forked; restore DATA/log from another build node or wipe it", i, sha256.Sum256(mine), sha256.Sum256(e), cp.Size)
		}
		return nil
	})
	if err == nil && cp.Size >= had {
		p.mu.Lock()
		p.same = true
		p.mu.Unlock()
	}
	return err
}
