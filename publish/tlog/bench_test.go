package tlog

// Benchmarks of the log against the performance goals of the issue:
//
//   - BenchmarkAppend: durable appends of 1 KiB entries from concurrent
//     writers, with acknowledgement latency and heap in use;
//   - BenchmarkInclusionProofHTTP and BenchmarkInclusionProof: inclusion
//     proofs over HTTP on loopback and in process, on a log of
//     PYRSIA_BENCH_ENTRIES entries (default 1,000,000).
//
// The logs live under PYRSIA_BENCH_DIR (default the system temporary
// folder), on the filesystem whose fsync latency is being measured. The
// proof benchmarks keep their log in PYRSIA_BENCH_DIR/pyrsia-tlog-bench-<N>
// between runs (building it takes seconds, reopening it replays it once);
// remove that folder to reclaim the space. See BENCHMARKS-tlog.md.

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
	"golang.org/x/mod/sumdb/note"
)

const (
	benchOrigin    = "example.com/pyrsia-bench-log"
	benchEntrySize = 1024
)

var benchQuiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// benchSigner returns a fresh Ed25519 checkpoint signer for benchOrigin.
func benchSigner(tb testing.TB) note.Signer {
	tb.Helper()
	skey, _, err := note.GenerateKey(nil, benchOrigin)
	if err != nil {
		tb.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// benchDir returns a new empty folder for one benchmark run, removed at its
// end, under PYRSIA_BENCH_DIR if set.
func benchDir(b *testing.B) string {
	base := os.Getenv("PYRSIA_BENCH_DIR")
	if base == "" {
		return b.TempDir()
	}
	dir, err := os.MkdirTemp(base, "pyrsia-tlog-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// benchEntry returns a new 1 KiB entry, distinct for each (writer, i). A new
// slice each time, as a server that receives entries over the network has.
func benchEntry(writer, i int) []byte {
	e := make([]byte, benchEntrySize)
	binary.BigEndian.PutUint64(e[0:], uint64(writer))
	binary.BigEndian.PutUint64(e[8:], uint64(i))
	for j := 16; j < len(e); j++ {
		e[j] = byte('a' + j%26)
	}
	return e
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted durations,
// in milliseconds.
func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p/100+0.5) - 1
	i = max(0, min(i, len(sorted)-1))
	return float64(sorted[i]) / float64(time.Millisecond)
}

// heapInuseMiB collects garbage and returns the heap in use, in MiB.
func heapInuseMiB() float64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return float64(ms.HeapInuse) / (1 << 20)
}

// appendWorkload runs b.N appends of 1 KiB entries from writers goroutines
// through appendFn, which returns once the entry is acknowledged, and
// reports throughput and acknowledgement latency. The timer must be running.
func appendWorkload(b *testing.B, writers int, appendFn func(ctx context.Context, e []byte) error) {
	ctx := context.Background()
	var next atomic.Int64
	lats := make([][]time.Duration, writers)
	var wg sync.WaitGroup
	var failed atomic.Bool
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, b.N/writers+1)
			for {
				i := next.Add(1)
				if i > int64(b.N) || failed.Load() {
					break
				}
				e := benchEntry(w, int(i))
				start := time.Now()
				err := appendFn(ctx, e)
				lat = append(lat, time.Since(start))
				if err != nil {
					b.Errorf("append: %v", err)
					failed.Store(true)
					break
				}
			}
			lats[w] = lat
		}()
	}
	wg.Wait()
	b.StopTimer()
	elapsed := b.Elapsed()
	all := slices.Concat(lats...)
	slices.Sort(all)
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
	b.ReportMetric(percentile(all, 50), "p50-ms")
	b.ReportMetric(percentile(all, 99), "p99-ms")
	b.ReportMetric(percentile(all, 100), "max-ms")
}

// BenchmarkAppend measures durable appends (acknowledged once fdatasync'd
// in the write-ahead log) of 1 KiB entries from 1, 64 and 1024 concurrent
// writers, with a checkpoint published every 100 ms, as a real log does.
// heap-MiB is the heap in use after the run with the log still open: run
// with -benchtime 100000x and 1000000x to see that it does not grow with
// the number of entries.
func BenchmarkAppend(b *testing.B) {
	for _, writers := range []int{1, 64, 1024} {
		b.Run("writers="+strconv.Itoa(writers), func(b *testing.B) {
			signer := benchSigner(b)
			l, err := Open(context.Background(), Options{Dir: benchDir(b), Origin: benchOrigin, Signer: signer, Logger: benchQuiet})
			if err != nil {
				b.Fatal(err)
			}
			defer l.Close()

			// The publisher: a checkpoint every 100 ms.
			stop := make(chan struct{})
			var pubWG sync.WaitGroup
			var publishes atomic.Int64
			pubWG.Add(1)
			go func() {
				defer pubWG.Done()
				t := time.NewTicker(100 * time.Millisecond)
				defer t.Stop()
				for {
					select {
					case <-stop:
						return
					case <-t.C:
						if _, err := publishCommit(l, context.Background()); err != nil {
							b.Errorf("Publish: %v", err)
							return
						}
						publishes.Add(1)
					}
				}
			}()

			runtime.GC()
			b.ResetTimer()
			appendWorkload(b, writers, func(ctx context.Context, e []byte) error {
				_, err := l.Append(ctx, e)
				return err
			})
			close(stop)
			pubWG.Wait()
			if got := l.Size(); got != uint64(b.N) {
				b.Errorf("log holds %d entries after %d appends", got, b.N)
			}
			b.ReportMetric(heapInuseMiB(), "heap-MiB")
			cp, err := publishCommit(l, context.Background())
			if err != nil {
				b.Fatal(err)
			}
			if cp.Size != uint64(b.N) {
				b.Errorf("checkpoint size %d, want %d", cp.Size, b.N)
			}
		})
	}
}

// The proof benchmarks share one log of benchEntries() entries.
var proofLog struct {
	once    sync.Once
	l       *Log
	cp      *Checkpoint
	leaves  map[uint64][]byte // leaf hashes of a sample of the entries
	sampled []uint64          // the sampled indexes
	err     error
}

// proofSampleStride: the leaf hash of every proofSampleStride-th entry is
// kept, to verify proofs of those entries.
const proofSampleStride = 1021

func benchEntries(tb testing.TB) uint64 {
	if s := os.Getenv("PYRSIA_BENCH_ENTRIES"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			tb.Fatalf("PYRSIA_BENCH_ENTRIES=%q is not a positive number", s)
		}
		return n
	}
	return 1_000_000
}

// benchProofLog returns the shared log, building it the first time: in
// PYRSIA_BENCH_DIR/pyrsia-tlog-bench-<N>, reused (reopened) when a previous
// run left it there.
func benchProofLog(b *testing.B) (*Log, *Checkpoint) {
	n := benchEntries(b)
	proofLog.once.Do(func() {
		proofLog.l, proofLog.cp, proofLog.err = buildProofLog(b, n)
	})
	if proofLog.err != nil {
		b.Fatal(proofLog.err)
	}
	return proofLog.l, proofLog.cp
}

func buildProofLog(b *testing.B, n uint64) (*Log, *Checkpoint, error) {
	base := os.Getenv("PYRSIA_BENCH_DIR")
	if base == "" {
		base = os.TempDir()
	}
	dir := filepath.Join(base, fmt.Sprintf("pyrsia-tlog-bench-%d", n))
	// A log of benchmark entries is its own checkpoint signer's: a fresh key
	// signs the new checkpoint; the proofs are checked against its root.
	signer := benchSigner(b)
	var mu sync.Mutex
	leaves := make(map[uint64][]byte)
	keep := func(index uint64, entry []byte) {
		if index%proofSampleStride == 0 {
			mu.Lock()
			leaves[index] = hasher.HashLeaf(entry)
			mu.Unlock()
		}
	}
	opts := Options{
		Dir: dir, Origin: benchOrigin, Signer: signer, Logger: benchQuiet,
		MaxBatch: 8192, QueueSize: 16384,
		Visit: func(index uint64, entry []byte) error { keep(index, entry); return nil },
	}
	start := time.Now()
	l, err := Open(context.Background(), opts)
	if err != nil {
		// Left by an older version, or in use: start again elsewhere.
		b.Logf("reusing %s: %v; building a new log", dir, err)
		if dir, err = os.MkdirTemp(base, "pyrsia-tlog-bench-"); err != nil {
			return nil, nil, err
		}
		opts.Dir = dir
		if l, err = Open(context.Background(), opts); err != nil {
			return nil, nil, err
		}
	}
	have := l.Size()
	if have > n {
		l.Close()
		return nil, nil, fmt.Errorf("%s holds %d entries, more than %d", dir, have, n)
	}
	if have > 0 {
		b.Logf("reopened %s: %d entries in %v", dir, have, time.Since(start).Round(time.Millisecond))
	}
	if have < n {
		// Entries of 100 bytes: the proofs do not depend on the entry size,
		// and the log builds faster.
		start := time.Now()
		var next atomic.Uint64
		next.Store(have)
		var wg sync.WaitGroup
		var firstErr atomic.Pointer[error]
		for w := range 2048 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					i := next.Add(1) - 1
					if i >= n || firstErr.Load() != nil {
						return
					}
					e := fmt.Appendf(nil, "pyrsia benchmark entry %d from writer %d ", i, w)
					for len(e) < 100 {
						e = append(e, '.')
					}
					idx, err := l.Append(context.Background(), e)
					if err != nil {
						firstErr.CompareAndSwap(nil, &err)
						return
					}
					keep(idx, e)
				}
			}()
		}
		wg.Wait()
		if p := firstErr.Load(); p != nil {
			l.Close()
			return nil, nil, *p
		}
		b.Logf("built %s: %d entries in %v", dir, n-have, time.Since(start).Round(time.Millisecond))
	}
	cp, err := publishCommit(l, context.Background())
	if err != nil {
		l.Close()
		return nil, nil, err
	}
	if cp.Size != n {
		l.Close()
		return nil, nil, fmt.Errorf("checkpoint size %d, want %d", cp.Size, n)
	}
	proofLog.leaves = leaves
	for i := range leaves {
		proofLog.sampled = append(proofLog.sampled, i)
	}
	slices.Sort(proofLog.sampled)
	// The log stays open (and its folder stays) until the process ends.
	return l, cp, nil
}

// verifySample checks the proof of a sampled entry against the checkpoint.
func verifySample(cp *Checkpoint, index uint64, hashes [][]byte) error {
	leaf, ok := proofLog.leaves[index]
	if !ok {
		return fmt.Errorf("entry %d is not sampled", index)
	}
	if err := proof.VerifyInclusion(hasher, index, cp.Size, leaf, hashes, cp.Hash); err != nil {
		return fmt.Errorf("proof of entry %d: %w", index, err)
	}
	return nil
}

// proofVerifyEvery: one request in proofVerifyEvery asks for a sampled
// entry and checks the proof.
const proofVerifyEvery = 64

// BenchmarkInclusionProofHTTP measures inclusion proofs served by
// Log.Handler over loopback HTTP/1.1 with keep-alive, for random entries
// of a log of PYRSIA_BENCH_ENTRIES entries, from 1, 8 and 32 × GOMAXPROCS
// concurrent clients. One response in 64 is verified against the checkpoint.
func BenchmarkInclusionProofHTTP(b *testing.B) {
	for _, par := range []int{1, 8, 32} {
		b.Run("clients="+strconv.Itoa(par*runtime.GOMAXPROCS(0)), func(b *testing.B) {
			l, cp := benchProofLog(b)
			srv := httptest.NewServer(l.Handler())
			defer srv.Close()
			tr := &http.Transport{
				MaxIdleConns:        4096,
				MaxIdleConnsPerHost: 4096,
				IdleConnTimeout:     time.Minute,
				DisableCompression:  true,
			}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			base := srv.URL + "/proof/inclusion/"
			var verified atomic.Int64
			b.SetParallelism(par)
			b.ReportAllocs()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for k := 0; pb.Next(); k++ {
					check := k%proofVerifyEvery == 0
					var index uint64
					if check {
						index = proofLog.sampled[rand.IntN(len(proofLog.sampled))]
					} else {
						index = rand.Uint64N(cp.Size)
					}
					resp, err := client.Get(base + strconv.FormatUint(index, 10))
					if err != nil {
						b.Error(err)
						return
					}
					buf, err := io.ReadAll(resp.Body)
					resp.Body.Close()
					if err != nil {
						b.Error(err)
						return
					}
					if resp.StatusCode != http.StatusOK {
						b.Errorf("GET proof of %d: %s: %s", index, resp.Status, buf)
						return
					}
					if check {
						if err := checkProofResponse(cp, index, buf); err != nil {
							b.Error(err)
							return
						}
						verified.Add(1)
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "proofs/s")
			b.ReportMetric(heapInuseMiB(), "heap-MiB")
			if b.N >= proofVerifyEvery && verified.Load() == 0 {
				b.Error("no proof verified")
			}
		})
	}
}

func checkProofResponse(cp *Checkpoint, index uint64, body []byte) error {
	var pr ProofResponse
	if err := json.Unmarshal(body, &pr); err != nil {
		return fmt.Errorf("proof of %d: %v", index, err)
	}
	if pr.Index != index || pr.TreeSize != cp.Size {
		return fmt.Errorf("proof of %d: for entry %d in tree size %d", index, pr.Index, pr.TreeSize)
	}
	hashes := make([][]byte, len(pr.Hashes))
	for i, h := range pr.Hashes {
		var err error
		if hashes[i], err = base64.StdEncoding.DecodeString(h); err != nil {
			return fmt.Errorf("proof of %d: %v", index, err)
		}
	}
	return verifySample(cp, index, hashes)
}

// BenchmarkInclusionProof measures Log.InclusionProof in process (no HTTP,
// no JSON), for the cost split with BenchmarkInclusionProofHTTP.
func BenchmarkInclusionProof(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		l, cp := benchProofLog(b)
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			check := i%proofVerifyEvery == 0
			index := rand.Uint64N(cp.Size)
			if check {
				index = proofLog.sampled[rand.IntN(len(proofLog.sampled))]
			}
			p, err := l.InclusionProof(ctx, index, cp.Size)
			if err != nil {
				b.Fatal(err)
			}
			if check {
				if err := verifySample(cp, index, p); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "proofs/s")
	})
	b.Run("parallel", func(b *testing.B) {
		l, cp := benchProofLog(b)
		ctx := context.Background()
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := l.InclusionProof(ctx, rand.Uint64N(cp.Size), cp.Size); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "proofs/s")
		b.ReportMetric(heapInuseMiB(), "heap-MiB")
	})
}

// BenchmarkInclusionProofWrk serves the proof log on loopback and loads it
// with wrk (Debian's wrk: a separate, C load generator), requesting proofs
// of random entries; it reports wrk's requests per second. Skips when wrk
// is not on PATH.
func BenchmarkInclusionProofWrk(b *testing.B) {
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		b.Skip("wrk is not on PATH (apt-get install wrk)")
	}
	l, cp := benchProofLog(b)
	srv := httptest.NewServer(l.Handler())
	defer srv.Close()
	script := filepath.Join(b.TempDir(), "proofs.lua")
	os.WriteFile(script, []byte(fmt.Sprintf(`math.randomseed(42)
request = function()
  return wrk.format("GET", "/proof/inclusion/" .. math.random(0, %d))
end
`, cp.Size-1)), 0o644)
	b.ResetTimer()
	var rps float64
	for i := 0; i < b.N; i++ {
		out, err := exec.Command(wrk, "-t", "1", "-c", "64", "-d", "10s", "-s", script, srv.URL).CombinedOutput()
		if err != nil {
			b.Fatalf("wrk: %v\n%s", err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "Requests/sec:" {
				rps, _ = strconv.ParseFloat(f[1], 64)
			}
			if strings.Contains(line, "Non-2xx") {
				b.Fatalf("wrk saw errors:\n%s", out)
			}
		}
	}
	b.ReportMetric(rps, "proofs/s")
}

// BenchmarkOpen measures opening (recovering) a log on disk of 20,000
// entries of 1 KiB, all still in the write-ahead log (one segment: the
// worst case for a writer's Open, which writes the newest segment and the
// tiles it covers again), as a writer and read-only. cpu-s/op is the
// process's CPU time (getrusage) per Open.
func BenchmarkOpen(b *testing.B) {
	signer := benchSigner(b)
	dir := benchDir(b)
	l, err := Open(context.Background(), Options{Dir: dir, Origin: benchOrigin, Signer: signer, Logger: benchQuiet})
	if err != nil {
		b.Fatal(err)
	}
	batch := make([][]byte, 1000)
	for n := range 20 {
		for i := range batch {
			batch[i] = fmt.Appendf(nil, "%d %d %s", n, i, strings.Repeat("x", 1000))
		}
		if _, err := l.AppendBatch(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := publishCommit(l, context.Background()); err != nil {
		b.Fatal(err)
	}
	l.Close()
	for _, ro := range []bool{false, true} {
		b.Run(fmt.Sprintf("readonly=%v", ro), func(b *testing.B) {
			cpu0 := rusageCPU(b)
			for range b.N {
				l, err := Open(context.Background(), Options{Dir: dir, Origin: benchOrigin, Signer: signer, Logger: benchQuiet, ReadOnly: ro})
				if err != nil {
					b.Fatal(err)
				}
				if l.Size() != 20000 {
					b.Fatalf("size %d", l.Size())
				}
				l.Close()
			}
			b.ReportMetric((rusageCPU(b)-cpu0).Seconds()/float64(b.N), "cpu-s/op")
		})
	}
}

// rusageCPU returns the process's user and system CPU time.
func rusageCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
