package node

import (
	"context"
	"testing"
	"time"
)

// newBenchCluster starts five nodes with instant builders. The cluster
// helpers take a *testing.T; a benchmark gives them one of its own.
func newBenchCluster(b *testing.B) (*cluster, context.Context) {
	t := &testing.T{}
	c := newCluster(t, 5, nil)
	c.t = t
	c.startAll()
	b.Cleanup(c.stopAll)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	b.Cleanup(cancel)
	c.leader(ctx)
	if _, evs := c.publish(ctx, 1, testSpec(999_999)); lastEvent(evs).Type != EventFinal {
		b.Fatal("warm-up round did not publish")
	}
	return c, ctx
}

// BenchmarkRound is one publish through a follower, five build nodes,
// builds that take no time: request gossip, five votes, quorum, Raft
// commit, apply on five logs, peer cosigning, final checkpoint at the
// requesting node.
func BenchmarkRound(b *testing.B) {
	c, ctx := newBenchCluster(b)
	via := (c.leader(ctx) + 1) % 5
	b.ResetTimer()
	for i := range b.N {
		if _, evs := c.publish(ctx, via, testSpec(10_000+i)); lastEvent(evs).Type != EventFinal {
			b.Fatalf("round %d: %+v", i, lastEvent(evs))
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/round")
}

// BenchmarkBurst200 sends 200 requests at once through one node and waits
// until a final checkpoint covers all of them there.
func BenchmarkBurst200(b *testing.B) {
	c, ctx := newBenchCluster(b)
	via := (c.leader(ctx) + 1) % 5
	n := c.nodes[via].node
	b.ResetTimer()
	for i := range b.N {
		start := n.Log().Size()
		for k := range 200 {
			if _, err := n.Publish(ctx, testSpec(100_000+i*1000+k)); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := n.Log().WaitFinal(ctx, start+200); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(200*b.N)/b.Elapsed().Seconds(), "entries/s")
}
