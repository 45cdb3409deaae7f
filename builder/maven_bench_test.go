package builder

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BenchmarkMavenRelease measures the real release sample
// (testdata/maven-shared-utils, 841 locked files, about 80 MB): resolve
// (lock), a locked build with the lock's files fetched from the repository
// (cold) and from the cache, and, as the baseline, a plain
// 'mvn -o -DskipTests package' of the same source on the host with a warm
// local repository holding the same files. Needs root, buildkitd and runc
// on PATH, PYRSIA_IMAGES with the maven image, mvn, and the Maven
// repository of the machine's Maven configuration.
func BenchmarkMavenRelease(b *testing.B) {
	images := os.Getenv("PYRSIA_IMAGES")
	if os.Getuid() != 0 || images == "" {
		b.Skip("needs root and PYRSIA_IMAGES (an image store with the maven image)")
	}
	for _, bin := range []string{"buildkitd", "runc", "mvn"} {
		if _, err := exec.LookPath(bin); err != nil {
			b.Skip(bin + " is not on PATH")
		}
	}
	ctx := context.Background()
	specPath := "../testdata/maven-shared-utils/spec.yaml"
	s, err := ReadSpec(specPath)
	if err != nil {
		b.Fatal(err)
	}
	specDir, _ := filepath.Abs(filepath.Dir(specPath))
	d, err := StartDaemon(ctx, DaemonOptions{Dir: filepath.Join(b.TempDir(), "buildkitd")})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Stop()
	bk, err := NewBuildKit(ctx, d.Addr)
	if err != nil {
		b.Fatal(err)
	}
	defer bk.Close()
	bk.ProgressMode = "quiet"
	cache := b.TempDir()

	b.Run("resolve", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			if _, err := bk.Resolve(ctx, s, ResolveOptions{SpecDir: specDir, Images: images, Cache: cache}); err != nil {
				b.Fatal(err)
			}
		}
	})
	build := func(b *testing.B, cache string) {
		for i := 0; i < b.N; i++ {
			out := filepath.Join(b.TempDir(), "out")
			if _, err := bk.Build(ctx, s, BuildOptions{OutDir: out, SpecDir: specDir, Images: images, MavenCache: cache}); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("locked-build-cold", func(b *testing.B) { build(b, "-") })
	b.Run("locked-build-cached", func(b *testing.B) { build(b, cache) })

	// The baseline: the same source and files on the host.
	src, repo := b.TempDir(), b.TempDir()
	if _, err := fetchMavenSource(ctx, s.Source.Maven, mavenRepoOpts{cache: cache}, src, io.Discard); err != nil {
		b.Fatal(err)
	}
	l, err := loadLock(s.Recipe.Maven.Lock, specDir)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := lockRepo(ctx, l, nil, cache, repo, io.Discard); err != nil {
		b.Fatal(err)
	}
	b.Run("host-mvn-warm", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			os.RemoveAll(filepath.Join(src, "target"))
			cmd := exec.Command("mvn", "-o", "-B", "-q", "-Dmaven.repo.local="+repo, "-DskipTests", "package")
			cmd.Dir = src
			if out, err := cmd.CombinedOutput(); err != nil {
				b.Fatalf("mvn: %v\n%s", err, out)
			}
		}
	})
}
