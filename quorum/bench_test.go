package quorum

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/host"
)

// benchCluster is a 3-node Raft cluster over libp2p on loopback with the
// real raft-wal store, whose FSM appends to memory: Raft's share of an
// append.
func benchCluster(b *testing.B) *Raft {
	b.Helper()
	nds := testNodes(b, 3)
	net := testNetwork(b, nds, NetworkOptions{})
	var hosts []host.Host
	var rafts []*Raft
	dir := b.TempDir()
	for i, nd := range nds {
		h := startHost(b, nd.key, NewGater(net.PeerIDs()))
		hosts = append(hosts, h)
		f, _ := NewFSM(FSMOptions{Checker: digestChecker, Applier: &memLog{}, Logger: slog.New(slog.DiscardHandler)})
		r, err := NewRaft(RaftOptions{Host: h, Network: net, Dir: filepath.Join(dir, fmt.Sprint(i)), FSM: f, Bootstrap: true, Config: fastRaftConfig(), LogOutput: io.Discard})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { r.Close() })
		rafts = append(rafts, r)
	}
	connectAll(b, hosts)
	var leader *Raft
	waitFor(b, 10*time.Second, "a leader", func() bool {
		for _, r := range rafts {
			if r.State() == raft.Leader {
				leader = r
				return true
			}
		}
		return false
	})
	return leader
}

// BenchmarkRaftApply: one caller at a time (latency: p50-ms, p99-ms).
func BenchmarkRaftApply(b *testing.B) {
	leader := benchCluster(b)
	var n atomic.Uint64
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for b.Loop() {
		e := fmt.Appendf(nil, "entry-%d", n.Add(1))
		start := time.Now()
		f := leader.Apply(AppendEntryCommand(e), 10*time.Second)
		if err := f.Error(); err != nil {
			b.Fatal(err)
		}
		if r := f.Response().(ApplyResult); r.Err != nil {
			b.Fatal(r.Err)
		}
		lat = append(lat, time.Since(start))
	}
	reportLatency(b, lat)
}

// BenchmarkRaftApply64: 64 concurrent callers (entries/s).
func BenchmarkRaftApply64(b *testing.B) {
	leader := benchCluster(b)
	var n atomic.Uint64
	b.SetParallelism(max(1, 64/max(1, testingProcs())))
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			e := fmt.Appendf(nil, "entry-%d", n.Add(1))
			f := leader.Apply(AppendEntryCommand(e), 10*time.Second)
			if err := f.Error(); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "entries/s")
}

// testingProcs is GOMAXPROCS: RunParallel starts SetParallelism times as
// many goroutines.
func testingProcs() int { return runtime.GOMAXPROCS(0) }

func reportLatency(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
}

// gossipBench is five nodes; node 0 publishes votes, the four others
// receive them through the validators.
func gossipBench(b *testing.B) (*gossipNet, []byte, *Vote) {
	b.Helper()
	gn := newGossipNet(b, 5, 0, NetworkOptions{})
	spec, input := testSpec(b, "demo:1")
	v := testVote(b, gn.net.Digest(), gn.nodes[0], spec, input, "artifact")
	// Wait for the mesh (a vote published before it forms can be lost),
	// with a first vote that every node must get.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := gn.gs[0].PublishVote(ctx, voteN(v, -1), PublishOptions{MinPeers: 4}); err != nil {
		b.Fatal(err)
	}
	for _, g := range gn.gs {
		if _, err := g.NextVote(ctx); err != nil {
			b.Fatal(err)
		}
	}
	return gn, spec, v
}

// voteN is vote v with a distinct manifest digest, so that no two are
// duplicates.
func voteN(v *Vote, i int) *Vote {
	w := *v
	w.Manifest = "sha256:" + hexDigest(fmt.Sprint(i))
	return &w
}

// BenchmarkGossipVote: one vote at a time to 4 peers, until all four
// have it (latency: p50-ms, p99-ms; each vote is about 3 KiB).
func BenchmarkGossipVote(b *testing.B) {
	gn, _, v := gossipBench(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	size, _ := v.Marshal()
	b.SetBytes(int64(len(size)))
	lat := make([]time.Duration, 0, b.N)
	i := 0
	b.ResetTimer()
	for b.Loop() {
		i++
		start := time.Now()
		if err := gn.gs[0].PublishVote(ctx, voteN(v, i), PublishOptions{}); err != nil {
			b.Fatal(err)
		}
		for _, g := range gn.gs[1:] {
			if _, err := g.NextVote(ctx); err != nil {
				b.Fatal(err)
			}
		}
		lat = append(lat, time.Since(start))
		// The publisher's own subscription gets it too.
		if _, err := gn.gs[0].NextVote(ctx); err != nil {
			b.Fatal(err)
		}
	}
	reportLatency(b, lat)
}

// BenchmarkGossipVoteBurst: b.N votes published at once; msgs/s is how
// many votes per second reach all four peers.
func BenchmarkGossipVoteBurst(b *testing.B) {
	gn, _, v := gossipBench(b)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	votes := make([]*Vote, b.N)
	for i := range votes {
		votes[i] = voteN(v, i)
	}
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for _, g := range gn.gs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range b.N {
				if _, err := g.NextVote(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	for _, vote := range votes {
		if err := gn.gs[0].PublishVote(ctx, vote, PublishOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
	for i, g := range gn.gs {
		if d := g.DropsTotal(); d != 0 {
			b.Fatalf("node %d dropped %d votes: %v", i, d, g.Drops())
		}
	}
}
