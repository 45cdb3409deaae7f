package quorum

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftwal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-libp2p/p2p/net/gostream"
)

// RaftProtocol is the libp2p protocol Raft's transport speaks.
const RaftProtocol protocol.ID = "/pyrsia-build/raft/1"

// StreamLayer is a raft.StreamLayer on libp2p streams: a Raft server's
// address is its peer id, Dial opens a stream of [RaftProtocol] to it, and
// Accept returns the streams other build nodes open. Streams from peers the
// admit function refuses are closed unread (the connection gater already
// keeps strangers out; this holds when it lets regular nodes in).
//
// The layer keeps every stream it accepted or dialed until it is closed,
// and [StreamLayer.Close] closes them all and refuses new dials: Raft's
// NetworkTransport closes neither its inbound streams (their handlers wait
// on the next RPC, or hand one to a Raft loop that has stopped, until the
// peer hangs up) nor the outbound ones its goroutines are writing to or
// reading from (a shutdown then waits for each such RPC's deadline).
type StreamLayer struct {
	h       host.Host
	l       net.Listener
	admit   func(peer.ID) bool
	refused atomic.Uint64

	mu     sync.Mutex
	closed bool
	open   map[*layerConn]struct{}
}

// layerConn is a stream of the layer; closing it forgets it.
type layerConn struct {
	net.Conn
	s    *StreamLayer
	once sync.Once
	err  error
}

func (c *layerConn) Close() error {
	c.once.Do(func() {
		c.s.mu.Lock()
		delete(c.s.open, c)
		c.s.mu.Unlock()
		c.err = c.Conn.Close()
	})
	return c.err
}

// track registers c, or closes it when the layer is closed.
func (s *StreamLayer) track(c net.Conn) (net.Conn, error) {
	lc := &layerConn{Conn: c, s: s}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		c.Close()
		return nil, errLayerClosed
	}
	if s.open == nil {
		s.open = make(map[*layerConn]struct{})
	}
	s.open[lc] = struct{}{}
	s.mu.Unlock()
	return lc, nil
}

var errLayerClosed = errors.New("quorum: raft: the stream layer is closed")

// Open returns how many of the layer's streams are open.
func (s *StreamLayer) Open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}

// NewStreamLayer listens for Raft streams on h.
func NewStreamLayer(h host.Host, admit func(peer.ID) bool) (*StreamLayer, error) {
	l, err := gostream.Listen(h, RaftProtocol)
	if err != nil {
		return nil, fmt.Errorf("quorum: raft: listening on %s: %w", RaftProtocol, err)
	}
	return &StreamLayer{h: h, l: l, admit: admit, open: make(map[*layerConn]struct{})}, nil
}

// Accept implements net.Listener.
func (s *StreamLayer) Accept() (net.Conn, error) {
	for {
		c, err := s.l.Accept()
		if err != nil {
			return nil, err
		}
		p, err := peer.Decode(c.RemoteAddr().String())
		if err != nil || !s.admit(p) {
			s.refused.Add(1)
			c.Close()
			continue
		}
		return s.track(c)
	}
}

// Close implements net.Listener: it stops accepting, closes every stream
// the layer accepted or dialed, and refuses to dial again.
func (s *StreamLayer) Close() error {
	err := s.l.Close()
	s.mu.Lock()
	s.closed = true
	open := make([]*layerConn, 0, len(s.open))
	for c := range s.open {
		open = append(open, c)
	}
	s.mu.Unlock()
	for _, c := range open {
		c.Close()
	}
	return err
}

// Addr implements net.Listener: the host's peer id.
func (s *StreamLayer) Addr() net.Addr { return s.l.Addr() }

// Dial implements raft.StreamLayer: address is a peer id.
func (s *StreamLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	p, err := peer.Decode(string(address))
	if err != nil {
		return nil, fmt.Errorf("quorum: raft: server address %q is not a peer id: %w", address, err)
	}
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, errLayerClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	c, err := gostream.Dial(ctx, s.h, p, RaftProtocol)
	if err != nil {
		return nil, err
	}
	return s.track(c)
}

// Refused returns how many Raft streams from peers outside the policy
// were closed.
func (s *StreamLayer) Refused() uint64 { return s.refused.Load() }

// RaftOptions configure [NewRaft].
type RaftOptions struct {
	// Host carries the transport; its peer id is the server id and address.
	Host host.Host
	// Network admits Raft peers and, with Bootstrap, lists the voters.
	Network *Network
	// Members, when set, returns the network of the policy in force,
	// which then admits Raft peers (Network still lists the voters a
	// bootstrap starts with: the first policy's).
	Members func() *Network
	// Dir holds the Raft state: Dir/wal (raft-wal: log and stable store)
	// and Dir/snapshots. Created if missing.
	Dir string
	// FSM is the state machine, usually an [FSM].
	FSM raft.FSM
	// Bootstrap makes a new cluster of all the network's build nodes when
	// Dir holds no Raft state yet. Every node may bootstrap with the same
	// configuration; nodes with state ignore it.
	Bootstrap bool
	// Config overrides Raft's defaults (timeouts, snapshot thresholds);
	// LocalID is always set to the host's peer id. Nil means
	// raft.DefaultConfig().
	Config *raft.Config
	// LogOutput receives Raft's own log (hclog); nil means os.Stderr.
	LogOutput io.Writer
	// LogLevel of Raft's log; "" means "warn".
	LogLevel string
}

// Raft is one build node's Raft server over libp2p.
type Raft struct {
	*raft.Raft
	Layer      *StreamLayer
	self       raft.ServerID
	transport  *raft.NetworkTransport
	closeStore func() error
	proposals  atomic.Uint64
	waited     atomic.Int64 // nanoseconds
	fsmStats   *fsmTimes
	stopFSM    func()
}

// ProposeStats count the commands [Raft.Propose] saw applied.
type ProposeStats struct {
	// Proposals is how many were applied.
	Proposals uint64
	// Wait is the sum of their waits, from Raft's Apply to the FSM's
	// response on this node: the commit (the leader's write-ahead log,
	// a majority's) and the FSM's apply here.
	Wait time.Duration
}

// ProposeStats returns the counters of the commands proposed here.
func (r *Raft) ProposeStats() ProposeStats {
	return ProposeStats{Proposals: r.proposals.Load(), Wait: time.Duration(r.waited.Load())}
}

// NewRaft starts a Raft server on o.Host with durable state in o.Dir.
func NewRaft(o RaftOptions) (*Raft, error) {
	if o.Host == nil || o.Network == nil || o.FSM == nil || o.Dir == "" {
		return nil, errors.New("quorum: raft: host, network, FSM and folder are required")
	}
	out := o.LogOutput
	if out == nil {
		out = os.Stderr
	}
	level := o.LogLevel
	if level == "" {
		level = "warn"
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: "raft", Output: out, Level: hclog.LevelFromString(level)})
	var conf raft.Config
	if o.Config != nil {
		conf = *o.Config
	} else {
		conf = *raft.DefaultConfig()
		// A follower learns that an entry is committed from the leader's
		// next AppendEntries: with the next entry, or after CommitTimeout
		// (1-2 times it) when none comes. Raft's default, 50ms, would be a
		// timer on the path of every publish a follower waits for; 5ms
		// costs an empty AppendEntries per follower every 5-10ms while the
		// log is idle. (A barrier sent after each commit instead was
		// measured slower: its fsyncs on every node cost more than 5ms.)
		conf.CommitTimeout = 5 * time.Millisecond
	}
	self := o.Host.ID().String()
	conf.LocalID = raft.ServerID(self)
	conf.Logger = logger

	// raftwal.Open does not create its folder.
	walDir := filepath.Join(o.Dir, "wal")
	if err := os.MkdirAll(walDir, 0o700); err != nil {
		return nil, fmt.Errorf("quorum: raft: %w", err)
	}
	// raft-wal v0.4.0's Close does not close the bolt meta store it opened
	// itself, so a restart in the same process would wait forever for its
	// file lock: open it here and close it after the WAL.
	meta := &metadb.BoltMetaDB{}
	wal, err := raftwal.Open(walDir, raftwal.WithLogger(logger.Named("wal")), raftwal.WithMetaStore(meta))
	if err != nil {
		meta.Close()
		return nil, fmt.Errorf("quorum: raft: opening log store %s: %w", walDir, err)
	}
	closeStore := func() error { return errors.Join(wal.Close(), meta.Close()) }
	snaps, err := raft.NewFileSnapshotStoreWithLogger(o.Dir, 2, logger.Named("snapshots"))
	if err != nil {
		closeStore()
		return nil, fmt.Errorf("quorum: raft: opening snapshot store in %s: %w", o.Dir, err)
	}
	admits := func(p peer.ID) bool { _, ok := o.Network.ByPeer(p); return ok }
	if o.Members != nil {
		admits = func(p peer.ID) bool { _, ok := o.Members().ByPeer(p); return ok }
	}
	layer, err := NewStreamLayer(o.Host, admits)
	if err != nil {
		closeStore()
		return nil, err
	}
	trans := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  layer,
		MaxPool: 3,
		// No pipelined replication (1: every AppendEntries waits for its
		// answer; entries are still sent in batches). Raft's pipeline can
		// deadlock: when a follower answers one with a newer term (a
		// leadership transfer) or a failure, the pipeline's decoder stops
		// reading its answers while the sender may still send one more,
		// which then waits forever for room, and the pipeline is closed
		// only once that send returns. The follower gets no more entries,
		// and Close waits for the replication goroutine for good.
		MaxRPCsInFlight: 1,
		Timeout:         10 * time.Second,
		Logger:          logger.Named("transport"),
	})
	if o.Bootstrap {
		has, err := raft.HasExistingState(wal, wal, snaps)
		if err != nil {
			trans.Close()
			closeStore()
			return nil, fmt.Errorf("quorum: raft: reading state: %w", err)
		}
		if !has {
			var servers []raft.Server
			for _, m := range o.Network.Members() {
				id := m.PeerID.String()
				servers = append(servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(id), Address: raft.ServerAddress(id)})
			}
			if err := raft.BootstrapCluster(&conf, wal, wal, snaps, trans, raft.Configuration{Servers: servers}); err != nil {
				trans.Close()
				closeStore()
				return nil, fmt.Errorf("quorum: raft: bootstrapping: %w", err)
			}
		}
	}
	times := &fsmTimes{}
	r, err := raft.NewRaft(&conf, timeFSM(o.FSM, times), wal, wal, snaps, trans)
	if err != nil {
		trans.Close()
		closeStore()
		return nil, fmt.Errorf("quorum: raft: %w", err)
	}
	rr := &Raft{Raft: r, Layer: layer, self: conf.LocalID, transport: trans, closeStore: closeStore, fsmStats: times, stopFSM: func() {}}
	if s, ok := o.FSM.(interface{ Stop() }); ok {
		rr.stopFSM = s.Stop
	}
	return rr, nil
}

// Close shuts the server down (without leaving the cluster: a restarted
// node rejoins with its state) and closes its transport and store.
//
// The transport is closed as soon as Raft is told to stop, before Raft's
// goroutines are waited for, and with it every Raft stream of this node
// ([StreamLayer.Close]): the RPCs peers keep sending are refused at once
// instead of waiting in the transport for a Raft loop that no longer takes
// them, and Raft's replication, heartbeat and vote goroutines blocked on a
// peer (a slow or stuck one) return at once instead of at their RPC's
// deadline. (Raft itself closes the transport only after its goroutines
// have stopped.) An FSM with a Stop method (an [FSM]: a catch-up in its
// Restore) is stopped too.
func (r *Raft) Close() error {
	f := r.Raft.Shutdown()
	terr := r.transport.Close()
	r.stopFSM()
	err := f.Error()
	return errors.Join(err, terr, r.closeStore())
}

// ErrNotLeader is returned by [Raft.Propose] on a follower. Use errors.Is.
var ErrNotLeader = errors.New("quorum: raft: not the leader")

// Propose submits a command to the cluster and waits until this node's FSM
// has applied it, returning the FSM's response. Only the leader can
// propose; a follower returns an error wrapping [ErrNotLeader] that names
// the leader.
//
// ctx bounds the wait (10s without a deadline; an expired deadline is an
// immediate error): when it ends, Propose returns ctx's error, but a
// command already enqueued may still be committed and applied later.
// Callers must therefore be idempotent: the FSM refuses a second entry for
// an input ([ErrDuplicateInput]), so proposing an entry again after a
// timeout is safe.
func (r *Raft) Propose(ctx context.Context, cmd []byte) (any, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("quorum: raft: %w", err)
	}
	d, _ := ctx.Deadline()
	// Raft waits forever to enqueue for a timeout of zero or less.
	timeout := time.Until(d)
	if timeout <= 0 {
		return nil, fmt.Errorf("quorum: raft: %w", context.DeadlineExceeded)
	}
	started := time.Now()
	f := r.Raft.Apply(cmd, timeout)
	// f.Error returns only once the FSM has applied the command (or Raft
	// gave up on it): wait for it aside, and for ctx.
	done := make(chan error, 1)
	go func() { done <- f.Error() }()
	var err error
	select {
	case err = <-done:
	case <-ctx.Done():
		return nil, fmt.Errorf("quorum: raft: waiting for the command to be applied (it may still be): %w", ctx.Err())
	}
	if err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			_, id := r.Raft.LeaderWithID()
			return nil, fmt.Errorf("%w (leader: %q): %w", ErrNotLeader, id, err)
		}
		return nil, fmt.Errorf("quorum: raft: %w", err)
	}
	r.proposals.Add(1)
	r.waited.Add(int64(time.Since(started)))
	return f.Response(), nil
}

// Reconcile makes Raft's configuration the voters of net, on the leader:
// it adds each build node of net that is not a voter (its peer id as id
// and address, over the libp2p transport) and then removes each server
// net does not list. It is idempotent: a new leader calls it again with
// the policy in force and finishes what an earlier one began. On a
// follower it does nothing and returns [ErrNotLeader]. Each change waits
// for Raft's commit of the new configuration (bounded by ctx).
func (r *Raft) Reconcile(ctx context.Context, net *Network) (added, removed []string, err error) {
	if r.Raft.State() != raft.Leader {
		return nil, nil, ErrNotLeader
	}
	f := r.Raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, nil, fmt.Errorf("quorum: raft: reading the configuration: %w", err)
	}
	have := map[raft.ServerID]raft.ServerSuffrage{}
	for _, s := range f.Configuration().Servers {
		have[s.ID] = s.Suffrage
	}
	want := map[raft.ServerID]bool{}
	timeout := 10 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(d), time.Millisecond)
	}
	for _, m := range net.Members() {
		id := raft.ServerID(m.PeerID.String())
		want[id] = true
		if s, ok := have[id]; ok && s == raft.Voter {
			continue
		}
		if err := ctx.Err(); err != nil {
			return added, removed, err
		}
		if err := r.Raft.AddVoter(id, raft.ServerAddress(id), 0, timeout).Error(); err != nil {
			return added, removed, fmt.Errorf("quorum: raft: adding %s (%s) as a voter: %w", m.Name, id, err)
		}
		added = append(added, m.Name)
	}
	var selfRemoved bool
	for id := range have {
		if want[id] {
			continue
		}
		if err := ctx.Err(); err != nil {
			return added, removed, err
		}
		if id == r.self {
			selfRemoved = true // last: the leader steps down once it is out
			continue
		}
		if err := r.Raft.RemoveServer(id, 0, timeout).Error(); err != nil {
			return added, removed, fmt.Errorf("quorum: raft: removing %s: %w", id, err)
		}
		removed = append(removed, string(id))
	}
	if selfRemoved {
		if err := r.Raft.RemoveServer(r.self, 0, timeout).Error(); err != nil {
			return added, removed, fmt.Errorf("quorum: raft: removing this node: %w", err)
		}
		removed = append(removed, string(r.self))
	}
	return added, removed, nil
}
