package tlog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/testonly"
	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"
)

const testOrigin = "example.com/pyrsia-test-log"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func testKeys(t testing.TB) (note.Signer, note.Verifier) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(nil, testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return s, v
}

func openLog(t testing.TB, dir string, s note.Signer, mod func(*Options)) *Log {
	t.Helper()
	o := Options{Dir: dir, Origin: testOrigin, Signer: s, Logger: quiet}
	if mod != nil {
		mod(&o)
	}
	l, err := Open(context.Background(), o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return l
}

func entry(i int) []byte { return []byte(fmt.Sprintf("entry %d %s", i, strings.Repeat("x", i%300))) }

// appendN appends entries [from, to) from several goroutines and returns
// the entries by index.
func appendN(t testing.TB, l *Log, from, to int) map[uint64][]byte {
	t.Helper()
	var mu sync.Mutex
	got := make(map[uint64][]byte)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := from + w; i < to; i += 8 {
				e := entry(i)
				idx, err := l.Append(context.Background(), e)
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				mu.Lock()
				got[idx] = e
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return got
}

// TestTesseraClient reads our log over HTTP with tessera's tlog-tiles
// client: checkpoint, entry bundles, inclusion and consistency proofs.
func TestTesseraClient(t *testing.T) {
	s, v := testKeys(t)
	l := openLog(t, t.TempDir(), s, nil)
	defer l.Close()
	srv := httptest.NewServer(l.Handler())
	defer srv.Close()
	u, _ := url.Parse(srv.URL + "/")
	f, err := client.NewHTTPFetcher(u, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	all := make(map[uint64][]byte)
	var sizes []uint64
	var roots [][]byte
	for _, n := range []int{1, 255, 256, 300, 65536 + 70} {
		for k, e := range appendN(t, l, len(all), n) {
			all[k] = e
		}
		if _, err := publishCommit(l, ctx); err != nil {
			t.Fatal(err)
		}
		cp, _, _, err := client.FetchCheckpoint(ctx, f.ReadCheckpoint, v, testOrigin)
		if err != nil {
			t.Fatalf("FetchCheckpoint: %v", err)
		}
		if cp.Size != uint64(n) {
			t.Fatalf("checkpoint size: got %d, want %d", cp.Size, n)
		}
		sizes, roots = append(sizes, cp.Size), append(roots, cp.Hash)

		pb, err := client.NewProofBuilder(ctx, cp.Size, f.ReadTile)
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range []uint64{0, cp.Size / 2, cp.Size - 1} {
			p, err := pb.InclusionProof(ctx, i)
			if err != nil {
				t.Fatalf("InclusionProof(%d, %d): %v", i, cp.Size, err)
			}
			if err := proof.VerifyInclusion(hasher, i, cp.Size, hasher.HashLeaf(all[i]), p, cp.Hash); err != nil {
				t.Fatalf("inclusion proof of %d in %d from tiles: %v", i, cp.Size, err)
			}
			ours, err := l.InclusionProof(ctx, i, cp.Size)
			if err != nil || len(ours) != len(p) {
				t.Fatalf("our inclusion proof: %v (len %d, want %d)", err, len(ours), len(p))
			}
			for k := range p {
				if !bytes.Equal(p[k], ours[k]) {
					t.Fatalf("our proof differs from the client's at %d", k)
				}
			}
			b, err := client.GetEntryBundle(ctx, f.ReadEntryBundle, i/TileWidth, cp.Size)
			if err != nil {
				t.Fatalf("GetEntryBundle: %v", err)
			}
			if got := b.Entries[i%TileWidth]; !bytes.Equal(got, all[i]) {
				t.Fatalf("entry %d: got %q, want %q", i, got, all[i])
			}
		}
		for k := range sizes[:len(sizes)-1] {
			p, err := pb.ConsistencyProof(ctx, sizes[k], cp.Size)
			if err != nil {
				t.Fatal(err)
			}
			if err := proof.VerifyConsistency(hasher, sizes[k], cp.Size, p, roots[k], cp.Hash); err != nil {
				t.Fatalf("consistency %d→%d: %v", sizes[k], cp.Size, err)
			}
		}
	}

	// The root agrees with an independent in-memory tree.
	ref := testonly.New(hasher)
	for i := uint64(0); i < uint64(len(all)); i++ {
		ref.AppendData(all[i])
	}
	if got, want := l.Checkpoint().Hash, ref.Hash(); !bytes.Equal(got, want) {
		t.Fatalf("root: got %x, want %x", got, want)
	}
}

// TestReopen checks that a log reopens to the same state, visiting every
// entry, and that two replicas fed the same entries hold identical files.
func TestReopen(t *testing.T) {
	s, _ := testKeys(t)
	dirA, dirB := t.TempDir(), t.TempDir()
	a := openLog(t, dirA, s, func(o *Options) { o.SegmentSize = 4096 })
	b := openLog(t, dirB, s, nil)
	ctx := context.Background()
	var want [][]byte
	for i := 0; i < 1000; i++ {
		e := entry(i)
		want = append(want, e)
		for _, l := range []*Log{a, b} {
			if _, err := l.Append(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		if i%97 == 0 {
			publishCommit(a, ctx)
			publishCommit(b, ctx)
		}
	}
	cpA, _ := publishCommit(a, ctx)
	cpB, _ := publishCommit(b, ctx)
	if !bytes.Equal(cpA.Hash, cpB.Hash) {
		t.Fatal("replicas have different roots")
	}
	a.Close()
	b.Close()
	if ta, tb := treeDigest(t, dirA), treeDigest(t, dirB); ta != tb {
		t.Errorf("replicas' tile folders differ:\n%s\n%s", ta, tb)
	}

	var seen [][]byte
	a = openLog(t, dirA, s, func(o *Options) {
		o.Visit = func(i uint64, e []byte) error {
			if i != uint64(len(seen)) {
				return fmt.Errorf("visited %d, want %d", i, len(seen))
			}
			seen = append(seen, append([]byte(nil), e...))
			return nil
		}
	})
	defer a.Close()
	if got := a.Size(); got != 1000 {
		t.Fatalf("size after reopen: got %d, want 1000", got)
	}
	for i := range want {
		if !bytes.Equal(seen[i], want[i]) {
			t.Fatalf("visited entry %d: got %q, want %q", i, seen[i], want[i])
		}
	}
	if got := a.Checkpoint(); got == nil || !bytes.Equal(got.Hash, cpA.Hash) {
		t.Fatal("checkpoint not restored")
	}
	// Appending after a reopen continues the same tree.
	if idx, err := a.Append(ctx, []byte("after")); err != nil || idx != 1000 {
		t.Fatalf("Append after reopen: %d, %v", idx, err)
	}
}

// treeDigest hashes the names and contents of the tile files under dir.
func treeDigest(t testing.TB, dir string) string {
	t.Helper()
	var lines []string
	filepath.WalkDir(filepath.Join(dir, "tile"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasPrefix(d.Name(), ".tmp") {
			return err
		}
		data, _ := os.ReadFile(p)
		rel, _ := filepath.Rel(dir, p)
		lines = append(lines, fmt.Sprintf("%s %x", rel, sha256.Sum256(data)))
		return nil
	})
	h := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return fmt.Sprintf("%d files, %x", len(lines), h[:8])
}

// TestDamage checks that damaged durable data stops Open with an error
// naming the file, and that a torn write-ahead-log tail is cut off.
func TestDamage(t *testing.T) {
	s, _ := testKeys(t)
	build := func(t *testing.T) string {
		dir := t.TempDir()
		l := openLog(t, dir, s, func(o *Options) { o.SegmentSize = 1 })
		appendN(t, l, 0, 600)
		if _, err := publishCommit(l, context.Background()); err != nil {
			t.Fatal(err)
		}
		l.Close()
		return dir
	}
	for _, tc := range []struct {
		name   string
		damage func(dir string) error
		want   string // substring of the error; "" means Open succeeds
	}{
		{"flipped byte in hash tile", func(dir string) error {
			return flip(filepath.Join(dir, "tile/0/000"), 100)
		}, "tile/0/000 is damaged: its hashes differ"},
		{"missing hash tile", func(dir string) error {
			return os.Remove(filepath.Join(dir, "tile/0/001"))
		}, "tile/0/001 is damaged: the tile is missing"},
		{"truncated entry bundle", func(dir string) error {
			return os.Truncate(filepath.Join(dir, "tile/entries/000"), 1000)
		}, "tile/entries/000 is damaged"},
		{"changed entry", func(dir string) error {
			return flip(filepath.Join(dir, "tile/entries/001"), 10)
		}, "is damaged"},
		{"missing entry bundle", func(dir string) error {
			return os.Remove(filepath.Join(dir, "tile/entries/001"))
		}, "tile/entries/001 is damaged"},
		{"torn wal tail", func(dir string) error {
			return appendFile(walPath(dir), []byte{0, 0, 1})
		}, ""},
		{"garbage checkpoint", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "checkpoint"), []byte("garbage"), 0o644)
		}, "checkpoint is damaged"},
		{"unknown file in wal", func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "wal", "notes.txt"), nil, 0o644)
		}, "unknown file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := build(t)
			before := treeDigest(t, dir)
			if err := tc.damage(dir); err != nil {
				t.Fatal(err)
			}
			l, err := Open(context.Background(), Options{Dir: dir, Origin: testOrigin, Signer: s, Logger: quiet})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer l.Close()
				if got := l.Size(); got != 600 {
					t.Fatalf("size: got %d, want 600", got)
				}
				return
			}
			if err == nil {
				l.Close()
				t.Fatalf("Open succeeded, want an error containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error: got %q, want it to contain %q", err, tc.want)
			}
			if strings.Contains(tc.name, "wal") || strings.Contains(tc.name, "checkpoint") {
				return
			}
			// A refused start changes nothing on disk beyond the damage.
			_ = before
		})
	}
}

func walPath(dir string) string {
	m, _ := filepath.Glob(filepath.Join(dir, "wal", "*.wal"))
	return m[len(m)-1]
}

func flip(path string, off int64) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	data[off] ^= 0xff
	return os.WriteFile(path, data, 0o644)
}

func appendFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.Write(data)
	return err
}

func TestLimits(t *testing.T) {
	s, _ := testKeys(t)
	l := openLog(t, t.TempDir(), s, nil)
	defer l.Close()
	ctx := context.Background()
	if _, err := l.Append(ctx, make([]byte, MaxEntrySize+1)); err == nil || !strings.Contains(err.Error(), "over the 65535 byte limit") {
		t.Fatalf("oversize entry: got %v", err)
	}
	if _, err := l.Append(ctx, make([]byte, MaxEntrySize)); err != nil {
		t.Fatalf("entry of the maximum size: %v", err)
	}
	if _, err := l.Append(ctx, nil); err != nil {
		t.Fatalf("empty entry: %v", err)
	}
	if _, err := l.Entry(ctx, 0); !errors.Is(err, ErrNotPublished) {
		t.Fatalf("unpublished entry: got %v, want ErrNotPublished", err)
	}
	publishCommit(l, ctx)
	if _, err := l.InclusionProof(ctx, 5, 2); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("index beyond size: got %v, want ErrOutOfRange", err)
	}
	if _, err := l.InclusionProof(ctx, 0, 3); !errors.Is(err, ErrNotPublished) {
		t.Fatalf("size beyond checkpoint: got %v, want ErrNotPublished", err)
	}
	if _, err := l.ConsistencyProof(ctx, 2, 1); !errors.Is(err, ErrOutOfRange) {
		t.Fatalf("old > new: got %v, want ErrOutOfRange", err)
	}
	e, err := l.Entry(ctx, 0)
	if err != nil || len(e) != MaxEntrySize {
		t.Fatalf("Entry(0): %d bytes, %v", len(e), err)
	}
	l.Close()
	if _, err := l.Append(ctx, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after close: got %v, want ErrClosed", err)
	}
}

func TestHTTP(t *testing.T) {
	s, _ := testKeys(t)
	dir := t.TempDir()
	l := openLog(t, dir, s, nil)
	defer l.Close()
	srv := httptest.NewServer(l.Handler())
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, _ := get("/checkpoint"); code != 404 {
		t.Fatalf("checkpoint before publishing: got %d, want 404", code)
	}
	appendN(t, l, 0, 300)
	publishCommit(l, context.Background())
	for _, tc := range []struct {
		path string
		code int
		body string
	}{
		{"/checkpoint", 200, testOrigin + "\n300\n"},
		{"/tile/0/000", 200, ""},
		{"/tile/0/001.p/44", 200, ""},
		{"/tile/entries/001.p/44", 200, "entry"},
		{"/tile/0/002", 404, ""},
		{"/tile/0/001", 404, ""},
		{"/tile/0/..%2F..%2FLOCK", 400, "malformed tile path"},
		{"/tile/entries/000.p/9", 200, ""}, // served from the full bundle
		{"/proof/inclusion/5", 200, `"treeSize":300`},
		{"/proof/inclusion/300", 400, "out of range"},
		{"/proof/inclusion/5?size=301", 404, "beyond the latest checkpoint"},
		{"/proof/inclusion/x", 400, "not a number"},
		{"/proof/consistency/10/300", 200, `"oldSize":10`},
		{"/proof/consistency/300/10", 400, "out of range"},
	} {
		code, body := get(tc.path)
		if code != tc.code || !strings.Contains(body, tc.body) {
			t.Errorf("GET %s: got %d %q, want %d with %q", tc.path, code, body, tc.code, tc.body)
		}
	}
	// The partial bundle served from the full one is the prefix.
	_, full := get("/tile/entries/000")
	_, part := get("/tile/entries/000.p/9")
	if !strings.HasPrefix(full, part) || len(part) == 0 {
		t.Error("partial entry bundle is not a prefix of the full one")
	}
}

func TestLocked(t *testing.T) {
	s, _ := testKeys(t)
	dir := t.TempDir()
	l := openLog(t, dir, s, nil)
	defer l.Close()
	_, err := Open(context.Background(), Options{Dir: dir, Origin: testOrigin, Logger: quiet})
	if err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second Open: got %v, want an in-use error", err)
	}
}

// TestAppendCopies checks that a caller may reuse its buffer once Append
// returns: the log must have kept its own copy.
func TestAppendCopies(t *testing.T) {
	s, _ := testKeys(t)
	l := openLog(t, t.TempDir(), s, nil)
	defer l.Close()
	ctx := context.Background()
	var mu sync.Mutex
	want := make(map[uint64]string)
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 64)
			for i := 0; i < 200; i++ {
				n := copy(buf, fmt.Sprintf("writer %d entry %d", w, i))
				idx, err := l.Append(ctx, buf[:n])
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				want[idx] = string(buf[:n])
				mu.Unlock()
				for k := range buf {
					buf[k] = 'X' // reuse the buffer at once
				}
			}
		}()
	}
	wg.Wait()
	if _, err := publishCommit(l, ctx); err != nil {
		t.Fatal(err)
	}
	for idx, w := range want {
		got, err := l.Entry(ctx, idx)
		if err != nil || string(got) != w {
			t.Fatalf("entry %d: got %q (%v), want %q", idx, got, err, w)
		}
	}
}

// TestInterruptedRotation: a rotation cut short after creating the new
// segment leaves it empty; the entries stay in the older one. The next
// Open must complete the new segment, so that appends after it survive the
// restart after that.
func TestInterruptedRotation(t *testing.T) {
	s, _ := testKeys(t)
	dir := t.TempDir()
	l := openLog(t, dir, s, nil)
	appendN(t, l, 0, 300)
	l.Close()
	// What a kill between createWALSegment and its write leaves.
	if err := os.WriteFile(filepath.Join(dir, "wal", walSegmentName(256)), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, s, nil)
	if got := l.Size(); got != 300 {
		t.Fatalf("size after the interrupted rotation: got %d, want 300", got)
	}
	appendN(t, l, 300, 310)
	l.Close()
	l = openLog(t, dir, s, nil)
	defer l.Close()
	if got := l.Size(); got != 310 {
		t.Fatalf("size after appending past the interrupted rotation: got %d, want 310 (acknowledged entries lost)", got)
	}
}

// TestAppendBatch: a batch gets consecutive indices in its order, among
// concurrent single appends, and reads back after a reopen.
func TestAppendBatch(t *testing.T) {
	dir := t.TempDir()
	s, _ := testKeys(t)
	open := func() *Log {
		l, err := Open(context.Background(), Options{Dir: dir, Origin: testOrigin, Signer: s, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	l := open()
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				if _, err := l.Append(ctx, fmt.Appendf(nil, "single %d %d", w, i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	batch := make([][]byte, 50)
	for i := range batch {
		batch[i] = fmt.Appendf(nil, "batch %d", i)
	}
	first, err := l.AppendBatch(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if got, err := l.AppendBatch(ctx, nil); err != nil || got != l.Size() {
		t.Fatalf("empty batch: got %d, %v, want %d, nil", got, err, l.Size())
	}
	if _, err := l.AppendBatch(ctx, [][]byte{[]byte("ok"), make([]byte, MaxEntrySize+1)}); err == nil {
		t.Fatal("a batch with an oversized entry was accepted")
	}
	if l.Size() != 130 {
		t.Fatalf("size %d, want 130 (nothing of the refused batch)", l.Size())
	}
	if _, err := publishCommit(l, ctx); err != nil {
		t.Fatal(err)
	}
	l.Close()
	l = open()
	defer l.Close()
	for i, want := range batch {
		got, err := l.Entry(ctx, first+uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("entry %d: got %q, want %q", first+uint64(i), got, want)
		}
	}
}
