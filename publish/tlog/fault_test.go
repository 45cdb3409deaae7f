package tlog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/transparency-dev/merkle/proof"
)

func memOptions(m *memFS, mod func(*Options)) Options {
	o := Options{Dir: "memfs", FS: m, Origin: testOrigin, Logger: quiet}
	if mod != nil {
		mod(&o)
	}
	return o
}

// reopen opens the log in m, collecting every entry it replays.
func reopen(t *testing.T, m *memFS, mod func(*Options)) (*Log, map[uint64][]byte, error) {
	t.Helper()
	got := make(map[uint64][]byte)
	o := memOptions(m, mod)
	o.Visit = func(i uint64, e []byte) error { got[i] = bytes.Clone(e); return nil }
	l, err := Open(context.Background(), o)
	return l, got, err
}

// checkRecovered checks a log after a crash: every acknowledged entry is
// there with its bytes, the checkpoint is at least the last committed one,
// and proofs verify against it.
func checkRecovered(t *testing.T, what string, l *Log, got map[uint64][]byte, acked map[uint64][]byte, last *Checkpoint) {
	t.Helper()
	ctx := context.Background()
	for i, e := range acked {
		if !bytes.Equal(got[i], e) {
			t.Fatalf("%s: acknowledged entry %d is %q after recovery, want %q", what, i, got[i], e)
		}
	}
	if l.Size() < uint64(len(acked)) {
		t.Fatalf("%s: size %d, %d entries were acknowledged", what, l.Size(), len(acked))
	}
	cp := l.Checkpoint()
	if last == nil {
		return
	}
	if cp == nil || cp.Size < last.Size {
		t.Fatalf("%s: checkpoint %v after recovery, size %d was committed", what, cp, last.Size)
	}
	if cp.Size == last.Size && !bytes.Equal(cp.Hash, last.Hash) {
		t.Fatalf("%s: checkpoint root changed", what)
	}
	c, err := l.ConsistencyProof(ctx, last.Size, cp.Size)
	if err != nil {
		t.Fatalf("%s: ConsistencyProof: %v", what, err)
	}
	if err := proof.VerifyConsistency(hasher, last.Size, cp.Size, c, last.Hash, cp.Hash); err != nil {
		t.Fatalf("%s: consistency proof does not verify: %v", what, err)
	}
	for _, i := range []uint64{0, cp.Size / 2, cp.Size - 1} {
		if cp.Size == 0 {
			break
		}
		p, err := l.InclusionProof(ctx, i, cp.Size)
		if err != nil {
			t.Fatalf("%s: InclusionProof(%d, %d): %v", what, i, cp.Size, err)
		}
		if err := proof.VerifyInclusion(hasher, i, cp.Size, hasher.HashLeaf(got[i]), p, cp.Hash); err != nil {
			t.Fatalf("%s: inclusion proof of %d does not verify: %v", what, i, err)
		}
		e, err := l.Entry(ctx, i)
		if err != nil || !bytes.Equal(e, got[i]) {
			t.Fatalf("%s: Entry(%d) = %q, %v", what, i, e, err)
		}
	}
}

// TestCrashBelowProcess cuts the machine's power at a random point of a
// workload (appends from several goroutines, publishes and commits,
// segment rotations): the file system then keeps only what was synced, and
// of the unsynced tail of a file a random part. Recovery must find every
// acknowledged entry and the last committed checkpoint.
func TestCrashBelowProcess(t *testing.T) {
	s, _ := testKeys(t)
	seeds := 200
	if testing.Short() {
		seeds = 20
	}
	var cut, totalAcked, commits int
	for seed := 0; seed < seeds; seed++ {
		rng := rand.New(rand.NewPCG(uint64(seed), 7))
		m := newMemFS()
		crashAt := 1 + rng.IntN(600)
		ops := 0
		m.fault = func(op, name string) error {
			switch op {
			case "read", "readdir", "stat":
				return nil
			}
			if ops++; ops >= crashAt {
				return errCrashed
			}
			return nil
		}
		what := fmt.Sprintf("seed %d, power cut at operation %d", seed, crashAt)
		mod := func(o *Options) { o.Signer = s; o.SegmentSize = 3000; o.MaxBatch = 16 }

		var mu sync.Mutex
		acked := make(map[uint64][]byte)
		var last *Checkpoint
		l, err := Open(context.Background(), memOptions(m, mod))
		if err == nil {
			var wg sync.WaitGroup
			for w := 0; w < 4; w++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; i < 120; i++ {
						e := []byte(fmt.Sprintf("w%d e%d %s", w, i, strings.Repeat("p", (i*7+w)%90)))
						if w == 3 {
							// One writer appends batches of three: all
							// acknowledged together, all recovered.
							batch := [][]byte{e, append(e, '1'), append(e, '2')}
							first, err := l.AppendBatch(context.Background(), batch)
							if err != nil {
								return
							}
							mu.Lock()
							for k, be := range batch {
								acked[first+uint64(k)] = be
							}
							mu.Unlock()
							continue
						}
						idx, err := l.Append(context.Background(), e)
						if err != nil {
							return
						}
						mu.Lock()
						acked[idx] = e
						mu.Unlock()
						if w == 0 && i%25 == 0 { // from its first entry on: a power cut falls after a commit in most runs, however busy the machine
							cand, err := l.Publish(context.Background())
							if err != nil {
								return
							}
							if err := l.Commit(cand.Note); err != nil {
								return
							}
							mu.Lock()
							last = l.Checkpoint()
							mu.Unlock()
						}
					}
				}()
			}
			wg.Wait()
			l.Close()
		}
		if ops >= crashAt {
			cut++
		}
		totalAcked += len(acked)
		if last != nil {
			commits++
		}
		m.Crash(rng)

		l, got, err := reopen(t, m, mod)
		if err != nil {
			t.Fatalf("%s: Open after the crash: %v", what, err)
		}
		checkRecovered(t, what, l, got, acked, last)
		// The log goes on.
		if _, err := l.Append(context.Background(), []byte("after")); err != nil {
			t.Fatalf("%s: Append after recovery: %v", what, err)
		}
		if _, err := publishCommit(l, context.Background()); err != nil {
			t.Fatalf("%s: publish after recovery: %v", what, err)
		}
		l.Close()
	}
	// The power cuts must fall inside the workloads, or the test shows
	// nothing. How many runs commit before the cut depends on the
	// machine's load (smaller batches use more operations): 100 of 200
	// on a quiet machine, about 60 at load 20.
	t.Logf("%d runs: %d cut during the workload, %d entries acknowledged, %d with a committed checkpoint", seeds, cut, totalAcked, commits)
	if cut < seeds*3/4 || commits < seeds/8 {
		t.Fatalf("only %d of %d power cuts fell inside the workload (%d with a committed checkpoint)", cut, seeds, commits)
	}
}

// TestDiskFull checks that a full disk (ENOSPC) fails appends with a clear
// error, loses nothing acknowledged and truncates nothing published.
func TestDiskFull(t *testing.T) {
	s, _ := testKeys(t)
	ctx := context.Background()
	for _, failOp := range []string{"write", "sync"} {
		t.Run(failOp, func(t *testing.T) {
			m := newMemFS()
			mod := func(o *Options) { o.Signer = s; o.SegmentSize = 2000 }
			l, err := Open(ctx, memOptions(m, mod))
			if err != nil {
				t.Fatal(err)
			}
			acked := make(map[uint64][]byte)
			for i := 0; i < 100; i++ {
				acked[uint64(i)] = entry(i)
				if _, err := l.Append(ctx, entry(i)); err != nil {
					t.Fatal(err)
				}
			}
			last, err := publishCommit(l, ctx)
			if err != nil {
				t.Fatal(err)
			}
			m.mu.Lock()
			m.fault = func(op, name string) error {
				if op == failOp {
					return syscall.ENOSPC
				}
				return nil
			}
			m.mu.Unlock()
			_, err = l.Append(ctx, []byte("no room"))
			if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "no space left on device") || !strings.Contains(err.Error(), "restart to recover") {
				t.Fatalf("Append on a full disk: %v", err)
			}
			if _, err := l.Append(ctx, []byte("still no room")); err == nil {
				t.Fatal("Append after a write failure succeeded")
			}
			if _, err := l.Publish(ctx); err == nil {
				t.Fatal("Publish after a write failure succeeded")
			}
			l.Close()
			// Room again, and a crash for good measure.
			m.Crash(nil)
			l, got, err := reopen(t, m, mod)
			if err != nil {
				t.Fatalf("Open after the disk was full: %v", err)
			}
			defer l.Close()
			checkRecovered(t, "disk full", l, got, acked, last)
			if l.Size() != 100 {
				t.Fatalf("size %d, want 100 (the failed append was never acknowledged)", l.Size())
			}
		})
	}
}

// baseMemLog returns a log in memory with n entries and a checkpoint at
// size cp, closed, and its entries.
func baseMemLog(t testing.TB, n, cp int, segmentSize int64) (*memFS, [][]byte) {
	s, _ := testKeys(t)
	m := newMemFS()
	l, err := Open(context.Background(), memOptions(m, func(o *Options) { o.Signer = s; o.SegmentSize = segmentSize }))
	if err != nil {
		t.Fatal(err)
	}
	var entries [][]byte
	for i := 0; i < n; i++ {
		if i == cp {
			if _, err := publishCommit(l, context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		entries = append(entries, entry(i))
		if _, err := l.Append(context.Background(), entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	return m, entries
}

// checkDamaged opens a damaged log: Open fails with an error of package
// tlog, or recovers a log that holds every published entry.
func checkDamaged(t *testing.T, m *memFS, entries [][]byte, cp int) {
	l, got, err := reopen(t, m, nil)
	if err != nil {
		if !strings.HasPrefix(err.Error(), "tlog: ") {
			t.Fatalf("Open error without the package prefix: %v", err)
		}
		return
	}
	defer l.Close()
	if l.Size() < uint64(cp) {
		t.Fatalf("recovered %d entries, %d were published", l.Size(), cp)
	}
	if c := l.Checkpoint(); c == nil || c.Size != uint64(cp) {
		t.Fatalf("checkpoint %v, want size %d", c, cp)
	}
	for i := 0; i < cp; i++ {
		if !bytes.Equal(got[uint64(i)], entries[i]) {
			t.Fatalf("published entry %d is %q, want %q", i, got[uint64(i)], entries[i])
		}
	}
	checkRecovered(t, "damaged", l, got, nil, l.Checkpoint())
}

// FuzzRecoverWAL replaces the write-ahead log segment with fuzzed bytes:
// Open must fail with a clear error, leaving the segment as it was, or
// recover everything published. It never panics.
func FuzzRecoverWAL(f *testing.F) {
	base, entries := baseMemLog(f, 40, 25, 0)
	const seg = "wal/00000000000000000000.wal"
	orig, _ := base.ReadFile(seg)
	f.Add(orig)
	f.Add(orig[:len(orig)-3])
	f.Add(append(bytes.Clone(orig), 1, 2, 3))
	for _, off := range []int{5, 100, len(orig) / 2, len(orig) - 20} {
		b := bytes.Clone(orig)
		b[off] ^= 0x40
		f.Add(b)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		m := base.Clone()
		m.WriteFile(seg, data, true)
		l, _, err := reopen(t, m, nil)
		if err != nil {
			if after, _ := m.ReadFile(seg); !bytes.Equal(after, data) {
				t.Fatalf("a refused Open changed the segment")
			}
		} else {
			l.Close()
		}
		checkDamaged(t, m, entries, 25)
	})
}

// FuzzRecoverTile replaces a tile with fuzzed bytes: as FuzzRecoverWAL.
func FuzzRecoverTile(f *testing.F) {
	// Small segments: the first bundles are synced and their segments
	// retired, so damage there is an error; later tiles are repaired.
	base, entries := baseMemLog(f, 600, 530, 4000)
	tiles := []string{"tile/entries/000", "tile/entries/002.p/18", "tile/0/001", "tile/0/002.p/18", "tile/1/000.p/2"}
	for i, name := range tiles {
		data, err := base.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), data)
		d := bytes.Clone(data)
		d[len(d)/2] ^= 1
		f.Add(uint8(i), d)
		f.Add(uint8(i), d[:len(d)-1])
	}
	f.Fuzz(func(t *testing.T, which uint8, data []byte) {
		m := base.Clone()
		m.WriteFile(tiles[int(which)%len(tiles)], data, true)
		checkDamaged(t, m, entries, 530)
	})
}

// TestMissingTiles removes one tile at a time: a tile that was synced (its
// write-ahead log retired: here every full one) stops Open with an error
// naming it; any other is made again, and everything published can be read
// and proven.
func TestMissingTiles(t *testing.T) {
	base, entries := baseMemLog(t, 600, 530, 4000)
	for name, wantErr := range map[string]bool{
		"tile/entries/000": true, "tile/0/000": true,
		"tile/entries/002.p/18": false, "tile/0/002.p/18": false, "tile/1/000.p/2": false,
		"tile/entries/001": true, "tile/0/001": true,
	} {
		t.Run(strings.ReplaceAll(name, "/", "|"), func(t *testing.T) {
			m := base.Clone()
			if ok, _ := m.Exists(name); !ok {
				t.Fatalf("%s does not exist in the base log", name)
			}
			m.Remove(name)
			l, _, err := reopen(t, m, nil)
			if wantErr {
				var ce *CorruptError
				if !errors.As(err, &ce) || ce.Path != name || !strings.Contains(err.Error(), "missing") {
					t.Fatalf("Open without %s: %v, want a CorruptError naming it", name, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Open without %s: %v", name, err)
			}
			l.Close()
			checkDamaged(t, m, entries, 530)
			// And over HTTP, every tile of the checkpoint is there.
			l, _, _ = reopen(t, m, nil)
			defer l.Close()
			srv := httptest.NewServer(l.Handler())
			defer srv.Close()
			resp, err := srv.Client().Get(srv.URL + "/" + name)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 && strings.Contains(name, ".p/") {
				t.Fatalf("GET %s after recovery: %d", name, resp.StatusCode)
			}
		})
	}
}

// TestReadOnlyBesideWriter opens the log read-only again and again while a
// writer appends and commits: every open succeeds and serves a consistent
// checkpoint.
func TestReadOnlyBesideWriter(t *testing.T) {
	s, _ := testKeys(t)
	ctx := context.Background()
	dir := t.TempDir()
	w := openLog(t, dir, s, nil)
	defer w.Close()
	appendSeq(t, w, 0, 10)
	publishCommit(w, ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 10; i < 1000; i++ {
			if _, err := w.Append(ctx, entry(i)); err != nil {
				t.Error(err)
				return
			}
			if i%37 == 0 {
				publishCommit(w, ctx)
			}
		}
	}()
	for opens := 0; ; opens++ {
		select {
		case <-done:
			if opens == 0 {
				t.Fatal("the writer finished before a reader opened")
			}
			return
		default:
		}
		r, err := Open(ctx, Options{Dir: dir, Origin: testOrigin, Logger: quiet, ReadOnly: true})
		if err != nil {
			t.Fatalf("read-only Open %d beside a writer: %v", opens, err)
		}
		cp := r.Checkpoint()
		i := cp.Size - 1
		p, err := r.InclusionProof(ctx, i, cp.Size)
		if err != nil {
			t.Fatal(err)
		}
		if err := proof.VerifyInclusion(hasher, i, cp.Size, hasher.HashLeaf(entry(int(i))), p, cp.Hash); err != nil {
			t.Fatalf("open %d: %v", opens, err)
		}
		r.Close()
	}
}

// TestTileSyncAllFailureKeepsSegments: when the sync of the full tiles
// that precedes retiring write-ahead-log segments fails, the tiles it did
// not write may be lost while a later sync succeeds (the pages marked
// clean after EIO; memFS models that). So the log stops (appends fail,
// "restart to recover"), keeps every segment, and the restart writes
// the tiles the segments cover again before a sync can retire them: no
// acknowledged entry is lost, even at a power cut after the log went on.
// Before, the next rotation's sync succeeded, its retirement deleted the
// segments, and the entries of the lost tiles were gone at the next
// power cut ("tile/entries/000 is damaged: holds 0 entries").
func TestTileSyncAllFailureKeepsSegments(t *testing.T) {
	s, _ := testKeys(t)
	ctx := context.Background()
	m := newMemFS()
	var failed atomic.Bool
	m.fault = func(op, name string) error {
		if op == "syncall" && failed.CompareAndSwap(false, true) {
			return syscall.EIO
		}
		return nil
	}
	mod := func(o *Options) { o.Signer = s; o.SegmentSize = 4000 }
	l, err := Open(ctx, memOptions(m, mod))
	if err != nil {
		t.Fatal(err)
	}
	acked := ackedEntries{}
	// 256 entries: the segment rotates at the last, and the tile sync
	// (in the background) fails.
	if err := acked.add(ctx, l, 256); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); l.retireErr.Load() == nil; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no tile sync failed (tried: %v): the segments never rotated", failed.Load())
		}
	}
	// No more is published or appended.
	if _, err := l.Publish(ctx); !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "restart to recover") {
		t.Fatalf("Publish after the failed tile sync: %v, want EIO and restart to recover", err)
	}
	err = acked.add(ctx, l, 1)
	if !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "restart to recover") || !strings.Contains(err.Error(), "syncing the tiles") {
		t.Fatalf("appends after the failed tile sync: %v, want EIO, what failed and restart to recover", err)
	}
	l.Close()
	// A restart (the machine did not go down: the pages are still
	// cached, marked clean), more appends, rotations that retire segments.
	l, _, err = reopen(t, m, mod)
	if err != nil {
		t.Fatalf("Open after the failed tile sync: %v", err)
	}
	if err := acked.add(ctx, l, 2000); err != nil {
		t.Fatal(err)
	}
	last, err := publishCommit(l, ctx)
	if err != nil {
		t.Fatal(err)
	}
	crashRecover(t, l, m, mod, "failed tile sync", acked, last).Close()
}

// TestWALSyncFailureRestart: an append whose write-ahead-log fsync failed
// is not acknowledged and stops the log; the process restarts on the same
// machine (the failed record is still in the page cache, marked clean:
// it never reaches the disk) and appends on. Every entry acknowledged
// after the restart must survive a power cut. Before, the restart
// appended after the lost record in the same segment: after the power
// cut, a damaged record with valid ones after it stopped Open.
func TestWALSyncFailureRestart(t *testing.T) {
	s, _ := testKeys(t)
	ctx := context.Background()
	m := newMemFS()
	mod := func(o *Options) { o.Signer = s }
	l, acked := openMem(t, m, mod, 100)
	m.mu.Lock()
	m.fault = func(op, name string) error {
		if op == "sync" && strings.HasPrefix(name, "wal/") {
			return syscall.EIO
		}
		return nil
	}
	m.mu.Unlock()
	if _, err := l.Append(ctx, []byte("never acknowledged")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Append with a failed fsync: %v, want EIO", err)
	}
	l.Close()
	m.mu.Lock()
	m.fault = nil
	m.mu.Unlock()
	l, _, err := reopen(t, m, mod)
	if err != nil {
		t.Fatalf("Open after the failed fsync: %v", err)
	}
	next := l.Size()
	for i := range 100 {
		e := []byte(fmt.Sprintf("after the restart %d", i))
		idx, err := l.Append(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		acked[idx] = e
	}
	if next != 100 && next != 101 {
		t.Fatalf("size %d after the restart, want 100 or 101", next)
	}
	last, err := publishCommit(l, ctx)
	if err != nil {
		t.Fatal(err)
	}
	crashRecover(t, l, m, mod, "failed write-ahead-log fsync", acked, last).Close()
}

// TestTileWriteNoSpace: a disk that fills up while the tiles are written
// (the write-ahead log record made it, the entry was acknowledged): the
// log stops with an error that says so, and everything acknowledged is
// there after a restart, once there is room again. A Publish that cannot
// write its partial tiles fails and publishes nothing.
func TestTileWriteNoSpace(t *testing.T) {
	s, _ := testKeys(t)
	ctx := context.Background()
	for _, what := range []string{"full tile", "partial tile"} {
		t.Run(strings.ReplaceAll(what, " ", "_"), func(t *testing.T) {
			m := newMemFS()
			mod := func(o *Options) { o.Signer = s }
			l, acked := openMem(t, m, mod, 200)
			last, err := publishCommit(l, ctx)
			if err != nil {
				t.Fatal(err)
			}
			m.mu.Lock()
			m.fault = func(op, name string) error {
				if op == "write" && strings.HasPrefix(name, "tile/") {
					return syscall.ENOSPC
				}
				return nil
			}
			m.mu.Unlock()
			if what == "partial tile" {
				if err := acked.add(ctx, l, 1); err != nil {
					t.Fatal(err)
				}
				if cp, err := l.Publish(ctx); !errors.Is(err, syscall.ENOSPC) {
					t.Fatalf("Publish on a full disk: %v, %v, want ENOSPC", cp, err)
				}
			} else {
				_ = acked.add(ctx, l, 100) // fails once a bundle fills
				if _, err := l.Append(ctx, []byte("no room")); !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "restart to recover") {
					t.Fatalf("Append after a tile did not fit: %v, want ENOSPC and restart to recover", err)
				}
			}
			if cp := l.Checkpoint(); cp.Size != last.Size {
				t.Fatalf("checkpoint of size %d served, want %d", cp.Size, last.Size)
			}
			crashRecover(t, l, m, mod, "no space for tiles", acked, last).Close()
		})
	}
}

// readCounter is an FS that counts the bytes read from it.
type readCounter struct {
	FS
	n atomic.Int64
}

func (r *readCounter) ReadFile(name string) ([]byte, error) {
	b, err := r.FS.ReadFile(name)
	r.n.Add(int64(len(b)))
	return b, err
}

func (r *readCounter) Open(name string) (io.ReadSeekCloser, error) {
	f, err := r.FS.Open(name)
	if err != nil {
		return nil, err
	}
	return countingFile{f, r}, nil
}

type countingFile struct {
	io.ReadSeekCloser
	r *readCounter
}

func (f countingFile) Read(p []byte) (int, error) {
	n, err := f.ReadSeekCloser.Read(p)
	f.r.n.Add(int64(n))
	return n, err
}

// TestHugeFileInLogFolder: a file in the log folder far larger than what
// its name may hold (a hash tile of 1 MiB, a checkpoint of 1 MiB: a
// folder copied from a hostile mirror, a link to a device) stops Open
// with an error naming it, after reading no more than the most it may
// hold. Before, Open read all of it into memory (a link to /dev/zero: until
// the memory ran out).
func TestHugeFileInLogFolder(t *testing.T) {
	base, _ := baseMemLog(t, 600, 530, 4000)
	for _, tc := range []struct {
		name  string
		limit int64
	}{
		{"tile/0/000", TileWidth * HashSize},
		{"checkpoint", 64 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := base.Clone()
			m.WriteFile(tc.name, make([]byte, 1<<20), true)
			for _, ro := range []bool{false, true} {
				rc := &readCounter{FS: m}
				l, err := Open(context.Background(), Options{Dir: "memfs", FS: rc, Origin: testOrigin, Logger: quiet, ReadOnly: ro})
				if err == nil {
					l.Close()
					t.Fatalf("Open (read-only %v) with a %s of 1 MiB succeeded", ro, tc.name)
				}
				if !strings.Contains(err.Error(), tc.name) || !strings.Contains(err.Error(), fmt.Sprintf("over %d bytes", tc.limit)) {
					t.Errorf("Open (read-only %v): %v, want an error naming %s and its limit", ro, err, tc.name)
				}
				if n := rc.n.Load(); n > 1<<20 {
					t.Errorf("Open (read-only %v) read %d bytes, more than the 1 MiB file: it was read whole", ro, n)
				}
			}
		})
	}
}

// TestOpenOnFullDisk: a writer's Open writes the newest segment and the
// tiles the write-ahead log covers again; on a full disk that fails, and
// the log must still open and serve what it holds (a node whose disk
// filled up still serves its log), refusing appends and publishes with an
// error that says what failed and to restart, until a restart with room
// again.
func TestOpenOnFullDisk(t *testing.T) {
	s, _ := testKeys(t)
	ctx := context.Background()
	m := newMemFS()
	mod := func(o *Options) { o.Signer = s }
	l, acked := openMem(t, m, mod, 300)
	last, err := publishCommit(l, ctx)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	m.mu.Lock()
	m.fault = func(op, name string) error {
		if op == "write" {
			return syscall.ENOSPC
		}
		return nil
	}
	m.mu.Unlock()
	l, got, err := reopen(t, m, mod)
	if err != nil {
		t.Fatalf("Open on a full disk: %v", err)
	}
	checkRecovered(t, "full disk", l, got, acked, last)
	if _, err := l.Append(ctx, []byte("no room")); !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "restart to recover") {
		t.Fatalf("Append after Open on a full disk: %v, want ENOSPC and restart to recover", err)
	}
	if _, err := l.Publish(ctx); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Publish after Open on a full disk: %v, want ENOSPC", err)
	}
	l.Close()
	m.mu.Lock()
	m.fault = nil
	m.mu.Unlock()
	l, _, err = reopen(t, m, mod)
	if err != nil {
		t.Fatalf("Open with room again: %v", err)
	}
	if err := acked.add(ctx, l, 10); err != nil {
		t.Fatalf("appending with room again: %v", err)
	}
	if last, err = publishCommit(l, ctx); err != nil {
		t.Fatal(err)
	}
	crashRecover(t, l, m, mod, "room again", acked, last).Close()
}
