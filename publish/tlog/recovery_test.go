package tlog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"golang.org/x/mod/sumdb/note"
)

// appendSeq appends entries [from, to) in order, so that entry(i) is at
// index i.
func appendSeq(t testing.TB, l *Log, from, to int) {
	t.Helper()
	for i := from; i < to; i++ {
		idx, err := l.Append(context.Background(), entry(i))
		if err != nil || idx != uint64(i) {
			t.Fatalf("Append %d: index %d, %v", i, idx, err)
		}
	}
}

// recordOffset is the offset of record i in a segment that starts at 0
// and holds entry(0), entry(1)...
func recordOffset(i int) int64 {
	var off int64
	for j := 0; j < i; j++ {
		off += walHeaderSize + int64(len(entry(j)))
	}
	return off
}

// folderDigest hashes every name and byte under dir.
func folderDigest(t testing.TB, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if d.IsDir() {
			lines = append(lines, rel+"/")
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		lines = append(lines, fmt.Sprintf("%s %x", rel, sha256.Sum256(data)))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(lines, "\n")
}

func flipBit(t testing.TB, path string, off int64) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[off] ^= 0x10
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestMidWALDamage is defect 1: a damaged record in the middle of the
// newest segment is not a torn tail. Open must fail, naming the segment and
// the offset, and leave the file as it is.
func TestMidWALDamage(t *testing.T) {
	s, _ := testKeys(t)
	for _, tc := range []struct {
		name    string
		publish int // checkpoint size, or -1 for none
		record  int // the record to damage
		want    string
		size    uint64 // when Open succeeds
	}{
		{"record 3 of 10, no checkpoint", -1, 3, "a valid record (entry 4) follows", 0},
		{"record 3 of 10, checkpoint 10", 10, 3, "a valid record (entry 4) follows", 0},
		{"record 3 of 10, checkpoint 2", 2, 3, "a valid record (entry 4) follows", 0},
		{"last record, checkpoint 10", 10, 9, "the checkpoint commits to 10 entries", 0},
		{"last record, checkpoint 9", 9, 9, "", 9}, // a torn tail: cut
		{"last record, no checkpoint", -1, 9, "", 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			l := openLog(t, dir, s, nil)
			appendSeq(t, l, 0, 10)
			if tc.publish >= 0 {
				l.Close()
				// Publish at a smaller size: reopen the log with fewer entries.
				if tc.publish < 10 {
					dir2 := t.TempDir()
					l2 := openLog(t, dir2, s, nil)
					appendSeq(t, l2, 0, tc.publish)
					if _, err := publishCommit(l2, context.Background()); err != nil {
						t.Fatal(err)
					}
					appendSeq(t, l2, tc.publish, 10)
					l2.Close()
					dir = dir2
				} else {
					l = openLog(t, dir, s, nil)
					if _, err := publishCommit(l, context.Background()); err != nil {
						t.Fatal(err)
					}
					l.Close()
				}
			} else {
				l.Close()
			}
			seg := walPath(dir)
			off := recordOffset(tc.record)
			flipBit(t, seg, off+walHeaderSize+2)
			before := folderDigest(t, dir)
			fi, _ := os.Stat(seg)

			l, err := Open(context.Background(), Options{Dir: dir, Origin: testOrigin, Signer: s, Logger: quiet})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer l.Close()
				if l.Size() != tc.size {
					t.Fatalf("size %d, want %d", l.Size(), tc.size)
				}
				return
			}
			if err == nil {
				l.Close()
				t.Fatalf("Open succeeded with size %d, want an error", l.Size())
			}
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a CorruptError", err)
			}
			for _, want := range []string{filepath.Base(seg), fmt.Sprintf("offset %d", off), tc.want, "another build node", "do not delete"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not contain %q", err, want)
				}
			}
			if after := folderDigest(t, dir); after != before {
				t.Errorf("a refused Open changed the folder:\nbefore %s\nafter  %s", before, after)
			}
			if fi2, _ := os.Stat(seg); fi2.Size() != fi.Size() {
				t.Errorf("segment size %d, was %d", fi2.Size(), fi.Size())
			}
		})
	}
}

// TestReadOnly checks that a read-only open writes nothing, even on a
// folder a writer would repair, and that it neither blocks nor is blocked
// by a running writer.
func TestReadOnly(t *testing.T) {
	s, v := testKeys(t)
	ctx := context.Background()
	dir := t.TempDir()
	l := openLog(t, dir, s, nil)
	appendSeq(t, l, 0, 300)
	cp, err := publishCommit(l, ctx)
	if err != nil {
		t.Fatal(err)
	}
	appendSeq(t, l, 300, 310)
	l.Close()
	// A torn tail, and a tile the writer had not synced (past the first
	// segment's start, so recomputed from the write-ahead log).
	if err := appendFile(walPath(dir), []byte{0, 0, 1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, "tile/0/000")); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "LOCK"))
	before := folderDigest(t, dir)

	r, err := Open(ctx, Options{Dir: dir, Origin: testOrigin, Logger: quiet, ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only Open: %v", err)
	}
	if r.Size() != 310 || r.Checkpoint() == nil || r.Checkpoint().Size != 300 {
		t.Fatalf("read-only: size %d, checkpoint %v", r.Size(), r.Checkpoint())
	}
	for _, i := range []uint64{0, 17, 299} {
		e, err := r.Entry(ctx, i)
		if err != nil || !bytes.Equal(e, entry(int(i))) {
			t.Fatalf("Entry %d: %q, %v", i, e, err)
		}
		p, err := r.InclusionProof(ctx, i, 300)
		if err != nil {
			t.Fatalf("InclusionProof %d: %v", i, err)
		}
		if err := proof.VerifyInclusion(hasher, i, 300, hasher.HashLeaf(entry(int(i))), p, cp.Hash); err != nil {
			t.Fatalf("inclusion proof %d does not verify: %v", i, err)
		}
	}
	if _, err := r.Entry(ctx, 305); !errors.Is(err, ErrNotPublished) {
		t.Fatalf("Entry past the checkpoint: %v", err)
	}
	if _, err := r.Append(ctx, []byte("x")); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Append: got %v, want ErrReadOnly", err)
	}
	if _, err := r.Publish(ctx); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Publish: got %v, want ErrReadOnly", err)
	}
	if err := r.Commit(cp.Note); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("Commit: got %v, want ErrReadOnly", err)
	}
	r.Close()
	if after := folderDigest(t, dir); after != before {
		t.Fatalf("a read-only Open changed the folder:\nbefore %s\nafter  %s", before, after)
	}

	// A reader while the writer runs: neither waits for the other.
	w := openLog(t, dir, s, nil)
	defer w.Close()
	r, err = Open(ctx, Options{Dir: dir, Origin: testOrigin, Logger: quiet, ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only Open while a writer runs: %v", err)
	}
	defer r.Close()
	appendSeq(t, w, 310, 320)
	if _, err := publishCommit(w, ctx); err != nil {
		t.Fatalf("writer after a reader opened: %v", err)
	}
	if got := r.Checkpoint().Size; got != 300 {
		t.Fatalf("reader's checkpoint size %d, want 300 (the log as of its Open)", got)
	}
	if _, _, err := parseNote(r.Checkpoint().Note, v); err != nil {
		t.Fatal(err)
	}

	// No log there: an error, and nothing created.
	empty := filepath.Join(t.TempDir(), "nolog")
	if _, err := Open(ctx, Options{Dir: empty, Origin: testOrigin, Logger: quiet, ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "not a log folder") {
		t.Fatalf("read-only Open of a missing folder: %v", err)
	}
	if _, err := os.Stat(empty); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("read-only Open created %s", empty)
	}
}

func parseNote(b []byte, v note.Verifier) (*note.Note, bool, error) {
	n, err := note.Open(b, note.VerifierList(v))
	return n, err == nil, err
}

// TestCandidate is defect 7: Publish makes a candidate that is neither
// stored nor served until Commit, and a size left uncommitted by a restart
// is published again.
func TestCandidate(t *testing.T) {
	s, _ := testKeys(t)
	ctx := context.Background()
	dir := t.TempDir()
	final := errors.New("not enough cosignatures")
	accept := false
	l := openLog(t, dir, s, func(o *Options) {
		o.CheckFinal = func(signed []byte) error {
			if !accept {
				return final
			}
			return nil
		}
	})
	srv := httptest.NewServer(l.Handler())
	defer srv.Close()
	get := func(path string) int {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	appendSeq(t, l, 0, 300)
	cand, err := l.Publish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l.Checkpoint() != nil || l.Candidate() != cand {
		t.Fatal("Publish committed its checkpoint")
	}
	if _, err := os.Stat(filepath.Join(dir, "checkpoint")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a candidate was stored: %v", err)
	}
	for _, p := range []string{"/checkpoint", "/tile/0/000", "/tile/entries/001.p/44", "/proof/inclusion/1?size=300"} {
		if code := get(p); code != 404 {
			t.Errorf("GET %s of a candidate: %d, want 404", p, code)
		}
	}
	// The owner reads up to the candidate, to have it cosigned.
	if _, err := l.ConsistencyProof(ctx, 10, 300); err != nil {
		t.Fatalf("ConsistencyProof to the candidate: %v", err)
	}
	if err := l.Commit(cand.Note); !errors.Is(err, final) {
		t.Fatalf("Commit refused by CheckFinal: got %v", err)
	}
	if l.Checkpoint() != nil || get("/checkpoint") != 404 {
		t.Fatal("a checkpoint that is not final was served")
	}
	// A note without the log's signature is refused.
	other, _ := testKeys(t)
	foreign, _ := note.Sign(&note.Note{Text: string(cand.Marshal())}, other)
	accept = true
	if err := l.Commit(foreign); err == nil || !strings.Contains(err.Error(), "lacks the log's signature") {
		t.Fatalf("Commit without the log's signature: %v", err)
	}

	// A restart before the commit: the size is published again.
	l.Close()
	l = openLog(t, dir, s, func(o *Options) { o.CheckFinal = func([]byte) error { return nil } })
	defer l.Close()
	if l.Checkpoint() != nil || l.Candidate() != nil {
		t.Fatal("a candidate survived the restart")
	}
	cand, err = l.Publish(ctx)
	if err != nil || cand.Size != 300 {
		t.Fatalf("Publish after a restart: %v", err)
	}
	appendSeq(t, l, 300, 310)
	newer, err := l.Publish(ctx)
	if err != nil || newer.Size != 310 {
		t.Fatalf("Publish at a bigger size: %v", err)
	}
	if err := l.Commit(cand.Note); err == nil {
		t.Fatal("Commit of a candidate that a newer one replaced succeeded")
	}
	if err := l.Commit(newer.Note); err != nil {
		t.Fatal(err)
	}
	if l.Checkpoint().Size != 310 || l.Candidate() != nil {
		t.Fatal("Commit did not make the candidate the checkpoint")
	}
	stored, _ := os.ReadFile(filepath.Join(dir, "checkpoint"))
	if !bytes.Equal(stored, newer.Note) {
		t.Fatal("the committed checkpoint is not stored")
	}
	// Cosignatures can be added to the committed checkpoint.
	if err := l.Commit(newer.Note); err != nil {
		t.Fatalf("Commit of the committed checkpoint: %v", err)
	}
	if again, _ := l.Publish(ctx); again != l.Checkpoint() {
		t.Fatal("Publish at the committed size made a new candidate")
	}
}

// TestTilesPastCheckpoint is part of defect 8: full tiles past the served
// checkpoint are not served.
func TestTilesPastCheckpoint(t *testing.T) {
	s, _ := testKeys(t)
	l := openLog(t, t.TempDir(), s, nil)
	defer l.Close()
	appendSeq(t, l, 0, 300)
	if _, err := publishCommit(l, context.Background()); err != nil {
		t.Fatal(err)
	}
	appendSeq(t, l, 300, 700) // fills entries/001, entries/002, 0/001, 0/002
	srv := httptest.NewServer(l.Handler())
	defer srv.Close()
	for path, want := range map[string]int{
		"/tile/entries/000": 200, "/tile/entries/001.p/44": 200, "/tile/0/001.p/44": 200,
		"/tile/entries/001": 404, "/tile/entries/002": 404, "/tile/0/001": 404, "/tile/0/002": 404,
		"/tile/entries/001.p/45": 404, "/tile/1/000.p/2": 404, "/tile/1/000.p/1": 200,
	} {
		resp, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s: %d, want %d", path, resp.StatusCode, want)
		}
	}
	if _, err := l.ReadTile(context.Background(), TileID{Entries: true, Index: 1}); !errors.Is(err, ErrNotPublished) {
		t.Errorf("ReadTile past the checkpoint: %v, want ErrNotPublished", err)
	}
}

// TestPartialTilesRechecked is part of defect 8: the partial tiles of older
// checkpoints are synced at Publish and rechecked at Open.
func TestPartialTilesRechecked(t *testing.T) {
	s, _ := testKeys(t)
	ctx := context.Background()
	dir := t.TempDir()
	l := openLog(t, dir, s, nil)
	appendSeq(t, l, 0, 5)
	publishCommit(l, ctx)
	appendSeq(t, l, 5, 10)
	publishCommit(l, ctx)
	appendSeq(t, l, 10, 12)
	if _, err := l.Publish(ctx); err != nil { // a candidate never committed
		t.Fatal(err)
	}
	l.Close()

	// Damage in a partial tile of a candidate that was never committed is
	// repaired.
	cand := filepath.Join(dir, "tile/entries/000.p/12")
	flipBit(t, cand, 3)
	l = openLog(t, dir, s, nil)
	l.Close()
	want, _ := os.ReadFile(filepath.Join(dir, "tile/entries/000.p/10"))
	got, _ := os.ReadFile(cand)
	if !bytes.HasPrefix(got, want) {
		t.Fatal("the candidate's partial tile was not repaired")
	}

	// Damage in the partial tile of an older committed checkpoint stops Open.
	for _, p := range []string{"tile/entries/000.p/5", "tile/0/000.p/5"} {
		flipBit(t, filepath.Join(dir, p), 1)
		_, err := Open(ctx, Options{Dir: dir, Origin: testOrigin, Signer: s, Logger: quiet})
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Path != p {
			t.Fatalf("Open with %s damaged: %v, want a CorruptError naming it", p, err)
		}
		flipBit(t, filepath.Join(dir, p), 1)
	}
}

// TestCloseWritesQueued is part of defect 8: Close writes the appends
// queued before it, as its documentation says.
func TestCloseWritesQueued(t *testing.T) {
	s, _ := testKeys(t)
	dir := t.TempDir()
	l := openLog(t, dir, s, func(o *Options) { o.MaxBatch = 1 })
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	l.testHookBatch = func() {
		select {
		case entered <- struct{}{}:
			<-release // hold the first batch
		default:
		}
	}
	const n = 10
	type result struct {
		i   int
		idx uint64
		err error
	}
	results := make(chan result, n+1)
	go func() {
		idx, err := l.Append(context.Background(), entry(0))
		results <- result{0, idx, err}
	}()
	<-entered
	for i := 1; i <= n; i++ {
		go func() {
			idx, err := l.Append(context.Background(), entry(i))
			results <- result{i, idx, err}
		}()
	}
	for len(l.queue) < n {
		// Wait until every append is queued (no timing: the queue fills).
		select {
		case r := <-results:
			t.Fatalf("append %d returned early: %v", r.i, r.err)
		default:
		}
		runtime.Gosched()
	}
	closed := make(chan error, 1)
	go func() { closed <- l.Close() }()
	<-l.done // Close has begun
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	byIndex := make(map[uint64]int)
	for i := 0; i <= n; i++ {
		r := <-results
		if r.err != nil {
			t.Fatalf("append %d queued before Close: %v", r.i, r.err)
		}
		byIndex[r.idx] = r.i
	}
	l = openLog(t, dir, s, nil)
	defer l.Close()
	if l.Size() != n+1 {
		t.Fatalf("size after reopen %d, want %d", l.Size(), n+1)
	}
	if _, err := l.Append(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
}

// TestHostileHTTP checks the answers to bad requests and the proof fields
// documented in the README.
func TestHostileHTTP(t *testing.T) {
	s, _ := testKeys(t)
	l := openLog(t, t.TempDir(), s, nil)
	defer l.Close()
	appendSeq(t, l, 0, 10)
	publishCommit(l, context.Background())
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
	code, body := get("/tile/0/" + strings.Repeat("x", 1<<20))
	if code != 400 || len(body) > 300 || !strings.Contains(body, "malformed tile path") {
		t.Errorf("1 MB tile path: %d, %d bytes of answer", code, len(body))
	}
	if _, body := get("/proof/inclusion/0?size=10"); !strings.Contains(body, `"index":0,`) {
		t.Errorf("inclusion proof of entry 0: %s", body)
	}
	if _, body := get("/proof/consistency/0/10"); !strings.Contains(body, `"oldSize":0,`) {
		t.Errorf("consistency proof from 0: %s", body)
	}
	if _, body := get("/proof/inclusion/3"); strings.Contains(body, "oldSize") {
		t.Errorf("inclusion proof has oldSize: %s", body)
	}
}
