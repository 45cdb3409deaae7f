package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/policy"
)

// The membership tests run a network whose policy changes while it runs
// (membership.go): real libp2p, Raft and logs, fake builders.

// withNodes returns p with other build nodes.
func withNodes(p *policy.Policy, nodes ...policy.Node) *policy.Policy {
	q := *p
	q.Nodes = nodes
	q.Requesters = slices.Clone(p.Requesters)
	return &q
}

// policyNode is node i's entry in a policy.
func (c *cluster) policyNode(i int) policy.Node {
	pn := c.nodes[i].keys.PolicyNode()
	return policy.Node{Name: pn.Name, CosignKey: pn.CosignKey, PeerID: pn.PeerID, NoteKey: pn.NoteKey}
}

// addNode makes the keys of one more build node, not in the cluster's
// policy, and returns its index.
func (c *cluster) addNode(b Builder) int {
	c.t.Helper()
	i := len(c.nodes)
	name := fmt.Sprintf("node-%c", 'a'+i)
	dir := filepath.Join(c.t.TempDir(), name)
	k := testKeys(c.t, dir, name)
	if b == nil {
		b = fakeBuild("honest")
	}
	c.nodes = append(c.nodes, &testNode{name: name, dir: dir, keys: k, builder: b})
	return i
}

// submit submits a change through node i's API, as 'network submit'
// does, and returns the HTTP status and body.
func (c *cluster) submit(ctx context.Context, i int, change []byte) (int, string) {
	c.t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+c.nodes[i].api.Addr().String()+"/v1/policy-changes", bytes.NewReader(change))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor polls cond until it holds.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// waitActing waits until every running node (or those of only) acts on
// policy p.
func (c *cluster) waitActing(ctx context.Context, p *policy.Policy, only ...int) {
	c.t.Helper()
	for i, tn := range c.nodes {
		if tn.node == nil || len(only) > 0 && !slices.Contains(only, i) {
			continue
		}
		waitFor(ctx, c.t, tn.name+" acting on the new policy", func() bool { return tn.node.net().Digest() == p.Digest() })
	}
}

// raftServers returns the voters of node i's Raft configuration.
func (c *cluster) raftServers(i int) []string {
	f := c.nodes[i].node.Raft().GetConfiguration()
	if f.Error() != nil {
		return nil
	}
	var out []string
	for _, s := range f.Configuration().Servers {
		if s.Suffrage == raft.Voter {
			out = append(out, string(s.ID))
		}
	}
	slices.Sort(out)
	return out
}

// peerIDs of p's build nodes, sorted.
func peerIDs(p *policy.Policy) []string {
	var out []string
	for _, n := range p.Nodes {
		out = append(out, n.PeerID)
	}
	slices.Sort(out)
	return out
}

// verifyChain verifies node i's proof bundle of input from the first
// policy, following the bundle's chain of changes.
func (c *cluster) verifyChain(ctx context.Context, i int, input string, artifact []byte) (*publish.ProofEvidence, error) {
	c.t.Helper()
	n := c.nodes[i].node
	c.waitLogged(ctx, i, []string{input}) // final once a majority cosigned: node i may be behind
	rec, ok := n.Log().Index().ByInputDigest(input)
	if !ok {
		c.t.Fatalf("%s: %s is not in the index", c.nodes[i].name, input)
	}
	if _, err := n.Log().WaitFinal(ctx, n.Log().Size()); err != nil {
		c.t.Fatal(err)
	}
	pb, err := n.Log().ProofBundle(ctx, rec.LogIndex)
	if err != nil {
		c.t.Fatal(err)
	}
	a := attest.Artifact{Name: "hello-1.0.pom", Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(artifact)), nil }}
	return publish.VerifyProofChain(ctx, a, pb, c.policy, publish.ProofOptions{})
}

// TestAddNodeToRunningNetwork: one more node, started with the new policy
// before the change is in the log, is added by a change submitted to a
// follower (forwarded to the leader): every node then acts on the new
// policy (the majority of 4 is 3, of 6 it is 4), the leader makes the new
// node a Raft voter, it catches up the log and votes; with as many old
// nodes down as leaves exactly a majority, a publish needs its vote, and
// gets it. The sixth node (5 to 6) is skipped with -short; 3 to 4
// shows the same change of rule at less cost.
func TestAddNodeToRunningNetwork(t *testing.T) {
	for _, old := range []int{3, 5} {
		t.Run(fmt.Sprintf("%dto%d", old, old+1), func(t *testing.T) {
			if old > 3 && testing.Short() {
				t.Skip("-short: 3 to 4 shows the rule")
			}
			testAddNode(t, old)
		})
	}
}

func testAddNode(t *testing.T, old int) {
	c := newCluster(t, old, nil)
	c.startAll()
	ctx := c.ctx()
	spec1 := testSpec(301)
	input1, evs := c.publish(ctx, 0, spec1)
	if ev := lastEvent(evs); ev.Type != EventFinal {
		t.Fatalf("before the change: round ended with %v", ev)
	}

	d := c.addNode(nil)
	var nodes []policy.Node
	for i := range c.nodes {
		nodes = append(nodes, c.policyNode(i))
	}
	p2 := withNodes(c.policy, nodes...)
	threshold := (old+1)/2 + 1
	c.nodes[d].policy = p2
	c.start(d) // refused by the others' gaters until the change
	if c.nodes[d].node.cur.Load().voter {
		t.Fatal("the new node votes before the change that adds it")
	}

	l := c.leader(ctx)
	follower := (l + 1) % old
	var approvers []int
	for i := range old/2 + 1 { // a majority of the policy in force
		approvers = append(approvers, i)
	}
	code, body := c.submit(ctx, follower, c.changeBy(c.policy, p2, approvers...))
	if code != http.StatusCreated {
		t.Fatalf("submit to a follower: %d %s", code, body)
	}
	c.waitActing(ctx, p2)
	for _, tn := range c.nodes[:old] {
		if got := tn.node.net().Threshold(); got != threshold {
			t.Errorf("%s: threshold %d, want %d of %d", tn.name, got, threshold, old+1)
		}
		if !tn.node.gater.Admits(c.nodes[d].keys.PeerID) {
			t.Errorf("%s's gater does not admit the new node", tn.name)
		}
	}
	want := peerIDs(p2)
	waitFor(ctx, t, "the new node as a Raft voter", func() bool {
		l := c.leader(ctx)
		return slices.Equal(c.raftServers(l), want)
	})
	dn := c.nodes[d].node
	waitFor(ctx, t, "the new node to catch up", func() bool {
		return dn.Log().Size() >= 2 && dn.cur.Load().voter
	})
	if _, ok := dn.Log().Index().ByInputDigest(input1); !ok {
		t.Fatal("the new node's log lacks the entry before the change")
	}

	// Old nodes down until the running ones, the new one with them, are
	// just the majority.
	for i := threshold - 1; i < old; i++ {
		c.stop(i)
	}
	spec2 := testSpec(302)
	input2, evs := c.publish(ctx, 0, spec2)
	if ev := lastEvent(evs); ev.Type != EventFinal {
		t.Fatalf("after the change, %d old nodes down: round ended with %v (events %v)", old-threshold+1, ev, evs)
	}
	voted := false
	for _, ev := range evs {
		if ev.Type == EventVote && ev.Node == c.nodes[d].name && ev.Error == "" {
			voted = true
		}
	}
	if !voted {
		t.Errorf("no vote of the new node among %v", evs)
	}
	for _, in := range []struct {
		input string
		spec  []byte
	}{{input1, spec1}, {input2, spec2}} {
		ev, err := c.verifyChain(ctx, 0, in.input, expected(t, in.spec))
		if err != nil {
			t.Fatalf("verify %s from the first policy: %v", in.input, err)
		}
		if in.input == input2 && ev.Policy != p2.Digest() {
			t.Errorf("the new entry's policy in force %s, want %s", ev.Policy, p2.Digest())
		}
	}
}

// TestRemovedNodeVotesDoNotCount: node-c agrees with node-a (2 of 3, a
// quorum under the first policy), node-b builds other bytes; once a change
// removed node-c, that agreement is a minority of one, and the round ends
// with no quorum. The removed node is disconnected and out of Raft's
// voters. (It may not learn of the change: the leader stops replicating to
// it once it applies the new configuration, maybe before the removed node
// heard that the change is committed.)
func TestRemovedNodeVotesDoNotCount(t *testing.T) {
	c := newCluster(t, 3, map[int]Builder{1: fakeBuild("other")})
	c.startAll()
	ctx := c.ctx()
	p2 := withNodes(c.policy, c.policyNode(0), c.policyNode(1))
	l := c.leader(ctx)
	if code, body := c.submit(ctx, l, c.changeBy(c.policy, p2, 0, 2)); code != http.StatusCreated {
		t.Fatalf("submit: %d %s", code, body)
	}
	c.waitActing(ctx, p2, 0, 1)
	removed := c.nodes[2].keys.PeerID
	want := peerIDs(p2)
	waitFor(ctx, t, "Raft's voters without the removed node", func() bool {
		for _, i := range []int{0, 1} {
			if c.nodes[i].node.Raft().State() == raft.Leader && slices.Equal(c.raftServers(i), want) {
				return true
			}
		}
		return false
	})
	for _, i := range []int{0, 1} {
		n := c.nodes[i].node
		// Refused once out of Raft's configuration (refreshKept, within
		// a membership tick of it).
		waitFor(ctx, t, "the removed node refused and its connection closed", func() bool {
			return !n.gater.Admits(removed) && !slices.Contains(n.host.Network().Peers(), removed)
		})
	}
	spec := testSpec(311)
	_, evs := c.publish(ctx, 0, spec)
	ev := lastEvent(evs)
	if ev.Type != EventVerdict {
		t.Fatalf("round ended with %v, want a verdict", ev)
	}
	if ev.Verdict.Threshold != 2 {
		t.Errorf("verdict threshold %d, want 2 of 2", ev.Verdict.Threshold)
	}
	for _, g := range ev.Verdict.Groups {
		if slices.Contains(g.Nodes, "node-c") {
			t.Errorf("the removed node's vote counts: %v", ev.Verdict.Groups)
		}
	}
}

// TestRotatedCosignKey: node-b's cosign key is rotated by a change. Until
// it restarts with the new key it does not vote (its old key counts for
// nothing); after, its votes count. Entries before and after the change
// verify from the first policy, following the bundle's chain.
func TestRotatedCosignKey(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.deadline = 5 * time.Second // one round waits for its deadline
	c.startAll()
	// Longer than c.ctx() (twice the short deadline, and 30s): a node
	// restarts, and the race detector slows everything.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	spec1 := testSpec(321)
	input1, evs := c.publish(ctx, 0, spec1)
	if ev := lastEvent(evs); ev.Type != EventFinal {
		t.Fatalf("before the change: %v", ev)
	}
	fresh, err := InitKeys(t.TempDir(), "node-b", nil)
	if err != nil {
		t.Fatal(err)
	}
	old := c.nodes[1].keys
	rotated := *old
	rotated.Cosign, rotated.CosignPub = fresh.Cosign, fresh.CosignPub
	pb := c.policyNode(1)
	pb.CosignKey = string(fresh.CosignPub)
	p2 := withNodes(c.policy, c.policyNode(0), pb, c.policyNode(2))
	if code, body := c.submit(ctx, 0, c.changeBy(c.policy, p2, 0, 1)); code != http.StatusCreated {
		t.Fatalf("submit: %d %s", code, body)
	}
	c.waitActing(ctx, p2)
	if c.nodes[1].node.cur.Load().voter {
		t.Fatal("node-b votes with the rotated-out key")
	}
	// node-c down, node-b on its old key: no quorum (1 of 3 can vote).
	c.stop(2)
	spec2 := testSpec(322)
	_, evs = c.publish(ctx, 0, spec2)
	if ev := lastEvent(evs); ev.Type != EventVerdict {
		t.Fatalf("node-b on its rotated-out key, node-c down: %v, want a verdict", ev)
	}
	for _, ev := range evs {
		if ev.Type == EventVote && ev.Node == "node-b" {
			t.Errorf("a vote of node-b with its rotated-out key: %v", ev)
		}
	}
	// node-b restarts with the new key and the new policy.
	c.stop(1)
	c.nodes[1].keys, c.nodes[1].policy = &rotated, p2
	c.start(1)
	// node-b votes once it has replayed the log to the change and is on
	// the topics again (node-a's rounds wait only the short deadline).
	waitFor(ctx, t, "node-b a voter on its new key", func() bool {
		m := c.nodes[1].node.cur.Load()
		return m.voter && m.policy.Digest() == p2.Digest()
	})
	c.waitGossip(ctx, 1)
	spec3 := testSpec(323)
	input3, evs := c.publish(ctx, 0, spec3)
	if ev := lastEvent(evs); ev.Type != EventFinal {
		t.Fatalf("node-b on its new key: %v (events %v)", ev, evs)
	}
	for _, in := range []struct {
		input string
		spec  []byte
		pol   string
	}{{input1, spec1, c.policy.Digest()}, {input3, spec3, p2.Digest()}} {
		ev, err := c.verifyChain(ctx, 0, in.input, expected(t, in.spec))
		if err != nil {
			t.Fatalf("verify %s: %v", in.input, err)
		}
		if ev.Policy != in.pol {
			t.Errorf("%s: policy in force %s, want %s", in.input, ev.Policy, in.pol)
		}
	}
}

// TestSubmitRefusesBadChanges: a change a minority approved, one against a
// policy that is not in force, and malformed bytes are refused by every
// node's API with the reason, and nothing reaches the log.
func TestSubmitRefusesBadChanges(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.startAll()
	ctx := c.ctx()
	c.leader(ctx)
	open := *c.policy
	open.Open = true
	minority := c.changeBy(c.policy, &open, 2)
	other := withNodes(c.policy, c.policyNode(0), c.policyNode(1))
	stale := c.changeBy(other, &open, 0, 1)
	for i, tn := range c.nodes {
		if _, err := tn.node.SubmitPolicyChange(ctx, minority); !errors.Is(err, ErrChangeNotApproved) {
			t.Errorf("%s: a minority's change: %v, want ErrChangeNotApproved", tn.name, err)
		}
		code, body := c.submit(ctx, i, minority)
		if code != http.StatusForbidden || !strings.Contains(body, "1 of 3") && !strings.Contains(body, "approv") {
			t.Errorf("%s: POST a minority's change: %d %s", tn.name, code, body)
		}
		if code, body := c.submit(ctx, i, stale); code != http.StatusConflict || !strings.Contains(body, c.policy.Digest()) {
			t.Errorf("%s: POST a change of another policy: %d %s", tn.name, code, body)
		}
		if code, body := c.submit(ctx, i, []byte(`{"v":1,"kind":"policy"`)); code != http.StatusBadRequest || !strings.Contains(body, "malformed") {
			t.Errorf("%s: POST malformed bytes: %d %s", tn.name, code, body)
		}
	}
	for _, tn := range c.nodes {
		if tn.node.Log().Size() != 0 || tn.node.chain.Changes() != nil {
			t.Errorf("%s: log size %d, changes %v after refused changes", tn.name, tn.node.Log().Size(), tn.node.chain.Changes())
		}
	}
	// The same change with a majority goes in, once: submitted again, it
	// is already there.
	ok := c.changeBy(c.policy, &open, 1, 2)
	if code, body := c.submit(ctx, 1, ok); code != http.StatusCreated {
		t.Fatalf("a majority's change: %d %s", code, body)
	}
	c.waitActing(ctx, &open)
	res, err := c.nodes[2].node.SubmitPolicyChange(ctx, ok)
	if err != nil || !res.Already || res.Index != 0 {
		t.Errorf("the change again: %+v, %v; want already at 0", res, err)
	}
	// A majority's change back to the first policy is refused here, by
	// the chain's rule against returning to an earlier policy, before it
	// is proposed (it was judged by the change alone and left to the FSMs).
	back := c.changeBy(&open, c.policy, 0, 1)
	_, err = c.nodes[0].node.SubmitPolicyChange(ctx, back)
	if !errors.Is(err, ErrChangeNotApproved) || !strings.Contains(err.Error(), "earlier policy") || strings.Contains(err.Error(), "FSM") {
		t.Errorf("a change back to the first policy: %v, want it refused before Raft as a return to an earlier policy", err)
	}
	if size := c.nodes[0].node.Log().Size(); size != 1 {
		t.Errorf("log size %d after a refused change, want 1", size)
	}
}
