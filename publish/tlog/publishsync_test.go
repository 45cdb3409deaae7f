package tlog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
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

// TestTileSyncFailureRewrites: a partial tile whose fsync failed is
// written again, as a new file, before the retry syncs it. On Linux an
// fsync that failed with EIO leaves the pages it did not write marked
// clean: syncing the same file again succeeds and writes nothing, and the
// committed checkpoint's tile was lost at the next power cut (memFS
// models that). Before, the retry synced the same files again: Open after
// the crash found the checkpoint's partial tile empty.
func TestTileSyncFailureRewrites(t *testing.T) {
	s, _ := testKeys(t)
	ctx := context.Background()
	for _, failing := range []string{"tile/entries/001.p/44", "tile/1/000.p/1"} {
		t.Run(strings.ReplaceAll(failing, "/", "|"), func(t *testing.T) {
			m := newMemFS()
			mod := func(o *Options) { o.Signer = s }
			// 300 entries: partial tiles entries/001.p/44, 0/001.p/44 and
			// 1/000.p/1, all written by this Publish.
			l, acked := openMem(t, m, mod, 300)
			var failed atomic.Bool
			m.mu.Lock()
			m.fault = func(op, name string) error {
				if op == "sync" && name == failing && failed.CompareAndSwap(false, true) {
					return syscall.EIO
				}
				return nil
			}
			m.mu.Unlock()
			cand, err := l.Publish(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Commit(cand.Note); !errors.Is(err, syscall.EIO) {
				t.Fatalf("Commit with a failed tile fsync: %v, want EIO", err)
			}
			// The retry: publish again (the same size), commit.
			last, err := publishCommit(l, ctx)
			if err != nil {
				t.Fatalf("publishing again after the failed fsync: %v", err)
			}
			if !failed.Load() {
				t.Fatalf("%s was never synced", failing)
			}
			l = crashRecover(t, l, m, mod, "the retry committed", acked, last)
			defer l.Close()
			id, err := ParseTilePath(failing)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := l.ReadTile(ctx, id); err != nil {
				t.Errorf("reading %s of the committed checkpoint: %v", failing, err)
			}
		})
	}
}

// TestTileSyncFailureFailsTheNextSync: a candidate published while the
// sync of the one before it is running shares that one's unchanged
// partial tiles (not written again). When that sync fails, the next one
// must not sync the shared tile as it is (its data may be gone, its
// pages marked clean): it fails too, and the next Publish writes the
// tiles again. Before, the second candidate's sync succeeded without
// writing anything, and its checkpoint's tile was lost at a power cut.
func TestTileSyncFailureFailsTheNextSync(t *testing.T) {
	s, _ := testKeys(t)
	ctx := context.Background()
	const failing = "tile/1/000.p/1"
	m := newMemFS()
	var failed atomic.Bool
	m.fault = func(op, name string) error {
		if op == "sync" && name == failing && failed.CompareAndSwap(false, true) {
			return syscall.EIO
		}
		return nil
	}
	gate := &slowTileSyncs{FS: m, release: make(chan struct{}), waiting: make(chan struct{}, 1)}
	mod := func(o *Options) { o.Signer = s; o.FS = gate }
	l, acked := openMem(t, m, mod, 300)
	if _, err := l.Publish(ctx); err != nil { // its sync waits
		t.Fatal(err)
	}
	<-gate.waiting
	if err := acked.add(ctx, l, 1); err != nil {
		t.Fatal(err)
	}
	second, err := l.Publish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	close(gate.release) // the first sync fails on tile/1/000.p/1
	if err := l.Commit(second.Note); err == nil {
		t.Logf("the second candidate was committed after the first one's tile sync failed")
	} else if !errors.Is(err, syscall.EIO) {
		t.Fatalf("Commit after the sync before failed: %v, want EIO", err)
	}
	last, err := publishCommit(l, ctx)
	if err != nil {
		t.Fatalf("publishing again: %v", err)
	}
	crashRecover(t, l, m, func(o *Options) { o.Signer = s }, "a failed fsync before", acked, last).Close()
}
