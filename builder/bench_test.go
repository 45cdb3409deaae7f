package builder_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/pyrsia/pyrsia-build/builder"
	"github.com/pyrsia/pyrsia-build/builder/image"
)

// BenchmarkBuildOverhead compares, on one buildkitd, a full
// `pyrsia-build build --no-cache` of the C sample (source fetch and check,
// build, output manifest, signed attestation) with the same build done by
// `buildctl` alone. Needs root, buildkitd/buildctl/runc on PATH and
// PYRSIA_IMAGES with the maven image.
func BenchmarkBuildOverhead(b *testing.B) {
	needBuildkit(b)
	if _, err := exec.LookPath("buildctl"); err != nil {
		b.Skip("buildctl is not on PATH: PATH=\"$(scripts/install-buildkit.sh):$PATH\"")
	}
	ds := benchDaemon(b)
	dir := b.TempDir()
	bin := filepath.Join(dir, "pyrsia-build")
	if out, err := exec.Command("go", "build", "-o", bin, "../cmd/pyrsia-build").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	store := os.Getenv("PYRSIA_IMAGES")
	if store == "" {
		b.Skip("PYRSIA_IMAGES is not set")
	}
	digest, err := image.StoredDigest(store, "maven")
	if err != nil {
		b.Skip(err)
	}
	tarPath, _ := filepath.Abs("../testdata/build/hello-c.tar")
	sum, _ := exec.Command("sha256sum", tarPath).Output()
	specPath := filepath.Join(dir, "spec.yaml")
	os.WriteFile(specPath, []byte(fmt.Sprintf(`version: 1
ecosystem: oci
coordinate: hello-c:1.0
source: {archive: {path: %s, sha256: %s}}
recipe: {oci: {}}
builderImage: {name: maven, digest: %s}
sourceDateEpoch: 1700000000
`, tarPath, string(sum[:64]), digest)), 0o644)
	src := filepath.Join(dir, "src")
	os.MkdirAll(src, 0o755)
	if out, err := exec.Command("tar", "-C", src, "-xf", tarPath).CombinedOutput(); err != nil {
		b.Fatalf("tar: %v %s", err, out)
	}
	env := append(os.Environ(), "COSIGN_PASSWORD=bench")
	run := func(name string, args ...string) {
		cmd := exec.Command(name, args...)
		cmd.Dir, cmd.Env = dir, env
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("%s %v: %v\n%q", name, args, err, out)
		}
	}
	run(bin, "keygen")
	n := 0
	buildctl := func() {
		n++
		out := filepath.Join(dir, fmt.Sprintf("buildctl-%d", n))
		run("buildctl", "--addr", ds.Addr, "build", "--frontend", "dockerfile.v0",
			"--local", "context="+src, "--local", "dockerfile="+src,
			"--opt", "context:maven=oci-layout://img@"+digest, "--oci-layout", "img="+filepath.Join(store, "maven"),
			"--opt", "build-arg:SOURCE_DATE_EPOCH=1700000000", "--opt", "force-network-mode=none", "--opt", "no-cache=",
			"--output", "type=oci,tar=false,rewrite-timestamp=true,dest="+out, "--progress", "quiet")
	}
	// Warm up: the first build imports the builder image into the daemon.
	buildctl()
	b.Run("buildctl", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			buildctl()
		}
	})
	b.Run("pyrsia-build", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			n++
			run(bin, "build", "--key", "cosign.key", "--buildkit-addr", ds.Addr, "--images", store, "--no-cache",
				"--progress", "quiet", "--out", filepath.Join(dir, fmt.Sprintf("pyrsia-%d", n)), specPath)
		}
	})
}

// BenchmarkMavenSample builds the two-module Maven sample (with its unit
// test) cold (--no-cache) and warm (cached steps).
func BenchmarkMavenSample(b *testing.B) {
	needBuildkit(b)
	if os.Getenv("PYRSIA_IMAGES") == "" {
		b.Skip("PYRSIA_IMAGES is not set")
	}
	ds := benchDaemon(b)
	tarPath, _ := filepath.Abs("../testdata/build/hello-maven.tar")
	sum, _ := exec.Command("sha256sum", tarPath).Output()
	digest, err := image.StoredDigest(os.Getenv("PYRSIA_IMAGES"), "maven")
	if err != nil {
		b.Skip(err)
	}
	s, err := builder.ParseSpec([]byte(fmt.Sprintf(`version: 1
ecosystem: maven
coordinate: org.example.hello:hello-app:1.0.0
source: {archive: {path: %s, sha256: %s}}
recipe: {maven: {}}
builderImage: {name: maven, digest: %s}
sourceDateEpoch: 1700000000
`, tarPath, string(sum[:64]), digest)))
	if err != nil {
		b.Fatal(err)
	}
	bk, err := builder.NewBuildKit(context.Background(), ds.Addr)
	if err != nil {
		b.Fatal(err)
	}
	defer bk.Close()
	bk.ProgressMode = "quiet"
	for _, noCache := range []bool{true, false} {
		name := "warm"
		if noCache {
			name = "cold"
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				out := filepath.Join(b.TempDir(), "out")
				if _, err := bk.Build(context.Background(), s, builder.BuildOptions{OutDir: out, Images: os.Getenv("PYRSIA_IMAGES"), NoCache: noCache}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchDaemon(b *testing.B) *builder.Daemon {
	d, err := builder.StartDaemon(context.Background(), builder.DaemonOptions{Dir: filepath.Join(b.TempDir(), "buildkitd")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { d.Stop() })
	return d
}
