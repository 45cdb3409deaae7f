package quorum

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pyrsia/pyrsia-build/publish/tlog"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	"golang.org/x/mod/sumdb/note"
)

// recordingLog is a real tlog that also remembers, in memory, the entries
// appended through it in this process, for the closing checks.
type recordingLog struct {
	*tlog.Log
	mu  sync.Mutex
	seq []string
}

func (l *recordingLog) Append(ctx context.Context, entry []byte) (uint64, error) {
	i, err := l.Log.Append(ctx, entry)
	if err == nil {
		l.mu.Lock()
		l.seq = append(l.seq, string(entry))
		l.mu.Unlock()
	}
	return i, err
}

func (l *recordingLog) AppendBatch(ctx context.Context, entries [][]byte) (uint64, error) {
	i, err := l.Log.AppendBatch(ctx, entries)
	if err == nil {
		l.mu.Lock()
		for _, e := range entries {
			l.seq = append(l.seq, string(e))
		}
		l.mu.Unlock()
	}
	return i, err
}

func (l *recordingLog) entries() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.seq)
}

// digestChecker accepts any entry not starting with "bad" and names it by
// its sha256: the cluster tests are about order, not signatures.
var digestChecker = CheckerFunc(func(entry []byte) (string, error) {
	if strings.HasPrefix(string(entry), "bad") {
		return "", errors.New("no quorum")
	}
	sum := sha256.Sum256(entry)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
})

func fastRaftConfig() *raft.Config {
	c := raft.DefaultConfig()
	c.HeartbeatTimeout = 300 * time.Millisecond
	c.ElectionTimeout = 300 * time.Millisecond
	c.LeaderLeaseTimeout = 150 * time.Millisecond
	c.CommitTimeout = 5 * time.Millisecond
	return c
}

type raftNode struct {
	nd   *testNode
	dir  string
	h    host.Host
	log  *recordingLog
	fsm  *FSM
	raft *Raft
	// seq is every (raft index, entry) the FSM applied, over restarts.
	mu      sync.Mutex
	applied []string
	down    bool
}

type raftCluster struct {
	t     *testing.T
	net   *Network
	nodes []*raftNode
}

func newRaftCluster(t *testing.T, n int) *raftCluster {
	t.Helper()
	c := &raftCluster{t: t}
	nds := testNodes(t, n)
	c.net = testNetwork(t, nds, NetworkOptions{})
	base := t.TempDir()
	for i, nd := range nds {
		c.nodes = append(c.nodes, &raftNode{nd: nd, dir: filepath.Join(base, fmt.Sprint(i))})
	}
	for _, rn := range c.nodes {
		c.start(rn)
	}
	c.connect()
	t.Cleanup(func() {
		for _, rn := range c.nodes {
			c.stop(rn)
		}
	})
	return c
}

func (c *raftCluster) start(rn *raftNode) {
	t := c.t
	t.Helper()
	rn.h = startHost(t, rn.nd.key, NewGater(c.net.PeerIDs()))
	skey, _, err := witness.GenerateKey(rn.nd.name)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tlog.Open(context.Background(), tlog.Options{Dir: filepath.Join(rn.dir, "log"), Origin: "test", Signer: signer, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	rn.log = &recordingLog{Log: l}
	rn.fsm, err = NewFSM(FSMOptions{
		Checker: digestChecker,
		Applier: rn.log,
		Logger:  slog.New(slog.DiscardHandler),
		Observe: func(idx uint64, r ApplyResult) {
			if r.Err == nil {
				rn.mu.Lock()
				rn.applied = append(rn.applied, fmt.Sprintf("%d:%d:%s", idx, r.Index, r.InputDigest))
				rn.mu.Unlock()
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	rn.raft, err = NewRaft(RaftOptions{Host: rn.h, Network: c.net, Dir: filepath.Join(rn.dir, "raft"), FSM: rn.fsm, Bootstrap: true, Config: fastRaftConfig(), LogOutput: io.Discard})
	if err != nil {
		t.Fatal(err)
	}
	rn.down = false
}

func (c *raftCluster) stop(rn *raftNode) {
	if rn.down {
		return
	}
	rn.down = true
	if err := rn.raft.Close(); err != nil {
		c.t.Logf("closing raft of %s: %v", rn.nd.name, err)
	}
	rn.h.Close()
	rn.log.Close()
}

func (c *raftCluster) up() []*raftNode {
	var out []*raftNode
	for _, rn := range c.nodes {
		if !rn.down {
			out = append(out, rn)
		}
	}
	return out
}

func (c *raftCluster) connect() {
	var hosts []host.Host
	for _, rn := range c.up() {
		hosts = append(hosts, rn.h)
	}
	connectAll(c.t, hosts)
}

func (c *raftCluster) leader(timeout time.Duration) *raftNode {
	c.t.Helper()
	var l *raftNode
	waitFor(c.t, timeout, "a leader", func() bool {
		for _, rn := range c.up() {
			if rn.raft.State() == raft.Leader {
				l = rn
				return true
			}
		}
		return false
	})
	return l
}

func (rn *raftNode) appliedSeq() []string {
	rn.mu.Lock()
	defer rn.mu.Unlock()
	return slices.Clone(rn.applied)
}

// check makes the closing checks of hashicorp/raft's fuzzy verifier: every
// running node applied the same sequence, the log of each holds exactly
// that sequence (nothing doubled), and every acknowledged entry is in it.
func (c *raftCluster) check(acked map[string]bool) {
	t := c.t
	t.Helper()
	nodes := c.up()
	leader := c.leader(10 * time.Second)
	// A barrier on the leader, then wait for the followers' FSMs to apply
	// as far.
	if err := leader.raft.Barrier(10 * time.Second).Error(); err != nil {
		t.Fatalf("barrier: %v", err)
	}
	want := leader.fsm.Size()
	waitFor(t, 10*time.Second, "every node to apply every entry", func() bool {
		for _, rn := range nodes {
			if rn.fsm.Size() != want || rn.log.Size() != want {
				return false
			}
		}
		return true
	})
	ref := leader.appliedSeq()
	for _, rn := range nodes {
		if got := rn.appliedSeq(); !slices.Equal(got, ref) {
			t.Errorf("%s applied %d commands, %s %d, or in another order", rn.nd.name, len(got), leader.nd.name, len(ref))
		}
	}
	// The reference log: the longest record (a restarted node records only
	// what it appended since).
	refLog := leader.log.entries()
	for _, rn := range nodes {
		if e := rn.log.entries(); len(e) > len(refLog) {
			refLog = e
		}
	}
	inLog := make(map[string]int)
	for _, e := range refLog {
		inLog[e]++
	}
	for e, n := range inLog {
		if n > 1 {
			t.Errorf("entry %q is in the log %d times", e, n)
		}
	}
	for e := range acked {
		if inLog[e] == 0 {
			t.Errorf("acknowledged entry %q is not in the log", e)
		}
	}
	// Every replica has the same tree: the same root at the same size
	// (each node signs its own checkpoint).
	var root []byte
	for _, rn := range nodes {
		cp, err := rn.log.Publish(context.Background())
		if err != nil {
			t.Fatalf("%s: publishing a checkpoint: %v", rn.nd.name, err)
		}
		if cp.Size != want {
			t.Errorf("%s: checkpoint of size %d, want %d", rn.nd.name, cp.Size, want)
		}
		if root == nil {
			root = cp.Hash
		} else if !bytes.Equal(cp.Hash, root) {
			t.Errorf("%s: root %x, %s's %x", rn.nd.name, cp.Hash, nodes[0].nd.name, root)
		}
	}
}

func propose(ctx context.Context, rn *raftNode, entry string) (ApplyResult, error) {
	resp, err := rn.raft.Propose(ctx, AppendEntryCommand([]byte(entry)))
	if err != nil {
		return ApplyResult{}, err
	}
	return resp.(ApplyResult), nil
}

func TestRaftClusterAppliesInOrder(t *testing.T) {
	c := newRaftCluster(t, 3)
	leader := c.leader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	acked := map[string]bool{}
	for i := range 50 {
		e := fmt.Sprintf("entry-%03d", i)
		r, err := propose(ctx, leader, e)
		if err != nil || r.Err != nil {
			t.Fatalf("propose %s: %v %v", e, err, r.Err)
		}
		if r.Index != uint64(i) {
			t.Fatalf("entry %s at index %d, want %d", e, r.Index, i)
		}
		acked[e] = true
	}
	// Refused and duplicate entries change nothing, on any node.
	r, err := propose(ctx, leader, "bad entry")
	if err != nil || !errors.Is(r.Err, ErrRefused) {
		t.Fatalf("bad entry: got %v %v, want ErrRefused", err, r.Err)
	}
	r, err = propose(ctx, leader, "entry-007")
	if err != nil || !errors.Is(r.Err, ErrDuplicateInput) || r.Index != 7 {
		t.Fatalf("duplicate entry: got %+v %v, want ErrDuplicateInput at index 7", r, err)
	}
	// An unknown command type is an error value, not a panic.
	resp, err := leader.raft.Propose(ctx, []byte{99, 'x'})
	if err != nil || resp.(ApplyResult).Err == nil {
		t.Fatalf("unknown command: got %v %v, want an error result", resp, err)
	}
	// An expired context fails at once (raft would wait forever for a
	// timeout of zero or less).
	expired, cancelExpired := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancelExpired()
	if _, err := propose(expired, leader, "entry-expired"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("propose with an expired context: got %v, want context.DeadlineExceeded", err)
	}
	// A follower cannot propose.
	for _, rn := range c.nodes {
		if rn != leader {
			if _, err := propose(ctx, rn, "entry-x"); !errors.Is(err, ErrNotLeader) {
				t.Fatalf("propose on a follower: got %v, want ErrNotLeader", err)
			}
			break
		}
	}
	c.check(acked)
	if got := c.nodes[0].log.Size(); got != 50 {
		t.Fatalf("log size %d, want 50", got)
	}
}

// TestRaftLeaderKilled kills the leader during a stream of appends: a new
// leader is elected, no acknowledged entry is lost, none is doubled; the
// old leader restarts from its disk, replays, and ends with the same log.
func TestRaftLeaderKilled(t *testing.T) {
	c := newRaftCluster(t, 3)
	c.leader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var mu sync.Mutex
	acked := map[string]bool{}
	var cmu sync.Mutex // guards c.nodes' up/down state against the workload
	const total = 300
	workDone := make(chan error, 1)
	killAt := make(chan struct{})
	go func() {
		for i := 0; i < total; i++ {
			e := fmt.Sprintf("entry-%04d", i)
			if i == total/3 {
				close(killAt)
			}
			for {
				if ctx.Err() != nil {
					workDone <- ctx.Err()
					return
				}
				cmu.Lock()
				var l *raftNode
				for _, rn := range c.up() {
					if rn.raft.State() == raft.Leader {
						l = rn
					}
				}
				cmu.Unlock()
				if l == nil {
					time.Sleep(10 * time.Millisecond)
					continue
				}
				pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
				r, err := propose(pctx, l, e)
				pcancel()
				if err == nil && (r.Err == nil || errors.Is(r.Err, ErrDuplicateInput)) {
					// A duplicate means an earlier attempt committed.
					mu.Lock()
					acked[e] = true
					mu.Unlock()
					break
				}
				if err == nil {
					workDone <- fmt.Errorf("entry %s: %w", e, r.Err)
					return
				}
			}
		}
		workDone <- nil
	}()

	<-killAt
	cmu.Lock()
	old := c.leader(10 * time.Second)
	c.stop(old)
	cmu.Unlock()
	if err := <-workDone; err != nil {
		t.Fatal(err)
	}
	newLeader := c.leader(10 * time.Second)
	if newLeader == old {
		t.Fatal("the killed node is leader")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(acked) != total {
		t.Fatalf("%d entries acknowledged, want %d", len(acked), total)
	}
	c.check(acked)

	// The old leader comes back with its disk: Raft replays its log into a
	// fresh FSM, which skips what the log already holds.
	before := old.log.entries()
	old.applied = nil
	c.start(old)
	c.connect()
	c.check(acked)
	if old.log.Size() != total {
		t.Fatalf("restarted node's log has %d entries, want %d", old.log.Size(), total)
	}
	if got := old.log.entries(); len(got) != total-len(before) {
		t.Fatalf("restarted node appended %d entries, want %d (the %d it had must not be appended again)", len(got), total-len(before), len(before))
	}
}

// TestStreamLayerRefusesStrangers: with the gater letting other peers in
// (regular nodes, later), a stranger's Raft stream is closed unread and
// counted, and a policy peer's is accepted.
func TestStreamLayerRefusesStrangers(t *testing.T) {
	nds := testNodes(t, 3)
	net := testNetwork(t, nds[:2], NetworkOptions{})
	g := NewGater(net.PeerIDs())
	g.AllowOthers(true)
	h := startHost(t, nds[0].key, g)
	layer, err := NewStreamLayer(h, func(p peer.ID) bool { _, ok := net.ByPeer(p); return ok })
	if err != nil {
		t.Fatal(err)
	}
	defer layer.Close()
	accepted := make(chan string, 1)
	go func() {
		c, err := layer.Accept()
		if err != nil {
			return
		}
		accepted <- c.RemoteAddr().String()
		c.Close()
	}()
	stranger := startHost(t, nds[2].key, NewGater([]peer.ID{nds[0].id}))
	member := startHost(t, nds[1].key, NewGater(net.PeerIDs()))
	connectAll(t, []host.Host{h, stranger})
	connectAll(t, []host.Host{h, member})
	sl := &StreamLayer{h: stranger}
	if c, err := sl.Dial(raft.ServerAddress(h.ID().String()), 5*time.Second); err == nil {
		// The stream opens; the build node closes it unread.
		c.Write([]byte{0})
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("a stranger's raft stream was answered")
		}
		c.Close()
	}
	waitFor(t, 5*time.Second, "the stranger's stream to be refused", func() bool { return layer.Refused() == 1 })
	ml := &StreamLayer{h: member}
	c, err := ml.Dial(raft.ServerAddress(h.ID().String()), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	// libp2p negotiates the protocol lazily: the listener sees the stream
	// once the dialer writes (Raft always writes first).
	if _, err := c.Write([]byte{0}); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-accepted:
		if got != member.ID().String() {
			t.Fatalf("accepted %s, want the member %s", got, member.ID())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the member's stream was not accepted")
	}
}
