package builder

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/pyrsia/pyrsia-build/builder/internal/untar"
)

// maxArchiveSize bounds a downloaded or unpacked source archive.
const maxArchiveSize = 4 << 30

// maxArchiveEntries bounds the entries of a source archive (a tar.gz of
// a few kilobytes can hold millions of empty files), and
// maxZipDirectory the bytes of a zip's central directory that are read:
// archive/zip holds every entry of it in memory, about five times its
// size on disk, before any can be checked. Variables for the tests.
var (
	maxArchiveEntries       = 1 << 20
	maxZipDirectory   int64 = 128 << 20
)

// errZipDirectory is a zip whose central directory is over maxZipDirectory.
var errZipDirectory = errors.New("the zip's central directory is too large")

// cappedReaderAt reads from r, at most left bytes in all while capped.
type cappedReaderAt struct {
	r      io.ReaderAt
	left   int64
	capped bool
}

func (c *cappedReaderAt) ReadAt(p []byte, off int64) (int, error) {
	if c.capped {
		if int64(len(p)) > c.left {
			return 0, errZipDirectory
		}
		c.left -= int64(len(p))
	}
	return c.r.ReadAt(p, off)
}

// fetchSource puts the spec's source tree into dst (an empty folder) and
// returns what was resolved: "sha256:<hex>" of the archive, or
// "gitCommit:<commit>" for git.
// guard is non-nil when the spec came over a network (see
// [Spec.ValidateRemote]): a local archive is then opened only inside
// specDir, and every connection for an archive URL or git is checked by
// guard.
func fetchSource(ctx context.Context, s *Spec, specDir, dst string, guard *netGuard, repo mavenRepoOpts, progress io.Writer) (string, error) {
	switch {
	case s.Source.Maven != nil:
		return fetchMavenSource(ctx, s.Source.Maven, repo, dst, progress)
	case s.Source.Archive != nil:
		return fetchArchive(ctx, s.Source.Archive, specDir, dst, guard, progress)
	case s.Source.Git != nil:
		return fetchGit(ctx, s.Source.Git, specDir, dst, guard, progress)
	}
	return "", errors.New("builder: spec has no source")
}

func fetchArchive(ctx context.Context, a *ArchiveSource, specDir, dst string, guard *netGuard, progress io.Writer) (string, error) {
	remote := guard != nil
	var name string
	var r io.ReadCloser
	if a.Path != "" {
		f, shown, err := openSpecFile(specDir, a.Path, remote, "source.archive.path")
		if err != nil {
			return "", fmt.Errorf("source archive: %w", err)
		}
		name, r = shown, f
	} else {
		name = a.URL
		fmt.Fprintf(progress, "fetching %s\n", a.URL)
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.URL, nil)
		if err != nil {
			return "", fmt.Errorf("source archive: %w", err)
		}
		hc := http.DefaultClient
		if remote {
			hc = guard.httpClient()
			defer hc.CloseIdleConnections()
		}
		resp, err := hc.Do(req)
		if err != nil {
			if remote {
				err = withRemoteRefusal(err)
			}
			return "", fmt.Errorf("source archive %s: %w", a.URL, err)
		}
		if resp.StatusCode != http.StatusOK {
			resp.Body.Close()
			return "", fmt.Errorf("source archive %s: HTTP %s", a.URL, resp.Status)
		}
		r = resp.Body
	}
	defer r.Close()
	// Copy to a temporary file through SHA-256, and unpack only what was
	// checked.
	tmp, err := os.CreateTemp("", "pyrsia-source-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, maxArchiveSize+1))
	if err != nil {
		return "", fmt.Errorf("source archive %s: %w", name, err)
	}
	if n > maxArchiveSize {
		return "", fmt.Errorf("source archive %s is over %d bytes", name, int64(maxArchiveSize))
	}
	got := hex.EncodeToString(h.Sum(nil))
	if got != a.SHA256 {
		if remote && a.Path != "" {
			// Not the digest: that would tell a stranger the hash of
			// a file of the node's.
			return "", fmt.Errorf("source archive %s does not have the sha256 the spec pins (%s)", name, a.SHA256)
		}
		return "", fmt.Errorf("source archive %s has sha256 %s, the spec pins %s: the archive changed, or the spec is wrong", name, got, a.SHA256)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	if err := unpack(tmp, n, dst); err != nil {
		return "", fmt.Errorf("source archive %s: %w", name, err)
	}
	return "sha256:" + got, nil
}

// sourceTarOptions: a source tree holds files, folders and links only, and
// stays writable so it can be removed.
func sourceTarOptions() untar.Options {
	return untar.Options{MaxSize: maxArchiveSize, MaxEntries: maxArchiveEntries, SkipUnknown: true, DirMode: 0o700}
}

// unpack extracts a tar, tar.gz or zip archive (told apart by their first
// bytes) into dst, refusing names that would leave dst.
func unpack(f *os.File, size int64, dst string) error {
	root, err := os.OpenRoot(dst)
	if err != nil {
		return err
	}
	defer root.Close()
	br := bufio.NewReader(f)
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte("PK\x03\x04")):
		// zip.NewReader reads the whole central directory: what it
		// reads is bounded (its end record is at most 64 KiB in).
		cr := &cappedReaderAt{r: f, left: maxZipDirectory + 1<<17, capped: true}
		zr, err := zip.NewReader(cr, size)
		if errors.Is(err, errZipDirectory) {
			return fmt.Errorf("its central directory is over %d bytes (more entries than a source tree has)", maxZipDirectory)
		}
		if err != nil {
			return err
		}
		cr.capped = false
		if len(zr.File) > maxArchiveEntries {
			return fmt.Errorf("it has %d entries, over the limit of %d", len(zr.File), maxArchiveEntries)
		}
		var total uint64
		for _, zf := range zr.File {
			if total += zf.UncompressedSize64; total > maxArchiveSize {
				return fmt.Errorf("unpacks to over %d bytes", int64(maxArchiveSize))
			}
			if err := unpackZipFile(root, zf); err != nil {
				return err
			}
		}
		return nil
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		gz, err := gzip.NewReader(br)
		if err != nil {
			return err
		}
		defer gz.Close()
		return untar.ExtractRoot(gz, root, sourceTarOptions())
	default:
		return untar.ExtractRoot(br, root, sourceTarOptions())
	}
}

func unpackZipFile(root *os.Root, zf *zip.File) error {
	if err := unpackZipMember(root, zf); err != nil {
		return fmt.Errorf("member %q: %w", zf.Name, err)
	}
	return nil
}

func unpackZipMember(root *os.Root, zf *zip.File) error {
	name, err := untar.MemberPath(zf.Name)
	if err != nil {
		return err
	}
	if name == "." {
		return nil
	}
	if zf.FileInfo().IsDir() {
		return root.MkdirAll(name, 0o755)
	}
	if zf.UncompressedSize64 > maxArchiveSize {
		return fmt.Errorf("larger than %d bytes", int64(maxArchiveSize))
	}
	rc, err := zf.Open()
	if err != nil {
		return err
	}
	defer rc.Close()
	return writeRootFile(root, name, zf.Mode().Perm()|0o600, rc)
}

func writeRootFile(root *os.Root, name string, mode os.FileMode, r io.Reader) error {
	if err := root.MkdirAll(path.Dir(name), 0o755); err != nil {
		return err
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// fetchGit clones the repository and checks out the pinned commit. The
// .git folder is removed: the build sees the tree only.
//
// For a remote spec git runs as a stranger would on the node: with an
// environment of its own (no git configuration of the node's user, so
// none of its credential helpers, URL rewrites or proxies), with only the
// https and http transports whatever the URL says, and with every
// connection made by a proxy of this process that refuses addresses not
// on the public internet and not allowed by the operator ([gitProxy]). Its errors leave git's output out
// (it can quote what a server answered); [GitError].Output keeps it.
func fetchGit(ctx context.Context, g *GitSource, specDir, dst string, guard *netGuard, progress io.Writer) (string, error) {
	remote := guard != nil
	url := g.URL
	if !remote && !strings.Contains(url, "://") && !strings.HasPrefix(url, "/") && !strings.Contains(url, "@") {
		url = filepath.Join(specDir, url) // a local path, relative to the spec
	}
	env := append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1")
	var global []string
	var proxy *gitProxy
	if remote {
		home, err := os.MkdirTemp("", "pyrsia-git-home-*")
		if err != nil {
			return "", err
		}
		defer os.RemoveAll(home)
		if proxy, err = startGitProxy(guard); err != nil {
			return "", err
		}
		defer proxy.Close()
		env = remoteGitEnv(home)
		global = []string{"-c", "credential.helper=", "-c", "protocol.allow=never",
			"-c", "protocol.https.allow=always", "-c", "protocol.http.allow=always",
			"-c", "http.proxy=" + proxy.URL(), "-c", "http.followRedirects=initial"}
	}
	git := func(args ...string) ([]byte, error) {
		cmd := exec.CommandContext(ctx, "git", append(slices.Clone(global), args...)...)
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			if proxy != nil {
				if ra := proxy.Refused(); ra != nil {
					return nil, fmt.Errorf("git %s: %w", args[0], ra)
				}
			}
			return nil, &GitError{Command: args[0], Err: err, Output: tail(string(out), 10), Remote: remote}
		}
		return out, nil
	}
	fmt.Fprintf(progress, "cloning %s at %s\n", g.URL, g.Commit)
	if _, err := git("clone", "--quiet", "--no-checkout", url, dst); err != nil {
		return "", fmt.Errorf("source: %s: %w", g.URL, err)
	}
	if _, err := git("-C", dst, "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", g.Commit); err != nil {
		return "", fmt.Errorf("source: commit %s (is it in the repository's history?): %w", g.Commit, err)
	}
	out, err := git("-C", dst, "rev-parse", "HEAD")
	if err != nil {
		return "", fmt.Errorf("source: %w", err)
	}
	if head := strings.TrimSpace(string(out)); head != g.Commit {
		return "", fmt.Errorf("source: checked out %s, the spec pins %s", head, g.Commit)
	}
	if err := os.RemoveAll(filepath.Join(dst, ".git")); err != nil {
		return "", err
	}
	return "gitCommit:" + g.Commit, nil
}

// remoteGitEnv is git's whole environment for a spec from the network:
// nothing of the node's but PATH and the TLS trust settings, a home of its
// own, no configuration files, no prompts.
func remoteGitEnv(home string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "XDG_CONFIG_HOME=" + home, "LC_ALL=C",
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=" + os.DevNull, "GIT_TERMINAL_PROMPT=0",
		"GIT_ASKPASS=/bin/false", "SSH_ASKPASS=/bin/false"}
	for _, k := range []string{"GIT_SSL_CAINFO", "GIT_SSL_CAPATH", "SSL_CERT_FILE", "SSL_CERT_DIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// GitError is a git command that failed. For a local build its message
// ends with the tail of git's output. For a spec from the network
// (Remote), whose requester reads the message, the output is left out of
// it (it can quote what a server answered) and kept in Output for the
// node's own log.
type GitError struct {
	Command string // the git command: "clone", "checkout", ...
	Err     error  // how git ended
	Output  string // the last lines of git's output
	Remote  bool
}

func (e *GitError) Error() string {
	if e.Remote {
		return fmt.Sprintf("git %s: %v (git's messages are not shown for a spec from the network)", e.Command, e.Err)
	}
	return fmt.Sprintf("git %s: %v\n%s", e.Command, e.Err, e.Output)
}

func (e *GitError) Unwrap() error { return e.Err }

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
