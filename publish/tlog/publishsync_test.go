package tlog

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
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

// slowTileSyncs is an FS whose partial tile syncs wait until release is
// closed: a disk whose fsyncs are slow.
type slowTileSyncs struct {
	FS
	release chan struct{}
	waiting chan struct{} // gets a value when a partial tile sync waits
}

type slowFile struct {
	AppendFile
	fs *slowTileSyncs
}

func (s *slowTileSyncs) Append(name string, create bool, size int64) (AppendFile, error) {
	f, err := s.FS.Append(name, create, size)
	if err != nil || !strings.Contains(name, ".p/") {
		return f, err
	}
	return slowFile{f, s}, nil
}

func (f slowFile) Sync() error {
	select {
	case f.fs.waiting <- struct{}{}:
	default:
	}
	<-f.fs.release
	return f.AppendFile.Sync()
}

// TestPublishDoesNotWaitForTileSyncs: Publish returns its candidate while
// the partial tiles are being synced (the candidate's cosigners check it
// against their own replicas, so their time and the fsyncs overlap), and
// Commit stores the checkpoint only once those tiles are durable. Before,
// Publish waited for the syncs: a candidate was an fsync or two late on
// every node, and a peer's cosignature waited for its own candidate.
func TestPublishDoesNotWaitForTileSyncs(t *testing.T) {
	s, _ := testKeys(t)
	slow := &slowTileSyncs{FS: newMemFS(), release: make(chan struct{}), waiting: make(chan struct{}, 1)}
	l, err := Open(context.Background(), Options{Dir: "memfs", FS: slow, Origin: testOrigin, Logger: quiet, Signer: s})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i := range 3 {
		if _, err := l.Append(ctx, fmt.Appendf(nil, "entry %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	published := make(chan *Checkpoint, 1)
	go func() {
		cp, err := l.Publish(ctx)
		if err != nil {
			t.Error(err)
		}
		published <- cp
	}()
	var cand *Checkpoint
	select {
	case cand = <-published:
	case <-time.After(5 * time.Second):
		close(slow.release)
		t.Fatal("Publish waited for the partial tiles' syncs")
	}
	if cand == nil {
		t.FailNow()
	}
	select {
	case <-slow.waiting:
	case <-ctx.Done():
		t.Fatal("no partial tile was synced for the candidate")
	}
	committed := make(chan error, 1)
	go func() { committed <- l.Commit(cand.Note) }()
	select {
	case err := <-committed:
		close(slow.release)
		t.Fatalf("Commit returned (%v) before the candidate's tiles were durable", err)
	case <-time.After(100 * time.Millisecond):
	}
	if cp := l.Checkpoint(); cp != nil {
		t.Fatalf("a checkpoint of size %d is served before its tiles are durable", cp.Size)
	}
	close(slow.release)
	if err := <-committed; err != nil {
		t.Fatal(err)
	}
	if cp := l.Checkpoint(); cp == nil || cp.Size != 3 {
		t.Fatalf("committed checkpoint %v, want size 3", cp)
	}
}
