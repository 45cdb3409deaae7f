package fileread

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	os.WriteFile(small, []byte("0123456789"), 0o644)
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o644)
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big")
	os.WriteFile(big, make([]byte, 3*chunk+5), 0o644)

	t.Run("within the limit", func(t *testing.T) {
		for _, limit := range []int64{10, 11, 1 << 20} {
			b, err := ReadFile(context.Background(), small, "key", limit)
			if err != nil || string(b) != "0123456789" {
				t.Errorf("limit %d: got %q, %v; want the file", limit, b, err)
			}
		}
		b, err := ReadFile(context.Background(), big, "key", 3*chunk+5)
		if err != nil || len(b) != 3*chunk+5 {
			t.Errorf("got %d bytes, %v; want %d", len(b), err, 3*chunk+5)
		}
		b, err = ReadFile(context.Background(), empty, "key", 10)
		if err != nil || len(b) != 0 {
			t.Errorf("empty: got %q, %v", b, err)
		}
	})
	t.Run("over the limit prints the limit and the size", func(t *testing.T) {
		_, err := ReadFile(context.Background(), small, "public key", 9)
		var te *TooLargeError
		if !errors.As(err, &te) || te.Limit != 9 || te.Size != 10 {
			t.Fatalf("got %v, want a TooLargeError of size 10, limit 9", err)
		}
		want := "public key " + small + ": file is over the size limit: 10 bytes, the limit is 9"
		if err.Error() != want {
			t.Errorf("got %q, want %q", err, want)
		}
		if !errors.Is(err, ErrTooLarge) {
			t.Errorf("%v is not ErrTooLarge", err)
		}
		// Without a kind, the path alone.
		_, err = ReadFile(context.Background(), small, "", 9)
		if want := small + ": file is over the size limit: 10 bytes, the limit is 9"; err == nil || err.Error() != want {
			t.Errorf("got %v, want %q", err, want)
		}
	})
	for name, path := range map[string]string{"a device": "/dev/zero", "a named pipe": fifo, "a directory": dir} {
		t.Run(name+" is refused", func(t *testing.T) {
			_, err := ReadFile(context.Background(), path, "key", 100)
			if !errors.Is(err, ErrNotRegular) {
				t.Fatalf("got %v, want ErrNotRegular", err)
			}
			if want := "key " + path + " is not a regular file (" + name + "): give a regular file"; err.Error() != want {
				t.Errorf("got %q, want %q", err, want)
			}
			if err := Check(path, "key", 100); !errors.Is(err, ErrNotRegular) {
				t.Errorf("Check: got %v, want ErrNotRegular", err)
			}
		})
	}
	t.Run("missing", func(t *testing.T) {
		_, err := ReadFile(context.Background(), filepath.Join(dir, "nope"), "key", 100)
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("got %v, want ErrNotExist", err)
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := ReadFile(ctx, big, "key", 1<<20)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	})
	t.Run("Check", func(t *testing.T) {
		if err := Check(small, "key", 10); err != nil {
			t.Error(err)
		}
		var te *TooLargeError
		if err := Check(small, "key", 9); !errors.As(err, &te) {
			t.Errorf("got %v, want TooLargeError", err)
		}
	})
}

// TestReadFileGrows reads a file whose size says 0 but that holds more
// (as files in /proc do, or one that grows while it is read).
func TestReadFileGrows(t *testing.T) {
	_, err := ReadFile(context.Background(), "/proc/self/maps", "key", 10)
	var te *TooLargeError
	if !errors.As(err, &te) || te.Size != -1 {
		t.Fatalf("got %v, want a TooLargeError without a size", err)
	}
	if want := "key /proc/self/maps: file is over the size limit: more than 10 bytes"; err.Error() != want {
		t.Errorf("got %q, want %q", err, want)
	}
}
