package quorum

import (
	"io"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// RaftTimings are a Raft server's counters, for benchmarks: where an entry's
// time goes between a proposal and its FSM's response.
type RaftTimings struct {
	// Proposals and ProposeWait are [Raft.Propose]'s: the commands
	// proposed here and applied, and the sum of their waits on Raft's
	// Apply future (the commit, the queue to the FSM and its apply here).
	Proposals   uint64
	ProposeWait time.Duration
	// Applied and Batches are the commands this node's FSM applied and the
	// batches Raft gave them in.
	Applied, Batches uint64
	// CommitWait is the sum, over the commands applied, of the time from
	// the leader's append of the command to its log (raft.Log.AppendedAt,
	// the leader's clock) to the start of the FSM's apply of its batch
	// here: replication to a majority, the commit, and the queue to the
	// FSM. On a follower it compares two clocks (the leader's and this
	// node's): read it only where they are one (in one process) or in
	// sync.
	CommitWait time.Duration
	// FSMApply is the time this node's FSM spent applying the batches.
	FSMApply time.Duration
}

// Timings returns the server's counters (raft.Raft's Stats is its own map).
func (r *Raft) Timings() RaftTimings {
	s := RaftTimings{Proposals: r.proposals.Load(), ProposeWait: time.Duration(r.waited.Load())}
	r.fsmStats.mu.Lock()
	s.Applied, s.Batches = r.fsmStats.applied, r.fsmStats.batches
	s.CommitWait, s.FSMApply = r.fsmStats.commitWait, r.fsmStats.apply
	r.fsmStats.mu.Unlock()
	return s
}

// fsmTimes times the FSM that Raft drives.
type fsmTimes struct {
	mu               sync.Mutex
	applied, batches uint64
	commitWait       time.Duration
	apply            time.Duration
}

func (t *fsmTimes) record(logs []*raft.Log, started time.Time) {
	done := time.Now()
	var n uint64
	var wait time.Duration
	for _, l := range logs {
		if l.Type != raft.LogCommand || l.AppendedAt.IsZero() {
			continue
		}
		n++
		if d := started.Sub(l.AppendedAt); d > 0 {
			wait += d
		}
	}
	t.mu.Lock()
	t.applied += n
	t.batches++
	t.commitWait += wait
	t.apply += done.Sub(started)
	t.mu.Unlock()
}

// timedFSM is a raft.FSM that records into t.
type timedFSM struct {
	fsm raft.FSM
	t   *fsmTimes
}

func (f *timedFSM) Apply(l *raft.Log) any {
	started := time.Now()
	r := f.fsm.Apply(l)
	f.t.record([]*raft.Log{l}, started)
	return r
}

func (f *timedFSM) Snapshot() (raft.FSMSnapshot, error) { return f.fsm.Snapshot() }
func (f *timedFSM) Restore(rc io.ReadCloser) error      { return f.fsm.Restore(rc) }

// timedBatchingFSM is a raft.BatchingFSM that records into t.
type timedBatchingFSM struct {
	timedFSM
	b raft.BatchingFSM
}

func (f *timedBatchingFSM) ApplyBatch(logs []*raft.Log) []any {
	started := time.Now()
	r := f.b.ApplyBatch(logs)
	f.t.record(logs, started)
	return r
}

// timeFSM wraps fsm so that its applies are timed into t, keeping it a
// BatchingFSM when it is one (Raft then gives it batches).
func timeFSM(fsm raft.FSM, t *fsmTimes) raft.FSM {
	tf := timedFSM{fsm: fsm, t: t}
	if b, ok := fsm.(raft.BatchingFSM); ok {
		return &timedBatchingFSM{timedFSM: tf, b: b}
	}
	return &tf
}
