package policy

import (
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/pyrsia/pyrsia-build/attest"
)

// Chain is the sequence of a network's policies along its log: the first
// policy, then each approved change with the log index it is at. An entry
// at index i is judged by the policy in force at i ([Chain.At]): the first
// policy, replaced by every change at an index below i. A change at index
// i is itself judged by the policy in force at i and is in force from i+1
// on. A checkpoint of size N (entries 0 to N-1) is judged by the policy in
// force at N, the same rule: the nodes that cosign it are those of the
// policy that holds after its last entry.
//
// A Chain is safe for concurrent use.
type Chain struct {
	mu    sync.RWMutex
	steps []chainStep
}

type chainStep struct {
	from   uint64 // the first log index judged by this policy
	change uint64 // the index of the change entry; 0 for the first policy
	p      *Policy
	trust  *Trust
	digest string
}

// ErrWrongPolicy is wrapped by [Chain.CheckBinding]'s error for something
// bound to a policy that is not the one in force. Use errors.Is.
var ErrWrongPolicy = errors.New("policy: bound to a policy that is not in force")

// NewChain starts a chain at the network's first policy.
func NewChain(first *Policy) (*Chain, error) {
	t, err := first.Trust()
	if err != nil {
		return nil, err
	}
	return &Chain{steps: []chainStep{{p: first, trust: t, digest: first.Digest()}}}, nil
}

// Apply judges the change at log index with the policy in force there
// ([Change.Check]) and, if it holds, makes its new policy the one in force
// from index+1 on. Changes are applied in log order: index must be at or
// after the first index judged by the policy in force (a change at a lower
// index is refused, the chain unchanged). Applying again the change the
// chain holds at index does nothing and succeeds: a node that replays its
// log (Raft's replay after a restart) meets its changes again.
func (c *Chain) Apply(index uint64, ch *Change) (*ChangeEvidence, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ev, replay, err := c.judge(index, ch)
	if err != nil || replay {
		return ev, err
	}
	t, err := ch.New.Trust()
	if err != nil {
		return nil, err
	}
	c.steps = append(c.steps, chainStep{from: index + 1, change: index, p: ch.New, trust: t, digest: ch.New.Digest()})
	return ev, nil
}

// Check judges the change at log index as [Chain.Apply] does, and applies
// nothing: the answer Apply would give, for a caller that checks a change
// before it is in the log.
func (c *Chain) Check(index uint64, ch *Change) (*ChangeEvidence, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ev, _, err := c.judge(index, ch)
	return ev, err
}

// judge is Apply without the change: replay is true for the change the
// chain holds at index already. c.mu is held.
func (c *Chain) judge(index uint64, ch *Change) (ev *ChangeEvidence, replay bool, err error) {
	last := c.steps[len(c.steps)-1]
	if index < last.from && ch != nil && ch.New != nil {
		for k, s := range c.steps[1:] {
			if s.change == index && s.digest == ch.New.Digest() && ch.Previous == c.steps[k].digest {
				return &ChangeEvidence{}, true, nil
			}
		}
	}
	if index < last.from {
		return nil, false, fmt.Errorf("policy: chain: a change at index %d, but the policy in force holds from index %d: changes are applied in log order", index, last.from)
	}
	ev, err = ch.Check(last.p)
	if err != nil {
		return ev, false, err
	}
	// An approval binds the network and both digests, not a time: were a
	// chain allowed to come back to a policy, the approvals of the change
	// that once left it would be good again, and anyone could replay it.
	d := ch.New.Digest()
	for _, s := range c.steps {
		if s.digest == d {
			return ev, false, changeErr("the new policy %s was in force before (from index %d): a change may not return to an earlier policy, whose old changes could be replayed; make it differ (a new key, say)", d, s.from)
		}
	}
	return ev, false, nil
}

// at returns the step in force at index.
func (c *Chain) at(index uint64) chainStep {
	c.mu.RLock()
	defer c.mu.RUnlock()
	i, found := slices.BinarySearchFunc(c.steps, index, func(s chainStep, idx uint64) int {
		switch {
		case s.from < idx:
			return -1
		case s.from > idx:
			return 1
		}
		return 0
	})
	if !found {
		i--
	}
	return c.steps[i]
}

// At returns the policy in force at log index, and its compiled trust.
func (c *Chain) At(index uint64) (*Policy, *Trust) {
	s := c.at(index)
	return s.p, s.trust
}

// ForCheckpoint returns the policy a checkpoint of size entries is judged
// by: the policy in force after its last entry, At(size).
func (c *Chain) ForCheckpoint(size uint64) (*Policy, *Trust) { return c.At(size) }

// From returns the first log index judged by the policy of digest, if
// it is one of the chain's.
func (c *Chain) From(digest string) (uint64, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, s := range c.steps {
		if s.digest == digest {
			return s.from, true
		}
	}
	return 0, false
}

// Current returns the policy in force after the last change, and the
// index it holds from.
func (c *Chain) Current() (*Policy, uint64) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	s := c.steps[len(c.steps)-1]
	return s.p, s.from
}

// Changes returns the log indexes of the changes applied, in order.
func (c *Chain) Changes() []uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []uint64
	for _, s := range c.steps[1:] {
		out = append(out, s.change)
	}
	return out
}

// CheckBinding is the rule for everything a node signs or gossips under a
// policy (a build request, a vote): it names the digest of the policy in
// force, and counts only while that policy is. Something bound to
// digest, to be judged at log index (for a live node: the size of its
// log, the index the next entry gets), holds only if digest is the digest
// of the policy in force there: a vote made under an old policy does not
// count under the new one, and one made under a newer policy is not
// judged by a node that has not applied it yet. The error wraps
// [ErrWrongPolicy].
//
// The gossip topics and the DHT namespace stay named by the first
// policy's digest, [Chain.NetworkID], so that the network's nodes keep
// meeting where they met across changes.
func (c *Chain) CheckBinding(index uint64, digest string) error {
	s := c.at(index)
	if digest == s.digest {
		return nil
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, o := range c.steps {
		if o.digest == digest {
			return fmt.Errorf("%w: %s was in force from index %d, the policy in force at index %d is %s", ErrWrongPolicy, digest, o.from, index, s.digest)
		}
	}
	return fmt.Errorf("%w: %s is not a policy of this network's chain (the policy in force at index %d is %s)", ErrWrongPolicy, digest, index, s.digest)
}

// NetworkID returns the first policy's digest, which names the network's
// gossip topics and DHT namespace for its whole life.
func (c *Chain) NetworkID() string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.steps[0].digest
}

// Diff says what a change of policy from old to new does, in words: one
// line per node added, removed or with a new key or peer id, and per
// change of who may request builds.
func Diff(old, new *Policy) []string {
	var out []string
	for _, n := range new.Nodes {
		o, ok := old.Node(n.Name)
		if !ok {
			out = append(out, fmt.Sprintf("add node %s (peer %s)", n.Name, orNone(n.PeerID)))
			continue
		}
		if canonicalPEM(o.CosignKey) != canonicalPEM(n.CosignKey) {
			out = append(out, fmt.Sprintf("node %s: rotate its cosign key (%s to %s)", n.Name, keyID(o.CosignKey), keyID(n.CosignKey)))
		}
		if o.NoteKey != n.NoteKey {
			out = append(out, fmt.Sprintf("node %s: rotate its note key (%s to %s)", n.Name, o.NoteKey, n.NoteKey))
		}
		if o.PeerID != n.PeerID {
			out = append(out, fmt.Sprintf("node %s: new peer id (%s to %s)", n.Name, orNone(o.PeerID), orNone(n.PeerID)))
		}
	}
	for _, o := range old.Nodes {
		if _, ok := new.Node(o.Name); !ok {
			out = append(out, fmt.Sprintf("remove node %s", o.Name))
		}
	}
	oldReq, newReq := requesterIDs(old), requesterIDs(new)
	for id := range newReq {
		if !oldReq[id] {
			out = append(out, fmt.Sprintf("add requester %s", id))
		}
	}
	for id := range oldReq {
		if !newReq[id] {
			out = append(out, fmt.Sprintf("remove requester %s", id))
		}
	}
	if old.Open != new.Open {
		if new.Open {
			out = append(out, "open requests to anyone")
		} else {
			out = append(out, "close requests (only build nodes and listed requesters)")
		}
	}
	if len(out) > 0 {
		out = append(out, fmt.Sprintf("rule: %d of %d build nodes (was %d of %d)", new.Threshold(), len(new.Nodes), old.Threshold(), len(old.Nodes)))
	}
	slices.Sort(out[:max(0, len(out)-1)])
	return out
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func keyID(pemKey string) string {
	k, err := attest.ParsePublicKey("", []byte(pemKey))
	if err != nil {
		return "?"
	}
	return short(k.ID)
}

func requesterIDs(p *Policy) map[string]bool {
	m := map[string]bool{}
	for _, r := range p.Requesters {
		if k, err := attest.ParsePublicKey("", []byte(r)); err == nil {
			m[short(k.ID)] = true
		}
	}
	return m
}
