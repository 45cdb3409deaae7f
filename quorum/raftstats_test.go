package quorum

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestRaftTimings: the counters of a real three-node cluster after 20
// proposals: every node applied them, the leader's commit wait is part of
// its proposals' wait, and the FSM is still given batches.
func TestRaftTimings(t *testing.T) {
	c := newRaftCluster(t, 3)
	leader := c.leader(10 * time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for i := range 20 {
		if _, err := propose(ctx, leader, fmt.Sprintf("timed-%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "every node to apply 20 commands", func() bool {
		for _, rn := range c.nodes {
			if rn.raft.Timings().Applied < 20 {
				return false
			}
		}
		return true
	})
	lt := leader.raft.Timings()
	if lt.Proposals != 20 || lt.Applied != 20 {
		t.Fatalf("leader: %d proposals, %d applied, want 20 and 20", lt.Proposals, lt.Applied)
	}
	if lt.CommitWait <= 0 || lt.FSMApply <= 0 || lt.Batches == 0 {
		t.Fatalf("leader: commit wait %v, FSM apply %v in %d batches: want all above zero", lt.CommitWait, lt.FSMApply, lt.Batches)
	}
	if lt.CommitWait+lt.FSMApply > lt.ProposeWait {
		t.Fatalf("leader: commit wait %v plus FSM apply %v exceed the proposals' wait %v they are part of", lt.CommitWait, lt.FSMApply, lt.ProposeWait)
	}
	for _, rn := range c.nodes {
		if rn != leader {
			if ft := rn.raft.Timings(); ft.Proposals != 0 || ft.CommitWait <= 0 {
				t.Fatalf("%s: %d proposals, commit wait %v: want 0 and above zero", rn.nd.name, ft.Proposals, ft.CommitWait)
			}
		}
	}
	if _, ok := timeFSM(leader.fsm, &fsmTimes{}).(raft.BatchingFSM); !ok {
		t.Fatal("the timed FSM is not a BatchingFSM: Raft would apply one entry at a time")
	}
}
