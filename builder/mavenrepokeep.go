package builder

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// A locked build's repository is kept by BuildKit between builds of the
// same lock: it is synced under a session key made of the lock's digest
// and a token kept on the host (see [repoKeep]), so BuildKit's
// incremental file sync starts from the copy an earlier build of that
// lock left, and an unchanged lock transfers no file. The sync compares
// names, sizes and times only, and [lockFS] gives every file the time 0
// and the size of its cache entry, so a copy the sync skips is never read
// on the host: the copy is checked in the container instead, before Maven
// starts (mavenRepoCheck): every file of the lock must be there, a
// regular file whose sha256 is the lock's, and nothing else may be. A
// check that fails names the files and drops the token, so the next build
// syncs into a new copy.

// mavenRepoCheck is the shell code that checks the kept copy of the
// repository, mounted read-only at $PYRSIA_M2_KEPT, against
// $PYRSIA_M2_SUMS ("<sha256 hex>  <path>" lines, as sha256sum writes them;
// no other file or folder may be there, and a name with a newline is named
// with "?" for it, never read as two names)
// before Maven runs, and then makes Maven's local repository $PYRSIA_M2 a
// copy of it (cp -a: the same bytes, modes and times as the repository a
// build without a kept copy mounts; not symbolic links, which a plugin
// that packs dependency jars, such as an assembly, could store as links
// and so make a kept build's output differ from a fresh one's). It hashes with OpenSSL (which uses
// the CPU's SHA instructions) when the image has it, else with sha256sum.
// Each problem is a line "pyrsia-build: locked repository: PATH WHAT" on
// stderr, and the script exits 1.
//
// The copy is mounted read-only because BuildKit keeps a local source's
// folder for the next sync only while no snapshot is made on top of it:
// a writable mount would make one (and end the kept folder), so Maven
// writes into a folder of links instead, on a tmpfs dropped with the run.
// A write that replaces a locked file (Maven writes its files through a
// temporary file and a rename) replaces the link, not the copy.
const mavenRepoCheck = `if [ -n "${PYRSIA_M2_SUMS:-}" ]; then
  hash=sha256sum
  if command -v openssl >/dev/null 2>&1; then hash="openssl dgst -sha256 -r"; fi
  chk=${TMPDIR:-/tmp}/pyrsia-m2-check chk_marker="repository: "
  mkdir -p "$chk"
  (cd "$PYRSIA_M2_KEPT" && find . -mindepth 1 -printf '%y %P\0') | tr '\n\0' '?\n' > "$chk/found" || true
  awk 'FILENAME == ARGV[1] { want[substr($0, 67)] = 1; next }
    $1 == "f" && (substr($0, 3) in want) { print substr($0, 3) }' "$PYRSIA_M2_SUMS" "$chk/found" > "$chk/hash"
  (cd "$PYRSIA_M2_KEPT" && xargs -r -d '\n' $hash < "$chk/hash") > "$chk/got" || true
  awk 'FILENAME == ARGV[1] {
      p = substr($0, 67); want[p] = substr($0, 1, 64)
      while (sub("/[^/]*$", "", p)) wantdir[p] = 1
      next
    }
    FILENAME == ARGV[2] { type[substr($0, 3)] = substr($0, 1, 1); next }
    { got[substr($0, 67)] = substr($0, 1, 64) }
    END {
      for (p in want) {
        if (!(p in type)) print p " is missing"
        else if (type[p] != "f") print p " is not a regular file"
        else if (!(p in got)) print p " could not be read"
        else if (got[p] != want[p]) print p " holds sha256:" got[p] ", not the sha256:" want[p] " of the lock"
      }
      for (p in type) if (!(p in want) && !(type[p] == "d" && p in wantdir)) print p " is not in the lock"
    }' "$PYRSIA_M2_SUMS" "$chk/found" "$chk/got" > "$chk/bad"
  if [ -s "$chk/bad" ]; then
    LC_ALL=C sort "$chk/bad" | sed "s/^/pyrsia-build: locked $chk_marker/" >&2
    echo "pyrsia-build: the copy of the lock's repository BuildKit kept is not the lock's files" >&2
    exit 1
  fi
  echo "pyrsia-build: locked ${chk_marker}all files checked" >&2
  mkdir -p "$PYRSIA_M2"
  cp -a "$PYRSIA_M2_KEPT/." "$PYRSIA_M2/"
fi
`

// sums lists every file of the repository with the lock's sha256, as
// sha256sum writes them, sorted by path: what mavenRepoCheck checks.
func (fsys *lockFS) sums() []byte {
	var lines []string
	var walk func(dir string, n *lockNode)
	walk = func(dir string, n *lockNode) {
		for _, c := range n.children {
			p := c.name
			if dir != "" {
				p = dir + "/" + c.name
			}
			if c.dir {
				walk(p, c)
			} else {
				lines = append(lines, c.sha256+"  "+p+"\n")
			}
		}
	}
	walk("", fsys.root)
	sort.Slice(lines, func(i, j int) bool { return lines[i][66:] < lines[j][66:] })
	return []byte(strings.Join(lines, ""))
}

// repoKeep is the session key a lock's repository is kept under in
// BuildKit: "mavenrepo-<lock sha256>-<token>". The token is a random
// value kept in the cache folder (keys/<lock sha256>), so a copy that
// failed its check is never synced into again: the token is dropped and
// the next build makes a new one.
type repoKeep struct {
	file, token string
}

var repoTokenRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// keepRepo returns the key of the lock lockSHA's repository, making its
// token in cache when there is none.
func keepRepo(cache, lockSHA string) (repoKeep, error) {
	dir := filepath.Join(cache, "keys")
	k := repoKeep{file: filepath.Join(dir, lockSHA)}
	for range 3 {
		data, err := os.ReadFile(k.file)
		if err == nil {
			if t := string(bytes.TrimSpace(data)); repoTokenRE.MatchString(t) {
				k.token = t
				return k, nil
			}
			// Not written by keepRepo: replace it.
			if err := os.Remove(k.file); err != nil && !errors.Is(err, os.ErrNotExist) {
				return k, fmt.Errorf("maven cache: %w", err)
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			return k, fmt.Errorf("maven cache: %w", err)
		}
		var b [16]byte
		if _, err := rand.Read(b[:]); err != nil {
			return k, err
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return k, fmt.Errorf("maven cache: %w", err)
		}
		tmp, err := os.CreateTemp(dir, ".token-*")
		if err != nil {
			return k, fmt.Errorf("maven cache: %w", err)
		}
		_, err = tmp.WriteString(hex.EncodeToString(b[:]) + "\n")
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			// A link fails when the key exists: a build of the same lock
			// made it first; read it again.
			err = os.Link(tmp.Name(), k.file)
		}
		os.Remove(tmp.Name())
		if err == nil {
			k.token = hex.EncodeToString(b[:])
			return k, nil
		}
		if !errors.Is(err, os.ErrExist) {
			return k, fmt.Errorf("maven cache: %w", err)
		}
	}
	return k, fmt.Errorf("maven cache: %s keeps changing", k.file)
}

// key is the local source's SharedKeyHint.
func (k repoKeep) key() string {
	return "mavenrepo-" + filepath.Base(k.file) + "-" + k.token
}

// drop forgets the token (if it is still this key's), so that the next
// build syncs into a new copy.
func (k repoKeep) drop() {
	if data, err := os.ReadFile(k.file); err == nil && string(bytes.TrimSpace(data)) == k.token {
		os.Remove(k.file)
	}
}

// RepoCopyError is BuildKit's copy of a lock's repository, kept between
// builds of that lock, found not to hold the lock's files before Maven
// ran: a file missing, with other bytes, or one the lock does not list.
// The copy is not used again: building again sends the files anew.
type RepoCopyError struct {
	Problems []string // "PATH WHAT", one per file, sorted
}

func (e *RepoCopyError) Error() string {
	p := e.Problems
	more := ""
	if len(p) > 5 {
		more = fmt.Sprintf(" (and %d more)", len(p)-5)
		p = p[:5]
	}
	return fmt.Sprintf("maven lock: the copy of the lock's repository BuildKit kept from an earlier build is not the lock's files: %s%s; it will not be used again: build again to send the files anew",
		strings.Join(p, "; "), more)
}

// repoCheckRE is a finding of mavenRepoCheck. (The script spells the
// marker in two parts: BuildKit's error for the failed run quotes it.)
var repoCheckRE = regexp.MustCompile(`pyrsia-build: locked repository: ([^\n]*? (?:is missing|is not a regular file|could not be read|is not in the lock|holds sha256:[0-9a-f]{64}, not the sha256:[0-9a-f]{64} of the lock))`)

// repoChecked is the line mavenRepoCheck writes when the copy passed:
// what the build prints after it (the project's own code runs then) is
// not the check's.
const repoChecked = "pyrsia-build: locked repository: all files checked"

// repoCopyFailed returns the check's findings in a build log, if any,
// before the line saying the copy passed.
func repoCopyFailed(log string) *RepoCopyError {
	if i := strings.Index(log, repoChecked); i >= 0 {
		log = log[:i]
	}
	var e RepoCopyError
	for _, m := range repoCheckRE.FindAllStringSubmatch(log, -1) {
		if p := strings.TrimSpace(m[1]); !slices.Contains(e.Problems, p) {
			e.Problems = append(e.Problems, p)
		}
	}
	if len(e.Problems) == 0 {
		return nil
	}
	return &e
}
