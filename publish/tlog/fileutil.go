package tlog

import (
	"errors"
	"fmt"
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
