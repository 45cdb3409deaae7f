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
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/host/resource-manager"
	"github.com/libp2p/go-libp2p/p2p/net/connmgr"
	"github.com/pyrsia/pyrsia-build/internal/netns"
	"github.com/pyrsia/pyrsia-build/publish/store"
)

// The fan-out with every host in a process of its own: the test binary,
// started with FANOUT_CHILD set, is one host (TestMain runs it instead of
// the tests). It talks to the benchmark over its standard input and
// output, a line each way. A fetcher (FANOUT_CHILD=p2p or http):
//
//	child: "ready"                 (its host is up, its DHT has a peer)
//	bench: "go"
//	child: "done <cpu-ns> <err>"   (the blob is verified in its store; the CPU
//	                                time it used since "go"; err "-" for none)
//	bench: closes the child's standard input (every fetcher is done)
//	child: "served <bytes> <cpu-ns> <failed> <busy>", exits
//
// and a server (FANOUT_CHILD=seed or httpd), which has the blob
// FANOUT_BLOB (a file) from the start:
//
//	child: "ready <address>"       (a multiaddr with /p2p/, or a URL)
//	bench: "provide", child: "provided <err>"   (the seed only, once the
//	                                fetchers are up: it announces the blob)
//	bench: "go"
//	bench: closes the child's standard input (every fetcher is done)
//	child: "served <bytes> <cpu-ns> <failed> <busy>", exits
//
// In "served", bytes is the blob bytes it sent, cpu-ns the CPU time it
// used since "go", failed and busy its chunk requests that failed or were
// told to come back (Exchange.Stats; 0 for HTTP).
//
// FANOUT_CHILD=p2p: an Exchange fetching FANOUT_DIGEST (FANOUT_SIZE bytes)
// through the seed FANOUT_BOOT; FANOUT_CHILD=http: a GET of FANOUT_URL,
// hashed and checked against FANOUT_DIGEST. Hosts listen on FANOUT_IP.

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
	ip := os.Getenv("FANOUT_IP")
	if ip == "" {
		ip = "127.0.0.1"
	}
	await := func(what string) error {
		if !in.Scan() || in.Text() != what {
			return fmt.Errorf("no %q from the benchmark", what)
		}
		return nil
	}
	errText := func(err error) string {
		if err == nil {
			return "-"
		}
		return strings.ReplaceAll(err.Error(), "\n", " ")
	}
	var cpu0 time.Duration
	served := func(stats func() (int64, Stats)) {
		for in.Scan() { // serve the others until all are done
		}
		n, st := stats()
		fmt.Printf("served %d %d %d %d\n", n, cpuTime()-cpu0, st.Failed, st.Busy)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	switch mode {
	case "http":
		fmt.Println("ready")
		if err := await("go"); err != nil {
			return err
		}
		cpu0 = cpuTime()
		err := httpFetch(os.Getenv("FANOUT_URL"), digest)
		fmt.Printf("done %d %s\n", cpuTime()-cpu0, errText(err))
		served(func() (int64, Stats) { return 0, Stats{} })
		return nil
	case "httpd":
		return httpdChild(in, ip, await, &cpu0, served)
	case "p2p", "seed":
	default:
		return fmt.Errorf("FANOUT_CHILD=%q: want p2p, http, seed or httpd", mode)
	}
	size, err := strconv.ParseInt(os.Getenv("FANOUT_SIZE"), 10, 64)
	if err != nil {
		return fmt.Errorf("FANOUT_SIZE: %w", err)
	}
	o := Options{Namespace: "bench", Server: true, Reprovide: -1,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))}
	if err := childOptions(&o); err != nil {
		return err
	}
	// The host, DHT and store are not closed: the process ends (a host's
	// Close has hung here, in autonat, with 50 processes on two cores).
	h, err := libp2p.New(append(hostLimits(), libp2p.ListenAddrStrings("/ip4/"+ip+"/tcp/0"), libp2p.DisableRelay(), libp2p.DisableMetrics())...)
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
	o.Host, o.Store = h, st
	if mode == "seed" {
		f, err := os.Open(os.Getenv("FANOUT_BLOB"))
		if err != nil {
			return err
		}
		err = st.Put(ctx, digest, size, f)
		f.Close()
		if err != nil {
			return err
		}
		x, err := New(ctx, o)
		if err != nil {
			return err
		}
		fmt.Printf("ready %s/p2p/%s\n", h.Addrs()[0], h.ID())
		if err := await("provide"); err != nil {
			return err
		}
		fmt.Println("provided", errText(x.Provide(ctx, digest)))
		if err := await("go"); err != nil {
			return err
		}
		cpu0 = cpuTime()
		served(func() (int64, Stats) { return x.Stats().Served, x.Stats() })
		return nil
	}
	boot, err := peer.AddrInfoFromString(os.Getenv("FANOUT_BOOT"))
	if err != nil {
		return fmt.Errorf("FANOUT_BOOT: %w", err)
	}
	o.Bootstrap = []peer.AddrInfo{*boot}
	x, err := New(ctx, o)
	if err != nil {
		return err
	}
	// Until its DHT has a peer: the Exchange rejoins through the seed
	// while it has none (with 200 fetchers starting at once on two cores,
	// 92 had no DHT peer after 10 s, and before the Exchange rejoined
	// their fetches found no provider: "0 asked").
	for start := time.Now(); x.dht.RoutingTable().Size() == 0; time.Sleep(100 * time.Millisecond) {
		if time.Since(start) > 5*time.Minute {
			return fmt.Errorf("no DHT peer after 5 minutes of joining through %s (%d attempts to rejoin)", boot, x.rejoins.Load())
		}
	}
	fmt.Println("ready")
	if err := await("go"); err != nil {
		return err
	}
	cpu0 = cpuTime()
	blob, err := x.Open(ctx, digest, size)
	if err == nil {
		blob.Close()
	}
	fmt.Printf("done %d %s\n", cpuTime()-cpu0, errText(err))
	served(func() (int64, Stats) { return x.Stats().Served, x.Stats() })
	return nil
}

// hostLimits are the libp2p options of a child's host: FANOUT_LIMITS=libp2p
// leaves libp2p's own connection manager (it trims a host's connections
// from 192 down to 160) and resource manager (its limits scale with the
// machine's memory: 252 inbound connections at once, 79 of them not yet
// past their handshake, on this machine's 24 GiB); unset, both are lifted,
// as the seed is every fetcher's first peer.
func hostLimits() []libp2p.Option {
	if os.Getenv("FANOUT_LIMITS") == "libp2p" {
		return nil
	}
	cm, err := connmgr.NewConnManager(1000, 2000)
	if err != nil {
		panic(err) // only for bad watermarks
	}
	rm, err := rcmgr.NewResourceManager(rcmgr.NewFixedLimiter(rcmgr.InfiniteLimits))
	if err != nil {
		panic(err)
	}
	return []libp2p.Option{libp2p.ConnectionManager(cm), libp2p.ResourceManager(rm)}
}

// childOptions sets the exchange options the benchmark passes on:
// FANOUT_SHARE_MIB (ShareMemory; 0: none), FANOUT_UPLOADS (MaxUploads),
// FANOUT_PARALLEL (Parallel), FANOUT_PEER_TIMEOUT (PeerTimeout, a
// duration).
func childOptions(o *Options) error {
	for _, v := range []struct {
		env string
		set func(n int64)
	}{
		{"FANOUT_SHARE_MIB", func(n int64) {
			o.ShareMemory = n << 20
			if n == 0 {
				o.ShareMemory = -1
			}
		}},
		{"FANOUT_UPLOADS", func(n int64) { o.MaxUploads = int(n) }},
		{"FANOUT_PARALLEL", func(n int64) { o.Parallel = int(n) }},
	} {
		if s := os.Getenv(v.env); s != "" {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 0 {
				return fmt.Errorf("%s=%q: want a number, 0 or more", v.env, s)
			}
			v.set(n)
		}
	}
	if s := os.Getenv("FANOUT_PEER_TIMEOUT"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return fmt.Errorf("FANOUT_PEER_TIMEOUT=%q: want a duration over 0 (10s, say)", s)
		}
		o.PeerTimeout = d
	}
	return nil
}

// httpdChild is the plain server: one net/http server sending the blob's
// file with sendfile.
func httpdChild(in *bufio.Scanner, ip string, await func(string) error, cpu0 *time.Duration, served func(func() (int64, Stats))) error {
	path := os.Getenv("FANOUT_BLOB")
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		return err
	}
	var sent atomic.Int64
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, err := os.Open(path)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		defer f.Close()
		http.ServeContent(w, r, "", time.Time{}, f) // *os.File: sendfile
		sent.Add(fi.Size())
	})}
	go srv.Serve(ln)
	fmt.Printf("ready http://%s/blob\n", ln.Addr())
	if err := await("go"); err != nil {
		return err
	}
	*cpu0 = cpuTime()
	served(func() (int64, Stats) { return sent.Load(), Stats{} })
	return nil
}

// httpFetch GETs url and checks that the body hashes to digest. A
// download cut off (in one 200-host run on shaped links, 18 of 200 were
// reset by the server's side, cause not found; none in the next run) goes
// on from where it stopped (a Range request, as a downloader that resumes
// would), up to 5 times; each is told on standard error.
func httpFetch(url, digest string) error {
	h := sha256.New()
	var got int64
	start := time.Now()
	for try := 0; ; try++ {
		err := httpRead(url, got, h, &got)
		if err == nil {
			break
		}
		fmt.Fprintf(os.Stderr, "fan-out http client: after %.0f s, %d bytes: %v\n", time.Since(start).Seconds(), got, err)
		if try == 5 {
			return err
		}
	}
	if sum := "sha256:" + hex.EncodeToString(h.Sum(nil)); sum != digest {
		return fmt.Errorf("GET %s: %s, want %s", url, sum, digest)
	}
	return nil
}

// httpRead GETs url from offset from on and writes the body to w, adding
// what it read to *n.
func httpRead(url string, from int64, w io.Writer, n *int64) error {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	want := http.StatusOK
	if from > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", from))
		want = http.StatusPartialContent
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("GET %s from %d: %s", url, from, resp.Status)
	}
	m, err := io.CopyBuffer(w, resp.Body, make([]byte, 1<<20))
	*n += m
	return err
}

// fanoutHosts is where the fan-out's processes run: all on this machine's
// loopback, or each on a host of its own in a netns.Net, with its own link
// (FANOUT_UPLINK_MBIT, FANOUT_NETNS, FANOUT_DELAY_MS; see
// BenchmarkFanoutProc). Host 0 is the server (the seed or the plain HTTP
// server), hosts 1 to N the fetchers.
type fanoutHosts struct {
	net   *netns.Net // nil: loopback
	mbit  float64    // each host's uplink; 0: not shaped
	delay time.Duration
}

// newFanoutHosts makes the hosts for a server and n fetchers, as the
// environment says: unset, loopback (no root needed).
func newFanoutHosts(b *testing.B, n int) *fanoutHosts {
	b.Helper()
	fh := &fanoutHosts{}
	if s := os.Getenv("FANOUT_UPLINK_MBIT"); s != "" {
		r, err := strconv.ParseFloat(s, 64)
		if err != nil || r < 0 {
			b.Fatalf("FANOUT_UPLINK_MBIT=%q: want a rate in Mbit/s (100, say; 0: not shaped)", s)
		}
		fh.mbit = r
	}
	if s := os.Getenv("FANOUT_DELAY_MS"); s != "" {
		ms, err := strconv.ParseFloat(s, 64)
		if err != nil || ms < 0 {
			b.Fatalf("FANOUT_DELAY_MS=%q: want milliseconds, 0 or more", s)
		}
		fh.delay = time.Duration(ms * float64(time.Millisecond))
	}
	if fh.mbit == 0 && fh.delay == 0 && os.Getenv("FANOUT_NETNS") == "" {
		return fh
	}
	nt, err := netns.New(netns.Options{Hosts: n + 1, UplinkMbit: fh.mbit, Delay: fh.delay, Prefix: "pbfanout"})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := nt.Close(); err != nil {
			b.Error(err)
		}
	})
	fh.net = nt
	return fh
}

func (fh *fanoutHosts) ip(i int) string {
	if fh.net == nil {
		return "127.0.0.1"
	}
	return fh.net.Hosts()[i].IP.String()
}

// floor is the least time size bytes take through one uplink (0 if not
// shaped).
func (fh *fanoutHosts) floor(size int64) time.Duration {
	if fh.mbit == 0 {
		return 0
	}
	return time.Duration(float64(size*8) / (fh.mbit * 1e6) * float64(time.Second))
}

// child is one host's process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Scanner
	done  bool // said done (under race's lock)
}

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
		return nil, fmt.Errorf("a fan-out process ended without %q (its errors are above)", prefix)
	}
	f := strings.SplitN(c.out.Text(), " ", 3)
	if f[0] != prefix || (prefix != "ready" && len(f) < 2) {
		return nil, fmt.Errorf("a fan-out process said %q, want %q", c.out.Text(), prefix)
	}
	return f, nil
}

// start starts the process of host i in mode with env. It is killed when
// the benchmark's process ends (Pdeathsig), so a run killed at its
// timeout leaves no processes (and netns.New sweeps its namespaces).
func start(b *testing.B, fh *fanoutHosts, i int, mode string, env ...string) *child {
	b.Helper()
	self, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command(self, "-test.run=^$")
	if fh.net != nil {
		cmd = fh.net.Command(i, self, "-test.run=^$")
	}
	cmd.Env = append(os.Environ(), "FANOUT_CHILD="+mode, "FANOUT_IP="+fh.ip(i))
	if mode == "p2p" || mode == "http" {
		cmd.Env = append(cmd.Env, "GOMAXPROCS=1")
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
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
	return c
}

// spawn starts n fetchers in mode with env on hosts 1 to n, and waits
// until all are ready.
func spawn(b *testing.B, fh *fanoutHosts, n int, mode string, env ...string) []*child {
	b.Helper()
	cs := make([]*child, n)
	// In waves of 25: 200 fetchers dialing the seed at once, on two cores,
	// timed out in its TLS handshakes.
	const wave = 25
	for w := 0; w < n; w += wave {
		for i := w; i < min(n, w+wave); i++ {
			cs[i] = start(b, fh, i+1, mode, env...)
		}
		for _, c := range cs[w:min(n, w+wave)] {
			if _, err := c.line("ready"); err != nil {
				b.Fatal(err)
			}
		}
	}
	return cs
}

// raceResult is what one race measured.
type raceResult struct {
	took    time.Duration // until every fetcher had the blob verified
	cpu     time.Duration // of all processes, since go
	srvCPU  time.Duration // of the server, since go
	sent    int64         // blob bytes sent by the server
	total   int64         // blob bytes sent by all
	failed  int64         // chunk requests that failed (timed out, say)
	busy    int64         // chunk requests told to come back
	memPeak int64         // the most private resident memory of all processes at once
}

// rss is the private resident memory of process pid in bytes (resident
// but not shared with files, as the test binary's own code is between all
// the processes), 0 if it is gone.
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/statm", pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return 0
	}
	resident, _ := strconv.ParseInt(f[1], 10, 64)
	shared, _ := strconv.ParseInt(f[2], 10, 64)
	return (resident - shared) * int64(os.Getpagesize())
}

// race says go to the server srv and every fetcher in cs and measures
// until all fetchers are done, giving up after timeout.
func race(b *testing.B, srv *child, cs []*child, timeout time.Duration) raceResult {
	b.Helper()
	all := append([]*child{srv}, cs...)
	var res raceResult
	stop := make(chan struct{})
	sampled := make(chan int64)
	go func() { // the memory of all processes, twice a second
		var peak int64
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			var sum int64
			for _, c := range all {
				sum += rss(c.cmd.Process.Pid)
			}
			peak = max(peak, sum)
			select {
			case <-stop:
				sampled <- peak
				return
			case <-t.C:
			}
		}
	}()
	cpu0 := cpuTime()
	start := time.Now()
	fmt.Fprintln(srv.stdin, "go")
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
			if len(f) > 2 && f[2] != "-" {
				errs = append(errs, f[2])
			}
		})
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(timeout):
		mu.Lock()
		defer mu.Unlock()
		b.Fatalf("after %v, %d of %d fetchers are not done (%d failed)", timeout, len(cs)-doneCount(cs), len(cs), len(errs))
	}
	res.took = time.Since(start)
	close(stop)
	res.memPeak = <-sampled
	if len(errs) > 0 {
		b.Fatalf("%d fetches failed; the first: %s", len(errs), errs[0])
	}
	for _, c := range all {
		c.stdin.Close()
	}
	for i, c := range all {
		f, err := c.line("served")
		if err != nil {
			b.Fatal(err)
		}
		var n, cpu, failed, busy int64
		if _, err := fmt.Sscan(strings.Join(f[1:], " "), &n, &cpu, &failed, &busy); err != nil {
			b.Fatalf("a fan-out process said %q: %v", c.out.Text(), err)
		}
		if i == 0 {
			res.sent, res.srvCPU = n, time.Duration(cpu)
		}
		res.total += n
		res.cpu += time.Duration(cpu)
		res.failed += failed
		res.busy += busy
		c.cmd.Wait()
	}
	res.cpu += cpuTime() - cpu0
	return res
}

// loadavg is the machine's load average over the last minute.
func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// BenchmarkFanoutProc: 1 seed and N fetchers, each a process and libp2p
// host of its own, fetch a new blob at once; then one plain net/http
// server (the blob in a file, sendfile) serves the same N downloads at
// once to N client processes that hash what they read. FANOUT_NODES lists
// the Ns (default 50), FANOUT_MIB the blob size (default 50).
//
// By default every process is on this machine's loopback, where nothing
// bounds a link and the run is bound by CPU. With FANOUT_UPLINK_MBIT (a
// rate in Mbit/s; needs root) every host, the seed, each fetcher, the
// plain server and each client, is a network namespace of its own whose
// egress is shaped to that rate, as if each had its own uplink on one
// switch (internal/netns); FANOUT_DELAY_MS adds a delay to each host's
// egress (where the kernel has netem), FANOUT_NETNS=1 the namespaces
// without shaping. The p2p run and the HTTP run use the same network.
// FANOUT_SHARE_MIB, FANOUT_UPLOADS, FANOUT_PARALLEL and FANOUT_PEER_TIMEOUT
// set the exchanges' options (childOptions), FANOUT_LIMITS=libp2p leaves
// the hosts libp2p's own connection and resource limits (hostLimits);
// GOGC and GOMEMLIMIT pass to every process. FANOUT_HTTP=0 skips the plain
// HTTP run.
//
// Metrics: p2p-s and http-s the time until all fetchers have the blob
// verified, p2p/http their ratio, seed-% the seed's share of the blob bytes
// sent, p2p-cpu-s and http-cpu-s the CPU time of all processes, p2p-MiB
// and http-MiB the most private memory all processes had resident at once
// (sampled twice a second; the binary's shared code not counted); when
// shaped, p2p-floor-s the time of the blob through one uplink (no fan-out
// can be faster) and http-floor-s N blobs through one (the plain server
// cannot be faster).
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
				fh := newFanoutHosts(b, n)
				data := randomBytes(size + i)
				d := digestOf(data)
				dir := b.TempDir()
				if base := os.Getenv("EXCHANGE_STORE_DIR"); base != "" {
					var err error
					if dir, err = os.MkdirTemp(base, "fanout-"); err != nil {
						b.Fatal(err)
					}
					b.Cleanup(func() { os.RemoveAll(dir) })
				}
				path := filepath.Join(dir, "blob")
				if err := os.WriteFile(path, data, 0o644); err != nil {
					b.Fatal(err)
				}
				data = nil
				common := []string{"FANOUT_DIGEST=" + d, fmt.Sprint("FANOUT_SIZE=", size), "FANOUT_STORE_DIR=" + dir, "FANOUT_BLOB=" + path}
				timeout := max(5*time.Minute, 3*fh.floor(int64(n)*int64(size)))

				load0 := loadavg()
				seed := start(b, fh, 0, "seed", common...)
				f, err := seed.line("ready")
				if err != nil {
					b.Fatal(err)
				}
				cs := spawn(b, fh, n, "p2p", append(common, "FANOUT_BOOT="+f[1])...)
				fmt.Fprintln(seed.stdin, "provide")
				if f, err := seed.line("provided"); err != nil || f[1] != "-" {
					b.Fatalf("the seed's Provide: %v %q", err, f)
				}
				b.StartTimer()
				p2p := race(b, seed, cs, timeout)
				b.StopTimer()
				load1 := loadavg()
				// Now, not only at the end: a long plain run can fail.
				fmt.Fprintf(os.Stderr, "fan-out %d: p2p %.1f s, seed sent %.1f %%, CPU %.1f s (seed %.1f s), %d MiB, %d chunk requests failed, %d told to come back, load %s then %s\n",
					n, p2p.took.Seconds(), 100*float64(p2p.sent)/float64(p2p.total), p2p.cpu.Seconds(), p2p.srvCPU.Seconds(), p2p.memPeak>>20, p2p.failed, p2p.busy, load0, load1)

				if os.Getenv("FANOUT_HTTP") == "0" { // the p2p race alone
					b.Logf("load average %s, %s (start, after p2p); p2p: %d chunk requests failed, %d told to come back; CPU of the seed %.1f s",
						load0, load1, p2p.failed, p2p.busy, p2p.srvCPU.Seconds())
					b.ReportMetric(p2p.cpu.Seconds(), "p2p-cpu-s")
					b.ReportMetric(p2p.took.Seconds(), "p2p-s")
					b.ReportMetric(100*float64(p2p.sent)/float64(p2p.total), "seed-%")
					b.ReportMetric(float64(p2p.memPeak>>20), "p2p-MiB")
					b.StartTimer()
					continue
				}
				srv := start(b, fh, 0, "httpd", common...)
				f, err = srv.line("ready")
				if err != nil {
					b.Fatal(err)
				}
				cs = spawn(b, fh, n, "http", append(common, "FANOUT_URL="+f[1])...)
				b.StartTimer()
				plain := race(b, srv, cs, timeout)
				b.StopTimer()
				b.Logf("load average %s, %s, %s (start, after p2p, after http); p2p: %d chunk requests failed, %d told to come back; CPU of the seed %.1f s, of the plain server %.1f s",
					load0, load1, loadavg(), p2p.failed, p2p.busy, p2p.srvCPU.Seconds(), plain.srvCPU.Seconds())

				b.ReportMetric(p2p.cpu.Seconds(), "p2p-cpu-s")
				b.ReportMetric(plain.cpu.Seconds(), "http-cpu-s")
				b.ReportMetric(p2p.took.Seconds(), "p2p-s")
				b.ReportMetric(plain.took.Seconds(), "http-s")
				b.ReportMetric(p2p.took.Seconds()/plain.took.Seconds(), "p2p/http")
				b.ReportMetric(100*float64(p2p.sent)/float64(p2p.total), "seed-%")
				b.ReportMetric(float64(p2p.memPeak>>20), "p2p-MiB")
				b.ReportMetric(float64(plain.memPeak>>20), "http-MiB")
				if fh.mbit > 0 {
					b.ReportMetric(fh.floor(int64(size)).Seconds(), "p2p-floor-s")
					b.ReportMetric(fh.floor(int64(n)*int64(size)).Seconds(), "http-floor-s")
				}
				b.StartTimer()
			}
		})
	}
}
