package builder

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func tarBytes(t testing.TB, hdrs ...*tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(h.Name))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(h.Name))
		}
	}
	tw.Close()
	return buf.Bytes()
}

func zipBytes(t testing.TB, names ...string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, n := range names {
		w, err := zw.Create(n)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(n))
	}
	zw.Close()
	return buf.Bytes()
}

// unpackBytes unpacks data as fetchArchive does.
func unpackBytes(t testing.TB, data []byte, dst string) error {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "archive")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	f.Seek(0, 0)
	return unpack(f, int64(len(data)), dst)
}

func TestUnpackSourceNamesTheMember(t *testing.T) {
	outside := t.TempDir()
	tests := []struct {
		name string
		data []byte
		msg  string
	}{
		{"symlink escape", tarBytes(t,
			&tar.Header{Name: "d", Typeflag: tar.TypeSymlink, Linkname: outside},
			&tar.Header{Name: "d/x", Typeflag: tar.TypeReg, Mode: 0o644}),
			`member "d/x": its path leads outside the destination folder through a symlink`},
		{"hard link escape, gzip", gzipBytes(t, tarBytes(t,
			&tar.Header{Name: "lnk", Typeflag: tar.TypeSymlink, Linkname: "/etc"},
			&tar.Header{Name: "x", Typeflag: tar.TypeLink, Linkname: "lnk/passwd"})),
			`member "x": its path leads outside`},
		{"dot dot", tarBytes(t, &tar.Header{Name: "../x", Typeflag: tar.TypeReg, Mode: 0o644}),
			`member "../x": the name leaves the destination folder`},
		{"zip dot dot", zipBytes(t, "a", "../../x"), `member "../../x": the name leaves the destination folder`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := unpackBytes(t, tt.data, t.TempDir())
			if err == nil || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %v, want %q", err, tt.msg)
			}
			if des, _ := os.ReadDir(outside); len(des) != 0 {
				t.Fatalf("wrote outside: %v", des)
			}
		})
	}
}

func TestUnpackSourceTree(t *testing.T) {
	for name, data := range map[string][]byte{
		"tar": tarBytes(t,
			&tar.Header{Name: "./", Typeflag: tar.TypeDir, Mode: 0o755},
			&tar.Header{Name: "src/", Typeflag: tar.TypeDir, Mode: 0o500},
			&tar.Header{Name: "src/main.c", Typeflag: tar.TypeReg, Mode: 0o4755},
			&tar.Header{Name: "src/link.c", Typeflag: tar.TypeLink, Linkname: "src/main.c"},
			&tar.Header{Name: "sym", Typeflag: tar.TypeSymlink, Linkname: "src/main.c"},
			&tar.Header{Name: "fifo", Typeflag: tar.TypeFifo},
			&tar.Header{Name: "null", Typeflag: tar.TypeChar}),
	} {
		t.Run(name, func(t *testing.T) {
			dst := t.TempDir()
			if err := unpackBytes(t, data, dst); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(filepath.Join(dst, "src/main.c"))
			if err != nil || fi.Mode() != 0o755 {
				t.Fatalf("src/main.c: %v, %v; want mode 0755 (no setuid)", fi, err)
			}
			di, err := os.Stat(filepath.Join(dst, "src"))
			if err != nil || di.Mode().Perm() != 0o700 {
				t.Fatalf("src: %v, %v; want mode 0700 (owner-writable)", di, err)
			}
			li, _ := os.Stat(filepath.Join(dst, "src/link.c"))
			if !os.SameFile(fi, li) {
				t.Error("src/link.c is not a hard link")
			}
			for _, n := range []string{"fifo", "null"} {
				if _, err := os.Lstat(filepath.Join(dst, n)); err == nil {
					t.Errorf("%s was made in a source tree", n)
				}
			}
		})
	}
}

// FuzzUnpackArchive: whatever a source archive (tar, tar.gz or zip) holds,
// nothing outside the destination is written or linked in.
func FuzzUnpackArchive(f *testing.F) {
	const mark = "/tmp/pyrsia-fuzz-outside"
	hostile := tarBytes(f,
		&tar.Header{Name: "lnk", Typeflag: tar.TypeSymlink, Linkname: mark},
		&tar.Header{Name: "x", Typeflag: tar.TypeLink, Linkname: "lnk/secret"},
		&tar.Header{Name: "lnk/y", Typeflag: tar.TypeReg})
	f.Add(hostile)
	f.Add(gzipBytes(f, hostile))
	f.Add(zipBytes(f, "a/b", "../c", "a/../../d"))
	f.Add(tarBytes(f, &tar.Header{Name: "d/", Typeflag: tar.TypeDir}, &tar.Header{Name: "d/f", Typeflag: tar.TypeReg}))
	f.Fuzz(func(t *testing.T, data []byte) {
		base := t.TempDir()
		dst, outside := filepath.Join(base, "dst"), filepath.Join(base, "outside")
		os.Mkdir(dst, 0o755)
		os.Mkdir(outside, 0o755)
		secret := filepath.Join(outside, "secret")
		if err := os.WriteFile(secret, []byte("host"), 0o600); err != nil {
			t.Fatal(err)
		}
		data = bytes.ReplaceAll(data, []byte(mark), []byte(outside))
		unpackBytes(t, data, dst)
		des, _ := os.ReadDir(outside)
		fi, err := os.Stat(secret)
		if err != nil || len(des) != 1 || fi.Sys().(*syscall.Stat_t).Nlink != 1 {
			t.Fatalf("the folder outside changed: %v %v", des, err)
		}
		if b, _ := os.ReadFile(secret); string(b) != "host" {
			t.Fatal("the host file was written")
		}
		if bes, _ := os.ReadDir(base); len(bes) != 2 {
			t.Fatalf("something was written beside dst: %v", bes)
		}
	})
}

// TestFetchGitRemoteTransports: for a remote spec git itself refuses the
// file transport, even for a spec that skipped ValidateRemote, while a
// local build may clone a file URL.
func TestFetchGitRemoteTransports(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	repo := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", repo}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull,
			"GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@example.com", "GIT_COMMITTER_NAME=a", "GIT_COMMITTER_EMAIL=a@example.com")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run("init", "-q")
	if err := os.WriteFile(filepath.Join(repo, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	run("add", "f")
	run("commit", "-qm", "x")
	g := &GitSource{URL: "file://" + repo, Commit: run("rev-parse", "HEAD")}
	if _, err := fetchGit(t.Context(), g, "", filepath.Join(t.TempDir(), "local"), nil, io.Discard); err != nil {
		t.Fatalf("local build: %v", err)
	}
	_, err := fetchGit(t.Context(), g, "", filepath.Join(t.TempDir(), "remote"), &netGuard{}, io.Discard)
	var ge *GitError
	if !errors.As(err, &ge) || !strings.Contains(ge.Output, "transport 'file' not allowed") {
		t.Fatalf("remote build: got %v, want git to refuse the file transport", err)
	}
	// git's output is the node's, not the requester's.
	if strings.Contains(err.Error(), "transport 'file'") || !strings.Contains(err.Error(), "not shown for a spec from the network") {
		t.Errorf("remote build: the error %q carries git's output", err)
	}
}

// TestUnpackSourceBounded: a source archive with more entries than a
// source tree has, or a zip whose central directory is larger than the
// bound (archive/zip keeps all of it in memory before anything is
// checked), is refused before it fills the disk or the memory.
func TestUnpackSourceBounded(t *testing.T) {
	oldEntries, oldDir := maxArchiveEntries, maxZipDirectory
	t.Cleanup(func() { maxArchiveEntries, maxZipDirectory = oldEntries, oldDir })
	maxArchiveEntries = 10
	var names []string
	var hdrs []*tar.Header
	for i := range 11 {
		names = append(names, fmt.Sprintf("f%02d", i))
		hdrs = append(hdrs, &tar.Header{Name: names[i], Typeflag: tar.TypeReg, Mode: 0o644})
	}
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"zip", zipBytes(t, names...), "11 entries, over the limit of 10"},
		{"tar", tarBytes(t, hdrs...), "over 10 entries"},
		{"tar.gz", gzipBytes(t, tarBytes(t, hdrs...)), "over 10 entries"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := unpackBytes(t, tc.data, t.TempDir()); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
	if err := unpackBytes(t, zipBytes(t, names[:10]...), t.TempDir()); err != nil {
		t.Fatalf("ten entries: %v", err)
	}

	maxArchiveEntries = oldEntries
	maxZipDirectory = 1 << 10
	// Its end record is found within the last 64 KiB, so the bound has
	// slack of 128 KiB: 600 entries of 250-byte names are more.
	var many []string
	for i := range 600 {
		many = append(many, fmt.Sprintf("dir/%04d-%s", i, strings.Repeat("x", 240)))
	}
	err := unpackBytes(t, zipBytes(t, many...), t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "central directory is over 1024 bytes") {
		t.Fatalf("got %v, want the zip's central directory refused", err)
	}
}
