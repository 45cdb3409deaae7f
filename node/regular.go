package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pyrsia/pyrsia-build/internal/httpserver"
	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/exchange"
	"github.com/pyrsia/pyrsia-build/publish/index"
	"github.com/pyrsia/pyrsia-build/publish/logclient"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/pyrsia/pyrsia-build/publish/store"
	"github.com/pyrsia/pyrsia-build/quorum"
	"golang.org/x/sync/errgroup"
)

// RegularOptions configure [NewRegular].
type RegularOptions struct {
	// Data is the node's data folder: DATA/keys/p2p.key (its libp2p
	// identity, made at the first start), DATA/follow (the last checkpoint
	// verified and, after a fork, the evidence), DATA/store (its blobs).
	Data string
	// Policy is the network's first policy: the node follows the log's
	// policy changes from it (policy.Chain), judging each checkpoint and
	// entry by the policy in force at its size or index.
	Policy *policy.Policy
	// Listen are the libp2p listen multiaddrs (default: TCP and QUIC on
	// 127.0.0.1, ports chosen by the system).
	Listen []string
	// Bootstrap are peers to connect to at start: build nodes, or any
	// peers of the network.
	Bootstrap []peer.AddrInfo
	// LogURL, if set, is a C2SP tlog-tiles mirror of the log (any HTTP
	// server of a build node's log folder, or another node's /log/).
	// The log is read from the first of these that answers with what
	// verifies (logclient.Failover): LogURL, the bootstrap peers, then
	// the first policy's build nodes (over libp2p, those the host can
	// reach).
	LogURL string
	// HTTP is the listener build tools reach the node on; nil: none.
	HTTP net.Listener
	// Serving configures the store.
	Serving ServingOptions
	// PollInterval is the time between two reads of the log's checkpoint
	// (default 2s).
	PollInterval time.Duration
	// Logger receives the node's messages (default slog.Default()).
	Logger *slog.Logger
}

// Regular is a running regular node: it follows the log of its network,
// indexes the published entries, and serves them to build tools.
type Regular struct {
	o        RegularOptions
	log      *slog.Logger
	trust    *policy.Trust   // the first policy's
	network  *quorum.Network // the first policy's: it names the network (DHT namespace)
	chain    *policy.Chain   // the policies along the log, as far as followed
	gater    *quorum.Gater
	host     host.Host
	src      *growingSource
	client   *logclient.Client
	follower *logclient.Follower
	idx      *index.Index
	serving  *serving
	fwd      *forwarder
	xchg     *exchange.Exchange
	closers  []func() error
	// preAdded are sources of policy changes applied as the follower
	// started, before NewFollower returned: given to it then.
	preAdded []logclient.Source

	mu      sync.Mutex
	skipped []string // entries that did not certify themselves, by index
	// changes are the indexes of the log's policy change entries, in
	// order: proof bundles carry them (version 2), for a verifier that
	// knows the network's first policy.
	changes []uint64
}

// maxSkipped bounds the skipped entries /status lists.
const maxSkipped = 100

// NewRegular starts a regular node's parts (libp2p host, the follower of
// the log, the store); [Regular.Run] then follows and serves until its
// context is done. A follower that stopped on a fork before (evidence in
// DATA/follow/evidence) does not start.
func NewRegular(ctx context.Context, o RegularOptions) (_ *Regular, err error) {
	if o.Policy == nil || o.Data == "" {
		return nil, errors.New("node: a regular node needs a data folder and a policy")
	}
	if o.LogURL == "" && len(o.Bootstrap) == 0 {
		return nil, errors.New("node: a regular node reads the log from its bootstrap peers or from --log-url: give one")
	}
	if o.PollInterval <= 0 {
		o.PollInterval = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	r := &Regular{o: o, log: o.Logger.With("node", "regular")}
	defer func() {
		if err != nil {
			r.close()
		}
	}()
	if r.trust, err = o.Policy.Trust(); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if r.network, err = quorum.NetworkFromPolicy(o.Policy); err != nil {
		return nil, err
	}
	if r.chain, err = policy.NewChain(o.Policy); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	key, _, err := quorum.LoadOrCreateKey(filepath.Join(o.Data, "keys", p2pKeyFile))
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	// Any peer may connect (other regular nodes share content and the
	// log); the build nodes' own protocols admit only them.
	r.gater = quorum.NewGater(r.network.PeerIDs())
	r.gater.AllowOthers(true)
	if r.host, err = quorum.NewHost(quorum.HostOptions{Key: key, Listen: o.Listen, Gater: r.gater, Logger: r.log}); err != nil {
		return nil, err
	}
	r.closers = append(r.closers, r.host.Close)
	if len(o.Bootstrap) == 0 {
		r.log.WarnContext(ctx, "no bootstrap peers: the node serves only what its store holds (content comes from the peers that provide it)")
	}
	if err := quorum.Bootstrap(ctx, r.host, o.Bootstrap); err != nil {
		r.log.WarnContext(ctx, "no bootstrap peer is reachable yet; continuing", "err", err)
	}
	first, seen, err := r.logSources()
	if err != nil {
		return nil, err
	}
	r.src = newGrowingSource(first, seen)
	r.closers = append(r.closers, r.src.Close)
	r.client = logclient.New(r.src, logclient.Options{Trust: r.trust})
	if r.idx, err = index.New(); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	r.follower, err = logclient.NewFollower(ctx, logclient.FollowerOptions{
		Source: first, Chain: r.chain, OnChange: r.policyChanged, StateDir: filepath.Join(o.Data, "follow"),
		Visit: r.visit, Interval: o.PollInterval, Logger: r.log,
	})
	if err != nil {
		return nil, fmt.Errorf("node: following the log: %w", err)
	}
	r.follower.AddSources(r.preAdded...)
	r.preAdded = nil
	addr := ""
	if o.HTTP != nil {
		addr = o.HTTP.Addr().String()
	}
	if r.serving, err = openServing(o.Data, o.Serving, r.idx, r.contentFor, publishHint(addr), r.log); err != nil {
		return nil, err
	}
	r.closers = append(r.closers, r.serving.close)
	cur, err := quorum.NetworkFromPolicy(r.chainCurrent())
	if err != nil {
		return nil, err
	}
	r.fwd = newForwarder(r.host, cur, o.Bootstrap, r.log)
	r.fwd.poke = func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		r.follower.Poll(ctx)
	}
	return r, nil
}

// logSources returns the sources the node reads the log from, in the
// order they are tried: LogURL, the bootstrap peers, the first policy's
// build nodes that are not among them. The build nodes of the policies
// that follow are added as the follower applies them (policyChanged).
// seen holds the peers it reads the logs of, and this node.
func (r *Regular) logSources() (src logclient.Source, seen map[peer.ID]bool, err error) {
	var srcs []logclient.Source
	if r.o.LogURL != "" {
		s, err := logclient.OpenURL(r.o.LogURL, logclient.URLOptions{})
		if err != nil {
			return nil, nil, fmt.Errorf("node: --log-url: %w", err)
		}
		srcs = append(srcs, s)
	}
	var peers []peer.ID
	seen = map[peer.ID]bool{r.host.ID(): true}
	for _, b := range r.o.Bootstrap {
		if !seen[b.ID] {
			seen[b.ID] = true
			peers = append(peers, b.ID)
		}
	}
	for _, p := range r.network.PeerIDs() {
		if !seen[p] {
			seen[p] = true
			peers = append(peers, p)
		}
	}
	if len(peers) > 0 {
		s, err := exchange.NewPeerSource(r.host, peers, exchange.PeerSourceOptions{})
		if err != nil {
			return nil, nil, err
		}
		srcs = append(srcs, s)
	}
	if len(srcs) == 1 {
		return srcs[0], seen, nil
	}
	return logclient.Failover(srcs...), seen, nil
}

// policyChanged acts on a policy change the follower verified and
// applied (in log order, before visiting the entries after it): the
// build nodes of the new policy are those requests go to and votes are
// counted for.
func (r *Regular) policyChanged(i uint64, c *policy.Change) {
	nw, err := quorum.NetworkFromPolicy(c.New)
	if err != nil { // the chain accepted it: cannot happen
		r.log.Error("the policy in force", "index", i, "err", err)
		return
	}
	if r.fwd != nil {
		r.fwd.network.Store(nw)
	}
	r.gater.SetPeers(nw.PeerIDs())
	if added, err := r.src.addPeers(r.host, nw.PeerIDs()); err != nil {
		r.log.Error("reading the log from the new policy's build nodes", "err", err)
	} else if added != nil {
		if r.follower != nil {
			r.follower.AddSources(added)
		} else { // a change applied again as the follower starts
			r.preAdded = append(r.preAdded, added)
		}
		r.log.Info("reading the log from the new policy's build nodes too", "source", added.String())
	}
	r.log.Info("following the policy in force", "from", i+1, "policy", c.New.Digest(), "nodes", len(c.New.Nodes))
}

// chainCurrent is the policy in force after the last change followed
// (the follower applies those of its stored checkpoint at its start).
func (r *Regular) chainCurrent() *policy.Policy {
	p, _ := r.chain.Current()
	return p
}

// current returns the network of the policy in force after the last
// change followed.
func (r *Regular) current() *quorum.Network { return r.fwd.network.Load() }

// visit indexes an entry the follower proved included in a final
// checkpoint. An entry that does not certify itself under the policy in
// force at its index (a majority of that policy's build nodes would have
// had to sign a checkpoint over it) is not served, and is listed in the
// status.
func (r *Regular) visit(ctx context.Context, i uint64, b []byte) error {
	if k, err := publish.EntryKind(b); err == nil && k == publish.KindPolicy {
		r.mu.Lock()
		if n := len(r.changes); n == 0 || r.changes[n-1] < i { // an entry is visited again after a failed poll
			r.changes = append(r.changes, i)
		}
		r.mu.Unlock()
		r.log.InfoContext(ctx, "a policy change in the log: proof bundles carry it", "index", i)
		return nil
	}
	e, err := publish.ParseEntry(b)
	if err == nil {
		_, trust := r.chain.At(i)
		_, err = publish.VerifyEntry(ctx, e, trust)
	}
	if err != nil {
		r.log.ErrorContext(ctx, "a log entry does not certify itself under the policy: not served", "index", i, "err", err)
		r.mu.Lock()
		if len(r.skipped) < maxSkipped {
			r.skipped = append(r.skipped, fmt.Sprintf("%d: %v", i, err))
		}
		r.mu.Unlock()
		return nil
	}
	if err := r.idx.Add(i, e); err != nil {
		return err
	}
	size := i + 1
	if cp := r.checkpoint(); cp != nil {
		size = cp.Size
	}
	r.fwd.published(i, e, size)
	return nil
}

// Host returns the node's libp2p host.
func (r *Regular) Host() host.Host { return r.host }

// Index returns the index of the entries the node verified.
func (r *Regular) Index() *index.Index { return r.idx }

// Store returns the node's blob store.
func (r *Regular) Store() *store.Store { return r.serving.store }

// Follower returns the node's follower of the log.
func (r *Regular) Follower() *logclient.Follower { return r.follower }

// Run follows the log and serves until ctx is done. A fork stops the
// following (the evidence is kept and shown in /status) but not the
// serving of what was verified before it.
func (r *Regular) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		err := r.follower.Run(gctx)
		var se *logclient.StopError
		if errors.As(err, &se) {
			return nil // shown in the status; the node goes on serving
		}
		if gctx.Err() != nil {
			return nil
		}
		return err
	})
	if r.o.HTTP != nil {
		g.Go(func() error {
			return httpserver.Serve(gctx, r.o.HTTP, r.handler(), httpserver.Options{Logger: r.log})
		})
	}
	r.log.InfoContext(ctx, "regular node running", "peer", r.host.ID().String(), "addrs", fmt.Sprint(r.host.Addrs()),
		"policy", r.o.Policy.Digest(), "log", r.src.String())
	err := g.Wait()
	if cerr := r.close(); err == nil {
		err = cerr
	}
	return err
}

func (r *Regular) close() error {
	var errs []error
	for i := len(r.closers) - 1; i >= 0; i-- {
		errs = append(errs, r.closers[i]())
	}
	r.closers = nil
	return errors.Join(errs...)
}

// RegularStatus is a regular node's state, as GET /status shows it.
type RegularStatus struct {
	Kind   string   `json:"kind"` // "regular"
	PeerID string   `json:"peerId"`
	Addrs  []string `json:"addrs"`
	Policy string   `json:"policy"`
	// Peers are the policy's build nodes this node is connected to;
	// OtherPeers counts the other peers.
	Peers      []string `json:"peers"`
	OtherPeers int      `json:"otherPeers"`
	// Source is where the log is read from.
	Source string `json:"source"`
	// LogSize and FinalSize are the size of the last checkpoint verified
	// (a regular node takes only final ones); Checkpoint is its note.
	LogSize    uint64   `json:"logSize"`
	Final      uint64   `json:"finalSize"`
	Checkpoint string   `json:"checkpoint,omitempty"`
	Cosigners  []string `json:"cosigners,omitempty"`
	// Indexed counts the entries served.
	Indexed int `json:"indexed"`
	// LastError is the error of the last read of the log, if it failed.
	LastError string `json:"lastError,omitempty"`
	// Stopped is set once the follower stopped: a fork, or a checkpoint
	// the policy refuses, with the evidence kept.
	Stopped *StoppedStatus `json:"stopped,omitempty"`
	// Skipped are the entries not served: they do not certify themselves.
	Skipped []string    `json:"skipped,omitempty"`
	Store   store.Stats `json:"store"`
	// Exchange counts the blob bytes sent to and received from peers.
	Exchange exchange.Stats `json:"exchange"`
}

// StoppedStatus is why a follower stopped, and where the evidence is.
type StoppedStatus struct {
	Reason   string `json:"reason"`
	Fork     bool   `json:"fork"`
	Evidence string `json:"evidence"`
	Verified string `json:"verifiedCheckpoint,omitempty"`
	Offered  string `json:"offeredCheckpoint,omitempty"`
}

// Status returns the node's state.
func (r *Regular) Status() RegularStatus {
	cur := r.current()
	s := RegularStatus{Kind: "regular", PeerID: r.host.ID().String(), Policy: cur.Digest(), Source: r.src.String(),
		Indexed: r.idx.Len(), Store: r.serving.store.Stats()}
	for _, a := range r.host.Addrs() {
		s.Addrs = append(s.Addrs, a.String())
	}
	for _, p := range r.host.Network().Peers() {
		if m, ok := cur.ByPeer(p); ok {
			s.Peers = append(s.Peers, m.Name)
		} else {
			s.OtherPeers++
		}
	}
	sort.Strings(s.Peers)
	fs := r.follower.Status()
	if cp := fs.Checkpoint; cp != nil {
		s.LogSize, s.Final, s.Checkpoint, s.Cosigners = cp.Size, cp.Size, string(cp.Note), cp.Cosigners
	}
	if fs.LastError != nil {
		s.LastError = fs.LastError.Error()
	}
	if se := fs.Stopped; se != nil {
		s.Stopped = stoppedStatus(se)
	}
	if r.xchg != nil {
		s.Exchange = r.xchg.Stats()
	}
	r.mu.Lock()
	s.Skipped = append(s.Skipped, r.skipped...)
	r.mu.Unlock()
	return s
}

func stoppedStatus(se *logclient.StopError) *StoppedStatus {
	return &StoppedStatus{Reason: se.Error(), Fork: errors.Is(se, logclient.ErrFork), Evidence: se.Dir,
		Verified: string(se.Verified), Offered: string(se.Offered)}
}

// checkpoint returns the last checkpoint verified.
func (r *Regular) checkpoint() *logclient.Checkpoint { return r.follower.Status().Checkpoint }

// ProofBundle returns the proof bundle of the entry at index against the
// last checkpoint verified, its inclusion proof checked, with the log's
// policy changes in that checkpoint's tree and their inclusion proofs
// (version 2, when there are any: publish.VerifyProofChain follows them
// from the network's first policy).
func (r *Regular) ProofBundle(ctx context.Context, i uint64) (*publish.ProofBundle, error) {
	cp := r.checkpoint()
	if cp == nil || i >= cp.Size {
		return nil, fmt.Errorf("node: entry %d: no checkpoint verified covers it yet", i)
	}
	var changes []uint64
	r.mu.Lock()
	for _, c := range r.changes {
		if c < cp.Size {
			changes = append(changes, c)
		}
	}
	r.mu.Unlock()
	pb, err := r.client.ProofBundleChain(ctx, cp, i, changes)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	return pb, nil
}
