package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/builder"
	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/pyrsia/pyrsia-build/quorum"
)

// The cluster tests run real build nodes in this process: real libp2p
// hosts on 127.0.0.1, real gossip, real Raft on raft-wal, real logs in
// temporary folders. Only the builder is a function (it writes the
// artifact a spec asks for, or, for a lying node, other bytes), so that a
// round takes milliseconds, not a BuildKit build.

const testNetwork = "test.example/network"

// fakeBuild writes a maven-like artifact, hello-1.0.pom, whose bytes are a
// function of the input digest and of salt (a lying node's salt differs),
// and its output manifest.
func fakeBuild(salt string) BuilderFunc {
	return func(ctx context.Context, spec *builder.Spec, out string) (*builder.Result, error) {
		input, err := spec.InputDigest()
		if err != nil {
			return nil, err
		}
		if err := os.MkdirAll(filepath.Join(out, "artifacts"), 0o755); err != nil {
			return nil, err
		}
		rel := "artifacts/hello-1.0.pom"
		data := []byte("<project><!-- " + input + " " + salt + " --></project>\n")
		if err := os.WriteFile(filepath.Join(out, rel), data, 0o644); err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		digest := "sha256:" + hex.EncodeToString(sum[:])
		am, err := builder.ManifestFile(ctx, "hello-1.0.pom", filepath.Join(out, rel))
		if err != nil {
			return nil, err
		}
		am.Path = rel
		if err := builder.WriteManifest(filepath.Join(out, "manifest.json"), &builder.OutputManifest{Version: builder.ManifestVersion, Artifacts: []builder.ArtifactManifest{am}}); err != nil {
			return nil, err
		}
		return &builder.Result{InputDigest: input, Artifacts: []builder.Artifact{{Name: "hello-1.0.pom", Digest: digest, Path: rel, MediaType: "application/xml"}},
			SourceDigest: "sha256:" + spec.Source.Archive.SHA256, BuilderImageDigest: spec.BuilderImage.Digest}, nil
	}
}

// failingBuild fails every build.
func failingBuild(ctx context.Context, spec *builder.Spec, out string) (*builder.Result, error) {
	return nil, fmt.Errorf("the recipe failed: exit status 1")
}

// testSpec is a remote spec; n makes a distinct input digest.
func testSpec(n int) []byte {
	return fmt.Appendf(nil, `version: 1
ecosystem: maven
coordinate: org.example:hello:1.%d
source:
  archive:
    url: http://source.invalid/hello-1.%d.tar
    sha256: %064x
recipe:
  maven: {}
builderImage:
  name: maven
  digest: sha256:%064x
sourceDateEpoch: 1700000000
`, n, n, n+1, 7)
}

// expected returns the artifact an honest node builds for spec.
func expected(t testing.TB, spec []byte) []byte {
	s, err := builder.ParseSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	input, _ := s.InputDigest()
	return []byte("<project><!-- " + input + " honest --></project>\n")
}

type testNode struct {
	name    string
	dir     string
	keys    *Keys
	builder Builder
	node    *Node
	api     net.Listener
	// policy, when set, is the policy the node starts with, the
	// cluster's policy being the network's first (membership_test.go).
	policy *policy.Policy
	cancel context.CancelFunc
	done   chan error
}

type cluster struct {
	t      *testing.T
	nodes  []*testNode
	policy *policy.Policy
	// Deadline of each round.
	deadline time.Duration
	// requests is the nodes' request rate (zero: the default).
	requests quorum.RateOptions
	// raftConfig, if set, makes each node's Raft configuration (default
	// fastRaft).
	raftConfig func() *raft.Config
}

// newCluster makes n build nodes' keys and the policy; builders[i] builds
// for node i (default: honest).
// keyCache holds the build node keys the tests made, by name: cosign's
// scrypt makes InitKeys cost about 0.5 s (several seconds under -race on a
// loaded machine), and the cluster tests made them for every node anew.
var keyCache struct {
	sync.Mutex
	root string                    // the folder of the keys made
	made map[string][]cachedKeys   // by name
	used map[string]map[string]int // top-level test -> name -> keys taken
}

type cachedKeys struct {
	dir  string // holds keys/
	keys *Keys
}

// TestMain removes the keys testKeys made.
func TestMain(m *testing.M) {
	code := m.Run()
	if keyCache.root != "" {
		os.RemoveAll(keyCache.root)
	}
	os.Exit(code)
}

// testKeys puts keys of a build node named name into dir/keys, as
// InitKeys does, reusing keys an earlier test made: within one top-level
// test (its subtests too) each call gets keys of its own, so two clusters
// of one test never share a node's keys.
func testKeys(t testing.TB, dir, name string) *Keys {
	t.Helper()
	test, _, _ := strings.Cut(t.Name(), "/")
	keyCache.Lock()
	defer keyCache.Unlock()
	if keyCache.made == nil {
		root, err := os.MkdirTemp("", "pyrsia-node-test-keys-")
		if err != nil {
			t.Fatal(err)
		}
		keyCache.root, keyCache.made, keyCache.used = root, map[string][]cachedKeys{}, map[string]map[string]int{}
	}
	if keyCache.used[test] == nil {
		keyCache.used[test] = map[string]int{}
		t.Cleanup(func() {
			keyCache.Lock()
			delete(keyCache.used, test)
			keyCache.Unlock()
		})
	}
	n := keyCache.used[test][name]
	keyCache.used[test][name]++
	if n == len(keyCache.made[name]) {
		src := filepath.Join(keyCache.root, fmt.Sprintf("%s-%d", name, n))
		k, err := InitKeys(src, name, nil)
		if err != nil {
			t.Fatal(err)
		}
		keyCache.made[name] = append(keyCache.made[name], cachedKeys{dir: src, keys: k})
	}
	ck := keyCache.made[name][n]
	from, to := filepath.Join(ck.dir, "keys"), filepath.Join(dir, "keys")
	files, err := os.ReadDir(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(to, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(from, f.Name()))
		if err != nil {
			t.Fatal(err)
		}
		fi, err := f.Info()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, f.Name()), b, fi.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	k := *ck.keys
	return &k
}

func newCluster(t *testing.T, n int, builders map[int]Builder) *cluster {
	t.Helper()
	c := &cluster{t: t, deadline: 20 * time.Second}
	p := &policy.Policy{Version: policy.Version, Name: testNetwork}
	root := t.TempDir()
	for i := range n {
		name := fmt.Sprintf("node-%c", 'a'+i)
		dir := filepath.Join(root, name)
		k := testKeys(t, dir, name)
		b := builders[i]
		if b == nil {
			b = fakeBuild("honest")
		}
		c.nodes = append(c.nodes, &testNode{name: name, dir: dir, keys: k, builder: b})
		pn := k.PolicyNode()
		p.Nodes = append(p.Nodes, policy.Node{Name: pn.Name, CosignKey: pn.CosignKey, PeerID: pn.PeerID, NoteKey: pn.NoteKey})
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	c.policy = p
	t.Cleanup(c.stopAll)
	return c
}

func fastRaft() *raft.Config {
	c := raft.DefaultConfig()
	c.HeartbeatTimeout = 300 * time.Millisecond
	c.ElectionTimeout = 300 * time.Millisecond
	c.LeaderLeaseTimeout = 150 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	return c
}

// start starts node i and connects it to the running ones.
func (c *cluster) start(i int) {
	c.t.Helper()
	tn := c.nodes[i]
	api, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		c.t.Fatal(err)
	}
	var boot []peer.AddrInfo
	for j, o := range c.nodes {
		if j != i && o.node != nil {
			boot = append(boot, peer.AddrInfo{ID: o.node.Host().ID(), Addrs: o.node.Host().Addrs()})
		}
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	rc := fastRaft()
	if c.raftConfig != nil {
		rc = c.raftConfig()
	}
	// One context for New and Run, as the command line has: its end (a
	// signal) must stop the node cleanly.
	ctx, cancel := context.WithCancel(context.Background())
	p, first := c.policy, (*policy.Policy)(nil)
	if tn.policy != nil {
		p, first = tn.policy, c.policy
	}
	n, err := New(ctx, Options{
		Data: tn.dir, Policy: p, FirstPolicy: first, Keys: tn.keys, Listen: []string{"/ip4/127.0.0.1/tcp/0"},
		Bootstrap: boot, API: api, Builder: tn.builder, Deadline: c.deadline, RaftConfig: rc, Logger: logger,
		Requests: c.requests,
	})
	if err != nil {
		cancel()
		c.t.Fatalf("%s: %v", tn.name, err)
	}
	tn.node, tn.api, tn.cancel, tn.done = n, api, cancel, make(chan error, 1)
	go func() { tn.done <- n.Run(ctx) }()
}

func (c *cluster) startAll() {
	for i := range c.nodes {
		c.start(i)
	}
}

// stop stops node i as SIGTERM would.
func (c *cluster) stop(i int) {
	tn := c.nodes[i]
	if tn.node == nil {
		return
	}
	tn.cancel()
	if err := <-tn.done; err != nil {
		c.t.Errorf("%s: Run: %v", tn.name, err)
	}
	tn.node = nil
}

func (c *cluster) stopAll() {
	for i := range c.nodes {
		c.stop(i)
	}
}

func (c *cluster) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*c.deadline+30*time.Second)
	c.t.Cleanup(cancel)
	return ctx
}

// leader waits for a Raft leader among the running nodes.
func (c *cluster) leader(ctx context.Context) int {
	c.t.Helper()
	for {
		for i, tn := range c.nodes {
			if tn.node != nil && tn.node.Raft().State() == raft.Leader {
				return i
			}
		}
		select {
		case <-ctx.Done():
			c.t.Fatal("no Raft leader")
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// publish sends spec through node i and returns the events of its round
// until it ends.
func (c *cluster) publish(ctx context.Context, i int, spec []byte) (string, []Event) {
	c.t.Helper()
	n := c.nodes[i].node
	c.leader(ctx)
	input, err := n.Publish(ctx, spec)
	if err != nil {
		c.t.Fatalf("Publish: %v", err)
	}
	return input, c.wait(ctx, i, input)
}

// wait returns the events of input on node i until "final" or "verdict".
func (c *cluster) wait(ctx context.Context, i int, input string) []Event {
	c.t.Helper()
	past, ch, cancel := c.nodes[i].node.events.subscribe(input)
	defer cancel()
	evs := past
	for {
		for _, ev := range evs {
			if ev.Type == EventFinal || ev.Type == EventVerdict {
				return evs
			}
		}
		select {
		case ev := <-ch:
			evs = append(evs, ev)
		case <-ctx.Done():
			c.t.Fatalf("round %s did not end: events %+v", input, evs)
		}
	}
}

func lastEvent(evs []Event) Event { return evs[len(evs)-1] }

// String shows an event in test failures.
func (e Event) String() string {
	if e.Verdict != nil {
		return e.Type + ": " + e.Verdict.Text
	}
	return fmt.Sprintf("%s %s %v %s", e.Type, e.Node, e.Subjects, e.Error)
}

// verify checks node i's proof bundle of input with the policy alone and
// returns the artifact bytes it accepted.
func (c *cluster) verify(ctx context.Context, i int, input string, artifact []byte) (*publish.ProofEvidence, error) {
	c.t.Helper()
	n := c.nodes[i].node
	// A checkpoint is final once a majority has cosigned it: node i may
	// not have applied the entry yet.
	c.waitLogged(ctx, i, []string{input})
	rec, ok := n.Log().Index().ByInputDigest(input)
	if !ok {
		c.t.Fatalf("%s: %s is not in the index", c.nodes[i].name, input)
	}
	if _, err := n.Log().WaitFinal(ctx, rec.LogIndex+1); err != nil {
		c.t.Fatal(err)
	}
	pb, err := n.Log().ProofBundle(ctx, rec.LogIndex)
	if err != nil {
		c.t.Fatal(err)
	}
	trust, err := c.policy.Trust()
	if err != nil {
		c.t.Fatal(err)
	}
	a := attest.Artifact{Name: "hello-1.0.pom", Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(artifact)), nil }}
	return publish.VerifyProof(ctx, a, pb, trust, publish.ProofOptions{})
}

// tiles returns the tile files of node i's log, by path.
func (c *cluster) tiles(i int) map[string][]byte {
	c.t.Helper()
	root := filepath.Join(c.nodes[i].dir, "log", "tile")
	out := map[string][]byte{}
	filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		out[rel] = b
		return nil
	})
	return out
}

func TestFiveNodesAgree(t *testing.T) {
	c := newCluster(t, 5, nil)
	c.startAll()
	ctx := c.ctx()
	spec := testSpec(1)
	input, evs := c.publish(ctx, 0, spec)
	if ev := lastEvent(evs); ev.Type != EventFinal {
		t.Fatalf("round ended with %+v, want final", ev)
	}
	votes := 0
	for _, ev := range evs {
		if ev.Type == EventVote {
			votes++
		}
	}
	if votes < 3 {
		t.Errorf("saw %d votes before final, want at least 3", votes)
	}
	ev, err := c.verify(ctx, 0, input, expected(t, spec))
	if err != nil {
		t.Fatalf("VerifyProof with the policy alone: %v", err)
	}
	t.Logf("verified: entry %d, cosigned by %v", ev.Index, ev.Cosigners)
	// A wrong artifact does not verify.
	if _, err := c.verify(ctx, 0, input, []byte("other bytes")); err == nil {
		t.Error("VerifyProof accepted other bytes")
	}
}

func TestTwoNodesDown(t *testing.T) {
	c := newCluster(t, 5, nil)
	for i := range 3 {
		c.start(i)
	}
	ctx := c.ctx()
	spec := testSpec(2)
	input, evs := c.publish(ctx, 1, spec)
	if ev := lastEvent(evs); ev.Type != EventFinal {
		t.Fatalf("round ended with %+v, want final (3 of 5 are up)", ev)
	}
	ev, err := c.verify(ctx, 1, input, expected(t, spec))
	if err != nil {
		t.Fatalf("VerifyProof: %v", err)
	}
	if len(ev.Cosigners) != 3 {
		t.Errorf("cosigners: got %v, want the 3 running nodes", ev.Cosigners)
	}
}

// waitVotes waits until node i's round of input holds n votes.
func (c *cluster) waitVotes(ctx context.Context, i int, input string, n int) {
	c.t.Helper()
	var from []string // the voters while the round was kept
	for {
		nd := c.nodes[i].node
		nd.mu.Lock()
		got := 0
		if r := nd.rounds[input]; r != nil {
			got = len(r.votes)
			from = from[:0]
			for name := range r.votes {
				from = append(from, name)
			}
		}
		nd.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-ctx.Done():
			// Which node is missing and why: it never got the request
			// (requests 0), its vote was dropped (dropped), or the round
			// was forgotten after its grace (0 votes now).
			for _, tn := range c.nodes {
				if tn.node != nil {
					c.t.Logf("%s: requests %d, votes sent %d, received %d, dropped %v", tn.name, tn.node.requests.Load(),
						tn.node.counts.votesSent.Load(), tn.node.counts.votesReceived.Load(), tn.node.Status().Dropped)
				}
			}
			sort.Strings(from)
			c.t.Fatalf("%s: %d votes for %s (the round had votes of %v), want %d", c.nodes[i].name, got, input, from, n)
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// waitGossip waits until every running node sees want peers on both
// gossip topics: a request gossiped before a node subscribed misses it,
// and once the round is final its requester stops gossiping it again, so
// a test that counts every node's vote waits for the topics first.
func (c *cluster) waitGossip(ctx context.Context, want int) {
	c.t.Helper()
	for _, tn := range c.nodes {
		if tn.node == nil {
			continue
		}
		waitFor(ctx, c.t, tn.name+" to see its peers on the gossip topics", func() bool {
			r, v := tn.node.gossip.Peers()
			return len(r) >= want && len(v) >= want
		})
	}
}

// TestOneNodeDiffers: a node that built other bytes is the dissent that
// status reports. A node votes only on a request it got before the entry
// was in its log (openRound), and a round of fakes can be final within a
// second, before the gossip brought node-e the request (seen under
// -race: node-e got it, but after the entry, and never voted). So the
// honest builds wait (10 s at most) until node-e's round holds the
// request: from then on node-e builds and votes.
func TestOneNodeDiffers(t *testing.T) {
	var c *cluster
	eHasRequest := func() bool {
		nd := c.nodes[4].node
		if nd == nil {
			return false
		}
		nd.mu.Lock()
		defer nd.mu.Unlock()
		for _, r := range nd.byRequest {
			if r.req != nil {
				return true
			}
		}
		return false
	}
	honest := BuilderFunc(func(ctx context.Context, spec *builder.Spec, out string) (*builder.Result, error) {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		for !eHasRequest() && wctx.Err() == nil {
			select {
			case <-wctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
		return fakeBuild("honest").Build(ctx, spec, out)
	})
	c = newCluster(t, 5, map[int]Builder{0: honest, 1: honest, 2: honest, 3: honest, 4: fakeBuild("lying")})
	c.startAll()
	ctx := c.ctx()
	c.waitGossip(ctx, 4)
	spec := testSpec(3)
	input, evs := c.publish(ctx, 0, spec)
	if ev := lastEvent(evs); ev.Type != EventFinal {
		t.Fatalf("round ended with %+v, want final", ev)
	}
	if _, err := c.verify(ctx, 0, input, expected(t, spec)); err != nil {
		t.Fatalf("VerifyProof: %v", err)
	}
	c.waitVotes(ctx, 0, input, 5)
	st := c.nodes[0].node.roundStatus(input)
	if st.State != "final" {
		t.Errorf("state: got %q, want final", st.State)
	}
	if got := st.Dissent["node-e"]; len(got) != 1 || got[0] != "hello-1.0.pom" {
		t.Errorf("dissent of node-e: got %v, want [hello-1.0.pom] (status %+v)", got, st)
	}
}

func TestThreeDigestsNoQuorum(t *testing.T) {
	c := newCluster(t, 5, map[int]Builder{2: fakeBuild("x"), 3: fakeBuild("x"), 4: fakeBuild("y")})
	c.deadline = 2 * time.Second
	c.startAll()
	ctx := c.ctx()
	spec := testSpec(4)
	input, evs := c.publish(ctx, 0, spec)
	ev := lastEvent(evs)
	if ev.Type != EventVerdict {
		t.Fatalf("round ended with %+v, want a verdict", ev)
	}
	text := ev.Verdict.Text
	t.Logf("verdict: %s", text)
	for _, want := range []string{"no quorum for " + input, "2 of 5 agree on sha256:", "differs in hello-1.0.pom"} {
		if !bytes.Contains([]byte(text), []byte(want)) {
			t.Errorf("verdict %q does not say %q", text, want)
		}
	}
	for i, tn := range c.nodes {
		if got := tn.node.Log().Size(); got != 0 {
			t.Errorf("%s: log has %d entries, want none", c.nodes[i].name, got)
		}
	}
	// The verdict is kept.
	v, err := c.nodes[0].node.LastVerdict(input)
	if err != nil || v == nil || v.Text != text {
		t.Errorf("LastVerdict: got %+v, %v; want the verdict", v, err)
	}
	c.stop(0)
	c.start(0)
	if st := c.nodes[0].node.roundStatus(input); st.State != "no-quorum" || st.Verdict == nil || st.Verdict.Text != text {
		t.Errorf("after a restart: status %+v, want the stored verdict", st)
	}
}

func TestAllFailNoQuorum(t *testing.T) {
	c := newCluster(t, 3, map[int]Builder{0: BuilderFunc(failingBuild), 1: BuilderFunc(failingBuild), 2: BuilderFunc(failingBuild)})
	c.deadline = 2 * time.Second
	c.startAll()
	ctx := c.ctx()
	_, evs := c.publish(ctx, 0, testSpec(5))
	ev := lastEvent(evs)
	if ev.Type != EventVerdict || !bytes.Contains([]byte(ev.Verdict.Text), []byte("failed: node: building sha256:")) {
		t.Fatalf("round ended with %+v, want a verdict naming the failures", ev)
	}
}

// liar lies for the inputs whose pattern names its node: pattern[input]
// holds the liars of that input.
type liar struct {
	node   int
	liars  func(input string) map[int]bool
	honest Builder
	lying  Builder
}

func (l *liar) Build(ctx context.Context, spec *builder.Spec, out string) (*builder.Result, error) {
	input, _ := spec.InputDigest()
	if l.liars(input)[l.node] {
		return l.lying.Build(ctx, spec, out)
	}
	return l.honest.Build(ctx, spec, out)
}

func TestEveryPairOfLiars(t *testing.T) {
	var pairs [][2]int
	for a := range 5 {
		for b := a + 1; b < 5; b++ {
			pairs = append(pairs, [2]int{a, b})
		}
	}
	specs := map[string]int{} // input -> pair
	for k := range pairs {
		s, _ := builder.ParseSpec(testSpec(100 + k))
		in, _ := s.InputDigest()
		specs[in] = k
	}
	liarsOf := func(input string) map[int]bool {
		k, ok := specs[input]
		if !ok {
			return nil
		}
		return map[int]bool{pairs[k][0]: true, pairs[k][1]: true}
	}
	builders := map[int]Builder{}
	for i := range 5 {
		// The two liars collude: the same wrong bytes.
		builders[i] = &liar{node: i, liars: liarsOf, honest: fakeBuild("honest"), lying: fakeBuild("colluding")}
	}
	c := newCluster(t, 5, builders)
	c.startAll()
	ctx := c.ctx()
	for k, p := range pairs {
		spec := testSpec(100 + k)
		// Ask through a liar, too: the requester does not matter.
		input, evs := c.publish(ctx, p[0], spec)
		if ev := lastEvent(evs); ev.Type != EventFinal {
			t.Fatalf("liars %v: round ended with %+v, want final", p, ev)
		}
		if _, err := c.verify(ctx, p[1], input, expected(t, spec)); err != nil {
			t.Errorf("liars %v: the honest artifact does not verify: %v", p, err)
		}
		s, _ := builder.ParseSpec(spec)
		in, _ := s.InputDigest()
		wrong := []byte("<project><!-- " + in + " colluding --></project>\n")
		if _, err := c.verify(ctx, p[1], input, wrong); err == nil {
			t.Errorf("liars %v: the liars' artifact verifies", p)
		}
		rec, _ := c.nodes[p[0]].node.Log().Index().ByInputDigest(input)
		sum := sha256.Sum256(expected(t, spec))
		if len(rec.Subjects) != 1 || rec.Subjects[0].Digest != "sha256:"+hex.EncodeToString(sum[:]) {
			t.Errorf("liars %v: published subjects %v, want the honest digest", p, rec.Subjects)
		}
	}
}

// waitLogged waits until node i's log holds every input.
func (c *cluster) waitLogged(ctx context.Context, i int, inputs []string) {
	c.t.Helper()
	for {
		idx := c.nodes[i].node.Log().Index()
		missing := 0
		for _, in := range inputs {
			if _, ok := idx.ByInputDigest(in); !ok {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		select {
		case <-ctx.Done():
			c.t.Fatalf("%s: %d of %d inputs are not in the log", c.nodes[i].name, missing, len(inputs))
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// sameReplicas checks that the running nodes hold byte-identical logs of
// size entries.
func (c *cluster) sameReplicas(size uint64) {
	c.t.Helper()
	var ref map[string][]byte
	var refName string
	for i, tn := range c.nodes {
		if tn.node == nil {
			continue
		}
		if got := tn.node.Log().Size(); got != size {
			c.t.Errorf("%s: log size %d, want %d", tn.name, got, size)
		}
		if got := tn.node.Log().Index().Len(); got != int(size) {
			c.t.Errorf("%s: %d entries indexed, want %d", tn.name, got, size)
		}
		tiles := c.tiles(i)
		// Every replica holds the tiles of the final size (the tiles
		// below 256 entries are partial: width = size); replicas that
		// published candidates at other sizes also hold those partial
		// tiles, and any tile two replicas both hold is the same.
		for _, p := range []string{fmt.Sprintf("0/000.p/%d", size), fmt.Sprintf("entries/000.p/%d", size)} {
			if size < 256 && tiles[p] == nil {
				c.t.Errorf("%s has no tile %s", tn.name, p)
			}
		}
		if ref == nil {
			ref, refName = tiles, tn.name
			continue
		}
		for p, b := range ref {
			if got, ok := tiles[p]; ok && !bytes.Equal(got, b) {
				c.t.Errorf("tile %s differs between %s and %s", p, refName, tn.name)
			}
		}
	}
}

// The Raft leader is cut off (its host closed, as in a crash) while
// requests stream in: a new leader appends the rest, nothing is lost or
// doubled, and the replicas are byte-identical.
func TestLeaderKilledDuringAppends(t *testing.T) {
	c := newCluster(t, 5, nil)
	// Raft's own timings (1 s heartbeat and election, 500 ms lease, as a
	// real node runs), not fastRaft's: five nodes checking every entry in
	// one process on two cores, under the race detector, starved
	// fastRaft's 150 ms leases, and each new leader stepped down again and
	// again (for 20 to 50 s). What the test checks, no entry lost or
	// doubled across the kill, is the same at any timing.
	c.raftConfig = func() *raft.Config {
		rc := raft.DefaultConfig()
		rc.CommitTimeout = 5 * time.Millisecond
		return rc
	}
	c.startAll()
	ctx := c.ctx()
	leader := c.leader(ctx)
	via := (leader + 1) % 5
	var inputs []string
	publishN := func(from, to int) {
		for k := from; k < to; k++ {
			in, err := c.nodes[via].node.Publish(ctx, testSpec(200+k))
			if err != nil {
				t.Fatalf("Publish %d: %v", k, err)
			}
			inputs = append(inputs, in)
		}
	}
	publishN(0, 15)
	// Crash the leader while those rounds are in flight.
	c.nodes[leader].node.Host().Close()
	c.stop(leader)
	publishN(15, 30)
	for i, tn := range c.nodes {
		if tn.node != nil {
			c.waitLogged(ctx, i, inputs)
			if _, err := tn.node.Log().WaitFinal(ctx, uint64(len(inputs))); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.sameReplicas(uint64(len(inputs)))
	if nl := c.leader(ctx); nl == leader {
		t.Errorf("the stopped node %s still leads", c.nodes[leader].name)
	}
}

// A round whose majority agreed while Raft had no leader is published once
// Raft has one again, even when that takes longer than the round's
// deadline: the deadline bounds the wait for votes, not for a leader. (A
// round with a quorum was closed at its deadline with a "verdict" and never
// proposed again: TestLeaderKilledDuringAppends lost the entries of rounds
// that outlived a slow leader change.)
func TestQuorumOutlivesLeaderlessDeadline(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.deadline = 3 * time.Second
	c.startAll()
	ctx := c.ctx()
	c.leader(ctx)
	a := c.nodes[0].node
	// Raft stops on node-b and node-c (their gossip and builds go on):
	// node-a alone has no majority, and nothing can be committed.
	for _, i := range []int{1, 2} {
		if err := c.nodes[i].node.Raft().Shutdown().Error(); err != nil {
			t.Fatal(err)
		}
	}
	for a.Raft().State() == raft.Leader {
		select {
		case <-ctx.Done():
			t.Fatal("node-a still leads without a majority")
		case <-time.After(20 * time.Millisecond):
		}
	}
	input, err := a.Publish(ctx, testSpec(90))
	if err != nil {
		t.Fatal(err)
	}
	c.waitVotes(ctx, 0, input, 3)
	// The round has its quorum; wait until its deadline has passed and
	// the deadline loop has run after it.
	a.mu.Lock()
	deadline := a.rounds[input].deadline
	a.mu.Unlock()
	select {
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	case <-time.After(time.Until(deadline) + 5*a.tick()):
	}
	if _, ok := a.Log().Index().ByInputDigest(input); ok {
		t.Fatal("the entry was appended without a Raft majority")
	}
	// node-b restarts: node-a and node-b are a majority again. node-a,
	// which holds the round's votes, is made the leader.
	c.stop(1)
	c.start(1)
	for {
		l := c.leader(ctx)
		if l == 0 {
			break
		}
		id := raft.ServerID(a.Host().ID().String())
		if err := c.nodes[l].node.Raft().LeadershipTransferToServer(id, raft.ServerAddress(id)).Error(); err != nil {
			t.Logf("leadership transfer to node-a: %v", err)
		}
	}
	c.waitLogged(ctx, 0, []string{input})
	c.waitLogged(ctx, 1, []string{input})
}

// A node whose data is lost (all but its keys) catches up from the others
// when it restarts, holds the same log, and cosigns again.
func TestWipedNodeCatchesUp(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.startAll()
	ctx := c.ctx()
	var inputs []string
	for k := range 3 {
		in, _ := c.publish(ctx, 0, testSpec(300+k))
		inputs = append(inputs, in)
	}
	c.stop(2)
	for _, d := range []string{"log", "raft", "cosigner", "builds", "verdicts"} {
		if err := os.RemoveAll(filepath.Join(c.nodes[2].dir, d)); err != nil {
			t.Fatal(err)
		}
	}
	c.start(2)
	c.waitLogged(ctx, 2, inputs)
	in, _ := c.publish(ctx, 0, testSpec(303))
	inputs = append(inputs, in)
	for i := range c.nodes {
		c.waitLogged(ctx, i, inputs)
		if _, err := c.nodes[i].node.Log().WaitFinal(ctx, 4); err != nil {
			t.Fatal(err)
		}
	}
	c.sameReplicas(4)
	// node-c cosigned the checkpoint of size 4 from its rebuilt replica.
	last, err := os.ReadFile(filepath.Join(c.nodes[2].dir, "cosigner", "cosigned-checkpoint"))
	if err != nil {
		t.Fatalf("node-c has not cosigned since its restart: %v", err)
	}
	if lines := bytes.SplitN(last, []byte("\n"), 3); len(lines) < 2 || string(lines[1]) != "4" {
		t.Errorf("node-c last cosigned %q, want size 4", last)
	}
}
