package store

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Writer writes one blob in chunks, at any offsets, from any number of
// goroutines at once: a blob fetched from several peers. Nothing of it is
// in the store until Commit checks the whole blob against its digest. A
// Writer holds the blob's announced size against the store's bound until
// Commit or Abort; call one of them.
type Writer struct {
	s      *Store
	digest string
	hex    string
	size   int64
	f      tempFile
	raw    syscall.RawConn // of f, when it is an *os.File: for writeback
	fl     *flight

	mu   sync.Mutex
	done bool

	// The blob is hashed as it is written, so that Commit need not read
	// it all back: hh has hashed its first hashed bytes; pending holds
	// the ranges written beyond them (offset → range), hashed once the
	// bytes before them are: from the caller's memory when it lent it
	// (WriteAtLent, at most maxLent bytes held), else read back from the
	// file. A write that overlaps bytes already written or hashed may have
	// changed them: dirty, and Commit hashes the whole file instead.
	hmu     sync.Mutex
	hh      hash.Hash
	hashed  int64
	pending map[int64]written
	lent    int64 // bytes of pending held in the callers' memory
	dirty   bool
	buf     []byte
}

// written is a range of the blob written ahead of the hash: its end and,
// when the caller lent them, its bytes and the call that gives them back.
type written struct {
	end  int64
	p    []byte
	done func()
}

// maxLent bounds the bytes written ahead of the hash that a Writer holds
// in its callers' memory (WriteAtLent); beyond it, they are read back
// from the file when their turn comes.
const maxLent = 16 << 20

// Create starts a chunked write of the blob with this digest and size. A
// blob already in the store is an error wrapping fs.ErrExist; one that
// another Writer or Put is writing, an error wrapping ErrBusy.
func (s *Store) Create(digest string, size int64) (*Writer, error) {
	h, err := ParseDigest(digest)
	if err != nil {
		return nil, err
	}
	if size < 0 {
		return nil, fmt.Errorf("%w: %s: a Writer needs the blob's size, got %d", ErrSize, digest, size)
	}
	fl, exists, err := s.begin(context.Background(), digest, h, size, false)
	if err != nil {
		return nil, err
	}
	if exists {
		return nil, fmt.Errorf("store: %s: %w", digest, os.ErrExist)
	}
	f, err := s.createTemp(s.tmpDir)
	if err != nil {
		err = fmt.Errorf("store: writing %s: %w", digest, err)
		s.end(h, fl, size, 0, err)
		return nil, err
	}
	w := &Writer{s: s, digest: digest, hex: h, size: size, f: f, fl: fl, hh: sha256.New(), pending: map[int64]written{}}
	if sc, ok := f.(syscall.Conn); ok {
		w.raw, _ = sc.SyscallConn()
	}
	return w, nil
}

// writeback starts writing [off, off+n) of the file to the disk, without
// waiting: the pages a fetch dirties go to the disk while the rest of the
// blob arrives, and the fsync of Commit has only the last of them left to
// wait for (on a disk, the fsync of a 200 MiB blob written without it
// took as long as the whole fetch over loopback). A no-op on tmpfs, and
// only a hint: Commit's fsync is what makes the blob durable.
func (w *Writer) writeback(off int64, n int) {
	if w.raw == nil || n == 0 {
		return
	}
	w.raw.Control(func(fd uintptr) {
		unix.SyncFileRange(int(fd), off, int64(n), unix.SYNC_FILE_RANGE_WRITE)
	})
}

// WriteAt writes p at offset off of the blob. Bytes beyond the announced
// size are an error wrapping ErrSize, and nothing of p is written.
func (w *Writer) WriteAt(p []byte, off int64) (int, error) {
	return w.writeAt(p, off, nil)
}

// WriteAtLent is WriteAt for a caller that lends p to the Writer until it
// calls done: bytes written ahead of the hash are then hashed from p when
// the bytes before them come, not read back from the file. The caller
// must not change p until done is called; done is called exactly once,
// from any goroutine, maybe before WriteAtLent returns (always by Commit
// or Abort).
func (w *Writer) WriteAtLent(p []byte, off int64, done func()) (int, error) {
	return w.writeAt(p, off, done)
}

func (w *Writer) writeAt(p []byte, off int64, done func()) (int, error) {
	if off < 0 || off > w.size || int64(len(p)) > w.size-off {
		giveBack(done)
		return 0, fmt.Errorf("%w: %s: %d bytes at offset %d are beyond its %d bytes", ErrSize, w.digest, len(p), off, w.size)
	}
	w.mu.Lock()
	finished := w.done
	w.mu.Unlock()
	if finished {
		giveBack(done)
		return 0, fmt.Errorf("store: %s: write after Commit or Abort", w.digest)
	}
	n, err := w.f.WriteAt(p, off)
	if err != nil {
		giveBack(done)
		w.hmu.Lock()
		w.dirtyLocked() // some of p may be in the file
		w.hmu.Unlock()
		return n, fmt.Errorf("store: writing %s at offset %d: %w%s", w.digest, off, err, diskHint(err))
	}
	w.writeback(off, n)
	w.hash(p, off, done)
	return n, nil
}

func giveBack(done func()) {
	if done != nil {
		done()
	}
}

// dirtyLocked gives up hashing as the blob is written (Commit hashes the
// whole file) and gives back the bytes lent.
func (w *Writer) dirtyLocked() {
	w.dirty = true
	w.releaseLocked()
}

// releaseLocked gives back the bytes lent, which are then read back from
// the file if needed.
func (w *Writer) releaseLocked() {
	for o, r := range w.pending {
		if r.done != nil {
			r.done()
			w.pending[o] = written{end: r.end}
		}
	}
	w.lent = 0
}

// hash records that p is in the file at off and hashes what of the blob
// is now written without a gap from its start: p from memory when it is
// next, the ranges written before it from the memory lent or the file.
// It gives p back (done) once it is hashed or not needed.
func (w *Writer) hash(p []byte, off int64, done func()) {
	if len(p) == 0 {
		giveBack(done)
		return
	}
	end := off + int64(len(p))
	w.hmu.Lock()
	defer w.hmu.Unlock()
	if w.dirty {
		giveBack(done)
		return
	}
	if off < w.hashed {
		giveBack(done)
		w.dirtyLocked()
		return
	}
	for o, r := range w.pending {
		if off < r.end && o < end {
			giveBack(done)
			w.dirtyLocked()
			return
		}
	}
	if off != w.hashed {
		if done != nil && w.lent+int64(len(p)) <= maxLent {
			w.pending[off] = written{end: end, p: p, done: done}
			w.lent += int64(len(p))
			return
		}
		giveBack(done)
		w.pending[off] = written{end: end}
		return
	}
	w.hh.Write(p)
	giveBack(done)
	w.hashed = end
	for {
		r, ok := w.pending[w.hashed]
		if !ok {
			return
		}
		delete(w.pending, w.hashed)
		if r.done != nil {
			w.hh.Write(r.p)
			w.lent -= int64(len(r.p))
			r.done()
			w.hashed = r.end
			continue
		}
		if w.buf == nil {
			w.buf = make([]byte, 1<<20)
		}
		n, err := io.CopyBuffer(w.hh, io.NewSectionReader(w.f, w.hashed, r.end-w.hashed), w.buf)
		if err != nil || n != r.end-w.hashed {
			w.dirtyLocked() // Commit reads it all again, and reports the error
			return
		}
		w.hashed = r.end
	}
}

// Size is the blob's announced size.
func (w *Writer) Size() int64 { return w.size }

// Commit hashes what of the blob its writes did not (all of it, if
// writes overlapped), checks it against the digest
// (else a *DigestError: a chunk was wrong, or missing), syncs it and puts
// it in the store. Call it once every WriteAt has returned. On an error
// nothing is kept and the Writer is done.
func (w *Writer) Commit() error {
	if !w.finish() {
		return fmt.Errorf("store: %s: Commit after Commit or Abort", w.digest)
	}
	err := w.commit()
	w.f.Close()
	if err != nil {
		os.Remove(w.f.Name())
	}
	w.s.end(w.hex, w.fl, w.size, w.size, err)
	return err
}

func (w *Writer) commit() error {
	w.hmu.Lock()
	w.releaseLocked()
	hh, from := w.hh, w.hashed
	if w.dirty {
		hh, from = sha256.New(), 0
	}
	w.hmu.Unlock()
	n, err := io.CopyBuffer(hh, io.NewSectionReader(w.f, from, w.size-from), make([]byte, 1<<20))
	n += from
	if err != nil {
		return fmt.Errorf("store: checking %s: %w", w.digest, err)
	}
	if n != w.size {
		// Unwritten bytes at the end: the file is shorter than the blob.
		return fmt.Errorf("%w: %s: %d of %d bytes written", ErrSize, w.digest, n, w.size)
	}
	return w.s.commitTemp(w.f, w.digest, w.hex, hh)
}

// Abort drops what was written. It is safe after Commit (it does nothing).
func (w *Writer) Abort() {
	if !w.finish() {
		return
	}
	w.hmu.Lock()
	w.releaseLocked()
	w.hmu.Unlock()
	w.f.Close()
	os.Remove(w.f.Name())
	w.s.end(w.hex, w.fl, w.size, 0, fmt.Errorf("store: %s: aborted", w.digest))
}

func (w *Writer) finish() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return false
	}
	w.done = true
	return true
}
