// Package untar extracts tar streams into a folder without ever writing
// or linking outside it: the one tar extractor of the builder, for source
// archives and for image layers.
//
// Every path is resolved through an [os.Root], so neither ".." nor a
// symlink in the archive (or already in the folder) can lead a write, a
// hard link or a chmod out of it: a symlink "lnk -> /outside" followed by a
// hard link "x -> lnk/secret" fails instead of linking a host file in.
// Errors name the archive member.
package untar

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"syscall"
)

// Options say what an archive may hold.
type Options struct {
	// MaxSize bounds the sum of the regular files' sizes; 0 means no
	// bound.
	MaxSize int64
	// MaxEntries bounds the number of entries (a few compressed bytes
	// can hold millions of empty ones); 0 means no bound.
	MaxEntries int
	// Special keeps setuid, setgid and sticky bits and makes FIFOs (image
	// layers). Without it those bits are dropped and FIFOs skipped
	// (source trees).
	Special bool
	// SkipUnknown skips devices and other entry types a tree has no use
	// for; without it they are an error.
	SkipUnknown bool
	// DirMode is ORed into every folder's mode (0o700 keeps a source tree
	// writable, so it can be removed).
	DirMode fs.FileMode
}

// Extract extracts the tar stream r into the folder dest, which must exist.
// Later entries replace earlier files of the same name, as with tar; a
// folder is never replaced by a file. Folder modes are set last, deepest
// first, so that a read-only folder can be filled. Ownership and times are
// not restored.
func Extract(r io.Reader, dest string, opts Options) error {
	root, err := os.OpenRoot(dest)
	if err != nil {
		return fmt.Errorf("untar: %w", err)
	}
	defer root.Close()
	return ExtractRoot(r, root, opts)
}

// ExtractRoot is [Extract] into an open root.
func ExtractRoot(r io.Reader, root *os.Root, opts Options) error {
	tr := tar.NewReader(r)
	type dirMode struct {
		name string
		mode fs.FileMode
	}
	var dirs []dirMode
	var total int64
	for entries := 1; ; entries++ {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("untar: reading the archive: %w", err)
		}
		if opts.MaxEntries > 0 && entries > opts.MaxEntries {
			return memberErr(hdr.Name, fmt.Errorf("the archive has over %d entries", opts.MaxEntries))
		}
		name, err := MemberPath(hdr.Name)
		if err != nil {
			return memberErr(hdr.Name, err)
		}
		if name == "." {
			continue
		}
		if hdr.Typeflag == tar.TypeReg {
			total += hdr.Size
			if opts.MaxSize > 0 && total > opts.MaxSize {
				return memberErr(hdr.Name, fmt.Errorf("the archive unpacks to over %d bytes", opts.MaxSize))
			}
		}
		mode := entryMode(hdr, opts.Special)
		err = extractOne(root, tr, hdr, name, mode, opts)
		if errors.Is(err, errSkip) {
			continue
		}
		if err != nil {
			return memberErr(hdr.Name, err)
		}
		if hdr.Typeflag == tar.TypeDir {
			dirs = append(dirs, dirMode{name, mode | opts.DirMode})
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		d := dirs[i]
		// A later entry may have put something else there.
		if fi, err := root.Lstat(d.name); err != nil || !fi.IsDir() {
			continue
		}
		if err := root.Chmod(d.name, d.mode); err != nil {
			return memberErr(d.name, err)
		}
	}
	return nil
}

var errSkip = errors.New("skipped")

func extractOne(root *os.Root, tr *tar.Reader, hdr *tar.Header, name string, mode fs.FileMode, opts Options) error {
	switch hdr.Typeflag {
	case tar.TypeDir, tar.TypeReg, tar.TypeSymlink, tar.TypeLink:
	case tar.TypeFifo:
		if !opts.Special {
			return errSkip
		}
	default:
		if opts.SkipUnknown {
			return errSkip
		}
		return fmt.Errorf("unsupported entry type %q", hdr.Typeflag)
	}
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755|opts.DirMode); err != nil {
			return err
		}
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		fi, err := root.Lstat(name)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return root.Mkdir(name, 0o700)
		case err != nil:
			return err
		case !fi.IsDir():
			return fmt.Errorf("%s exists and is not a folder", name)
		}
		return nil
	case tar.TypeReg:
		if err := removeNonDir(root, name); err != nil {
			return err
		}
		// O_EXCL: never write through a symlink.
		f, err := root.OpenFile(name, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, tr); err != nil {
			f.Close()
			return err
		}
		if err := f.Chmod(mode); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	case tar.TypeSymlink:
		if err := removeNonDir(root, name); err != nil {
			return err
		}
		return root.Symlink(hdr.Linkname, name)
	case tar.TypeLink:
		target, err := MemberPath(hdr.Linkname)
		if err != nil || target == "." {
			return fmt.Errorf("hard link target %q is not a member path", hdr.Linkname)
		}
		fi, err := root.Lstat(target)
		if err != nil {
			return fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
		}
		if !fi.Mode().IsRegular() {
			// Linking a symlink, a folder or a FIFO is never what a
			// file tree needs.
			return fmt.Errorf("hard link target %q is not a regular file (%s)", hdr.Linkname, fi.Mode().Type())
		}
		if err := removeNonDir(root, name); err != nil {
			return err
		}
		return root.Link(target, name)
	case tar.TypeFifo:
		if err := removeNonDir(root, name); err != nil {
			return err
		}
		return mkfifo(root, name, mode)
	}
	return nil
}

// removeNonDir removes name unless it is a folder or missing.
func removeNonDir(root *os.Root, name string) error {
	fi, err := root.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fmt.Errorf("%s exists and is a folder", name)
	}
	return root.Remove(name)
}

// mkfifo makes a FIFO at name, inside root.
func mkfifo(root *os.Root, name string, mode fs.FileMode) error {
	dir, err := root.Open(path.Dir(name))
	if err != nil {
		return err
	}
	defer dir.Close()
	fi, err := dir.Stat()
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a folder", path.Dir(name))
	}
	if err := syscall.Mknodat(int(dir.Fd()), path.Base(name), syscall.S_IFIFO|uint32(mode.Perm()), 0); err != nil {
		return &fs.PathError{Op: "mkfifo", Path: name, Err: err}
	}
	return nil
}

// MemberPath returns a member name as a clean path relative to the root:
// a leading "/" or "./" is dropped (as tar does), a name that leaves the
// root with ".." is an error.
func MemberPath(name string) (string, error) {
	if name == "" || strings.ContainsRune(name, 0) {
		return "", errors.New("empty name or a NUL byte in it")
	}
	clean := path.Clean("/" + name)
	// Clean("/"+name) stops at the root; compare with the plain clean to
	// find names that tried to go above it.
	if rel := path.Clean(strings.TrimLeft(name, "/")); rel == ".." || strings.HasPrefix(rel, "../") {
		return "", errors.New("the name leaves the destination folder (\"..\")")
	}
	if clean == "/" {
		return ".", nil
	}
	return clean[1:], nil
}

func entryMode(hdr *tar.Header, special bool) fs.FileMode {
	mode := fs.FileMode(hdr.Mode).Perm()
	if special {
		if hdr.Mode&0o4000 != 0 {
			mode |= fs.ModeSetuid
		}
		if hdr.Mode&0o2000 != 0 {
			mode |= fs.ModeSetgid
		}
		if hdr.Mode&0o1000 != 0 {
			mode |= fs.ModeSticky
		}
	}
	return mode
}

// memberErr names the member, and says in words what os.Root's "path
// escapes from parent" means here.
func memberErr(name string, err error) error {
	if strings.Contains(err.Error(), "path escapes from parent") {
		return fmt.Errorf("untar: member %q: its path leads outside the destination folder through a symlink (%w)", name, err)
	}
	return fmt.Errorf("untar: member %q: %w", name, err)
}
