package builder_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pyrsia/pyrsia-build/builder"
)

// TestMavenKeptRepository: a locked build's repository is kept by BuildKit
// for the next build of the same lock, which reads no cached file (every
// cache entry is damaged before it, and it still builds the same
// artifacts), and the kept copy is checked before Maven sees it: a copy
// with a file of other bytes (its size and time unchanged, so the sync
// does not send it again) fails the build, naming the file, and is not
// used again (the next build sends the files anew and passes). A file
// not in the lock, or one whose size or time changed, the sync itself
// removes or sends again; TestRepoCheck checks those findings.
func TestMavenKeptRepository(t *testing.T) {
	s, dir := needRelease(t)
	d := twoDaemons(t)[0]
	root := filepath.Join(testRoot, "buildkitd-0", "root")
	ctx := context.Background()
	l, err := builder.ReadLock(filepath.Join(dir, s.Recipe.Maven.Lock.Path))
	if err != nil {
		t.Fatal(err)
	}
	// A cache of the test's own, filled from the default one where it can.
	cache := t.TempDir()
	if def, err := builder.MavenRepoCacheDir(); err == nil {
		for _, f := range l.Files {
			if b, err := os.ReadFile(filepath.Join(def, f.SHA256)); err == nil {
				os.WriteFile(filepath.Join(cache, f.SHA256), b, 0o644)
			}
		}
	}
	build := func() (*builder.Result, error) {
		return newBK(t, d).Build(ctx, s, builder.BuildOptions{OutDir: filepath.Join(t.TempDir(), "out"), SpecDir: dir, Images: imageStore(t), MavenCache: cache})
	}
	first, err := build()
	if err != nil {
		t.Fatal(err)
	}

	// Every cache entry with other bytes of the same size: a build that
	// read one would fail with a CacheEntryError.
	entries, _ := os.ReadDir(cache)
	saved := map[string][]byte{}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		p := filepath.Join(cache, e.Name())
		b, _ := os.ReadFile(p)
		saved[p] = b
		bad := slices.Clone(b)
		for i := range bad {
			bad[i] ^= 0xff
		}
		os.WriteFile(p, bad, 0o644)
	}
	second, err := build()
	if err != nil {
		t.Fatalf("the second build of the lock read the cache: %v", err)
	}
	if !slices.Equal(first.Artifacts, second.Artifacts) {
		t.Fatalf("the builds differ: %+v and %+v", first.Artifacts, second.Artifacts)
	}
	for p, b := range saved {
		os.WriteFile(p, b, 0o644)
	}

	// Damage the kept copy in BuildKit's root: one jar with other bytes of
	// its size, and a file the lock does not list beside it.
	var jar string
	for _, f := range l.Files {
		if strings.HasSuffix(f.File, ".jar") {
			jar = f.Path()
			break
		}
	}
	var copies []string
	filepath.WalkDir(root, func(p string, de fs.DirEntry, err error) error {
		if err == nil && de.Type().IsRegular() && strings.HasSuffix(p, "/fs/"+jar) {
			copies = append(copies, p)
		}
		return nil
	})
	if len(copies) == 0 {
		t.Fatalf("no copy of %s in %s", jar, root)
	}
	for _, p := range copies {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		b[len(b)/2] ^= 0xff
		os.WriteFile(p, b, 0o644)
		// The time as the sync left it: a sync sends again a file whose
		// size or time changed, so only the check can see this.
		os.Chtimes(p, fi.ModTime(), fi.ModTime())
	}
	_, err = build()
	var rc *builder.RepoCopyError
	if !errors.As(err, &rc) {
		t.Fatalf("a build from a damaged kept copy: %v, want a RepoCopyError", err)
	}
	if len(rc.Problems) != 1 || !strings.HasPrefix(rc.Problems[0], jar+" holds sha256:") {
		t.Fatalf("the findings %q, want %s's bytes", rc.Problems, jar)
	}
	if !strings.Contains(err.Error(), jar) {
		t.Fatalf("the error does not name %s: %v", jar, err)
	}
	third, err := build()
	if err != nil {
		t.Fatalf("the build after a failed check did not send the files anew: %v", err)
	}
	if !slices.Equal(first.Artifacts, third.Artifacts) {
		t.Fatalf("the builds differ: %+v and %+v", first.Artifacts, third.Artifacts)
	}
}
