package builder

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// keptRepo syncs a lock's repository (lockFSLock) into a folder as BuildKit
// would keep it and returns the folder and the check's list.
func keptRepo(t *testing.T) (dir, sums string, files map[string][]byte) {
	t.Helper()
	l, files := lockFSLock(t)
	_, url := newRepo(t, files)
	fsys, _, err := newLockFS(context.Background(), l, newRepoClient(url), t.TempDir(), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	dir = t.TempDir()
	if err := syncFS(fsys, dir, fsys); err != nil {
		t.Fatal(err)
	}
	sums = filepath.Join(t.TempDir(), "sha256")
	if err := os.WriteFile(sums, fsys.sums(), 0o444); err != nil {
		t.Fatal(err)
	}
	return dir, sums, files
}

// runRepoCheck runs mavenRepoCheck with /bin/sh on the host (the image's
// shell, awk, find and xargs are Debian's, as here) and returns its
// stderr's findings and whether it failed.
func runRepoCheck(t *testing.T, dir, sums, m2 string, env ...string) ([]string, bool) {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", "set -eu\n"+mavenRepoCheck+"echo checked\n")
	cmd.Env = append([]string{"PYRSIA_M2_KEPT=" + dir, "PYRSIA_M2=" + m2, "PYRSIA_M2_SUMS=" + sums, "PATH=" + os.Getenv("PATH"), "TMPDIR=" + t.TempDir()}, env...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	failed := err != nil
	if failed == (string(out) == "checked\n") {
		t.Fatalf("the check exited with %v and wrote %q", err, out)
	}
	var found []string
	for _, l := range strings.Split(stderr.String(), "\n") {
		if p, ok := strings.CutPrefix(l, "pyrsia-build: locked repository: "); ok && l != repoChecked {
			found = append(found, p)
		}
	}
	if failed && !strings.Contains(stderr.String(), "is not the lock's files") {
		t.Errorf("a failed check says:\n%s", stderr.String())
	}
	return found, failed
}

// TestRepoCheckSums: the list names every file the sync writes, the
// metadata under its local name, with the lock's sha256, sorted by path
// the way sort(1) sorts in the C locale.
func TestRepoCheckSums(t *testing.T) {
	dir, sums, files := keptRepo(t)
	data, _ := os.ReadFile(sums)
	var names []string
	for _, l := range strings.Split(strings.TrimSuffix(string(data), "\n"), "\n") {
		sha, p, ok := strings.Cut(l, "  ")
		if !ok || len(sha) != 64 {
			t.Fatalf("line %q is not sha256sum's", l)
		}
		if b, ok := files[p]; ok && sha != sha256hex(b) {
			t.Errorf("%s: sha256 %s, want %s", p, sha, sha256hex(b))
		}
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("%s is listed but not synced: %v", p, err)
		}
		names = append(names, p)
	}
	want := []string{"org/x/lib-ext/2.0/lib-ext-2.0.pom", "org/x/lib/1.0/lib-1.0.jar", "org/x/lib/1.0/lib-1.0.pom", "org/x/lib/" + localMetadataFile}
	if !slices.Equal(names, want) {
		t.Fatalf("listed %q, want %q", names, want)
	}
	// sha256sum itself accepts the list.
	cmd := exec.Command("sha256sum", "--quiet", "-c", sums)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sha256sum -c: %v\n%s", err, out)
	}
}

func sha256hex(b []byte) string { return sha(b) }

// TestRepoCheck: the check in the container passes the lock's files and
// names each file that is missing, holds other bytes, is not a regular
// file, or is not in the lock; with OpenSSL and with sha256sum.
func TestRepoCheck(t *testing.T) {
	noOpenSSL := t.TempDir()
	for _, tool := range []string{"sh", "find", "awk", "xargs", "sha256sum", "sort", "sed", "cat", "mkdir", "cp", "tr"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skip(tool + " is not on PATH")
		}
		os.Symlink(p, filepath.Join(noOpenSSL, tool))
	}
	hashers := map[string][]string{"sha256sum": {"PATH=" + noOpenSSL}}
	if _, err := exec.LookPath("openssl"); err == nil {
		hashers["openssl"] = nil
	}
	jar := "org/x/lib/1.0/lib-1.0.jar"
	for name, env := range hashers {
		t.Run(name, func(t *testing.T) {
			dir, sums, files := keptRepo(t)
			m2 := filepath.Join(t.TempDir(), "m2")
			if found, failed := runRepoCheck(t, dir, sums, m2, env...); failed || len(found) > 0 {
				t.Fatalf("the intact copy fails the check: %q", found)
			}
			// Maven's repository: a copy of the copy's files (regular
			// files, not links, with the same times).
			for p, b := range files {
				if got, err := os.ReadFile(filepath.Join(m2, p)); err != nil || !bytes.Equal(got, b) {
					t.Errorf("%s in Maven's repository: %q, %v", p, got, err)
				}
				fi, err := os.Lstat(filepath.Join(m2, p))
				if err != nil || !fi.Mode().IsRegular() {
					t.Errorf("%s in Maven's repository is not a regular file: %v", p, err)
					continue
				}
				if src, err := os.Stat(filepath.Join(dir, p)); err != nil || !src.ModTime().Equal(fi.ModTime()) {
					t.Errorf("%s in Maven's repository has the time %v, not the kept copy's", p, fi.ModTime())
				}
			}
			// Damage the copy in each way at once.
			if err := os.WriteFile(filepath.Join(dir, jar), []byte("JAR BYTES"), 0o644); err != nil {
				t.Fatal(err)
			}
			os.Remove(filepath.Join(dir, "org/x/lib/1.0/lib-1.0.pom"))
			os.Remove(filepath.Join(dir, "org/x/lib-ext/2.0/lib-ext-2.0.pom"))
			os.Symlink("/etc/hostname", filepath.Join(dir, "org/x/lib-ext/2.0/lib-ext-2.0.pom"))
			os.MkdirAll(filepath.Join(dir, "org/evil/1"), 0o755)
			os.WriteFile(filepath.Join(dir, "org/evil/1/evil-1.jar"), []byte("x"), 0o644)
			found, failed := runRepoCheck(t, dir, sums, filepath.Join(t.TempDir(), "m2"), env...)
			want := []string{
				"org/evil is not in the lock",
				"org/evil/1 is not in the lock",
				"org/evil/1/evil-1.jar is not in the lock",
				"org/x/lib-ext/2.0/lib-ext-2.0.pom is not a regular file",
				jar + " holds sha256:" + sha([]byte("JAR BYTES")) + ", not the sha256:" + sha([]byte("jar bytes")) + " of the lock",
				"org/x/lib/1.0/lib-1.0.pom is missing",
			}
			if !failed || !slices.Equal(found, want) {
				t.Fatalf("the damaged copy: failed %v, findings\n%s\nwant\n%s", failed, strings.Join(found, "\n"), strings.Join(want, "\n"))
			}
			// The host names the same files.
			var log strings.Builder
			for _, f := range found {
				log.WriteString("#12 0.815 pyrsia-build: locked repository: " + f + "\n")
			}
			var e *RepoCopyError
			if err := error(repoCopyFailed(log.String())); !errors.As(err, &e) || !slices.Equal(e.Problems, want) || !strings.Contains(err.Error(), jar) {
				t.Fatalf("repoCopyFailed: %v", err)
			}
		})
	}
	if repoCopyFailed("#12 0.5 [INFO] BUILD FAILURE\n") != nil {
		t.Error("a log without findings gives a RepoCopyError")
	}
	// BuildKit's error for the failed run quotes the script: no finding.
	if e := repoCopyFailed(`process "/bin/sh -c ` + strings.ReplaceAll(mavenScript, "\n", `\n`) + `" did not complete successfully`); e != nil {
		t.Errorf("the script's own text gives findings %q", e.Problems)
	}
}

// TestKeepRepo: a lock's key is the same from build to build until it is
// dropped; then a new one is made. A token file not written by keepRepo
// is replaced.
func TestKeepRepo(t *testing.T) {
	cache := t.TempDir()
	lockSHA := strings.Repeat("ab", 32)
	k1, err := keepRepo(cache, lockSHA)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := keepRepo(cache, lockSHA)
	if err != nil || k2.key() != k1.key() {
		t.Fatalf("second key %q (%v), want %q", k2.key(), err, k1.key())
	}
	if !strings.HasPrefix(k1.key(), "mavenrepo-"+lockSHA+"-") || len(k1.token) != 32 {
		t.Fatalf("key %q", k1.key())
	}
	other, _ := keepRepo(cache, strings.Repeat("cd", 32))
	if other.token == k1.token {
		t.Fatal("two locks share a token")
	}
	k1.drop()
	k3, err := keepRepo(cache, lockSHA)
	if err != nil || k3.key() == k1.key() {
		t.Fatalf("after drop: key %q (%v), want a new one", k3.key(), err)
	}
	// A stale key's drop does not drop the new one.
	k1.drop()
	if k4, _ := keepRepo(cache, lockSHA); k4.key() != k3.key() {
		t.Fatalf("a stale drop changed the key: %q, want %q", k4.key(), k3.key())
	}
	os.WriteFile(k3.file, []byte("../../etc\n"), 0o644)
	k5, err := keepRepo(cache, lockSHA)
	if err != nil || k5.key() == k3.key() || !repoTokenRE.MatchString(k5.token) {
		t.Fatalf("a bad token file gave %q (%v)", k5.key(), err)
	}
	entries, _ := os.ReadDir(filepath.Join(cache, "keys"))
	if len(entries) != 2 {
		t.Fatalf("keys/ holds %d files, want 2 (no temporary file left)", len(entries))
	}
}

// TestRepoCheckOddNames: a name with a newline in it is named as it is
// (the newline as "?"), not read as names of its own, and a folder the
// lock does not have is found too (an empty folder, or one named like a
// file). Fails before: the check named "zz", a file that is not there,
// and passed the folders, which Maven's repository then held.
func TestRepoCheckOddNames(t *testing.T) {
	dir, sums, _ := keptRepo(t)
	if err := os.WriteFile(filepath.Join(dir, "org/x/lib/1.0", "lib-1.0.pom\nf zz"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "org/x/lib/1.0/extra-1.0.jar"), 0o755)
	os.MkdirAll(filepath.Join(dir, "org/y/empty"), 0o755)
	found, failed := runRepoCheck(t, dir, sums, filepath.Join(t.TempDir(), "m2"))
	want := []string{
		"org/x/lib/1.0/extra-1.0.jar is not in the lock",
		"org/x/lib/1.0/lib-1.0.pom?f zz is not in the lock",
		"org/y is not in the lock",
		"org/y/empty is not in the lock",
	}
	if !failed || !slices.Equal(found, want) {
		t.Fatalf("odd names: failed %v, findings\n%s\nwant\n%s", failed, strings.Join(found, "\n"), strings.Join(want, "\n"))
	}
	var log strings.Builder
	for _, f := range found {
		log.WriteString("#12 0.815 pyrsia-build: locked repository: " + f + "\n")
	}
	if e := repoCopyFailed(log.String()); e == nil || !slices.Equal(e.Problems, want) {
		t.Fatalf("repoCopyFailed: %v", e)
	}
}

// TestRepoCheckFailsClosed: the check's verdict is the findings awk wrote
// (a failed awk ends the script, set -e), not what a pipeline after it
// printed. Fails before: with a sort(1) that fails, a damaged copy passed.
func TestRepoCheckFailsClosed(t *testing.T) {
	bin := t.TempDir()
	for _, tool := range []string{"sh", "find", "awk", "xargs", "sha256sum", "sed", "cat", "mkdir", "cp", "tr"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skip(tool + " is not on PATH")
		}
		os.Symlink(p, filepath.Join(bin, tool))
	}
	if err := os.WriteFile(filepath.Join(bin, "sort"), []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	dir, sums, _ := keptRepo(t)
	jar := "org/x/lib/1.0/lib-1.0.jar"
	if err := os.WriteFile(filepath.Join(dir, jar), []byte("JAR BYTES"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, failed := runRepoCheck(t, dir, sums, filepath.Join(t.TempDir(), "m2"), "PATH="+bin); !failed {
		t.Fatal("a damaged copy passed the check when sort(1) failed")
	}
}

// TestRepoCheckSpoofed: once the check passed, the build's own output
// (the project's code, a test printing the check's lines) is not taken
// for the check's findings. Fails before: it gave a RepoCopyError (the
// copy blamed for the project's failure, and its token dropped).
func TestRepoCheckSpoofed(t *testing.T) {
	dir, sums, _ := keptRepo(t)
	cmd := exec.Command("/bin/sh", "-c", "set -eu\n"+mavenRepoCheck)
	cmd.Env = []string{"PYRSIA_M2_KEPT=" + dir, "PYRSIA_M2=" + filepath.Join(t.TempDir(), "m2"), "PYRSIA_M2_SUMS=" + sums, "PATH=" + os.Getenv("PATH"), "TMPDIR=" + t.TempDir()}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the intact copy: %v\n%s", err, out)
	}
	log := "#12 0.5 " + string(out) +
		"#12 9.1 pyrsia-build: locked repository: org/x/lib/1.0/lib-1.0.jar is missing\n" +
		"#12 9.1 pyrsia-build: the copy of the lock's repository BuildKit kept is not the lock's files\n"
	if e := repoCopyFailed(log); e != nil {
		t.Fatalf("the build's own output after the check passed gives findings %q", e.Problems)
	}
	if e := repoCopyFailed("#12 0.5 pyrsia-build: locked repository: org/x/lib/1.0/lib-1.0.jar is missing\n"); e == nil {
		t.Fatal("a finding of the check itself is not found")
	}
}
