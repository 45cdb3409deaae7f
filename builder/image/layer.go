package image

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"
)

// LayerStats says what [WriteLayer] wrote and what it left out.
type LayerStats struct {
	// Entries is the number of tar entries written.
	Entries int
	// Bytes is the sum of the regular files' sizes.
	Bytes int64
	// Skipped lists, sorted, the paths left out (device files and
	// sockets), each with the reason: "dev/null: character device".
	Skipped []string
}

// WriteLayer writes the folder root as a deterministic, uncompressed tar
// stream to w. What is on disk beyond names, contents, link targets and
// modes does not count:
//
//   - entries depth first, a folder before what it holds, the names in
//     each folder sorted byte-wise; paths relative to root, without "./";
//     folders end in "/"; root itself is not an entry;
//   - uid and gid 0, user and group names empty;
//   - every mtime is epoch (whole seconds); no atime, no ctime;
//   - the USTAR format, with PAX records only where USTAR cannot hold a
//     field (a long name or link target, a size over 8 GiB), which
//     archive/tar writes deterministically;
//   - the permission bits plus setuid, setgid and sticky kept;
//   - a file with more than one link (same device and inode) is written
//     once, at its first path in that order, and every later path is a
//     hardlink entry to it;
//   - xattrs (and so file capabilities and ACLs) are dropped;
//   - character and block devices and sockets are skipped, and listed in
//     the stats; FIFOs are kept.
//
// A file that changes size while it is read is an error.
func WriteLayer(ctx context.Context, w io.Writer, root string, epoch time.Time) (LayerStats, error) {
	var st LayerStats
	info, err := os.Lstat(root)
	if err != nil {
		return st, err
	}
	if !info.IsDir() {
		return st, fmt.Errorf("layer root %s is not a folder", root)
	}
	mtime := time.Unix(epoch.Unix(), 0).UTC()
	tw := tar.NewWriter(w)
	type inode struct{ dev, ino uint64 }
	seen := map[inode]string{}
	buf := make([]byte, 1<<20)

	var walk func(dir, rel string) error
	walk = func(dir, rel string) error {
		names, err := readDirNames(dir)
		if err != nil {
			return err
		}
		for _, name := range names {
			if err := ctx.Err(); err != nil {
				return err
			}
			full := filepath.Join(dir, name)
			p := rel + name
			fi, err := os.Lstat(full)
			if err != nil {
				return err
			}
			hdr := &tar.Header{
				Name:    p,
				ModTime: mtime,
				Mode:    tarMode(fi.Mode()),
				Format:  tar.FormatUnknown, // USTAR when it fits, else PAX
			}
			m := fi.Mode()
			switch {
			case m.IsDir():
				hdr.Typeflag = tar.TypeDir
				hdr.Name = p + "/"
			case m&fs.ModeSymlink != 0:
				target, err := os.Readlink(full)
				if err != nil {
					return err
				}
				hdr.Typeflag = tar.TypeSymlink
				hdr.Linkname = target
			case m.IsRegular():
				hdr.Typeflag = tar.TypeReg
				hdr.Size = fi.Size()
				if sys, ok := fi.Sys().(*syscall.Stat_t); ok && sys.Nlink > 1 {
					key := inode{uint64(sys.Dev), uint64(sys.Ino)}
					if first, ok := seen[key]; ok {
						hdr.Typeflag = tar.TypeLink
						hdr.Linkname = first
						hdr.Size = 0
					} else {
						seen[key] = p
					}
				}
			case m&fs.ModeNamedPipe != 0:
				hdr.Typeflag = tar.TypeFifo
			case m&fs.ModeCharDevice != 0:
				st.Skipped = append(st.Skipped, p+": character device")
				continue
			case m&fs.ModeDevice != 0:
				st.Skipped = append(st.Skipped, p+": block device")
				continue
			case m&fs.ModeSocket != 0:
				st.Skipped = append(st.Skipped, p+": socket")
				continue
			default:
				st.Skipped = append(st.Skipped, p+": unknown file type "+m.Type().String())
				continue
			}
			if err := tw.WriteHeader(hdr); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			st.Entries++
			if hdr.Typeflag == tar.TypeReg {
				if err := copyFile(tw, full, hdr.Size, buf); err != nil {
					return fmt.Errorf("%s: %w", p, err)
				}
				st.Bytes += hdr.Size
			}
			if hdr.Typeflag == tar.TypeDir {
				if err := walk(full, p+"/"); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if err := walk(root, ""); err != nil {
		return st, err
	}
	sort.Strings(st.Skipped)
	return st, tw.Close()
}

// readDirNames returns the names in dir sorted byte-wise.
func readDirNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	return names, nil
}

// tarMode is the tar mode of m: permissions plus setuid, setgid, sticky.
func tarMode(m fs.FileMode) int64 {
	mode := int64(m.Perm())
	if m&fs.ModeSetuid != 0 {
		mode |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		mode |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		mode |= 0o1000
	}
	return mode
}

func copyFile(w io.Writer, name string, size int64, buf []byte) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.CopyBuffer(w, io.LimitReader(f, size), buf)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("file shrank while written: %d of %d bytes", n, size)
	}
	var one [1]byte
	if k, _ := f.Read(one[:]); k > 0 {
		return errors.New("file grew while written")
	}
	return nil
}

// Unpack extracts an uncompressed layer stream made by [WriteLayer] (or
// any tar of regular files, folders, symlinks, hardlinks
// and FIFOs) into dest, which must exist. Names that would escape dest
// are an error; ownership is not restored.
func Unpack(r io.Reader, dest string) error {
	tr := tar.NewReader(r)
	type dirMode struct {
		path string
		mode fs.FileMode
	}
	var dirs []dirMode
	dest = filepath.Clean(dest)
	good := map[string]bool{dest: true} // folders known to be real folders inside dest
	// checkParents refuses a path whose parent folders are not real
	// folders (a symlink "etc -> /etc" followed by "etc/passwd" must not
	// write outside dest), and makes missing ones.
	var checkParents func(p string) error
	checkParents = func(p string) error {
		dir := filepath.Dir(p)
		if good[dir] {
			return nil
		}
		if err := checkParents(dir); err != nil {
			return err
		}
		fi, err := os.Lstat(dir)
		switch {
		case os.IsNotExist(err):
			if err := os.Mkdir(dir, 0o755); err != nil {
				return err
			}
		case err != nil:
			return err
		case !fi.IsDir():
			return fmt.Errorf("%s is not a folder (%s)", dir, fi.Mode().Type())
		}
		good[dir] = true
		return nil
	}
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		name := filepath.Clean("/" + hdr.Name)
		if name == "/" {
			continue
		}
		target := filepath.Join(dest, name)
		if !strings.HasPrefix(target, dest+string(filepath.Separator)) {
			return fmt.Errorf("tar entry %q escapes the destination", hdr.Name)
		}
		if err := checkParents(target); err != nil {
			return fmt.Errorf("tar entry %q: %w", hdr.Name, err)
		}
		mode := fs.FileMode(hdr.Mode).Perm()
		if hdr.Mode&0o4000 != 0 {
			mode |= fs.ModeSetuid
		}
		if hdr.Mode&0o2000 != 0 {
			mode |= fs.ModeSetgid
		}
		if hdr.Mode&0o1000 != 0 {
			mode |= fs.ModeSticky
		}
		switch hdr.Typeflag {
		case tar.TypeDir:
			fi, err := os.Lstat(target)
			switch {
			case os.IsNotExist(err):
				if err := os.Mkdir(target, 0o700); err != nil {
					return err
				}
			case err != nil:
				return err
			case !fi.IsDir():
				return fmt.Errorf("tar entry %q: %s exists and is not a folder", hdr.Name, target)
			}
			good[target] = true
			dirs = append(dirs, dirMode{target, mode})
		case tar.TypeReg:
			os.Remove(target) // never write through an existing symlink
			f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
			if err != nil {
				return err
			}
			if _, err := io.Copy(f, tr); err != nil {
				f.Close()
				return err
			}
			if err := f.Close(); err != nil {
				return err
			}
			if err := os.Chmod(target, mode); err != nil {
				return err
			}
		case tar.TypeSymlink:
			if err := os.Symlink(hdr.Linkname, target); err != nil {
				return err
			}
		case tar.TypeLink:
			old := filepath.Join(dest, filepath.Clean("/"+hdr.Linkname))
			if err := os.Link(old, target); err != nil {
				return err
			}
		case tar.TypeFifo:
			if err := syscall.Mkfifo(target, uint32(mode.Perm())); err != nil {
				return fmt.Errorf("mkfifo %s: %w", target, err)
			}
		default:
			return fmt.Errorf("tar entry %q: unsupported type %q", hdr.Name, hdr.Typeflag)
		}
	}
	// Folder modes last, deepest first, so a read-only folder can be
	// filled before it is closed.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Chmod(dirs[i].path, dirs[i].mode); err != nil {
			return err
		}
	}
	return nil
}
