package exchange

import (
	"context"
	"errors"
	"io"

	"github.com/pyrsia/pyrsia-build/publish/serve"
)

// ErrDigest is wrapped by a Store's error for bytes that do not hash to
// the digest they were written under. Use errors.Is.
var ErrDigest = errors.New("exchange: bytes do not match their digest")

// Store is what an [Exchange] needs of the node's content-addressed blob
// store (package publish/store): blobs named "sha256:<hex>", put whole or
// written in chunks, each checked against its digest before it is kept.
type Store interface {
	// Has says whether the blob is in the store.
	Has(digest string) bool
	// Open opens a blob of the store; a missing one is an error wrapping
	// fs.ErrNotExist.
	Open(digest string) (serve.Blob, error)
	// Create starts a chunked write of a blob of a known size; a blob
	// already there is an error wrapping fs.ErrExist.
	Create(digest string, size int64) (Writer, error)
	// Put stores the blob read from r: exactly size bytes (-1: unknown)
	// that hash to digest, or nothing (a digest mismatch is an error
	// wrapping ErrDigest).
	Put(ctx context.Context, digest string, size int64, r io.Reader) error
}

// Writer is a chunked write of one blob: WriteAt from any goroutines,
// then Commit (which checks the whole blob against its digest and keeps
// it, or keeps nothing: a mismatch is an error wrapping ErrDigest) or
// Abort.
type Writer interface {
	WriteAt(p []byte, off int64) (int, error)
	Commit() error
	Abort()
}
