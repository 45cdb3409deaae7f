// Package fsutil holds the file helpers that every package of pyrsia-build
// shares.
package fsutil

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// WriteFileAtomic replaces path with data so that a reader, and the file
// after a crash, holds either the old content or the new one, never a mix:
// it writes a temporary file in the same folder, syncs it, renames it over
// path and syncs the folder. When it returns nil, the new content is
// durable. On an error, path is unchanged and the temporary file is gone.
func WriteFileAtomic(path string, data []byte, perm fs.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("fsutil: writing %s: %w", path, err)
	}
	name := tmp.Name()
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Chmod(perm)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(name, path)
	}
	if err != nil {
		os.Remove(name)
		return fmt.Errorf("fsutil: writing %s: %w", path, err)
	}
	if err := SyncDir(dir); err != nil {
		return fmt.Errorf("fsutil: writing %s: %w", path, err)
	}
	return nil
}

// SyncDir makes the creation, removal or renaming of names in dir durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("fsutil: syncing folder %s: %w", dir, err)
	}
	return nil
}
