package quorum

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish"
)

// Queue sizes of the gossip router. With the default of 32 about three
// quarters of a burst of 1,000 messages were dropped silently; with 4096
// all arrived (DESIGN.md).
const gossipQueueSize = 4096

// maxGossipMessageSize is the router's own limit, above [MaxRequestSize]
// and [MaxVoteSize] so that an oversized message still reaches the
// validators and is counted; a message over this limit is dropped by the
// router without a trace (the whole RPC that carries it is refused).
const maxGossipMessageSize = 1 << 20

// Drop reasons, the keys of [Gossip.Drops] after the topic's name
// ("requests/replay", "votes/bad-signature").
const (
	DropOversized        = "oversized"
	DropMalformed        = "malformed"
	DropVersion          = "version"
	DropPolicy           = "wrong-policy"
	DropUnknownPeer      = "unknown-peer"
	DropWrongNode        = "wrong-node"
	DropUnknownRequester = "unknown-requester"
	DropBadSignature     = "bad-signature"
	DropStale            = "stale"
	DropReplay           = "replay"
	DropReplayCacheFull  = "replay-cache-full"
	DropDuplicate        = "duplicate"
	DropRateQueueFull    = "rate-queue-full"
	DropEquivocation     = "equivocation"
	DropVoteBudget       = "vote-budget-full"
)

// Topics returns the gossip topic names of a network: bound to the policy
// digest, so two networks never mix messages.
func Topics(policyDigest string) (requests, votes string) {
	return "/pyrsia-build/" + policyDigest + "/requests/1", "/pyrsia-build/" + policyDigest + "/votes/1"
}

// GossipOptions configure [NewGossip].
type GossipOptions struct {
	Host host.Host
	// Network names the topics (the network's first policy: the topics
	// keep its digest across policy changes, policy.Chain.NetworkID) and,
	// without Members, is the network the validators judge by.
	Network *Network
	// Members, when set, returns the network of the policy in force: each
	// message is judged by what it returns when the message comes (its
	// author, digest, requester and keys), so that a node follows the
	// policy changes of its log.
	Members func() *Network
	// AwaitPolicy, when set, is asked for the network of a policy digest
	// that a message names and that is not the one in force: nodes apply a
	// policy change at the same log index but not at the same instant, so
	// a peer that applied it first gossips under the new digest while this
	// node is a few milliseconds behind. It returns the network once that
	// digest is the policy in force, or nil when it is not soon (a policy
	// already replaced, or one this node never reaches). Without it such
	// messages are dropped at once, and the router's seen-cache then drops
	// their copies for minutes: the round they belong to stalls.
	AwaitPolicy func(ctx context.Context, digest string) *Network
	// ReplayWindow is how far a request's time may be from this node's
	// clock; older or newer requests are dropped as stale. Default 10m.
	ReplayWindow time.Duration
	// NonceCache bounds the seen nonces (requests inside the replay
	// window) of one requester listed in the policy, and of all the
	// unlisted requesters (open policy) whose requests one build node
	// publishes: one requester, or one build node inventing requester
	// keys, fills only its own budget. When a budget is full of unexpired
	// nonces, its new requests are dropped (replay-cache-full) rather than
	// risking a replay. Default 10,000.
	NonceCache int
	// VoteCache bounds the votes one build node has open (one per
	// request, kept for the replay window): a node that sends more votes
	// than that has its own further votes dropped (vote-budget-full),
	// never another node's. Default 10,000.
	VoteCache int
	// OnEquivocation, when set, is called with the evidence when a build
	// node signs a second, different vote for one request: the digest of
	// its first vote and the second vote. The second vote is rejected
	// (equivocation).
	OnEquivocation func(Equivocation)
	// Envelopes, if set, remembers the vote envelopes the validator
	// verified, for the FSM's check of the entry made of them (the same
	// cache as its ChainChecker's).
	Envelopes *VerifiedEnvelopes
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Gossip is a node's gossipsub router with the network's two topics and
// their validators.
//
// Every message is checked by a topic validator before it is delivered to
// anyone or forwarded: size, version, well-formedness, policy digest, the
// signed author (m.GetFrom(), never the peer that forwarded it) being a
// policy build node, signatures, requester, replay. A message that fails is
// rejected (the router penalises the peer that sent it) and counted by
// reason; see [Gossip.Drops].
type Gossip struct {
	o        GossipOptions
	self     peer.ID
	log      *slog.Logger
	ps       *pubsub.PubSub
	reqTopic *pubsub.Topic
	votTopic *pubsub.Topic
	reqSub   *pubsub.Subscription
	votSub   *pubsub.Subscription
	nonces   *budgets
	votes    *budgets
	// copies are the requests the validator accepted, by their bytes
	// (nil: none remembered; see requestCopies).
	copies *requestCopies
	// reqAwaits and voteAwaits bound the messages of each topic waiting
	// for a policy (judgeBy).
	reqAwaits, voteAwaits awaits

	dropsMu sync.Mutex
	drops   map[string]*atomic.Uint64
}

// NewGossip starts gossipsub on o.Host, joins and subscribes to the
// network's topics and registers their validators. It stops when ctx is
// done.
func NewGossip(ctx context.Context, o GossipOptions) (*Gossip, error) {
	if o.Host == nil || o.Network == nil {
		return nil, errors.New("quorum: gossip: host and network are required")
	}
	if o.ReplayWindow <= 0 {
		o.ReplayWindow = 10 * time.Minute
	}
	if o.NonceCache <= 0 {
		o.NonceCache = 10_000
	}
	if o.VoteCache <= 0 {
		o.VoteCache = 10_000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	g := &Gossip{
		o:      o,
		self:   o.Host.ID(),
		log:    o.Logger,
		nonces: newBudgets(o.NonceCache),
		votes:  newBudgets(o.VoteCache),
		copies: newRequestCopies(requestCopiesMax, requestCopiesBytes),
		drops:  make(map[string]*atomic.Uint64),
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	reqName, voteName := Topics(o.Network.Digest())
	// Speak the build topics only with policy build nodes, whatever the
	// connection gater lets in (regular nodes, later).
	ps, err := pubsub.NewGossipSub(ctx, o.Host, routerOptions(func(p peer.ID) bool {
		_, ok := g.net().ByPeer(p)
		return ok
	})...)
	if err != nil {
		return nil, fmt.Errorf("quorum: gossip: %w", err)
	}
	g.ps = ps
	if err := ps.RegisterTopicValidator(reqName, g.validateRequest); err != nil {
		return nil, fmt.Errorf("quorum: gossip: %w", err)
	}
	if err := ps.RegisterTopicValidator(voteName, g.validateVote); err != nil {
		return nil, fmt.Errorf("quorum: gossip: %w", err)
	}
	if g.reqTopic, err = ps.Join(reqName); err != nil {
		return nil, fmt.Errorf("quorum: gossip: joining %s: %w", reqName, err)
	}
	if g.votTopic, err = ps.Join(voteName); err != nil {
		return nil, fmt.Errorf("quorum: gossip: joining %s: %w", voteName, err)
	}
	if g.reqSub, err = g.reqTopic.Subscribe(pubsub.WithBufferSize(gossipQueueSize)); err != nil {
		return nil, fmt.Errorf("quorum: gossip: subscribing to %s: %w", reqName, err)
	}
	if g.votSub, err = g.votTopic.Subscribe(pubsub.WithBufferSize(gossipQueueSize)); err != nil {
		return nil, fmt.Errorf("quorum: gossip: subscribing to %s: %w", voteName, err)
	}
	return g, nil
}

// Close leaves the topics.
func (g *Gossip) Close() error {
	g.reqSub.Cancel()
	g.votSub.Cancel()
	return errors.Join(g.reqTopic.Close(), g.votTopic.Close())
}

// PubSub returns the router, for other topics of the daemon.
func (g *Gossip) PubSub() *pubsub.PubSub { return g.ps }

// Peers returns the peers this node exchanges requests and votes with.
func (g *Gossip) Peers() (requests, votes []peer.ID) {
	return g.reqTopic.ListPeers(), g.votTopic.ListPeers()
}

// PublishOptions configure a publish.
type PublishOptions struct {
	// MinPeers, when positive, waits until this node's mesh for the topic
	// has that many peers before publishing (WithReadiness): a message
	// published before the mesh forms can be lost even when the topic
	// already lists the peers. Bound the wait with ctx.
	MinPeers int
}

// PublishRequest gossips r. The local validator checks it first, as every
// receiver will.
func (g *Gossip) PublishRequest(ctx context.Context, r *BuildRequest, o PublishOptions) error {
	b, err := r.Marshal()
	if err != nil {
		return err
	}
	return g.publish(ctx, g.reqTopic, b, o)
}

// PublishVote gossips v.
func (g *Gossip) PublishVote(ctx context.Context, v *Vote, o PublishOptions) error {
	b, err := v.encoded()
	if err != nil {
		return err
	}
	return g.publish(ctx, g.votTopic, b, o)
}

func (g *Gossip) publish(ctx context.Context, t *pubsub.Topic, b []byte, o PublishOptions) error {
	var opts []pubsub.PubOpt
	if o.MinPeers > 0 {
		opts = append(opts, pubsub.WithReadiness(pubsub.MinTopicSize(o.MinPeers)))
	}
	if err := t.Publish(ctx, b, opts...); err != nil {
		return fmt.Errorf("quorum: gossip: publishing on %s: %w", t.String(), err)
	}
	return nil
}

// Received is a validated message and the build node that wrote it.
type Received[T any] struct {
	Msg   T
	From  Member
	Local bool // published by this node
	// Again: a request this node published before and gossips again
	// (its own subscription delivers every copy it publishes).
	Again  bool
	PeerID peer.ID
}

// NextRequest returns the next validated build request.
func (g *Gossip) NextRequest(ctx context.Context) (Received[*BuildRequest], error) {
	m, err := g.reqSub.Next(ctx)
	if err != nil {
		return Received[*BuildRequest]{}, fmt.Errorf("quorum: gossip: %w", err)
	}
	v := m.ValidatorData.(validated[*BuildRequest])
	return Received[*BuildRequest]{Msg: v.msg, From: v.from, Local: m.GetFrom() == g.self, Again: v.again, PeerID: m.GetFrom()}, nil
}

// NextVote returns the next validated vote.
func (g *Gossip) NextVote(ctx context.Context) (Received[*Vote], error) {
	m, err := g.votSub.Next(ctx)
	if err != nil {
		return Received[*Vote]{}, fmt.Errorf("quorum: gossip: %w", err)
	}
	v := m.ValidatorData.(validated[*Vote])
	return Received[*Vote]{Msg: v.msg, From: v.from, Local: m.GetFrom() == g.self, PeerID: m.GetFrom()}, nil
}

type validated[T any] struct {
	msg   T
	from  Member
	again bool // a request this node gossips again
}

// Drops returns how many messages the validators dropped, by topic and
// reason ("requests/replay": 3), for the daemon's /status.
func (g *Gossip) Drops() map[string]uint64 {
	g.dropsMu.Lock()
	defer g.dropsMu.Unlock()
	out := make(map[string]uint64, len(g.drops))
	for k, c := range g.drops {
		out[k] = c.Load()
	}
	return out
}

// DropsTotal returns the sum of [Gossip.Drops].
func (g *Gossip) DropsTotal() uint64 {
	var n uint64
	for _, c := range g.Drops() {
		n += c
	}
	return n
}

func (g *Gossip) drop(topic, reason string, m *pubsub.Message, err error) pubsub.ValidationResult {
	key := topic + "/" + reason
	g.dropsMu.Lock()
	c, ok := g.drops[key]
	if !ok {
		c = new(atomic.Uint64)
		g.drops[key] = c
	}
	g.dropsMu.Unlock()
	c.Add(1)
	g.log.Debug("gossip message dropped", "topic", topic, "reason", reason, "author", m.GetFrom().String(), "via", m.ReceivedFrom.String(), "err", err)
	if reason == DropDuplicate || reason == DropReplay {
		// A copy of a message already accepted: a requester gossips its
		// request again until its round is over. Ignored, not rejected:
		// the peer that forwarded it did nothing wrong.
		return pubsub.ValidationIgnore
	}
	return pubsub.ValidationReject
}

// net is the network messages are judged by now. A message's author is
// the policy build node that signed it, m.GetFrom() (the router checked
// the signature, StrictSign), never the peer that forwarded it.
func (g *Gossip) net() *Network {
	if g.o.Members != nil {
		if n := g.o.Members(); n != nil {
			return n
		}
	}
	return g.o.Network
}

// routerOptions are the gossipsub router's settings of a build node:
// every message signed by its author's libp2p key and checked, the
// message size and queues of the build topics, and the mesh only with
// the peers speak answers true for.
func routerOptions(speak func(peer.ID) bool) []pubsub.Option {
	return []pubsub.Option{
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithMaxMessageSize(maxGossipMessageSize),
		pubsub.WithPeerOutboundQueueSize(gossipQueueSize),
		pubsub.WithValidateQueueSize(gossipQueueSize),
		pubsub.WithPeerFilter(func(p peer.ID, _ string) bool { return speak(p) }),
	}
}

// judgeBy returns the network a message naming digest is judged by: the
// policy in force, or, when digest is another, the one AwaitPolicy gives
// (this node catching up with a change its peers applied first).
//
// The waits are bounded, a topic's own (aw): each build node of the
// policy in force has maxAwaitsPerMember, and all other authors (a
// build node a change adds, a stranger) share maxAwaitsOthers. A message
// past its author's bound is judged at once by the policy in force. An
// author cannot fill the topic validator's slots (1,024 a topic) with
// messages naming a digest that never comes, each held for the whole
// wait, so that the router drops everyone else's messages as throttled.
func (g *Gossip) judgeBy(ctx context.Context, aw *awaits, net *Network, digest string, author peer.ID) *Network {
	if digest == net.Digest() || g.o.AwaitPolicy == nil {
		return net
	}
	_, member := net.ByPeer(author)
	if !aw.acquire(author, member) {
		g.log.Debug("gossip message not held for its policy: its author's waits are all taken", "author", author.String(), "policy", digest)
		return net
	}
	defer aw.release(author, member)
	if n := g.o.AwaitPolicy(ctx, digest); n != nil {
		return n
	}
	return net
}

// judgeStranger judges, before it is parsed, a message whose author is
// no build node of the policy in force (net): parsing a vote takes
// megabytes of heap for a 64 KiB statement, and anyone a serving build
// node admits can publish on the topics. Only the message's "policy" is
// read: under the policy in force, the author is a stranger to it; under
// another, it may be a build node a change adds, which this node has not
// applied yet (judgeBy's wait, in the shared bound of such authors). It
// returns the network the author is a build node of, or nil.
func (g *Gossip) judgeStranger(ctx context.Context, aw *awaits, net *Network, data []byte, author peer.ID) *Network {
	var probe struct {
		Policy string `json:"policy"`
	}
	if json.Unmarshal(data, &probe) != nil || probe.Policy == net.Digest() {
		return nil
	}
	n := g.judgeBy(ctx, aw, net, probe.Policy, author)
	if _, ok := n.ByPeer(author); !ok {
		return nil
	}
	return n
}

// Bounds of the messages of one topic waiting at once for a policy not in
// force (AwaitPolicy): those of one build node of the policy in force,
// and those of all other authors together. A node a few milliseconds
// behind a change holds a peer's messages of those milliseconds.
const (
	maxAwaitsPerMember = 64
	maxAwaitsOthers    = 64
)

// awaits counts one topic's messages waiting for a policy, by author.
type awaits struct {
	mu       sync.Mutex
	byMember map[peer.ID]int
	others   int
}

// acquire takes a wait for a message of author (a member of the policy
// in force, or not), and reports false when its bound is reached.
func (a *awaits) acquire(author peer.ID, member bool) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !member {
		if a.others >= maxAwaitsOthers {
			return false
		}
		a.others++
		return true
	}
	if a.byMember[author] >= maxAwaitsPerMember {
		return false
	}
	if a.byMember == nil {
		a.byMember = make(map[peer.ID]int)
	}
	a.byMember[author]++
	return true
}

// release gives back a wait acquire took.
func (a *awaits) release(author peer.ID, member bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !member {
		a.others--
		return
	}
	if a.byMember[author]--; a.byMember[author] <= 0 {
		delete(a.byMember, author)
	}
}

func (g *Gossip) validateRequest(ctx context.Context, _ peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	const topic = "requests"
	data := m.GetData()
	if len(data) > MaxRequestSize {
		return g.drop(topic, DropOversized, m, nil)
	}
	net := g.net()
	if _, known := net.ByPeer(m.GetFrom()); !known {
		if net = g.judgeStranger(ctx, &g.reqAwaits, net, data, m.GetFrom()); net == nil {
			return g.drop(topic, DropUnknownPeer, m, nil)
		}
	}
	// A copy of a request accepted before (a requester gossips its
	// request again until its round is over: these are most of the
	// requests a node sees) is not parsed or its signature verified
	// again: the same bytes parse the same, and their signature verified
	// by the key of the requester they name (a key id is the key's
	// digest). Every other check is made again: author, policy,
	// requester still allowed, time, nonce.
	sum := sha256.Sum256(data)
	r, copied := g.copies.get(sum)
	if !copied {
		var err error
		r, err = ParseBuildRequest(data)
		if err != nil {
			if errors.Is(err, ErrUnsupportedVersion) {
				return g.drop(topic, DropVersion, m, err)
			}
			return g.drop(topic, DropMalformed, m, err)
		}
	}
	net = g.judgeBy(ctx, &g.reqAwaits, net, r.Policy, m.GetFrom())
	from, ok := net.ByPeer(m.GetFrom())
	if !ok {
		return g.drop(topic, DropUnknownPeer, m, nil)
	}
	if r.Policy != net.Digest() {
		return g.drop(topic, DropPolicy, m, nil)
	}
	key, ok := net.Requester(r.Requester)
	if !ok && net.Open() && len(r.RequesterKey) > 0 {
		var err error
		key, err = attest.ParsePublicKey("requester "+short(r.Requester), r.RequesterKey)
		ok = err == nil
	}
	if !ok {
		return g.drop(topic, DropUnknownRequester, m, nil)
	}
	if !copied {
		if err := r.VerifySignature(key); err != nil {
			return g.drop(topic, DropBadSignature, m, err)
		}
	}
	now := g.o.Now()
	if d := now.Sub(r.Time); d > g.o.ReplayWindow || d < -g.o.ReplayWindow {
		return g.drop(topic, DropStale, m, nil)
	}
	// The nonce budget: the listed requester's own, or, for a key the
	// policy does not list, the publishing build node's.
	budget := "requester/" + r.Requester
	if _, listed := net.Requester(r.Requester); !listed {
		budget = "via/" + from.Name
	}
	switch res, _ := g.nonces.add(budget, r.Requester+"/"+r.Nonce, "", r.Time.Add(g.o.ReplayWindow), now); res {
	case addSeen:
		if m.ReceivedFrom == g.self && from.PeerID == g.self {
			// This node gossips its own request again (a peer may have
			// missed it): let it out; peers that have it ignore it.
			m.ValidatorData = validated[*BuildRequest]{msg: r, from: from, again: true}
			return pubsub.ValidationAccept
		}
		return g.drop(topic, DropReplay, m, nil)
	case addFull:
		return g.drop(topic, DropReplayCacheFull, m, nil)
	}
	g.copies.add(sum, r, requestCopySize(len(data)))
	m.ValidatorData = validated[*BuildRequest]{msg: r, from: from}
	return pubsub.ValidationAccept
}

func (g *Gossip) validateVote(ctx context.Context, _ peer.ID, m *pubsub.Message) pubsub.ValidationResult {
	const topic = "votes"
	data := m.GetData()
	if len(data) > MaxVoteSize {
		return g.drop(topic, DropOversized, m, nil)
	}
	net := g.net()
	if _, known := net.ByPeer(m.GetFrom()); !known {
		if net = g.judgeStranger(ctx, &g.voteAwaits, net, data, m.GetFrom()); net == nil {
			return g.drop(topic, DropUnknownPeer, m, nil)
		}
	}
	// The statement is remembered only once the vote is accepted: until
	// its signature checks, anyone may have sent it.
	var (
		parsed *publish.ParsedStatement
		key    [sha256.Size]byte
	)
	v, err := parseVote(data, func(payload []byte) (*publish.ParsedStatement, error) {
		ps, k, err := g.o.Envelopes.lookupStatement(payload)
		parsed, key = ps, k
		return ps, err
	})
	if err != nil {
		if errors.Is(err, ErrUnsupportedVersion) {
			return g.drop(topic, DropVersion, m, err)
		}
		return g.drop(topic, DropMalformed, m, err)
	}
	net = g.judgeBy(ctx, &g.voteAwaits, net, v.Policy, m.GetFrom())
	from, ok := net.ByPeer(m.GetFrom())
	if !ok {
		return g.drop(topic, DropUnknownPeer, m, nil)
	}
	if v.Policy != net.Digest() {
		return g.drop(topic, DropPolicy, m, nil)
	}
	if v.Node != from.Name {
		return g.drop(topic, DropWrongNode, m, nil)
	}
	if err := v.verifySignature(from, g.o.Envelopes.Verify); err != nil {
		return g.drop(topic, DropBadSignature, m, err)
	}
	now := g.o.Now()
	if d := now.Sub(v.Time); d > g.o.ReplayWindow || d < -g.o.ReplayWindow {
		return g.drop(topic, DropStale, m, nil)
	}
	// One vote per node and request, kept as long as the vote's time is
	// inside the replay window (later copies are stale), in the node's
	// own budget.
	digest := digestOf(data)
	switch res, first := g.votes.add(v.Node, v.Request, digest, v.Time.Add(g.o.ReplayWindow), now); {
	case res == addSeen && first == digest:
		return g.drop(topic, DropDuplicate, m, nil)
	case res == addSeen:
		err := fmt.Errorf("quorum: node %s signed two different votes for request %s (input %s): first %s, then %s", v.Node, short(v.Request), short(v.InputDigest), short(first), short(digest))
		if g.o.OnEquivocation != nil {
			g.o.OnEquivocation(Equivocation{Node: v.Node, Request: v.Request, InputDigest: v.InputDigest, First: "sha256:" + first, Second: data})
		}
		return g.drop(topic, DropEquivocation, m, err)
	case res == addFull:
		return g.drop(topic, DropVoteBudget, m, nil)
	}
	g.o.Envelopes.rememberStatement(key, parsed)
	m.ValidatorData = validated[*Vote]{msg: v, from: from}
	return pubsub.ValidationAccept
}

// Bounds of the requests the validator remembers as accepted (copies):
// the requests of the last few minutes of a busy network.
const (
	requestCopiesMax   = 4096
	requestCopiesBytes = 16 << 20
)

// requestCopies remembers, within bounds (a count, and the bytes of the
// requests: each holds its spec), the requests the validator accepted,
// keyed by the SHA-256 of their bytes: a message of the same bytes is the
// same request, already parsed and its signature verified. The oldest
// are forgotten first. A nil *requestCopies remembers nothing.
type requestCopies = lru[*BuildRequest]

func newRequestCopies(max, maxBytes int) *requestCopies {
	return newLRU[*BuildRequest](max, maxBytes)
}

// requestCopySize is what a remembered request of n bytes holds: the
// message and what parsing it holds (the spec, the strings).
func requestCopySize(n int) int { return 2*n + 512 }

// Equivocation is the evidence of a build node that signed two different
// votes for one request.
type Equivocation struct {
	Node        string
	Request     string
	InputDigest string
	// First is the digest ("sha256:<hex>") of the vote message accepted
	// first; Second is the second vote message, as signed.
	First  string
	Second []byte
}

// budgets are expiring sets by owner (a build node, a requester), each
// bounded: one owner filling its set never takes room from another.
type budgets struct {
	mu   sync.Mutex
	max  int
	sets map[string]*expiringSet
}

func newBudgets(max int) *budgets {
	return &budgets{max: max, sets: make(map[string]*expiringSet)}
}

// add adds key (with val) to owner's set; for a key already there it
// returns addSeen and the value stored first.
func (b *budgets) add(owner, key, val string, expires, now time.Time) (addResult, string) {
	b.mu.Lock()
	s, ok := b.sets[owner]
	if !ok {
		s = newExpiringSet(b.max)
		b.sets[owner] = s
	}
	b.mu.Unlock()
	return s.add(key, val, expires, now)
}

// expiringSet is a set of keys with expiry times (and a value each),
// bounded in size. Expired keys are removed before a key is refused for
// lack of room.
type expiringSet struct {
	mu   sync.Mutex
	max  int
	keys map[string]setEntry
	// order holds keys by insertion; expiries are not monotonic in it,
	// so a full set is swept.
	order []string
}

type addResult int

const (
	addNew addResult = iota
	addSeen
	addFull
)

type setEntry struct {
	expires time.Time
	val     string
}

func newExpiringSet(max int) *expiringSet {
	return &expiringSet{max: max, keys: make(map[string]setEntry)}
}

func (s *expiringSet) add(key, val string, expires, now time.Time) (addResult, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.keys[key]; ok && e.expires.After(now) {
		return addSeen, e.val
	}
	if len(s.keys) >= s.max {
		s.sweep(now)
		if len(s.keys) >= s.max {
			return addFull, ""
		}
	}
	s.keys[key] = setEntry{expires: expires, val: val}
	s.order = append(s.order, key)
	return addNew, ""
}

// sweep removes expired keys.
func (s *expiringSet) sweep(now time.Time) {
	kept := s.order[:0]
	for _, k := range s.order {
		e, ok := s.keys[k]
		if !ok {
			continue
		}
		if !e.expires.After(now) {
			delete(s.keys, k)
			continue
		}
		kept = append(kept, k)
	}
	// Drop duplicates left by re-added keys.
	seen := make(map[string]bool, len(kept))
	out := kept[:0]
	for _, k := range kept {
		if !seen[k] {
			seen[k] = true
			out = append(out, k)
		}
	}
	s.order = out
}

func (s *expiringSet) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.keys)
}

// sortedKeys returns m's keys sorted.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
