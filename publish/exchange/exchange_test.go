package exchange

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pyrsia/pyrsia-build/publish/store"
)

// node is a libp2p host with a store and an Exchange.
type node struct {
	x     *Exchange
	store *store.Store
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// newStore opens a store in a new folder.
func newStore(t testing.TB) *store.Store {
	t.Helper()
	dir := t.TempDir()
	if base := os.Getenv("EXCHANGE_STORE_DIR"); base != "" { // benchmarks: a tmpfs, say
		var err error
		if dir, err = os.MkdirTemp(base, "store-"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
	}
	st, err := store.Open(dir, store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// put puts b in the node's store.
func (nd *node) put(t testing.TB, b []byte) string {
	t.Helper()
	d := digestOf(b)
	if err := nd.store.Put(context.Background(), d, int64(len(b)), bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	return d
}

// testNet starts nodes that join one DHT through the first.
type testNet struct {
	t     *testing.T
	nodes []*node
}

func newTestNet(t *testing.T) *testNet { return &testNet{t: t} }

// add starts a node with options o (Host, Store, Namespace and Bootstrap
// are filled in).
func (n *testNet) add(o Options) *node {
	t := n.t
	t.Helper()
	h := newHost(t)
	st := newStore(t)
	o.Host, o.Store, o.Namespace, o.Server = h, st, "test", true
	if len(n.nodes) > 0 {
		first := n.nodes[0].x.h
		o.Bootstrap = []peer.AddrInfo{{ID: first.ID(), Addrs: first.Addrs()}}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(t.Output(), nil))
	}
	if o.ChunkSize == 0 {
		o.ChunkSize = 64 << 10
	}
	x, err := New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { x.Close() })
	nd := &node{x: x, store: st}
	n.nodes = append(n.nodes, nd)
	return nd
}

// seed puts b in the node's store and provides it.
func (nd *node) seed(t *testing.T, b []byte) string {
	t.Helper()
	d := nd.put(t, b)
	nd.provide(t, d)
	return d
}

func (nd *node) provide(t *testing.T, d string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := nd.x.Provide(ctx, d); err != nil {
		t.Fatal(err)
	}
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	r := rand.NewChaCha8([32]byte{byte(n), byte(n >> 8), byte(n >> 16)})
	r.Read(b)
	return b
}

// open opens d of size on nd and checks it is want.
func (nd *node) mustOpen(t *testing.T, d string, size int64, want []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := nd.x.Open(ctx, d, size)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got, err := io.ReadAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got %d bytes (%s), want %d (%s)", len(got), digestOf(got), len(want), d)
	}
	if !nd.store.Has(d) {
		t.Fatal("the fetched blob is not in the store")
	}
}

func TestFetchFromOneProvider(t *testing.T) {
	net := newTestNet(t)
	seed := net.add(Options{})
	fetcher := net.add(Options{})
	data := randomBytes(1<<20 + 123)
	d := seed.seed(t, data)
	fetcher.mustOpen(t, d, int64(len(data)), data)
	if got := seed.x.Stats().Served; got != int64(len(data)) {
		t.Errorf("the seed sent %d bytes, want %d", got, len(data))
	}
	// Now it is in the store: no peer is asked again.
	fetcher.mustOpen(t, d, int64(len(data)), data)
	if got := seed.x.Stats().Served; got != int64(len(data)) {
		t.Errorf("after a second Open the seed sent %d bytes, want %d", got, len(data))
	}
}

func TestFetchUnknownSize(t *testing.T) {
	net := newTestNet(t)
	seed := net.add(Options{})
	fetcher := net.add(Options{MaxUnknownSize: 1 << 20})
	data := randomBytes(300 << 10)
	d := seed.seed(t, data)
	fetcher.mustOpen(t, d, -1, data)

	big := randomBytes(1<<20 + 1)
	bd := seed.seed(t, big)
	_, err := fetcher.x.Open(context.Background(), bd, -1)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("a blob of unknown size over MaxUnknownSize: got %v, want ErrTooLarge", err)
	}
	if fetcher.store.Has(bd) {
		t.Fatal("the blob over the limit was kept")
	}
}

func TestFetchFromThreeProviders(t *testing.T) {
	net := newTestNet(t)
	data := randomBytes(4 << 20) // 64 chunks
	var seeds []*node
	for range 3 {
		seeds = append(seeds, net.add(Options{}))
	}
	fetcher := net.add(Options{})
	var d string
	for _, s := range seeds {
		d = s.seed(t, data)
	}
	fetcher.mustOpen(t, d, int64(len(data)), data)
	var total int64
	servers := 0
	for _, s := range seeds {
		n := s.x.Stats().Served
		total += n
		if n > 0 {
			servers++
		}
	}
	if total != int64(len(data)) {
		t.Errorf("providers sent %d bytes in all, want %d", total, len(data))
	}
	if servers < 2 {
		t.Errorf("%d providers sent chunks, want at least 2", servers)
	}
}

func TestConcurrentOpensFetchOnce(t *testing.T) {
	net := newTestNet(t)
	seed := net.add(Options{})
	fetcher := net.add(Options{})
	data := randomBytes(2 << 20)
	d := seed.seed(t, data)
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() { fetcher.mustOpen(t, d, int64(len(data)), data) })
	}
	wg.Wait()
	if got := seed.x.Stats().Served; got != int64(len(data)) {
		t.Errorf("the seed sent %d bytes for 5 Opens at once, want %d (one fetch)", got, len(data))
	}
}

// TestLyingProvider: a provider that sends other bytes than the blob's is
// dropped, and the blob comes right from the others.
func TestLyingProvider(t *testing.T) {
	for _, size := range []int64{-1, 4 << 20} {
		t.Run(map[bool]string{true: "unknown size", false: "chunks"}[size < 0], func(t *testing.T) {
			net := newTestNet(t)
			data := randomBytes(4 << 20)
			liar := net.add(Options{})
			honest := []*node{net.add(Options{}), net.add(Options{})}
			fetcher := net.add(Options{})
			d := liar.seed(t, data)
			bad := bytes.Clone(data)
			for i := range bad {
				bad[i] ^= 0x5a
			}
			var lied atomic.Int64
			misbehave(liar, func(st network.Stream, req blobRequest) {
				n := min(int64(req.length), int64(len(bad))-int64(req.offset))
				w := bufio.NewWriter(st)
				writeBlobHeader(w, int64(len(bad)), n)
				w.Write(bad[req.offset : req.offset+uint64(n)])
				w.Flush()
				lied.Add(n)
				st.Close()
			})
			if size < 0 {
				// One provider at a time: let the liar be the first.
				var de *store.DigestError
				if _, err := fetcher.x.Open(context.Background(), d, size); !errors.As(err, &de) {
					t.Fatalf("fetched from the liar alone: got %v, want a *store.DigestError", err)
				}
			}
			for _, h := range honest {
				h.seed(t, data)
			}
			fetcher.mustOpen(t, d, size, data)
			if lied.Load() == 0 {
				t.Fatal("the liar was not asked: the test proves nothing")
			}
			if !slices.Contains(fetcher.x.Banned(d), liar.x.h.ID()) {
				t.Errorf("the liar sent %d bytes and is not dropped: banned %v", lied.Load(), fetcher.x.Banned(d))
			}
			for _, h := range honest {
				if slices.Contains(fetcher.x.Banned(d), h.x.h.ID()) {
					t.Errorf("honest provider %s dropped", h.x.h.ID())
				}
			}
		})
	}
}

// misbehave replaces a node's blob handler.
func misbehave(nd *node, handle func(st network.Stream, req blobRequest)) {
	nd.x.h.SetStreamHandler(BlobProtocol, func(st network.Stream) {
		req, err := readBlobRequest(bufio.NewReader(st))
		if err != nil {
			st.Reset()
			return
		}
		handle(st, req)
	})
}

func TestStallingProvider(t *testing.T) {
	net := newTestNet(t)
	data := randomBytes(2 << 20)
	staller := net.add(Options{})
	honest := net.add(Options{})
	fetcher := net.add(Options{PeerTimeout: 2 * time.Second})
	d := staller.seed(t, data)
	honest.seed(t, data)
	release := make(chan struct{})
	defer close(release)
	stalled := make(chan struct{}, 100)
	misbehave(staller, func(st network.Stream, req blobRequest) {
		stalled <- struct{}{}
		<-release
		st.Reset()
	})
	fetcher.mustOpen(t, d, int64(len(data)), data)
	if len(stalled) == 0 {
		t.Error("the stalling provider was not asked: the test proves nothing")
	}
}

func TestProviderVanishesHalfWay(t *testing.T) {
	net := newTestNet(t)
	data := randomBytes(2 << 20)
	quitter := net.add(Options{})
	honest := net.add(Options{})
	fetcher := net.add(Options{})
	d := quitter.seed(t, data)
	honest.seed(t, data)
	asked := make(chan struct{}, 100)
	misbehave(quitter, func(st network.Stream, req blobRequest) {
		asked <- struct{}{}
		w := bufio.NewWriter(st)
		writeBlobHeader(w, int64(len(data)), int64(req.length))
		w.Write(data[req.offset : req.offset+uint64(req.length)/2])
		w.Flush()
		st.Reset()
	})
	fetcher.mustOpen(t, d, int64(len(data)), data)
	if len(asked) == 0 {
		t.Error("the provider that goes away was not asked: the test proves nothing")
	}
}

func TestProviderSendsTooMuch(t *testing.T) {
	net := newTestNet(t)
	data := randomBytes(1 << 20)
	greedy := net.add(Options{})
	honest := net.add(Options{})
	fetcher := net.add(Options{})
	d := greedy.seed(t, data)
	honest.seed(t, data)
	asked := make(chan struct{}, 100)
	misbehave(greedy, func(st network.Stream, req blobRequest) {
		asked <- struct{}{}
		w := bufio.NewWriter(st)
		writeBlobHeader(w, int64(len(data)), int64(req.length)+1)
		w.Write(make([]byte, req.length+1))
		w.Flush()
		st.Close()
	})
	fetcher.mustOpen(t, d, int64(len(data)), data)
	if len(asked) == 0 {
		t.Error("the greedy provider was not asked: the test proves nothing")
	}
	if !slices.Contains(fetcher.x.Banned(d), greedy.x.h.ID()) {
		t.Errorf("a provider that sent more than asked is not dropped")
	}
}

func TestNoProvider(t *testing.T) {
	net := newTestNet(t)
	net.add(Options{})
	fetcher := net.add(Options{})
	for _, size := range []int64{-1, 1000} {
		_, err := fetcher.x.Open(context.Background(), digestOf([]byte("nobody has this")), size)
		if !errors.Is(err, fs.ErrNotExist) || !errors.Is(err, ErrNoProvider) {
			t.Errorf("size %d: got %v, want fs.ErrNotExist and ErrNoProvider", size, err)
		}
	}
	if _, err := fetcher.x.Open(context.Background(), "sha256:abc", -1); err == nil {
		t.Error("a malformed digest was fetched")
	}
}

// TestProvidedOnward: once a node fetched a blob, a third fetches it from
// that node after the first provider is gone.
func TestProvidedOnward(t *testing.T) {
	net := newTestNet(t)
	hub := net.add(Options{}) // a DHT node that never has the blob
	seed := net.add(Options{})
	first := net.add(Options{})
	data := randomBytes(1 << 20)
	d := seed.seed(t, data)
	first.mustOpen(t, d, int64(len(data)), data)
	first.provide(t, d) // Open provides onward in the background; make sure it is done
	seed.x.Close()
	seed.x.h.(interface{ Close() error }).Close()
	second := net.add(Options{})
	second.mustOpen(t, d, int64(len(data)), data)
	if got := first.x.Stats().Served; got != int64(len(data)) {
		t.Errorf("the first fetcher sent %d bytes, want %d", got, len(data))
	}
	_ = hub
}

func TestBlobServerRefuses(t *testing.T) {
	net := newTestNet(t)
	seed := net.add(Options{})
	data := randomBytes(1000)
	d := seed.put(t, data)
	asker := newHost(t)
	connect(t, asker, seed.x.h)
	sum, _ := parseDigest(d)
	for _, tc := range []struct {
		name string
		req  blobRequest
		want byte
	}{
		{"over-long", blobRequest{sum: sum, length: MaxRequestLength + 1}, statusBad},
		{"past the end", blobRequest{sum: sum, offset: 1001, length: 1}, statusBad},
		{"unknown", blobRequest{length: 1}, statusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := asker.NewStream(context.Background(), seed.x.h.ID(), BlobProtocol)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			writeBlobRequest(bufio.NewWriter(st), tc.req)
			st.CloseWrite()
			_, _, err = readBlobResponse(bufio.NewReader(st), tc.req)
			var pe *PeerError
			if !errors.As(err, &pe) || pe.Status != tc.want {
				t.Fatalf("got %v, want status %d", err, tc.want)
			}
		})
	}
}

// TestShareMemoryAccounting: a chunk kept twice (fetched again while
// looking for a liar) is counted once, so that forgetting it gives back
// exactly what was taken (it went negative, and the bound grew).
func TestShareMemoryAccounting(t *testing.T) {
	x := &Exchange{opts: Options{ShareMemory: 100}}
	d := &download{x: x, size: 40, chunk: 10, parts: map[int64][]byte{}}
	d.keep(0, make([]byte, 10))
	d.keep(0, make([]byte, 10))
	d.keep(1, make([]byte, 10))
	if got := x.shared.Load(); got != 20 {
		t.Fatalf("%d bytes counted for two chunks of 10, want 20", got)
	}
	if parts, ok := d.held(5, 10); !ok || len(parts) != 2 {
		t.Fatalf("held(5, 10): %d parts, %v; want 2, true", len(parts), ok)
	}
	if _, ok := d.held(15, 10); ok {
		t.Fatal("held(15, 10) without chunk 2")
	}
	d.forget()
	if got := x.shared.Load(); got != 0 {
		t.Fatalf("%d bytes counted after forgetting all, want 0", got)
	}
	for range 20 {
		d.keep(2, make([]byte, 10))
	}
	d.keep(3, make([]byte, 95)) // over the bound: not kept
	if got := x.shared.Load(); got != 10 {
		t.Fatalf("%d bytes counted, want 10", got)
	}
}

// providers returns the providers of d that the node finds in the DHT.
func (nd *node) providers(t *testing.T, d string) []peer.ID {
	t.Helper()
	sum, err := parseDigest(d)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var ps []peer.ID
	for ai := range nd.x.dht.FindProvidersAsync(ctx, keyOf(sum), 0) {
		ps = append(ps, ai.ID)
	}
	return ps
}

// TestReprovide: provider records expire after ProviderTTL; a node that
// re-provides announces what its store holds again (without a Provide
// call), so its blob is still found after another node's record, put
// once, has expired.
func TestReprovide(t *testing.T) {
	const ttl = 3 * time.Second
	net := newTestNet(t)
	net.add(Options{ProviderTTL: ttl, Reprovide: -1}) // the DHT's first node
	again := net.add(Options{ProviderTTL: ttl, Reprovide: 300 * time.Millisecond})
	once := net.add(Options{ProviderTTL: ttl, Reprovide: -1})
	asker := net.add(Options{ProviderTTL: ttl, Reprovide: -1})
	a := again.put(t, randomBytes(1000)) // never given to Provide
	b := once.seed(t, randomBytes(1001))
	if ps := asker.providers(t, b); !slices.Contains(ps, once.x.h.ID()) {
		t.Fatalf("a record just put is not found: providers %v", ps)
	}
	// Wait for the record put once to expire (the TTL works).
	deadline := time.Now().Add(time.Minute)
	for slices.Contains(asker.providers(t, b), once.x.h.ID()) {
		if time.Now().After(deadline) {
			t.Fatalf("a record put once is still found a minute later, with a TTL of %v", ttl)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The blob announced again is found, now and after another TTL.
	for _, when := range []string{"when the other expired", "a TTL later"} {
		var found bool
		for range 10 {
			if found = slices.Contains(asker.providers(t, a), again.x.h.ID()); found {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if !found {
			t.Fatalf("%s: the re-provided blob is not found (%d passes of reprovide)", when, again.x.reprovides.Load())
		}
		time.Sleep(ttl)
	}
	if once.x.reprovides.Load() != 0 {
		t.Error("a node with Reprovide < 0 announced again")
	}
	asker.mustOpen(t, a, 1000, randomBytes(1000))
}

func TestProviderTTLNegative(t *testing.T) {
	_, err := New(context.Background(), Options{Host: newHost(t), Store: newStore(t), Namespace: "test", ProviderTTL: -time.Second})
	if err == nil {
		t.Fatal("a negative ProviderTTL was accepted")
	}
}

// orderedSeed makes nd serve its blob d (data) by hand, recording the
// chunk offsets asked for; busy answers "busy" to the first that many
// requests.
func orderedSeed(nd *node, data []byte, busy int) (offsets func() []uint64) {
	var mu sync.Mutex
	var got []uint64
	misbehave(nd, func(st network.Stream, req blobRequest) {
		defer st.Close()
		mu.Lock()
		if busy > 0 {
			busy--
			mu.Unlock()
			writeStatus(st, statusBusy, "busy")
			return
		}
		got = append(got, req.offset)
		mu.Unlock()
		n := min(int64(req.length), int64(len(data))-int64(req.offset))
		w := bufio.NewWriter(st)
		writeBlobHeader(w, int64(len(data)), n)
		w.Write(data[req.offset : req.offset+uint64(n)])
		w.Flush()
	})
	return func() []uint64 {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

// A fetch from one provider that is not busy asks for the chunks in
// order, so that the store hashes them as they come (from memory, not
// reading the blob back after the last chunk).
func TestFetchInOrder(t *testing.T) {
	net := newTestNet(t)
	seed := net.add(Options{})
	fetcher := net.add(Options{Parallel: 1})
	data := randomBytes(32<<16 + 5) // 33 chunks of 64 KiB
	d := seed.seed(t, data)
	offsets := orderedSeed(seed, data, 0)
	fetcher.mustOpen(t, d, int64(len(data)), data)
	got := offsets()
	if len(got) != 33 || !slices.IsSorted(got) {
		t.Errorf("chunks asked for at offsets %v: want the 33 in order", got)
	}
}

// Once a provider says it is busy (others fetch the blob too), the rest
// of the chunks are asked for in a random order, so that fetchers of the
// same blob hold different chunks to give each other.
func TestFetchSpreadsWhenBusy(t *testing.T) {
	net := newTestNet(t)
	seed := net.add(Options{})
	fetcher := net.add(Options{Parallel: 1})
	data := randomBytes(32<<16 + 5)
	d := seed.seed(t, data)
	offsets := orderedSeed(seed, data, 1)
	fetcher.mustOpen(t, d, int64(len(data)), data)
	got := offsets()
	if len(got) != 33 {
		t.Fatalf("%d chunks asked for after the busy answer, want 33", len(got))
	}
	if slices.IsSorted(got) {
		t.Errorf("chunks asked for in order after a busy answer: %v", got)
	}
}
