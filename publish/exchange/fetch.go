package exchange

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"io/fs"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/pyrsia/pyrsia-build/publish/store"
)

// download is one fetch of a blob in progress, which concurrent Opens
// share. While it runs, the chunks it holds in memory (parts) are served
// to peers that ask, so that peers fetching the same new blob at once
// fetch from each other rather than all from its first provider.
type download struct {
	x      *Exchange
	digest string
	sum    [32]byte
	size   int64 // -1: unknown
	chunk  int64

	done chan struct{}
	err  error // set before done is closed

	announced chan error // the result of providing it as the fetch started; nil if not

	mu    sync.Mutex
	parts map[int64][]byte // chunk index → bytes received (unverified)
	kept  int64
}

// keep holds chunk c's bytes for peers, within the exchange's ShareMemory,
// and says whether it did (if not, nothing refers to b).
func (d *download) keep(c int64, b []byte) bool {
	x := d.x
	if x.opts.ShareMemory < 0 || x.shared.Add(int64(len(b))) > x.opts.ShareMemory {
		if x.opts.ShareMemory >= 0 {
			x.shared.Add(-int64(len(b)))
		}
		return false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if old, ok := d.parts[c]; ok {
		x.shared.Add(-int64(len(old)))
		d.kept -= int64(len(old))
	}
	d.parts[c] = b
	d.kept += int64(len(b))
	return true
}

// chunkBuf returns a buffer of n bytes for a chunk: one given back by
// freeChunk when n is the chunk size.
func (x *Exchange) chunkBuf(n int64) []byte {
	if n == x.opts.ChunkSize {
		if b, ok := x.bufs.Get().(*[]byte); ok {
			return *b
		}
	}
	return make([]byte, n)
}

// freeChunk gives back a chunk's buffer that nothing refers to any more.
func (x *Exchange) freeChunk(b []byte) {
	if int64(len(b)) == x.opts.ChunkSize {
		x.bufs.Put(&b)
	}
}

// forget drops the bytes held (they may be wrong).
func (d *download) forget() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.x.shared.Add(-d.kept)
	d.kept = 0
	d.parts = map[int64][]byte{}
}

// release gives back the memory of the parts held.
func (d *download) release() { d.forget() }

// haveMap returns the chunk size and a bitmap of the chunks held, as a
// statusPartial message.
func (d *download) haveMap() []byte {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := (d.size + d.chunk - 1) / d.chunk
	n = min(n, 8*(maxHaveMessage-binary.MaxVarintLen64))
	b := binary.AppendUvarint(nil, uint64(d.chunk))
	bm := make([]byte, (n+7)/8)
	for c := range d.parts {
		if c < n {
			bm[c/8] |= 1 << (c % 8)
		}
	}
	return append(b, bm...)
}

// held returns the bytes of [off, off+n) if the parts held cover them.
func (d *download) held(off, n int64) ([][]byte, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var out [][]byte
	for n > 0 {
		c := off / d.chunk
		b, ok := d.parts[c]
		if !ok {
			return nil, false
		}
		in := off - c*d.chunk
		if in >= int64(len(b)) {
			return nil, false
		}
		k := min(n, int64(len(b))-in)
		out = append(out, b[in:in+k])
		off += k
		n -= k
	}
	return out, true
}

// fetchChunk asks p for req and reads the answer, within PeerTimeout.
func (x *Exchange) fetchChunk(ctx context.Context, p peer.ID, req blobRequest) (size int64, b []byte, err error) {
	ctx, cancel := context.WithTimeout(ctx, x.opts.PeerTimeout)
	defer cancel()
	st, err := x.h.NewStream(ctx, p, BlobProtocol)
	if err != nil {
		return 0, nil, err
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	deadline, _ := ctx.Deadline()
	st.SetDeadline(deadline)
	if err := writeBlobRequest(bufio.NewWriterSize(st, 64), req); err != nil {
		st.Reset()
		return 0, nil, err
	}
	st.CloseWrite()
	r := bufio.NewReaderSize(st, 64<<10)
	size, n, err := readBlobHeader(r, req)
	if err == nil {
		b = x.chunkBuf(n)
		if k, rerr := io.ReadFull(r, b); rerr != nil {
			x.freeChunk(b)
			b, err = nil, fmt.Errorf("%d of %d bytes: %w", k, n, noEOF(rerr))
		}
	}
	if err != nil {
		st.Reset()
		if ctx.Err() != nil {
			return 0, nil, fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return 0, nil, err
	}
	x.fetched.Add(int64(len(b)))
	return size, b, nil
}

// provider is one peer of a fetch round.
type provider struct {
	id       peer.ID
	inflight int
	fails    int
	gone     bool                // not asked again in this fetch
	notYet   map[int64]time.Time // chunks it said it does not hold yet
	busy     time.Time           // said busy: not before then
	streak   int                 // busy answers in a row
	sent     bool                // sent at least one chunk
	have     []byte              // the chunks it said it holds, when it is fetching the blob too
	haveAt   time.Time           // when it said so
}

// eligible says whether q may be asked for chunk c now; if not, soon is
// when to look again (zero: not for a while).
func (q *provider) eligible(c int64, now time.Time) (ok bool, soon time.Time) {
	if now.Before(q.busy) {
		return false, q.busy
	}
	if q.have != nil {
		if has(q.have, c) {
			return true, time.Time{}
		}
		if now.Sub(q.haveAt) < notYetWait {
			return false, q.haveAt.Add(notYetWait)
		}
	}
	if t, ok := q.notYet[c]; ok && now.Sub(t) < notYetWait {
		return false, t.Add(notYetWait)
	}
	return true, time.Time{}
}

// round fetches every chunk of a blob once into a Writer.
type round struct {
	x       *Exchange
	d       *download
	w       *store.Writer
	n       int64 // chunks
	pending []int64
	left    int64 // chunks not yet written
	fps     []uint64
	from    []peer.ID
	provs   map[peer.ID]*provider
	fixed   bool // no providers are added: a round of one provider
	spread  bool // the pending chunks are in a random order (spreadLocked)
	errs    []error
	notHere int // providers that said they do not have the blob

	mu        sync.Mutex
	wake      chan struct{} // closed when every waiting worker should look again
	kick      chan struct{} // wakes one waiting worker
	searching bool          // a DHT search is in progress
	passes    int           // DHT searches done
	lostAt    int           // passes when the last usable provider went
	needMore  chan struct{}
}

func (x *Exchange) newRound(d *download, w *store.Writer) *round {
	n := (d.size + d.chunk - 1) / d.chunk
	r := &round{x: x, d: d, w: w, n: n, left: n, fps: make([]uint64, n), from: make([]peer.ID, n),
		provs: map[peer.ID]*provider{}, wake: make(chan struct{}), kick: make(chan struct{}, 1), needMore: make(chan struct{}, 1)}
	// In order: the store's Writer then hashes each chunk from memory as
	// it is written, while the next ones arrive, and Commit has nothing
	// left to read (in a random order it hashed the whole blob again from
	// the file after the last chunk). The order turns random at the first
	// sign of others fetching the blob too (spreadLocked).
	r.pending = make([]int64, n)
	for i := range r.pending {
		r.pending[i] = int64(i)
	}
	return r
}

// spreadLocked puts the chunks still pending in a random order, once: a
// provider said it is busy or does not hold a chunk yet, so others fetch
// this blob at the same time, and peers that fetch different chunks have
// something to give each other.
func (r *round) spreadLocked() {
	if r.spread {
		return
	}
	r.spread = true
	rand.Shuffle(len(r.pending), func(i, j int) { r.pending[i], r.pending[j] = r.pending[j], r.pending[i] })
}

func (r *round) broadcastLocked() {
	close(r.wake)
	r.wake = make(chan struct{})
}

// add makes p a provider of the round.
func (r *round) add(p peer.ID) {
	if p == r.x.h.ID() || r.x.isBanned(r.d.digest, p) {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.provs[p]; ok {
		return
	}
	if !r.fixed && r.usableLocked() >= maxProviders*r.x.opts.Parallel {
		return // enough: more only cost connections (a later search adds others if these fail)
	}
	r.provs[p] = &provider{id: p, notYet: map[int64]time.Time{}}
	r.broadcastLocked()
}

func (r *round) usableLocked() int {
	k := 0
	for _, p := range r.provs {
		if !p.gone {
			k++
		}
	}
	return k
}

const (
	notYetWait = 100 * time.Millisecond // before asking again for a part a peer did not hold
	busyWait   = 100 * time.Millisecond // before asking a busy peer again (on average)
	// maxProviders, times Parallel, bounds the providers a fetch uses at
	// once: more cost connections and probes for little.
	maxProviders = 2
	searchFirst  = 100 * time.Millisecond // between the first DHT searches of a fetch
	searchMax    = 2 * time.Second        // between later ones
)

// next hands a worker a chunk and the provider to ask for it; c < 0
// when every chunk is in.
func (r *round) next(ctx context.Context) (c int64, p *provider, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for {
		if r.left == 0 {
			return -1, nil, nil
		}
		now := time.Now()
		usable := r.usableLocked()
		limit := max(2, (r.x.opts.Parallel+usable-1)/max(usable, 1))
		var soonest time.Time
		for i, c := range r.pending {
			var best *provider
			for _, q := range r.provs {
				if q.gone || q.inflight >= limit {
					continue
				}
				if ok, soon := q.eligible(c, now); !ok {
					if !soon.IsZero() {
						soonest = earliest(soonest, soon)
					}
					continue
				}
				// Prefer a peer known to hold the chunk, then the least
				// loaded.
				if best == nil || better(q, best, c) {
					best = q
				}
			}
			if best != nil {
				r.pending = append(r.pending[:i], r.pending[i+1:]...)
				best.inflight++
				return c, best, nil
			}
		}
		inflight := int64(len(r.pending)) < r.left
		if usable == 0 && !inflight {
			if r.fixed || (!r.searching && r.passes > r.lostAt) {
				return -1, nil, r.failLocked()
			}
			select {
			case r.needMore <- struct{}{}:
			default:
			}
		}
		wake := r.wake
		r.mu.Unlock()
		var timer <-chan time.Time
		if !soonest.IsZero() {
			t := time.NewTimer(time.Until(soonest))
			defer t.Stop()
			timer = t.C
		}
		select {
		case <-wake:
		case <-r.kick:
		case <-timer:
		case <-ctx.Done():
			r.mu.Lock()
			return -1, nil, ctx.Err()
		}
		r.mu.Lock()
	}
}

// better says whether q is a better choice than best for chunk c.
func better(q, best *provider, c int64) bool {
	qh, bh := has(q.have, c), has(best.have, c)
	if qh != bh {
		return qh
	}
	return q.inflight < best.inflight || (q.inflight == best.inflight && rand.IntN(2) == 0)
}

func earliest(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// failLocked is the error of a round that ran out of providers.
func (r *round) failLocked() error {
	if len(r.errs) == 0 || r.notHere == len(r.provs) {
		return fmt.Errorf("exchange: %s: %w: no peer in the DHT has it (%d asked)%w", r.d.digest, ErrNoProvider, len(r.provs), notExist{})
	}
	return fmt.Errorf("exchange: %s: every provider failed: %w", r.d.digest, errors.Join(r.errs...))
}

// notExist adds fs.ErrNotExist to an error's chain without a word.
type notExist struct{}

func (notExist) Error() string { return "" }
func (notExist) Unwrap() error { return fs.ErrNotExist }

// result takes a worker's answer for chunk c from p.
func (r *round) result(c int64, p *provider, b []byte, err error) {
	x, digest := r.x, r.d.digest
	// b goes back to the pool once both the Writer (which may hold it to
	// hash it in order) and this round (unless it keeps it to share) are
	// done with it.
	var refs atomic.Int32
	refs.Store(2)
	release := func() {
		if refs.Add(-1) == 0 {
			x.freeChunk(b)
		}
	}
	if err == nil {
		_, err = r.w.WriteAtLent(b, c*r.d.chunk, release)
		if err != nil {
			err = fmt.Errorf("%w: %w", errLocal, err)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	// This worker looks for its next chunk itself; one waiting worker may
	// take what it freed (a provider's slot, a chunk put back); all look
	// again when the last chunk is in.
	defer func() {
		if r.left == 0 {
			r.broadcastLocked()
			return
		}
		select {
		case r.kick <- struct{}{}:
		default:
		}
	}()
	p.inflight--
	var pe *PeerError
	switch {
	case err == nil:
		x.chunks.Add(1)
		r.fps[c] = maphash.Bytes(x.seed, b)
		r.from[c] = p.id
		r.left--
		p.sent = true
		p.fails, p.streak = 0, 0
		if !r.d.keep(c, b) {
			release() // written, and not kept to share
		}
		return
	case errors.Is(err, errLocal):
		r.errs = append(r.errs, err)
	case errors.As(err, &pe) && pe.Status == statusBusy && pe.have != nil:
		x.busy.Add(1)
		p.notYet[c] = time.Now()
		if pe.chunk == r.d.chunk {
			p.have, p.haveAt = pe.have, time.Now()
		}
		r.spreadLocked()
		r.putBackLocked(c)
		return
	case errors.As(err, &pe) && pe.Status == statusBusy:
		// Busy serving others: back off, longer each time in a row, so
		// that a seed many peers want is not kept busy saying so.
		x.busy.Add(1)
		p.notYet[c] = time.Now()
		wait := busyWait << min(p.streak, 5)
		p.streak++
		p.busy = time.Now().Add(wait/2 + rand.N(wait))
		r.spreadLocked()
		r.putBackLocked(c)
		return
	case errors.As(err, &pe) && pe.Status == statusNotFound:
		p.gone = true
		r.notHere++
	case errors.Is(err, errViolation):
		p.gone = true
		x.ban(digest, p.id, err)
		r.errs = append(r.errs, fmt.Errorf("peer %s: %w", p.id, err))
	default:
		x.failed.Add(1)
		p.fails++
		x.log.Debug("chunk fetch failed", "digest", digest, "chunk", c, "peer", p.id.String(), "err", err)
		if p.fails >= 2 {
			p.gone = true
		}
		r.errs = append(r.errs, fmt.Errorf("peer %s: chunk %d: %w", p.id, c, err))
	}
	if p.gone && r.usableLocked() == 0 {
		r.lostAt = r.passes
	}
	r.putBackLocked(c)
}

// putBackLocked makes chunk c pending again: first in an in-order round,
// where the hash of the chunks after it waits for it.
func (r *round) putBackLocked(c int64) {
	if r.spread {
		r.pending = append(r.pending, c)
		return
	}
	r.pending = slices.Insert(r.pending, 0, c)
}

// errLocal marks an error of this node (its store), not of a peer.
var errLocal = errors.New("local")

// work runs one worker of the round.
func (r *round) work(ctx context.Context) error {
	for {
		c, p, err := r.next(ctx)
		if err != nil || c < 0 {
			return err
		}
		off := c * r.d.chunk
		req := blobRequest{sum: r.d.sum, offset: uint64(off), length: uint32(min(r.d.chunk, r.d.size-off))}
		size, b, err := r.x.fetchChunk(ctx, p.id, req)
		if err == nil && size != r.d.size {
			err = fmt.Errorf("%w: says the blob is %d bytes, not %d", errViolation, size, r.d.size)
		}
		r.result(c, p, b, err)
		if errors.Is(err, errLocal) {
			return err
		}
	}
}

// discover adds the blob's providers from the DHT to the round until ctx
// is done: a search now, again a second after each, and at once when the
// round runs out of providers.
func (r *round) discover(ctx context.Context) {
	key := keyOf(r.d.sum)
	r.x.waitRoutable(ctx)
	for {
		r.mu.Lock()
		r.searching = true
		r.mu.Unlock()
		for ai := range r.x.dht.FindProvidersAsync(ctx, key, 0) {
			if ai.ID == r.x.h.ID() {
				continue
			}
			if len(ai.Addrs) > 0 {
				r.x.h.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
			}
			r.add(ai.ID)
		}
		r.mu.Lock()
		r.searching = false
		r.passes++
		r.broadcastLocked()
		r.mu.Unlock()
		// Search again soon at first (peers fetching the same new blob
		// announce themselves as they start), then less often.
		wait := min(searchFirst<<min(r.passes, 8), searchMax)
		for {
			select {
			case <-ctx.Done():
				return
			case <-r.needMore:
			case <-time.After(wait):
				r.mu.Lock()
				enough := r.usableLocked() >= maxProviders*r.x.opts.Parallel
				r.mu.Unlock()
				if enough { // enough providers: search again only when they fail
					continue
				}
			}
			break
		}
	}
}

// run fetches every chunk; then Commit checks the digest.
func (r *round) run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if !r.fixed {
		go r.discover(ctx)
	}
	workers := min(int64(r.x.opts.Parallel), r.n)
	errs := make(chan error, workers)
	for range workers {
		go func() { errs <- r.work(ctx) }()
	}
	var first error
	for range workers {
		if err := <-errs; err != nil && first == nil {
			first = err
			cancel()
		}
	}
	if first != nil {
		r.w.Abort()
		return first
	}
	return r.w.Commit()
}

// fetchChunked fetches a blob of known size in chunks from its providers.
// If the whole does not match its digest, one provider at a time sends
// the whole blob again: one whose blob does not match sent wrong bytes;
// once one matches, every provider whose chunks differed from it did.
func (x *Exchange) fetchChunked(ctx context.Context, d *download) error {
	create := func() (*store.Writer, error) {
		w, err := x.store.Create(d.digest, d.size)
		if err != nil {
			return nil, fmt.Errorf("exchange: fetching %s: %w", d.digest, err)
		}
		return w, nil
	}
	w, err := create()
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	// Peers fetching it too find this node while it fetches.
	d.announced = make(chan error, 1)
	go func() {
		pctx, cancel := context.WithTimeout(x.ctx, time.Minute)
		defer cancel()
		d.announced <- x.Provide(pctx, d.digest)
	}()
	r := x.newRound(d, w)
	err = r.run(ctx)
	if err == nil || !isDigestError(err) {
		return err
	}
	// Blame: the chunks of some provider were wrong.
	d.forget()
	x.log.Warn("a fetched blob does not match its digest: asking each provider for all of it", "digest", d.digest, "err", err)
	tried := map[peer.ID]bool{}
	for {
		var p peer.ID
		for _, q := range r.from { // providers that sent chunks first
			if !tried[q] && !x.isBanned(d.digest, q) {
				p = q
				break
			}
		}
		if p == "" {
			for q := range r.provs {
				if !tried[q] && !x.isBanned(d.digest, q) {
					p = q
					break
				}
			}
		}
		if p == "" {
			return fmt.Errorf("exchange: %s: no provider sent the right bytes: %w", d.digest, err)
		}
		tried[p] = true
		w, cerr := create()
		if cerr != nil {
			return cerr
		}
		one := x.newRound(d, w)
		one.fixed = true
		one.add(p)
		err = one.run(ctx)
		switch {
		case err == nil:
			wrong := map[peer.ID][]int{}
			for c, q := range r.from {
				if r.fps[c] != one.fps[c] && q != p {
					wrong[q] = append(wrong[q], c)
				}
			}
			for q, cs := range wrong {
				x.ban(d.digest, q, fmt.Errorf("%d chunks (the first: %d) differ from the blob that matched its digest", len(cs), cs[0]))
			}
			return nil
		case isDigestError(err):
			x.ban(d.digest, p, err)
		case ctx.Err() != nil:
			return err
		}
	}
}

// fetchWhole fetches a blob of unknown size whole from one provider at a
// time, at most MaxUnknownSize bytes of it.
func (x *Exchange) fetchWhole(ctx context.Context, d *download) error {
	key := keyOf(d.sum)
	x.waitRoutable(ctx)
	tried := map[peer.ID]bool{}
	var errs []error
	notHere, asked := 0, 0
	for pass := 0; pass < 2; pass++ {
		for ai := range x.dht.FindProvidersAsync(ctx, key, 0) {
			if ai.ID == x.h.ID() || tried[ai.ID] || x.isBanned(d.digest, ai.ID) {
				continue
			}
			tried[ai.ID] = true
			asked++
			if len(ai.Addrs) > 0 {
				x.h.Peerstore().AddAddrs(ai.ID, ai.Addrs, peerstore.TempAddrTTL)
			}
			err := x.fetchWholeFrom(ctx, d, ai.ID)
			if err == nil {
				return nil
			}
			var pe *PeerError
			switch {
			case errors.As(err, &pe) && pe.Status == statusNotFound:
				notHere++
			case errors.Is(err, errViolation), isDigestError(err):
				x.ban(d.digest, ai.ID, err)
			}
			errs = append(errs, fmt.Errorf("peer %s: %w", ai.ID, err))
			if ctx.Err() != nil {
				return fmt.Errorf("exchange: fetching %s: %w", d.digest, ctx.Err())
			}
		}
	}
	if notHere == asked {
		return fmt.Errorf("exchange: %s: %w: no peer in the DHT has it (%d asked)%w", d.digest, ErrNoProvider, asked, notExist{})
	}
	return fmt.Errorf("exchange: %s: every provider failed: %w", d.digest, errors.Join(errs...))
}

// fetchWholeFrom streams the whole blob from p into the store.
func (x *Exchange) fetchWholeFrom(ctx context.Context, d *download, p peer.ID) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := x.h.NewStream(ctx, p, BlobProtocol)
	if err != nil {
		return err
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	st.SetDeadline(time.Now().Add(x.opts.PeerTimeout))
	req := blobRequest{sum: d.sum, length: uint32(min(x.opts.MaxUnknownSize+1, MaxRequestLength))}
	if err := writeBlobRequest(bufio.NewWriterSize(st, 64), req); err != nil {
		st.Reset()
		return err
	}
	st.CloseWrite()
	br := bufio.NewReaderSize(st, 64<<10)
	size, n, err := readBlobHeader(br, req)
	if err != nil {
		st.Reset()
		return err
	}
	if size > x.opts.MaxUnknownSize {
		st.Reset()
		return fmt.Errorf("%w: the blob is %d bytes, over the %d byte limit of a blob of unknown size (Options.MaxUnknownSize)", ErrTooLarge, size, x.opts.MaxUnknownSize)
	}
	if n != size {
		st.Reset()
		return fmt.Errorf("%w: %d of %d bytes sent", errViolation, n, size)
	}
	// PeerTimeout for each ChunkSize of it.
	body := &deadlineReader{r: io.LimitReader(br, n), st: st, every: x.opts.ChunkSize, timeout: x.opts.PeerTimeout}
	if err := x.store.Put(ctx, d.digest, size, body); err != nil {
		st.Reset()
		return err
	}
	x.fetched.Add(n)
	return nil
}

// isDigestError says whether err is the store's digest mismatch.
func isDigestError(err error) bool {
	var de *store.DigestError
	return errors.As(err, &de)
}

// deadlineReader moves a stream's deadline on by timeout after every
// every bytes read.
type deadlineReader struct {
	r       io.Reader
	st      interface{ SetReadDeadline(time.Time) error }
	every   int64
	timeout time.Duration
	read    int64
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	n, err := d.r.Read(p)
	before := d.read / d.every
	d.read += int64(n)
	if d.read/d.every != before {
		d.st.SetReadDeadline(time.Now().Add(d.timeout))
	}
	return n, err
}
