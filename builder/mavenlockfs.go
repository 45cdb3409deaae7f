package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	gofs "io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/tonistiigi/fsutil"
	fstypes "github.com/tonistiigi/fsutil/types"
)

// lockFS is a Maven local repository holding exactly a lock's files, as
// BuildKit's file sync reads it, made without copying a file: each locked
// file is read from its cache entry (named by its sha256) while it is sent,
// and hashed as it goes. The last read of a file whose bytes are not the
// lock's fails with a [CacheEntryError] instead of ending the file, so the
// transfer, and with it the build, fails: the bytes the build sees are the
// bytes that were hashed. The metadata the lock pins is made from the lock
// and checked before the transfer starts. Every file has mode 0644, every
// folder 0755, the owner of this process and the modification time 0.
//
// A cache entry changed on disk after [newLockFS] looked at it is caught
// by the hash; nothing is trusted from the entry's name, size or time.
type lockFS struct {
	root     *lockNode
	uid, gid uint32

	mu     sync.Mutex
	damage *CacheEntryError // the first damaged entry read
	// onDamage, when set, is called (once) when a damaged entry is read:
	// it cancels the transfer. fsutil's sender does not pass a file's read
	// error to the receiver, which would otherwise wait for the file's
	// bytes until the build's context ends.
	onDamage func()
}

// damaged returns the first cache entry found damaged while it was sent,
// if any: the cause of a failed transfer, which BuildKit reports only as
// a failed file sync.
func (fsys *lockFS) damaged() error {
	fsys.mu.Lock()
	defer fsys.mu.Unlock()
	if fsys.damage == nil {
		return nil
	}
	return fsys.damage
}

// lockNode is a folder (children, sorted by name) or a file: from the
// cache (src, the lock's sha256 and the entry's size) or from memory
// (data: the metadata).
type lockNode struct {
	name     string
	children []*lockNode
	dir      bool
	src      string
	sha256   string
	size     int64
	data     []byte
	repoPath string
}

// CacheEntryError is a Maven cache entry whose bytes are not those of the
// lock file it is named after: the disk or someone changed it. The entry
// has been removed; building again fetches the file anew. Use errors.As.
type CacheEntryError struct {
	Entry string // the cache entry's file
	Path  string // the locked file's path in the repository
	Want  string // the lock's sha256 hex
	Got   string // the entry's sha256 hex, or "" when it grew past its size
}

func (e *CacheEntryError) Error() string {
	got := "other bytes"
	if e.Got != "" {
		got = "sha256:" + e.Got
	}
	return fmt.Sprintf("maven cache: %s, the cached %s, holds %s, not the lock's sha256:%s (it changed on disk): it was removed, build again to fetch the file anew", e.Entry, e.Path, got, e.Want)
}

// newLockFS makes the lock's repository from the cache folder, fetching
// into the cache each file it lacks (checked against the lock before it is
// stored). It returns how many files were fetched.
func newLockFS(ctx context.Context, l *Lock, client *repoClient, cache string, progress io.Writer) (*lockFS, int, error) {
	if progress == nil {
		progress = io.Discard
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return nil, 0, fmt.Errorf("maven cache: %w", err)
	}
	fsys := &lockFS{root: &lockNode{dir: true}, uid: uint32(os.Getuid()), gid: uint32(os.Getgid())}
	var fetched int
	var total int64
	for _, f := range l.Files {
		if err := ctx.Err(); err != nil {
			return nil, fetched, err
		}
		p := f.Path()
		n := &lockNode{repoPath: p, sha256: f.SHA256}
		if f.isMetadata() {
			data, err := lockMetadataChecked(l, f)
			if err != nil {
				return nil, fetched, err
			}
			n.data, n.size = data, int64(len(data))
			p = path.Join(path.Dir(p), localMetadataFile)
		} else {
			n.src = filepath.Join(cache, f.SHA256)
			fi, err := os.Lstat(n.src)
			if err != nil || !fi.Mode().IsRegular() {
				if client == nil {
					return nil, fetched, fmt.Errorf("maven lock: %s is not cached and no repository is configured", p)
				}
				if err := fetchToCache(ctx, client, f, n.src); err != nil {
					return nil, fetched, err
				}
				fetched++
				fmt.Fprintf(progress, "maven: fetched %s\n", p)
				if fi, err = os.Lstat(n.src); err != nil {
					return nil, fetched, fmt.Errorf("maven cache: %w", err)
				}
			}
			n.size = fi.Size()
		}
		if total += n.size; total > maxLockBytes {
			return nil, fetched, lockTooLarge(p)
		}
		if err := fsys.add(p, n); err != nil {
			return nil, fetched, err
		}
	}
	fsys.root.sort()
	return fsys, fetched, nil
}

// fetchToCache fetches f from the repository into the cache entry dst,
// by way of a temporary file, only if it has the lock's sha256.
func fetchToCache(ctx context.Context, client *repoClient, f LockFile, dst string) error {
	p := f.Path()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".fetch-*")
	if err != nil {
		return fmt.Errorf("maven cache: %w", err)
	}
	got, n, err := client.get(ctx, p, tmp)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		var fe *FetchError
		if errors.As(err, &fe) && fe.Status == 404 {
			return fmt.Errorf("maven lock: %s (%s) is pinned by the lock but the repository does not serve it (HTTP 404): "+
				"check the Maven settings' mirror, or run 'pyrsia-build lock SPEC' if the project no longer needs it", p, f.Coordinate)
		}
		return fmt.Errorf("maven lock: %w", err)
	}
	if got != f.SHA256 {
		os.Remove(tmp.Name())
		return &LockMismatchError{Path: p, Want: f.SHA256, Got: got}
	}
	if n > maxLockBytes {
		os.Remove(tmp.Name())
		return lockTooLarge(p)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return nil
}

// lockMetadataChecked is the metadata of f's artifact made from the lock,
// checked against the lock's digest (see writeLockMetadata).
func lockMetadataChecked(l *Lock, f LockFile) ([]byte, error) {
	data := lockMetadata(l, f.Coordinate)
	if data == nil {
		return nil, fmt.Errorf("maven lock: %s: the lock pins metadata of %s but no version of it: run 'pyrsia-build lock SPEC' again", f.Path(), f.Coordinate)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != f.SHA256 {
		return nil, fmt.Errorf("maven lock: %s: the metadata made from the lock's versions of %s has sha256:%s, the lock pins sha256:%s: the lock was edited or written by another version of pyrsia-build; run 'pyrsia-build lock SPEC' and review the change", f.Path(), f.Coordinate, got, f.SHA256)
	}
	return data, nil
}

// add places n at the slash-separated path p, making its folders.
func (fsys *lockFS) add(p string, n *lockNode) error {
	parts := strings.Split(p, "/")
	dir := fsys.root
	for _, part := range parts[:len(parts)-1] {
		var next *lockNode
		for _, c := range dir.children {
			if c.name == part {
				next = c
				break
			}
		}
		if next == nil {
			next = &lockNode{name: part, dir: true}
			dir.children = append(dir.children, next)
		} else if !next.dir {
			return fmt.Errorf("maven lock: %s is both a file and a folder", path.Join(parts[:len(parts)-1]...))
		}
		dir = next
	}
	n.name = parts[len(parts)-1]
	for _, c := range dir.children {
		if c.name == n.name {
			return fmt.Errorf("maven lock: %s is listed twice", p)
		}
	}
	dir.children = append(dir.children, n)
	return nil
}

func (n *lockNode) sort() {
	sort.Slice(n.children, func(i, j int) bool { return n.children[i].name < n.children[j].name })
	for _, c := range n.children {
		if c.dir {
			c.sort()
		}
	}
}

// Walk implements fsutil.FS: every folder and file under target, in the
// order of filepath.WalkDir (by name within each folder).
func (fsys *lockFS) Walk(ctx context.Context, target string, fn gofs.WalkDirFunc) error {
	n, rel := fsys.root, ""
	for _, part := range strings.Split(filepath.ToSlash(target), "/") {
		if part == "" || part == "." {
			continue
		}
		n = n.child(part)
		if n == nil {
			return nil
		}
		rel = path.Join(rel, part)
	}
	if rel != "" {
		if err := fn(filepath.FromSlash(rel), fsys.entry(rel, n), nil); err != nil {
			if errors.Is(err, filepath.SkipDir) {
				return nil
			}
			return err
		}
	}
	return fsys.walk(ctx, rel, n, fn)
}

func (fsys *lockFS) walk(ctx context.Context, rel string, dir *lockNode, fn gofs.WalkDirFunc) error {
	for _, c := range dir.children {
		if err := ctx.Err(); err != nil {
			return err
		}
		p := path.Join(rel, c.name)
		err := fn(filepath.FromSlash(p), fsys.entry(p, c), nil)
		if errors.Is(err, filepath.SkipDir) {
			continue
		}
		if err != nil {
			return err
		}
		if c.dir {
			if err := fsys.walk(ctx, p, c, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

func (n *lockNode) child(name string) *lockNode {
	i := sort.Search(len(n.children), func(i int) bool { return n.children[i].name >= name })
	if i < len(n.children) && n.children[i].name == name {
		return n.children[i]
	}
	return nil
}

func (fsys *lockFS) entry(p string, n *lockNode) gofs.DirEntry {
	st := &fstypes.Stat{Path: filepath.FromSlash(p), Uid: fsys.uid, Gid: fsys.gid}
	if n.dir {
		st.Mode = uint32(gofs.ModeDir | 0o755)
	} else {
		st.Mode, st.Size = 0o644, n.size
	}
	return &fsutil.DirEntryInfo{Stat: st}
}

// Open implements fsutil.FS. The reader of a cached file fails its last
// read with a [CacheEntryError] when the bytes are not the lock's.
func (fsys *lockFS) Open(p string) (io.ReadCloser, error) {
	n := fsys.root
	for _, part := range strings.Split(filepath.ToSlash(p), "/") {
		if part == "" || part == "." {
			continue
		}
		if n = n.child(part); n == nil {
			return nil, &os.PathError{Op: "open", Path: p, Err: os.ErrNotExist}
		}
	}
	if n.dir {
		return nil, &os.PathError{Op: "open", Path: p, Err: errors.New("is a folder")}
	}
	if n.data != nil {
		return io.NopCloser(strings.NewReader(string(n.data))), nil
	}
	f, err := os.Open(n.src)
	if err != nil {
		return nil, err
	}
	return &checkedReader{fsys: fsys, f: f, n: n, h: sha256.New()}, nil
}

// checkedReader reads a cache entry, hashing it, and ends it with an
// error instead of io.EOF when its bytes are not the lock's.
type checkedReader struct {
	fsys *lockFS
	f    *os.File
	n    *lockNode
	h    hash.Hash
	read int64
}

func (r *checkedReader) Read(b []byte) (int, error) {
	// Never more than the size announced, so a grown entry is caught
	// here, not by the receiver.
	if max := r.n.size - r.read + 1; int64(len(b)) > max {
		b = b[:max]
	}
	k, err := r.f.Read(b)
	r.h.Write(b[:k])
	r.read += int64(k)
	if r.read > r.n.size {
		return 0, r.damaged("")
	}
	if err == io.EOF {
		if got := hex.EncodeToString(r.h.Sum(nil)); got != r.n.sha256 {
			return 0, r.damaged(got)
		}
	}
	return k, err
}

func (r *checkedReader) damaged(got string) error {
	os.Remove(r.n.src)
	e := &CacheEntryError{Entry: r.n.src, Path: r.n.repoPath, Want: r.n.sha256, Got: got}
	r.fsys.mu.Lock()
	first := r.fsys.damage == nil
	if first {
		r.fsys.damage = e
	}
	cancel := r.fsys.onDamage
	r.fsys.mu.Unlock()
	if first && cancel != nil {
		cancel()
	}
	return e
}

func (r *checkedReader) Close() error { return r.f.Close() }
