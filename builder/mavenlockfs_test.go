package builder

import (
	"bytes"
	"context"
	"errors"
	"io"
	gofs "io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tonistiigi/fsutil"
	fstypes "github.com/tonistiigi/fsutil/types"
	"golang.org/x/sync/errgroup"
)

// lockFSLock is a lock of two artifacts (one folder a prefix of another's
// name, so the walk order matters) and the metadata of one.
func lockFSLock(t *testing.T) (*Lock, map[string][]byte) {
	t.Helper()
	files := map[string][]byte{
		"org/x/lib/1.0/lib-1.0.jar":         []byte("jar bytes"),
		"org/x/lib/1.0/lib-1.0.pom":         []byte("<project/>"),
		"org/x/lib-ext/2.0/lib-ext-2.0.pom": []byte("<project>ext</project>"),
	}
	l := &Lock{Version: 1, Files: []LockFile{
		{Coordinate: "org.x:lib:1.0", File: "lib-1.0.jar", SHA256: sha(files["org/x/lib/1.0/lib-1.0.jar"])},
		{Coordinate: "org.x:lib:1.0", File: "lib-1.0.pom", SHA256: sha(files["org/x/lib/1.0/lib-1.0.pom"])},
		{Coordinate: "org.x:lib-ext:2.0", File: "lib-ext-2.0.pom", SHA256: sha(files["org/x/lib-ext/2.0/lib-ext-2.0.pom"])},
	}}
	meta := lockMetadata(l, "org.x:lib")
	l.Files = append(l.Files, LockFile{Coordinate: "org.x:lib", File: metadataFile, SHA256: sha(meta)})
	data, err := l.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if l, err = ParseLock(data); err != nil {
		t.Fatal(err)
	}
	return l, files
}

// TestLockFS: the repository the build is sent from the cache holds the
// same files, folders and bytes as the one lockRepo writes to disk, and
// fetches into the cache only what it lacks.
func TestLockFS(t *testing.T) {
	l, files := lockFSLock(t)
	rs, url := newRepo(t, files)
	ctx := context.Background()
	cache := t.TempDir()
	fsys, n, err := newLockFS(ctx, l, newRepoClient(url), cache, io.Discard)
	if err != nil || n != 3 {
		t.Fatalf("got %d fetched, %v; want 3", n, err)
	}
	if _, n, err = newLockFS(ctx, l, newRepoClient(url), cache, io.Discard); err != nil || n != 0 || rs.hits.Load() != 3 {
		t.Fatalf("second time: %d fetched, %d requests, %v; want 0 fetched, 3 requests in all", n, rs.hits.Load(), err)
	}
	dir := t.TempDir()
	if _, err := lockRepo(ctx, l, nil, cache, dir, io.Discard); err != nil {
		t.Fatal(err)
	}
	want, err := fsutil.NewFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := walkFS(t, fsys), walkFS(t, want); got != want {
		t.Fatalf("the lock's file system walks as\n%s\nlockRepo's folder as\n%s", got, want)
	}
}

// walkFS lists an fsutil.FS: each path, its type, size and permissions,
// and a file's bytes.
func walkFS(t *testing.T, fsys fsutil.FS) string {
	t.Helper()
	var b strings.Builder
	err := fsys.Walk(context.Background(), "/", func(p string, e gofs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*fstypes.Stat)
		b.WriteString(p + " " + gofs.FileMode(st.Mode).String())
		if !fi.IsDir() {
			r, err := fsys.Open(p)
			if err != nil {
				return err
			}
			data, err := io.ReadAll(r)
			r.Close()
			if err != nil {
				return err
			}
			if int64(len(data)) != st.Size {
				t.Errorf("%s: size %d, %d bytes", p, st.Size, len(data))
			}
			b.WriteString(" " + string(data))
		}
		b.WriteString("\n")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestLockFSDamagedEntry: a cache entry changed after the lock's file
// system was made (other bytes, the same size, or more bytes) fails the
// read of the file, is removed, and is reported as the cause.
func TestLockFSDamagedEntry(t *testing.T) {
	l, files := lockFSLock(t)
	_, url := newRepo(t, files)
	jar := files["org/x/lib/1.0/lib-1.0.jar"]
	for name, damage := range map[string][]byte{
		"same size":  bytes.ToUpper(jar),
		"more bytes": append(append([]byte{}, jar...), " and more"...),
		"fewer":      jar[:3],
	} {
		t.Run(name, func(t *testing.T) {
			cache := t.TempDir()
			fsys, _, err := newLockFS(context.Background(), l, newRepoClient(url), cache, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			entry := filepath.Join(cache, sha(jar))
			writeCacheEntry(t, damage, entry)
			r, err := fsys.Open("org/x/lib/1.0/lib-1.0.jar")
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.ReadAll(r)
			r.Close()
			var ce *CacheEntryError
			if !errors.As(err, &ce) || ce.Path != "org/x/lib/1.0/lib-1.0.jar" || ce.Want != sha(jar) {
				t.Fatalf("got %v, want a *CacheEntryError for the jar", err)
			}
			if _, err := os.Stat(entry); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("the damaged entry was kept (%v)", err)
			}
			if d := fsys.damaged(); !errors.As(d, &ce) {
				t.Fatalf("damaged() = %v", d)
			}
		})
	}
}

// TestLockFSSendDamaged: a damaged entry fails fsutil's file sync itself
// (the way BuildKit reads the repository), not only a reader.
func TestLockFSSendDamaged(t *testing.T) {
	l, files := lockFSLock(t)
	_, url := newRepo(t, files)
	cache := t.TempDir()
	fsys, _, err := newLockFS(context.Background(), l, newRepoClient(url), cache, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// Intact, the sync writes the lock's files.
	dest := t.TempDir()
	if err := syncFS(fsys, dest, nil); err != nil {
		t.Fatalf("sync: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dest, "org/x/lib/1.0/lib-1.0.jar")); !bytes.Equal(b, files["org/x/lib/1.0/lib-1.0.jar"]) {
		t.Fatalf("synced jar is %q", b)
	}
	writeCacheEntry(t, []byte("JAR BYTES"), filepath.Join(cache, sha(files["org/x/lib/1.0/lib-1.0.jar"])))
	if err := syncFS(fsys, t.TempDir(), fsys); err == nil {
		t.Fatal("a sync with a damaged cache entry succeeded")
	}
	var ce *CacheEntryError
	if !errors.As(fsys.damaged(), &ce) {
		t.Fatalf("damaged() = %v", fsys.damaged())
	}
}

// syncFS sends fsys to dest with fsutil's sender and receiver; a damaged
// entry of lfs cancels the transfer, as in a build.
func syncFS(fsys fsutil.FS, dest string, lfs *lockFS) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if lfs != nil {
		lfs.onDamage = cancel
	}
	a, b := make(chan []byte, 64), make(chan []byte, 64)
	eg, ctx := errgroup.WithContext(ctx)
	eg.Go(func() error {
		// The receiver reads until the sender's end closes, as a gRPC
		// stream closes when its handler returns.
		defer close(a)
		return fsutil.Send(ctx, &chanStream{ctx, a, b}, fsys, nil)
	})
	eg.Go(func() error { return fsutil.Receive(ctx, &chanStream{ctx, b, a}, dest, fsutil.ReceiveOpt{}) })
	return eg.Wait()
}

// chanStream is one end of an in-memory fsutil.Stream.
type chanStream struct {
	ctx     context.Context
	out, in chan []byte
}

func (s *chanStream) Context() context.Context { return s.ctx }

func (s *chanStream) SendMsg(m any) error {
	data, err := m.(*fstypes.Packet).MarshalVT()
	if err != nil {
		return err
	}
	select {
	case s.out <- data:
		return nil
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}

func (s *chanStream) RecvMsg(m any) error {
	select {
	case data, ok := <-s.in:
		if !ok {
			return io.EOF
		}
		p := m.(*fstypes.Packet)
		p.ResetVT()
		return p.UnmarshalVT(data)
	case <-s.ctx.Done():
		return s.ctx.Err()
	}
}
