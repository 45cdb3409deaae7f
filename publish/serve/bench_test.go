package serve

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pyrsia/pyrsia-build/publish/index"
	"github.com/pyrsia/pyrsia-build/publish/store"
)

// benchServer serves one published image whose one layer has size bytes
// of random data, from a store, on loopback.
func benchServer(b *testing.B, size int64) (*httptest.Server, image) {
	b.Helper()
	s, err := store.Open(b.TempDir(), store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	layer := make([]byte, size)
	rand.Read(layer)
	im := newImage("bench", string(layer))
	im.put(b, s)
	x, err := index.New()
	if err != nil {
		b.Fatal(err)
	}
	if err := x.Add(0, ociEntry("bench:1", im.digest(), "bench")); err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(NewOCI(OCIOptions{Index: x, Content: StoreContent{Store: s}, Logger: slog.New(slog.DiscardHandler)}))
	b.Cleanup(srv.Close)
	return srv, im
}

// BenchmarkOCIPullCached pulls a 200 MiB blob (PYRSIA_BENCH_SIZE bytes)
// that the node has in its store, over loopback HTTP, and hashes it on the
// client, as a pull does.
func BenchmarkOCIPullCached(b *testing.B) {
	size := int64(200 << 20)
	if v, err := strconv.ParseInt(os.Getenv("PYRSIA_BENCH_SIZE"), 10, 64); err == nil && v > 0 {
		size = v
	}
	srv, im := benchServer(b, size)
	want := digestOf(im.layers[0])
	url := srv.URL + "/v2/bench/blobs/" + want
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	buf := make([]byte, 1<<20)
	// hash: as a client does; discard: the serving path alone.
	for _, hash := range []bool{true, false} {
		name := "hash"
		if !hash {
			name = "discard"
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(size)
			cpu0 := cpuTime()
			defer func() { b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op") }()
			for range b.N {
				resp, err := client.Get(url)
				if err != nil {
					b.Fatal(err)
				}
				h := sha256.New()
				var w io.Writer = h
				if !hash {
					w = io.Discard
				}
				n, err := io.CopyBuffer(w, resp.Body, buf)
				resp.Body.Close()
				if err != nil || n != size || resp.StatusCode != 200 {
					b.Fatalf("GET: %d, %d bytes, %v", resp.StatusCode, n, err)
				}
				if got := fmt.Sprintf("sha256:%x", h.Sum(nil)); hash && got != want {
					b.Fatalf("pulled bytes hash to %s, want %s", got, want)
				}
			}
		})
	}
}

// BenchmarkOCIPullCachedPipelined is BenchmarkOCIPullCached's hashing
// client with its reading and its hashing in two goroutines (four 1 MiB
// buffers passed between them), so that the socket reads overlap the hash
// on a second core.
func BenchmarkOCIPullCachedPipelined(b *testing.B) {
	size := int64(200 << 20)
	if v, err := strconv.ParseInt(os.Getenv("PYRSIA_BENCH_SIZE"), 10, 64); err == nil && v > 0 {
		size = v
	}
	srv, im := benchServer(b, size)
	want := digestOf(im.layers[0])
	url := srv.URL + "/v2/bench/blobs/" + want
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	free := make(chan []byte, 4)
	for range cap(free) {
		free <- make([]byte, 1<<20)
	}
	b.SetBytes(size)
	cpu0 := cpuTime()
	for range b.N {
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		full := make(chan []byte, cap(free))
		sum := make(chan string)
		go func() {
			h := sha256.New()
			for p := range full {
				h.Write(p)
				free <- p[:cap(p)]
			}
			sum <- fmt.Sprintf("sha256:%x", h.Sum(nil))
		}()
		var n int64
		for {
			p := <-free
			k, err := io.ReadFull(resp.Body, p)
			n += int64(k)
			if k > 0 {
				full <- p[:k]
			} else {
				free <- p
			}
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		close(full)
		got := <-sum
		resp.Body.Close()
		if n != size || resp.StatusCode != 200 || got != want {
			b.Fatalf("GET: %d, %d bytes hashing to %s, want %d bytes, %s", resp.StatusCode, n, got, size, want)
		}
	}
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
}

// cpuTime is the process's user and system CPU time so far: on a loaded
// machine, what a pull cost rather than how much of the cores it got.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkSHA256 is the ceiling for BenchmarkOCIPullCached: hashing the
// same number of bytes from memory, in one goroutine.
func BenchmarkSHA256(b *testing.B) {
	buf := make([]byte, 1<<20)
	rand.Read(buf)
	b.SetBytes(200 << 20)
	cpu0 := cpuTime()
	for range b.N {
		h := sha256.New()
		for range 200 {
			h.Write(buf)
		}
		h.Sum(nil)
	}
	b.ReportMetric((cpuTime()-cpu0).Seconds()/float64(b.N), "cpu-s/op")
}

// BenchmarkOCIManifests measures manifest requests by tag per second from
// 64 keep-alive connections of a Go client in this process (wrk, in a
// second process, is BenchmarkOCIManifestsWrk).
func BenchmarkOCIManifests(b *testing.B) {
	srv, _ := benchServer(b, 1024)
	url := srv.URL + "/v2/bench/manifests/1"
	tr := &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}
	client := &http.Client{Transport: tr}
	var failed atomic.Int64
	b.SetParallelism(32) // 64 goroutines on 2 cores
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := client.Get(url)
			if err != nil {
				failed.Add(1)
				continue
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				failed.Add(1)
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
	if f := failed.Load(); f > 0 {
		b.Fatalf("%d requests failed", f)
	}
}

// BenchmarkOCIManifestsWrk loads manifest requests by tag with wrk
// (Debian's wrk: a C load generator in a second process, sharing the two
// cores with the server) and reports its requests per second. Skips when
// wrk is not on PATH.
func BenchmarkOCIManifestsWrk(b *testing.B) {
	wrk, err := exec.LookPath("wrk")
	if err != nil {
		b.Skip("wrk is not on PATH (apt-get install wrk)")
	}
	srv, _ := benchServer(b, 1024)
	var once sync.Once
	var rps float64
	b.ResetTimer()
	for range b.N {
		out, err := exec.Command(wrk, "-t", "1", "-c", "64", "-d", "10s", srv.URL+"/v2/bench/manifests/1").CombinedOutput()
		if err != nil {
			b.Fatalf("wrk: %v\n%s", err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "Requests/sec:" {
				rps, _ = strconv.ParseFloat(f[1], 64)
			}
			if strings.Contains(line, "Non-2xx") || strings.Contains(line, "Socket errors") {
				b.Fatalf("wrk saw errors:\n%s", out)
			}
		}
		once.Do(func() { b.Logf("wrk:\n%s", bytes.TrimSpace(out)) })
	}
	b.ReportMetric(rps, "req/s")
}
