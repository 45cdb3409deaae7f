package node

import (
	"context"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"testing"
	"time"

	"github.com/pyrsia/pyrsia-build/quorum"
	"golang.org/x/time/rate"
)

// newBenchCluster starts five nodes with instant builders. The cluster
// helpers take a *testing.T; a benchmark gives them one of its own.
//
// The requests of a benchmark all come from one requester (the node they
// are sent through), which the default rate (2 a second after a burst of
// 20) would slow down on purpose: the benchmarks lift it, to measure the
// path from gossip to the final checkpoint, not the rate limit.
func newBenchCluster(b *testing.B) (*cluster, context.Context) {
	t := &testing.T{}
	c := newCluster(t, 5, nil)
	c.t = t
	c.requests = quorum.RateOptions{Rate: rate.Inf, Burst: 1000, MaxPending: 1000}
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

// roundTimes are the steps of one round, from its events at the
// requesting node.
type roundTimes struct {
	quorum    time.Duration // the vote that made the quorum (the last vote needed) to final
	published time.Duration // that vote to "published" (Raft commit and apply here)
	final     time.Duration // "published" to "final" (candidate, cosignatures, commit)
	voted     time.Time     // the vote that made the quorum
}

func timesOf(evs []Event, threshold int) (roundTimes, bool) {
	var votes int
	var q, pub, fin time.Time
	for _, ev := range evs {
		switch ev.Type {
		case EventVote:
			if ev.Error == "" {
				votes++
				if votes == threshold {
					q = ev.Time
				}
			}
		case EventPublished:
			pub = ev.Time
		case EventFinal:
			fin = ev.Time
		}
	}
	if q.IsZero() || pub.IsZero() || fin.IsZero() {
		return roundTimes{}, false
	}
	return roundTimes{quorum: fin.Sub(q), published: pub.Sub(q), final: fin.Sub(pub), voted: q}, true
}

func median(ds []time.Duration) float64 {
	if len(ds) == 0 {
		return 0
	}
	ds = slices.Clone(ds)
	slices.Sort(ds)
	return float64(ds[len(ds)/2].Microseconds()) / 1000
}

// BenchmarkRound is one publish through a follower, five build nodes,
// builds that take no time: request gossip, five votes, quorum, Raft
// commit, apply on five logs, peer cosigning, final checkpoint at the
// requesting node. vote-final-ms is the median from the vote that made
// the quorum (the last vote needed) to the final checkpoint at the
// requester, the goal of issue 8; vote-published-ms and
// published-final-ms split it.
func BenchmarkRound(b *testing.B) {
	c, ctx := newBenchCluster(b)
	via := (c.leader(ctx) + 1) % 5
	threshold := c.nodes[via].node.net().Threshold()
	var q, pub, fin []time.Duration
	b.ResetTimer()
	for i := range b.N {
		_, evs := c.publish(ctx, via, testSpec(10_000+i))
		if lastEvent(evs).Type != EventFinal {
			b.Fatalf("round %d: %+v", i, lastEvent(evs))
		}
		if rt, ok := timesOf(evs, threshold); ok {
			q, pub, fin = append(q, rt.quorum), append(pub, rt.published), append(fin, rt.final)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/round")
	b.ReportMetric(median(q), "vote-final-ms")
	b.ReportMetric(median(pub), "vote-published-ms")
	b.ReportMetric(median(fin), "published-final-ms")
	reportRaft(b, c, via)
}

// reportRaft reports Raft's part, from the leader's counters: the mean
// time from a proposal to its commit (Propose's wait, less the FSM's
// apply on the leader), and the mean FSM apply time of an entry.
func reportRaft(b *testing.B, c *cluster, via int) {
	// Envelopes the FSMs (and validators) took from the nodes' caches
	// of verified vote envelopes instead of verifying them again.
	var hits uint64
	for _, tn := range c.nodes {
		if tn.node != nil {
			hits += tn.node.envelopes.Hits()
		}
	}
	b.ReportMetric(float64(hits), "envelope-cache-hits")
	for _, tn := range c.nodes {
		if tn.node == nil {
			continue
		}
		ps := tn.node.Raft().ProposeStats()
		if ps.Proposals == 0 {
			continue
		}
		as := tn.node.fsm.Stats()
		b.ReportMetric(float64(ps.Wait.Microseconds())/1000/float64(ps.Proposals), "propose-ms/entry")
		// The leader's Raft share (quorum.RaftTimings): from its append of
		// an entry to its FSM's apply (replication, commit, FSM queue),
		// and its FSM's apply.
		if rt := tn.node.Raft().Timings(); rt.Applied > 0 {
			b.ReportMetric(float64(rt.CommitWait.Microseconds())/1000/float64(rt.Applied), "commit-ms/entry")
			b.ReportMetric(float64(rt.FSMApply.Microseconds())/1000/float64(rt.Applied), "fsm-ms/entry")
		}
		if as.Entries > 0 {
			b.ReportMetric(float64(as.Apply.Microseconds())/1000/float64(as.Batches), "apply-ms/batch")
			b.ReportMetric(float64(as.Check.Microseconds())/1000/float64(as.Batches), "check-ms/batch")
			b.ReportMetric(float64(as.Append.Microseconds())/1000/float64(as.Batches), "append-ms/batch")
			b.ReportMetric(float64(as.Observe.Microseconds())/1000/float64(as.Batches), "observe-ms/batch")
			b.ReportMetric(float64(as.Entries)/float64(as.Batches), "entries/batch")
		}
	}
}

// BenchmarkBurst200 sends 200 requests at once through one node and waits
// until a final checkpoint covers all of them there. e2e-ms/entry is the
// mean time from an entry's request to the final checkpoint covering it
// at the requester; propose-ms/entry is the mean time its proposal waited
// in Raft (commit and the leader's apply): their ratio is Raft's share.
func BenchmarkBurst200(b *testing.B) {
	c, ctx := newBenchCluster(b)
	via := (c.leader(ctx) + 1) % 5
	n := c.nodes[via].node
	threshold := n.net().Threshold()
	var e2e, toQuorum, toPublished, toFinal time.Duration
	var entries, timed int
	// The workload is votes only: every node has built each input
	// before the burst (as a node that built it for an earlier request
	// has), so the timed part is gossip, quorum, Raft, apply and cosign.
	for i := range b.N {
		for k := range 200 {
			spec, err := n.parseSpec(testSpec(100_000 + i*1000 + k))
			if err != nil {
				b.Fatal(err)
			}
			for _, cn := range c.nodes {
				if _, err := cn.node.builds.build(ctx, spec); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	// BURST_CPUPROFILE=FILE profiles the timed part alone (-test.cpuprofile
	// would take in the five nodes' start and the builds above).
	if f := os.Getenv("BURST_CPUPROFILE"); f != "" {
		w, err := os.Create(f)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(w); err != nil {
			b.Fatal(err)
		}
		defer func() { pprof.StopCPUProfile(); w.Close() }()
	}
	b.ResetTimer()
	cpu0 := processCPU()
	for i := range b.N {
		start := n.Log().Size()
		sent := make(map[string]time.Time, 200)
		for k := range 200 {
			input, err := n.Publish(ctx, testSpec(100_000+i*1000+k))
			if err != nil {
				b.Fatal(err)
			}
			sent[input] = time.Now()
		}
		if _, err := n.Log().WaitFinal(ctx, start+200); err != nil {
			b.Fatal(err)
		}
		for input, t0 := range sent {
			past, _, cancel := n.events.subscribe(input)
			cancel()
			if rt, ok := timesOf(past, threshold); ok {
				toQuorum += rt.voted.Sub(t0)
				toPublished += rt.published
				toFinal += rt.final
				timed++
			}
			for _, ev := range past {
				if ev.Type == EventFinal {
					e2e += ev.Time.Sub(t0)
					entries++
					break
				}
			}
		}
	}
	b.ReportMetric(float64(200*b.N)/b.Elapsed().Seconds(), "entries/s")
	// The process's CPU (user and system, all nodes) over the timed part:
	// unlike the wall time, it does not grow with the machine's load.
	cpu := processCPU() - cpu0
	b.ReportMetric(cpu.Seconds(), "cpu-s")
	b.ReportMetric(float64(cpu.Microseconds())/1000/float64(200*b.N), "cpu-ms/entry")
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
	if entries > 0 {
		b.ReportMetric(float64(e2e.Microseconds())/1000/float64(entries), "e2e-ms/entry")
	}
	if timed > 0 {
		// The mean split of e2e-ms/entry, from the requester's events:
		// request to the vote that made the quorum, that vote to
		// "published" (Raft commit and apply here), to "final".
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(timed) }
		b.ReportMetric(ms(toQuorum), "req-vote-ms/entry")
		b.ReportMetric(ms(toPublished), "vote-published-ms/entry")
		b.ReportMetric(ms(toFinal), "published-final-ms/entry")
	}
	reportRaft(b, c, via)
}
