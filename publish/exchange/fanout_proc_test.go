package exchange

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/multiformats/go-multiaddr"
	"github.com/pyrsia/pyrsia-build/publish/store"
)

// The fan-out with fetchers in processes of their own: the test binary,
// started with FANOUT_CHILD set, is one fetcher (TestMain runs it instead
// of the tests). It talks to the benchmark over its standard input and
// output, a line each way:
//
//	child: "ready"                 (its host is up, its DHT has a peer)
//	bench: "go"
//	child: "done <cpu-ns> <err>"   (the blob is verified in its store; the CPU
//	                                time it used since "go"; err "-" for none)
//	bench: closes the child's standard input (every fetcher is done)
//	child: "served <bytes>"        (blob bytes it sent to other fetchers), exits
//
// FANOUT_CHILD=p2p: an Exchange fetching FANOUT_DIGEST (FANOUT_SIZE bytes)
// through the seed FANOUT_BOOT (a multiaddr with /p2p/); FANOUT_CHILD=http:
// a GET of FANOUT_URL, hashed and checked against FANOUT_DIGEST.

func TestMain(m *testing.M) {
	if mode := os.Getenv("FANOUT_CHILD"); mode != "" {
		if err := fanoutChild(mode); err != nil {
			fmt.Fprintln(os.Stderr, "fan-out child:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func fanoutChild(mode string) error {
	in := bufio.NewScanner(os.Stdin)
	digest := os.Getenv("FANOUT_DIGEST")
	wait := func() error {
		fmt.Println("ready")
		if !in.Scan() || in.Text() != "go" {
			return fmt.Errorf("no go from the benchmark")
		}
		return nil
	}
	done := func(cpu0 time.Duration, err error) {
		msg := "-"
		if err != nil {
			msg = strings.ReplaceAll(err.Error(), "\n", " ")
		}
		fmt.Printf("done %d %s\n", cpuTime()-cpu0, msg)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if mode == "http" {
		if err := wait(); err != nil {
			return err
		}
		cpu0 := cpuTime()
		done(cpu0, httpFetch(os.Getenv("FANOUT_URL"), digest))
		for in.Scan() {
		}
		fmt.Println("served 0")
		return nil
	}
	if mode != "p2p" {
		return fmt.Errorf("FANOUT_CHILD=%q: want p2p or http", mode)
	}
	size, err := strconv.ParseInt(os.Getenv("FANOUT_SIZE"), 10, 64)
	if err != nil {
		return fmt.Errorf("FANOUT_SIZE: %w", err)
	}
	boot, err := peer.AddrInfoFromString(os.Getenv("FANOUT_BOOT"))
	if err != nil {
		return fmt.Errorf("FANOUT_BOOT: %w", err)
	}
	// The host, DHT and store are not closed: the process ends (a host's
	// Close has hung here, in autonat, with 50 processes on two cores).
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(os.Getenv("FANOUT_STORE_DIR"), "fanout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	st, err := store.Open(dir, store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	quiet := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	x, err := New(ctx, Options{Host: h, Store: st, Namespace: "bench", Server: true, Bootstrap: []peer.AddrInfo{*boot}, Logger: quiet, Reprovide: -1})
	if err != nil {
		return err
	}
	x.waitRoutable(ctx)
	if err := wait(); err != nil {
		return err
	}
	cpu0 := cpuTime()
	blob, err := x.Open(ctx, digest, size)
	if err == nil {
		blob.Close()
	}
	done(cpu0, err)
	for in.Scan() { // serve the others until all are done
	}
	fmt.Printf("served %d\n", x.Stats().Served)
	return nil
}

// httpFetch GETs url and checks that the body hashes to digest.
func httpFetch(url, digest string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, resp.Body, make([]byte, 1<<20)); err != nil {
		return err
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != digest {
		return fmt.Errorf("GET %s: %s, want %s", url, got, digest)
	}
	return nil
}

// child is one fetcher process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
	done  bool // said done (under race's lock)
}

// fanoutTimeout bounds the wait for all fetchers of one race.
const fanoutTimeout = 5 * time.Minute

func doneCount(cs []*child) int {
	n := 0
	for _, c := range cs {
		if c.done {
			n++
		}
	}
	return n
}

// line reads the child's next line, which must start with prefix.
func (c *child) line(prefix string) ([]string, error) {
	if !c.out.Scan() {
		return nil, fmt.Errorf("a fetcher process ended without %q (its errors are above)", prefix)
	}
	f := strings.SplitN(c.out.Text(), " ", 3)
	if f[0] != prefix || (prefix != "ready" && len(f) < 2) {
		return nil, fmt.Errorf("a fetcher process said %q, want %q", c.out.Text(), prefix)
	}
	return f, nil
}

// spawn starts n fetcher processes in mode with env, and waits until all
// are ready.
func spawn(b *testing.B, n int, mode string, env ...string) []*child {
	b.Helper()
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cs := make([]*child, n)
	for i := range cs {
		cmd := exec.Command(self, "-test.run=^$")
		cmd.Env = append(os.Environ(), append([]string{"FANOUT_CHILD=" + mode, "GOMAXPROCS=1"}, env...)...)
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			b.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			b.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			b.Fatal(err)
		}
		c := &child{cmd: cmd, stdin: stdin, out: bufio.NewScanner(stdout)}
		b.Cleanup(func() {
			c.stdin.Close()
			c.cmd.Process.Kill()
			c.cmd.Wait()
		})
		cs[i] = c
	}
	for _, c := range cs {
		if _, err := c.line("ready"); err != nil {
			b.Fatal(err)
		}
	}
	return cs
}

// race says go to every child and returns the time until all are done,
// their CPU time since go, and the bytes each served.
func race(b *testing.B, cs []*child) (took, cpu time.Duration, served []int64) {
	b.Helper()
	start := time.Now()
	for _, c := range cs {
		fmt.Fprintln(c.stdin, "go")
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	var errs []string
	for _, c := range cs {
		wg.Go(func() {
			f, err := c.line("done")
			mu.Lock()
			defer mu.Unlock()
			c.done = true
			if err != nil {
				errs = append(errs, err.Error())
				return
			}
			ns, _ := strconv.ParseInt(f[1], 10, 64)
			cpu += time.Duration(ns)
			if len(f) > 2 && f[2] != "-" {
				errs = append(errs, f[2])
			}
		})
	}
	all := make(chan struct{})
	go func() { wg.Wait(); close(all) }()
	select {
	case <-all:
	case <-time.After(fanoutTimeout):
		mu.Lock()
		defer mu.Unlock()
		b.Fatalf("after %v, %d of %d fetchers are not done (%d failed)", fanoutTimeout, len(cs)-doneCount(cs), len(cs), len(errs))
	}
	took = time.Since(start)
	if len(errs) > 0 {
		b.Fatalf("%d fetches failed; the first: %s", len(errs), errs[0])
	}
	for _, c := range cs {
		c.stdin.Close()
	}
	for _, c := range cs {
		f, err := c.line("served")
		if err != nil {
			b.Fatal(err)
		}
		n, _ := strconv.ParseInt(f[1], 10, 64)
		served = append(served, n)
		c.cmd.Wait()
	}
	return took, cpu, served
}

// BenchmarkFanoutProc is BenchmarkFanout with each fetcher (and each plain
// HTTP client) a process of its own, one libp2p host each: 1 seed (in
// the benchmark's process) and N fetchers fetch a new blob at once; then
// one plain net/http server (the blob in a file, sendfile) serves the
// same N downloads at once to N client processes that hash what they
// read. FANOUT_NODES lists the Ns (default 50), FANOUT_MIB the blob size
// (default 50).
func BenchmarkFanoutProc(b *testing.B) {
	ns := []int{50}
	if s := os.Getenv("FANOUT_NODES"); s != "" {
		ns = nil
		for _, f := range strings.Fields(s) {
			n, err := strconv.Atoi(f)
			if err != nil {
				b.Fatal(err)
			}
			ns = append(ns, n)
		}
	}
	size := 50 << 20
	if s := os.Getenv("FANOUT_MIB"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		size = n << 20
	}
	for _, n := range ns {
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			for i := range b.N {
				b.StopTimer()
				data := randomBytes(size + i)
				d := digestOf(data)
				seed := benchNet(b, 1, Options{Reprovide: -1})[0]
				seed.put(b, data)
				addr := seed.x.h.Addrs()[0].Encapsulate(multiaddr.StringCast("/p2p/" + seed.x.h.ID().String()))
				base := os.Getenv("EXCHANGE_STORE_DIR")
				cs := spawn(b, n, "p2p", "FANOUT_BOOT="+addr.String(), "FANOUT_DIGEST="+d, fmt.Sprint("FANOUT_SIZE=", size), "FANOUT_STORE_DIR="+base)
				ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
				if err := seed.x.Provide(ctx, d); err != nil {
					b.Fatal(err)
				}
				cancel()
				b.StartTimer()
				cpu0 := cpuTime()
				p2p, p2pCPU, served := race(b, cs)
				p2pCPU += cpuTime() - cpu0
				b.StopTimer()
				seedSent := seed.x.Stats().Served
				total := seedSent
				for _, s := range served {
					total += s
				}
				seed.x.Close()
				seed.x.h.Close()

				plain, httpCPU := fanoutHTTPProc(b, n, data, d)
				b.ReportMetric(p2pCPU.Seconds(), "p2p-cpu-s")
				b.ReportMetric(httpCPU.Seconds(), "http-cpu-s")
				b.ReportMetric(p2p.Seconds(), "p2p-s")
				b.ReportMetric(plain.Seconds(), "http-s")
				b.ReportMetric(p2p.Seconds()/plain.Seconds(), "p2p/http")
				b.ReportMetric(100*float64(seedSent)/float64(total), "seed-%")
				b.StartTimer()
			}
		})
	}
}

// fanoutHTTPProc serves data from a file with one net/http server to n
// client processes at once.
func fanoutHTTPProc(b *testing.B, n int, data []byte, d string) (took, cpu time.Duration) {
	b.Helper()
	dir := b.TempDir()
	if base := os.Getenv("EXCHANGE_STORE_DIR"); base != "" {
		var err error
		if dir, err = os.MkdirTemp(base, "http-"); err != nil {
			b.Fatal(err)
		}
		defer os.RemoveAll(dir)
	}
	path := filepath.Join(dir, "blob")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer f.Close()
		http.ServeContent(w, r, "", time.Time{}, f) // *os.File: sendfile
	})}
	go srv.Serve(ln)
	defer srv.Close()
	cs := spawn(b, n, "http", "FANOUT_URL=http://"+ln.Addr().String()+"/blob", "FANOUT_DIGEST="+d)
	b.StartTimer()
	cpu0 := cpuTime()
	took, cpu, _ = race(b, cs)
	cpu += cpuTime() - cpu0
	b.StopTimer()
	return took, cpu
}
