package exchange

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io/fs"
	"log/slog"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p-kad-dht/records"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/multiformats/go-multihash"
	"github.com/pyrsia/pyrsia-build/publish/serve"
	"github.com/pyrsia/pyrsia-build/publish/store"
)

// Options configure [New].
type Options struct {
	// Host is the node's libp2p host (required). The exchange adds its
	// protocols to it; the caller closes it after the Exchange.
	Host host.Host
	// Namespace names the network's DHT, apart from any other: its
	// protocols are /pyrsia-build/<Namespace>/kad/1.0.0. Take it from
	// the network policy's digest (its first 16 hex digits, say). Letters,
	// digits, '.', '_' and '-' (required).
	Namespace string
	// Store holds the node's blobs (required): the exchange serves what is
	// in it and puts there what it fetches (checked against its digest by
	// the store's Put and Writer.Commit).
	Store *store.Store
	// Bootstrap are peers to join the DHT through (the build nodes).
	Bootstrap []peer.AddrInfo
	// Server runs the DHT in server mode (answering queries and keeping
	// provider records): for build nodes and nodes with public addresses.
	// Otherwise the DHT turns server when the host finds itself reachable.
	Server bool
	// MaxUnknownSize bounds a blob fetched without a known size (a
	// manifest, a Maven file): default and at most MaxRequestLength
	// (64 MiB), since such a blob comes in one request.
	MaxUnknownSize int64
	// ChunkSize is the size of the parts a blob of known size is fetched
	// in, each from one provider: default 1 MiB, at most MaxRequestLength.
	ChunkSize int64
	// PeerTimeout bounds the fetch of one chunk from one provider (and,
	// for a blob of unknown size, of each ChunkSize of it): a provider
	// that takes longer is given up for that chunk, which goes to another.
	// Default 10s.
	PeerTimeout time.Duration
	// Parallel is the number of chunk requests a fetch has in flight at
	// once, over all its providers: default 8.
	Parallel int
	// MaxUploads bounds the blob requests served at once; more are told
	// to ask later or elsewhere: default 8.
	MaxUploads int
	// ShareMemory bounds the bytes of blobs being fetched that are kept in
	// memory to serve to other peers before the blob is complete: default
	// 64 MiB; negative: none.
	ShareMemory int64
	// Reprovide is how often the exchange announces every blob of its
	// store again in the DHT, where provider records expire (after
	// ProviderTTL on the nodes that keep them): default 12h; negative:
	// never (only Provide and fetches announce). It also announces them
	// once as it starts, for a node that was down while its records
	// expired.
	Reprovide time.Duration
	// ProviderTTL is how long this node's DHT keeps the provider records
	// other nodes put with it: default the DHT's own (48h). Every node of
	// a network should use the same, over Reprovide.
	ProviderTTL time.Duration
	// Rejoin is the longest wait between attempts to join the DHT again
	// while its routing table is thin: empty, or under 10 peers with a
	// Bootstrap peer missing from it (a bootstrap peer that was down or
	// too busy to answer as the node started, or dropped from the table
	// since). An attempt dials the Bootstrap peers not connected (past
	// libp2p's dial backoff) and has the DHT check the connected peers and
	// refresh. The first comes a second after the table is found thin, or
	// at once when a lookup finds it empty; each next one twice as long
	// after the last, up to Rejoin. Default 1 minute; negative: never
	// (the DHT on its own tries the bootstrap peers again every 2 minutes,
	// and only while its table is empty).
	Rejoin time.Duration
	// Logger receives the exchange's messages (default slog.Default()).
	Logger *slog.Logger

	// For tests: the first wait before an attempt to rejoin (default 1s),
	// and how often a table that is not thin is looked at (default 10s).
	rejoinFirst, rejoinCheck time.Duration
}

var namespaceRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Exchange shares blobs with the peers of a network: it serves the blobs of
// its store under [BlobProtocol], announces them in the network's DHT
// ([Exchange.Provide]), and fetches what the store lacks from the peers
// that provide it ([Exchange.Open]), checking it against its digest. It
// is a serve.Content.
type Exchange struct {
	opts  Options
	h     host.Host
	dht   *dht.IpfsDHT
	store *store.Store
	log   *slog.Logger
	seed  maphash.Seed

	ctx    context.Context // done at Close
	cancel context.CancelFunc

	uploads chan struct{}
	bufs    sync.Pool    // of *[]byte of ChunkSize bytes: chunk buffers to reuse
	writers sync.Pool    // of *bufio.Writer: the buffers of blob responses
	shared  atomic.Int64 // bytes held in memory by fetches in progress

	served, fetched      atomic.Int64
	chunks, busy, failed atomic.Int64
	reprovides           atomic.Int64  // passes of reprovide done
	rejoins              atomic.Int64  // attempts to rejoin the DHT
	kick                 chan struct{} // a lookup found the routing table empty
	loops                sync.WaitGroup

	mu      sync.Mutex
	fetches map[string]*download
	banned  map[string]map[peer.ID]bool // digest → peers that sent wrong bytes
}

var _ serve.Content = (*Exchange)(nil)

// Stats are counters of an Exchange's traffic.
type Stats struct {
	// Served is the blob bytes sent to peers; Fetched those received.
	Served, Fetched int64
	// Chunks is the chunks received; Busy the answers "busy" or "not
	// that part yet"; Failed the chunk requests that failed otherwise
	// (timed out, cut off, refused, wrong).
	Chunks, Busy, Failed int64
}

// Stats returns the exchange's counters.
func (x *Exchange) Stats() Stats {
	return Stats{Served: x.served.Load(), Fetched: x.fetched.Load(), Chunks: x.chunks.Load(), Busy: x.busy.Load(), Failed: x.failed.Load()}
}

// New starts an Exchange on o.Host: it joins the network's DHT through
// o.Bootstrap and serves [BlobProtocol]. Close stops it.
func New(ctx context.Context, o Options) (*Exchange, error) {
	switch {
	case o.Host == nil:
		return nil, errors.New("exchange: no libp2p host")
	case o.Store == nil:
		return nil, errors.New("exchange: no store")
	case !namespaceRE.MatchString(o.Namespace):
		return nil, fmt.Errorf("exchange: namespace %q: want 1 to 64 letters, digits, '.', '_' or '-' (from the policy digest)", quoteShort(o.Namespace))
	case o.ChunkSize > MaxRequestLength:
		return nil, fmt.Errorf("exchange: chunk size %d is over the %d byte limit of a request", o.ChunkSize, MaxRequestLength)
	case o.MaxUnknownSize > MaxRequestLength:
		// A blob of unknown size comes in one request: a larger bound
		// would fetch a blob over MaxRequestLength, which an honest
		// provider sends only part of, and drop that provider as a liar.
		return nil, fmt.Errorf("exchange: MaxUnknownSize %d is over the %d byte limit of a request (a blob of unknown size comes in one)", o.MaxUnknownSize, MaxRequestLength)
	}
	if o.MaxUnknownSize <= 0 {
		o.MaxUnknownSize = 64 << 20
	}
	if o.ChunkSize <= 0 {
		o.ChunkSize = 1 << 20
	}
	if o.PeerTimeout <= 0 {
		o.PeerTimeout = 10 * time.Second
	}
	if o.Parallel <= 0 {
		o.Parallel = 8
	}
	if o.MaxUploads <= 0 {
		o.MaxUploads = 8
	}
	if o.ShareMemory == 0 {
		o.ShareMemory = 64 << 20
	}
	if o.Reprovide == 0 {
		o.Reprovide = DefaultReprovide
	}
	if o.ProviderTTL < 0 {
		return nil, fmt.Errorf("exchange: provider TTL %v is negative", o.ProviderTTL)
	}
	if o.Rejoin == 0 {
		o.Rejoin = time.Minute
	}
	if o.rejoinFirst <= 0 {
		o.rejoinFirst = time.Second
	}
	if o.rejoinCheck <= 0 {
		o.rejoinCheck = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	mode := dht.ModeAuto
	if o.Server {
		mode = dht.ModeServer
	}
	dopts := []dht.Option{
		dht.ProtocolPrefix(protocol.ID("/pyrsia-build/" + o.Namespace)),
		dht.Mode(mode),
		dht.DisableValues(),
		dht.BootstrapPeers(o.Bootstrap...),
	}
	if o.ProviderTTL > 0 {
		dopts = append(dopts, dht.ProviderManagerOpts(records.ProvideValidity(o.ProviderTTL)))
	}
	d, err := dht.New(o.Host, dopts...)
	if err != nil {
		return nil, fmt.Errorf("exchange: starting the DHT: %w", err)
	}
	xctx, cancel := context.WithCancel(context.Background())
	x := &Exchange{
		opts: o, h: o.Host, dht: d, store: o.Store, log: o.Logger.With("component", "exchange"),
		seed: maphash.MakeSeed(), ctx: xctx, cancel: cancel,
		uploads: make(chan struct{}, o.MaxUploads), kick: make(chan struct{}, 1),
		fetches: map[string]*download{}, banned: map[string]map[peer.ID]bool{},
	}
	o.Host.SetStreamHandler(BlobProtocol, x.handleBlob)
	for _, ai := range o.Bootstrap {
		if ai.ID == o.Host.ID() {
			continue
		}
		if err := o.Host.Connect(ctx, ai); err != nil {
			x.log.WarnContext(ctx, "cannot reach a bootstrap peer", "peer", ai.ID.String(), "err", err)
		}
	}
	if err := d.Bootstrap(ctx); err != nil {
		x.log.WarnContext(ctx, "DHT bootstrap", "err", err)
	}
	if o.Rejoin > 0 {
		x.loops.Go(x.rejoinLoop)
	}
	if o.Reprovide > 0 {
		x.loops.Add(1)
		go func() {
			defer x.loops.Done()
			x.reprovideLoop(o.Reprovide)
		}()
	}
	return x, nil
}

// DefaultReprovide is the default of Options.Reprovide: a quarter of the
// DHT's default provider record lifetime (48h), so that a record is put
// again several times before it expires.
const DefaultReprovide = 12 * time.Hour

// reprovideLoop announces the store's blobs as the exchange starts and
// then every interval, until Close.
func (x *Exchange) reprovideLoop(interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		x.waitRoutable(x.ctx)
		x.reprovide()
		select {
		case <-x.ctx.Done():
			return
		case <-t.C:
		}
	}
}

// thinTable is the size under which a routing table missing a bootstrap
// peer is thin: the DHT's own threshold for looking for more peers.
const thinTable = 10

// thin says whether the routing table is empty, or under thinTable peers
// and missing a bootstrap peer.
func (x *Exchange) thin() bool {
	rt := x.dht.RoutingTable()
	switch n := rt.Size(); {
	case n == 0:
		return true
	case n >= thinTable:
		return false
	}
	for _, ai := range x.opts.Bootstrap {
		if ai.ID != x.h.ID() && rt.Find(ai.ID) == "" {
			return true
		}
	}
	return false
}

// rejoinLoop joins the DHT again while its routing table is thin (see
// Options.Rejoin), until Close.
func (x *Exchange) rejoinLoop() {
	next := x.opts.rejoinFirst // until the next look at the table
	backoff := next            // after an attempt, until the next
	var last time.Time         // of the last attempt
	for {
		t := time.NewTimer(next)
		select {
		case <-x.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-x.kick:
			t.Stop()
			// A lookup found nobody to ask: try now, but not more
			// often than once per first wait.
			if wait := x.opts.rejoinFirst - time.Since(last); !last.IsZero() && wait > 0 {
				select {
				case <-x.ctx.Done():
					return
				case <-time.After(wait):
				}
			}
		}
		if !x.thin() {
			next, backoff = x.opts.rejoinCheck, x.opts.rejoinFirst
			continue
		}
		x.rejoin()
		last = time.Now()
		next, backoff = backoff, min(2*backoff, x.opts.Rejoin)
	}
}

// rejoin dials the bootstrap peers that are not connected and not in the
// routing table, and has the DHT check its connected peers and refresh.
func (x *Exchange) rejoin() {
	x.rejoins.Add(1)
	rt := x.dht.RoutingTable()
	// Past the swarm's dial backoff: a bootstrap peer that failed a dial
	// is otherwise not dialed again for up to minutes.
	ctx, cancel := context.WithTimeout(network.WithForceDirectDial(x.ctx, "rejoining the DHT"), x.opts.PeerTimeout)
	defer cancel()
	var wg sync.WaitGroup
	var failed atomic.Int64
	for _, ai := range x.opts.Bootstrap {
		if ai.ID == x.h.ID() || rt.Find(ai.ID) != "" || x.h.Network().Connectedness(ai.ID) == network.Connected {
			continue
		}
		wg.Go(func() {
			if err := x.h.Connect(ctx, ai); err != nil {
				failed.Add(1)
				x.log.Debug("rejoining the DHT: cannot reach a bootstrap peer", "peer", ai.ID.String(), "err", err)
			}
		})
	}
	wg.Wait()
	// The DHT adds the connected peers that answer it as DHT servers (a
	// peer it connects to is checked once, as it connects: one too busy
	// to answer then is left out until asked again), then refreshes.
	if err := x.dht.Bootstrap(x.ctx); err != nil {
		x.log.Debug("rejoining the DHT", "err", err)
	}
	x.log.Debug("rejoining the DHT", "routing table", rt.Size(), "bootstrap peers unreachable", failed.Load())
}

// needPeers tells the rejoin loop that a lookup found the routing table
// empty.
func (x *Exchange) needPeers() {
	select {
	case x.kick <- struct{}{}:
	default:
	}
}

// waitRoutable waits until the DHT's routing table has a peer, for at most
// PeerTimeout: a search of an empty table finds nothing. An empty table
// has the exchange rejoin the DHT at once.
func (x *Exchange) waitRoutable(ctx context.Context) {
	if x.dht.RoutingTable().Size() > 0 {
		return
	}
	x.needPeers()
	deadline := time.Now().Add(x.opts.PeerTimeout)
	for x.dht.RoutingTable().Size() == 0 && time.Now().Before(deadline) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// reprovide announces every blob of the store once, one at a time.
func (x *Exchange) reprovide() {
	var done, failed int
	var last error
	ds := x.store.Digests()
	for i, d := range ds {
		if x.ctx.Err() != nil {
			return
		}
		if x.dht.RoutingTable().Size() == 0 {
			failed += len(ds) - i
			last = errors.New("no peer in the DHT's routing table")
			break
		}
		ctx, cancel := context.WithTimeout(x.ctx, time.Minute)
		err := x.Provide(ctx, d)
		cancel()
		if err != nil {
			failed++
			last = err
			continue
		}
		done++
	}
	if x.ctx.Err() != nil {
		return
	}
	x.reprovides.Add(1)
	if failed > 0 {
		x.log.Warn("announcing the store's blobs again: some failed", "announced", done, "failed", failed, "last error", last)
		return
	}
	x.log.Debug("announced the store's blobs again", "announced", done)
}

// Close stops serving and leaves the DHT. Fetches in progress fail.
func (x *Exchange) Close() error {
	x.h.RemoveStreamHandler(BlobProtocol)
	x.cancel()
	x.loops.Wait()
	return x.dht.Close()
}

// DHT returns the exchange's DHT, for a node that wants to look further.
func (x *Exchange) DHT() *dht.IpfsDHT { return x.dht }

// keyOf returns the CID a blob's provider records are kept under: raw
// codec, the blob's sha256 as a multihash.
func keyOf(sum [32]byte) cid.Cid {
	mh, _ := multihash.Encode(sum[:], multihash.SHA2_256) // never fails for sha2-256 of 32 bytes
	return cid.NewCidV1(cid.Raw, mh)
}

// Provide announces in the DHT that this node has the blob: peers looking
// for it find this node. It needs peers in the routing table: it waits for
// one until ctx is done. Build nodes provide what they built, and an
// Exchange provides what it fetched.
func (x *Exchange) Provide(ctx context.Context, digest string) error {
	sum, err := parseDigest(digest)
	if err != nil {
		return err
	}
	if x.dht.RoutingTable().Size() == 0 {
		x.needPeers()
	}
	for x.dht.RoutingTable().Size() == 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("exchange: providing %s: no peer in the DHT's routing table (check the bootstrap peers): %w", digest, ctx.Err())
		case <-x.ctx.Done():
			return fmt.Errorf("exchange: providing %s: closed", digest)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := x.dht.Provide(ctx, keyOf(sum), true); err != nil {
		return fmt.Errorf("exchange: providing %s: %w", digest, err)
	}
	return nil
}

// ErrNoProvider is wrapped (with fs.ErrNotExist) by the error of an Open
// that found no peer able to give the blob. Use errors.Is.
var ErrNoProvider = errors.New("exchange: no peer provides the blob")

// Open returns the blob with this digest: from the store if it has it,
// else fetched from the peers that provide it (found in the DHT), checked
// against its digest, put in the store, and provided onward. A blob of a
// known size (size >= 0) is fetched in chunks from several providers at
// once; one of unknown size (-1) whole from one provider at a time, at
// most MaxUnknownSize bytes. A provider that sends wrong bytes is never
// asked for that blob again; one that stalls for PeerTimeout, or goes
// away, loses its chunk to another. Concurrent Opens of one blob fetch it
// once. A blob no peer has is an error wrapping fs.ErrNotExist.
func (x *Exchange) Open(ctx context.Context, digest string, size int64) (serve.Blob, error) {
	sum, err := parseDigest(digest)
	if err != nil {
		return nil, err
	}
	if size < -1 {
		return nil, fmt.Errorf("exchange: %s: size %d (want -1 for unknown, or 0 and more)", digest, size)
	}
	for {
		if b, err := x.openStored(digest, size); err == nil || !errors.Is(err, fs.ErrNotExist) {
			return b, err
		}
		d, first := x.join(digest, sum, size)
		if first {
			go x.run(d)
		}
		select {
		case <-d.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("exchange: fetching %s: %w", digest, ctx.Err())
		}
		if d.err != nil {
			return nil, d.err
		}
		if !first && d.size != size {
			continue // it was fetched as of another size: open checks ours
		}
		return x.openStored(digest, size)
	}
}

// openStored opens the blob from the store and checks its size.
func (x *Exchange) openStored(digest string, size int64) (serve.Blob, error) {
	b, err := x.store.Open(digest)
	if err != nil {
		return nil, err
	}
	if size >= 0 && b.Size() != size {
		b.Close()
		return nil, fmt.Errorf("exchange: %s is %d bytes, not the %d expected", digest, b.Size(), size)
	}
	return b, nil
}

// join returns the fetch of digest in progress, or a new one (first).
func (x *Exchange) join(digest string, sum [32]byte, size int64) (d *download, first bool) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if d := x.fetches[digest]; d != nil {
		return d, false
	}
	d = &download{x: x, digest: digest, sum: sum, size: size, chunk: x.opts.ChunkSize, done: make(chan struct{}), parts: map[int64][]byte{}}
	x.fetches[digest] = d
	return d, true
}

// active returns the fetch of digest in progress, if it has a known size.
func (x *Exchange) active(digest string) *download {
	x.mu.Lock()
	defer x.mu.Unlock()
	if d := x.fetches[digest]; d != nil && d.size >= 0 {
		return d
	}
	return nil
}

func (x *Exchange) isBanned(digest string, p peer.ID) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.banned[digest][p]
}

// ban drops p for digest for good: it sent wrong bytes or broke the
// protocol.
func (x *Exchange) ban(digest string, p peer.ID, why error) {
	x.mu.Lock()
	if x.banned[digest] == nil {
		x.banned[digest] = map[peer.ID]bool{}
	}
	x.banned[digest][p] = true
	x.mu.Unlock()
	x.log.Warn("peer dropped for a blob: it sent wrong bytes", "digest", digest, "peer", p.String(), "err", why)
}

// Banned returns the peers dropped for digest because they sent wrong
// bytes.
func (x *Exchange) Banned(digest string) []peer.ID {
	x.mu.Lock()
	defer x.mu.Unlock()
	var ps []peer.ID
	for p := range x.banned[digest] {
		ps = append(ps, p)
	}
	return ps
}

// run fetches d, then removes it from the fetches in progress.
func (x *Exchange) run(d *download) {
	ctx, cancel := context.WithCancel(x.ctx)
	defer cancel()
	var err error
	if d.size < 0 {
		err = x.fetchWhole(ctx, d)
	} else {
		err = x.fetchChunked(ctx, d)
	}
	if err == nil {
		// Provide it onward, unless that was done as the fetch started.
		go func() {
			if d.announced != nil && <-d.announced == nil {
				return
			}
			pctx, cancel := context.WithTimeout(x.ctx, time.Minute)
			defer cancel()
			if err := x.Provide(pctx, d.digest); err != nil {
				x.log.Warn("cannot provide a fetched blob", "digest", d.digest, "err", err)
			}
		}()
	}
	x.mu.Lock()
	delete(x.fetches, d.digest)
	x.mu.Unlock()
	d.release()
	d.err = err
	close(d.done)
}
