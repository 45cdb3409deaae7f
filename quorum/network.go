package quorum

import (
	"errors"
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish/policy"
)

// Member is one build node of a network as this package needs it: its
// name, its libp2p peer id and its cosign public key (which signs its
// votes' attestations).
type Member struct {
	Name   string
	PeerID peer.ID
	Key    *attest.PublicKey
}

// Network is the part of the network policy (publish/policy) that gossip,
// the vote collector and the Raft FSM consult: the policy digest that names
// the network, the build nodes and the requesters. Make it once with
// [NewNetwork] and share it; it is read-only.
type Network struct {
	digest     string
	threshold  int
	members    []Member
	byPeer     map[peer.ID]int
	byName     map[string]int
	requesters map[string]*attest.PublicKey // by key id
	open       bool
}

// NetworkOptions describe a [Network].
type NetworkOptions struct {
	// Digest is the policy digest, "sha256:<hex>" (policy.Policy.Digest).
	Digest string
	// Members are the policy's build nodes; each needs a name, a peer id
	// and a key.
	Members []Member
	// Requesters are the keys allowed to request builds besides the
	// build nodes' own keys, which always may (policy.MayRequest).
	Requesters []*attest.PublicKey
	// Open lets anyone with a key request builds.
	Open bool
}

// NewNetwork checks o and indexes it. The threshold is an absolute
// majority of the members, floor(n/2)+1.
func NewNetwork(o NetworkOptions) (*Network, error) {
	if err := checkDigest(o.Digest); err != nil {
		return nil, fmt.Errorf("quorum: network: policy digest: %w", err)
	}
	if len(o.Members) == 0 {
		return nil, errors.New("quorum: network: no build nodes")
	}
	n := &Network{
		digest:     o.Digest,
		threshold:  len(o.Members)/2 + 1,
		members:    slices.Clone(o.Members),
		byPeer:     make(map[peer.ID]int),
		byName:     make(map[string]int),
		requesters: make(map[string]*attest.PublicKey),
		open:       o.Open,
	}
	for i, m := range n.members {
		switch {
		case m.Name == "":
			return nil, fmt.Errorf("quorum: network: build node %d has no name", i+1)
		case m.PeerID == "":
			return nil, fmt.Errorf("quorum: network: build node %q has no libp2p peer id (add it to the policy)", m.Name)
		case m.Key == nil:
			return nil, fmt.Errorf("quorum: network: build node %q has no cosign key", m.Name)
		}
		if _, dup := n.byName[m.Name]; dup {
			return nil, fmt.Errorf("quorum: network: build node name %q is listed twice", m.Name)
		}
		if j, dup := n.byPeer[m.PeerID]; dup {
			return nil, fmt.Errorf("quorum: network: build nodes %q and %q have the same peer id %s", n.members[j].Name, m.Name, m.PeerID)
		}
		n.byName[m.Name] = i
		n.byPeer[m.PeerID] = i
	}
	// As policy.MayRequest: the build nodes always may request builds.
	for _, m := range n.members {
		n.requesters[m.Key.ID] = m.Key
	}
	for _, k := range o.Requesters {
		n.requesters[k.ID] = k
	}
	return n, nil
}

// NetworkFromPolicy makes the Network of a network policy. Every build
// node must have a peer id: a policy made from flags without them can
// verify, but not run a network.
func NetworkFromPolicy(p *policy.Policy) (*Network, error) {
	if err := p.Validate(); err != nil {
		return nil, fmt.Errorf("quorum: %w", err)
	}
	o := NetworkOptions{Digest: p.Digest(), Open: p.Open}
	for i, n := range p.Nodes {
		if n.PeerID == "" {
			return nil, fmt.Errorf("quorum: policy: nodes[%d] (%q) has no peerId: add the node's libp2p peer id (pyrsia-build network add-node)", i, n.Name)
		}
		id, err := peer.Decode(n.PeerID)
		if err != nil {
			return nil, fmt.Errorf("quorum: policy: nodes[%d].peerId: %w", i, err)
		}
		k, err := attest.ParsePublicKey(n.Name, []byte(n.CosignKey))
		if err != nil {
			return nil, fmt.Errorf("quorum: policy: nodes[%d].cosignKey: %w", i, err)
		}
		o.Members = append(o.Members, Member{Name: n.Name, PeerID: id, Key: k})
	}
	for i, r := range p.Requesters {
		k, err := attest.ParsePublicKey(fmt.Sprintf("requesters[%d]", i), []byte(r))
		if err != nil {
			return nil, fmt.Errorf("quorum: policy: requesters[%d]: %w", i, err)
		}
		o.Requesters = append(o.Requesters, k)
	}
	n, err := NewNetwork(o)
	if err != nil {
		return nil, err
	}
	if n.threshold != p.Threshold() {
		return nil, fmt.Errorf("quorum: policy threshold %d, network threshold %d", p.Threshold(), n.threshold)
	}
	return n, nil
}

// Digest returns the policy digest that names the network.
func (n *Network) Digest() string { return n.digest }

// Threshold returns how many build nodes make a quorum.
func (n *Network) Threshold() int { return n.threshold }

// Members returns the build nodes in policy order.
func (n *Network) Members() []Member { return slices.Clone(n.members) }

// PeerIDs returns the build nodes' peer ids, for [NewGater].
func (n *Network) PeerIDs() []peer.ID {
	ids := make([]peer.ID, len(n.members))
	for i, m := range n.members {
		ids[i] = m.PeerID
	}
	return ids
}

// ByPeer returns the build node with peer id p.
func (n *Network) ByPeer(p peer.ID) (Member, bool) {
	i, ok := n.byPeer[p]
	if !ok {
		return Member{}, false
	}
	return n.members[i], true
}

// ByName returns the build node called name.
func (n *Network) ByName(name string) (Member, bool) {
	i, ok := n.byName[name]
	if !ok {
		return Member{}, false
	}
	return n.members[i], true
}

// Requester returns the listed requester key with key id id.
func (n *Network) Requester(id string) (*attest.PublicKey, bool) {
	k, ok := n.requesters[id]
	return k, ok
}

// Open reports whether anyone may request builds.
func (n *Network) Open() bool { return n.open }
