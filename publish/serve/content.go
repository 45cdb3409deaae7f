// Package serve holds the HTTP faces a node shows build tools: the OCI
// distribution API, pull side ([NewOCI], under /v2/), and a Maven 2
// repository ([NewMaven], under /maven2/). Both serve only what the log
// published: every name, tag, version and file they answer for comes from
// the node's [index.Index] of verified log entries, and every byte comes
// through a [Content], which hands out only bytes whose digest it checked.
package serve

import (
	"context"
	"io"
)

// Blob is the verified bytes of one artifact or OCI blob: readable, seekable
// (for HTTP range requests) and of a known size.
type Blob interface {
	io.ReadSeekCloser
	io.ReaderAt
	// Size is the blob's length in bytes.
	Size() int64
}

// Content gives the bytes of published artifacts.
//
// Open returns the blob whose sha256 is digest ("sha256:<64 hex>"), fetched
// from wherever the node gets content (its own store, its own builds, peers)
// and checked against the digest before a byte of it is handed out. size is
// the length the caller expects (from an OCI descriptor), or -1 when it does
// not know it (a manifest or a Maven file: the log names only digests). A
// blob the node cannot get is an error wrapping fs.ErrNotExist; a blob over
// the node's size limits, or whose size is not the expected one, is an
// error too. Content is safe for concurrent use.
type Content interface {
	Open(ctx context.Context, digest string, size int64) (Blob, error)
}
