package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/builder"
	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/exchange"
	"github.com/pyrsia/pyrsia-build/publish/logservice"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/pyrsia/pyrsia-build/publish/tlog"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	"github.com/pyrsia/pyrsia-build/quorum"
	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
)

// BenchmarkCatchUp measures a wiped node's catch-up from a peer's log of
// PYRSIA_BENCH_ENTRIES entries (default 10,000; the log is built with
// AppendBatch, not through Raft) over libp2p: the peer's
// final checkpoint, every entry bundle proven against it, every entry's
// quorum re-checked against the policy (2 of 3 attestations), appended to
// a fresh log. Building the peer's log is not measured.
//
// PYRSIA_BENCH_CATCHUP_DIR, when set, keeps the peer's log (and the three
// nodes' keys) in DIR/entries-N: a run that finds one complete there
// reopens it instead of building it again (building 100,000 entries, two
// attestations each, takes minutes of CPU).
//
//	PYRSIA_BENCH_ENTRIES=100000 PYRSIA_BENCH_CATCHUP_DIR=/var/tmp/catchup go test ./node -run '^$' -bench BenchmarkCatchUp -benchtime 1x
func BenchmarkCatchUp(b *testing.B) {
	entries := 10_000
	if s := os.Getenv("PYRSIA_BENCH_ENTRIES"); s != "" {
		var err error
		if entries, err = strconv.Atoi(s); err != nil || entries <= 0 {
			b.Fatalf("PYRSIA_BENCH_ENTRIES=%q is not a positive number", s)
		}
	}
	cp := newCatchupPeer(b, entries)
	ctx := context.Background()
	// append=batch is the catch-up as the node runs it; append=one hides
	// the log's AppendBatch, for one fsync per entry (the catch-up before
	// batching), on the same peer's log at the same load.
	for _, mode := range []string{"batch", "one"} {
		b.Run("append="+mode, func(b *testing.B) {
			var cpu time.Duration
			for i := range b.N {
				b.StopTimer()
				l := cp.wiped(b, fmt.Sprintf("wiped-%s-%d", mode, i))
				pe := cp.entries(l)
				var log quorum.Applier = l
				if mode == "one" {
					log = oneByOne{l}
				}
				c0 := processCPU()
				b.StartTimer()
				if err := pe.catchup().CatchUpInputs(ctx, log, 0, uint64(entries), map[string]uint64{}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				cpu += processCPU() - c0
				if l.Size() != uint64(entries) {
					b.Fatalf("caught up to %d entries, want %d", l.Size(), entries)
				}
				l.Close()
				b.StartTimer()
			}
			b.ReportMetric(float64(entries)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
			// The process's CPU (user and system) in the catch-up, both
			// hosts' (the serving peer's too): the load does not inflate it
			// as it does the wall time.
			b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
		})
	}
}

// processCPU is the process's user and system CPU time so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// oneByOne is a log that appends one entry at a time (no AppendBatch).
type oneByOne struct{ l *tlog.Log }

func (o oneByOne) Size() uint64 { return o.l.Size() }
func (o oneByOne) Append(ctx context.Context, e []byte) (uint64, error) {
	return o.l.Append(ctx, e)
}

// catchupPeer is node-a's log of entries attested by node-a and node-b,
// cosigned by all three, served over libp2p to node-c's host (dst).
type catchupPeer struct {
	root     string
	p        *policy.Policy
	keys     []*Keys
	trust    *policy.Trust
	chain    *policy.Chain
	network  *quorum.Network
	svc      *logservice.Service
	src, dst host.Host
}

func newCatchupPeer(tb testing.TB, entries int) *catchupPeer {
	ctx := context.Background()
	root := tb.TempDir()
	wipedRoot := root // the wiped node's logs: never kept
	built := false
	if d := os.Getenv("PYRSIA_BENCH_CATCHUP_DIR"); d != "" {
		root = filepath.Join(d, fmt.Sprintf("entries-%d", entries))
		if m, err := os.ReadFile(filepath.Join(root, "built")); err == nil && string(m) == strconv.Itoa(entries) {
			built = true
		} else if err := os.RemoveAll(root); err != nil {
			tb.Fatal(err)
		}
	}
	p := &policy.Policy{Version: policy.Version, Name: testNetwork}
	var keys []*Keys
	for i := range 3 {
		name := fmt.Sprintf("node-%c", 'a'+i)
		var k *Keys
		var err error
		if built {
			k, err = LoadKeys(filepath.Join(root, name), nil)
		} else {
			k, err = InitKeys(filepath.Join(root, name), name, nil)
		}
		if err != nil {
			tb.Fatal(err)
		}
		keys = append(keys, k)
		pn := k.PolicyNode()
		p.Nodes = append(p.Nodes, policy.Node{Name: pn.Name, CosignKey: pn.CosignKey, PeerID: pn.PeerID, NoteKey: pn.NoteKey})
	}
	trust, err := p.Trust()
	if err != nil {
		tb.Fatal(err)
	}
	network, err := quorum.NetworkFromPolicy(p)
	if err != nil {
		tb.Fatal(err)
	}

	// node-a's log: entries attested by node-a and node-b, cosigned by all.
	var cosigners []logservice.Cosigner
	for _, k := range keys {
		w, err := witness.NewCosigner(witness.CosignerOptions{Signer: k.Cosigner, Origin: p.Name, LogVerifier: mustLogVerifier(keys[0].NoteKey),
			StateDir: filepath.Join(root, k.Name, "cosigner")})
		if err != nil {
			tb.Fatal(err)
		}
		cosigners = append(cosigners, w)
	}
	svc, err := logservice.Open(ctx, logservice.Options{
		Log:       tlog.Options{Dir: filepath.Join(root, "node-a", "log"), Origin: p.Name, Signer: keys[0].LogSigner},
		Cosigners: cosigners,
		Final: func(n []byte) ([]string, error) {
			_, names, err := trust.VerifyCheckpoint(n)
			return names, err
		},
		RetryInterval: 50 * time.Millisecond,
	})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { svc.Close() })
	sctx, stop := context.WithCancel(ctx)
	tb.Cleanup(stop)
	go svc.Run(sctx)
	if built {
		if got := svc.Size(); got != uint64(entries) {
			tb.Fatalf("%s holds a log of %d entries, want %d: remove it", root, got, entries)
		}
		tb.Logf("reopened the log of %d entries in %s", entries, root)
	} else {
		buildCatchupLog(tb, svc, entries, keys[:2])
		if os.Getenv("PYRSIA_BENCH_CATCHUP_DIR") != "" {
			if err := os.WriteFile(filepath.Join(root, "built"), []byte(strconv.Itoa(entries)), 0o600); err != nil {
				tb.Fatal(err)
			}
		}
	}
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Minute)
	defer wcancel()
	if _, err := svc.WaitFinal(wctx, uint64(entries)); err != nil {
		tb.Fatal(err)
	}

	src, err := quorum.NewHost(quorum.HostOptions{Key: keys[0].P2P, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Gater: quorum.NewGater(network.PeerIDs())})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { src.Close() })
	exchange.ServeLog(src, liveSource{svc}, exchange.LogOptions{})
	dst, err := quorum.NewHost(quorum.HostOptions{Key: keys[2].P2P, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Gater: quorum.NewGater(network.PeerIDs())})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { dst.Close() })
	if err := dst.Connect(ctx, peer.AddrInfo{ID: src.ID(), Addrs: src.Addrs()}); err != nil {
		tb.Fatal(err)
	}

	chain, err := policy.NewChain(p)
	if err != nil {
		tb.Fatal(err)
	}
	return &catchupPeer{root: wipedRoot, p: p, keys: keys, trust: trust, chain: chain, network: network, svc: svc, src: src, dst: dst}
}

// buildCatchupLog appends entries entries attested by signers to svc: made
// on every core, appended in batches of 1,000 (one fsync each), straight
// to the log, not through Raft.
func buildCatchupLog(tb testing.TB, svc *logservice.Service, entries int, signers []*Keys) {
	ctx := context.Background()
	start := time.Now()
	// A chunk at a time: 100,000 entries of two attestations do not fit
	// in memory at once here.
	const chunk = 1000
	for c := 0; c < entries; c += chunk {
		made := make([][]byte, min(chunk, entries-c))
		var wg sync.WaitGroup
		work := make(chan int)
		errs := make(chan error, 1)
		for range runtime.GOMAXPROCS(0) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range work {
					e, err := benchEntry(c+k, signers)
					if err != nil {
						select {
						case errs <- err:
						default:
						}
					}
					made[k] = e
				}
			}()
		}
		for k := range made {
			work <- k
		}
		close(work)
		wg.Wait()
		select {
		case err := <-errs:
			tb.Fatal(err)
		default:
		}
		if _, err := svc.AppendBatch(ctx, made); err != nil {
			tb.Fatal(err)
		}
	}
	tb.Logf("built a log of %d entries in %v", entries, time.Since(start).Round(time.Millisecond))
}

// wiped opens a new, empty log for node-c.
func (cp *catchupPeer) wiped(tb testing.TB, name string) *tlog.Log {
	l, err := tlog.Open(context.Background(), tlog.Options{Dir: filepath.Join(cp.root, name), Origin: cp.p.Name, Signer: cp.keys[2].LogSigner})
	if err != nil {
		tb.Fatal(err)
	}
	return l
}

// entries is node-c's peerEntries, its own log l: only node-a serves
// (node-b is not running).
func (cp *catchupPeer) entries(l *tlog.Log) *peerEntries {
	n := &Node{o: Options{Keys: cp.keys[2]}, host: cp.dst, trust: cp.trust, chain: cp.chain}
	n.cur.Store(&membership{net: benchNetworkOf(cp.network, cp.src.ID())})
	return &peerEntries{n: n, own: l.Entry}
}

// benchNetworkOf is network with only the serving peer to read from:
// peerEntries reads from every member but itself.
func benchNetworkOf(network *quorum.Network, serving peer.ID) *quorum.Network {
	var members []quorum.Member
	for _, m := range network.Members() {
		if m.PeerID == serving || m.Name == "node-c" {
			members = append(members, m)
		}
	}
	nw, err := quorum.NewNetwork(quorum.NetworkOptions{Digest: network.Digest(), Members: members})
	if err != nil {
		panic(err) // the members of a valid network
	}
	return nw
}

// benchEntry is the log entry of spec i attested by signers' nodes.
func benchEntry(i int, signers []*Keys) ([]byte, error) {
	spec, err := builder.ParseSpec(testSpec(100_000 + i))
	if err != nil {
		return nil, err
	}
	input, _ := spec.InputDigest()
	canon, _ := spec.CanonicalJSON()
	data := "<project><!-- " + input + " honest --></project>\n"
	sum := sha256.Sum256([]byte(data))
	res := &builder.Result{InputDigest: input, Artifacts: []builder.Artifact{{Name: "hello-1.0.pom", Digest: "sha256:" + hex.EncodeToString(sum[:]), Path: "artifacts/hello-1.0.pom", MediaType: "application/xml"}},
		SourceDigest: "sha256:" + spec.Source.Archive.SHA256, BuilderImageDigest: spec.BuilderImage.Digest}
	var envs []*dssepb.Envelope
	t0 := time.Unix(1700000000, 0)
	for _, k := range signers {
		subjects, prov, err := builder.Provenance(spec, res, "urn:pyrsia-build:node:"+k.Name, t0, t0.Add(time.Second))
		if err != nil {
			return nil, err
		}
		bundle, err := attest.Attest(k.Cosign, subjects, attest.PredicateSLSAProvenanceV1, prov)
		if err != nil {
			return nil, err
		}
		envs = append(envs, bundle.Envelope())
	}
	e, err := publish.NewEntry(spec.Ecosystem, spec.Coordinate, canon, envs)
	if err != nil {
		return nil, err
	}
	return e.MarshalBinary()
}
