package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func open(t *testing.T, dir string, max int64) *Store {
	t.Helper()
	s, err := Open(dir, Options{MaxBytes: max, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func put(t *testing.T, s *Store, b []byte) string {
	t.Helper()
	d := digestOf(b)
	if err := s.Put(context.Background(), d, int64(len(b)), bytes.NewReader(b)); err != nil {
		t.Fatalf("Put(%s): %v", d, err)
	}
	return d
}

func read(t *testing.T, s *Store, d string) []byte {
	t.Helper()
	b, err := s.Open(d)
	if err != nil {
		t.Fatalf("Open(%s): %v", d, err)
	}
	defer b.Close()
	got, err := io.ReadAll(b)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(got)) != b.Size() {
		t.Errorf("read %d bytes, Size() = %d", len(got), b.Size())
	}
	return got
}

// leftovers lists the files in the store's temporary folder.
func leftovers(t *testing.T, s *Store) []string {
	t.Helper()
	des, err := os.ReadDir(s.tmpDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range des {
		names = append(names, d.Name())
	}
	return names
}

func TestPutOpen(t *testing.T) {
	s := open(t, t.TempDir(), 0)
	for _, b := range [][]byte{[]byte("hello"), {}, bytes.Repeat([]byte("x"), 1<<20+7)} {
		d := put(t, s, b)
		if !s.Has(d) {
			t.Errorf("Has(%s) = false after Put", d)
		}
		if got := read(t, s, d); !bytes.Equal(got, b) {
			t.Errorf("Open(%s) read %d bytes, want the %d put", d, len(got), len(b))
		}
	}
	// Unknown size.
	b := []byte("of unknown size")
	d := digestOf(b)
	if err := s.Put(context.Background(), d, -1, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	if got := read(t, s, d); !bytes.Equal(got, b) {
		t.Errorf("got %q, want %q", got, b)
	}
	st := s.Stats()
	if want := int64(5 + 1<<20 + 7 + len(b)); st.Blobs != 4 || st.Bytes != want {
		t.Errorf("Stats() = %+v, want 4 blobs of %d bytes", st, want)
	}
	// Seek and ReadAt, for range requests.
	bl, err := s.Open(d)
	if err != nil {
		t.Fatal(err)
	}
	defer bl.Close()
	p := make([]byte, 4)
	if _, err := bl.ReadAt(p, 3); err != nil || string(p) != "unkn" {
		t.Errorf("ReadAt(3) = %q, %v; want \"unkn\"", p, err)
	}
	if _, err := bl.Seek(-4, io.SeekEnd); err != nil {
		t.Fatal(err)
	}
	if rest, _ := io.ReadAll(bl); string(rest) != "size" {
		t.Errorf("after Seek(-4, end) read %q, want \"size\"", rest)
	}
	if bl.Digest() != d {
		t.Errorf("Digest() = %s, want %s", bl.Digest(), d)
	}
	if _, err := s.Open(digestOf([]byte("absent"))); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(absent) = %v, want fs.ErrNotExist", err)
	}
	if names := leftovers(t, s); len(names) != 0 {
		t.Errorf("temporary files left: %v", names)
	}
}

func TestPutRefuses(t *testing.T) {
	s := open(t, t.TempDir(), 1000)
	good := []byte("the right bytes")
	d := digestOf(good)
	tests := []struct {
		name   string
		digest string
		size   int64
		body   []byte
		is     error
	}{
		{"wrong digest", d, int64(len(good)), []byte("other bytes!!!!"), nil},
		{"too many bytes", d, int64(len(good)), append(good, 'x'), ErrSize},
		{"too few bytes", d, int64(len(good)), good[:5], ErrSize},
		{"right bytes, too many announced", d, 100, good, ErrSize},
		{"over the bound", d, 1001, good, ErrSize},
		{"unknown size over the bound", digestOf(make([]byte, 1001)), -1, make([]byte, 1001), ErrSize},
		{"negative size", d, -2, good, ErrSize},
		{"bad digest", "sha256:" + strings.Repeat("g", 64), int64(len(good)), good, ErrInvalidDigest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Put(context.Background(), tt.digest, tt.size, bytes.NewReader(tt.body))
			if err == nil {
				t.Fatal("Put succeeded")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Put: %v, want errors.Is %v", err, tt.is)
			}
			if tt.is == nil {
				var de *DigestError
				if !errors.As(err, &de) || de.Want != d || de.Got != digestOf(tt.body) {
					t.Errorf("Put: %v, want a *DigestError wanting %s, got %s", err, d, digestOf(tt.body))
				}
			}
			if !strings.HasPrefix(err.Error(), "store: ") || !strings.Contains(err.Error(), trim(tt.digest)) && tt.is != ErrInvalidDigest {
				t.Errorf("error %q does not name the digest", err)
			}
			if s.Has(tt.digest) {
				t.Error("the refused blob is in the store")
			}
			if st := s.Stats(); st.Blobs != 0 || st.Bytes != 0 || s.reserved != 0 {
				t.Errorf("after a refused Put: %+v, %d reserved", st, s.reserved)
			}
			if names := leftovers(t, s); len(names) != 0 {
				t.Errorf("temporary files left: %v", names)
			}
		})
	}
	// The store still works.
	put(t, s, good)
}

func TestBadDigests(t *testing.T) {
	s := open(t, t.TempDir(), 0)
	h := strings.TrimPrefix(digestOf([]byte("x")), "sha256:")
	for _, d := range []string{
		"", "sha256:", h, "sha256:" + strings.ToUpper(h), "sha256:" + h[:63], "sha256:" + h + "0",
		"sha512:" + h, "sha256:../../../../etc/passwd", "sha256:" + h[:62] + "/x", "sha256:" + h[:63] + "\x00",
		"SHA256:" + h, " sha256:" + h, strings.Repeat("a", 10000),
	} {
		if _, err := ParseDigest(d); !errors.Is(err, ErrInvalidDigest) {
			t.Errorf("ParseDigest(%q) = %v, want ErrInvalidDigest", d, err)
		}
		if err := s.Put(context.Background(), d, 0, strings.NewReader("")); !errors.Is(err, ErrInvalidDigest) {
			t.Errorf("Put(%q) = %v, want ErrInvalidDigest", d, err)
		}
		if _, err := s.Open(d); !errors.Is(err, ErrInvalidDigest) {
			t.Errorf("Open(%q) = %v, want ErrInvalidDigest", d, err)
		}
		if _, err := s.Create(d, 1); !errors.Is(err, ErrInvalidDigest) {
			t.Errorf("Create(%q) = %v, want ErrInvalidDigest", d, err)
		}
		if err := s.Pin(d); !errors.Is(err, ErrInvalidDigest) {
			t.Errorf("Pin(%q) = %v, want ErrInvalidDigest", d, err)
		}
		if s.Has(d) {
			t.Errorf("Has(%q) = true", d)
		}
	}
	if err := s.Pin("sha256:" + strings.Repeat("a", 200)); err == nil || len(err.Error()) > 200 {
		t.Errorf("a long bad digest's error is not cut short: %v", err)
	}
}

// failingFile is a temporary file on which writes fail once a budget of
// bytes is spent, as on a full disk.
type failingFile struct {
	*os.File
	budget *atomic.Int64
}

func (f failingFile) spend(n int) error {
	if f.budget.Add(-int64(n)) < 0 {
		return &os.PathError{Op: "write", Path: f.Name(), Err: syscall.ENOSPC}
	}
	return nil
}

func (f failingFile) Write(p []byte) (int, error) {
	if err := f.spend(len(p)); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

func (f failingFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.spend(len(p)); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func TestDiskFull(t *testing.T) {
	s := open(t, t.TempDir(), 0)
	var budget atomic.Int64
	s.createTemp = func(dir string) (tempFile, error) {
		f, err := os.CreateTemp(dir, "blob-*")
		return failingFile{f, &budget}, err
	}
	b := bytes.Repeat([]byte("y"), 100<<10)
	d := digestOf(b)
	budget.Store(50 << 10)
	err := s.Put(context.Background(), d, int64(len(b)), bytes.NewReader(b))
	if !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "disk is full") || !strings.Contains(err.Error(), d) {
		t.Errorf("Put on a full disk: %v, want ENOSPC naming %s and saying the disk is full", err, d)
	}
	if s.Has(d) || len(leftovers(t, s)) != 0 || s.reserved != 0 {
		t.Errorf("a failed Put left something: has %v, temporary files %v, reserved %d", s.Has(d), leftovers(t, s), s.reserved)
	}
	budget.Store(50 << 10)
	w, err := s.Create(d, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt(b[:40<<10], 0); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt(b[40<<10:], 40<<10); !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("WriteAt on a full disk: %v, want ENOSPC", err)
	}
	w.Abort()
	if s.Has(d) || len(leftovers(t, s)) != 0 || s.reserved != 0 {
		t.Errorf("an aborted Writer left something")
	}
	// Space again: it works.
	budget.Store(1 << 30)
	put(t, s, b)
}

type countingReader struct {
	r    io.Reader
	read *atomic.Int64
}

func (c countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.read.Add(int64(n))
	return n, err
}

func TestConcurrentPuts(t *testing.T) {
	s := open(t, t.TempDir(), 0)
	b := bytes.Repeat([]byte("concurrent "), 100000)
	d := digestOf(b)
	var read atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, 16)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Put(context.Background(), d, int64(len(b)), countingReader{bytes.NewReader(b), &read})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Put %d: %v", i, err)
		}
	}
	if got := read.Load(); got != int64(len(b)) {
		t.Errorf("16 Puts of one blob read %d bytes, want %d (one write)", got, len(b))
	}
	if !bytes.Equal(read2(t, s, d), b) {
		t.Error("wrong bytes")
	}

	// A Put with wrong bytes and Puts with the right ones at once: the
	// right ones win, whatever the order.
	good := []byte("right")
	gd := digestOf(good)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			body := good
			if i%2 == 0 {
				body = []byte("wrong")
			}
			errs[i] = s.Put(context.Background(), gd, 5, bytes.NewReader(body))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		var de *DigestError
		if i%2 == 1 && err != nil {
			t.Errorf("Put %d of the right bytes: %v", i, err)
		}
		if i%2 == 0 && err != nil && !errors.As(err, &de) {
			t.Errorf("Put %d of wrong bytes: %v, want nil or a *DigestError", i, err)
		}
	}
	if got := read2(t, s, gd); string(got) != "right" {
		t.Errorf("stored %q, want \"right\"", got)
	}

	// Many blobs under a bound at once, with Opens: the bound holds.
	s2 := open(t, t.TempDir(), 10*1000)
	for i := range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := bytes.Repeat([]byte{byte(i)}, 1000)
			if err := s2.Put(context.Background(), digestOf(b), 1000, bytes.NewReader(b)); err != nil {
				t.Errorf("Put %d: %v", i, err)
				return
			}
			if bl, err := s2.Open(digestOf(b)); err == nil {
				bl.Close()
			} else if !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("Open %d: %v", i, err)
			}
			if st := s2.Stats(); st.Bytes > st.MaxBytes {
				t.Errorf("%d bytes stored, over the bound of %d", st.Bytes, st.MaxBytes)
			}
		}()
	}
	wg.Wait()
	if st := s2.Stats(); st.Blobs != 10 || st.Evictions != 54 {
		t.Errorf("Stats() = %+v, want 10 blobs and 54 evictions", st)
	}
}

func read2(t *testing.T, s *Store, d string) []byte { return read(t, s, d) }

func TestEviction(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 300)
	blob := func(c byte) []byte { return bytes.Repeat([]byte{c}, 100) }
	a, b, c := put(t, s, blob('a')), put(t, s, blob('b')), put(t, s, blob('c'))
	read(t, s, a) // a is now the most recent: b is the least
	d := put(t, s, blob('d'))
	if s.Has(b) || !s.Has(a) || !s.Has(c) || !s.Has(d) {
		t.Errorf("after a Put over the bound: has a %v b %v c %v d %v; want b evicted", s.Has(a), s.Has(b), s.Has(c), s.Has(d))
	}
	if _, err := os.Stat(s.path(strings.TrimPrefix(b, "sha256:"))); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("evicted blob's file: %v, want it gone", err)
	}
	// An open blob stays readable after its eviction.
	bc, err := s.Open(c)
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close()
	if err := s.Pin(a); err != nil {
		t.Fatal(err)
	}
	if err := s.Pin(d); err != nil {
		t.Fatal(err)
	}
	// c is the most recent now, but a and d are pinned: c goes.
	e := put(t, s, blob('e'))
	if s.Has(c) || !s.Has(a) || !s.Has(d) || !s.Has(e) {
		t.Errorf("pinned blobs evicted: has a %v c %v d %v e %v", s.Has(a), s.Has(c), s.Has(d), s.Has(e))
	}
	if got, _ := io.ReadAll(bc); !bytes.Equal(got, blob('c')) {
		t.Error("an open blob is not readable after its eviction")
	}
	if err := s.Pin(e); err != nil {
		t.Fatal(err)
	}
	// All pinned: no room.
	f := blob('f')
	err = s.Put(context.Background(), digestOf(f), 100, bytes.NewReader(f))
	if !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), "pinned") {
		t.Errorf("Put into a store of pinned blobs: %v, want ErrFull saying why", err)
	}
	if _, err := s.Create(digestOf(f), 100); !errors.Is(err, ErrFull) {
		t.Errorf("Create in a store of pinned blobs: %v, want ErrFull", err)
	}
	s.Unpin(a)
	put(t, s, f)
	if s.Has(a) {
		t.Error("an unpinned blob was kept over the bound")
	}
	if st := s.Stats(); st.Evictions != 3 || st.Bytes != 300 || st.Pinned != 2 {
		t.Errorf("Stats() = %+v, want 3 evictions, 300 bytes, 2 pinned", st)
	}
}

func TestReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	blob := func(c byte) []byte { return bytes.Repeat([]byte{c}, 100) }
	a, b, c := put(t, s, blob('a')), put(t, s, blob('b')), put(t, s, blob('c'))
	if _, err := Open(dir, Options{}); !errors.Is(err, ErrLocked) {
		t.Errorf("a second Open of one folder: %v, want ErrLocked", err)
	}
	s.Close()
	// Recency from modification times: b oldest, then c, then a.
	now := time.Now()
	for i, d := range []string{b, c, a} {
		mt := now.Add(time.Duration(i-10) * time.Hour)
		if err := os.Chtimes(s.path(strings.TrimPrefix(d, "sha256:")), mt, mt); err != nil {
			t.Fatal(err)
		}
	}
	// A crash's leftovers, and a stray file.
	if err := os.WriteFile(filepath.Join(dir, "tmp", "blob-123"), []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "blobs", "sha256", "README"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Reopen with a lower bound: the oldest goes.
	s = open(t, dir, 250)
	if s.Has(b) || !s.Has(c) || !s.Has(a) {
		t.Errorf("after reopening under a lower bound: has a %v b %v c %v; want b evicted", s.Has(a), s.Has(b), s.Has(c))
	}
	if names := leftovers(t, s); len(names) != 0 {
		t.Errorf("temporary files left after Open: %v", names)
	}
	if st := s.Stats(); st.Blobs != 2 || st.Bytes != 200 {
		t.Errorf("Stats() = %+v, want 2 blobs, 200 bytes", st)
	}
	d := put(t, s, blob('d'))
	if s.Has(c) || !s.Has(d) {
		t.Error("want c, the least recent, evicted")
	}
	if !bytes.Equal(read(t, s, a), blob('a')) {
		t.Error("wrong bytes after reopening")
	}
}

func TestDamage(t *testing.T) {
	blob := []byte("bytes that will be damaged on disk")
	d := digestOf(blob)
	h := strings.TrimPrefix(d, "sha256:")
	tests := []struct {
		name   string
		reopen bool // damage while closed
		damage func(path string) error
	}{
		{"truncated", false, func(p string) error { return os.Truncate(p, 10) }},
		{"truncated while closed", true, func(p string) error { return os.Truncate(p, 10) }},
		{"extended", false, func(p string) error { return appendTo(p, "more") }},
		{"altered, same size", false, func(p string) error { return alter(p) }},
		{"altered while closed, same size", true, func(p string) error { return alter(p) }},
		{"removed", false, os.Remove},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s, err := Open(dir, Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer func() { s.Close() }()
			put(t, s, blob)
			if tt.reopen {
				s.Close()
			}
			if err := tt.damage(filepath.Join(dir, "blobs", "sha256", h)); err != nil {
				t.Fatal(err)
			}
			if tt.reopen {
				if s, err = Open(dir, Options{}); err != nil {
					t.Fatal(err)
				}
			}
			_, err = s.Open(d)
			if !errors.Is(err, ErrDamaged) || !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), d) {
				t.Fatalf("Open of a damaged blob: %v, want ErrDamaged and fs.ErrNotExist naming %s", err, d)
			}
			if s.Has(d) {
				t.Error("the damaged blob is still in the store")
			}
			if _, err := os.Stat(filepath.Join(dir, "blobs", "sha256", h)); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("the damaged blob's file is still there: %v", err)
			}
			if st := s.Stats(); st.Damaged != 1 || st.Blobs != 0 || st.Bytes != 0 {
				t.Errorf("Stats() = %+v, want 1 damaged, nothing stored", st)
			}
			// Fetched again, it is served.
			put(t, s, blob)
			if !bytes.Equal(read(t, s, d), blob) {
				t.Error("wrong bytes after a new Put")
			}
		})
	}
	t.Run("intact after reopen", func(t *testing.T) {
		dir := t.TempDir()
		s := open(t, dir, 0)
		put(t, s, blob)
		s.Close()
		s = open(t, dir, 0)
		for range 2 {
			if !bytes.Equal(read(t, s, d), blob) {
				t.Error("wrong bytes")
			}
		}
		if st := s.Stats(); st.Damaged != 0 {
			t.Errorf("an intact blob counted as damaged: %+v", st)
		}
	})
}

func appendTo(p, s string) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(s)
	return err
}

func alter(p string) error {
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteAt([]byte("B"), 0)
	return err
}

func TestWriter(t *testing.T) {
	s := open(t, t.TempDir(), 0)
	b := bytes.Repeat([]byte("0123456789"), 100000)
	d := digestOf(b)
	t.Run("chunks from many goroutines", func(t *testing.T) {
		w, err := s.Create(d, int64(len(b)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Create(d, int64(len(b))); !errors.Is(err, ErrBusy) {
			t.Errorf("a second Create of one digest: %v, want ErrBusy", err)
		}
		const chunk = 65536
		var wg sync.WaitGroup
		for off := 0; off < len(b); off += chunk {
			wg.Add(1)
			go func() {
				defer wg.Done()
				end := min(off+chunk, len(b))
				if _, err := w.WriteAt(b[off:end], int64(off)); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if s.Has(d) {
			t.Error("the blob is in the store before Commit")
		}
		if w.dirty || w.hashed != int64(len(b)) || len(w.pending) != 0 {
			t.Errorf("after writes that do not overlap: dirty %v, %d of %d bytes hashed, %d ranges pending", w.dirty, w.hashed, len(b), len(w.pending))
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(read(t, s, d), b) {
			t.Error("wrong bytes")
		}
		if err := w.Commit(); err == nil {
			t.Error("a second Commit succeeded")
		}
		w.Abort() // does nothing after Commit
		if !s.Has(d) {
			t.Error("Abort after Commit removed the blob")
		}
		if _, err := s.Create(d, int64(len(b))); !errors.Is(err, fs.ErrExist) {
			t.Errorf("Create of a stored blob: %v, want fs.ErrExist", err)
		}
	})
	other := []byte("another blob of twenty-nine b")
	od := digestOf(other)
	isDigestError := func(err error) bool { var de *DigestError; return errors.As(err, &de) }
	tests := []struct {
		name   string
		write  func(w *Writer) error
		commit func(error) bool // whether Commit's error is the one wanted
	}{
		{"a wrong chunk", func(w *Writer) error {
			w.WriteAt(other[:10], 0)
			_, err := w.WriteAt([]byte("XXXXXXXXXXXXXXXXXXX"), 10)
			return err
		}, isDigestError},
		{"a missing chunk in the middle", func(w *Writer) error {
			w.WriteAt(other[:10], 0)
			_, err := w.WriteAt(other[20:], 20)
			return err
		}, isDigestError},
		{"chunks out of order", func(w *Writer) error {
			w.WriteAt(other[20:], 20)
			w.WriteAt(other[10:20], 10)
			_, err := w.WriteAt(other[:10], 0)
			return err
		}, func(err error) bool { return err == nil }},
		{"a wrong chunk, then the right one over it", func(w *Writer) error {
			w.WriteAt([]byte("XXXXXXXXXX"), 0)
			w.WriteAt(other[10:], 10)
			_, err := w.WriteAt(other[:10], 0)
			return err
		}, func(err error) bool { return err == nil }},
		{"the right chunk, then a wrong one over it", func(w *Writer) error {
			w.WriteAt(other, 0)
			_, err := w.WriteAt([]byte("XXXXX"), 12)
			return err
		}, isDigestError},
		{"a wrong chunk over part of one not yet hashed, then the rest", func(w *Writer) error {
			w.WriteAt(other[15:], 15)
			w.WriteAt([]byte("XXXXXXXXXX"), 10)
			_, err := w.WriteAt(other[:10], 0)
			return err
		}, isDigestError},
		{"the right bytes over part of a wrong chunk not yet hashed", func(w *Writer) error {
			w.WriteAt([]byte("XXXXXXXXXX"), 10)
			w.WriteAt(other[15:], 15)
			_, err := w.WriteAt(other[:15], 0)
			return err
		}, func(err error) bool { return err == nil }},
		{"a missing chunk at the end", func(w *Writer) error { _, err := w.WriteAt(other[:10], 0); return err },
			func(err error) bool { return errors.Is(err, ErrSize) }},
		{"too many bytes, then the right ones", func(w *Writer) error {
			for _, off := range []int64{0, -1, 1, 29, 30} {
				if _, err := w.WriteAt(append(other, 'x')[off&0xff%29:], off); !errors.Is(err, ErrSize) {
					return fmt.Errorf("WriteAt beyond the end at %d: %v, want ErrSize", off, err)
				}
			}
			_, err := w.WriteAt(other, 0)
			return err
		}, func(err error) bool { return err == nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, t.TempDir(), 0)
			w, err := s.Create(od, int64(len(other)))
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.write(w); err != nil {
				t.Fatal(err)
			}
			err = w.Commit()
			if !tt.commit(err) {
				t.Errorf("Commit: %v", err)
			}
			if s.Has(od) != (err == nil) || len(leftovers(t, s)) != 0 || s.reserved != 0 {
				t.Errorf("after Commit (%v): has %v, temporary files %v, reserved %d", err, s.Has(od), leftovers(t, s), s.reserved)
			}
		})
	}
	t.Run("abort", func(t *testing.T) {
		w, err := s.Create(od, int64(len(other)))
		if err != nil {
			t.Fatal(err)
		}
		w.WriteAt(other, 0)
		w.Abort()
		if _, err := w.WriteAt(other, 0); err == nil {
			t.Error("WriteAt after Abort succeeded")
		}
		if err := w.Commit(); err == nil {
			t.Error("Commit after Abort succeeded")
		}
		if s.Has(od) || len(leftovers(t, s)) != 0 || s.reserved != 0 {
			t.Error("Abort left something")
		}
		// A Put waiting on a Writer goes on when it ends.
		w, err = s.Create(od, int64(len(other)))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error)
		go func() { done <- s.Put(context.Background(), od, int64(len(other)), bytes.NewReader(other)) }()
		w.Abort()
		if err := <-done; err != nil {
			t.Errorf("Put after an aborted Writer: %v", err)
		}
		if !bytes.Equal(read(t, s, od), other) {
			t.Error("wrong bytes")
		}
	})
}

func TestPutCancelled(t *testing.T) {
	s := open(t, t.TempDir(), 0)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	b := []byte("never")
	err := s.Put(ctx, digestOf(b), 5, bytes.NewReader(b))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Put with a cancelled context: %v, want context.Canceled", err)
	}
	if s.Has(digestOf(b)) || len(leftovers(t, s)) != 0 {
		t.Error("a cancelled Put left something")
	}
}

// readCountingFile counts the bytes read back from a temporary file.
type readCountingFile struct {
	*os.File
	read *atomic.Int64
}

func (f readCountingFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	f.read.Add(int64(n))
	return n, err
}

// Chunks written out of order with WriteAtLent are hashed from the
// memory lent, not read back from the file, within maxLent; every lent
// buffer is given back exactly once; beyond maxLent, and with WriteAt,
// the bytes are read back from the file.
func TestWriterLent(t *testing.T) {
	s := open(t, t.TempDir(), 0)
	var read atomic.Int64
	s.createTemp = func(dir string) (tempFile, error) {
		f, err := os.CreateTemp(dir, "blob-*")
		return readCountingFile{f, &read}, err
	}
	const chunk = 1 << 20
	for _, tc := range []struct {
		name     string
		chunks   int
		lend     bool
		wantRead int64
	}{
		{"lent, within the bound", 9, true, 0},
		{"lent, over the bound", maxLent/chunk + 3, true, 2 * chunk}, // chunks 1..maxLent/chunk are held, the last two read back
		{"not lent", 9, false, 8 * chunk},
	} {
		t.Run(tc.name, func(t *testing.T) {
			read.Store(0)
			b := make([]byte, tc.chunks*chunk)
			for i := range b {
				b[i] = byte(i*7/5 + len(tc.name))
			}
			d := digestOf(b)
			w, err := s.Create(d, int64(len(b)))
			if err != nil {
				t.Fatal(err)
			}
			given := make([]atomic.Int32, tc.chunks)
			// Every chunk but the first, then the first.
			var order []int
			for c := 1; c < tc.chunks; c++ {
				order = append(order, c)
			}
			order = append(order, 0)
			for _, c := range order {
				p := b[c*chunk : (c+1)*chunk]
				if tc.lend {
					_, err = w.WriteAtLent(p, int64(c*chunk), func() { given[c].Add(1) })
				} else {
					_, err = w.WriteAt(p, int64(c*chunk))
				}
				if err != nil {
					t.Fatal(err)
				}
			}
			if err := w.Commit(); err != nil {
				t.Fatal(err)
			}
			if got := read.Load(); got != tc.wantRead {
				t.Errorf("read back %d bytes from the file, want %d", got, tc.wantRead)
			}
			for c := range given {
				if n := given[c].Load(); tc.lend && n != 1 {
					t.Errorf("chunk %d given back %d times, want once", c, n)
				}
			}
			if !bytes.Equal(read2(t, s, d), b) {
				t.Error("wrong bytes stored")
			}
		})
	}
}

// Lent bytes are given back when a write turns the Writer dirty and at
// Abort, and the digest is still checked against the file.
func TestWriterLentGivenBack(t *testing.T) {
	s := open(t, t.TempDir(), 0)
	b := bytes.Repeat([]byte("abcdefghij"), 1000)
	d := digestOf(b)
	var given atomic.Int32
	done := func() { given.Add(1) }
	w, err := s.Create(d, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	w.WriteAtLent(b[5000:], 5000, done)
	w.WriteAtLent(b[2000:3000], 2000, done)
	if given.Load() != 0 {
		t.Fatalf("%d buffers given back before their turn", given.Load())
	}
	// A write over bytes written: dirty, all lent given back.
	w.WriteAtLent([]byte("XXXX"), 2500, done)
	if got := given.Load(); got != 3 {
		t.Errorf("after an overlapping write %d buffers given back, want 3", got)
	}
	w.WriteAt(b[:2000], 0)
	w.WriteAt(b[3000:5000], 3000)
	if err := w.Commit(); err == nil {
		t.Error("a blob with a wrong range over a lent one was committed")
	}

	given.Store(0)
	w, err = s.Create(d, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	w.WriteAtLent(b[5000:], 5000, done)
	w.Abort()
	if got := given.Load(); got != 1 {
		t.Errorf("Abort gave back %d lent buffers, want 1", got)
	}
	if _, err := w.WriteAtLent(b[:10], 0, done); err == nil || given.Load() != 2 {
		t.Errorf("a write after Abort: err %v, %d given back, want an error and the buffer given back", err, given.Load())
	}
}
