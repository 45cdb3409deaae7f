package tlog

import (
	"errors"
	"fmt"
	"github.com/transparency-dev/tessera/api/layout"
	"strconv"
	"strings"
)

// Tile geometry of C2SP tlog-tiles: tiles are 256 hashes wide and 8 levels
// high, and entry bundles hold 256 entries.
const (
	TileHeight = layout.TileHeight
	TileWidth  = layout.TileWidth
	HashSize   = 32
)

// MaxEntrySize is the largest entry the log stores: entry bundles prefix
// each entry with a 16-bit big-endian length.
const MaxEntrySize = 1<<16 - 1

// TileID names a tile: Level 0..63 for hash tiles, or the entry bundle
// when Entries is set; Width is 1..255 for a partial tile and 0 for a full one.
type TileID struct {
	Entries bool
	Level   uint8
	Index   uint64
	Width   uint16
}

// Path returns the tile's path under the log root, e.g. "tile/0/x001/234.p/7"
// or "tile/entries/000" (tessera's layout package writes it).
func (t TileID) Path() string {
	if t.Entries {
		return layout.EntriesPath(t.Index, uint8(t.Width))
	}
	return layout.TilePath(uint64(t.Level), t.Index, uint8(t.Width))
}

func (t TileID) String() string { return t.Path() }

// ErrBadTilePath is wrapped by the errors of ParseTilePath. Use errors.Is.
var ErrBadTilePath = errors.New("tlog: malformed tile path")

// ParseTilePath parses a tlog-tiles path such as "tile/1/x001/234.p/5" or
// "tile/entries/000". It accepts exactly the canonical form (no leading
// zeros beyond the three-digit groups, no empty or dot segments), so a path
// that parses can be joined to a directory without escaping it.
func ParseTilePath(path string) (TileID, error) {
	bad := func(why string) (TileID, error) {
		return TileID{}, fmt.Errorf("%w %q: %s", ErrBadTilePath, quotable(path), why)
	}
	if len(path) > maxTilePath {
		return bad("too long")
	}
	rest, ok := strings.CutPrefix(path, "tile/")
	if !ok {
		return bad("does not start with tile/")
	}
	var t TileID
	first, rest, ok := strings.Cut(rest, "/")
	if !ok {
		return bad("no index")
	}
	if first == "entries" {
		t.Entries = true
	} else {
		l, err := layout.ParseTileLevel(first)
		if err != nil || strconv.FormatUint(l, 10) != first {
			return bad("level is not a number from 0 to 63")
		}
		t.Level = uint8(l)
	}
	if i := strings.Index(rest, ".p/"); i >= 0 {
		w, err := strconv.ParseUint(rest[i+3:], 10, 16)
		if err != nil || w < 1 || w >= TileWidth || strconv.FormatUint(w, 10) != rest[i+3:] {
			return bad("partial width is not a number from 1 to 255")
		}
	}
	n, w, err := layout.ParseTileIndexPartial(rest)
	if err != nil {
		return bad("index is not groups of three digits, all but the last prefixed with x")
	}
	t.Index, t.Width = n, uint16(w)
	// The layout package is lenient in places (a "+" sign, a stray ".p");
	// only the canonical form names a tile.
	if t.Path() != path {
		return bad("not in canonical form")
	}
	return t, nil
}

// maxTilePath bounds the paths ParseTilePath reads: the longest canonical
// path is well below it.
const maxTilePath = 64

// quotable cuts a hostile path down for an error message.
func quotable(s string) string {
	if len(s) > maxTilePath {
		return s[:maxTilePath] + "..."
	}
	return s
}

// tileWidthAt returns how many hashes (or entries) tile index n of a level
// holds in a tree of the given size: 0 if none, TileWidth if full.
func tileWidthAt(level uint8, n, size uint64) uint64 {
	nodes := size >> (TileHeight * uint(level)) // nodes at tree level 8*level
	if nodes <= n*TileWidth {
		return 0
	}
	return min(nodes-n*TileWidth, TileWidth)
}
