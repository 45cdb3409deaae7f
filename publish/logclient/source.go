package logclient

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/pyrsia/pyrsia-build/publish/tlog"
	"github.com/transparency-dev/tessera/api/layout"
)

// Source is a log being read: its latest checkpoint, hash tiles and entry
// bundles, as C2SP tlog-tiles names them. Its answers are not trusted:
// a [Client] checks each against a checkpoint before using it.
//
// The methods follow the contract of Tessera's client fetchers
// (client.TileFetcherFunc and friends): asked for a partial tile or bundle
// (p > 0), a Source falls back to the full one when the partial one is
// gone, and it returns an error wrapping [fs.ErrNotExist] when neither
// exists (or, for ReadCheckpoint, when the log has no checkpoint). Each
// method returns when ctx is done, and a Source is safe for concurrent use.
type Source interface {
	// ReadCheckpoint returns the latest checkpoint's signed note.
	ReadCheckpoint(ctx context.Context) ([]byte, error)
	// ReadTile returns the hash tile at level and index, partial of width
	// p (0 for a full tile).
	ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error)
	// ReadEntryBundle returns the entry bundle at index, partial of width
	// p (0 for a full bundle).
	ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error)
	// String names the source in messages: "log at URL", "log folder DIR".
	String() string
	// Close releases what the source holds.
	Close() error
}

const (
	// maxTileSize is the size of a full hash tile.
	maxTileSize = tlog.TileWidth * tlog.HashSize
	// maxBundleSize is the size of a full entry bundle of the largest
	// entries.
	maxBundleSize = tlog.TileWidth * (2 + tlog.MaxEntrySize)
)

// ErrBadResponse is wrapped by the errors for a tile or an entry bundle
// that does not have the shape the tree size asks for: truncated, too
// long, or not a bundle at all. Use errors.Is.
var ErrBadResponse = errors.New("logclient: malformed response")

// width returns the number of hashes or entries the tile at level and
// index holds in a tree of size entries: 1 to 256.
func width(level, index, size uint64) int {
	if p := layout.PartialTileSize(level, index, size); p != 0 {
		return int(p)
	}
	return tlog.TileWidth
}

// parseTile checks a hash tile's bytes: whole hashes, at least want of
// them (the tree needs that many) and at most a full tile. A full tile
// served for a partial one is fine: its first hashes are the same.
func parseTile(b []byte, want int) ([][]byte, error) {
	if len(b)%tlog.HashSize != 0 {
		return nil, fmt.Errorf("%w: %d bytes is not a whole number of %d-byte hashes", ErrBadResponse, len(b), tlog.HashSize)
	}
	n := len(b) / tlog.HashSize
	if n < want || n > tlog.TileWidth {
		return nil, fmt.Errorf("%w: %d hashes, want %d", ErrBadResponse, n, want)
	}
	hashes := make([][]byte, n)
	for i := range hashes {
		hashes[i] = b[i*tlog.HashSize : (i+1)*tlog.HashSize : (i+1)*tlog.HashSize]
	}
	return hashes, nil
}

// parseBundle decodes an entry bundle (each entry a 16-bit big-endian
// length and its bytes) that must hold at least want and at most 256
// entries.
func parseBundle(b []byte, want int) ([][]byte, error) {
	var entries [][]byte
	for off := 0; off < len(b); {
		if len(entries) == tlog.TileWidth {
			return nil, fmt.Errorf("%w: %d bytes after entry %d, the last a bundle holds", ErrBadResponse, len(b)-off, tlog.TileWidth-1)
		}
		if len(b)-off < 2 {
			return nil, fmt.Errorf("%w: entry %d: truncated length at byte %d", ErrBadResponse, len(entries), off)
		}
		n := int(binary.BigEndian.Uint16(b[off:]))
		off += 2
		if len(b)-off < n {
			return nil, fmt.Errorf("%w: entry %d: %d bytes announced at byte %d, %d left", ErrBadResponse, len(entries), n, off-2, len(b)-off)
		}
		entries = append(entries, b[off:off+n:off+n])
		off += n
	}
	if len(entries) < want {
		return nil, fmt.Errorf("%w: %d entries, want %d", ErrBadResponse, len(entries), want)
	}
	return entries, nil
}
