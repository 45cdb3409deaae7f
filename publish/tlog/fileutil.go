package tlog

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// syncFS flushes every file of the filesystem that holds dir: one call
// instead of one fsync per tile written since the last one.
func syncFS(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := unix.Syncfs(int(d.Fd())); err != nil {
		return fmt.Errorf("syncing filesystem of %s: %w", dir, err)
	}
	return nil
}

// ErrLocked is returned by [Open] when another process has the log folder
// open. Use errors.Is.
var ErrLocked = errors.New("tlog: log folder is in use by another process")

// lockDir takes an exclusive lock on DIR/LOCK, so that two processes never
// write one log. The lock goes with the process, however it ends.
func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, "LOCK"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("tlog: locking log folder: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %s (stop it, or read the log over HTTP)", ErrLocked, dir)
	}
	return f, nil
}

// errOverLimit is wrapped by readLimited's error for a file too large.
var errOverLimit = errors.New("too large")

// readLimited returns the content of the file name of fsys, which must be
// at most limit bytes: a larger one (a file that is no tile, a link to a
// device) is an error, and no more than limit+1 bytes of it are read.
func readLimited(fsys FS, name string, limit int64) ([]byte, error) {
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, &fs.PathError{Op: "read", Path: name, Err: fmt.Errorf("%w: over %d bytes, more than it may hold", errOverLimit, limit)}
	}
	return b, nil
}
