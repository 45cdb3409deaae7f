package node

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/builder"
	"github.com/pyrsia/pyrsia-build/internal/httpserver"
	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/exchange"
	"github.com/pyrsia/pyrsia-build/publish/logservice"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/pyrsia/pyrsia-build/publish/tlog"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	"github.com/pyrsia/pyrsia-build/quorum"
	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/sync/errgroup"
)

// Options configure [New].
type Options struct {
	// Data is the node's data folder (see the package documentation).
	Data string
	// Policy is the network policy; it must list this node with its peer
	// id.
	Policy *policy.Policy
	// FirstPolicy is the network's first policy, where the chain of the
	// log's policy changes starts (and which names the gossip topics and
	// the DHT namespace); nil means Policy. A node added to a running
	// network by a policy change is started with the new Policy, which
	// lists it, and the network's FirstPolicy: it follows the log's
	// changes from there, and acts as a build node once the policy in
	// force lists it (see membership.go).
	FirstPolicy *policy.Policy
	// Keys are the node's keys (see [LoadKeys]).
	Keys *Keys
	// Listen are the libp2p listen multiaddrs (default: TCP and QUIC on
	// 127.0.0.1, ports chosen by the system).
	Listen []string
	// Bootstrap are peers to connect to at start.
	Bootstrap []peer.AddrInfo
	// API is the HTTP API's listener; nil means no API.
	API net.Listener
	// Builder builds specs. Required.
	Builder Builder
	// AllowSourceHosts are the source hosts that are not public and that
	// specs may fetch from all the same ([builder.RemoteOptions]); the
	// Builder must be given them too ([BuildKitBuilder].AllowHosts).
	AllowSourceHosts []string
	// Deadline is how long a request waits for a quorum before its
	// verdict (default 10m).
	Deadline time.Duration
	// MaxBuilds bounds the builds that run at once (default 2).
	MaxBuilds int
	// Requests is the rate at which each requester's build requests are
	// served (zero fields: quorum's defaults, 100 pending at most).
	Requests quorum.RateOptions
	// RaftConfig overrides Raft's timeouts (tests); nil means Raft's
	// defaults.
	RaftConfig *raft.Config
	// Logger receives the node's messages (default slog.Default()).
	Logger *slog.Logger
	// Serving configures the store and the faces for build tools (see
	// serving.go).
	Serving ServingOptions
}

// Node is a running build node.
type Node struct {
	o     Options
	log   *slog.Logger
	self  policy.Node
	trust *policy.Trust
	// chain follows the policy changes of the log (policy.Chain): the FSM
	// judges every entry by the policy in force at its index.
	chain *policy.Chain
	// cur is the policy in force as this node acts on it (membership.go):
	// swapped when the FSM applies a policy change.
	cur atomic.Pointer[membership]
	// first is the first policy's network: it names the gossip topics and
	// lists the voters of a Raft bootstrap.
	first      *quorum.Network
	witness    *witness.Cosigner
	cosigners  cosignerCache
	reconcileC chan struct{}
	memberMu   sync.Mutex // serialises membership switches
	selfKeyID  string     // this node's cosign key id
	// raftKept are the build nodes a change removed that Raft's
	// configuration still lists (membership.go): the gater admits their
	// connections until the leader has removed them.
	raftKept atomic.Pointer[[]peer.ID]
	// envelopes are the vote envelopes this node's gossip validator
	// verified, which its FSM then need not verify again.
	envelopes *quorum.VerifiedEnvelopes

	host   host.Host
	gater  *quorum.Gater
	gossip *quorum.Gossip
	fsm    *quorum.FSM
	raft   *quorum.Raft
	svc    *logservice.Service
	builds *buildStore
	// catchup fetches entries from the peers' logs after a Raft snapshot.
	catchup *peerEntries
	events  *events

	sched   *quorum.Scheduler
	work    chan *round // rounds whose request this node builds and votes on
	judges  chan struct{}
	pending *voteBuffer

	mine *ownRequests // requests this node signed, gossiped again until their round is over

	mu        sync.Mutex
	rounds    map[string]*round // by input digest: its latest round
	byRequest map[string]*round // by request id
	requests  atomic.Uint64     // validated requests received

	stopping      chan struct{} // closed when Run's context is done
	apiToken      string        // see APITokenFile
	rejectedSpecs atomic.Uint64
	closers       []func() error
	serving       buildServing // see serving_build.go
	counts        nodeCounts   // see metrics.go
}

// New opens the node's state and starts its network parts (libp2p host,
// gossip, Raft, log service); [Node.Run] then serves until its context is
// done. On error, whatever was started is stopped.
func New(ctx context.Context, o Options) (n *Node, err error) {
	if o.Policy == nil || o.Keys == nil || o.Builder == nil || o.Data == "" {
		return nil, errors.New("node: data folder, policy, keys and builder are required")
	}
	if err := (builder.RemoteOptions{AllowHosts: o.AllowSourceHosts}).Validate(); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if o.Deadline <= 0 {
		o.Deadline = 10 * time.Minute
	}
	if o.MaxBuilds <= 0 {
		o.MaxBuilds = 2
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	n = &Node{o: o, log: o.Logger.With("node", o.Keys.Name), rounds: make(map[string]*round), byRequest: make(map[string]*round),
		events: newEvents(), stopping: make(chan struct{}),
		work: make(chan *round, workQueue), judges: make(chan struct{}, maxJudges), pending: newVoteBuffer(votesBuffered, o.Deadline), mine: newOwnRequests(o.Deadline)}
	defer func() {
		if err != nil {
			n.close()
		}
	}()
	if err := n.checkPolicy(); err != nil {
		return nil, err
	}
	if n.selfKeyID, err = selfKeyID(o.Keys); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if n.trust, err = o.Policy.Trust(); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	first := o.FirstPolicy
	if first == nil {
		first = o.Policy
	}
	if first.Name != o.Policy.Name {
		return nil, fmt.Errorf("node: the first policy is of network %q, the policy of network %q: give the first policy of this node's network", first.Name, o.Policy.Name)
	}
	if n.chain, err = policy.NewChain(first); err != nil {
		return nil, fmt.Errorf("node: first policy: %w", err)
	}
	if n.first, err = quorum.NetworkFromPolicy(first); err != nil {
		return nil, fmt.Errorf("node: first policy: %w", err)
	}
	n.reconcileC = make(chan struct{}, 1)

	// The log, its witness, and peer cosigners.
	w, err := witness.NewCosigner(witness.CosignerOptions{Signer: o.Keys.Cosigner, Origin: o.Policy.Name,
		LogVerifier: mustLogVerifier(o.Keys.NoteKey), StateDir: filepath.Join(o.Data, "cosigner")})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	n.witness = w
	n.gater = quorum.NewGater(n.first.PeerIDs())
	if n.host, err = quorum.NewHost(quorum.HostOptions{Key: o.Keys.P2P, Listen: o.Listen, Gater: n.gater, Logger: n.log}); err != nil {
		return nil, err
	}
	n.closers = append(n.closers, n.host.Close)
	// Until the log's changes are read below: the first policy.
	if err := n.setMembership(first, 0); err != nil {
		return nil, err
	}
	n.svc, err = logservice.Open(ctx, logservice.Options{
		Log:          tlog.Options{Dir: filepath.Join(o.Data, "log"), Origin: o.Policy.Name, Signer: o.Keys.LogSigner, Logger: n.log},
		CosignersFor: n.cosignersFor,
		Final: func(b []byte) ([]string, error) {
			_, names, err := n.checkpointTrust(b).VerifyCheckpoint(b)
			return names, err
		},
		RetryInterval: 50 * time.Millisecond,
		CosignTimeout: 10 * time.Second,
		Logger:        n.log,
		// The FSM appends publish entries and policy changes only: any
		// other entry is damage, not something to skip.
		KnownEntries: true,
	})
	if err != nil {
		return nil, err
	}
	n.closers = append(n.closers, n.svc.Close)
	// The policy changes already in the log (the FSM checks the ones Raft
	// replays again, and the new ones).
	if err := publish.FollowChain(ctx, n.chain, n.svc.PolicyChanges(n.svc.Size()), n.svc.EntryAt); err != nil {
		return nil, fmt.Errorf("node: the log's policy changes: %w", err)
	}
	if err := n.followChain(); err != nil {
		return nil, err
	}
	if o.API != nil {
		if n.apiToken, err = LoadAPIToken(o.Data); err != nil {
			return nil, err
		}
	}
	(&CosignServer{Service: n.svc, Origin: o.Policy.Name, LogVerifiersFor: func() []note.Verifier { return n.cur.Load().logVerifiers },
		Signer: o.Keys.LogSigner, Cosigner: w, Logger: n.log,
		Admit: func(p peer.ID) bool { _, ok := n.net().ByPeer(p); return ok }}).Register(n.host)
	(&manifestServer{n: n}).register(n.host)
	n.host.SetStreamHandler(ChangeProtocol, n.serveChange)
	if err := n.openServing(ctx); err != nil {
		return nil, err
	}

	n.builds = &buildStore{dir: filepath.Join(o.Data, "builds"), builder: o.Builder, signer: o.Keys.Cosign, node: o.Keys.Name, inflight: map[string]chan struct{}{}}

	// Catch-up: this node serves its log to peers that restore a Raft
	// snapshot, and fetches from theirs when it restores one (catchup.go).
	exchange.ServeLog(n.host, liveSource{n.svc}, exchange.LogOptions{Logger: n.log})
	n.catchup = &peerEntries{n: n}

	// Ordering: the FSM appends what Raft commits, after checking it.
	n.envelopes = quorum.NewVerifiedEnvelopes(0)
	if n.fsm, err = quorum.NewFSM(quorum.FSMOptions{
		Checker: &quorum.ChainChecker{Chain: n.chain, Envelopes: n.envelopes},
		Applier: n.svc,
		Catchup: n.catchup.catchup(),
		Observe: n.applied,
		Logger:  n.log,
	}); err != nil {
		return nil, err
	}
	// Raft restores its latest snapshot in NewRaft, before Bootstrap
	// below: a catch-up then (catchup.go) reaches the peers by these
	// addresses.
	for _, ai := range o.Bootstrap {
		n.host.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.AddressTTL)
	}
	raftLog := io.Writer(os.Stderr)
	if n.o.RaftConfig != nil {
		raftLog = io.Discard
	}
	// Only the first policy's nodes bootstrap Raft, with its voters: a
	// node added later waits for the leader to add it (membership.go).
	_, inFirst := n.first.ByName(o.Keys.Name)
	if n.raft, err = quorum.NewRaft(quorum.RaftOptions{Host: n.host, Network: n.first, Members: n.net, Dir: filepath.Join(o.Data, "raft"),
		FSM: n.fsm, Bootstrap: inFirst, Config: o.RaftConfig, LogOutput: raftLog}); err != nil {
		return nil, err
	}
	n.closers = append(n.closers, n.raft.Close)
	// Gossip lives until close, not until ctx (the caller's ctx may be
	// the one that ends Run): a router stopped by its context first fails
	// the topics' Close.
	gctx, gcancel := context.WithCancel(context.WithoutCancel(ctx))
	if n.gossip, err = quorum.NewGossip(gctx, quorum.GossipOptions{Host: n.host, Network: n.first, Members: n.net, AwaitPolicy: n.awaitPolicy, Logger: n.log, OnEquivocation: n.equivocation, Envelopes: n.envelopes}); err != nil {
		gcancel()
		return nil, err
	}
	n.closers = append(n.closers, func() error {
		err := n.gossip.Close()
		gcancel()
		return err
	})
	sctx, scancel := context.WithCancel(context.Background())
	if o.Requests.MaxPending <= 0 {
		o.Requests.MaxPending = maxPendingRequests
	}
	n.sched = quorum.NewScheduler(sctx, o.Requests)
	n.closers = append(n.closers, func() error { scancel(); return nil })
	if err := quorum.Bootstrap(ctx, n.host, o.Bootstrap); err != nil {
		n.log.WarnContext(ctx, "some bootstrap peers are unreachable; continuing", "err", err)
	}
	return n, nil
}

func mustLogVerifier(vkey string) note.Verifier {
	v, err := witness.NewLogVerifier(vkey)
	if err != nil {
		panic(err) // checked by policy.Validate
	}
	return v
}

// checkPolicy checks that the policy lists this node with its keys.
func (n *Node) checkPolicy() error {
	p, k := n.o.Policy, n.o.Keys
	self, ok := p.Node(k.Name)
	if !ok {
		return fmt.Errorf("node: the policy %s does not list this node %q: add its entry with 'pyrsia-build network add-node'", p.Name, k.Name)
	}
	pub, err := attest.ParsePublicKey(k.Name, k.CosignPub)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	listed, err := attest.ParsePublicKey(k.Name, []byte(self.CosignKey))
	if err != nil {
		return fmt.Errorf("node: policy node %s: %w", k.Name, err)
	}
	switch {
	case pub.ID != listed.ID:
		return fmt.Errorf("node: the policy lists another cosign key for %q than this node's keys/cosign.pub", k.Name)
	case self.NoteKey != k.NoteKey:
		return fmt.Errorf("node: the policy lists another note key for %q than this node's keys/note.pub", k.Name)
	case self.PeerID != k.PeerID.String():
		return fmt.Errorf("node: the policy lists peer id %q for %q, this node's keys/p2p.key is %s", self.PeerID, k.Name, k.PeerID)
	}
	for _, pn := range p.Nodes {
		if pn.PeerID == "" {
			return fmt.Errorf("node: policy node %s has no peer id: every build node of a network needs one", pn.Name)
		}
	}
	n.self = self
	return nil
}

// Host returns the node's libp2p host.
func (n *Node) Host() host.Host { return n.host }

// Log returns the node's log service.
func (n *Node) Log() *logservice.Service { return n.svc }

// Raft returns the node's Raft server.
func (n *Node) Raft() *quorum.Raft { return n.raft }

// Run serves until ctx is done, then stops: the API and gossip first,
// builds are cancelled, Raft leaves (handing leadership over), the log is
// closed. It returns the first error of a part that failed.
func (n *Node) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	context.AfterFunc(gctx, func() { close(n.stopping) })
	g.Go(func() error { return n.svc.Run(gctx) })
	g.Go(func() error { return n.requestLoop(gctx) })
	g.Go(func() error { return n.dispatchLoop(gctx) })
	for range n.o.MaxBuilds {
		g.Go(func() error { return n.workLoop(gctx) })
	}
	g.Go(func() error { return n.voteLoop(gctx) })
	g.Go(func() error { return n.leaderLoop(gctx) })
	g.Go(func() error { return n.membershipLoop(gctx) })
	g.Go(func() error { return n.deadlineLoop(gctx) })
	g.Go(func() error { return n.republishLoop(gctx) })
	g.Go(func() error { return n.runServing(gctx) })
	if n.o.API != nil {
		g.Go(func() error {
			return httpserver.Serve(gctx, n.o.API, n.apiHandler(), httpserver.Options{Logger: n.log})
		})
	}
	n.log.InfoContext(ctx, "build node running", "peer", n.host.ID().String(), "addrs", fmt.Sprint(n.host.Addrs()), "policy", n.o.Policy.Digest())
	err := g.Wait()
	if n.raft.State() == raft.Leader {
		if f := n.raft.LeadershipTransfer(); f.Error() == nil {
			n.log.Info("handed Raft leadership over")
		}
	}
	if cerr := n.close(); err == nil {
		err = cerr
	}
	return err
}

// close stops the parts in reverse order of start.
func (n *Node) close() error {
	var errs []error
	for i := len(n.closers) - 1; i >= 0; i-- {
		errs = append(errs, n.closers[i]())
	}
	n.closers = nil
	return errors.Join(errs...)
}

// Publish asks the network to build and publish a spec (JSON or YAML):
// this node signs the request as requester and gossips it. It returns the
// input digest; follow the round with [Node.Events].
func (n *Node) Publish(ctx context.Context, specData []byte) (string, error) {
	spec, err := n.parseSpec(specData)
	if err != nil {
		return "", err
	}
	canon, err := spec.CanonicalJSON()
	if err != nil {
		return "", err
	}
	input, err := spec.InputDigest()
	if err != nil {
		return "", err
	}
	if i, ok := n.fsm.Lookup(input); ok {
		n.events.emit(input, Event{Type: EventPublished, Input: input, Index: &i})
		return input, nil
	}
	req, err := quorum.NewBuildRequest(quorum.RequestOptions{Policy: n.net().Digest(), Spec: canon, Signer: n.o.Keys.Cosign})
	if err != nil {
		return "", err
	}
	// A new request for the input starts a new story: the events of an
	// earlier round (its verdict) are not this one's.
	n.events.reset(input)
	if err := n.publishGossip(ctx, func(ctx context.Context, o quorum.PublishOptions) error {
		return n.gossip.PublishRequest(ctx, req, o)
	}); err != nil {
		return "", err
	}
	n.mine.add(req)
	return input, nil
}

// publishGossip publishes once the gossip mesh holds the policy peers this
// node is connected to (a message published before the mesh forms can be
// lost), or after a few seconds without that.
func (n *Node) publishGossip(ctx context.Context, pub func(context.Context, quorum.PublishOptions) error) error {
	peers := 0
	for _, p := range n.host.Network().Peers() {
		if _, ok := n.net().ByPeer(p); ok {
			peers++
		}
	}
	// The readiness check polls every 200ms once it fails: use it only
	// while the topics do not list every connected peer (at start).
	reqPeers, votePeers := n.gossip.Peers()
	if len(reqPeers) >= peers && len(votePeers) >= peers {
		return pub(ctx, quorum.PublishOptions{})
	}
	if peers > 0 {
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := pub(wctx, quorum.PublishOptions{MinPeers: peers})
		cancel()
		if err == nil || ctx.Err() != nil {
			return err
		}
		n.log.InfoContext(ctx, "gossip mesh not complete; publishing anyway", "err", err)
	}
	return pub(ctx, quorum.PublishOptions{})
}

// Bounds of the request path: requests wait in the scheduler (a bounded
// queue per requester, a token bucket each) until a round opens for them;
// opened rounds wait in a bounded queue for one of MaxBuilds workers.
const (
	maxPendingRequests = 100
	workQueue          = 64
	maxJudges          = 4
	votesBuffered      = 32 // per build node, votes for requests not seen yet
	// voteClockSkew is how much earlier than its request a vote may be
	// dated (clocks differ).
	voteClockSkew = time.Minute
	// maxStoredVerdicts bounds DATA/verdicts; the oldest go first.
	maxStoredVerdicts = 1000
)

// roundGrace is how long a round is kept after its verdict or entry (late
// votes are ignored, status still shows it).
func (n *Node) roundGrace() time.Duration { return max(n.o.Deadline, time.Minute) }

// openRound opens the round of a validated request, with the votes
// buffered for it; nil when the request has a round already or its input
// is published.
//
// A round that opened from others' votes before its request came (see
// openFromVotesLocked) is returned once, when the request comes: this
// node builds and votes in it then, even when its entry is in the log
// already (its vote is its word on the build).
func (n *Node) openRound(req *quorum.BuildRequest, now time.Time) *round {
	id := req.ID()
	n.mu.Lock()
	if r := n.byRequest[id]; r != nil {
		defer n.mu.Unlock()
		if r.req != nil || r.input != req.InputDigest {
			return nil
		}
		r.req, r.spec = req, req.Spec
		return r
	}
	n.mu.Unlock()
	if _, ok := n.fsm.Lookup(req.InputDigest); ok {
		return nil
	}
	n.mu.Lock()
	if n.byRequest[id] != nil {
		n.mu.Unlock()
		return n.openRound(req, now)
	}
	r := newRound(req, now, n.o.Deadline)
	r.net = n.net()
	n.byRequest[id] = r
	n.rounds[req.InputDigest] = r
	var added []*quorum.Vote
	for _, v := range n.pending.take(id, now) {
		if n.countable(r, v) && r.add(v) {
			added = append(added, v)
		}
	}
	n.mu.Unlock()
	for _, v := range added {
		n.emitVote(v)
	}
	return r
}

// countable reports whether v may be recorded in r (called with n.mu
// held): it names r's input and is not dated well before r's request.
// Votes after the round's entry or verdict are recorded (the dissent that
// status shows) but change nothing: a closed round neither proposes nor
// gets another verdict.
func (n *Node) countable(r *round, v *quorum.Vote) bool {
	return v.InputDigest == r.input && v.Policy == r.net.Digest() && !v.Time.Before(r.reqTime.Add(-voteClockSkew))
}

// openFromVotesLocked opens the round of request from the buffered votes
// when they make a quorum on their own; nil otherwise. Called with n.mu
// held.
func (n *Node) openFromVotesLocked(request string, now time.Time) *round {
	votes := n.pending.peek(request, now)
	net := n.net()
	if len(votes) < net.Threshold() {
		return nil
	}
	input := votes[0].InputDigest
	same := votes[:0:0]
	for _, v := range votes {
		if v.InputDigest == input {
			same = append(same, v)
		}
	}
	if !quorum.Tally(net, input, same, 0).Quorum {
		return nil
	}
	var spec []byte
	earliest := same[0].Time
	for _, v := range same {
		if spec == nil {
			spec = voteSpec(v)
		}
		if v.Time.Before(earliest) {
			earliest = v.Time
		}
	}
	if spec == nil {
		return nil
	}
	r := &round{net: net, request: request, reqTime: earliest, input: input, spec: spec, started: now, deadline: now.Add(n.o.Deadline),
		votes: make(map[string]*quorum.Vote), equivocations: map[string][]string{}, index: -1}
	for _, v := range n.pending.take(request, now) {
		if v.InputDigest == input && v.Policy == net.Digest() {
			r.add(v)
		}
	}
	n.byRequest[request] = r
	n.rounds[input] = r
	return r
}

func (n *Node) requestLoop(ctx context.Context) error {
	for {
		m, err := n.gossip.NextRequest(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		if !m.Again {
			// A copy of this node's own request, gossiped again
			// (republishLoop), is not a request received. It goes to
			// the scheduler all the same, as a first copy the request
			// loop never got would: openRound ignores a request it has.
			n.requests.Add(1)
		}
		if !n.sched.Submit(m) {
			n.log.WarnContext(ctx, "request dropped: its requester's queue is full", "input", m.Msg.InputDigest, "requester", m.Msg.Requester)
		}
	}
}

// dispatchLoop opens a round for each request the scheduler lets through
// and queues it for a worker.
func (n *Node) dispatchLoop(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-n.sched.C():
			r := n.openRound(m.Msg, time.Now())
			if r == nil {
				continue
			}
			n.settle(ctx, r)
			select {
			case n.work <- r:
			case <-ctx.Done():
				return nil
			}
		}
	}
}

func (n *Node) workLoop(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case r := <-n.work:
			n.handleRequest(ctx, r)
		}
	}
}

// handleRequest builds a requested spec (or takes the stored build) and
// gossips this node's vote.
func (n *Node) handleRequest(ctx context.Context, r *round) {
	req := r.req
	input := req.InputDigest
	if !n.isVoter(r.net) {
		// Not a build node of the policy the round opened under (a
		// node added later, before it caught up; a removed one; a key
		// the policy rotated out): its vote would count for nothing.
		n.log.InfoContext(ctx, "not voting: the round's policy does not list this node with its keys", "input", input, "policy", r.net.Digest())
		return
	}
	// A node votes even when the entry is in the log already (its
	// request came late): the vote is its word on the build, and a
	// dissenting one is reported (status shows the dissent).
	spec, err := n.parseSpec(req.Spec)
	var vote *quorum.Vote
	if err != nil {
		n.rejectedSpecs.Add(1)
		n.log.WarnContext(ctx, "refusing a requested spec", "input", input, "err", err)
		vote, err = quorum.NewFailedVote(n.voteFor(r), "spec refused: "+err.Error())
	} else {
		bctx, cancel := context.WithTimeout(ctx, n.o.Deadline)
		var b *Build
		b, err = n.builds.build(bctx, spec)
		cancel()
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			n.log.WarnContext(ctx, "build failed", "input", input, "err", err)
			vote, err = quorum.NewFailedVote(n.voteFor(r), err.Error())
		} else {
			// The vote parses this node's statement (remembered for its
			// validator and FSM); the entry size is judged by its subjects.
			vote, err = n.envelopes.NewVote(n.voteFor(r), b.Bundle, b.ManifestDigest)
			var serr error
			if err == nil {
				serr = n.checkEntrySizeOf(req, spec, b, vote.Subjects)
			} else {
				serr = n.checkEntrySize(req, spec, b)
			}
			if serr != nil {
				// A quorum for it could never be appended: say so instead.
				n.log.WarnContext(ctx, "refusing to vote for a build whose entry would be too large", "input", input, "err", serr)
				vote, err = quorum.NewFailedVote(n.voteFor(r), serr.Error())
			}
		}
	}
	if err != nil {
		n.log.ErrorContext(ctx, "making a vote", "input", input, "err", err)
		return
	}
	if err := n.publishGossip(ctx, func(ctx context.Context, o quorum.PublishOptions) error {
		return n.gossip.PublishVote(ctx, vote, o)
	}); err != nil && ctx.Err() == nil {
		n.log.ErrorContext(ctx, "gossiping a vote", "input", input, "err", err)
	} else if err == nil {
		n.counts.votesSent.Add(1)
	}
}

// voteFor names this node's vote in r, bound to the policy r opened
// under.
func (n *Node) voteFor(r *round) quorum.VoteFor {
	req := r.req
	return quorum.VoteFor{Policy: r.net.Digest(), Request: req.ID(), InputDigest: req.InputDigest, Node: n.o.Keys.Name}
}

func (n *Node) voteLoop(ctx context.Context) error {
	for {
		m, err := n.gossip.NextVote(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
		v := m.Msg
		n.counts.received(n, v)
		n.mu.Lock()
		r := n.byRequest[v.Request]
		if r == nil {
			// A vote for a request this node has not opened (yet): kept
			// a while in a small buffer per node, never a round on its
			// own. Only when the buffered votes for one request already
			// make a quorum (a majority of nodes saw the request: this
			// node missed it, or it still waits in the scheduler) does a
			// round open from them, its spec from their attestations, so
			// that a leader that missed the request still proposes.
			n.pending.add(v, time.Now())
			r = n.openFromVotesLocked(v.Request, time.Now())
			n.mu.Unlock()
			if r != nil {
				n.settle(ctx, r)
			}
			continue
		}
		// Votes that come after the entry or the verdict are kept too:
		// they are the dissent that status reports.
		added := n.countable(r, v) && r.add(v)
		n.mu.Unlock()
		if !added {
			continue
		}
		n.emitVote(v)
		n.settle(ctx, r)
	}
}

// settle proposes r's entry if it has a quorum, or gives its verdict now
// if no quorum is possible any more.
func (n *Node) settle(ctx context.Context, r *round) {
	n.maybePropose(ctx, r)
	if n.hopeless(r) {
		go n.giveVerdict(ctx, r, time.Now())
	}
}

func (n *Node) emitVote(v *quorum.Vote) {
	ev := Event{Type: EventVote, Input: v.InputDigest, Node: v.Node}
	if v.Failed() {
		ev.Error = firstLine(v.Error)
	} else {
		for _, s := range v.Subjects {
			ev.Subjects = append(ev.Subjects, s.Digest)
		}
	}
	n.events.emit(v.InputDigest, ev)
}

// equivocation records the evidence of a node that signed two different
// votes for one request in that request's round.
func (n *Node) equivocation(e quorum.Equivocation) {
	n.log.Warn("a build node signed two different votes for one request", "voter", e.Node, "request", e.Request, "input", e.InputDigest)
	n.mu.Lock()
	defer n.mu.Unlock()
	if r := n.byRequest[e.Request]; r != nil && len(r.equivocations) < len(r.net.Members()) {
		r.equivocations[e.Node] = []string{e.First, "sha256:" + digestHex(e.Second)}
	}
}

// hopeless reports whether the round can no longer reach a quorum: its
// largest group, with every node that has not voted yet, stays below the
// threshold.
func (n *Node) hopeless(r *round) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if !r.open() || r.proposed {
		return false
	}
	v := r.tally(r.net, time.Since(r.started))
	largest := 0
	if g, ok := v.Agreed(); ok {
		largest = len(g.Nodes)
	}
	return !v.Quorum && largest+len(v.Missing) < v.Threshold
}

// maybePropose proposes the round's entry when it has a quorum and this
// node leads Raft.
func (n *Node) maybePropose(ctx context.Context, r *round) {
	if n.raft.State() != raft.Leader {
		return
	}
	n.mu.Lock()
	if r.proposed || !r.open() {
		n.mu.Unlock()
		return
	}
	envs, ok := r.quorum(r.net)
	if !ok {
		n.mu.Unlock()
		return
	}
	r.proposed = true
	spec := r.spec
	n.mu.Unlock()
	go func() {
		err := n.propose(ctx, spec, envs)
		if err != nil && ctx.Err() == nil {
			n.log.WarnContext(ctx, "proposing an entry", "input", r.input, "err", err)
			n.mu.Lock()
			r.proposed = false // a new leader, or this one again, tries later
			if errors.Is(err, quorum.ErrRefused) {
				r.refused = err
			}
			n.mu.Unlock()
		}
	}()
}

// propose makes the entry of a round's quorum and proposes it to Raft.
// The entry takes its names from the spec (publish.SpecLabels, not this
// node's rules for specs to build: whether it would build the spec is
// its vote's business, and every FSM accepts a quorum's entry whichever
// node leads), and the voters' statements from the envelope cache, which
// parsed them as their votes came in. Every node's FSM checks the entry
// in full.
func (n *Node) propose(ctx context.Context, spec []byte, envs []*dssepb.Envelope) error {
	eco, coord, err := publish.SpecLabels(spec)
	if err != nil {
		return err
	}
	e, b, err := publish.NewEntryWith(eco, coord, spec, envs, publish.NewEntryOptions{Statements: n.envelopes.Statement})
	if err != nil {
		return err
	}
	if len(b) > tlog.MaxEntrySize {
		return fmt.Errorf("node: the entry of %s is %d bytes, over the log's %d byte limit", e.InputDigest, len(b), tlog.MaxEntrySize)
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := n.raft.Propose(pctx, quorum.AppendEntryCommand(b))
	if err != nil {
		return err
	}
	if ar, ok := res.(quorum.ApplyResult); ok && ar.Err != nil && !errors.Is(ar.Err, quorum.ErrDuplicateInput) {
		return ar.Err
	}
	return nil
}

// leaderLoop proposes the rounds that reached a quorum while another node
// led, when this one becomes the leader.
func (n *Node) leaderLoop(ctx context.Context) error {
	ch := n.raft.LeaderCh()
	for {
		select {
		case <-ctx.Done():
			return nil
		case leader := <-ch:
			if !leader {
				continue
			}
			n.log.InfoContext(ctx, "this node leads Raft")
			n.mu.Lock()
			var rs []*round
			for _, r := range n.byRequest {
				rs = append(rs, r)
			}
			n.mu.Unlock()
			for _, r := range rs {
				n.maybePropose(ctx, r)
			}
		}
	}
}

// applied is the FSM's observer: an entry is in this node's log.
func (n *Node) applied(_ uint64, r quorum.ApplyResult) {
	if r.Err != nil || r.InputDigest == "" {
		return
	}
	if strings.HasPrefix(r.InputDigest, publish.PolicyKeyPrefix) {
		// The FSM's chain holds it now: the node acts on it before the
		// FSM applies the next entry (membership.go).
		n.log.Info("policy change applied", "index", r.Index, "policy", strings.TrimPrefix(r.InputDigest, publish.PolicyKeyPrefix))
		if err := n.followChain(); err != nil {
			n.log.Error("acting on the policy change", "index", r.Index, "err", err)
		}
		return
	}
	n.mu.Lock()
	now := time.Now()
	for _, rd := range n.byRequest {
		if rd.input == r.InputDigest && rd.index < 0 {
			rd.index = int64(r.Index)
			if rd.closed.IsZero() {
				rd.closed = now
			}
		}
	}
	n.mu.Unlock()
	i := r.Index
	n.events.emit(r.InputDigest, Event{Type: EventPublished, Input: r.InputDigest, Index: &i})
	n.counts.published.Add(1)
	n.servePublished(r)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), n.o.Deadline)
		defer cancel()
		cp, err := n.svc.WaitFinal(ctx, i+1)
		if err != nil {
			return
		}
		size := cp.Size
		n.events.emit(r.InputDigest, Event{Type: EventFinal, Input: r.InputDigest, Index: &i, Size: &size})
	}()
}

// deadlineLoop gives a verdict to every round past its deadline without
// an entry.
func (n *Node) deadlineLoop(ctx context.Context) error {
	t := time.NewTicker(n.tick())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-t.C:
			n.mu.Lock()
			var due, open []*round
			for id, r := range n.byRequest {
				switch {
				case !r.open():
					if !r.closed.IsZero() && now.Sub(r.closed) > n.roundGrace() {
						delete(n.byRequest, id)
						if n.rounds[r.input] == r {
							delete(n.rounds, r.input)
						}
					}
				case now.After(r.deadline) && !r.awaitsEntry(r.net):
					if !r.judging {
						due = append(due, r)
					}
				case !r.proposed:
					open = append(open, r)
				}
			}
			n.pending.expire(now)
			n.mu.Unlock()
			// Verdicts are given concurrently (explaining one fetches
			// manifests), at most maxJudges at once.
			for _, r := range due {
				select {
				case n.judges <- struct{}{}:
				case <-ctx.Done():
					return nil
				}
				go func() {
					defer func() { <-n.judges }()
					n.giveVerdict(ctx, r, now)
				}()
			}
			// A proposal that failed (a leader change, a timeout) is
			// tried again.
			for _, r := range open {
				n.maybePropose(ctx, r)
			}
		}
	}
}

func (n *Node) tick() time.Duration {
	return min(max(n.o.Deadline/20, 10*time.Millisecond), time.Second)
}

func (n *Node) giveVerdict(ctx context.Context, r *round, now time.Time) {
	if _, ok := n.fsm.Lookup(r.input); ok {
		return
	}
	n.mu.Lock()
	if r.verdict != nil || r.judging || r.awaitsEntry(r.net) {
		n.mu.Unlock()
		return
	}
	r.judging = true
	qv := r.tally(r.net, min(now.Sub(r.started), n.o.Deadline))
	n.mu.Unlock()
	if len(qv.Groups) > 1 {
		qv.Differs = n.explain(ctx, r.input, qv.Groups[0].Nodes, qv.Groups[1:])
	}
	v := newVerdict(qv, now)
	n.mu.Lock()
	if len(r.equivocations) > 0 {
		v.Equivocations = maps.Clone(r.equivocations)
	}
	r.verdict = v
	r.closed = time.Now()
	n.mu.Unlock()
	if err := n.storeVerdict(v); err != nil {
		n.log.ErrorContext(ctx, "storing a verdict", "input", r.input, "err", err)
	}
	n.log.InfoContext(ctx, "no quorum", "input", r.input, "verdict", v.Text)
	n.counts.noQuorum.Add(1)
	n.events.emit(r.input, Event{Type: EventVerdict, Input: r.input, Verdict: v})
}

// explain compares the output manifests of the nodes of others with one
// of ref's, fetched from the nodes.
func (n *Node) explain(ctx context.Context, input string, ref []string, others []quorum.Group) map[string][]string {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	refm, err := n.fetchManifest(ctx, ref, input)
	if err != nil {
		n.log.InfoContext(ctx, "no manifest of the largest group to explain a disagreement", "input", input, "err", err)
		return nil
	}
	out := map[string][]string{}
	for _, g := range others {
		for _, name := range g.Nodes {
			m, err := n.fetchManifest(ctx, []string{name}, input)
			if err != nil {
				continue
			}
			out[name] = manifestDiff(refm, m, 5)
		}
	}
	return out
}

// fetchManifest returns the output manifest of input from the first of
// nodes that has it (this node reads its own).
func (n *Node) fetchManifest(ctx context.Context, nodes []string, input string) (*builder.OutputManifest, error) {
	var errs []error
	for _, name := range nodes {
		var b []byte
		var err error
		if name == n.o.Keys.Name {
			b, err = n.localManifest(input)
		} else {
			m, _ := n.net().ByName(name)
			b, err = fetchManifest(ctx, n.host, m.PeerID, input)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		om, err := builder.ParseManifest(b)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
			continue
		}
		return om, nil
	}
	return nil, errors.Join(errs...)
}

func (n *Node) localManifest(input string) ([]byte, error) {
	b, err := n.builds.get(input)
	if err != nil {
		return nil, err
	}
	if b == nil {
		return nil, fmt.Errorf("node: no build of %s on this node", input)
	}
	return readFileLimited(filepath.Join(b.Dir, manifestFile), maxManifest)
}

// Verdicts in DATA/verdicts/<input hex>.json.
func (n *Node) storeVerdict(v *Verdict) error {
	h, err := inputHex(v.InputDigest)
	if err != nil {
		return err
	}
	dir := filepath.Join(n.o.Data, "verdicts")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	b, _ := json.MarshalIndent(v, "", "  ")
	tmp := filepath.Join(dir, "."+h+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, filepath.Join(dir, h+".json")); err != nil {
		return err
	}
	return pruneVerdicts(dir, maxStoredVerdicts)
}

// pruneVerdicts removes the oldest verdict files of dir beyond keep.
func pruneVerdicts(dir string, keep int) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	type file struct {
		name string
		mod  time.Time
	}
	var files []file
	for _, de := range des {
		if de.Type().IsRegular() && filepath.Ext(de.Name()) == ".json" {
			if fi, err := de.Info(); err == nil {
				files = append(files, file{de.Name(), fi.ModTime()})
			}
		}
	}
	if len(files) <= keep {
		return nil
	}
	sort.Slice(files, func(i, j int) bool { return files[i].mod.Before(files[j].mod) })
	var errs []error
	for _, f := range files[:len(files)-keep] {
		if err := os.Remove(filepath.Join(dir, f.name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// LastVerdict returns the stored verdict of input, or nil.
func (n *Node) LastVerdict(input string) (*Verdict, error) {
	n.mu.Lock()
	if r := n.rounds[input]; r != nil {
		// The latest round's verdict: none while it is open (a retry
		// after an earlier verdict) or once it is published.
		v := r.verdict
		n.mu.Unlock()
		return v, nil
	}
	n.mu.Unlock()
	h, err := inputHex(input)
	if err != nil {
		return nil, err
	}
	b, err := readFileLimited(filepath.Join(n.o.Data, "verdicts", h+".json"), 1<<20)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var v Verdict
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("node: stored verdict of %s: %w", input, err)
	}
	return &v, nil
}

// Status is the node's state, as GET /status shows it.
type Status struct {
	Name    string     `json:"name"`
	PeerID  string     `json:"peerId"`
	Addrs   []string   `json:"addrs"`
	Policy  string     `json:"policy"`
	Peers   []string   `json:"peers"`
	Raft    RaftStatus `json:"raft"`
	LogSize uint64     `json:"logSize"`
	Final   uint64     `json:"finalSize"`
	// FinalRoot is the root hash of the final checkpoint, base64.
	FinalRoot string            `json:"finalRoot,omitempty"`
	Building  []string          `json:"building"`
	Verdicts  []string          `json:"recentVerdicts"`
	Dropped   map[string]uint64 `json:"dropped"`
	Refused   uint64            `json:"refusedSpecs"`
	// RefusedPeers counts the connections refused after the handshake:
	// peers outside the policy.
	RefusedPeers uint64 `json:"refusedPeers"`
	// Serving is the node's store and exchange (see serving_build.go).
	Serving *ServingStatus `json:"serving,omitempty"`
}

// RaftStatus is the Raft part of [Status].
type RaftStatus struct {
	State  string `json:"state"`
	Term   string `json:"term"`
	Leader string `json:"leader"`
}

// Status returns the node's state.
func (n *Node) Status() Status {
	s := Status{Name: n.o.Keys.Name, PeerID: n.host.ID().String(), Policy: n.net().Digest(), LogSize: n.svc.Size(),
		Building: n.builds.inFlight(), Dropped: n.gossip.Drops(), Refused: n.rejectedSpecs.Load(), RefusedPeers: n.gater.Refused()}
	s.Serving = n.servingStatus()
	if d := n.sched.Dropped(); d > 0 {
		s.Dropped["requests/"+quorum.DropRateQueueFull] = d
	}
	for _, a := range n.host.Addrs() {
		s.Addrs = append(s.Addrs, a.String())
	}
	for _, p := range n.host.Network().Peers() {
		if m, ok := n.net().ByPeer(p); ok {
			s.Peers = append(s.Peers, m.Name)
		}
	}
	sort.Strings(s.Peers)
	if cp := n.svc.Final(); cp != nil {
		s.Final, s.FinalRoot = cp.Size, base64.StdEncoding.EncodeToString(cp.Hash)
	}
	stats := n.raft.Stats()
	_, leader := n.raft.LeaderWithID()
	s.Raft.Leader = string(leader)
	if id, err := peer.Decode(string(leader)); err == nil {
		if m, ok := n.net().ByPeer(id); ok {
			s.Raft.Leader = m.Name
		}
	}
	s.Raft.State, s.Raft.Term = n.raft.State().String(), stats["term"]
	n.mu.Lock()
	for _, r := range n.byRequest {
		if r.verdict != nil {
			s.Verdicts = append(s.Verdicts, r.verdict.Text)
		}
	}
	n.mu.Unlock()
	sort.Strings(s.Verdicts)
	if len(s.Verdicts) > 20 {
		s.Verdicts = s.Verdicts[len(s.Verdicts)-20:]
	}
	return s
}

// checkpointTrust is the trust a checkpoint note is judged by: that of the
// policy in force at its size (policy.Chain.ForCheckpoint).
func (n *Node) checkpointTrust(b []byte) *policy.Trust {
	if nt, err := witness.OpenUnverified(b); err == nil {
		if cp, err := witness.ParseCheckpointText([]byte(nt.Text)); err == nil {
			_, t := n.chain.ForCheckpoint(cp.Size)
			return t
		}
	}
	_, t := n.chain.ForCheckpoint(math.MaxUint64) // the latest policy
	return t
}
