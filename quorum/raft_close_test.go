package quorum

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
)

// TestRaftCloseWhileFlooded: a leader whose peers keep sending it Raft RPCs
// on many streams at once while it closes, and which is itself waiting on a
// peer that takes its RPCs but never answers them, closes within a bound
// (real libp2p hosts, real Raft). Before Raft.Close closed the transport and
// every Raft stream first, Close waited for the RPCs to the stuck peer to
// reach their 10 s deadline, with the peers' RPCs held in the transport.
func TestRaftCloseWhileFlooded(t *testing.T) {
	// Four voters: a, b and c run Raft (a majority of four); d takes Raft
	// streams, reads them and never answers.
	nds := testNodes(t, 4)
	net := testNetwork(t, nds, NetworkOptions{})
	c := &raftCluster{t: t, net: net}
	base := t.TempDir()
	for i, nd := range nds[:3] {
		c.nodes = append(c.nodes, &raftNode{nd: nd, dir: filepath.Join(base, fmt.Sprint(i))})
	}
	stuck := startHost(t, nds[3].key, NewGater(net.PeerIDs()))
	var stuckStreams atomic.Int64
	stuck.SetStreamHandler(RaftProtocol, func(s network.Stream) {
		stuckStreams.Add(1)
		io.Copy(io.Discard, s) // until the dialer closes it
		s.Close()
	})
	for _, rn := range c.nodes {
		c.start(rn)
	}
	t.Cleanup(func() {
		for _, rn := range c.nodes {
			c.stop(rn)
		}
	})
	hosts := []host.Host{stuck}
	for _, rn := range c.nodes {
		hosts = append(hosts, rn.h)
	}
	connectAll(t, hosts)
	leader := c.leader(20 * time.Second)
	waitFor(t, 10*time.Second, "the leader to send RPCs to the stuck peer", func() bool { return stuckStreams.Load() > 0 })

	// Every other node floods the leader with AppendEntries of an old term
	// (not heartbeats: they go through the Raft loop), 32 at a time.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var answered atomic.Int64
	addr := raft.ServerAddress(leader.h.ID().String())
	for _, s := range c.nodes {
		if s == leader {
			continue
		}
		self := []byte(s.h.ID().String())
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
					}
					req := raft.AppendEntriesRequest{
						RPCHeader:    raft.RPCHeader{ProtocolVersion: raft.ProtocolVersionMax, ID: self, Addr: self},
						Term:         1,
						PrevLogEntry: 1, PrevLogTerm: 1, LeaderCommitIndex: 1,
					}
					var resp raft.AppendEntriesResponse
					if err := s.raft.transport.AppendEntries(raft.ServerID(addr), addr, &req, &resp); err == nil {
						answered.Add(1)
					} else {
						time.Sleep(10 * time.Millisecond)
					}
				}
			}()
		}
	}
	defer func() { close(stop); wg.Wait() }()
	waitFor(t, 10*time.Second, "the leader to answer the flood", func() bool { return answered.Load() > 100 })

	const bound = 3 * time.Second
	start := time.Now()
	done := make(chan error, 1)
	go func() { done <- leader.raft.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Close: %v", err)
		}
		t.Logf("the leader closed in %v (%d flood RPCs answered)", time.Since(start), answered.Load())
	case <-time.After(bound):
		t.Errorf("the flooded leader did not close in %v", bound)
		<-done
		t.Logf("it closed after %v", time.Since(start))
	}
	leader.down = true
	if n := leader.raft.Layer.Open(); n != 0 {
		t.Errorf("%d Raft streams still open after Close", n)
	}
	if _, err := leader.raft.Layer.Dial(raft.ServerAddress(stuck.ID().String()), time.Second); err == nil {
		t.Error("the closed stream layer dialed")
	}
	leader.h.Close()
	leader.log.Close()
}

// stuckCatchup is a catch-up whose peers never answer: it waits for its
// context, or for release.
type stuckCatchup struct {
	entered chan struct{}
	once    sync.Once
	release chan struct{}
}

func (s *stuckCatchup) CatchUp(ctx context.Context, _ Applier, _, _ uint64) error {
	s.once.Do(func() { close(s.entered) })
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-s.release:
		return errors.New("released by the test")
	}
}

// TestRaftCloseDuringCatchup: a node whose FSM restores a snapshot larger
// than its log catches up in Restore, on Raft's FSM goroutine (a wiped
// follower given the leader's snapshot). Raft's shutdown waits for that
// goroutine, and the catch-up ran under a context nothing cancelled: with
// peers that do not answer, Close waited for good. FSM.Stop ends it, and
// Raft.Close calls it.
func TestRaftCloseDuringCatchup(t *testing.T) {
	stuck := &stuckCatchup{entered: make(chan struct{}), release: make(chan struct{})}
	defer close(stuck.release)
	c := newRaftCluster(t, 1)
	rn := c.nodes[0]
	fsm, err := NewFSM(FSMOptions{Checker: digestChecker, Applier: rn.log, Catchup: stuck})
	if err != nil {
		t.Fatal(err)
	}
	restored := make(chan error, 1)
	go func() { restored <- fsm.Restore(io.NopCloser(bytes.NewReader([]byte(`{"v":2,"size":50}`)))) }()
	select {
	case <-stuck.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("Restore did not catch up")
	}
	fsm.Stop()
	select {
	case err := <-restored:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Restore stopped during its catch-up: %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Stop did not end the catch-up in Restore")
	}
	// Raft.Close stops its FSM.
	if err := rn.raft.Close(); err != nil {
		t.Fatal(err)
	}
	rn.down = true
	rn.h.Close()
	rn.log.Close()
	if rn.fsm.stopped.Err() == nil {
		t.Fatal("Raft.Close did not stop its FSM")
	}
}

// TestRaftReplicatesWithoutPipeline: Raft's transport refuses a pipeline
// to a peer, so the leader replicates with one AppendEntries at a time.
// Raft's pipelined replication can deadlock (see NewRaft's transport): a
// follower's answer with a newer term, after a leadership transfer, left
// a leader's replication goroutine waiting forever, and its Close with it
// (node's TestThreeDigestsNoQuorum, which hands leadership over as it
// stops each node, hung in Raft.Close so about one run in ten under load).
func TestRaftReplicatesWithoutPipeline(t *testing.T) {
	c := newRaftCluster(t, 2)
	a, b := c.nodes[0], c.nodes[1]
	id := raft.ServerID(b.h.ID().String())
	p, err := a.raft.transport.AppendEntriesPipeline(id, raft.ServerAddress(id))
	if err == nil {
		p.Close()
	}
	if !errors.Is(err, raft.ErrPipelineReplicationNotSupported) {
		t.Fatalf("AppendEntriesPipeline to %s: got %v, want %v", b.nd.name, err, raft.ErrPipelineReplicationNotSupported)
	}
}
