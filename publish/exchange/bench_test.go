package exchange

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
)

// benchNet starts n nodes, all bootstrapped through the first, logging
// only errors.
func benchNet(b *testing.B, n int, o Options) []*node {
	b.Helper()
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	var nodes []*node
	for i := range n {
		h := benchHost(b)
		st := newStore(b)
		oo := o
		oo.Host, oo.Store, oo.Namespace, oo.Server, oo.Logger = h, st, "bench", true, quiet
		if i > 0 {
			first := nodes[0].x.h
			oo.Bootstrap = []peer.AddrInfo{{ID: first.ID(), Addrs: first.Addrs()}}
		}
		x, err := New(context.Background(), oo)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { x.Close() })
		nodes = append(nodes, &node{x: x, store: st})
	}
	return nodes
}

// benchHost is a host on the transport EXCHANGE_TRANSPORT names: tls
// (TCP, TLS 1.3, yamux: the default), noise (TCP, Noise, yamux) or quic.
func benchHost(b *testing.B) host.Host {
	b.Helper()
	var opts []libp2p.Option
	if v := os.Getenv("EXCHANGE_YAMUX_KIB"); v != "" { // the initial stream window and the frame size, in KiB
		var win, msg uint32
		if _, err := fmt.Sscanf(v, "%d,%d", &win, &msg); err != nil {
			b.Fatalf("EXCHANGE_YAMUX_KIB=%q: want WINDOW,FRAME", v)
		}
		t := *yamux.DefaultTransport
		t.InitialStreamWindowSize, t.MaxMessageSize = win<<10, msg<<10
		t.MaxStreamWindowSize = max(t.MaxStreamWindowSize, t.InitialStreamWindowSize)
		opts = append(opts, libp2p.Muxer(yamux.ID, &t))
	}
	switch t := os.Getenv("EXCHANGE_TRANSPORT"); t {
	case "", "tls":
		opts = append(opts, libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
	case "noise":
		opts = append(opts, libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.Security(noise.ID, noise.New))
	case "quic":
		opts = append(opts, libp2p.ListenAddrStrings("/ip4/127.0.0.1/udp/0/quic-v1"), libp2p.Transport(libp2pquic.NewTransport))
	default:
		b.Fatalf("EXCHANGE_TRANSPORT=%q: want tls, noise or quic", t)
	}
	h, err := libp2p.New(append(opts, libp2p.DisableRelay(), libp2p.DisableMetrics())...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { h.Close() })
	return h
}

// BenchmarkFetch200MiB: one node fetches a 200 MiB blob from a peer over
// loopback, hashing included (the store's Commit hashes it).
func BenchmarkFetch200MiB(b *testing.B) {
	data := randomBytes(200 << 20)
	d := digestOf(data)
	var o Options // EXCHANGE_CHUNK_KIB: the fetcher's chunk size
	if v, err := strconv.ParseInt(os.Getenv("EXCHANGE_CHUNK_KIB"), 10, 64); err == nil && v > 0 {
		o.ChunkSize = v << 10
	}
	nodes := benchNet(b, 1, Options{})
	seed := nodes[0]
	seed.put(b, data)
	b.SetBytes(int64(len(data)))
	var cpu time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		o.Bootstrap = []peer.AddrInfo{{ID: seed.x.h.ID(), Addrs: seed.x.h.Addrs()}}
		fetcher := benchNet(b, 1, o)[0]
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		if err := seed.x.Provide(ctx, d); err != nil {
			b.Fatal(err)
		}
		fetcher.x.waitRoutable(ctx)
		b.StartTimer()
		c0 := cpuTime()
		blob, err := fetcher.x.Open(ctx, d, int64(len(data)))
		if err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - c0
		b.StopTimer()
		blob.Close()
		cancel()
		fetcher.x.Close()
		fetcher.x.h.Close()
		fetcher.store.Close()
		b.StartTimer()
	}
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
}

// BenchmarkFanout: 1 seed and N fetchers (libp2p hosts in this process)
// fetch a new 50 MiB blob at once; then one plain net/http server serves
// the same N downloads at once (each client hashes what it reads). It
// reports the time until all have verified the blob, both ways, and the
// share of the bytes the seed sent. FANOUT_NODES lists the Ns (default
// 50).
func BenchmarkFanout(b *testing.B) {
	ns := []int{50}
	if s := os.Getenv("FANOUT_NODES"); s != "" {
		ns = nil
		for _, f := range bytes.Fields([]byte(s)) {
			n, err := strconv.Atoi(string(f))
			if err != nil {
				b.Fatal(err)
			}
			ns = append(ns, n)
		}
	}
	size := 50 << 20
	if s := os.Getenv("FANOUT_MIB"); s != "" {
		n, _ := strconv.Atoi(s)
		size = n << 20
	}
	for _, n := range ns {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			for i := range b.N {
				data := randomBytes(size + i)
				p2p, p2pCPU, share := fanoutP2P(b, n, data)
				plain, httpCPU := fanoutHTTP(b, n, data)
				b.ReportMetric(p2pCPU.Seconds(), "p2p-cpu-s")
				b.ReportMetric(httpCPU.Seconds(), "http-cpu-s")
				b.ReportMetric(p2p.Seconds(), "p2p-s")
				b.ReportMetric(plain.Seconds(), "http-s")
				b.ReportMetric(p2p.Seconds()/plain.Seconds(), "p2p/http")
				b.ReportMetric(100*share, "seed-%")
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				b.ReportMetric(float64(ms.Sys>>20), "sys-MiB")
			}
		})
	}
}

func fanoutP2P(b *testing.B, n int, data []byte) (took, cpu time.Duration, share float64) {
	b.StopTimer()
	nodes := benchNet(b, n+1, Options{})
	seed := nodes[0]
	d := seed.put(b, data)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := seed.x.Provide(ctx, d); err != nil {
		b.Fatal(err)
	}
	for _, nd := range nodes[1:] {
		nd.x.waitRoutable(ctx)
	}
	b.StartTimer()
	start, cpu0 := time.Now(), cpuTime()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for _, nd := range nodes[1:] {
		wg.Go(func() {
			blob, err := nd.x.Open(ctx, d, int64(len(data)))
			if err != nil {
				errs <- err
				return
			}
			blob.Close()
		})
	}
	wg.Wait()
	took, cpu = time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	var total, chunks, busy, failed int64
	for _, nd := range nodes {
		st := nd.x.Stats()
		total += st.Served
		chunks += st.Chunks
		busy += st.Busy
		failed += st.Failed
	}
	b.Logf("%d fetchers: %d chunks, %d busy answers, %d failed requests", n, chunks, busy, failed)
	share = float64(seed.x.Stats().Served) / float64(total)
	for _, nd := range nodes {
		nd.x.Close()
		nd.x.h.Close()
		nd.store.Close()
	}
	return took, cpu, share
}

func fanoutHTTP(b *testing.B, n int, data []byte) (took, cpu time.Duration) {
	b.StopTimer()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.ServeContent(w, r, "blob", time.Time{}, bytes.NewReader(data))
	})}
	go srv.Serve(ln)
	defer srv.Close()
	want := sha256.Sum256(data)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	url := "http://" + ln.Addr().String() + "/blob"
	b.StartTimer()
	start, cpu0 := time.Now(), cpuTime()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			resp, err := client.Get(url)
			if err != nil {
				errs <- err
				return
			}
			defer resp.Body.Close()
			h := sha256.New()
			if _, err := io.Copy(h, resp.Body); err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(h.Sum(nil), want[:]) {
				errs <- fmt.Errorf("digest mismatch")
			}
		})
	}
	wg.Wait()
	took, cpu = time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	close(errs)
	for err := range errs {
		b.Fatal(err)
	}
	return took, cpu
}

// cpuTime is the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
