package tlog

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

// TestPublishSkipsUnchangedPartials: a partial tile that an earlier
// Publish wrote and synced holds the same bytes until its full tile
// replaces it (its width names it), so a later Publish neither rewrites nor
// resyncs it: each rewrite was a new file and a new folder entry to sync,
// fsyncs that compete with the write-ahead log's.
func TestPublishSkipsUnchangedPartials(t *testing.T) {
	s, _ := testKeys(t)
	m := newMemFS()
	var mu sync.Mutex
	var ops []string
	m.fault = func(op, name string) error {
		if strings.Contains(name, ".p") {
			mu.Lock()
			ops = append(ops, op+" "+name)
			mu.Unlock()
		}
		return nil
	}
	l, err := Open(context.Background(), memOptions(m, func(o *Options) { o.Signer = s }))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	appendN := func(n int) {
		t.Helper()
		for i := range n {
			if _, err := l.Append(ctx, []byte(fmt.Sprintf("entry %d", i))); err != nil {
				t.Fatal(err)
			}
		}
	}
	// 300 entries: partial tiles entries/001.p/44, 0/001.p/44, 1/000.p/1.
	appendN(300)
	if _, err := publishCommit(l, ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	if !slices.Contains(ops, "sync tile/1/000.p/1") {
		t.Fatalf("the first Publish did not sync tile/1/000.p/1: %q", ops)
	}
	ops = nil
	mu.Unlock()

	// One more entry changes the entry bundle and level 0, not level 1.
	appendN(1)
	cp, err := publishCommit(l, ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != 301 {
		t.Fatalf("checkpoint size %d, want 301", cp.Size)
	}
	mu.Lock()
	got := slices.Clone(ops)
	mu.Unlock()
	var syncs []string
	for _, op := range got {
		if strings.Contains(op, "tile/1/") {
			t.Errorf("the second Publish touched the unchanged partial tile: %s", op)
		}
		if strings.HasPrefix(op, "sync ") {
			syncs = append(syncs, op)
		}
	}
	slices.Sort(syncs)
	if want := []string{"sync tile/0/001.p/45", "sync tile/entries/001.p/45"}; !slices.Equal(syncs, want) {
		t.Errorf("the second Publish synced %q, want %q", syncs, want)
	}
	// The tile it did not rewrite is still there and served.
	if _, err := l.ReadTile(ctx, TileID{Level: 1, Index: 0, Width: 1}); err != nil {
		t.Errorf("reading tile/1/000.p/1: %v", err)
	}
}
