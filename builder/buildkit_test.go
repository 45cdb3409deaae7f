package builder_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pyrsia/pyrsia-build/builder"
	"github.com/pyrsia/pyrsia-build/builder/image"
)

// Integration tests against real buildkitd daemons. They need buildkitd and
// runc on PATH and root (scripts/install-buildkit.sh). Builder images come
// from PYRSIA_IMAGES (an image store made by 'pyrsia-build image make'), or
// busybox is made here. In CI nothing skips.

func requireInCI(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("CI: %s", reason)
	}
	t.Skip(reason)
}

func needBuildkit(t testing.TB) {
	t.Helper()
	if os.Getuid() != 0 {
		requireInCI(t, "buildkitd needs root")
	}
	for _, bin := range []string{"buildkitd", "runc"} {
		if _, err := exec.LookPath(bin); err != nil {
			requireInCI(t, bin+" is not on PATH: PATH=\"$(scripts/install-buildkit.sh):$PATH\"")
		}
	}
}

var (
	daemonsOnce sync.Once
	daemons     [2]*builder.Daemon
	daemonsErr  error
	storeOnce   sync.Once
	store       string
	storeErr    error
	testRoot    string
)

func TestMain(m *testing.M) {
	var err error
	testRoot, err = os.MkdirTemp("", "pyrsia-builder-test-*")
	if err != nil {
		panic(err)
	}
	code := m.Run()
	for _, d := range daemons {
		if d != nil {
			d.Stop()
		}
	}
	os.RemoveAll(testRoot)
	os.Exit(code)
}

// twoDaemons starts two buildkitd with separate roots: no shared cache.
func twoDaemons(t *testing.T) [2]*builder.Daemon {
	needBuildkit(t)
	daemonsOnce.Do(func() {
		for i := range daemons {
			daemons[i], daemonsErr = builder.StartDaemon(context.Background(), builder.DaemonOptions{Dir: filepath.Join(testRoot, fmt.Sprintf("buildkitd-%d", i))})
			if daemonsErr != nil {
				return
			}
		}
	})
	if daemonsErr != nil {
		t.Fatal(daemonsErr)
	}
	return daemons
}

// imageStore returns a store with busybox (and, from PYRSIA_IMAGES, the
// Debian build image when it was made).
func imageStore(t *testing.T) string {
	storeOnce.Do(func() {
		if s := os.Getenv("PYRSIA_IMAGES"); s != "" {
			store = s
			return
		}
		store = filepath.Join(testRoot, "images")
		_, storeErr = image.MakeBusybox(context.Background(), store, nil)
	})
	if storeErr != nil {
		t.Fatal(storeErr)
	}
	return store
}

func imageDigest(t *testing.T, store, name string) string {
	t.Helper()
	d, err := image.StoredDigest(store, name)
	if err != nil {
		if name == "maven" {
			requireInCI(t, "no maven builder image in the store: set PYRSIA_IMAGES to a store made with 'pyrsia-build image make maven'")
		}
		t.Fatal(err)
	}
	return d
}

// spec returns a spec for a sample of testdata/build, pinned to an image.
func spec(t *testing.T, sample, ecosystem, coordinate, recipe, imageName string) *builder.Spec {
	t.Helper()
	tarPath, err := filepath.Abs(filepath.Join("..", "testdata", "build", sample+".tar"))
	if err != nil {
		t.Fatal(err)
	}
	return specFor(t, tarPath, ecosystem, coordinate, recipe, imageName)
}

// specFor returns a spec whose source is the archive at tarPath.
func specFor(t *testing.T, tarPath, ecosystem, coordinate, recipe, imageName string) *builder.Spec {
	t.Helper()
	sum, err := exec.Command("sha256sum", tarPath).Output()
	if err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf(`version: 1
ecosystem: %s
coordinate: %s
source:
  archive:
    path: %s
    sha256: %s
recipe:
%s
builderImage:
  name: %s
  digest: %s
sourceDateEpoch: 1700000000
`, ecosystem, coordinate, tarPath, strings.Fields(string(sum))[0], recipe, imageName, imageDigest(t, imageStore(t), imageName))
	s, err := builder.ParseSpec([]byte(text))
	if err != nil {
		t.Fatalf("spec: %v\n%s", err, text)
	}
	return s
}

// adhocSpec packs files (name → content) into a source archive and returns
// an oci spec that builds it in imageName.
func adhocSpec(t *testing.T, files map[string]string, imageName string) *builder.Spec {
	t.Helper()
	dir := t.TempDir()
	names := make([]string, 0, len(files))
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		names = append(names, name)
	}
	return specFor(t, packTar(t, dir, names...), "oci", "adhoc:1", "  oci: {}", imageName)
}

// packTar tars names from dir into a new archive and returns its path.
func packTar(t *testing.T, dir string, names ...string) string {
	t.Helper()
	tarPath := filepath.Join(t.TempDir(), "src.tar")
	if out, err := exec.Command("tar", append([]string{"-C", dir, "-cf", tarPath}, names...)...).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	return tarPath
}

// buildOn builds s on daemon d into a new output folder.
func buildOn(t *testing.T, d *builder.Daemon, s *builder.Spec) (*builder.Result, string, error) {
	t.Helper()
	bk, err := builder.NewBuildKit(context.Background(), d.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer bk.Close()
	bk.ProgressMode = "quiet"
	out := filepath.Join(t.TempDir(), "out")
	res, err := bk.Build(context.Background(), s, builder.BuildOptions{OutDir: out, Images: imageStore(t)})
	return res, out, err
}

func TestIrreproducibleBuildIsExplained(t *testing.T) {
	ds := twoDaemons(t)
	s := spec(t, "build-time", "oci", "build-time:1.0", "  oci: {}", "busybox")
	resA, outA, err := buildOn(t, ds[0], s)
	if err != nil {
		t.Fatal(err)
	}
	resB, outB, err := buildOn(t, ds[1], s)
	if err != nil {
		t.Fatal(err)
	}
	if resA.Artifacts[0].Digest == resB.Artifacts[0].Digest {
		t.Fatalf("two builds that embed the time gave one digest %s", resA.Artifacts[0].Digest)
	}
	d, err := builder.Diff(context.Background(), outA, outB)
	if err != nil {
		t.Fatal(err)
	}
	if d.Same || len(d.Artifacts) != 1 {
		t.Fatalf("diff: got %+v, want one differing artifact", d)
	}
	changed := strings.Join(d.Artifacts[0].Changed, " ")
	if !strings.Contains(changed, "app/build-time.txt") || strings.Contains(changed, "stable.txt") {
		t.Fatalf("diff names %q, want app/build-time.txt and not stable.txt", changed)
	}
}

func TestNetworkIsOff(t *testing.T) {
	ds := twoDaemons(t)
	s := adhocSpec(t, map[string]string{"Dockerfile": "FROM busybox\nRUN ls /sys/class/net > /interfaces\n"}, "busybox")
	_, out, err := buildOn(t, ds[0], s)
	if err != nil {
		t.Fatal(err)
	}
	m, err := builder.ReadManifest(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range m.Artifacts[0].Files {
		if f.Path == "interfaces" {
			found = true
			if f.Size != int64(len("lo\n")) {
				t.Fatalf("the build saw network interfaces other than lo (%d bytes of names)", f.Size)
			}
		}
	}
	if !found {
		t.Fatal("the build's /interfaces file is missing from the output manifest")
	}
}

func TestSourceDigestMismatch(t *testing.T) {
	ds := twoDaemons(t)
	s := spec(t, "build-time", "oci", "build-time:1.0", "  oci: {}", "busybox")
	s.Source.Archive.SHA256 = strings.Repeat("0", 64)
	_, _, err := buildOn(t, ds[0], s)
	if err == nil || !strings.Contains(err.Error(), "the spec pins "+strings.Repeat("0", 64)) {
		t.Fatalf("got %v, want a source digest mismatch", err)
	}
}

func TestFailingBuildShowsLogTail(t *testing.T) {
	ds := twoDaemons(t)
	s := adhocSpec(t, map[string]string{"Dockerfile": "FROM busybox\nRUN echo compiling && echo 'main.c:3: error: expected ; before }' && false\n"}, "busybox")
	_, _, err := buildOn(t, ds[0], s)
	var be *builder.BuildError
	if !errors.As(err, &be) {
		t.Fatalf("got %v, want a BuildError", err)
	}
	if !strings.Contains(err.Error(), "main.c:3: error: expected ; before }") {
		t.Fatalf("the error does not show the end of the build log:\n%s", err)
	}
}

func TestReproducibleC(t *testing.T) {
	ds := twoDaemons(t)
	s := spec(t, "hello-c", "oci", "hello-c:1.0", "  oci: {}", "maven")
	assertReproducible(t, ds, s)
}

func TestReproducibleMaven(t *testing.T) {
	ds := twoDaemons(t)
	s := spec(t, "hello-maven", "maven", "org.example.hello:hello-app:1.0.0", "  maven: {}", "maven")
	res := assertReproducible(t, ds, s)
	var names []string
	for _, a := range res.Artifacts {
		names = append(names, a.Name)
	}
	got := strings.Join(names, " ")
	for _, want := range []string{"hello-lib-1.0.0.jar", "hello-lib-1.0.0.pom", "hello-app-1.0.0.jar", "hello-app-1.0.0.pom", "hello-parent-1.0.0.pom"} {
		if !strings.Contains(got, want) {
			t.Errorf("artifacts %q lack %s", got, want)
		}
	}
}

func assertReproducible(t *testing.T, ds [2]*builder.Daemon, s *builder.Spec) *builder.Result {
	t.Helper()
	resA, outA, err := buildOn(t, ds[0], s)
	if err != nil {
		t.Fatal(err)
	}
	resB, outB, err := buildOn(t, ds[1], s)
	if err != nil {
		t.Fatal(err)
	}
	if len(resA.Artifacts) != len(resB.Artifacts) || len(resA.Artifacts) == 0 {
		t.Fatalf("artifacts: %d vs %d", len(resA.Artifacts), len(resB.Artifacts))
	}
	for i := range resA.Artifacts {
		if resA.Artifacts[i].Digest != resB.Artifacts[i].Digest {
			d, _ := builder.Diff(context.Background(), outA, outB)
			var sb strings.Builder
			if d != nil {
				d.Print(&sb)
			}
			t.Fatalf("%s: %s on one daemon, %s on the other\n%s", resA.Artifacts[i].Name, resA.Artifacts[i].Digest, resB.Artifacts[i].Digest, sb.String())
		}
	}
	return resA
}

func TestCompileErrorShowsLogTail(t *testing.T) {
	ds := twoDaemons(t)
	s := adhocSpec(t, map[string]string{
		"Dockerfile": "FROM maven\nCOPY broken.c /src/\nRUN gcc -o /broken /src/broken.c\n",
		"broken.c":   "int main(void) {\n\treturn 0\n}\n",
	}, "maven")
	_, _, err := buildOn(t, ds[0], s)
	var be *builder.BuildError
	if !errors.As(err, &be) {
		t.Fatalf("got %v, want a BuildError", err)
	}
	// gcc's own message, from the end of the build log.
	if !strings.Contains(err.Error(), "broken.c:2") || !strings.Contains(err.Error(), "error: expected") {
		t.Fatalf("the error does not show the compiler's message:\n%s", err)
	}
}

// TestGitSource builds from a git repository pinned by commit.
func TestGitSource(t *testing.T) {
	ds := twoDaemons(t)
	repo := t.TempDir()
	git := func(args ...string) string {
		cmd := exec.Command("git", append([]string{"-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.com"}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	os.WriteFile(filepath.Join(repo, "Dockerfile"), []byte("FROM busybox\nCOPY msg.txt /msg.txt\n"), 0o644)
	os.WriteFile(filepath.Join(repo, "msg.txt"), []byte("pinned\n"), 0o644)
	git("add", ".")
	git("commit", "-q", "-m", "one")
	commit := git("rev-parse", "HEAD")
	os.WriteFile(filepath.Join(repo, "msg.txt"), []byte("later\n"), 0o644)
	git("commit", "-q", "-am", "two")

	s, err := builder.ParseSpec([]byte(fmt.Sprintf(`version: 1
ecosystem: oci
coordinate: git-sample:1
source: {git: {url: %s, commit: %s}}
recipe: {oci: {}}
builderImage: {name: busybox, digest: %s}
sourceDateEpoch: 1700000000
`, "file://"+repo, commit, imageDigest(t, imageStore(t), "busybox"))))
	if err != nil {
		t.Fatal(err)
	}
	res, out, err := buildOn(t, ds[0], s)
	if err != nil {
		t.Fatal(err)
	}
	if res.SourceDigest != "gitCommit:"+commit {
		t.Fatalf("source digest %q, want gitCommit:%s", res.SourceDigest, commit)
	}
	m, err := builder.ReadManifest(filepath.Join(out, "manifest.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range m.Artifacts[0].Files {
		if f.Path == "msg.txt" && f.Size != int64(len("pinned\n")) {
			t.Fatalf("the build used msg.txt of %d bytes, not the pinned commit's", f.Size)
		}
	}

	s.Source.Git.Commit = strings.Repeat("0", 40)
	if _, _, err := buildOn(t, ds[0], s); err == nil || !strings.Contains(err.Error(), "commit "+strings.Repeat("0", 40)) {
		t.Fatalf("unknown commit: got %v", err)
	}
}

// TestOnlyPinnedSources checks that a build reads nothing from outside but
// its source and the pinned builder image: BuildKit's own fetches (another
// image, ADD of a URL) are denied by the source policy, not just unreachable.
func TestOnlyPinnedSources(t *testing.T) {
	ds := twoDaemons(t)
	for _, tc := range []struct{ name, dockerfile string }{
		{"another image", "FROM alpine:3.20\nRUN true\n"},
		{"ADD of a URL", "FROM busybox\nADD https://example.invalid/payload /payload\n"},
		{"COPY from an image", "FROM busybox\nCOPY --from=debian:12 /etc/os-release /x\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := adhocSpec(t, map[string]string{"Dockerfile": tc.dockerfile}, "busybox")
			_, _, err := buildOn(t, ds[0], s)
			if err == nil || !strings.Contains(err.Error(), "denied by policy") {
				t.Fatalf("got %v, want the source policy to deny it", err)
			}
		})
	}
}

// TestContextSymlinkStaysInside: a build context that is a symlink out of
// the source tree must not make a host folder the build context.
func TestContextSymlinkStaysInside(t *testing.T) {
	ds := twoDaemons(t)
	dir := t.TempDir()
	os.Symlink("/etc", filepath.Join(dir, "ctx"))
	s := specFor(t, packTar(t, dir, "ctx"), "oci", "escape:1", "  oci: {context: ctx}", "busybox")
	_, _, err := buildOn(t, ds[0], s)
	if err == nil || !strings.Contains(err.Error(), "leads outside the source") {
		t.Fatalf("got %v, want the context refused", err)
	}
}
