package policy_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/pyrsia/pyrsia-build/publish/witness"
)

// member is a build node with its private keys.
type member struct {
	node   policy.Node
	signer *attest.Signer
}

var members struct {
	once sync.Once
	m    []member
}

// testMembers makes seven build nodes' keys once (scrypt is slow):
// node-0 to node-6.
func testMembers(t *testing.T) []member {
	t.Helper()
	members.once.Do(func() {
		members.m = make([]member, 7)
		var wg sync.WaitGroup
		for i := range members.m {
			wg.Go(func() { members.m[i] = newMember(fmt.Sprintf("node-%d", i), i) })
		}
		wg.Wait()
	})
	return members.m
}

func newMember(name string, i int) member {
	kp, err := attest.GenerateKeyPair([]byte("pw"))
	if err != nil {
		panic(err)
	}
	s, err := attest.LoadSigner(kp.Private, []byte("pw"))
	if err != nil {
		panic(err)
	}
	_, vkey, err := witness.GenerateKey(name)
	if err != nil {
		panic(err)
	}
	peer := "12D3KooW" + strings.Repeat("a", 43) + string(rune('A'+i))
	return member{node: policy.Node{Name: name, CosignKey: string(kp.Public), PeerID: peer, NoteKey: vkey}, signer: s}
}

func netOf(t *testing.T, ms ...member) *policy.Policy {
	t.Helper()
	p := &policy.Policy{Version: 1, Name: "example.org/net"}
	for _, m := range ms {
		p.Nodes = append(p.Nodes, m.node)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return p
}

func approve(t *testing.T, c *policy.Change, inForce *policy.Policy, ms ...member) {
	t.Helper()
	for _, m := range ms {
		if _, err := c.Approve(inForce, m.signer); err != nil {
			t.Fatal(err)
		}
	}
}

// signRaw adds m's approval without Approve's checks.
func signRaw(t *testing.T, c *policy.Change, m member) {
	t.Helper()
	st, err := c.Statement()
	if err != nil {
		t.Fatal(err)
	}
	env, err := m.signer.SignEnvelope(policy.ChangePayloadType, st)
	if err != nil {
		t.Fatal(err)
	}
	c.Approvals = append(c.Approvals, policy.Approval{KeyID: m.signer.KeyID(), Sig: env.GetSignatures()[0].GetSig()})
}

func TestChangeCheck(t *testing.T) {
	ms := testMembers(t)
	five := netOf(t, ms[:5]...)
	six := netOf(t, ms[:6]...)
	outsider := ms[6]

	t.Run("majority", func(t *testing.T) {
		c := &policy.Change{Previous: five.Digest(), New: six}
		approve(t, c, five, ms[0], ms[2], ms[4])
		ev, err := c.Check(five)
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"node-0", "node-2", "node-4"}; !slices.Equal(ev.Approvers, want) {
			t.Errorf("got approvers %v, want %v", ev.Approvers, want)
		}
	})
	t.Run("minority", func(t *testing.T) {
		c := &policy.Change{Previous: five.Digest(), New: six}
		approve(t, c, five, ms[0], ms[1])
		_, err := c.Check(five)
		if !errors.Is(err, policy.ErrChange) || !strings.Contains(err.Error(), "approved by 2 of the 5 build nodes of the policy in force (node-0, node-1), 3 needed") {
			t.Fatalf("got %v, want a refusal: 2 of 5, 3 needed", err)
		}
	})
	t.Run("outsiders are not counted", func(t *testing.T) {
		c := &policy.Change{Previous: five.Digest(), New: six}
		approve(t, c, five, ms[0], ms[1])
		// The outsider signs with the right statement, but is not a node
		// of the policy in force.
		signRaw(t, c, ms[5]) // node-5 is in six, not in five
		signRaw(t, c, outsider)
		ev, err := c.Check(five)
		if err == nil || !strings.Contains(err.Error(), "is not a build node of the policy in force") {
			t.Fatalf("got %v, want a refusal naming the outsiders", err)
		}
		if len(ev.Ignored) != 2 {
			t.Errorf("got ignored %v, want the two outsiders", ev.Ignored)
		}
	})
	t.Run("approve refuses an outsider", func(t *testing.T) {
		c := &policy.Change{Previous: five.Digest(), New: six}
		if _, err := c.Approve(five, outsider.signer); err == nil || !strings.Contains(err.Error(), "not the cosign key of a build node of the policy in force") {
			t.Fatalf("got %v, want a refusal", err)
		}
	})
	t.Run("duplicated approvals", func(t *testing.T) {
		c := &policy.Change{Previous: five.Digest(), New: six}
		approve(t, c, five, ms[0], ms[1], ms[2])
		c.Approvals = append(c.Approvals, c.Approvals[0])
		if _, err := c.Check(five); err == nil || !strings.Contains(err.Error(), "by the same key") {
			t.Fatalf("got %v, want a refusal of the duplicate", err)
		}
	})
	t.Run("signature over another change", func(t *testing.T) {
		other := netOf(t, ms[:4]...)
		c := &policy.Change{Previous: five.Digest(), New: six}
		d := &policy.Change{Previous: five.Digest(), New: other}
		approve(t, d, five, ms[0], ms[1], ms[2])
		c.Approvals = d.Approvals
		_, err := c.Check(five)
		if err == nil || !strings.Contains(err.Error(), "does not verify over this change") {
			t.Fatalf("got %v, want signatures that do not verify", err)
		}
	})
	t.Run("wrong previous", func(t *testing.T) {
		c := &policy.Change{Previous: six.Digest(), New: five}
		approve(t, c, six, ms[0], ms[1], ms[2], ms[3])
		if _, err := c.Check(five); err == nil || !strings.Contains(err.Error(), "but the policy in force is") {
			t.Fatalf("got %v, want a refusal of the previous digest", err)
		}
	})
	t.Run("same policy", func(t *testing.T) {
		c := &policy.Change{Previous: five.Digest(), New: five}
		if err := c.CheckShape(); err == nil || !strings.Contains(err.Error(), "nothing changes") {
			t.Fatalf("got %v, want nothing changes", err)
		}
	})
	t.Run("new name", func(t *testing.T) {
		renamed := netOf(t, ms[:5]...)
		renamed.Name = "example.org/other"
		c := &policy.Change{Previous: five.Digest(), New: renamed}
		if _, err := c.Check(five); err == nil || !strings.Contains(err.Error(), "keeps the network's name") {
			t.Fatalf("got %v, want the name kept", err)
		}
	})
	t.Run("invalid new policy", func(t *testing.T) {
		bad := netOf(t, ms[:5]...)
		bad.Nodes[1].NoteKey = "nope"
		c := &policy.Change{Previous: five.Digest(), New: bad}
		if err := c.CheckShape(); err == nil || !strings.Contains(err.Error(), "noteKey") {
			t.Fatalf("got %v, want the field named", err)
		}
	})
}

func TestChain(t *testing.T) {
	ms := testMembers(t)
	three := netOf(t, ms[:3]...)
	// Rotate node-1's cosign key at index 4.
	rotated := netOf(t, ms[:3]...)
	nk := ms[6] // node-1's new key
	rotated.Nodes[1].CosignKey = nk.node.CosignKey
	ch, err := policy.NewChain(three)
	if err != nil {
		t.Fatal(err)
	}
	c := &policy.Change{Previous: three.Digest(), New: rotated}
	approve(t, c, three, ms[0], ms[1])
	if _, err := ch.Apply(4, c); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		index uint64
		want  *policy.Policy
	}{{0, three}, {4, three}, {5, rotated}, {100, rotated}} {
		if p, _ := ch.At(tc.index); p.Digest() != tc.want.Digest() {
			t.Errorf("At(%d) = %s, want %s", tc.index, p.Digest(), tc.want.Digest())
		}
	}
	if p, _ := ch.ForCheckpoint(5); p.Digest() != rotated.Digest() {
		t.Errorf("a checkpoint of size 5 holds the change at 4: got %s, want the rotated policy", p.Digest())
	}
	if err := ch.CheckBinding(7, three.Digest()); !errors.Is(err, policy.ErrWrongPolicy) {
		t.Errorf("a vote bound to the old policy at index 7: got %v, want ErrWrongPolicy", err)
	}
	if err := ch.CheckBinding(7, rotated.Digest()); err != nil {
		t.Errorf("a vote bound to the policy in force: %v", err)
	}
	if ch.NetworkID() != three.Digest() {
		t.Errorf("network id %s, want the first policy's", ch.NetworkID())
	}
	// The old key of node-1 approves nothing any more: a change approved
	// by node-0 and node-1's rotated-out key is refused.
	back := &policy.Change{Previous: rotated.Digest(), New: three}
	signRaw(t, back, ms[0])
	signRaw(t, back, ms[1])
	if _, err := ch.Apply(9, back); err == nil || !strings.Contains(err.Error(), "approved by 1 of the 3") {
		t.Fatalf("a change approved with a rotated-out key: got %v, want 1 of 3", err)
	}
	// The same change at the same index again (a replay) is a no-op.
	if _, err := ch.Apply(4, c); err != nil {
		t.Errorf("applying the change at 4 again: %v", err)
	}
	if got := ch.Changes(); len(got) != 1 || got[0] != 4 {
		t.Errorf("changes %v after a replay, want [4]", got)
	}
	// Back to the first policy, approved by the rotated policy's majority,
	// is refused: the first change could then be replayed.
	undo := &policy.Change{Previous: rotated.Digest(), New: three}
	signRaw(t, undo, ms[0])
	signRaw(t, undo, nk)
	if _, err := ch.Apply(10, undo); err == nil || !strings.Contains(err.Error(), "was in force before") {
		t.Fatalf("a change back to an earlier policy: got %v, want a refusal", err)
	}
	// A change before the one in force is out of order.
	if _, err := ch.Apply(3, back); err == nil || !strings.Contains(err.Error(), "log order") {
		t.Fatalf("got %v, want a refusal of the order", err)
	}
}

func TestDiff(t *testing.T) {
	ms := testMembers(t)
	old := netOf(t, ms[:3]...)
	n := netOf(t, ms[0], ms[2], ms[3])
	n.Nodes[1].PeerID = ms[5].node.PeerID
	n.Open = true
	got := strings.Join(policy.Diff(old, n), "\n")
	for _, want := range []string{"add node node-3", "remove node node-1", "node node-2: new peer id", "open requests to anyone", "rule: 2 of 3 build nodes (was 2 of 3)"} {
		if !strings.Contains(got, want) {
			t.Errorf("diff %q lacks %q", got, want)
		}
	}
}

// Hostile review of the policy chain: an old change, replayed later in
// the log (right after itself, or after the chain moved on), is refused:
// its previous policy is no longer in force; and Chain.Check agrees with
// Apply without changing the chain.
func TestChainReplayOfAnOldChange(t *testing.T) {
	ms := testMembers(t)
	a := netOf(t, ms[:3]...)
	b := netOf(t, ms[:4]...)
	c := netOf(t, ms[:5]...)
	ch, err := policy.NewChain(a)
	if err != nil {
		t.Fatal(err)
	}
	ab := &policy.Change{Previous: a.Digest(), New: b}
	approve(t, ab, a, ms[0], ms[1])
	if _, err := ch.Check(4, ab); err != nil {
		t.Fatal(err)
	}
	if got := ch.Changes(); len(got) != 0 {
		t.Fatalf("Check applied the change: %v", got)
	}
	if _, err := ch.Apply(4, ab); err != nil {
		t.Fatal(err)
	}
	for _, idx := range []uint64{5, 6} {
		if _, err := ch.Apply(idx, ab); err == nil || !strings.Contains(err.Error(), "but the policy in force is") {
			t.Fatalf("A->B replayed at %d: got %v, want a refusal", idx, err)
		}
	}
	bc := &policy.Change{Previous: b.Digest(), New: c}
	approve(t, bc, b, ms[0], ms[1], ms[2])
	if _, err := ch.Apply(9, bc); err != nil {
		t.Fatal(err)
	}
	for _, old := range []*policy.Change{ab, bc} {
		if _, err := ch.Check(15, old); err == nil {
			t.Errorf("Check of an old change at 15 accepted it")
		}
		if _, err := ch.Apply(15, old); err == nil || !strings.Contains(err.Error(), "but the policy in force is") {
			t.Errorf("an old change replayed at 15: got %v, want a refusal", err)
		}
	}
	if got := ch.Changes(); !slices.Equal(got, []uint64{4, 9}) {
		t.Errorf("changes %v, want [4 9]", got)
	}
}
