package exchange

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"sync"

	"github.com/pyrsia/pyrsia-build/publish/serve"
)

// memStore is a Store in memory for the tests, until package publish/store
// is in main. raw puts bytes under a digest unchecked: a liar's store.
type memStore struct {
	mu    sync.Mutex
	blobs map[string][]byte
}

func newMemStore() *memStore { return &memStore{blobs: map[string][]byte{}} }

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func (s *memStore) raw(digest string, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.blobs[digest] = b
}

func (s *memStore) Has(digest string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.blobs[digest]
	return ok
}

func (s *memStore) Open(digest string) (serve.Blob, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.blobs[digest]
	if !ok {
		return nil, fmt.Errorf("memstore: %s: %w", digest, fs.ErrNotExist)
	}
	return &memBlob{bytes.NewReader(b)}, nil
}

type memBlob struct{ *bytes.Reader }

func (*memBlob) Close() error { return nil }

func (s *memStore) check(digest string, b []byte) error {
	if got := digestOf(b); got != digest {
		return fmt.Errorf("memstore: bytes for %s hash to %s: %w", digest, got, ErrDigest)
	}
	s.raw(digest, b)
	return nil
}

func (s *memStore) Put(ctx context.Context, digest string, size int64, r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if size >= 0 && int64(len(b)) != size {
		return fmt.Errorf("memstore: %s: %d bytes, want %d", digest, len(b), size)
	}
	return s.check(digest, b)
}

func (s *memStore) Create(digest string, size int64) (Writer, error) {
	if s.Has(digest) {
		return nil, fmt.Errorf("memstore: %s: %w", digest, fs.ErrExist)
	}
	return &memWriter{s: s, digest: digest, b: make([]byte, size)}, nil
}

type memWriter struct {
	s      *memStore
	digest string
	mu     sync.Mutex
	b      []byte
}

func (w *memWriter) WriteAt(p []byte, off int64) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if off < 0 || off+int64(len(p)) > int64(len(w.b)) {
		return 0, fmt.Errorf("memstore: write beyond the blob")
	}
	return copy(w.b[off:], p), nil
}

func (w *memWriter) Commit() error { return w.s.check(w.digest, w.b) }
func (w *memWriter) Abort()        {}
