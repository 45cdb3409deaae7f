package quorum

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pyrsia/pyrsia-build/attest"
)

// Regression tests for the findings of a hostile review of the build
// network; each failed on the code as reviewed.

// validatorGossip is a Gossip with only what its validators use: the
// validators are called directly, as the router would.
func validatorGossip(net *Network, nonceCache, voteCache int) *Gossip {
	return &Gossip{
		o:      GossipOptions{Network: net, ReplayWindow: 10 * time.Minute, NonceCache: nonceCache, VoteCache: voteCache, Now: time.Now},
		log:    slog.New(slog.DiscardHandler),
		nonces: newBudgets(nonceCache),
		votes:  newBudgets(voteCache),
		drops:  make(map[string]*atomic.Uint64),
	}
}

func gossipMsg(from peer.ID, data []byte) *pubsub.Message {
	return &pubsub.Message{Message: &pb.Message{From: []byte(from), Data: data}, ReceivedFrom: from}
}

// One faulty build node fills the network-wide vote cache with cheap
// failed votes (no attestation to sign) for made-up inputs; from then on,
// for an hour, every honest vote of every node is dropped as a
// "duplicate": no input can reach quorum.
func TestReviewVoteCacheFloodDropsHonestVotes(t *testing.T) {
	nodes := testNodes(t, 4)
	net := testNetwork(t, nodes, NetworkOptions{})
	g := validatorGossip(net, 100, 8)
	evil := nodes[3]
	for i := range 8 {
		v, err := NewFailedVote(testVoteFor(net.Digest(), "sha256:"+hexDigest(fmt.Sprint("junk", i)), evil.name), "no")
		if err != nil {
			t.Fatal(err)
		}
		b, err := v.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if r := g.validateVote(context.Background(), evil.id, gossipMsg(evil.id, b)); r != pubsub.ValidationAccept {
			t.Fatalf("junk vote %d: %v", i, r)
		}
	}
	spec, input := testSpec(t, "demo:1")
	v := testVote(t, net.Digest(), nodes[0], spec, input, "artifact")
	b, err := v.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if r := g.validateVote(context.Background(), nodes[0].id, gossipMsg(nodes[0].id, b)); r != pubsub.ValidationAccept {
		t.Fatalf("node-a's first, honest vote for %s was refused (%v, drops %v) after node-d sent 8 junk votes", input, r, g.Drops())
	}
}

// One requester (or one build node in an open network, with throw-away
// requester keys) fills the network-wide nonce cache; every other
// requester's requests are then dropped for the replay window.
func TestReviewNonceCacheSharedAcrossRequesters(t *testing.T) {
	nodes := testNodes(t, 3)
	alice, bob := testSigner(t, 10), testSigner(t, 11)
	net := testNetwork(t, nodes, NetworkOptions{Requesters: []*attest.PublicKey{publicKey(t, alice, "alice"), publicKey(t, bob, "bob")}})
	g := validatorGossip(net, 8, 100)
	send := func(s *attest.Signer, coord string) pubsub.ValidationResult {
		spec, _ := testSpec(t, coord)
		r, err := NewBuildRequest(RequestOptions{Policy: net.Digest(), Spec: spec, Signer: s})
		if err != nil {
			t.Fatal(err)
		}
		b, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return g.validateRequest(context.Background(), nodes[0].id, gossipMsg(nodes[0].id, b))
	}
	for i := range 8 {
		if r := send(alice, fmt.Sprint("flood:", i)); r != pubsub.ValidationAccept {
			t.Fatalf("alice's request %d: %v", i, r)
		}
	}
	if r := send(bob, "bob:1"); r != pubsub.ValidationAccept {
		t.Fatalf("bob's first request was refused (%v, drops %v) because alice sent 8", r, g.Drops())
	}
}

// memApplier is an in-memory log for FSM tests.
type memApplier struct {
	mu      sync.Mutex
	entries [][]byte
}

func (m *memApplier) Size() uint64 { m.mu.Lock(); defer m.mu.Unlock(); return uint64(len(m.entries)) }
func (m *memApplier) Append(_ context.Context, e []byte) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.entries = append(m.entries, e)
	return uint64(len(m.entries) - 1), nil
}
func (m *memApplier) EntryAt(_ context.Context, i uint64) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if i >= uint64(len(m.entries)) {
		return nil, errors.New("no such entry")
	}
	return m.entries[i], nil
}

// A leader (faulty, or one whose snapshot is corrupt) installs a snapshot
// whose size matches the follower's log but whose input map is made up.
// Restore takes the map as is, without checking it against the log: the
// FSM then appends a second entry for an input the log already holds.
func TestReviewRestoreTrustsSnapshotInputs(t *testing.T) {
	log := &memApplier{}
	f, err := NewFSM(FSMOptions{Checker: digestChecker, Applier: log, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range []string{"entry one", "entry two"} {
		if r := f.Apply(&raft.Log{Type: raft.LogCommand, Index: uint64(i + 1), Data: AppendEntryCommand([]byte(e))}).(ApplyResult); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	snap := fmt.Sprintf(`{"v":1,"size":2,"inputs":{"sha256:%s":0,"sha256:%s":1}}`, hexDigest("x"), hexDigest("y"))
	if err := f.Restore(ioNopCloser(snap)); err != nil {
		t.Logf("Restore refused the made-up snapshot: %v", err)
		return
	}
	r := f.Apply(&raft.Log{Type: raft.LogCommand, Index: 3, Data: AppendEntryCommand([]byte("entry one"))}).(ApplyResult)
	if !errors.Is(r.Err, ErrDuplicateInput) {
		t.Fatalf("after a snapshot with a made-up input map, a second \"entry one\" got %+v; the log now holds %d entries, two for one input", r, log.Size())
	}
}

// A peer serving entries for catch-up serves one valid entry twice:
// each copy passes the Checker (its quorum is genuine), and CatchUp
// appends both. Past the last cosigned checkpoint nothing else checks it.
func TestReviewCatchupAcceptsDuplicateInputs(t *testing.T) {
	log := &memApplier{}
	c := &CheckedCatchup{Source: entrySourceFunc(func(_ context.Context, start, end uint64) ([][]byte, error) {
		var out [][]byte
		for i := start; i < end; i++ {
			out = append(out, []byte("the same entry"))
		}
		return out, nil
	}), Checker: digestChecker}
	if err := c.CatchUp(context.Background(), log, 0, 2); err == nil {
		t.Fatalf("CatchUp appended the same entry twice (log size %d), want an error naming the duplicate input", log.Size())
	}
}

type entrySourceFunc func(ctx context.Context, start, end uint64) ([][]byte, error)

func (f entrySourceFunc) Entries(ctx context.Context, start, end uint64) ([][]byte, error) {
	return f(ctx, start, end)
}

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

func ioNopCloser(s string) nopCloser { return nopCloser{strings.NewReader(s)} }

// blockingApplier's Append waits until release is closed (a slow or
// stuck disk, a log waiting on its own lock).
type blockingApplier struct {
	memApplier
	release chan struct{}
}

func (b *blockingApplier) Append(ctx context.Context, e []byte) (uint64, error) {
	<-b.release
	return b.memApplier.Append(ctx, e)
}

// Propose takes a context but waits on the Raft future without it: once
// the command is enqueued, ApplyFuture.Error returns only when the FSM has
// applied it, so a stuck FSM (or a context whose deadline has already
// passed: timeout <= 0 means no enqueue limit at all) blocks the caller
// for ever, whatever ctx says. The daemon's propose goroutines, and the
// raft tests under load, hang here.
func TestReviewProposeIgnoresContext(t *testing.T) {
	nodes := testNodes(t, 1)
	net := testNetwork(t, nodes, NetworkOptions{})
	h := startHost(t, nodes[0].key, NewGater(net.PeerIDs()))
	app := &blockingApplier{release: make(chan struct{})}
	fsm, err := NewFSM(FSMOptions{Checker: digestChecker, Applier: app, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	r, err := NewRaft(RaftOptions{Host: h, Network: net, Dir: t.TempDir(), FSM: fsm, Bootstrap: true, Config: fastRaftConfig(), LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	released := false
	release := func() {
		if !released {
			released = true
			close(app.release)
		}
	}
	t.Cleanup(func() { release(); r.Close() })
	waitFor(t, 10*time.Second, "a leader", func() bool { return r.State() == raft.Leader })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { _, err := r.Propose(ctx, AppendEntryCommand([]byte("e"))); done <- err }()
	select {
	case err := <-done:
		if ctx.Err() == nil {
			t.Fatalf("Propose returned %v before its context ended, with the FSM stuck", err)
		}
	case <-time.After(5 * time.Second):
		release()
		<-done
		t.Fatal("Propose was still blocked 5s after its 200ms context ended (the FSM was stuck)")
	}
}

// A build node that equivocates (two different signed votes for one
// input) has both accepted and forwarded: the vote cache keys on the
// message's digest, not on (node, input). Each honest node counts the first
// it happens to see, so nodes hold different tallies and verdicts for the
// same round, and the equivocation is neither refused nor recorded.
func TestReviewEquivocatingVotesBothAccepted(t *testing.T) {
	nodes := testNodes(t, 3)
	net := testNetwork(t, nodes, NetworkOptions{})
	g := validatorGossip(net, 100, 100)
	spec, input := testSpec(t, "demo:2")
	var results []pubsub.ValidationResult
	for _, artifact := range []string{"artifact", "other artifact"} {
		b, err := testVote(t, net.Digest(), nodes[0], spec, input, artifact).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		results = append(results, g.validateVote(context.Background(), nodes[0].id, gossipMsg(nodes[0].id, b)))
	}
	if results[1] == pubsub.ValidationAccept {
		t.Fatalf("node-a's second, different vote for %s was accepted (%v, drops %v); want it rejected and counted as equivocation", input, results, g.Drops())
	}
	if got := g.Drops()["votes/"+DropEquivocation]; got != 1 {
		t.Fatalf("equivocation drops %d, want 1 (drops %v)", got, g.Drops())
	}
}

// Votes carry no time, nonce or request binding, and the vote cache keeps
// a key for an hour. Any peer that relays gossip (a faulty build node
// among them) can re-send an honest node's old signed vote message after
// that hour (gossipsub's own seen-cache is minutes): the author is still
// valid, so it is accepted as that node's vote for a new round of the same
// input. An old failed vote (a transient failure) replayed first then
// stands for the node in the new round; its fresh vote is ignored.
func TestReviewOldVoteReplayedAfterAnHour(t *testing.T) {
	nodes := testNodes(t, 3)
	net := testNetwork(t, nodes, NetworkOptions{})
	g := validatorGossip(net, 100, 100)
	now := time.Now()
	g.o.Now = func() time.Time { return now }
	_, input := testSpec(t, "demo:3")
	v, err := NewFailedVote(VoteFor{Policy: net.Digest(), Request: testRequestID(input), InputDigest: input, Node: nodes[0].name, Time: now}, "registry timed out")
	if err != nil {
		t.Fatal(err)
	}
	b, err := v.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if r := g.validateVote(context.Background(), nodes[0].id, gossipMsg(nodes[0].id, b)); r != pubsub.ValidationAccept {
		t.Fatalf("first: %v", r)
	}
	now = now.Add(61 * time.Minute)
	// node-c relays node-a's old message.
	if r := g.validateVote(context.Background(), nodes[2].id, gossipMsg(nodes[0].id, b)); r == pubsub.ValidationAccept {
		t.Fatalf("node-a's vote of an hour ago, replayed, was accepted again as a fresh vote for %s", input)
	}
}
