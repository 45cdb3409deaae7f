package builder_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pyrsia/pyrsia-build/builder"
)

// buildUncheckedOn builds s on d without validating it first.
func buildUncheckedOn(t *testing.T, d *builder.Daemon, s *builder.Spec) error {
	t.Helper()
	bk, err := builder.NewBuildKit(context.Background(), d.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer bk.Close()
	bk.ProgressMode = "quiet"
	_, err = bk.BuildUnchecked(context.Background(), s, builder.BuildOptions{OutDir: filepath.Join(t.TempDir(), "out"), Images: imageStore(t)})
	return err
}

// TestCacheMountsNotShared: one spec writes into a cache mount; another
// spec naming the same cache id on the same buildkitd must not see it, nor
// must a rebuild of the first spec, nor a spec that skipped validation and
// sets BUILDKIT_CACHE_MOUNT_NS to share a namespace.
func TestCacheMountsNotShared(t *testing.T) {
	ds := twoDaemons(t)
	const (
		write = "FROM busybox\nRUN --mount=type=cache,id=shared,target=/c,sharing=shared test ! -e /c/poison && echo poison > /c/poison\n"
		read  = "FROM busybox\nRUN --mount=type=cache,id=shared,target=/c,sharing=shared test ! -e /c/poison\nRUN echo read\n"
	)
	writer := adhocSpec(t, map[string]string{"Dockerfile": write}, "busybox")
	first, _, err := buildOn(t, ds[0], writer)
	if err != nil {
		t.Fatalf("writer: %v", err)
	}
	if _, _, err := buildOn(t, ds[0], adhocSpec(t, map[string]string{"Dockerfile": read}, "busybox")); err != nil {
		t.Fatalf("another spec saw the first spec's cache mount: %v", err)
	}
	again, _, err := buildOn(t, ds[0], writer)
	if err != nil {
		t.Fatalf("a rebuild saw its earlier run's cache mount: %v", err)
	}
	// The per-build namespace does not reach the image.
	if first.Artifacts[0].Digest != again.Artifacts[0].Digest {
		t.Fatalf("two builds of one spec with a cache mount differ: %s, %s", first.Artifacts[0].Digest, again.Artifacts[0].Digest)
	}

	ns := func(s *builder.Spec) *builder.Spec {
		s.Recipe.OCI.BuildArgs = map[string]string{"BUILDKIT_CACHE_MOUNT_NS": "shared-ns"}
		return s
	}
	if err := buildUncheckedOn(t, ds[0], ns(adhocSpec(t, map[string]string{"Dockerfile": write}, "busybox"))); err != nil {
		t.Fatalf("writer with a namespace: %v", err)
	}
	if err := buildUncheckedOn(t, ds[0], ns(adhocSpec(t, map[string]string{"Dockerfile": read}, "busybox"))); err != nil {
		t.Fatalf("BUILDKIT_CACHE_MOUNT_NS shared a cache mount: %v", err)
	}
}

// TestNoBuildCacheShared: a step's result is never taken from another
// build's run of it: the same step in another spec runs again.
func TestNoBuildCacheShared(t *testing.T) {
	ds := twoDaemons(t)
	// The step's output differs from its text: "pyrsia-step-42" shows that
	// it ran.
	files := func(marker string) map[string]string {
		return map[string]string{"Dockerfile": "FROM busybox\nRUN echo pyrsia-step-$((40+2))\n", "marker": marker}
	}
	if _, _, err := buildOn(t, ds[0], adhocSpec(t, files("a"), "busybox")); err != nil {
		t.Fatal(err)
	}
	_, out, err := buildOn(t, ds[0], adhocSpec(t, files("b"), "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(out, "build.log"))
	if err != nil {
		t.Fatal(err)
	}
	if log := string(b); !strings.Contains(log, "pyrsia-step-42") {
		t.Fatalf("the second spec's step came from the cache:\n%s", log)
	}
}

// TestSyntaxLineFetchesNothing: a "# syntax=" line does not make BuildKit
// fetch a frontend image: the built-in Dockerfile frontend builds it.
func TestSyntaxLineFetchesNothing(t *testing.T) {
	ds := twoDaemons(t)
	for _, ref := range []string{"docker/dockerfile:1.7", "frontend.example.invalid/evil:1"} {
		t.Run(ref, func(t *testing.T) {
			s := adhocSpec(t, map[string]string{"Dockerfile": "# syntax=" + ref + "\nFROM busybox\nRUN true\n"}, "busybox")
			if _, _, err := buildOn(t, ds[0], s); err != nil {
				t.Fatalf("got %v, want the built-in frontend to build it", err)
			}
		})
	}
}

// TestBuildkitSyntaxArgFetchesNothing: BUILDKIT_SYNTAX is refused in a
// spec, and a spec that skipped validation does not make BuildKit fetch
// the frontend it names either.
func TestBuildkitSyntaxArgFetchesNothing(t *testing.T) {
	ds := twoDaemons(t)
	s := adhocSpec(t, map[string]string{"Dockerfile": "FROM busybox\nRUN true\n"}, "busybox")
	s.Recipe.OCI.BuildArgs = map[string]string{"BUILDKIT_SYNTAX": "frontend.example.invalid/evil:1"}
	if _, _, err := buildOn(t, ds[0], s); err == nil || !strings.Contains(err.Error(), "recipe.oci.buildArgs.BUILDKIT_SYNTAX: is not allowed") {
		t.Fatalf("got %v, want the build arg refused", err)
	}
	if err := buildUncheckedOn(t, ds[0], s); err != nil {
		t.Fatalf("got %v, want the built-in frontend to build it", err)
	}
}
