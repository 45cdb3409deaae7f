package store

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
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
	fl     *flight

	mu   sync.Mutex
	done bool

	// The blob is hashed as it is written, so that Commit need not read
	// it all back: hh has hashed its first hashed bytes; pending holds
	// the ranges written beyond them (offset → end), hashed from the file
	// once the bytes before them are. A write that overlaps bytes already
	// written or hashed may have changed them: dirty, and Commit hashes
	// the whole file instead.
	hmu     sync.Mutex
	hh      hash.Hash
	hashed  int64
	pending map[int64]int64
	dirty   bool
	buf     []byte
}

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
	return &Writer{s: s, digest: digest, hex: h, size: size, f: f, fl: fl, hh: sha256.New(), pending: map[int64]int64{}}, nil
}

// WriteAt writes p at offset off of the blob. Bytes beyond the announced
// size are an error wrapping ErrSize, and nothing of p is written.
func (w *Writer) WriteAt(p []byte, off int64) (int, error) {
	if off < 0 || off > w.size || int64(len(p)) > w.size-off {
		return 0, fmt.Errorf("%w: %s: %d bytes at offset %d are beyond its %d bytes", ErrSize, w.digest, len(p), off, w.size)
	}
	w.mu.Lock()
	done := w.done
	w.mu.Unlock()
	if done {
		return 0, fmt.Errorf("store: %s: write after Commit or Abort", w.digest)
	}
	n, err := w.f.WriteAt(p, off)
	if err != nil {
		w.hmu.Lock()
		w.dirty = true // some of p may be in the file
		w.hmu.Unlock()
		return n, fmt.Errorf("store: writing %s at offset %d: %w%s", w.digest, off, err, diskHint(err))
	}
	w.hash(p, off)
	return n, nil
}

// hash records that p is in the file at off and hashes what of the blob
// is now written without a gap from its start: p from memory when it is
// next, the ranges written before it from the file.
func (w *Writer) hash(p []byte, off int64) {
	if len(p) == 0 {
		return
	}
	end := off + int64(len(p))
	w.hmu.Lock()
	defer w.hmu.Unlock()
	if w.dirty {
		return
	}
	if off < w.hashed {
		w.dirty = true
		return
	}
	for o, e := range w.pending {
		if off < e && o < end {
			w.dirty = true
			return
		}
	}
	if off != w.hashed {
		w.pending[off] = end
		return
	}
	w.hh.Write(p)
	w.hashed = end
	for {
		e, ok := w.pending[w.hashed]
		if !ok {
			return
		}
		delete(w.pending, w.hashed)
		if w.buf == nil {
			w.buf = make([]byte, 1<<20)
		}
		n, err := io.CopyBuffer(w.hh, io.NewSectionReader(w.f, w.hashed, e-w.hashed), w.buf)
		if err != nil || n != e-w.hashed {
			w.dirty = true // Commit reads it all again, and reports the error
			return
		}
		w.hashed = e
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
