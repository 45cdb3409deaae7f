package tlog

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/pyrsia/pyrsia-build/internal/fsutil"
	"golang.org/x/sys/unix"
)

// FS is the storage a log keeps its files in. Names are slash-separated and
// relative to the log's folder ("wal/00000000000000000000.wal",
// "tile/0/000"). The log relies on exactly what each method promises about
// durability: a write is durable only after a Sync of its file and, for a
// new or renamed name, a SyncDir of its folder (or a SyncAll). The disk
// implementation is the default; tests use an in-memory one that drops
// what was not made durable.
type FS interface {
	// ReadFile returns the content of a file.
	ReadFile(name string) ([]byte, error)
	// Open opens a file for reading.
	Open(name string) (io.ReadSeekCloser, error)
	// WriteFile replaces a file atomically (the old or the new content,
	// never a mix), creating its folders. With sync set, the content and
	// the name are durable when it returns.
	WriteFile(name string, data []byte, sync bool) error
	// Append opens a file for writing at offset size; with create set, the
	// file is made and must not exist.
	Append(name string, create bool, size int64) (AppendFile, error)
	// ReadDir returns the names in a folder.
	ReadDir(name string) ([]string, error)
	// Exists reports whether a name exists.
	Exists(name string) (bool, error)
	// Remove removes a file; RemoveAll a folder and what it holds.
	Remove(name string) error
	RemoveAll(name string) error
	// Truncate cuts a file to size.
	Truncate(name string, size int64) error
	// MkdirAll makes a folder and its parents.
	MkdirAll(name string) error
	// SyncDir makes the names created, removed or renamed in a folder
	// durable; SyncAll makes every file and name durable.
	SyncDir(name string) error
	SyncAll() error
}

// AppendFile is a file open for appending.
type AppendFile interface {
	Write(p []byte) (int, error)
	Sync() error // fdatasync
	Close() error
}

// DiskFS returns the FS of a folder on disk.
func DiskFS(root string) FS { return diskFS{root} }

type diskFS struct{ root string }

func (d diskFS) path(name string) string { return filepath.Join(d.root, filepath.FromSlash(name)) }

func (d diskFS) ReadFile(name string) ([]byte, error) { return os.ReadFile(d.path(name)) }

func (d diskFS) Open(name string) (io.ReadSeekCloser, error) { return os.Open(d.path(name)) }

func (d diskFS) WriteFile(name string, data []byte, sync bool) error {
	path := d.path(name)
	if sync {
		err := fsutil.WriteFileAtomic(path, data, 0o644)
		if errors.Is(err, fs.ErrNotExist) {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				return err
			}
			err = fsutil.WriteFileAtomic(path, data, 0o644)
		}
		return err
	}
	return writeFileNoSync(path, data)
}

func (d diskFS) Append(name string, create bool, size int64) (AppendFile, error) {
	flags := os.O_WRONLY
	if create {
		// O_EXCL: a segment is never truncated by creating it anew; it
		// may hold the only copy of acknowledged entries.
		flags |= os.O_CREATE | os.O_EXCL
	}
	f, err := os.OpenFile(d.path(name), flags, 0o644)
	if err != nil {
		return nil, err
	}
	if _, err := f.Seek(size, io.SeekStart); err != nil {
		f.Close()
		return nil, err
	}
	return diskFile{f}, nil
}

type diskFile struct{ *os.File }

func (f diskFile) Sync() error { return unix.Fdatasync(int(f.Fd())) }

func (d diskFS) ReadDir(name string) ([]string, error) {
	des, err := os.ReadDir(d.path(name))
	if err != nil {
		return nil, err
	}
	names := make([]string, len(des))
	for i, de := range des {
		names[i] = de.Name()
	}
	return names, nil
}

func (d diskFS) Exists(name string) (bool, error) {
	_, err := os.Lstat(d.path(name))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	return err == nil, err
}

func (d diskFS) Remove(name string) error               { return os.Remove(d.path(name)) }
func (d diskFS) RemoveAll(name string) error            { return os.RemoveAll(d.path(name)) }
func (d diskFS) Truncate(name string, size int64) error { return os.Truncate(d.path(name), size) }
func (d diskFS) MkdirAll(name string) error             { return os.MkdirAll(d.path(name), 0o755) }
func (d diskFS) SyncDir(name string) error              { return fsutil.SyncDir(d.path(name)) }
func (d diskFS) SyncAll() error                         { return syncFS(d.root) }

// writeFileNoSync replaces path with data through a temporary file and a
// rename, so that readers see the old or the new content, never a mix. It
// does not sync: tiles are made durable together (SyncAll), and until then
// the write-ahead log covers them.
func writeFileNoSync(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if tmp, err = os.CreateTemp(dir, ".tmp-*"); err != nil {
			return err
		}
	}
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(0o644)
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
