// Package fileread reads the small files a command is given (keys, specs,
// entries, bundles, checkpoints) safely: within a size limit fitting their
// kind, only from regular files, and stopping when the context is done.
//
// A key named /dev/zero would otherwise fill memory, and a named pipe
// would block forever; both are refused before anything is read. A file
// over its limit is refused from its size, before it is read, and a file
// that grows while it is read stops at the limit.
package fileread

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"syscall"
)

// chunk is how much is read between two checks of the context.
const chunk = 64 << 10

// ErrNotRegular is wrapped by the error for a path that is not a regular
// file (a folder, a device, a named pipe, a socket); use errors.Is.
var ErrNotRegular = errors.New("not a regular file")

// ErrTooLarge is wrapped by [*TooLargeError]; use errors.Is.
var ErrTooLarge = errors.New("file is over the size limit")

// TooLargeError is a file over the limit of its kind.
type TooLargeError struct {
	Path  string
	What  string // the kind of file, e.g. "public key"; may be empty
	Size  int64  // the file's size, or -1 if it grew past Limit while read
	Limit int64
}

func (e *TooLargeError) Error() string {
	if e.Size < 0 {
		return fmt.Sprintf("%s: %v: more than %d bytes", name(e.What, e.Path), ErrTooLarge, e.Limit)
	}
	return fmt.Sprintf("%s: %v: %d bytes, the limit is %d", name(e.What, e.Path), ErrTooLarge, e.Size, e.Limit)
}

// Unwrap returns [ErrTooLarge].
func (e *TooLargeError) Unwrap() error { return ErrTooLarge }

// NotRegularError is a path that is not a regular file.
type NotRegularError struct {
	Path string
	What string // the kind of file expected, e.g. "public key"; may be empty
	Mode fs.FileMode
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s is %v (%s): give a regular file", name(e.What, e.Path), ErrNotRegular, kind(e.Mode))
}

// Unwrap returns [ErrNotRegular].
func (e *NotRegularError) Unwrap() error { return ErrNotRegular }

// name is how errors name a file: its kind, if known, and its path.
func name(what, path string) string {
	if what == "" {
		return path
	}
	return what + " " + path
}

// ReadFile reads the regular file at path, of at most limit bytes. what
// names the kind of file in errors ("public key", "build spec"), or is
// empty. Every error names the path; a context error is returned as it is,
// wrapped. This is the one reader of input files: every package that reads
// a key, spec, entry, bundle, policy or state file by its name uses it.
func ReadFile(ctx context.Context, path, what string, limit int64) ([]byte, error) {
	f, err := Open(path, what)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name(what, path), err)
	}
	if fi.Size() > limit {
		return nil, &TooLargeError{Path: path, What: what, Size: fi.Size(), Limit: limit}
	}
	buf := make([]byte, 0, fi.Size()+1)
	r := Reader(ctx, io.LimitReader(f, limit+1))
	for {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, chunk)
		}
		n, err := r.Read(buf[len(buf):min(cap(buf), len(buf)+chunk)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", name(what, path), err)
		}
	}
	if int64(len(buf)) > limit {
		return nil, &TooLargeError{Path: path, What: what, Size: -1, Limit: limit}
	}
	return buf, nil
}

// Open opens path for reading if it is a regular file. It never blocks on
// a named pipe: the file is opened without waiting for a writer and checked
// before it is read.
func Open(path, what string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if what == "" {
			return nil, err // "open PATH: no such file or directory"
		}
		return nil, fmt.Errorf("reading %s: %w", what, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("reading %s: %w", name(what, path), err)
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, &NotRegularError{Path: path, What: what, Mode: fi.Mode()}
	}
	return f, nil
}

// Check reports whether path could be read with ReadFile, without reading
// it: for a library that reads the file again by its name.
func Check(path, what string, limit int64) error {
	f, err := Open(path, what)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fmt.Errorf("reading %s: %w", name(what, path), err)
	}
	if fi.Size() > limit {
		return &TooLargeError{Path: path, What: what, Size: fi.Size(), Limit: limit}
	}
	return nil
}

func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&(fs.ModeDevice|fs.ModeCharDevice) != 0:
		return "a device"
	}
	return "mode " + m.String()
}

// Reader returns a reader of r that fails with ctx's error once ctx is
// done, checked before every read: a long read stops between two chunks.
func Reader(ctx context.Context, r io.Reader) io.Reader { return &ctxReader{ctx, r} }

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
