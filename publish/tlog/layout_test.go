package tlog

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestTilePaths(t *testing.T) {
	for _, tc := range []struct {
		id   TileID
		path string
	}{
		{TileID{Level: 0, Index: 0}, "tile/0/000"},
		{TileID{Level: 1, Index: 1234067}, "tile/1/x001/x234/067"},
		{TileID{Level: 0, Index: 1234067, Width: 8}, "tile/0/x001/x234/067.p/8"},
		{TileID{Entries: true, Index: 1000}, "tile/entries/x001/000"},
		{TileID{Entries: true, Index: 5, Width: 255}, "tile/entries/005.p/255"},
		{TileID{Level: 63, Index: 1<<64 - 1}, "tile/63/x018/x446/x744/x073/x709/x551/615"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			if got := tc.id.Path(); got != tc.path {
				t.Fatalf("Path: got %q, want %q", got, tc.path)
			}
			got, err := ParseTilePath(tc.path)
			if err != nil || got != tc.id {
				t.Fatalf("ParseTilePath: got %+v, %v; want %+v", got, err, tc.id)
			}
		})
	}
}

func TestParseTilePathRejects(t *testing.T) {
	for _, p := range []string{
		"", "tile", "tile/", "tile/0", "tile/0/", "tiles/0/000", "/tile/0/000",
		"tile/64/000", "tile/-1/000", "tile/00/000", "tile/+1/000", "tile/a/000",
		"tile/0/00", "tile/0/0000", "tile/0/x000", "tile/0/001/002", "tile/0/x001/x002",
		"tile/0/x1/000", "tile/0/000.p/0", "tile/0/000.p/256", "tile/0/000.p/01", "tile/0/000.p/",
		"tile/0/000.p/5/6", "tile/0/000.P/5", "tile/0/x000/001", // a leading zero group is not canonical
		"tile/0/../../etc/passwd", "tile/entries/../0/000", "tile/0/./000", "tile/0//000",
		"tile/0/000/", "tile/entries/000.p/", "tile/0/x018/x446/x744/x073/x709/x551/616", // overflow
		"tile/0/x001/x002/x003/x004/x005/x006/x007/008", "tile/0/\x00", "tile/0/000\n",
	} {
		t.Run(strings.ReplaceAll(p, "/", "|"), func(t *testing.T) {
			if id, err := ParseTilePath(p); err == nil {
				t.Fatalf("ParseTilePath(%q) = %+v, want an error", p, id)
			} else if !errors.Is(err, ErrBadTilePath) {
				t.Fatalf("error %v does not wrap ErrBadTilePath", err)
			}
		})
	}
}

func FuzzParseTilePath(f *testing.F) {
	for _, s := range []string{"tile/0/000", "tile/1/x001/x234/067.p/8", "tile/entries/x001/000", "tile/../000", "tile/0/000.p/256"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		id, err := ParseTilePath(p)
		if err != nil {
			return
		}
		if id.Path() != p {
			t.Fatalf("%q parses to %+v, which formats as %q", p, id, id.Path())
		}
		clean := filepath.Clean("/log/" + p)
		if !strings.HasPrefix(clean, "/log/tile/") || strings.Contains(p, "..") {
			t.Fatalf("%q escapes the log folder: %s", p, clean)
		}
	})
}

func TestTileWidthAt(t *testing.T) {
	for _, tc := range []struct {
		level   uint8
		n, size uint64
		want    uint64
	}{
		{0, 0, 0, 0}, {0, 0, 1, 1}, {0, 0, 256, 256}, {0, 0, 300, 256}, {0, 1, 300, 44}, {0, 2, 300, 0},
		{1, 0, 255, 0}, {1, 0, 256, 1}, {1, 0, 65535, 255}, {1, 0, 65536, 256}, {1, 1, 65536 + 512, 2},
	} {
		if got := tileWidthAt(tc.level, tc.n, tc.size); got != tc.want {
			t.Errorf("tileWidthAt(%d, %d, %d): got %d, want %d", tc.level, tc.n, tc.size, got, tc.want)
		}
	}
}
