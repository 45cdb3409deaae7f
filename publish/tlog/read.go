package tlog

import (
	"container/list"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"sync"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
)

// ErrNotPublished is returned for entries, tiles and proofs beyond the
// latest checkpoint (the committed one for [Log.Handler], the latest
// candidate or committed one for the Go methods). Use errors.Is.
var ErrNotPublished = errors.New("tlog: beyond the latest checkpoint")

// ErrOutOfRange is returned for a proof whose index or sizes do not fit
// together (an index not below the size, an old size above the new one).
// Use errors.Is.
var ErrOutOfRange = errors.New("tlog: out of range")

// ReadTile returns a tile's bytes as served under its tlog-tiles path. A
// partial tile whose full tile exists is served from the full one. A tile
// that the latest checkpoint does not cover (a full tile past its size, a
// partial one wider than its right edge) is [ErrNotPublished].
func (l *Log) ReadTile(ctx context.Context, id TileID) ([]byte, error) {
	return l.readTile(ctx, id, l.signedSize())
}

func (l *Log) readTile(ctx context.Context, id TileID, limit uint64) ([]byte, error) {
	w := tileWidthAt(id.Level, id.Index, limit)
	if (id.Width == 0 && w < TileWidth) || uint64(id.Width) > w {
		return nil, fmt.Errorf("%w: %s is past checkpoint size %d", ErrNotPublished, id.Path(), limit)
	}
	if data, ok := l.cache.get(id); ok {
		return data.([]byte), nil
	}
	if data, ok := l.overlay[id]; ok {
		return data, nil
	}
	if id.Width > 0 {
		full := id
		full.Width = 0
		if data, ok := l.overlay[full]; ok {
			return prefix(id, data)
		}
	}
	data, err := l.tiles.read(id)
	if errors.Is(err, fs.ErrNotExist) && id.Width > 0 {
		full := id
		full.Width = 0
		if data, err = l.tiles.read(full); err == nil {
			data, err = prefix(id, data)
		} else if errors.Is(err, fs.ErrNotExist) {
			// The full tile may have replaced the partial one just now.
			data, err = l.tiles.read(id)
		}
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s does not exist", ErrNotPublished, id.Path())
	}
	if err != nil {
		return nil, err
	}
	l.cache.put(id, data, len(data))
	return data, nil
}

// prefix cuts a full tile down to the partial tile id.
func prefix(id TileID, full []byte) ([]byte, error) {
	if !id.Entries {
		if len(full) < int(id.Width)*HashSize {
			return nil, &CorruptError{Path: id.Path(), Err: errors.New("full tile is short")}
		}
		return full[:int(id.Width)*HashSize], nil
	}
	off := 0
	for i := 0; i < int(id.Width); i++ {
		if off+2 > len(full) {
			return nil, &CorruptError{Path: id.Path(), Err: errors.New("full bundle is short")}
		}
		off += 2 + int(binary.BigEndian.Uint16(full[off:]))
	}
	if off > len(full) {
		return nil, &CorruptError{Path: id.Path(), Err: errors.New("full bundle is short")}
	}
	return full[:off], nil
}

// publishedSize returns the size of the committed checkpoint: what is
// served.
func (l *Log) publishedSize() uint64 {
	if cp := l.cp.Load(); cp != nil {
		return cp.Size
	}
	return 0
}

// signedSize returns the size of the latest checkpoint, candidate or
// committed: what the log's owner may read.
func (l *Log) signedSize() uint64 {
	size := l.publishedSize()
	if c := l.cand.Load(); c != nil && c.Size > size {
		size = c.Size
	}
	return size
}

// Entry returns the entry at index, which must be in the latest checkpoint
// (candidate or committed).
func (l *Log) Entry(ctx context.Context, index uint64) ([]byte, error) {
	return l.entry(ctx, index, l.signedSize())
}

func (l *Log) entry(ctx context.Context, index, size uint64) ([]byte, error) {
	if index >= size {
		return nil, fmt.Errorf("%w: entry %d, checkpoint size %d", ErrNotPublished, index, size)
	}
	n := index / TileWidth
	w := tileWidthAt(0, n, size)
	id := TileID{Entries: true, Index: n}
	if w < TileWidth {
		id.Width = uint16(w)
	}
	data, err := l.readTile(ctx, id, size)
	if err != nil {
		return nil, err
	}
	entries, err := parseBundle(data, int(w))
	if err != nil {
		return nil, &CorruptError{Path: id.Path(), Err: err}
	}
	return entries[index%TileWidth], nil
}

// InclusionProof returns the RFC 6962 inclusion proof of entry index in
// the tree of the given size (at most the latest checkpoint's, candidate or
// committed).
func (l *Log) InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error) {
	return l.inclusionProof(ctx, index, size, l.signedSize())
}

func (l *Log) inclusionProof(ctx context.Context, index, size, limit uint64) ([][]byte, error) {
	if size > limit {
		return nil, fmt.Errorf("%w: tree size %d, checkpoint size %d", ErrNotPublished, size, limit)
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOutOfRange, err)
	}
	return l.proofHashes(ctx, nodes, size)
}

// ConsistencyProof returns the RFC 6962 consistency proof between two tree
// sizes (at most the latest checkpoint's, candidate or committed).
func (l *Log) ConsistencyProof(ctx context.Context, oldSize, newSize uint64) ([][]byte, error) {
	return l.consistencyProof(ctx, oldSize, newSize, l.signedSize())
}

func (l *Log) consistencyProof(ctx context.Context, oldSize, newSize, limit uint64) ([][]byte, error) {
	if newSize > limit {
		return nil, fmt.Errorf("%w: tree size %d, checkpoint size %d", ErrNotPublished, newSize, limit)
	}
	nodes, err := proof.Consistency(oldSize, newSize)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrOutOfRange, err)
	}
	return l.proofHashes(ctx, nodes, newSize)
}

func (l *Log) proofHashes(ctx context.Context, nodes proof.Nodes, size uint64) ([][]byte, error) {
	hashes := make([][]byte, len(nodes.IDs))
	for i, id := range nodes.IDs {
		h, err := l.nodeHash(ctx, id, size)
		if err != nil {
			return nil, err
		}
		hashes[i] = h
	}
	return nodes.Rehash(hashes, hasher.HashChildren)
}

// nodeHash returns the hash of a perfect subtree in a tree of the given
// size: tiles store tree levels 0, 8, 16...; the levels between are computed
// once per tile (see levels) and cached with it.
func (l *Log) nodeHash(ctx context.Context, id compact.NodeID, size uint64) ([]byte, error) {
	level := uint8(id.Level / TileHeight)
	h := id.Level % TileHeight
	first := id.Index << h
	tid := TileID{Level: level, Index: first / TileWidth}
	w := tileWidthAt(level, tid.Index, size)
	if w < TileWidth {
		tid.Width = uint16(w)
	}
	rows, err := l.levels(ctx, tid)
	if err != nil {
		return nil, err
	}
	off := (first % TileWidth) >> h // the node's index among the tile's nodes of height h
	row := rows[h]
	if (off+1)*HashSize > uint64(len(row)) {
		return nil, &CorruptError{Path: tid.Path(), Err: fmt.Errorf("tile holds %d nodes of height %d, need %d", len(row)/HashSize, h, off+1)}
	}
	return row[off*HashSize : (off+1)*HashSize : (off+1)*HashSize], nil
}

// levels returns a hash tile with the levels inside it: row 0 is the tile,
// row k the hashes of its perfect subtrees of 2^k stored hashes. A proof
// then costs lookups, not hashing.
func (l *Log) levels(ctx context.Context, id TileID) ([][]byte, error) {
	if v, ok := l.levelCache.get(id); ok {
		return v.([][]byte), nil
	}
	tile, err := l.readTile(ctx, id, l.signedSize())
	if err != nil {
		return nil, err
	}
	if len(tile)%HashSize != 0 {
		return nil, &CorruptError{Path: id.Path(), Err: fmt.Errorf("tile of %d bytes is not a whole number of hashes", len(tile))}
	}
	rows := make([][]byte, TileHeight)
	rows[0] = tile
	size := len(tile)
	for k := 1; k < TileHeight; k++ {
		prev := rows[k-1]
		row := make([]byte, 0, len(prev)/2)
		for i := 0; i+2*HashSize <= len(prev); i += 2 * HashSize {
			row = append(row, hasher.HashChildren(prev[i:i+HashSize], prev[i+HashSize:i+2*HashSize])...)
		}
		rows[k] = row
		size += len(row)
	}
	l.levelCache.put(id, rows, size)
	return rows, nil
}

// tileCache keeps recently used tiles, bounded by their size in bytes.
// Tiles never change once written (a partial tile of a given width is a
// prefix of its full tile), so entries never go stale.
type tileCache struct {
	mu       sync.Mutex
	maxBytes int
	bytes    int
	ll       *list.List
	items    map[TileID]*list.Element
}

type cacheItem struct {
	id   TileID
	data any
	size int
}

func newTileCache(maxBytes int) *tileCache {
	return &tileCache{maxBytes: maxBytes, ll: list.New(), items: make(map[TileID]*list.Element)}
}

func (c *tileCache) get(id TileID) (any, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[id]; ok {
		c.ll.MoveToFront(e)
		return e.Value.(*cacheItem).data, true
	}
	return nil, false
}

func (c *tileCache) put(id TileID, data any, size int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.items[id]; ok || size > c.maxBytes {
		return
	}
	c.items[id] = c.ll.PushFront(&cacheItem{id, data, size})
	c.bytes += size
	for c.bytes > c.maxBytes {
		e := c.ll.Back()
		it := e.Value.(*cacheItem)
		c.ll.Remove(e)
		delete(c.items, it.id)
		c.bytes -= it.size
	}
}
