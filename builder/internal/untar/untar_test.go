package untar

import (
	"archive/tar"
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

type entry struct {
	name, link, body string
	typ              byte
	mode             int64
}

func tarOf(t testing.TB, entries ...entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: mode, Size: int64(len(e.body))}
		if e.typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if e.typ == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// writable makes the folders under dir writable before the test's
// temporary folders are removed: a layer may hold read-only folders, and
// the tests need not run as root.
func writable(t testing.TB, dir string) {
	t.Cleanup(func() {
		filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				os.Chmod(p, 0o755)
			}
			return nil
		})
	})
}

// sandbox returns dest and a folder beside it holding "secret".
func sandbox(t testing.TB) (dest, outside string) {
	base := t.TempDir()
	writable(t, base)
	dest, outside = filepath.Join(base, "dest"), filepath.Join(base, "outside")
	for _, d := range []string{dest, outside} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("host secret"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dest, outside
}

// checkOutside fails if anything outside dest changed or is linked in.
func checkOutside(t testing.TB, dest, outside string) {
	t.Helper()
	des, err := os.ReadDir(outside)
	if err != nil || len(des) != 1 || des[0].Name() != "secret" {
		t.Fatalf("the folder outside changed: %v %v", des, err)
	}
	fi, err := os.Stat(filepath.Join(outside, "secret"))
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Nlink != 1 || fi.Mode().Perm() != 0o600 {
		t.Fatalf("the host file was linked or changed: nlink %d, mode %s", st.Nlink, fi.Mode())
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "secret")); string(b) != "host secret" {
		t.Fatalf("the host file was written: %q", b)
	}
	parent := filepath.Dir(dest)
	pes, _ := os.ReadDir(parent)
	if len(pes) != 2 {
		t.Fatalf("something was written beside dest: %v", pes)
	}
}

func TestExtractRefusesEscapes(t *testing.T) {
	tests := []struct {
		name    string
		entries func(outside string) []entry
		member  string // the member the error names
		msg     string
	}{
		{"hard link through a symlink", func(o string) []entry {
			return []entry{{name: "lnk", typ: tar.TypeSymlink, link: o}, {name: "x", typ: tar.TypeLink, link: "lnk/secret"}}
		}, "x", "leads outside the destination folder through a symlink"},
		{"hard link through a relative symlink", func(o string) []entry {
			return []entry{{name: "d/lnk", typ: tar.TypeSymlink, link: "../../outside"}, {name: "x", typ: tar.TypeLink, link: "d/lnk/secret"}}
		}, "x", "leads outside"},
		{"hard link up", func(string) []entry {
			return []entry{{name: "x", typ: tar.TypeLink, link: "../outside/secret"}}
		}, "x", "not a member path"},
		{"hard link to a symlink", func(o string) []entry {
			return []entry{{name: "lnk", typ: tar.TypeSymlink, link: filepath.Join(o, "secret")}, {name: "x", typ: tar.TypeLink, link: "lnk"}}
		}, "x", "not a regular file"},
		{"file through a symlinked folder", func(o string) []entry {
			return []entry{{name: "etc", typ: tar.TypeSymlink, link: o}, {name: "etc/passwd", typ: tar.TypeReg, body: "x"}}
		}, "etc/passwd", "leads outside"},
		{"folder through a symlinked folder", func(o string) []entry {
			return []entry{{name: "etc", typ: tar.TypeSymlink, link: o}, {name: "etc/sub/", typ: tar.TypeDir}}
		}, "etc/sub/", "leads outside"},
		{"file through a symlinked file", func(o string) []entry {
			return []entry{{name: "d/", typ: tar.TypeDir}, {name: "d/f", typ: tar.TypeSymlink, link: filepath.Join(o, "secret")}, {name: "d/f/x", typ: tar.TypeReg}}
		}, "d/f/x", ""},
		{"dot dot", func(string) []entry { return []entry{{name: "a/../../outside/evil", typ: tar.TypeReg}} }, "a/../../outside/evil", `leaves the destination folder`},
		{"symlink to a folder, then a FIFO in it", func(o string) []entry {
			return []entry{{name: "p", typ: tar.TypeSymlink, link: o}, {name: "p/fifo", typ: tar.TypeFifo}}
		}, "p/fifo", "leads outside"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dest, outside := sandbox(t)
			err := Extract(bytes.NewReader(tarOf(t, tt.entries(outside)...)), dest, Options{Special: true})
			if err == nil || !strings.HasPrefix(err.Error(), `untar: member "`+tt.member+`": `) || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %v, want an error naming member %q and holding %q", err, tt.member, tt.msg)
			}
			checkOutside(t, dest, outside)
		})
	}
}

func TestExtractReplacesSymlinkNotTarget(t *testing.T) {
	dest, outside := sandbox(t)
	err := Extract(bytes.NewReader(tarOf(t,
		entry{name: "f", typ: tar.TypeSymlink, link: filepath.Join(outside, "secret")},
		entry{name: "f", typ: tar.TypeReg, body: "mine"},
	)), dest, Options{})
	if err != nil {
		t.Fatal(err)
	}
	checkOutside(t, dest, outside)
	if b, err := os.ReadFile(filepath.Join(dest, "f")); err != nil || string(b) != "mine" {
		t.Fatalf("got %q, %v", b, err)
	}
}

func TestExtractTree(t *testing.T) {
	dest := t.TempDir()
	writable(t, dest)
	data := tarOf(t,
		entry{name: "./", typ: tar.TypeDir, mode: 0o755},
		entry{name: "/abs", typ: tar.TypeReg, body: "leading slash dropped"},
		entry{name: "bin/", typ: tar.TypeDir, mode: 0o555},
		entry{name: "bin/su", typ: tar.TypeReg, body: "su", mode: 0o4755},
		entry{name: "bin/again", typ: tar.TypeLink, link: "bin/su"},
		entry{name: "bin/sh", typ: tar.TypeSymlink, link: "su"},
		entry{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		entry{name: "tmp/fifo", typ: tar.TypeFifo, mode: 0o600},
		entry{name: "deep/er/file", typ: tar.TypeReg, body: "parents made"},
	)
	if err := Extract(bytes.NewReader(data), dest, Options{Special: true}); err != nil {
		t.Fatal(err)
	}
	mode := func(name string) fs.FileMode {
		fi, err := os.Lstat(filepath.Join(dest, name))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Mode()
	}
	for name, want := range map[string]fs.FileMode{
		"abs": 0o644, "bin": fs.ModeDir | 0o555, "bin/su": fs.ModeSetuid | 0o755,
		"bin/sh": fs.ModeSymlink | 0o777, "tmp": fs.ModeDir | fs.ModeSticky | 0o777,
		"tmp/fifo": fs.ModeNamedPipe | 0o600, "deep/er/file": 0o644,
	} {
		if got := mode(name); got != want {
			t.Errorf("%s: mode %s, want %s", name, got, want)
		}
	}
	a, _ := os.Stat(filepath.Join(dest, "bin/su"))
	b, _ := os.Stat(filepath.Join(dest, "bin/again"))
	if !os.SameFile(a, b) {
		t.Error("bin/again is not a hard link to bin/su")
	}

	// Without Special: no setuid, no FIFO; unknown types skipped or not.
	dest = t.TempDir()
	data = tarOf(t, entry{name: "su", typ: tar.TypeReg, mode: 0o4755}, entry{name: "fifo", typ: tar.TypeFifo}, entry{name: "null", typ: tar.TypeChar})
	if err := Extract(bytes.NewReader(data), dest, Options{}); err == nil || !strings.Contains(err.Error(), `member "null": unsupported entry type`) {
		t.Fatalf("got %v, want the device refused by name", err)
	}
	dest = t.TempDir()
	if err := Extract(bytes.NewReader(data), dest, Options{SkipUnknown: true}); err != nil {
		t.Fatal(err)
	}
	if got := mode("su"); got != 0o755 {
		t.Errorf("su: mode %s, want 0755", got)
	}
	for _, name := range []string{"fifo", "null"} {
		if _, err := os.Lstat(filepath.Join(dest, name)); err == nil {
			t.Errorf("%s was made", name)
		}
	}
}

func TestExtractLimits(t *testing.T) {
	data := tarOf(t, entry{name: "a", typ: tar.TypeReg, body: "12345"}, entry{name: "b", typ: tar.TypeReg, body: "67890"})
	err := Extract(bytes.NewReader(data), t.TempDir(), Options{MaxSize: 8})
	if err == nil || !strings.Contains(err.Error(), `member "b": the archive unpacks to over 8 bytes`) {
		t.Fatalf("got %v", err)
	}
	err = Extract(bytes.NewReader(tarOf(t, entry{name: "d/", typ: tar.TypeDir}, entry{name: "d", typ: tar.TypeReg})), t.TempDir(), Options{})
	if err == nil || !strings.Contains(err.Error(), `member "d": d exists and is a folder`) {
		t.Fatalf("got %v, want a folder kept", err)
	}
	err = Extract(bytes.NewReader(data[:1100]), t.TempDir(), Options{})
	if err == nil || !strings.HasPrefix(err.Error(), "untar: ") {
		t.Fatalf("got %v for a truncated archive", err)
	}
}

func FuzzExtract(f *testing.F) {
	o := "/tmp/untar-fuzz-outside"
	f.Add(tarOf(f, entry{name: "lnk", typ: tar.TypeSymlink, link: o}, entry{name: "x", typ: tar.TypeLink, link: "lnk/secret"}))
	f.Add(tarOf(f, entry{name: "lnk", typ: tar.TypeSymlink, link: "../outside"}, entry{name: "lnk/y", typ: tar.TypeReg, body: "y"}))
	f.Add(tarOf(f, entry{name: "d/", typ: tar.TypeDir, mode: 0o500}, entry{name: "d/f", typ: tar.TypeReg, body: "f"},
		entry{name: "d/h", typ: tar.TypeLink, link: "d/f"}, entry{name: "d/p", typ: tar.TypeFifo}, entry{name: "../x", typ: tar.TypeReg}))
	f.Fuzz(func(t *testing.T, data []byte) {
		dest, outside := sandbox(t)
		// Point absolute symlinks in the input at this run's outside.
		data = bytes.ReplaceAll(data, []byte(o), []byte(outside))
		err := Extract(bytes.NewReader(data), dest, Options{Special: true, MaxSize: 1 << 20})
		if err != nil && !strings.HasPrefix(err.Error(), "untar: ") {
			t.Fatalf("error %q lacks the package prefix", err)
		}
		checkOutside(t, dest, outside)
	})
}
