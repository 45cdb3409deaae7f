package store

import (
	"context"
	"crypto/sha256"
	"fmt"
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
	return &Writer{s: s, digest: digest, hex: h, size: size, f: f, fl: fl}, nil
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
		return n, fmt.Errorf("store: writing %s at offset %d: %w%s", w.digest, off, err, diskHint(err))
	}
	return n, nil
}

// Size is the blob's announced size.
func (w *Writer) Size() int64 { return w.size }

// Commit hashes the whole blob as written, checks it against the digest
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
	hh := sha256.New()
	n, err := io.Copy(hh, io.NewSectionReader(w.f, 0, w.size))
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
