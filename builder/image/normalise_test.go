package image

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNormaliseRootfs(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"etc/shadow":                       "root:*:20781:0:99999:7:::\nnobody:*:19000:0:99999:7:::\nx:!::0:99999:7:::\n",
		"etc/shadow-":                      "root:*:20780:0:99999:7:::\n",
		"etc/hostname":                     "buildhost\n",
		"etc/resolv.conf":                  "nameserver 10.0.0.1\n",
		"etc/apt/sources.list":             "deb http://mirror.example/debian bookworm main\n",
		"etc/machine-id":                   "0123456789abcdef\n",
		"etc/ssl/certs/java/cacerts":       "keystore",
		"var/cache/ldconfig/aux-cache":     "aux",
		"var/cache/apt/pkgcache.bin":       "cache",
		"var/lib/apt/lists/x_Packages":     "lists",
		"var/log/dpkg.log":                 "log",
		"var/log/apt/history.log":          "log",
		"var/cache/debconf/config.dat":     "keep",
		"var/cache/debconf/config.dat-old": "old",
		"var/lib/dpkg/status":              "keep",
		"var/lib/dpkg/status-old":          "old",
		"usr/bin/keep":                     "keep",
	}
	for name, data := range files {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	os.MkdirAll(filepath.Join(root, "dev/pts"), 0o755)
	epoch := time.Date(2023, 6, 10, 0, 0, 0, 0, time.UTC)
	did, err := NormaliseRootfs(root, epoch)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("did:\n%s", strings.Join(did, "\n"))
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(root, p))
		if err != nil {
			return "<" + err.Error() + ">"
		}
		return string(b)
	}
	gone := func(p string) bool { _, err := os.Lstat(filepath.Join(root, p)); return os.IsNotExist(err) }
	if got := read("etc/shadow"); got != "root:*:19518:0:99999:7:::\nnobody:*:19518:0:99999:7:::\nx:!::0:99999:7:::\n" {
		t.Errorf("shadow: %q", got)
	}
	if got := read("etc/shadow-"); got != "root:*:19518:0:99999:7:::\n" {
		t.Errorf("shadow-: %q", got)
	}
	if fi, _ := os.Stat(filepath.Join(root, "etc/shadow")); fi.Mode().Perm() != 0o640 {
		t.Errorf("shadow mode %v", fi.Mode())
	}
	for p, want := range map[string]string{
		"etc/hostname": "localhost\n", "etc/resolv.conf": "", "etc/machine-id": "",
		"var/cache/debconf/config.dat": "keep", "var/lib/dpkg/status": "keep", "usr/bin/keep": "keep",
	} {
		if got := read(p); got != want {
			t.Errorf("%s: %q, want %q", p, got, want)
		}
	}
	if strings.Contains(read("etc/apt/sources.list"), "mirror.example") {
		t.Errorf("sources.list still names the mirror")
	}
	for _, p := range []string{
		"etc/ssl/certs/java/cacerts", "var/cache/ldconfig/aux-cache", "var/cache/apt/pkgcache.bin",
		"var/lib/apt/lists/x_Packages", "var/log/dpkg.log", "var/log/apt", "var/cache/debconf/config.dat-old",
		"var/lib/dpkg/status-old", "dev/pts",
	} {
		if !gone(p) {
			t.Errorf("%s is still there", p)
		}
	}
	for _, p := range []string{"var/log", "var/cache/apt", "var/lib/apt/lists", "dev"} {
		if gone(p) {
			t.Errorf("folder %s is gone", p)
		}
	}
	// Twice is the same as once.
	again, err := NormaliseRootfs(root, epoch)
	if err != nil || len(again) != 0 {
		t.Fatalf("second run did %q, %v", again, err)
	}
}

func TestChangelogDate(t *testing.T) {
	doc := t.TempDir()
	write := func(name, text string) {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		zw.Write([]byte(text))
		zw.Close()
		if err := os.WriteFile(filepath.Join(doc, name), b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("changelog.Debian.gz", `busybox (1:1.35.0-4+deb12u1) bookworm; urgency=medium

  * Fix.

 -- Someone <someone@example.org>  Sun, 27 Apr 2025 10:23:00 +0200

busybox (1:1.35.0-4) unstable; urgency=medium

 -- Someone <someone@example.org>  Mon, 02 Jan 2023 10:00:00 +0000
`)
	got, err := changelogDate(doc, "amd64")
	if err != nil || !got.Equal(time.Date(2025, 4, 27, 8, 23, 0, 0, time.UTC)) {
		t.Fatalf("changelogDate = %v, %v", got, err)
	}
	write("changelog.Debian.amd64.gz", `busybox (1:1.35.0-4+deb12u1+b1) bookworm; urgency=low, binary-only=yes

  * Binary-only non-maintainer upload for amd64.

 -- Builder <buildd@example.org>  Thu, 07 May 2026 20:33:45 +0000
`)
	got, err = changelogDate(doc, "amd64")
	if err != nil || !got.Equal(time.Date(2026, 5, 7, 20, 33, 45, 0, time.UTC)) {
		t.Fatalf("binNMU changelogDate = %v, %v", got, err)
	}
	if _, err := changelogDate(t.TempDir(), "amd64"); err == nil {
		t.Fatal("no error without a changelog")
	}
}
