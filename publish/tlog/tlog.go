// Package tlog is the transparency log of pyrsia-build: an append-only,
// durable RFC 6962 Merkle log of entries (opaque bytes), stored and served
// as C2SP tlog-tiles, with checkpoints as C2SP tlog-checkpoint signed notes.
//
// # Writing
//
// [Log.Append] queues an entry; one writer goroutine takes every queued
// entry as a batch, writes the batch to the write-ahead log with a single
// fdatasync (group commit), and only then acknowledges each entry with its
// index. It then integrates the batch into the tree: entry bundles and hash
// tiles are written as they fill. A bounded queue makes producers wait when
// the writer falls behind.
//
// [Log.Publish] signs a candidate checkpoint at the current size, after
// writing the partial tiles of that size, and starts syncing them. A
// candidate is not stored nor served: the caller has it cosigned (while
// the tiles are synced) and hands the cosigned note to [Log.Commit], which
// waits for those tiles to be durable, so that everything a committed
// checkpoint commits to can be fetched, checks the note with
// [Options.CheckFinal], stores it as DIR/checkpoint and serves it. A candidate that is never committed (the
// cosigners were away, the process stopped) is simply published again: a
// later Publish at the same or a bigger size makes a new one.
//
// # Reading
//
// [Log.Handler] serves only what the committed checkpoint covers: its
// checkpoint, the tiles and entries below its size, proofs up to its size.
// The Go methods [Log.Entry], [Log.ReadTile], [Log.InclusionProof] and
// [Log.ConsistencyProof] also reach the latest candidate, for the log's
// owner, who needs them to have a candidate cosigned.
//
// [Options.ReadOnly] opens a log for reading only (see there).
//
// # On disk
//
//	DIR/checkpoint                 the latest checkpoint (signed note)
//	DIR/tile/<L>/<N>[.p/<W>]       hash tiles
//	DIR/tile/entries/<N>[.p/<W>]   entry bundles
//	DIR/wal/<first index>.wal      write-ahead log segments
//
// The tile files are a deterministic function of the entries, so replicas
// that apply the same entries in the same order hold byte-identical tiles.
// A static HTTP server pointed at DIR serves the log; so does [Log.Handler].
//
// # Recovery
//
// [Open] replays the whole log once: it reads every entry (entry bundles,
// then the write-ahead log), recomputes every hash tile and compares it with
// the one on disk, cuts off a torn write-ahead-log tail (never acknowledged),
// writes again the newest write-ahead-log segment and the tiles that the
// write-ahead log still covers (they may not have reached the disk, even
// when they read back right: a failed sync leaves pages marked clean),
// rechecks the partial tiles of
// older checkpoints, and checks the checkpoint's root. A tile that was
// durable and does not match is reported, never served.
//
// Recovery never destroys an acknowledged entry: a record that does not read
// back in the middle of the newest segment (a valid record follows it), or
// one below the checkpoint's size, stops Open with a [CorruptError] naming
// the segment and the offset, and the segment is left as it is. Only a tail
// that nothing valid follows and that no checkpoint covers is cut off.
// Memory stays constant in the number of entries: only the tree's right edge
// is kept.
package tlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	fmtlog "github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"

	"github.com/pyrsia/pyrsia-build/publish/witness"
)

// ErrClosed is returned by operations on a closed log. Use errors.Is.
var ErrClosed = errors.New("tlog: log is closed")

// CorruptError reports stored data that does not read back as written.
type CorruptError struct {
	Path string // the file, relative to the log folder
	Err  error
	Hint string // what to do; a default hint if empty
}

func (e *CorruptError) Error() string {
	hint := e.Hint
	if hint == "" {
		hint = "restore the file from another build node (their tiles are byte-identical) and start again"
	}
	return fmt.Sprintf("tlog: %s is damaged: %v; the log will not start on damaged data: %s", e.Path, e.Err, hint)
}

// walHint is the advice for a damaged write-ahead log: its records are the
// only copy of entries not yet in tiles on this node.
const walHint = "do not delete or truncate the segment (it holds acknowledged entries); restore the log folder from another build node that holds these entries, then start again"

// ErrReadOnly is returned by the writing methods of a log opened with
// [Options.ReadOnly]. Use errors.Is.
var ErrReadOnly = errors.New("tlog: log is open read-only")

func (e *CorruptError) Unwrap() error { return e.Err }

// Options configure [Open].
type Options struct {
	// Dir is the log's folder; it is created if missing.
	Dir string
	// FS, if set, stores the log instead of the folder Dir on disk (Dir
	// then only names the log in messages, and no lock is taken: the FS
	// must not be shared by two writers). Tests use it to inject faults.
	FS FS
	// Origin is the first line of every checkpoint, naming the log.
	Origin string
	// Signer signs checkpoints. It may be nil for a log that is only
	// appended to and read (checkpoints then cannot be published).
	Signer note.Signer
	// MaxBatch bounds the entries written with one fsync (default 4096).
	MaxBatch int
	// QueueSize bounds the appends waiting for the writer (default 8192).
	QueueSize int
	// SegmentSize is the write-ahead log size at which a new segment starts
	// and the tiles are synced (default 64 MiB).
	SegmentSize int64
	// Visit, if set, is called at Open for every entry of the log in order,
	// for example to rebuild an index.
	Visit func(index uint64, entry []byte) error
	// Logger receives recovery and repair messages (default slog.Default()).
	Logger *slog.Logger
	// CheckFinal, if set, is called by [Log.Commit] with the cosigned note;
	// a checkpoint is stored and served only if it returns nil. It is
	// where the caller's finality rule (a cosigner threshold) goes.
	CheckFinal func(signed []byte) error
	// ReadOnly opens the log for reading: Open writes, truncates, creates
	// and deletes nothing, and takes no lock, so a reader never blocks a
	// running writer and a writer never waits for a reader. The folder
	// must hold a log. Open replays the log as the writer does, but a torn
	// write-ahead-log tail is skipped rather than cut, and tiles that the
	// writer has not yet made durable are recomputed and kept in memory.
	// The log is read as of Open: the checkpoint then on disk is the one
	// served, whatever the writer publishes later. If the writer retires
	// segments during Open, Open may fail with an error; open again. The
	// writing methods return [ErrReadOnly].
	ReadOnly bool
}

// Log is an open transparency log. Its methods are safe for concurrent use.
type Log struct {
	lock       *os.File // holds an exclusive flock on DIR/LOCK while open; nil if read-only
	opts       Options
	fsys       FS
	tiles      tileStore
	cache      *tileCache // tiles and entry bundles as read
	levelCache *tileCache // hash tiles with their inner levels, for proofs

	queue   chan *appendReq
	publish chan chan publishResult
	done    chan struct{}
	wg      sync.WaitGroup
	closeMu sync.RWMutex // held for reading while queueing; Close takes it to stop new appends
	closed  bool

	size atomic.Uint64              // durable entries
	cp   atomic.Pointer[Checkpoint] // committed: stored and served
	cand atomic.Pointer[Checkpoint] // the latest candidate, or nil
	cpMu sync.Mutex                 // orders Publish and Commit
	// synced: the partial tiles that the last successful tile sync made
	// durable (used by one tileSync at a time: each waits for the one
	// before). A partial tile is named by its width, and tiles are a
	// function of the entries, so one that was synced holds the same
	// bytes until its full tile replaces it: it is not synced again.
	synced map[TileID]bool
	// syncFailures counts the tile syncs that failed. An fsync that
	// failed may leave the pages it did not write marked clean (Linux,
	// after EIO): a later fsync of the same file succeeds and writes
	// nothing. So after a failure the writer forgets which partial tiles
	// it wrote (written) and writes them again, as new files, from memory,
	// and synced is forgotten: the next sync syncs every one of them.
	syncFailures atomic.Uint64
	// candSync is the sync of the partial tiles of cand, lastSync the
	// latest sync started (guarded by cpMu); syncs counts the running
	// ones, which Close waits for.
	candSync, lastSync *tileSync
	syncs              sync.WaitGroup

	overlay map[TileID][]byte // read-only: tiles recomputed at Open, not yet on disk

	// testHookBatch, if set, runs in the writer before each batch.
	testHookBatch func()

	// Owned by the writer goroutine.
	b       *builder
	wal     *walWriter
	err     error         // a write failure: the log accepts no more appends
	syncing chan struct{} // closed when the last background tile sync ends
	// retireErr is set by a background tile sync (retireSegments) that
	// failed: the full tiles it did not write may be lost while a later
	// sync succeeds (the pages marked clean), so no segment may be
	// retired after it. The writer then stops the log (see checkRetire).
	retireErr atomic.Pointer[error]
	// written: the partial tiles this process has written at the last
	// publish. One of them still at the right edge is not written again
	// (a rewrite is a new file to sync). writtenAt is the value of
	// syncFailures when they were written: a failure since then makes
	// them be written again.
	written   map[TileID]bool
	writtenAt uint64
}

// Checkpoint is a published tree head: the checkpoint body and its signed
// note (with any cosignatures).
type Checkpoint struct {
	fmtlog.Checkpoint
	Note []byte
}

// appendReq is one Append (one entry) or AppendBatch (entries, placed
// together in order).
type appendReq struct {
	entries [][]byte
	done    chan appendResult
}

type appendResult struct {
	index uint64 // of the first entry
	err   error
}

// tileSync makes the partial tiles of one candidate durable, in the
// background: Publish starts it, Commit waits for it.
type tileSync struct {
	done chan struct{}
	err  error // set before done is closed
	// failures is, once it failed, the count of tile syncs that failed
	// (Log.syncFailures) with this one: partial tiles written before it
	// (publishResult.failures below it) must be written again.
	failures uint64
}

func (t *tileSync) wait() error {
	<-t.done
	return t.err
}

// failed reports whether t has ended with an error.
func (t *tileSync) failed() bool {
	select {
	case <-t.done:
		return t.err != nil
	default:
		return false
	}
}

type publishResult struct {
	size     uint64
	root     []byte
	partials []TileID
	failures uint64 // Log.syncFailures when the partials were written
	err      error
}

// Open opens the log in opts.Dir, creating it if needed, and recovers it
// (see the package documentation).
func Open(ctx context.Context, opts Options) (*Log, error) {
	if opts.Dir == "" {
		return nil, errors.New("tlog: no folder given")
	}
	if opts.Origin == "" || strings.ContainsAny(opts.Origin, "\n") {
		return nil, fmt.Errorf("tlog: origin %q must be one non-empty line", opts.Origin)
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 4096
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = 8192
	}
	if opts.SegmentSize <= 0 {
		opts.SegmentSize = 64 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	fsys := opts.FS
	if fsys == nil {
		fsys = DiskFS(opts.Dir)
	}
	var lock *os.File
	if opts.ReadOnly {
		if ok, err := fsys.Exists(walDir); err != nil || !ok {
			return nil, fmt.Errorf("tlog: %s is not a log folder (it has no wal folder)", opts.Dir)
		}
	} else {
		if err := fsys.MkdirAll(walDir); err != nil {
			return nil, fmt.Errorf("tlog: creating log folder: %w", err)
		}
		if opts.FS == nil {
			var err error
			if lock, err = lockDir(opts.Dir); err != nil {
				return nil, err
			}
		}
	}
	l := &Log{
		lock:       lock,
		opts:       opts,
		fsys:       fsys,
		tiles:      tileStore{fsys: fsys},
		cache:      newTileCache(64 << 20),
		levelCache: newTileCache(64 << 20),
		queue:      make(chan *appendReq, opts.QueueSize),
		publish:    make(chan chan publishResult),
		done:       make(chan struct{}),
	}
	if opts.ReadOnly {
		l.overlay = make(map[TileID][]byte)
	}
	if err := l.recover(ctx); err != nil {
		if lock != nil {
			lock.Close()
		}
		return nil, err
	}
	if opts.ReadOnly {
		l.closed = true // no appends
		return l, nil
	}
	l.b.full = l.tiles.write
	l.wg.Add(1)
	go l.writer()
	return l, nil
}

// Close stops the writer after the queued appends are written: an append
// that was queued when Close began is written and acknowledged (or failed
// with the write error), never dropped. Appends after Close return
// [ErrClosed].
func (l *Log) Close() error {
	if l.opts.ReadOnly {
		return nil
	}
	l.closeMu.Lock()
	if l.closed {
		l.closeMu.Unlock()
		return nil
	}
	l.closed = true
	l.closeMu.Unlock()
	close(l.done)
	l.wg.Wait()
	// No Publish can start a tile sync now (the writer has stopped);
	// one holding cpMu has started its own.
	l.cpMu.Lock()
	l.syncs.Wait()
	l.cpMu.Unlock()
	err := l.wal.close()
	if l.lock != nil {
		l.lock.Close()
	}
	return err
}

// Size returns the number of durable (acknowledged) entries.
func (l *Log) Size() uint64 { return l.size.Load() }

// Origin returns the log's origin line.
func (l *Log) Origin() string { return l.opts.Origin }

// Checkpoint returns the latest committed checkpoint, or nil if none is.
func (l *Log) Checkpoint() *Checkpoint { return l.cp.Load() }

// Candidate returns the latest candidate checkpoint not yet committed, or
// nil.
func (l *Log) Candidate() *Checkpoint { return l.cand.Load() }

// Append adds an entry and returns its index once the entry is durable.
func (l *Log) Append(ctx context.Context, entry []byte) (uint64, error) {
	if l.opts.ReadOnly {
		return 0, ErrReadOnly
	}
	if len(entry) > MaxEntrySize {
		return 0, fmt.Errorf("tlog: entry of %d bytes is over the %d byte limit", len(entry), MaxEntrySize)
	}
	// The log keeps the bytes after Append returns (tiles are written
	// after the acknowledgement): a copy, so that the caller may reuse its
	// buffer.
	return l.enqueue(ctx, &appendReq{entries: [][]byte{bytes.Clone(entry)}, done: make(chan appendResult, 1)})
}

// AppendBatch adds entries in their order, at consecutive indices, and
// returns the index of the first once all of them are durable: they are
// written to the write-ahead log together, with one fsync (and with other
// appends queued at the same time). Either all of them are acknowledged or
// none is; after a failure, a restart recovers what was durable, which may
// be a prefix of the batch (as for concurrent Appends). An empty batch
// returns the log's size and writes nothing.
func (l *Log) AppendBatch(ctx context.Context, entries [][]byte) (uint64, error) {
	if l.opts.ReadOnly {
		return 0, ErrReadOnly
	}
	if len(entries) == 0 {
		return l.Size(), nil
	}
	req := &appendReq{entries: make([][]byte, len(entries)), done: make(chan appendResult, 1)}
	for i, e := range entries {
		if len(e) > MaxEntrySize {
			return 0, fmt.Errorf("tlog: entry %d of the batch, of %d bytes, is over the %d byte limit (nothing appended)", i, len(e), MaxEntrySize)
		}
		req.entries[i] = bytes.Clone(e)
	}
	return l.enqueue(ctx, req)
}

// enqueue hands req to the writer and waits for its outcome.
func (l *Log) enqueue(ctx context.Context, req *appendReq) (uint64, error) {
	l.closeMu.RLock()
	if l.closed {
		l.closeMu.RUnlock()
		return 0, ErrClosed
	}
	select {
	case l.queue <- req:
	case <-ctx.Done():
		l.closeMu.RUnlock()
		return 0, ctx.Err()
	}
	l.closeMu.RUnlock()
	// Once queued, the entry will be written or failed by the writer. If
	// ctx ends first, the caller learns only that the outcome is unknown.
	select {
	case r := <-req.done:
		return r.index, r.err
	case <-ctx.Done():
		return 0, fmt.Errorf("tlog: append outcome unknown: %w", ctx.Err())
	}
}

// writer is the single goroutine that writes the log.
func (l *Log) writer() {
	defer l.wg.Done()
	batch := make([]*appendReq, 0, l.opts.MaxBatch)
	entries := make([][]byte, 0, l.opts.MaxBatch)
	for {
		batch, entries = batch[:0], entries[:0]
		select {
		case <-l.done:
			l.drain(batch, entries)
			return
		case reply := <-l.publish:
			reply <- l.publishPartials()
			continue
		case req := <-l.queue:
			batch = append(batch, req)
		}
		// A batch holds MaxBatch entries at most, or one AppendBatch
		// beyond it.
		n := len(batch[0].entries)
	collect:
		for n < l.opts.MaxBatch {
			select {
			case req := <-l.queue:
				batch = append(batch, req)
				n += len(req.entries)
			default:
				break collect
			}
		}
		l.writeBatch(batch, entries)
	}
}

// drain writes the appends still queued at Close. No append is queued
// after Close has set closed, so the queue only empties.
func (l *Log) drain(batch []*appendReq, entries [][]byte) {
	for {
		batch, entries = batch[:0], entries[:0]
		n := 0
	collect:
		for n < l.opts.MaxBatch {
			select {
			case req := <-l.queue:
				batch = append(batch, req)
				n += len(req.entries)
			default:
				break collect
			}
		}
		if len(batch) == 0 {
			return
		}
		l.writeBatch(batch, entries)
	}
}

func (l *Log) writeBatch(batch []*appendReq, entries [][]byte) {
	if l.testHookBatch != nil {
		l.testHookBatch()
	}
	l.checkRetire()
	if l.err != nil {
		for _, r := range batch {
			r.done <- appendResult{err: l.err}
		}
		return
	}
	first := l.b.size()
	for _, r := range batch {
		entries = append(entries, r.entries...)
	}
	if err := l.wal.write(first, entries); err != nil {
		l.fail(err)
		for _, r := range batch {
			r.done <- appendResult{err: l.err}
		}
		return
	}
	l.size.Store(first + uint64(len(entries)))
	next := first
	for _, r := range batch {
		r.done <- appendResult{index: next}
		next += uint64(len(r.entries))
	}
	for _, e := range entries {
		if err := l.b.add(e); err != nil {
			l.fail(err)
			return
		}
	}
	if l.wal.size >= l.opts.SegmentSize {
		if err := l.rotate(); err != nil {
			l.fail(err)
		}
	}
}

// checkRetire stops the log once a background tile sync failed: a
// restart rewrites the tiles the write-ahead log covers (every segment
// is still there) before it retires any. Run by the writer goroutine.
func (l *Log) checkRetire() {
	if p := l.retireErr.Load(); p != nil && l.err == nil {
		l.fail(fmt.Errorf("making the tiles durable: %w", *p))
	}
}

// fail stops appends after a write error: what is durable stays durable,
// and a restart recovers.
func (l *Log) fail(err error) {
	l.err = fmt.Errorf("tlog: log stopped accepting appends after a write failure (restart to recover): %w", err)
	l.opts.Logger.Error("tlog write failure", "dir", l.opts.Dir, "err", err)
}

// rotate starts a new write-ahead-log segment at the start of the current
// entry bundle. In the background it then makes every tile written so far
// durable and deletes the segments that the tiles now cover, so that the
// filesystem sync does not stall appends.
func (l *Log) rotate() error {
	size := l.b.size()
	start := size / TileWidth * TileWidth
	if start <= l.wal.start {
		return nil // the current segment still holds the incomplete bundle's only copy
	}
	if l.syncing != nil {
		select {
		case <-l.syncing:
		default:
			return nil // the last sync is still running: rotate at the next batch
		}
	}
	if l.checkRetire(); l.err != nil {
		return nil // stopped: nothing more is retired
	}
	pending := l.b.pendingEntries()
	w, err := createWALSegment(l.fsys, walDir, start)
	if err != nil {
		return err
	}
	if len(pending) > 0 {
		if err := w.write(start, pending); err != nil {
			w.close()
			l.fsys.Remove(path.Join(walDir, walSegmentName(start)))
			return err
		}
	}
	old := l.wal
	l.wal = w
	old.close()
	done := make(chan struct{})
	l.syncing = done
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		defer close(done)
		if err := l.retireSegments(start); err != nil {
			// The segments stay; a later rotation or a restart retires them.
			l.opts.Logger.Warn("tlog: retiring write-ahead-log segments", "dir", walDir, "err", err)
		}
	}()
	return nil
}

// retireSegments syncs the tiles and deletes the segments before start.
// A failed sync stops the log (retireErr): the segments are kept.
func (l *Log) retireSegments(start uint64) error {
	if err := l.fsys.SyncAll(); err != nil {
		err = fmt.Errorf("tlog: syncing the tiles: %w", err)
		l.retireErr.Store(&err)
		return err
	}
	starts, err := listWALSegments(l.fsys, walDir)
	if err != nil {
		return err
	}
	for _, s := range starts {
		if s < start {
			if err := l.fsys.Remove(path.Join(walDir, walSegmentName(s))); err != nil {
				return err
			}
		}
	}
	return l.fsys.SyncDir(walDir)
}

// walDir is the write-ahead log's folder in the log's FS.
const walDir = "wal"

// publishPartials writes the partial tiles of the current size (not those
// it wrote at the last publish, which are unchanged) and returns the size,
// the root and every partial tile of that size (the caller syncs them,
// outside the writer goroutine). Run by the writer goroutine.
func (l *Log) publishPartials() publishResult {
	if l.checkRetire(); l.err != nil {
		return publishResult{err: l.err}
	}
	failures := l.syncFailures.Load()
	if failures != l.writtenAt {
		l.written, l.writtenAt = nil, failures // a sync failed: write every partial tile again
	}
	var ids []TileID
	written := make(map[TileID]bool)
	for id, data := range l.b.partials() {
		if !l.written[id] {
			if err := l.tiles.write(id, data); err != nil {
				return publishResult{err: err}
			}
		}
		written[id] = true
		ids = append(ids, id)
	}
	l.written = written
	root, err := l.b.root()
	return publishResult{size: l.b.size(), root: root, partials: ids, failures: failures, err: err}
}

// syncPartials makes the partial tiles of a candidate durable before it can
// be committed, but for those that the last successful call synced (all
// of them after a failure: see syncFailures). A
// partial tile that a full one has replaced meanwhile is
// gone; the full tile is covered by the write-ahead log until it is synced.
//
// The files are synced at once, then their folders at once: the
// filesystem folds concurrent syncs into fewer journal commits, so a
// candidate waits for about two syncs rather than one per tile and folder.
func (l *Log) syncPartials(ids []TileID) (err error) {
	defer func() {
		if err != nil {
			l.synced = nil
		}
	}()
	dirs := make(map[string]bool)
	synced := make(map[TileID]bool, len(ids))
	var todo []TileID
	for _, id := range ids {
		synced[id] = true
		if !l.synced[id] {
			todo = append(todo, id) // not synced by an earlier Publish, or changed since
		}
	}
	errs := make([]error, len(todo))
	present := make([]bool, len(todo))
	parallel(len(todo), func(i int) {
		name := todo[i].Path()
		f, err := l.fsys.Append(name, false, 0)
		if errors.Is(err, fs.ErrNotExist) {
			return
		}
		if err != nil {
			errs[i] = fmt.Errorf("tlog: syncing %s: %w", todo[i], err)
			return
		}
		err = f.Sync()
		f.Close()
		if err != nil {
			errs[i] = fmt.Errorf("tlog: syncing %s: %w", todo[i], err)
			return
		}
		present[i] = true
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	var dirList []string
	for i, id := range todo {
		if d := path.Dir(id.Path()); present[i] && !dirs[d] {
			dirs[d] = true
			dirList = append(dirList, d)
		}
	}
	errs = make([]error, len(dirList))
	parallel(len(dirList), func(i int) {
		if err := l.fsys.SyncDir(dirList[i]); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs[i] = fmt.Errorf("tlog: %w", err)
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	l.synced = synced
	return nil
}

// parallel runs fn(0), ..., fn(n-1) at once and waits for all of them.
func parallel(n int, fn func(i int)) {
	if n == 1 {
		fn(0)
		return
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fn(i)
		}()
	}
	wg.Wait()
}

// Publish makes a candidate checkpoint at the current size: it writes the
// partial tiles of that size, starts syncing them (Commit waits for that),
// signs the checkpoint and returns it. The candidate is neither stored nor served until [Log.Commit] is given
// its cosigned note. If the size has not changed since the last committed
// checkpoint, Publish returns that one; if it has not changed since the
// last candidate, that candidate. Publish may be called as often as
// wanted, for example after every append.
func (l *Log) Publish(ctx context.Context) (*Checkpoint, error) {
	if l.opts.ReadOnly {
		return nil, ErrReadOnly
	}
	if l.opts.Signer == nil {
		return nil, errors.New("tlog: no checkpoint signer configured")
	}
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	r, err := l.writePartials(ctx)
	if err != nil {
		return nil, err
	}
	if ls := l.lastSync; ls != nil && ls.failed() && r.failures < ls.failures {
		// A tile sync failed since these tiles were written: the writer
		// writes them again now that it sees the failure.
		if r, err = l.writePartials(ctx); err != nil {
			return nil, err
		}
	}
	if cur := l.cp.Load(); cur != nil && cur.Size == r.size {
		return cur, nil
	}
	if cur := l.cand.Load(); cur != nil && cur.Size == r.size {
		if l.candSync != nil && l.candSync.failed() {
			l.candSync = l.startSync(r) // try again
		}
		return cur, nil
	}
	body := fmtlog.Checkpoint{Origin: l.opts.Origin, Size: r.size, Hash: r.root}
	signed, err := note.Sign(&note.Note{Text: string(body.Marshal())}, l.opts.Signer)
	if err != nil {
		return nil, fmt.Errorf("tlog: signing checkpoint: %w", err)
	}
	// The partial tiles of this size are synced while the candidate is
	// being cosigned (its cosigners check it against their own replicas,
	// not these tiles), and before Commit stores it.
	cp := &Checkpoint{Checkpoint: body, Note: signed}
	l.cand.Store(cp)
	l.candSync = l.startSync(r)
	return cp, nil
}

// writePartials has the writer write the partial tiles of the current
// size (publishPartials).
func (l *Log) writePartials(ctx context.Context) (publishResult, error) {
	reply := make(chan publishResult, 1)
	select {
	case l.publish <- reply:
	case <-ctx.Done():
		return publishResult{}, ctx.Err()
	case <-l.done:
		return publishResult{}, ErrClosed
	}
	r := <-reply
	return r, r.err
}

// startSync starts syncing the partial tiles of r (syncPartials) once the
// sync started before it has ended. If that one failed after r's tiles
// were written, this one fails too, syncing nothing: a tile they share
// may have lost its data, and must be written again (the next Publish
// does) before a sync can make it durable. Called with cpMu held.
func (l *Log) startSync(r publishResult) *tileSync {
	ts := &tileSync{done: make(chan struct{})}
	prev := l.lastSync
	l.lastSync = ts
	l.syncs.Add(1)
	go func() {
		defer l.syncs.Done()
		defer close(ts.done)
		if prev != nil {
			<-prev.done // one at a time: they share l.synced
			if prev.err != nil && r.failures < prev.failures {
				ts.err = fmt.Errorf("%w (publish again: the tiles are written again before they are synced)", prev.err)
				ts.failures = prev.failures
				return
			}
		}
		if ts.err = l.syncPartials(r.partials); ts.err != nil {
			ts.failures = l.syncFailures.Add(1)
		}
	}()
	return ts
}

// Commit stores and serves a checkpoint: signed must be the note of the
// latest candidate from [Log.Publish] (or of the committed checkpoint, to
// add cosignatures to it), with the log's signature and any cosignatures.
// If [Options.CheckFinal] is set, it must accept signed. The checkpoint is
// durable when Commit returns.
func (l *Log) Commit(signed []byte) error {
	if l.opts.ReadOnly {
		return ErrReadOnly
	}
	l.cpMu.Lock()
	defer l.cpMu.Unlock()
	n, err := witness.OpenUnverified(signed)
	if err != nil {
		return fmt.Errorf("tlog: checkpoint to commit: %w", err)
	}
	var base *Checkpoint
	for _, c := range []*Checkpoint{l.cand.Load(), l.cp.Load()} {
		if c != nil && n.Text == string(c.Marshal()) {
			base = c
			break
		}
	}
	if base == nil {
		return errors.New("tlog: the note to commit is not the latest candidate checkpoint (publish again and have the new candidate cosigned)")
	}
	// The log's own signature must be there, as Publish made it.
	own, err := witness.OpenUnverified(base.Note)
	if err != nil {
		return fmt.Errorf("tlog: checkpoint size %d: %w", base.Size, err)
	}
	for _, s := range own.UnverifiedSigs {
		if !slices.Contains(n.UnverifiedSigs, s) {
			return fmt.Errorf("tlog: checkpoint size %d to commit lacks the log's signature", base.Size)
		}
	}
	if l.opts.CheckFinal != nil {
		if err := l.opts.CheckFinal(signed); err != nil {
			return fmt.Errorf("tlog: checkpoint size %d is not final: %w", base.Size, err)
		}
	}
	if base == l.cand.Load() && l.candSync != nil {
		if err := l.candSync.wait(); err != nil {
			return fmt.Errorf("tlog: checkpoint size %d: making its tiles durable: %w", base.Size, err)
		}
	}
	cp := &Checkpoint{Checkpoint: base.Checkpoint, Note: bytes.Clone(signed)}
	if err := l.fsys.WriteFile("checkpoint", cp.Note, true); err != nil {
		return fmt.Errorf("tlog: storing checkpoint: %w", err)
	}
	l.cp.Store(cp)
	if c := l.cand.Load(); c != nil && c.Size <= cp.Size {
		l.cand.Store(nil)
		l.candSync = nil
	}
	return nil
}

// parseCheckpointBody parses the checkpoint in a stored note without
// checking signatures (the log trusts its own folder), with the module's one
// checkpoint parser.
func parseCheckpointBody(b []byte) (*Checkpoint, error) {
	n, err := witness.OpenUnverified(b)
	if err != nil {
		return nil, err
	}
	cp, err := witness.ParseCheckpointText([]byte(n.Text))
	if err != nil {
		return nil, err
	}
	return &Checkpoint{Checkpoint: *cp, Note: b}, nil
}

// recover replays the log: see the package documentation.
func (l *Log) recover(ctx context.Context) error {
	dir := l.opts.Dir
	fsys := l.fsys
	log := l.opts.Logger
	ro := l.opts.ReadOnly

	var cp *Checkpoint
	if data, err := readLimited(fsys, "checkpoint", witness.MaxCheckpointSize); err == nil {
		if cp, err = parseCheckpointBody(data); err != nil {
			return &CorruptError{Path: "checkpoint", Err: err}
		}
		if cp.Origin != l.opts.Origin {
			return fmt.Errorf("tlog: %s holds the log %q, not %q", dir, cp.Origin, l.opts.Origin)
		}
	} else if errors.Is(err, errOverLimit) {
		return &CorruptError{Path: "checkpoint", Err: err}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("tlog: reading checkpoint: %w", err)
	}
	var cpSize uint64
	if cp != nil {
		cpSize = cp.Size
	}

	starts, err := listWALSegments(fsys, walDir)
	if err != nil {
		return fmt.Errorf("tlog: %w", err)
	}
	if len(starts) == 0 {
		// A new log, or one whose write-ahead log is gone.
		if ok, _ := fsys.Exists(TileID{Entries: true}.Path()); ok {
			return &CorruptError{Path: "wal", Err: errors.New("the write-ahead log is missing but tiles exist")}
		}
		if cp != nil && cp.Size > 0 {
			return &CorruptError{Path: "wal", Err: fmt.Errorf("the checkpoint commits to %d entries but there are none", cp.Size)}
		}
		if ro {
			l.b = newBuilder(nil)
			if cp != nil {
				l.cp.Store(cp)
			}
			return nil
		}
		starts = []uint64{0}
		w, err := createWALSegment(fsys, walDir, 0)
		if err != nil {
			return err
		}
		w.close()
	}
	synced := starts[0] // every tile covering only entries below this is durable

	var rootAtCP []byte
	var cpPartials map[TileID][]byte // the partial tiles at the checkpoint's size
	l.b = newBuilder(func(id TileID, data []byte) error {
		return l.checkTile(id, data, synced, cpSize)
	})
	add := func(index uint64, entry []byte) error {
		if err := l.b.add(entry); err != nil {
			return err
		}
		if l.opts.Visit != nil {
			if err := l.opts.Visit(index, entry); err != nil {
				return err
			}
		}
		if cp != nil && l.b.size() == cp.Size {
			if rootAtCP, err = l.b.root(); err != nil {
				return err
			}
			cpPartials = make(map[TileID][]byte)
			for id, data := range l.b.partials() {
				cpPartials[id] = bytes.Clone(data) // the builder reuses its buffers
			}
		}
		return nil
	}
	if cp != nil && cp.Size == 0 {
		rootAtCP = hasher.EmptyRoot()
	}

	// Entries below the first segment come from full entry bundles.
	if synced%TileWidth != 0 {
		return &CorruptError{Path: "wal/" + walSegmentName(synced), Err: errors.New("segment does not start at an entry bundle boundary"), Hint: walHint}
	}
	for n := uint64(0); n < synced/TileWidth; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		id := TileID{Entries: true, Index: n}
		data, err := l.tiles.read(id)
		if errors.Is(err, fs.ErrNotExist) {
			return &CorruptError{Path: id.Path(), Err: errors.New("the entry bundle is missing")}
		}
		if err != nil {
			return &CorruptError{Path: id.Path(), Err: err}
		}
		entries, err := parseBundle(data, TileWidth)
		if err != nil {
			return &CorruptError{Path: id.Path(), Err: err}
		}
		for i, e := range entries {
			if err := add(n*TileWidth+uint64(i), e); err != nil {
				return err
			}
		}
	}

	// Then the write-ahead log. Nothing is written until every segment has
	// been read and judged.
	var last int64
	var lastNext uint64 // the index after the newest segment's last record
	var cut *walDamage  // a torn tail of the newest segment, to cut off
	for i, start := range starts {
		seg := "wal/" + walSegmentName(start)
		if start > l.b.size() {
			return &CorruptError{Path: seg, Err: fmt.Errorf("entries %d to %d are missing", l.b.size(), start-1), Hint: walHint}
		}
		path := path.Join(walDir, walSegmentName(start))
		lastNext = start
		good, bad, err := readWALSegment(fsys, path, start, func(index uint64, data []byte) error {
			lastNext = index + 1
			if index < l.b.size() {
				return nil // also in an older segment (a rotation was cut short)
			}
			return add(index, data)
		})
		if err != nil {
			var ce *CorruptError
			if errors.As(err, &ce) {
				return err
			}
			return fmt.Errorf("tlog: replaying %s: %w", path, err)
		}
		if bad != nil {
			switch {
			case i != len(starts)-1:
				return &CorruptError{Path: seg, Err: fmt.Errorf("the record at offset %d (entry %d) does not read back, in a segment that a newer one follows", bad.offset, bad.index), Hint: walHint}
			case bad.nextValid >= 0:
				return &CorruptError{Path: seg, Err: fmt.Errorf("the record at offset %d (entry %d) does not read back, but a valid record (entry %d) follows at offset %d: the segment is damaged, not torn", bad.offset, bad.index, bad.nextIndex, bad.nextValid), Hint: walHint}
			case l.b.size() < cpSize:
				return &CorruptError{Path: seg, Err: fmt.Errorf("the record at offset %d (entry %d) does not read back, and the checkpoint commits to %d entries", bad.offset, bad.index, cpSize), Hint: walHint}
			}
			cut = bad
		}
		last = good
	}
	size := l.b.size()
	if cp != nil {
		if cp.Size > size {
			return &CorruptError{Path: "checkpoint", Err: fmt.Errorf("it commits to %d entries, the log holds %d", cp.Size, size)}
		}
		if string(rootAtCP) != string(cp.Hash) {
			return &CorruptError{Path: "checkpoint", Err: fmt.Errorf("its root at size %d differs from the entries' root", cp.Size)}
		}
	}
	// The partial tiles at the right edge, including those of older
	// checkpoints.
	for id, data := range l.b.partials() {
		if err := l.checkPartials(id, data, cpSize); err != nil {
			return err
		}
	}
	// A partial tile of the checkpoint that is gone (and not replaced by
	// its full tile) is made again: the checkpoint is served with it.
	for id, data := range cpPartials {
		full := id
		full.Width = 0
		if ok, _ := fsys.Exists(id.Path()); ok {
			continue
		}
		if ok, _ := fsys.Exists(full.Path()); ok {
			continue
		}
		if _, ok := l.overlay[full]; ok {
			continue
		}
		if err := l.repairTile(id, data); err != nil {
			return err
		}
	}
	if cp != nil {
		l.cp.Store(cp)
	}
	l.size.Store(size)
	newest := starts[len(starts)-1]
	if ro {
		if cut != nil {
			log.InfoContext(ctx, "tlog: skipping a torn write-ahead-log tail (read-only: left in place)", "segment", walSegmentName(newest), "offset", cut.offset)
		}
		log.InfoContext(ctx, "tlog: opened read-only", "dir", dir, "size", size)
		return nil
	}
	if cut != nil {
		path := path.Join(walDir, walSegmentName(newest))
		// Open cannot tell a torn append from an acknowledged record that
		// was damaged on disk, so it keeps what it cuts, durably, before
		// cutting: an operator can recover an entry from it.
		kept, err := keepCutTail(fsys, newest, cut.offset)
		if err != nil {
			return err
		}
		log.WarnContext(ctx, "tlog: cutting off a torn write-ahead-log tail (an append that was never acknowledged, or a damaged record)",
			"dir", dir, "segment", path, "offset", cut.offset, "entry", cut.index, "kept_in", kept)
		if err := fsys.Truncate(path, cut.offset); err != nil {
			return fmt.Errorf("tlog: truncating %s: %w", path, err)
		}
	}
	if lastNext < size {
		// A rotation was cut short (or failed) after creating the newest
		// segment and before copying the incomplete bundle's entries into
		// it: the older segment still has them. Complete the new segment
		// before appending to it, or its indexes would skip.
		if newest != size/TileWidth*TileWidth {
			return &CorruptError{Path: "wal/" + walSegmentName(newest), Err: fmt.Errorf("holds entries up to %d, the log has %d", lastNext, size), Hint: walHint}
		}
		log.WarnContext(ctx, "tlog: completing a write-ahead-log segment left by an interrupted rotation", "segment", walSegmentName(newest))
		if err := fsys.Truncate(path.Join(walDir, walSegmentName(newest)), 0); err != nil {
			return fmt.Errorf("tlog: %w", err)
		}
		w, err := openWALSegment(fsys, walDir, newest, 0)
		if err != nil {
			return err
		}
		if pending := l.b.pendingEntries(); len(pending) > 0 {
			if err := w.write(newest, pending); err != nil {
				w.close()
				return err
			}
		}
		l.wal = w
	} else {
		// The newest segment may hold records that a failed fsync left in
		// the page cache only (marked clean: they never reach the disk,
		// and an fsync after them does not write them), replayed above as
		// if durable: it is written again, durably, before it is appended
		// to, or a power cut would leave them damaged before acknowledged
		// records.
		seg := path.Join(walDir, walSegmentName(newest))
		data, err := fsys.ReadFile(seg)
		if err == nil {
			err = fsys.WriteFile(seg, data[:min(last, int64(len(data)))], true)
		}
		if err != nil {
			// A full or failing disk: the log is served as it is, and
			// takes no appends until a restart manages it.
			l.fail(fmt.Errorf("writing %s again: %w", seg, err))
		}
		if l.wal, err = openWALSegment(fsys, walDir, newest, last); err != nil {
			return err
		}
	}
	log.InfoContext(ctx, "tlog: opened", "dir", dir, "size", size)
	return nil
}

// keepCutTail copies the bytes of segment start from offset to its end to
// a new file wal/.cut-<segment>-<offset> (".1", ".2"... if that name is
// taken), made durable, and returns its name: "" when there is nothing to
// keep. Dot files are not segments: listWALSegments skips them.
func keepCutTail(fsys FS, start uint64, offset int64) (string, error) {
	seg := path.Join(walDir, walSegmentName(start))
	data, err := fsys.ReadFile(seg)
	if err != nil {
		return "", fmt.Errorf("tlog: reading %s: %w", seg, err)
	}
	if offset >= int64(len(data)) {
		return "", nil
	}
	base := path.Join(walDir, fmt.Sprintf(".cut-%s-%d", walSegmentName(start), offset))
	name := base
	for i := 1; ; i++ {
		ok, err := fsys.Exists(name)
		if err != nil {
			return "", fmt.Errorf("tlog: %w", err)
		}
		if !ok {
			break
		}
		name = fmt.Sprintf("%s.%d", base, i)
	}
	if err := fsys.WriteFile(name, data[offset:], true); err != nil {
		return "", fmt.Errorf("tlog: keeping the cut tail of %s in %s: %w", seg, name, err)
	}
	return name, nil
}

// checkTile is the builder's full-tile callback during recovery: a tile
// that covers only synced entries must be on disk and equal; a later one is
// rewritten if it is missing or differs (it may not have reached the disk).
// The partial versions of the tile left on disk are checked too.
//
// A writer writes every tile past the synced entries again, as a new
// file, even one that reads back right: after a failed sync the page
// cache may hold its bytes marked clean, never to reach the disk, and a
// later sync (before segments are retired) would not write them.
func (l *Log) checkTile(id TileID, data []byte, synced, cpSize uint64) error {
	same, err := l.tiles.same(id, data)
	if err != nil {
		return &CorruptError{Path: id.Path(), Err: err}
	}
	end := (id.Index + 1) * TileWidth << (TileHeight * uint(id.Level))
	if id.Entries {
		end = (id.Index + 1) * TileWidth
	}
	switch {
	case !same && end <= synced:
		if ok, _ := l.fsys.Exists(id.Path()); !ok {
			return &CorruptError{Path: id.Path(), Err: errors.New("the tile is missing")}
		}
		return &CorruptError{Path: id.Path(), Err: errors.New("its hashes differ from those of the entries")}
	case !same:
		if err := l.repairTile(id, data); err != nil {
			return err
		}
	case end > synced && !l.opts.ReadOnly && l.err == nil:
		if err := l.tiles.write(id, data); err != nil {
			// It reads back right: served as it is; no appends until a
			// restart manages to write it (and no segment is retired).
			l.fail(fmt.Errorf("writing %s again: %w", id, err))
		}
	}
	return l.checkPartials(id, data, cpSize)
}

// repairTile replaces a tile that had not reached the disk: on disk, or in
// memory for a read-only log.
func (l *Log) repairTile(id TileID, data []byte) error {
	if l.opts.ReadOnly {
		l.overlay[id] = bytes.Clone(data)
		return nil
	}
	l.opts.Logger.Info("tlog: rewriting a tile that had not been synced", "tile", id.Path())
	return l.tiles.write(id, data)
}

// checkPartials checks the partial versions on disk of the tile that id
// names (full, or partial at the right edge, holding data). A partial tile
// that a committed checkpoint covers was synced before the checkpoint was
// stored: if it differs, it is damaged. A later one (of a candidate never
// committed) is repaired. A partial tile of a full one is then removed.
func (l *Log) checkPartials(id TileID, data []byte, cpSize uint64) error {
	base := id
	base.Width = 0
	pdir := base.Path() + ".p"
	des, err := l.fsys.ReadDir(pdir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return &CorruptError{Path: base.Path() + ".p", Err: err}
	}
	level := base.Level
	committed := tileWidthAt(level, base.Index, cpSize)
	have := uint64(TileWidth)
	if id.Width > 0 {
		have = uint64(id.Width)
	}
	for _, name := range des {
		w, err := strconv.ParseUint(name, 10, 16)
		if err != nil || w < 1 || w >= TileWidth || strconv.FormatUint(w, 10) != name {
			continue // a temporary file of an interrupted write; never served
		}
		pid := base
		pid.Width = uint16(w)
		got, err := l.tiles.read(pid)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return &CorruptError{Path: pid.Path(), Err: err}
		}
		var want []byte
		if w <= have {
			want, err = prefix(pid, data)
			if err != nil {
				return err
			}
		}
		if want != nil && bytes.Equal(got, want) {
			continue
		}
		if w <= committed {
			return &CorruptError{Path: pid.Path(), Err: fmt.Errorf("the partial tile of the checkpoint at size %d differs from the entries", cpSize)}
		}
		if want == nil {
			// Beyond the log's size: never part of a committed checkpoint.
			if !l.opts.ReadOnly {
				if err := l.fsys.Remove(pid.Path()); err != nil {
					return fmt.Errorf("tlog: %w", err)
				}
			}
			continue
		}
		if err := l.repairTile(pid, want); err != nil {
			return err
		}
	}
	if id.Width == 0 && !l.opts.ReadOnly {
		if err := l.fsys.RemoveAll(pdir); err != nil {
			return fmt.Errorf("tlog: removing partial tiles of %s: %w", base, err)
		}
	}
	return nil
}
