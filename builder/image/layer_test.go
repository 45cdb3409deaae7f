package image

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var testEpoch = time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)

// makeTree builds a small tree with every kind of entry WriteLayer keeps.
// The order of creation is reversed when reverse is set, so that inode
// numbers and directory order on disk differ.
func makeTree(t testing.TB, root string, reverse bool) {
	t.Helper()
	long := strings.Repeat("d", 60) + "/" + strings.Repeat("f", 110) // a file name over USTAR's 100 bytes: PAX
	steps := []func() error{
		func() error { return os.MkdirAll(filepath.Join(root, "bin"), 0o755) },
		func() error { return os.MkdirAll(filepath.Join(root, "etc/sub"), 0o750) },
		func() error { return os.MkdirAll(filepath.Join(root, "tmp"), 0o755) },
		func() error { return os.MkdirAll(filepath.Join(root, filepath.Dir(long)), 0o755) },
		func() error { return os.MkdirAll(filepath.Join(root, "a-b"), 0o755) },
	}
	files := []struct {
		name string
		data string
		mode os.FileMode
	}{
		{"bin/tool", "#!/bin/sh\necho tool\n", 0o755},
		{"etc/passwd", "root:x:0:0:root:/root:/bin/sh\n", 0o644},
		{"etc/sub/secret", "s3cret", 0o600},
		{"etc/empty", "", 0o644},
		{long, "long name", 0o644},
		{"a-b/c", "dash sorts before slash", 0o644},
	}
	for _, f := range files {
		steps = append(steps, func() error {
			p := filepath.Join(root, f.name)
			if err := os.WriteFile(p, []byte(f.data), 0o600); err != nil {
				return err
			}
			return os.Chmod(p, f.mode)
		})
	}
	steps = append(steps,
		func() error { return os.Symlink("tool", filepath.Join(root, "bin/link")) },
		func() error { return os.Symlink("/no/such/target", filepath.Join(root, "etc/dangling")) },
		func() error { return os.Link(filepath.Join(root, "bin/tool"), filepath.Join(root, "bin/z-hard")) },
		func() error { return os.Link(filepath.Join(root, "bin/tool"), filepath.Join(root, "a-b/hard")) },
		func() error { return syscall.Mkfifo(filepath.Join(root, "etc/fifo"), 0o644) },
		func() error {
			return os.Chmod(filepath.Join(root, "tmp"), 0o777|os.ModeSticky)
		},
		func() error {
			return os.Chmod(filepath.Join(root, "bin/tool"), 0o755|os.ModeSetuid)
		},
	)
	// Files first, then links, then modes: reversing only the file
	// writes keeps every step possible.
	if reverse {
		for i, j := 5, 5+len(files)-1; i < j; i, j = i+1, j-1 {
			steps[i], steps[j] = steps[j], steps[i]
		}
	}
	for _, s := range steps {
		if err := s(); err != nil {
			t.Fatal(err)
		}
	}
}

func layerDigest(t *testing.T, root string) (string, []byte, LayerStats) {
	t.Helper()
	var buf bytes.Buffer
	st, err := WriteLayer(context.Background(), &buf, root, testEpoch)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(sum[:]), buf.Bytes(), st
}

func TestWriteLayerDeterministic(t *testing.T) {
	a := t.TempDir()
	makeTree(t, a, false)
	d1, _, _ := layerDigest(t, a)
	d2, _, _ := layerDigest(t, a)
	if d1 != d2 {
		t.Fatalf("same folder twice: %s != %s", d1, d2)
	}

	// Another copy, made in another order, at another time.
	b := t.TempDir()
	time.Sleep(10 * time.Millisecond)
	makeTree(t, b, true)
	if d3, _, _ := layerDigest(t, b); d3 != d1 {
		t.Fatalf("same tree made in another order: %s != %s", d3, d1)
	}

	// Times, owners and xattrs on disk do not count.
	old := time.Date(1999, 1, 1, 0, 0, 0, 0, time.UTC)
	err := filepath.Walk(b, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if fi.Mode()&os.ModeSymlink == 0 {
			if err := os.Chtimes(p, old, old); err != nil {
				return err
			}
		}
		if os.Geteuid() == 0 {
			if err := os.Lchown(p, 1234, 5678); err != nil {
				return err
			}
		}
		if fi.Mode().IsRegular() {
			_ = syscall.Setxattr(p, "user.pyrsia", []byte("x"), 0) // not every file system has them
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		// Chown clears setuid: put it back.
		if err := os.Chmod(filepath.Join(b, "bin/tool"), 0o755|os.ModeSetuid); err != nil {
			t.Fatal(err)
		}
	}
	if d4, _, _ := layerDigest(t, b); d4 != d1 {
		t.Fatalf("after chtimes/chown/setxattr: %s != %s", d4, d1)
	}

	// Contents and modes do count.
	if err := os.Chmod(filepath.Join(b, "etc/passwd"), 0o600); err != nil {
		t.Fatal(err)
	}
	if d5, _, _ := layerDigest(t, b); d5 == d1 {
		t.Fatal("a mode change did not change the digest")
	}
	if err := os.Chmod(filepath.Join(b, "etc/passwd"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(b, "etc/empty"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if d6, _, _ := layerDigest(t, b); d6 == d1 {
		t.Fatal("a content change did not change the digest")
	}
}

func TestWriteLayerFormat(t *testing.T) {
	root := t.TempDir()
	makeTree(t, root, false)
	if os.Geteuid() == 0 {
		if err := syscall.Mknod(filepath.Join(root, "etc/null"), syscall.S_IFCHR|0o666, 1<<8|3); err != nil {
			t.Fatal(err)
		}
	}
	_, raw, st := layerDigest(t, root)
	tr := tar.NewReader(bytes.NewReader(raw))
	var names []string
	hdrs := map[string]*tar.Header{}
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		hdrs[h.Name] = h
		if h.Uid != 0 || h.Gid != 0 || h.Uname != "" || h.Gname != "" {
			t.Errorf("%s: owner %d:%d %q:%q", h.Name, h.Uid, h.Gid, h.Uname, h.Gname)
		}
		if !h.ModTime.Equal(testEpoch) || !h.AccessTime.IsZero() || !h.ChangeTime.IsZero() {
			t.Errorf("%s: times %v %v %v", h.Name, h.ModTime, h.AccessTime, h.ChangeTime)
		}
		long := len(h.Name) > 100
		if long != (h.Format == tar.FormatPAX) || (!long && h.Format != tar.FormatUSTAR) {
			t.Errorf("%s: format %v", h.Name, h.Format)
		}
		if len(h.PAXRecords) > 0 && !long {
			t.Errorf("%s: PAX records %v", h.Name, h.PAXRecords)
		}
	}
	want := []string{
		"a-b/", "a-b/c", "a-b/hard",
		"bin/", "bin/link", "bin/tool", "bin/z-hard",
		strings.Repeat("d", 60) + "/", strings.Repeat("d", 60) + "/" + strings.Repeat("f", 110),
		"etc/", "etc/dangling", "etc/empty", "etc/fifo", "etc/passwd", "etc/sub/", "etc/sub/secret",
		"tmp/",
	}
	if strings.Join(names, "\n") != strings.Join(want, "\n") {
		t.Fatalf("entries:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
	// The first path in walk order holds the content, the others link to it.
	if h := hdrs["a-b/hard"]; h.Typeflag != tar.TypeReg || h.Size == 0 || h.Mode != 0o4755 {
		t.Errorf("a-b/hard: type %c size %d mode %o", h.Typeflag, h.Size, h.Mode)
	}
	for _, n := range []string{"bin/tool", "bin/z-hard"} {
		if h := hdrs[n]; h.Typeflag != tar.TypeLink || h.Linkname != "a-b/hard" {
			t.Errorf("%s: type %c link %q", n, h.Typeflag, h.Linkname)
		}
	}
	if h := hdrs["tmp/"]; h.Mode != 0o1777 {
		t.Errorf("tmp/: mode %o", h.Mode)
	}
	if h := hdrs["etc/sub/"]; h.Mode != 0o750 {
		t.Errorf("etc/sub/: mode %o", h.Mode)
	}
	if h := hdrs["bin/link"]; h.Typeflag != tar.TypeSymlink || h.Linkname != "tool" {
		t.Errorf("bin/link: %c %q", h.Typeflag, h.Linkname)
	}
	if h := hdrs["etc/fifo"]; h.Typeflag != tar.TypeFifo {
		t.Errorf("etc/fifo: %c", h.Typeflag)
	}
	if os.Geteuid() == 0 {
		if len(st.Skipped) != 1 || st.Skipped[0] != "etc/null: character device" {
			t.Errorf("skipped %q", st.Skipped)
		}
	}
	if st.Entries != len(want) {
		t.Errorf("entries %d, want %d", st.Entries, len(want))
	}
}

func TestWriteLayerNotAFolder(t *testing.T) {
	f := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := WriteLayer(context.Background(), io.Discard, f, testEpoch); err == nil {
		t.Fatal("no error for a file as root")
	}
	if _, err := WriteLayer(context.Background(), io.Discard, f+"-missing", testEpoch); err == nil {
		t.Fatal("no error for a missing root")
	}
}

func TestUnpackRoundTrip(t *testing.T) {
	a := t.TempDir()
	makeTree(t, a, false)
	d1, raw, _ := layerDigest(t, a)
	b := t.TempDir()
	if err := Unpack(bytes.NewReader(raw), b); err != nil {
		t.Fatal(err)
	}
	if d2, _, _ := layerDigest(t, b); d2 != d1 {
		t.Fatalf("unpacked and written again: %s != %s", d2, d1)
	}
}

func TestUnpackStaysInside(t *testing.T) {
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "secret"), []byte("host"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		headers []*tar.Header
		msg     string
	}{
		{"dot dot", []*tar.Header{{Name: "a/../../evil", Typeflag: tar.TypeReg, Mode: 0o644}},
			`member "a/../../evil": the name leaves the destination folder`},
		{"file through a symlink", []*tar.Header{
			{Name: "etc", Typeflag: tar.TypeSymlink, Linkname: outside},
			{Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644},
		}, `member "etc/passwd": its path leads outside the destination folder through a symlink`},
		// The reproduction: a hard link through a symlink linked
		// a host file into the destination.
		{"hard link through a symlink", []*tar.Header{
			{Name: "lnk", Typeflag: tar.TypeSymlink, Linkname: outside},
			{Name: "x", Typeflag: tar.TypeLink, Linkname: "lnk/secret"},
		}, `member "x": its path leads outside the destination folder through a symlink`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			tw := tar.NewWriter(&buf)
			for _, h := range tt.headers {
				if err := tw.WriteHeader(h); err != nil {
					t.Fatal(err)
				}
			}
			tw.Close()
			dest := t.TempDir()
			err := Unpack(bytes.NewReader(buf.Bytes()), dest)
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("err = %v, want %q", err, tt.msg)
			}
			if _, err := os.Lstat(filepath.Join(dest, "x")); err == nil {
				t.Error("the hard link was made")
			}
			des, _ := os.ReadDir(outside)
			fi, _ := os.Stat(filepath.Join(outside, "secret"))
			if len(des) != 1 || fi.Sys().(*syscall.Stat_t).Nlink != 1 {
				t.Errorf("the folder outside changed: %v, nlink %d", des, fi.Sys().(*syscall.Stat_t).Nlink)
			}
		})
	}
}

// FuzzUnpackLayer: whatever the layer holds, nothing outside the
// destination is written or linked in. Seeds are layers WriteLayer made and
// hostile ones.
func FuzzUnpackLayer(f *testing.F) {
	src := f.TempDir()
	makeTree(f, src, false)
	var buf bytes.Buffer
	if _, err := WriteLayer(context.Background(), &buf, src, testEpoch); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	const outsideMark = "/tmp/pyrsia-fuzz-outside"
	for _, hs := range [][]*tar.Header{
		{{Name: "lnk", Typeflag: tar.TypeSymlink, Linkname: outsideMark}, {Name: "x", Typeflag: tar.TypeLink, Linkname: "lnk/secret"}},
		{{Name: "etc", Typeflag: tar.TypeSymlink, Linkname: "../outside"}, {Name: "etc/passwd", Typeflag: tar.TypeReg}},
		{{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o555}, {Name: "d/p", Typeflag: tar.TypeFifo, Mode: 0o600}},
	} {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, h := range hs {
			tw.WriteHeader(h)
		}
		tw.Close()
		f.Add(b.Bytes())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		t.Cleanup(func() { // read-only folders, when not root
			filepath.WalkDir(base, func(p string, d fs.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					os.Chmod(p, 0o755)
				}
				return nil
			})
		})
		dest, outside := filepath.Join(base, "dest"), filepath.Join(base, "outside")
		os.Mkdir(dest, 0o755)
		os.Mkdir(outside, 0o755)
		secret := filepath.Join(outside, "secret")
		if err := os.WriteFile(secret, []byte("host"), 0o600); err != nil {
			t.Fatal(err)
		}
		data = bytes.ReplaceAll(data, []byte(outsideMark), []byte(outside))
		if err := Unpack(bytes.NewReader(data), dest); err != nil && !strings.HasPrefix(err.Error(), "image: layer: ") {
			t.Fatalf("error %q lacks the prefix", err)
		}
		des, _ := os.ReadDir(outside)
		fi, err := os.Stat(secret)
		if err != nil || len(des) != 1 || fi.Sys().(*syscall.Stat_t).Nlink != 1 || fi.Mode().Perm() != 0o600 {
			t.Fatalf("the folder outside changed: %v %v", des, err)
		}
		if b, _ := os.ReadFile(secret); string(b) != "host" {
			t.Fatal("the host file was written")
		}
		if bes, _ := os.ReadDir(base); len(bes) != 2 {
			t.Fatalf("something was written beside dest: %v", bes)
		}
	})
}
