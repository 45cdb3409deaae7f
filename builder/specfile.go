package builder

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// openSpecFile opens the file a spec names by a path (the spec field
// named field: an archive, a lock) and returns it with the name errors
// show.
//
// For a local spec the path is relative to specDir (or absolute) and is
// opened as the node's user would open it. For a spec from the network
// (remote) it is opened inside specDir through an [os.Root]: no absolute
// path, no "..", and no symlink that leads out of the folder, and only a
// regular file (never blocking on a named pipe). A node that gives no
// spec folder has no files for such a spec. Errors then name the path as
// the spec gives it, not where the node keeps the folder.
func openSpecFile(specDir, p string, remote bool, field string) (*os.File, string, error) {
	if !remote {
		name := p
		if !filepath.IsAbs(name) {
			name = filepath.Join(specDir, name)
		}
		f, err := os.Open(name)
		if err != nil {
			return nil, "", err
		}
		return f, name, nil
	}
	if specDir == "" {
		return nil, "", fmt.Errorf("%s %q: a spec from the network may name only files in the spec folder the node gives it, and this build has none: give a URL", field, p)
	}
	root, err := os.OpenRoot(specDir)
	if err != nil {
		return nil, "", fmt.Errorf("%s %q: opening the spec folder: %w", field, p, err)
	}
	defer root.Close()
	f, err := root.OpenFile(filepath.FromSlash(p), os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, "", fmt.Errorf("%s %q: no such file in the spec folder", field, p)
		}
		return nil, "", fmt.Errorf("%s %q: not a file inside the spec folder (for a spec from the network, links out of the folder are not followed): %w", field, p, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, "", fmt.Errorf("%s %q: %w", field, p, err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, "", fmt.Errorf("%s %q: not a regular file", field, p)
	}
	return f, p, nil
}

// readSpecFile reads a whole file that [openSpecFile] opened, refusing one
// of more than limit bytes.
func readSpecFile(f *os.File, name string, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s is larger than the limit of %d bytes", name, limit)
	}
	return data, nil
}
