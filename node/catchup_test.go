package node

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// snapshotRaft snapshots after every couple of entries and keeps a single
// entry behind its snapshots: a node that comes back without its Raft log
// gets a snapshot, not the entries.
func snapshotRaft() *raft.Config {
	rc := fastRaft()
	rc.SnapshotThreshold = 2
	rc.SnapshotInterval = 50 * time.Millisecond
	rc.TrailingLogs = 1
	return rc
}

// A node that lost its log (and its cosigner state, builds and verdicts)
// but kept its Raft state restores its Raft snapshot when it starts:
// larger than its now empty log, so it fetches the entries from the
// peers' logs over libp2p, each proven in their final checkpoint and
// re-checked against the policy, holds a replica byte-identical to
// theirs, and cosigns again.
//
// (The case of a node wiped entirely while its peers compacted their Raft
// logs takes the same path, through the snapshot the leader sends; but
// raft-wal v0.4.0 still serves compacted entries of its open segment, 64
// MiB by default, so a test cluster's leader replays its log instead,
// as TestWipedNodeCatchesUp shows.)
func TestNodeCatchesUpFromSnapshot(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.raftConfig = snapshotRaft
	c.startAll()
	ctx := c.ctx()
	var inputs []string
	for k := range 5 {
		in, _ := c.publish(ctx, 0, testSpec(500+k))
		inputs = append(inputs, in)
	}
	// node-c has a snapshot of the entries.
	for {
		st := c.nodes[2].node.Raft().Stats()
		if idx, _ := strconv.Atoi(st["last_snapshot_index"]); idx >= 5 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("node-c took no snapshot: %v", st)
		case <-time.After(20 * time.Millisecond):
		}
	}
	c.stop(2)
	for _, d := range []string{"log", "cosigner", "builds", "verdicts"} {
		if err := os.RemoveAll(filepath.Join(c.nodes[2].dir, d)); err != nil {
			t.Fatal(err)
		}
	}
	c.start(2)
	c.waitLogged(ctx, 2, inputs)
	if got := c.nodes[2].node.catchup.fetched.Load(); got == 0 {
		t.Fatalf("node-c holds the entries, but fetched none from its peers (its Raft: %v)", c.nodes[2].node.Raft().Stats())
	} else {
		t.Logf("node-c fetched %d entries from its peers after restoring a snapshot", got)
	}
	in, _ := c.publish(ctx, 0, testSpec(505))
	inputs = append(inputs, in)
	for i := range c.nodes {
		c.waitLogged(ctx, i, inputs)
		if _, err := c.nodes[i].node.Log().WaitFinal(ctx, 6); err != nil {
			t.Fatal(err)
		}
	}
	c.sameReplicas(6)
	last, err := os.ReadFile(filepath.Join(c.nodes[2].dir, "cosigner", "cosigned-checkpoint"))
	if err != nil {
		t.Fatalf("node-c has not cosigned since its restart: %v", err)
	}
	if lines := bytes.SplitN(last, []byte("\n"), 3); len(lines) < 2 || string(lines[1]) != "6" {
		t.Errorf("node-c last cosigned %q, want size 6", last)
	}
}
