package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/logservice"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	"github.com/pyrsia/pyrsia-build/quorum"
	"golang.org/x/mod/sumdb/note"
)

// Membership: a running build node acts on the policy changes of its log.
//
// The FSM applies a change at log index i (policy.Chain, the same index
// on every node) and its observer, [Node.applied], switches the node's
// membership before the FSM applies the next entry: from then on the
// policy in force from i+1 decides
//
//   - who may vote and request: the gossip validators judge each message
//     by the network of the policy in force (its build nodes' peer ids
//     and cosign keys, its requesters; votes and requests must name its
//     digest), so a vote signed with a rotated-out key, or by a removed
//     node, is dropped;
//   - the majority: a round opened after the change counts its votes by
//     the new build nodes, floor(n/2)+1 of them;
//   - the connection gater: it admits the new build nodes; the build
//     protocols (Raft's inbound streams, cosigning, manifests, gossip's
//     peer filter) refuse removed ones at once, but the gater admits
//     their connections until Raft's configuration no longer lists them
//     (refreshKept closes them then): Raft changes voters one at a time,
//     each change committed by a majority of the voters before it, so
//     the leader must reach removed voters (a change removing a majority
//     at once). They only answer the new policy's nodes: none can ask
//     for votes or lead;
//   - the cosigners of a checkpoint of size N: the build nodes of the
//     policy in force at N (policy.Chain.ForCheckpoint), whose note keys
//     make it final; a removed node's cosignature does not count;
//   - Raft's voters: the leader adds the new build nodes as voters (their
//     peer id as id and address, over the libp2p transport) and removes
//     the removed ones. It reconciles Raft's configuration with the
//     policy in force after every change and every second while it leads
//     (after a barrier, so that it judges by everything committed), so a
//     new leader finishes what an old one began.
//
// A round already open at a change keeps the network it opened under (a
// round's votes are bound to its request's policy): it counts only votes
// that name that policy, by that policy's majority. Its entry is judged,
// as every entry, by the FSM under the policy in force at the entry's
// index, so an old round's quorum that the new policy does not accept
// (a majority that became a minority, a rotated-out key) is refused and
// the round ends at its deadline with a verdict; its requester asks
// again under the new policy. Votes gossiped after the change for such a
// round are dropped by the validators (they name the old policy).
//
// A node added by a change is started with the new policy (which lists
// it) and the network's first policy ([Options].FirstPolicy): it does
// not bootstrap Raft, the leader adds it; it replays the log (Raft, or
// the tiles of a peer after a snapshot) and so applies the change that
// added it, and votes from then on. Until then its bootstrap peers, whose
// gaters refused it, are dialled again every second.

// membership is the policy in force as the node acts on it.
type membership struct {
	policy       *policy.Policy
	from         uint64 // the first log index it judges
	net          *quorum.Network
	members      []string // policy order
	logVerifiers []note.Verifier
	// voter: the policy lists this node with the peer id and cosign key
	// it runs with.
	voter bool
	// listed are the peer ids the policies of the chain list, up to this
	// one: the only removed nodes the gater still admits.
	listed map[peer.ID]bool
}

// chainPeers returns the peer ids of the build nodes of every policy of
// the chain.
func (n *Node) chainPeers() map[peer.ID]bool {
	out := map[peer.ID]bool{}
	add := func(p *policy.Policy) {
		for _, pn := range p.Nodes {
			if id, err := peer.Decode(pn.PeerID); err == nil {
				out[id] = true
			}
		}
	}
	first, _ := n.chain.At(0)
	add(first)
	for _, i := range n.chain.Changes() {
		p, _ := n.chain.At(i + 1)
		add(p)
	}
	return out
}

// kept returns the removed build nodes still admitted.
func (n *Node) kept() []peer.ID {
	if k := n.raftKept.Load(); k != nil {
		return *k
	}
	return nil
}

// keptAfter returns the peers of ids, each once, that m's policy does not
// list but a policy of its chain did, other than this node.
func (n *Node) keptAfter(m *membership, ids []peer.ID) []peer.ID {
	var out []peer.ID
	for _, id := range ids {
		if _, in := m.net.ByPeer(id); in || !m.listed[id] || id == n.host.ID() || slices.Contains(out, id) {
			continue
		}
		out = append(out, id)
	}
	return out
}

// refreshKept keeps admitted only the removed build nodes Raft's
// configuration still lists, and closes the connections of the others:
// the gater keeps them out from then on.
func (n *Node) refreshKept() {
	if n.raft == nil {
		return
	}
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return
	}
	var ids []peer.ID
	for _, s := range f.Configuration().Servers {
		if id, err := peer.Decode(string(s.ID)); err == nil {
			ids = append(ids, id)
		}
	}
	n.memberMu.Lock()
	defer n.memberMu.Unlock()
	m := n.cur.Load()
	kept := n.keptAfter(m, ids)
	before := n.kept()
	// A node the configuration lists again (a leader's change not yet
	// committed, rolled back) is not admitted again: only fewer.
	kept = slices.DeleteFunc(kept, func(id peer.ID) bool { return !slices.Contains(before, id) })
	if len(kept) == len(before) {
		return
	}
	n.raftKept.Store(&kept)
	n.gater.SetPeers(append(m.net.PeerIDs(), kept...))
	for _, id := range before {
		if !slices.Contains(kept, id) {
			n.host.Network().ClosePeer(id)
			n.log.Info("a removed build node is out of Raft's configuration: refused from now on", "peer", id.String())
		}
	}
}

// net returns the network of the policy in force.
func (n *Node) net() *quorum.Network { return n.cur.Load().net }

// setMembership makes p, in force from index from, the node's policy.
func (n *Node) setMembership(p *policy.Policy, from uint64) error {
	net, err := quorum.NetworkFromPolicy(p)
	if err != nil {
		return fmt.Errorf("node: the policy in force from index %d: %w", from, err)
	}
	m := &membership{policy: p, from: from, net: net}
	for _, pn := range p.Nodes {
		m.members = append(m.members, pn.Name)
		v, err := witness.NewLogVerifier(pn.NoteKey)
		if err != nil {
			return fmt.Errorf("node: the policy in force from index %d: node %s: %w", from, pn.Name, err)
		}
		m.logVerifiers = append(m.logVerifiers, v)
	}
	m.voter = n.isVoter(net)
	m.listed = n.chainPeers()
	// The gater keeps admitting the connections of the nodes this policy
	// removes until Raft's configuration no longer lists them: Raft
	// changes its voters one at a time, and each change needs a majority
	// of the voters before it, which may be mostly removed nodes (a
	// change that removes a majority at once), so the leader must still
	// reach them. They only answer: Raft's stream layer serves the RPCs
	// (votes, appends) of the policy's build nodes only, so a removed
	// node cannot be elected or lead; gossip, cosigning and manifests
	// refuse them. refreshKept drops them once the leader removed them.
	var kept []peer.ID
	old := n.cur.Load()
	if old != nil {
		cands := append(old.net.PeerIDs(), n.kept()...)
		if n.raft == nil {
			// Starting (New, before Raft runs): the log's changes are
			// read at once, so any node of the chain may still be in
			// Raft's configuration; the first refreshKept trims them.
			for id := range m.listed {
				cands = append(cands, id)
			}
		}
		kept = n.keptAfter(m, cands)
	}
	n.raftKept.Store(&kept)
	n.cur.Store(m)
	n.gater.SetPeers(append(net.PeerIDs(), kept...))
	if old == nil {
		return nil
	}
	n.log.Info("acting on the policy in force", "policy", p.Digest(), "from", from, "nodes", len(p.Nodes), "threshold", net.Threshold(), "voter", m.voter)
	if !m.voter {
		if self, listed := p.Node(n.o.Keys.Name); listed {
			n.log.Warn("the policy in force lists other keys for this node than it runs with: it does not vote; restart it with the keys the policy lists", "policy", p.Digest(), "peer", self.PeerID)
		} else if old.voter {
			n.log.Warn("the policy in force does not list this node: it no longer votes", "policy", p.Digest())
		}
	}
	select {
	case n.reconcileC <- struct{}{}:
	default:
	}
	return nil
}

// isVoter reports whether net lists this node with its peer id and cosign
// key.
func (n *Node) isVoter(net *quorum.Network) bool {
	m, ok := net.ByName(n.o.Keys.Name)
	return ok && m.PeerID == n.o.Keys.PeerID && m.Key.ID == n.selfKeyID
}

// followChain switches the membership to the chain's latest policy if it
// is not the one the node acts on.
func (n *Node) followChain() error {
	n.memberMu.Lock()
	defer n.memberMu.Unlock()
	p, from := n.chain.Current()
	if cur := n.cur.Load(); cur != nil && cur.from == from && cur.policy.Digest() == p.Digest() {
		return nil
	}
	return n.setMembership(p, from)
}

// cosignerCache holds the cosigners of each policy of the chain, by
// digest.
type cosignerCache struct {
	mu sync.Mutex
	by map[string][]logservice.Cosigner
}

// cosignersFor returns the cosigners of a checkpoint of size entries: this
// node's witness and the other build nodes of the policy in force at size.
func (n *Node) cosignersFor(size uint64) []logservice.Cosigner {
	p, _ := n.chain.ForCheckpoint(size)
	d := p.Digest()
	c := &n.cosigners
	c.mu.Lock()
	defer c.mu.Unlock()
	if cs, ok := c.by[d]; ok {
		return cs
	}
	cs := []logservice.Cosigner{n.witness}
	for _, pn := range p.Nodes {
		if pn.Name == n.o.Keys.Name {
			continue
		}
		id, err := peer.Decode(pn.PeerID)
		if err != nil {
			continue // checked by NetworkFromPolicy before it is in force
		}
		cv, err := witness.NewCosignatureVerifier(pn.NoteKey)
		if err != nil {
			continue
		}
		cs = append(cs, &PeerCosigner{Host: n.host, Peer: id, Name: pn.Name, Verifier: cv})
	}
	if c.by == nil {
		c.by = map[string][]logservice.Cosigner{}
	}
	c.by[d] = cs
	return cs
}

// membershipTick is how often the membership loop looks again.
const membershipTick = time.Second

// membershipLoop follows the chain (a change applied by a catch-up from
// tiles is not observed entry by entry), dials the bootstrap peers this
// node is not connected to, and, on the leader, reconciles Raft's voters
// with the policy in force.
func (n *Node) membershipLoop(ctx context.Context) error {
	t := time.NewTicker(membershipTick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-n.reconcileC:
		}
		if err := n.followChain(); err != nil {
			n.log.ErrorContext(ctx, "following the policy in force", "err", err)
		}
		n.refreshKept()
		n.redial(ctx)
		if n.raft.State() == raft.Leader {
			if err := n.reconcileRaft(ctx); err != nil && ctx.Err() == nil {
				n.log.WarnContext(ctx, "reconciling Raft's voters with the policy in force", "err", err)
			}
		}
	}
}

// redial connects to the bootstrap peers of the policy in force that this
// node has no connection to.
func (n *Node) redial(ctx context.Context) {
	net := n.net()
	for _, ai := range n.o.Bootstrap {
		if _, ok := net.ByPeer(ai.ID); !ok || ai.ID == n.host.ID() || n.host.Network().Connectedness(ai.ID) == network.Connected {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		n.host.Connect(cctx, ai)
		cancel()
	}
}

// raftMatches reports whether Raft's configuration has exactly the build
// nodes of net, all voters.
func (n *Node) raftMatches(net *quorum.Network) (bool, error) {
	f := n.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return false, err
	}
	servers := f.Configuration().Servers
	if len(servers) != len(net.Members()) {
		return false, nil
	}
	for _, s := range servers {
		id, err := peer.Decode(string(s.ID))
		if err != nil || s.Suffrage != raft.Voter {
			return false, nil
		}
		if _, ok := net.ByPeer(id); !ok {
			return false, nil
		}
	}
	return true, nil
}

// reconcileRaft makes Raft's voters the build nodes of the policy in
// force, on the leader. It first waits (a barrier) until this node has
// applied everything committed, so that a new leader does not judge by a
// policy a committed change replaced.
func (n *Node) reconcileRaft(ctx context.Context) error {
	if ok, err := n.raftMatches(n.net()); err != nil || ok {
		return err
	}
	if err := n.raft.Barrier(5 * time.Second).Error(); err != nil {
		return fmt.Errorf("barrier: %w", err)
	}
	if err := n.followChain(); err != nil {
		return err
	}
	net := n.net()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	added, removed, err := n.raft.Reconcile(rctx, net)
	if len(added) > 0 || len(removed) > 0 {
		n.log.InfoContext(ctx, "Raft's voters follow the policy in force", "policy", net.Digest(), "added", added, "removed", removed)
	}
	return err
}

// Policy change submission.

// Errors of [Node.SubmitPolicyChange]. Use errors.Is.
var (
	// ErrChangeMalformed: the bytes are not a policy change entry.
	ErrChangeMalformed = errors.New("node: malformed policy change")
	// ErrChangeStale: the change does not replace the policy in force.
	ErrChangeStale = errors.New("node: the policy change does not replace the policy in force")
	// ErrChangeNotApproved: the change lacks a majority's approvals of
	// the policy in force (or is refused for another rule).
	ErrChangeNotApproved = errors.New("node: the policy change is refused")
)

// PolicyChangeResult is the answer of POST /v1/policy-changes.
type PolicyChangeResult struct {
	// Index is the log index of the change; the new policy is in force
	// from Index+1.
	Index     uint64   `json:"index"`
	Policy    string   `json:"policy"`
	Previous  string   `json:"previous"`
	Approvers []string `json:"approvers"`
	// Already is true when the change was in the log before.
	Already bool `json:"already,omitempty"`
}

// maxChange bounds a policy change posted or forwarded.
const maxChange = publish.MaxEntrySize + 1

// ChangeProtocol is the libp2p protocol on which a build node that does
// not lead Raft forwards a policy change to the leader.
const ChangeProtocol = "/pyrsia-build/policy-change/1"

// SubmitPolicyChange checks a policy change (the bytes 'network propose'
// and 'network approve' write; a final newline is ignored) against the
// policy in force: it must be well-formed, name the policy in force as
// its previous one, and carry the approvals of a majority of that
// policy's build nodes. It then has it appended through Raft: proposed
// here on the leader, or forwarded to the leader. Every node's FSM checks
// it again at its index.
func (n *Node) SubmitPolicyChange(ctx context.Context, b []byte) (*PolicyChangeResult, error) {
	entry, res, err := n.checkChange(b)
	if err != nil || res.Already {
		return res, err
	}
	for attempt := 0; ; attempt++ {
		if n.raft.State() == raft.Leader {
			return n.proposeChange(ctx, entry, res)
		}
		_, leader := n.raft.LeaderWithID()
		id, perr := peer.Decode(string(leader))
		if leader != "" && perr == nil && id != n.host.ID() {
			out, err := n.forwardChange(ctx, id, entry)
			if err == nil || !errors.Is(err, quorum.ErrNotLeader) || attempt >= 3 {
				return out, err
			}
		} else if attempt >= 50 {
			return nil, fmt.Errorf("node: no Raft leader to append the policy change: %w", quorum.ErrNotLeader)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// checkChange parses and judges a change against the policy in force; it
// returns the entry's canonical bytes.
func (n *Node) checkChange(b []byte) ([]byte, *PolicyChangeResult, error) {
	ch, err := publish.ParsePolicyChange(bytes.TrimSuffix(b, []byte("\n")))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrChangeMalformed, err)
	}
	entry, err := publish.MarshalPolicyChange(ch)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrChangeMalformed, err)
	}
	res := &PolicyChangeResult{Policy: ch.New.Digest(), Previous: ch.Previous}
	cur, from := n.chain.Current()
	if i, ok := n.fsm.Lookup(publish.PolicyKeyPrefix + ch.New.Digest()); ok {
		if cur.Digest() != ch.New.Digest() {
			// A replay, or a return to an earlier policy (the chain
			// refuses it): not "already" done.
			return nil, nil, fmt.Errorf("%w: the policy %s was appended at log index %d but is not in force: %s is (from log index %d); a change may not return to an earlier policy: make it differ (a new key, say)",
				ErrChangeStale, ch.New.Digest(), i, cur.Digest(), from)
		}
		res.Index, res.Already = i, true
		return entry, res, nil
	}
	if ch.Previous != cur.Digest() {
		why := fmt.Sprintf("it replaces %s, but the policy in force (from log index %d) is %s", ch.Previous, from, cur.Digest())
		if n.inChain(ch.Previous) {
			why += ": a later change replaced it; propose the change again against the policy in force"
		}
		return nil, nil, fmt.Errorf("%w: %s", ErrChangeStale, why)
	}
	// The chain's judgement, not the change's alone: it also refuses a
	// return to an earlier policy, as every node's FSM will.
	ev, err := n.chain.Check(from, ch)
	if ev != nil {
		res.Approvers = ev.Approvers
	}
	if err != nil {
		return nil, res, fmt.Errorf("%w: %w", ErrChangeNotApproved, err)
	}
	return entry, res, nil
}

// inChain reports whether digest is a policy of the chain.
func (n *Node) inChain(digest string) bool {
	if n.chain.NetworkID() == digest {
		return true
	}
	for _, i := range n.chain.Changes() {
		if p, _ := n.chain.At(i + 1); p.Digest() == digest {
			return true
		}
	}
	return false
}

// proposeChange appends a checked change through this leader's Raft.
func (n *Node) proposeChange(ctx context.Context, entry []byte, res *PolicyChangeResult) (*PolicyChangeResult, error) {
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	out, err := n.raft.Propose(pctx, quorum.AppendEntryCommand(entry))
	if err != nil {
		return nil, err
	}
	ar, _ := out.(quorum.ApplyResult)
	switch {
	case errors.Is(ar.Err, quorum.ErrDuplicateInput):
		i, _ := n.fsm.Lookup(publish.PolicyKeyPrefix + res.Policy)
		if cur, _ := n.chain.Current(); cur.Digest() != res.Policy {
			return nil, fmt.Errorf("%w: the policy %s was appended at log index %d but is not in force", ErrChangeStale, res.Policy, i)
		}
		res.Index, res.Already = i, true
	case ar.Err != nil:
		return nil, fmt.Errorf("%w: every node's FSM refused it: %w", ErrChangeNotApproved, ar.Err)
	default:
		res.Index = ar.Index
	}
	return res, nil
}

// changeAnswer is the leader's answer on [ChangeProtocol].
type changeAnswer struct {
	Result *PolicyChangeResult `json:"result,omitempty"`
	Error  string              `json:"error,omitempty"`
	// Kind names the error: "malformed", "stale", "refused", "not-leader".
	Kind string `json:"kind,omitempty"`
}

func changeKind(err error) string {
	switch {
	case errors.Is(err, ErrChangeMalformed):
		return "malformed"
	case errors.Is(err, ErrChangeStale):
		return "stale"
	case errors.Is(err, ErrChangeNotApproved):
		return "refused"
	case errors.Is(err, quorum.ErrNotLeader):
		return "not-leader"
	}
	return ""
}

func kindErr(kind, msg string) error {
	switch kind {
	case "malformed":
		return fmt.Errorf("%w (leader: %s)", ErrChangeMalformed, msg)
	case "stale":
		return fmt.Errorf("%w (leader: %s)", ErrChangeStale, msg)
	case "refused":
		return fmt.Errorf("%w (leader: %s)", ErrChangeNotApproved, msg)
	case "not-leader":
		return fmt.Errorf("%w: %s", quorum.ErrNotLeader, msg)
	}
	return fmt.Errorf("node: the leader: %s", msg)
}

// forwardChange sends the change to the leader and returns its answer.
func (n *Node) forwardChange(ctx context.Context, leader peer.ID, entry []byte) (*PolicyChangeResult, error) {
	ctx, cancel := context.WithTimeout(ctx, 40*time.Second)
	defer cancel()
	st, err := n.host.NewStream(ctx, leader, ChangeProtocol)
	if err != nil {
		return nil, fmt.Errorf("node: forwarding the policy change to the leader %s: %w", leader, err)
	}
	defer st.Close()
	if d, ok := ctx.Deadline(); ok {
		st.SetDeadline(d)
	}
	if _, err := st.Write(entry); err != nil {
		return nil, fmt.Errorf("node: forwarding the policy change to the leader %s: %w", leader, err)
	}
	st.CloseWrite()
	var a changeAnswer
	if err := json.NewDecoder(io.LimitReader(st, 1<<20)).Decode(&a); err != nil {
		return nil, fmt.Errorf("node: the leader %s's answer to the policy change: %w", leader, err)
	}
	if a.Error != "" {
		return nil, kindErr(a.Kind, a.Error)
	}
	if a.Result == nil {
		return nil, fmt.Errorf("node: the leader %s answered the policy change with no result", leader)
	}
	return a.Result, nil
}

// serveChange is the leader's side of [ChangeProtocol]: only build nodes
// of the policy in force are answered, and only the leader proposes.
func (n *Node) serveChange(st network.Stream) {
	defer st.Close()
	st.SetDeadline(time.Now().Add(40 * time.Second))
	answer := func(a changeAnswer) { json.NewEncoder(st).Encode(a) }
	if _, ok := n.net().ByPeer(st.Conn().RemotePeer()); !ok {
		st.Reset()
		return
	}
	b, err := io.ReadAll(io.LimitReader(st, maxChange+1))
	if err != nil || len(b) > maxChange {
		answer(changeAnswer{Error: fmt.Sprintf("reading the change: over %d bytes or cut (%v)", maxChange, err), Kind: "malformed"})
		return
	}
	if n.raft.State() != raft.Leader {
		answer(changeAnswer{Error: "this node no longer leads Raft", Kind: "not-leader"})
		return
	}
	entry, res, err := n.checkChange(b)
	if err == nil && !res.Already {
		res, err = n.proposeChange(context.Background(), entry, res)
	}
	if err != nil {
		answer(changeAnswer{Error: err.Error(), Kind: changeKind(err)})
		return
	}
	answer(changeAnswer{Result: res})
}

// servePolicyChange is POST /v1/policy-changes: a policy change, as
// 'network approve' writes it (application/json). The change carries its
// own authority (the approvals), so no API token is needed; the API
// answers only local clients.
func (n *Node) servePolicyChange(w http.ResponseWriter, r *http.Request) {
	if why := n.checkLocal(r); why != "" {
		httpErr(w, http.StatusForbidden, errors.New(why))
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		httpErr(w, http.StatusUnsupportedMediaType, fmt.Errorf("Content-Type %q: send the policy change as application/json", ct))
		return
	}
	b, ok := readBody(w, r, maxChange, "the policy change")
	if !ok {
		return
	}
	res, err := n.SubmitPolicyChange(r.Context(), b)
	switch {
	case errors.Is(err, ErrChangeMalformed):
		httpErr(w, http.StatusBadRequest, err)
	case errors.Is(err, ErrChangeStale):
		httpErr(w, http.StatusConflict, err)
	case errors.Is(err, ErrChangeNotApproved):
		httpErr(w, http.StatusForbidden, err)
	case err != nil:
		httpErr(w, http.StatusServiceUnavailable, err)
	case res.Already:
		writeJSON(w, http.StatusOK, res)
	default:
		writeJSON(w, http.StatusCreated, res)
	}
}

// selfKeyID returns the key id of this node's cosign key.
func selfKeyID(k *Keys) (string, error) {
	pub, err := attest.ParsePublicKey(k.Name, k.CosignPub)
	if err != nil {
		return "", err
	}
	return pub.ID, nil
}

// awaitPolicyWait bounds how long a gossip validator waits for this node to
// apply the policy change a message names (AwaitPolicy).
const awaitPolicyWait = 5 * time.Second

// awaitPolicy is the gossip validators' quorum.GossipOptions.AwaitPolicy:
// it returns the network of the policy in force once its digest is digest,
// or nil at once for a policy the chain already left, and after
// awaitPolicyWait (or ctx's end) for one it has not reached.
func (n *Node) awaitPolicy(ctx context.Context, digest string) *quorum.Network {
	if n.inChain(digest) && n.net().Digest() != digest {
		return nil
	}
	t := time.NewTimer(awaitPolicyWait)
	defer t.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if net := n.net(); net.Digest() == digest {
			return net
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			return nil
		case <-tick.C:
		}
	}
}
