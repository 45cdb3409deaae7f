// Package store is a node's content-addressed blob store on disk: the
// bytes of published artifacts and OCI blobs, each named by its sha256, in
// DIR/blobs/sha256/<hex>.
//
// Bytes go in through [Store.Put] (a stream) or [Store.Create] (a
// [Writer] that takes chunks at any offset, for a blob fetched from several
// peers at once). Either way the bytes are written to a temporary file in
// DIR/tmp, hashed, checked against the digest they were given under, synced
// and renamed into place: a blob in the store always has the bytes its name
// says, and a crash leaves either the whole blob or nothing (leftover
// temporary files are removed at [Open]).
//
// [Store.Open] hands out a [Blob]. Damage on disk (a blob file cut short or
// changed behind the store's back) is never served: a blob whose size is
// not the one the store recorded is removed when it is opened, and a blob
// whose bytes this process has not seen as right (one found on disk by
// [Open], or one whose file's change time moved since: anything wrote to
// it) is hashed by [Store.Open] and removed if it does not match its name. Either way Open returns an error wrapping both
// [ErrDamaged] and fs.ErrNotExist, so that a caller fetches the blob again.
//
// The store is bounded by [Options.MaxBytes]: when a new blob would not
// fit, the least recently opened blobs that are not pinned ([Store.Pin])
// are evicted. The recency order is kept in memory and rebuilt from the
// files' modification times at [Open]. A Store is safe for concurrent use;
// two Puts of one digest at once write it once. One process at a time may
// open a store folder.
package store

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Sentinel errors; use errors.Is.
var (
	// ErrInvalidDigest: a digest is not "sha256:<64 lowercase hex>".
	ErrInvalidDigest = errors.New("store: invalid digest")
	// ErrSize: a blob has more or fewer bytes than it was announced with,
	// or more than the store can ever hold.
	ErrSize = errors.New("store: wrong size")
	// ErrFull: a blob does not fit even after evicting every unpinned blob.
	ErrFull = errors.New("store: full")
	// ErrDamaged: a blob on disk does not match its name; it was removed.
	// It comes with fs.ErrNotExist.
	ErrDamaged = errors.New("store: blob damaged on disk")
	// ErrBusy: another Writer is writing this digest.
	ErrBusy = errors.New("store: blob is being written")
	// ErrLocked: another process has the store folder open.
	ErrLocked = errors.New("store: folder is in use by another process")
)

// DigestError is returned when bytes do not hash to the digest they were
// put under. Nothing is kept.
type DigestError struct {
	Want, Got string // "sha256:<hex>"
}

func (e *DigestError) Error() string {
	return fmt.Sprintf("store: bytes for %s hash to %s: refused (the source sent other bytes: fetch them again from elsewhere)", e.Want, e.Got)
}

// damagedError wraps both ErrDamaged and fs.ErrNotExist.
type damagedError struct{ msg string }

func (e *damagedError) Error() string   { return e.msg }
func (e *damagedError) Unwrap() []error { return []error{ErrDamaged, fs.ErrNotExist} }

// Options configure a [Store].
type Options struct {
	// MaxBytes bounds the bytes of all blobs in the store, writes in
	// progress included at their announced size (a Put of unknown size
	// counts once it is complete: until then its temporary file may take
	// up to MaxBytes more on disk). Zero or less: no bound.
	MaxBytes int64
	// Logger gets evictions and damage found; nil: slog.Default().
	Logger *slog.Logger
}

// Stats is a snapshot of a store's use.
type Stats struct {
	Blobs     int   // blobs in the store
	Bytes     int64 // their total size
	MaxBytes  int64 // the bound, 0 for none
	Evictions int64 // blobs evicted since Open
	Damaged   int64 // damaged blobs found and removed since Open
	Pinned    int   // digests pinned (present or not)
}

// Store is a content-addressed blob store in a folder.
type Store struct {
	dir, blobDir, tmpDir string
	max                  int64
	log                  *slog.Logger
	lock                 *os.File

	// createTemp makes a temporary file in tmpDir; tests replace it to
	// make writes fail.
	createTemp func(dir string) (tempFile, error)

	mu        sync.Mutex
	blobs     map[string]*entry // by hex
	lru       list.List         // of *entry; front: most recently used
	bytes     int64             // of blobs
	reserved  int64             // of writes in progress
	writing   map[string]*flight
	ended     chan struct{} // closed and replaced when a write ends
	pins      map[string]bool
	evictions int64
	damaged   int64
	closed    bool
}

type entry struct {
	hex  string
	size int64
	// ctime is the file's change time when this process last knew its
	// bytes to be right (it wrote or hashed them); zero: not known. Any
	// write to the file changes its ctime, so a blob whose ctime is still
	// this one has not changed.
	ctime   unix.Timespec
	touched time.Time
	elem    *list.Element
}

// ctimeOf returns a file's change time.
func ctimeOf(fi fs.FileInfo) unix.Timespec {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return unix.Timespec{Sec: st.Ctim.Sec, Nsec: st.Ctim.Nsec}
	}
	return unix.Timespec{}
}

// flight is a write of one digest in progress; others wait on done.
type flight struct {
	done chan struct{}
	err  error
}

// tempFile is what the store needs of a temporary file.
type tempFile interface {
	io.Writer
	io.WriterAt
	io.ReaderAt
	Sync() error
	Close() error
	Name() string
}

// touchEvery bounds how often an Open updates a blob file's modification
// time (the recency order a restart rebuilds).
const touchEvery = time.Minute

// Open opens (creating it if needed) the store in dir. It removes leftover
// temporary files, indexes the blobs found, and evicts down to MaxBytes.
func Open(dir string, o Options) (*Store, error) {
	s := &Store{
		dir:        dir,
		blobDir:    filepath.Join(dir, "blobs", "sha256"),
		tmpDir:     filepath.Join(dir, "tmp"),
		max:        max(o.MaxBytes, 0),
		log:        o.Logger,
		blobs:      make(map[string]*entry),
		writing:    make(map[string]*flight),
		ended:      make(chan struct{}),
		pins:       make(map[string]bool),
		createTemp: func(dir string) (tempFile, error) { return os.CreateTemp(dir, "blob-*") },
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	for _, d := range []string{s.blobDir, s.tmpDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("store: creating %s: %w", d, err)
		}
	}
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("store: locking %s: %w", dir, err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %s (stop the other node, or give this one another folder)", ErrLocked, dir)
	}
	s.lock = f
	if err := s.load(); err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) load() error {
	tmp, err := os.ReadDir(s.tmpDir)
	if err != nil {
		return fmt.Errorf("store: reading %s: %w", s.tmpDir, err)
	}
	for _, e := range tmp {
		if err := os.RemoveAll(filepath.Join(s.tmpDir, e.Name())); err != nil {
			return fmt.Errorf("store: removing a leftover temporary file: %w", err)
		}
	}
	des, err := os.ReadDir(s.blobDir)
	if err != nil {
		return fmt.Errorf("store: reading %s: %w", s.blobDir, err)
	}
	type found struct {
		hex   string
		size  int64
		mtime time.Time
	}
	var all []found
	for _, de := range des {
		name := de.Name()
		if !isHex(name) || !de.Type().IsRegular() {
			s.log.Warn("store: ignoring a file that is not a blob", "path", filepath.Join(s.blobDir, name))
			continue
		}
		fi, err := de.Info()
		if err != nil {
			return fmt.Errorf("store: reading %s: %w", name, err)
		}
		all = append(all, found{name, fi.Size(), fi.ModTime()})
	}
	// Oldest first: each PushFront makes the newest the most recent.
	slices.SortFunc(all, func(a, b found) int { return a.mtime.Compare(b.mtime) })
	for _, f := range all {
		e := &entry{hex: f.hex, size: f.size, touched: f.mtime}
		e.elem = s.lru.PushFront(e)
		s.blobs[f.hex] = e
		s.bytes += f.size
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.max > 0 && s.bytes > s.max {
		// The bound was lowered since the last run: evicting is all that
		// can be done, and a pinned blob is not known yet.
		s.evictLocked(0)
	}
	return nil
}

// Close releases the store folder. Blobs already open stay readable.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	return s.lock.Close()
}

// ParseDigest returns the hex of "sha256:<64 lowercase hex>", or an error
// wrapping ErrInvalidDigest that names the input.
func ParseDigest(digest string) (string, error) {
	h, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || !isHex(h) {
		return "", fmt.Errorf("%w: %q is not sha256:<64 lowercase hex digits>", ErrInvalidDigest, trim(digest))
	}
	return h, nil
}

func isHex(h string) bool {
	if len(h) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// trim shortens outside input quoted in an error.
func trim(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}

func (s *Store) path(h string) string { return filepath.Join(s.blobDir, h) }

// Has reports whether the store holds the blob with this digest.
func (s *Store) Has(digest string) bool {
	h, err := ParseDigest(digest)
	if err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.blobs[h]
	return ok
}

// Pin keeps the blob with this digest from eviction, whether it is in the
// store yet or not (a build node pins what it publishes). Pins last until
// Unpin or the end of the process.
func (s *Store) Pin(digest string) error {
	h, err := ParseDigest(digest)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pins[h] = true
	return nil
}

// Unpin lets the blob with this digest be evicted again.
func (s *Store) Unpin(digest string) {
	h, err := ParseDigest(digest)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.pins, h)
}

// Digests returns the digests of the blobs in the store, sorted.
func (s *Store) Digests() []string {
	s.mu.Lock()
	ds := make([]string, 0, len(s.blobs))
	for h := range s.blobs {
		ds = append(ds, "sha256:"+h)
	}
	s.mu.Unlock()
	slices.Sort(ds)
	return ds
}

// Stats returns a snapshot of the store's use.
func (s *Store) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Blobs: len(s.blobs), Bytes: s.bytes, MaxBytes: s.max, Evictions: s.evictions, Damaged: s.damaged, Pinned: len(s.pins)}
}

// reserveLocked makes room for n more bytes, evicting if needed.
func (s *Store) reserveLocked(digest string, n int64) error {
	if s.max == 0 {
		s.reserved += n
		return nil
	}
	if n > s.max {
		return fmt.Errorf("%w: %s has %d bytes, more than the store's bound of %d (raise MaxBytes)", ErrSize, digest, n, s.max)
	}
	if !s.evictLocked(n) {
		return fmt.Errorf("%w: no room for %s (%d bytes): %d of %d bytes are pinned or being written (raise MaxBytes, or unpin)",
			ErrFull, digest, n, s.bytes+s.reserved, s.max)
	}
	s.reserved += n
	return nil
}

// evictLocked evicts least recently used unpinned blobs until n more bytes
// fit, and reports whether they do.
func (s *Store) evictLocked(n int64) bool {
	for el := s.lru.Back(); el != nil && s.bytes+s.reserved+n > s.max; {
		e := el.Value.(*entry)
		el = el.Prev()
		if s.pins[e.hex] {
			continue
		}
		if err := os.Remove(s.path(e.hex)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Error("store: evicting", "digest", "sha256:"+e.hex, "err", err)
			continue
		}
		s.dropLocked(e)
		s.evictions++
		s.log.Info("store: evicted", "digest", "sha256:"+e.hex, "size", e.size)
	}
	return s.bytes+s.reserved+n <= s.max
}

func (s *Store) dropLocked(e *entry) {
	s.lru.Remove(e.elem)
	delete(s.blobs, e.hex)
	s.bytes -= e.size
}

// begin starts a write of h: it returns a flight that the caller must end,
// or exists=true when the blob is there already. wait says whether to wait
// for another write of h in progress (else ErrBusy).
func (s *Store) begin(ctx context.Context, digest, h string, size int64, wait bool) (f *flight, exists bool, err error) {
	s.mu.Lock()
	for {
		if s.closed {
			s.mu.Unlock()
			return nil, false, fmt.Errorf("store: %s: store is closed", digest)
		}
		if e, ok := s.blobs[h]; ok {
			s.touchLocked(e)
			s.mu.Unlock()
			return nil, true, nil
		}
		other, ok := s.writing[h]
		if !ok {
			break
		}
		s.mu.Unlock()
		if !wait {
			return nil, false, fmt.Errorf("%w: %s (abort the other writer, or wait for it)", ErrBusy, digest)
		}
		select {
		case <-other.done:
		case <-ctx.Done():
			return nil, false, fmt.Errorf("store: waiting for another write of %s: %w", digest, ctx.Err())
		}
		s.mu.Lock()
	}
	defer s.mu.Unlock()
	for size > 0 {
		err := s.reserveLocked(digest, size)
		if err == nil {
			break
		}
		if !wait || !errors.Is(err, ErrFull) || s.reserved == 0 {
			return nil, false, err
		}
		// Writes in progress hold the room: once they end, their blobs
		// can be evicted.
		ended := s.ended
		s.mu.Unlock()
		select {
		case <-ended:
		case <-ctx.Done():
			s.mu.Lock()
			return nil, false, fmt.Errorf("store: waiting for room for %s: %w", digest, ctx.Err())
		}
		s.mu.Lock()
		if _, ok := s.writing[h]; ok {
			// Another Put of h started meanwhile: wait for it instead.
			s.mu.Unlock()
			f, exists, err = s.begin(ctx, digest, h, size, wait)
			s.mu.Lock()
			return f, exists, err
		}
		if e, ok := s.blobs[h]; ok {
			s.touchLocked(e)
			return nil, true, nil
		}
	}
	f = &flight{done: make(chan struct{})}
	s.writing[h] = f
	return f, false, nil
}

// end finishes the write of h: on success the blob of size bytes is in
// place; reserved is what begin reserved.
func (s *Store) end(h string, f *flight, reserved, size int64, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reserved -= reserved
	if err == nil {
		e := &entry{hex: h, size: size, touched: time.Now()}
		if fi, err := os.Stat(s.path(h)); err == nil {
			e.ctime = ctimeOf(fi)
		}
		e.elem = s.lru.PushFront(e)
		s.blobs[h] = e
		s.bytes += size
	}
	delete(s.writing, h)
	f.err = err
	close(f.done)
	close(s.ended)
	s.ended = make(chan struct{})
}

// Put stores the blob with this digest, reading it from r. size is its
// length, or -1 when unknown. It reads at most size bytes (an unknown size:
// at most MaxBytes), checks that there are exactly size bytes and that they
// hash to digest (else a *DigestError), syncs and renames the blob into
// place. On any error nothing is kept. A blob already in the store is not
// read again; a Put of a digest another Put is writing waits for it, and
// tries itself if that one failed.
func (s *Store) Put(ctx context.Context, digest string, size int64, r io.Reader) error {
	h, err := ParseDigest(digest)
	if err != nil {
		return err
	}
	if size < -1 {
		return fmt.Errorf("%w: %s: size %d (want -1 for unknown, or 0 and more)", ErrSize, digest, size)
	}
	f, exists, err := s.begin(ctx, digest, h, size, true)
	if err != nil {
		return err
	}
	if exists {
		return nil
	}
	n, err := s.write(ctx, digest, h, size, r)
	if err == nil && size == -1 {
		// Only now is the size known: make room for it.
		s.mu.Lock()
		err = s.reserveLocked(digest, n)
		s.mu.Unlock()
		if err != nil {
			os.Remove(s.path(h))
		} else {
			size = n
		}
	}
	s.end(h, f, max(size, 0), n, err)
	return err
}

// ctxReader stops a copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// write copies r into a temporary file, checks it and renames it into
// place, returning its size.
func (s *Store) write(ctx context.Context, digest, h string, size int64, r io.Reader) (int64, error) {
	limit := size
	if size == -1 {
		limit = s.max
		if limit == 0 {
			limit = 1<<63 - 2
		}
	}
	tf, err := s.createTemp(s.tmpDir)
	if err != nil {
		return 0, fmt.Errorf("store: writing %s: %w", digest, err)
	}
	defer func() {
		tf.Close()
		os.Remove(tf.Name())
	}()
	hh := sha256.New()
	n, err := io.Copy(io.MultiWriter(tf, hh), io.LimitReader(ctxReader{ctx, r}, limit+1))
	if err != nil {
		return n, fmt.Errorf("store: writing %s after %d bytes: %w%s", digest, n, err, diskHint(err))
	}
	switch {
	case n > limit && size >= 0:
		return n, fmt.Errorf("%w: %s: more than the %d bytes announced: refused", ErrSize, digest, size)
	case n > limit:
		return n, fmt.Errorf("%w: %s: more than the store's bound of %d bytes: refused (raise MaxBytes)", ErrSize, digest, limit)
	case size >= 0 && n != size:
		return n, fmt.Errorf("%w: %s: %d bytes, not the %d announced: refused (the source stopped early)", ErrSize, digest, n, size)
	}
	if err := s.commitTemp(tf, digest, h, hh); err != nil {
		return n, err
	}
	return n, nil
}

// commitTemp checks the hash, syncs tf and renames it to the blob's path.
func (s *Store) commitTemp(tf tempFile, digest, h string, hh hash.Hash) error {
	if got := hex.EncodeToString(hh.Sum(nil)); got != h {
		return &DigestError{Want: digest, Got: "sha256:" + got}
	}
	if err := tf.Sync(); err != nil {
		return fmt.Errorf("store: syncing %s: %w%s", digest, err, diskHint(err))
	}
	if err := tf.Close(); err != nil {
		return fmt.Errorf("store: writing %s: %w%s", digest, err, diskHint(err))
	}
	if err := os.Rename(tf.Name(), s.path(h)); err != nil {
		return fmt.Errorf("store: putting %s in place: %w", digest, err)
	}
	if err := syncDir(s.blobDir); err != nil {
		os.Remove(s.path(h))
		return fmt.Errorf("store: syncing %s: %w", s.blobDir, err)
	}
	return nil
}

func diskHint(err error) string {
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return " (the disk is full: free space, or lower MaxBytes)"
	}
	return ""
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func (s *Store) touchLocked(e *entry) {
	s.lru.MoveToFront(e.elem)
	if now := time.Now(); now.Sub(e.touched) >= touchEvery {
		e.touched = now
		// Best effort: only the order after a restart depends on it.
		// Changing the time changes the ctime: keep it if the bytes were
		// known to be right.
		p := s.path(e.hex)
		before, err := os.Stat(p)
		known := err == nil && ctimeOf(before) == e.ctime && e.ctime != (unix.Timespec{})
		if os.Chtimes(p, time.Time{}, now) == nil && known {
			if after, err := os.Stat(p); err == nil {
				e.ctime = ctimeOf(after)
			}
		}
	}
}

// Open returns the blob with this digest. A blob the store does not hold
// is an error wrapping fs.ErrNotExist. A blob found damaged on disk (see
// the package comment) is removed and is an error wrapping ErrDamaged and
// fs.ErrNotExist. Open marks the blob as the most recently used.
func (s *Store) Open(digest string) (*Blob, error) {
	h, err := ParseDigest(digest)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	e, ok := s.blobs[h]
	if !ok {
		s.mu.Unlock()
		return nil, fmt.Errorf("store: %s: %w", digest, fs.ErrNotExist)
	}
	// Opened under the lock, so that an eviction cannot remove the file
	// in between; once open, it stays readable.
	f, err := os.Open(s.path(h))
	if err != nil {
		s.mu.Unlock()
		if errors.Is(err, fs.ErrNotExist) {
			return nil, s.damage(e, fmt.Sprintf("store: %s: the blob file is gone from %s", digest, s.blobDir))
		}
		return nil, fmt.Errorf("store: opening %s: %w", digest, err)
	}
	s.touchLocked(e)
	size, known := e.size, e.ctime
	s.mu.Unlock()
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("store: opening %s: %w", digest, err)
	}
	if fi.Size() != size {
		f.Close()
		return nil, s.damage(e, fmt.Sprintf("store: %s: the blob file has %d bytes, not the %d written: removed as damaged (fetch it again)", digest, fi.Size(), size))
	}
	if ct := ctimeOf(fi); ct != known || ct == (unix.Timespec{}) {
		// Found on disk at Open, or changed since: hash it before a byte
		// of it is served.
		hh := sha256.New()
		if _, err := io.Copy(hh, io.NewSectionReader(f, 0, size)); err != nil {
			f.Close()
			return nil, fmt.Errorf("store: checking %s: %w", digest, err)
		}
		if got := hex.EncodeToString(hh.Sum(nil)); got != h {
			f.Close()
			return nil, s.damage(e, fmt.Sprintf("store: %s: the blob file hashes to sha256:%s: removed as damaged (fetch it again)", digest, got))
		}
		s.mu.Lock()
		e.ctime = ct
		s.mu.Unlock()
	}
	return &Blob{f: f, size: size, digest: digest}, nil
}

// damage removes a damaged blob and returns the error for it.
func (s *Store) damage(e *entry, msg string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.blobs[e.hex] == e {
		if err := os.Remove(s.path(e.hex)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Error("store: removing a damaged blob", "digest", "sha256:"+e.hex, "err", err)
		}
		s.dropLocked(e)
		s.damaged++
		s.log.Warn("store: damaged blob removed", "digest", "sha256:"+e.hex, "reason", msg)
	}
	return &damagedError{msg: msg}
}

// Blob is an open blob of the store: readable, seekable and readable at
// offsets, of a known size. It satisfies serve.Blob. Close it when done.
type Blob struct {
	f      *os.File
	size   int64
	digest string
}

func (b *Blob) Read(p []byte) (int, error)                { return b.f.Read(p) }
func (b *Blob) ReadAt(p []byte, off int64) (int, error)   { return b.f.ReadAt(p, off) }
func (b *Blob) Seek(off int64, whence int) (int64, error) { return b.f.Seek(off, whence) }
func (b *Blob) Close() error                              { return b.f.Close() }

// Size is the blob's length in bytes.
func (b *Blob) Size() int64 { return b.size }

// SyscallConn gives the blob's file to the network code, so that copying a
// blob to a TCP connection (an HTTP response) uses sendfile(2).
func (b *Blob) SyscallConn() (syscall.RawConn, error) { return b.f.SyscallConn() }

// Digest is the blob's digest, "sha256:<hex>".
func (b *Blob) Digest() string { return b.digest }
