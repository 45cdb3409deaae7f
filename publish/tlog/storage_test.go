package tlog

import (
	"errors"
	"io"
	"io/fs"
	"slices"
	"syscall"
	"testing"
)

// testFS is the conformance suite of an FS: what the log relies on, run
// against the disk and the in-memory fake alike.
func testFS(t *testing.T, fsys FS) {
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	read := func(name, want string) {
		t.Helper()
		got, err := fsys.ReadFile(name)
		if err != nil || string(got) != want {
			t.Fatalf("ReadFile(%s) = %q, %v; want %q", name, got, err, want)
		}
	}
	if _, err := fsys.ReadFile("missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadFile of a missing file: %v, want ErrNotExist", err)
	}
	if _, err := fsys.ReadDir("nodir"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadDir of a missing folder: %v, want ErrNotExist", err)
	}

	// WriteFile makes folders, replaces, and syncs on request.
	must(fsys.WriteFile("tile/0/000", []byte("one"), false))
	read("tile/0/000", "one")
	must(fsys.WriteFile("tile/0/000", []byte("two"), true))
	read("tile/0/000", "two")
	must(fsys.WriteFile("tile/0/000.p/5", []byte("p"), false))
	names, err := fsys.ReadDir("tile/0")
	must(err)
	if !slices.Equal(names, []string{"000", "000.p"}) {
		t.Fatalf("ReadDir(tile/0) = %q", names)
	}
	if ok, err := fsys.Exists("tile/0/000.p"); !ok || err != nil {
		t.Fatalf("Exists of a folder: %v, %v", ok, err)
	}
	must(fsys.RemoveAll("tile/0/000.p"))
	if ok, _ := fsys.Exists("tile/0/000.p/5"); ok {
		t.Fatal("RemoveAll left a file")
	}
	must(fsys.RemoveAll("tile/0/000.p")) // removing nothing is no error

	// Append: create is exclusive, writes land at the offset given.
	must(fsys.MkdirAll("wal"))
	f, err := fsys.Append("wal/a", true, 0)
	must(err)
	_, err = f.Write([]byte("hello "))
	must(err)
	_, err = f.Write([]byte("world"))
	must(err)
	must(f.Sync())
	must(f.Close())
	must(fsys.SyncDir("wal"))
	read("wal/a", "hello world")
	if _, err := fsys.Append("wal/a", true, 0); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Append create over an existing file: %v, want ErrExist", err)
	}
	if _, err := fsys.Append("wal/none", false, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Append of a missing file: %v, want ErrNotExist", err)
	}
	must(fsys.Truncate("wal/a", 5))
	read("wal/a", "hello")
	f, err = fsys.Append("wal/a", false, 5)
	must(err)
	_, err = f.Write([]byte("!"))
	must(err)
	must(f.Sync())
	f.Close()
	read("wal/a", "hello!")

	// Open reads and seeks.
	r, err := fsys.Open("wal/a")
	must(err)
	if _, err := r.Seek(2, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(r)
	r.Close()
	if string(rest) != "llo!" {
		t.Fatalf("read after Seek: %q", rest)
	}

	must(fsys.Remove("wal/a"))
	if ok, _ := fsys.Exists("wal/a"); ok {
		t.Fatal("Remove left the file")
	}
	if err := fsys.Remove("wal/a"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Remove of a missing file: %v", err)
	}
	must(fsys.SyncAll())
}

func TestDiskFS(t *testing.T) { testFS(t, DiskFS(t.TempDir())) }
func TestMemFS(t *testing.T)  { testFS(t, newMemFS()) }

// TestMemFSCrash checks the fake's model of durability, which the crash
// tests rely on.
func TestMemFSCrash(t *testing.T) {
	m := newMemFS()
	m.MkdirAll("d")
	m.WriteFile("d/synced", []byte("y"), true)
	g, _ := m.Append("d/old", true, 0)
	g.Write([]byte("durable"))
	g.Sync()
	m.SyncDir("d")
	g.Write([]byte(" lost")) // never synced
	m.WriteFile("d/unsynced", []byte("x"), false)
	f, _ := m.Append("d/new", true, 0) // data synced, name not
	f.Write([]byte("z"))
	f.Sync()
	m.Crash(nil)
	for name, want := range map[string]string{"d/synced": "y", "d/old": "durable"} {
		if got, err := m.ReadFile(name); err != nil || string(got) != want {
			t.Errorf("after a crash, %s = %q, %v; want %q", name, got, err, want)
		}
	}
	for _, name := range []string{"d/unsynced", "d/new", "d/new2"} {
		if ok, _ := m.Exists(name); ok {
			t.Errorf("after a crash, %s exists (its name was never synced)", name)
		}
	}
}

// TestMemFSFailedSync checks the fake's model of a failed fsync: the data
// it did not make durable is marked clean, so a later Sync succeeds and
// keeps zeros there; what is written after is synced as any, and so is a
// new file (a rewrite).
func TestMemFSFailedSync(t *testing.T) {
	m := newMemFS()
	m.MkdirAll("d")
	f, _ := m.Append("d/f", true, 0)
	f.Write([]byte("old "))
	f.Sync()
	f.Write([]byte("data"))
	m.fault = func(op, name string) error {
		if op == "sync" {
			return syscall.EIO
		}
		return nil
	}
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Sync: %v, want EIO", err)
	}
	m.fault = nil
	f.Write([]byte(" more"))
	if err := f.Sync(); err != nil {
		t.Fatalf("Sync after EIO: %v", err)
	}
	m.WriteFile("d/g", []byte("rewritten"), false)
	g, _ := m.Append("d/g", false, 9)
	g.Sync()
	m.SyncDir("d")
	m.Crash(nil)
	if got, want := mustRead(t, m, "d/f"), "old \x00\x00\x00\x00 more"; got != want {
		t.Errorf("after EIO, a write, a Sync and a crash, d/f = %q, want %q (the pages that failed were marked clean)", got, want)
	}
	if got := mustRead(t, m, "d/g"); got != "rewritten" {
		t.Errorf("a rewritten file after Sync and a crash = %q, want %q", got, "rewritten")
	}
}

func mustRead(t *testing.T, fsys FS, name string) string {
	t.Helper()
	b, err := fsys.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
