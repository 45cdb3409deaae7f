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
	"syscall"
	"time"

	"github.com/pyrsia/pyrsia-build/builder/internal/untar"
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
// any tar of regular files, folders, symlinks, hardlinks and FIFOs) into
// dest, which must exist. Nothing is written or linked outside dest, even
// through symlinks in the layer; names with ".." that leave dest are an
// error, and errors name the tar entry. Ownership is not restored.
func Unpack(r io.Reader, dest string) error {
	if err := untar.Extract(r, dest, untar.Options{Special: true}); err != nil {
		return fmt.Errorf("image: layer: %w", err)
	}
	return nil
}
