package tlog

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Tile geometry of C2SP tlog-tiles: tiles are 256 hashes wide and 8 levels
// high, and entry bundles hold 256 entries.
const (
	TileHeight = 8
	TileWidth  = 1 << TileHeight
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
// or "tile/entries/000".
func (t TileID) Path() string {
	var b strings.Builder
	b.WriteString("tile/")
	if t.Entries {
		b.WriteString("entries/")
	} else {
		b.WriteString(strconv.Itoa(int(t.Level)))
		b.WriteByte('/')
	}
	b.WriteString(formatIndex(t.Index))
	if t.Width > 0 {
		b.WriteString(".p/")
		b.WriteString(strconv.Itoa(int(t.Width)))
	}
	return b.String()
}

func (t TileID) String() string { return t.Path() }

// formatIndex writes N in groups of three digits, all but the last with an
// "x" prefix: 1234067 → "x001/x234/067".
func formatIndex(n uint64) string {
	s := fmt.Sprintf("%03d", n%1000)
	for n /= 1000; n > 0; n /= 1000 {
		s = fmt.Sprintf("x%03d/%s", n%1000, s)
	}
	return s
}

// ErrBadTilePath is wrapped by the errors of ParseTilePath. Use errors.Is.
var ErrBadTilePath = errors.New("tlog: malformed tile path")

// ParseTilePath parses a tlog-tiles path such as "tile/1/x001/234.p/5" or
// "tile/entries/000". It accepts exactly the canonical form (no leading
// zeros beyond the three-digit groups, no empty or dot segments), so a path
// that parses can be joined to a directory without escaping it.
func ParseTilePath(path string) (TileID, error) {
	bad := func(why string) (TileID, error) {
		return TileID{}, fmt.Errorf("%w %q: %s", ErrBadTilePath, path, why)
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
		l, err := strconv.ParseUint(first, 10, 8)
		if err != nil || l > 63 || strconv.FormatUint(l, 10) != first {
			return bad("level is not a number from 0 to 63")
		}
		t.Level = uint8(l)
	}
	if i := strings.Index(rest, ".p/"); i >= 0 {
		w, err := strconv.ParseUint(rest[i+3:], 10, 16)
		if err != nil || w < 1 || w >= TileWidth || strconv.FormatUint(w, 10) != rest[i+3:] {
			return bad("partial width is not a number from 1 to 255")
		}
		t.Width = uint16(w)
		rest = rest[:i]
	}
	groups := strings.Split(rest, "/")
	if len(groups) > 7 {
		return bad("index has too many groups")
	}
	var n uint64
	for i, g := range groups {
		last := i == len(groups)-1
		if !last {
			var ok bool
			if g, ok = strings.CutPrefix(g, "x"); !ok {
				return bad("index group without x prefix")
			}
		}
		if len(g) != 3 || g[0] < '0' || g[0] > '9' || g[1] < '0' || g[1] > '9' || g[2] < '0' || g[2] > '9' {
			return bad("index group is not three digits")
		}
		d, _ := strconv.Atoi(g)
		if n > (1<<64-1-uint64(d))/1000 {
			return bad("index overflows")
		}
		n = n*1000 + uint64(d)
	}
	t.Index = n
	if t.Path() != path {
		return bad("not in canonical form")
	}
	return t, nil
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
