package tlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
)

var hasher = rfc6962.DefaultHasher

var rangeFactory = &compact.RangeFactory{Hash: hasher.HashChildren}

// builder grows the Merkle tree one entry at a time and cuts it into
// tiles: the entry bundle and the level-0 hash tile fill every 256 entries,
// the level-1 tile every 65536, and so on. It keeps only the right edge of
// the tree in memory: the compact range and one partial tile per level.
type builder struct {
	rng       *compact.Range
	hashTiles [][]byte // per tile level: the hashes of the incomplete tile
	bundle    []byte   // the incomplete entry bundle
	bundleN   int
	full      func(id TileID, data []byte) error // called for each tile that fills
	err       error
}

func newBuilder(full func(TileID, []byte) error) *builder {
	return &builder{rng: rangeFactory.NewEmptyRange(0), full: full}
}

func (b *builder) size() uint64 { return b.rng.End() }

// add appends one entry.
func (b *builder) add(entry []byte) error {
	if len(entry) > MaxEntrySize {
		return fmt.Errorf("tlog: entry of %d bytes is over the %d byte limit", len(entry), MaxEntrySize)
	}
	index := b.rng.End()
	b.bundle = binary.BigEndian.AppendUint16(b.bundle, uint16(len(entry)))
	b.bundle = append(b.bundle, entry...)
	b.bundleN++
	if b.bundleN == TileWidth {
		if err := b.full(TileID{Entries: true, Index: index / TileWidth}, b.bundle); err != nil {
			return err
		}
		b.bundle, b.bundleN = b.bundle[:0], 0
	}
	if err := b.rng.Append(hasher.HashLeaf(entry), b.visit); err != nil {
		return err
	}
	return b.err
}

// visit collects the hashes stored in tiles: those of tree levels 0, 8, 16...
func (b *builder) visit(id compact.NodeID, hash []byte) {
	if id.Level%TileHeight != 0 || b.err != nil {
		return
	}
	level := id.Level / TileHeight
	for uint(len(b.hashTiles)) <= level {
		b.hashTiles = append(b.hashTiles, nil)
	}
	t := append(b.hashTiles[level], hash...)
	if len(t) == TileWidth*HashSize {
		b.err = b.full(TileID{Level: uint8(level), Index: id.Index / TileWidth}, t)
		t = t[:0]
	}
	b.hashTiles[level] = t
}

// root returns the tree's root hash (the hash of the empty string for an
// empty tree).
func (b *builder) root() ([]byte, error) {
	if b.rng.End() == 0 {
		return hasher.EmptyRoot(), nil
	}
	return b.rng.GetRootHash(nil)
}

// partials returns the partial tiles of the current tree size.
func (b *builder) partials() map[TileID][]byte {
	size := b.rng.End()
	out := make(map[TileID][]byte)
	if b.bundleN > 0 {
		out[TileID{Entries: true, Index: size / TileWidth, Width: uint16(b.bundleN)}] = b.bundle
	}
	for level, t := range b.hashTiles {
		if len(t) > 0 {
			n := size >> (TileHeight * uint(level)) / TileWidth
			out[TileID{Level: uint8(level), Index: n, Width: uint16(len(t) / HashSize)}] = t
		}
	}
	return out
}

// pendingEntries returns the entries of the incomplete entry bundle.
func (b *builder) pendingEntries() [][]byte {
	entries, _ := parseBundle(b.bundle, b.bundleN)
	return entries
}

// parseBundle splits an entry bundle into exactly want entries.
func parseBundle(data []byte, want int) ([][]byte, error) {
	entries := make([][]byte, 0, want)
	for len(data) > 0 {
		if len(data) < 2 {
			return nil, errors.New("ends inside an entry length")
		}
		n := int(binary.BigEndian.Uint16(data))
		if len(data) < 2+n {
			return nil, fmt.Errorf("entry %d is cut short: %d of %d bytes", len(entries), len(data)-2, n)
		}
		entries = append(entries, data[2:2+n])
		data = data[2+n:]
	}
	if len(entries) != want {
		return nil, fmt.Errorf("holds %d entries, want %d", len(entries), want)
	}
	return entries, nil
}

// tileStore reads and writes tile files in a log's FS.
type tileStore struct{ fsys FS }

// read returns a stored tile; one larger than a full tile is an error.
func (s tileStore) read(id TileID) ([]byte, error) {
	limit := int64(TileWidth * HashSize)
	if id.Entries {
		limit = TileWidth * (2 + MaxEntrySize)
	}
	return readLimited(s.fsys, id.Path(), limit)
}

// write stores a tile. A full tile replaces its partial versions, which are
// removed after it is in place so that a reader always finds one of them.
func (s tileStore) write(id TileID, data []byte) error {
	if err := s.fsys.WriteFile(id.Path(), data, false); err != nil {
		return err
	}
	if id.Width == 0 {
		if err := s.fsys.RemoveAll(id.Path() + ".p"); err != nil {
			return fmt.Errorf("removing partial tiles of %s: %w", id, err)
		}
	}
	return nil
}

// same reports whether the stored tile holds exactly data.
func (s tileStore) same(id TileID, data []byte) (bool, error) {
	got, err := s.read(id)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return bytes.Equal(got, data), nil
}
