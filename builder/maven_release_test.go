package builder_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pyrsia/pyrsia-build/builder"
)

// Integration tests of locked Maven builds of a real release from the
// Maven repository this machine's Maven configuration names (Maven
// Central): testdata/maven-shared-utils. They need buildkitd, the maven
// builder image and that repository. Fetched files are cached by sha256 in
// builder.MavenRepoCacheDir, outside the clone, as a speed-up only.

const releaseSpecPath = "../testdata/maven-shared-utils/spec.yaml"

func needRelease(t *testing.T) (*builder.Spec, string) {
	t.Helper()
	needBuildkit(t)
	s, err := builder.ReadSpec(releaseSpecPath)
	if err != nil {
		t.Fatal(err)
	}
	if d := imageDigest(t, imageStore(t), "maven"); d != s.BuilderImage.Digest {
		t.Fatalf("the maven image in the store is %s, %s pins %s: remake the image, or update the spec", d, releaseSpecPath, s.BuilderImage.Digest)
	}
	if _, err := builder.MavenRepository(); err != nil {
		requireInCI(t, err.Error())
	}
	dir, err := filepath.Abs(filepath.Dir(releaseSpecPath))
	if err != nil {
		t.Fatal(err)
	}
	return s, dir
}

func newBK(t *testing.T, d *builder.Daemon) *builder.BuildKit {
	t.Helper()
	bk, err := builder.NewBuildKit(context.Background(), d.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bk.Close() })
	bk.ProgressMode = "quiet"
	return bk
}

// TestMavenReleaseLockAndRebuild is the whole flow: resolve gives the
// committed lock again (releases in the repository do not change), two
// nodes build the release offline from it to identical artifacts, and the
// jar and pom are the official ones, bit for bit.
func TestMavenReleaseLockAndRebuild(t *testing.T) {
	s, dir := needRelease(t)
	ds := twoDaemons(t)
	ctx := context.Background()

	lock, err := newBK(t, ds[0]).Resolve(ctx, s, builder.ResolveOptions{SpecDir: dir, Images: imageStore(t), LogPath: filepath.Join(t.TempDir(), "resolve.log")})
	if err != nil {
		t.Fatal(err)
	}
	committed, err := builder.ReadLock(filepath.Join(dir, s.Recipe.Maven.Lock.Path))
	if err != nil {
		t.Fatal(err)
	}
	assertSameLock(t, releaseSpecPath, committed, lock)

	var wg sync.WaitGroup
	res := make([]*builder.Result, 2)
	outs := make([]string, 2)
	errs := make([]error, 2)
	for i := range ds {
		outs[i] = filepath.Join(t.TempDir(), "out")
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = newBK(t, ds[i]).Build(ctx, s, builder.BuildOptions{OutDir: outs[i], SpecDir: dir, Images: imageStore(t)})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("build on node %d: %v", i, err)
		}
	}
	if len(res[0].Artifacts) != 2 || len(res[1].Artifacts) != 2 {
		t.Fatalf("artifacts %+v and %+v, want the jar and the pom", res[0].Artifacts, res[1].Artifacts)
	}
	for i, a := range res[0].Artifacts {
		if b := res[1].Artifacts[i]; a != b {
			t.Errorf("node 0 built %+v, node 1 %+v", a, b)
		}
	}
	d, err := builder.Diff(ctx, outs[0], outs[1])
	if err != nil || !d.Same {
		t.Fatalf("the two builds differ (%v): %+v", err, d)
	}
	up, err := builder.CompareUpstream(ctx, outs[0], s.Coordinate, "")
	if err != nil {
		t.Fatal(err)
	}
	if !up.Same {
		var sb strings.Builder
		up.Diff.Print(&sb)
		t.Fatalf("the build differs from the official release:\n%s", sb.String())
	}
}

func assertSameLock(t *testing.T, specPath string, want, got *builder.Lock) {
	t.Helper()
	wm := map[string]string{}
	for _, f := range want.Files {
		wm[f.Path()] = f.SHA256
	}
	var diffs []string
	for _, f := range got.Files {
		switch w, ok := wm[f.Path()]; {
		case !ok:
			diffs = append(diffs, "+ "+f.Path())
		case w != f.SHA256:
			diffs = append(diffs, "~ "+f.Path()+" "+w+" -> "+f.SHA256)
		}
		delete(wm, f.Path())
	}
	for p := range wm {
		diffs = append(diffs, "- "+p)
	}
	if len(diffs) > 0 {
		t.Fatalf("resolving again gives another lock than the committed one (%d differences; run 'pyrsia-build lock %s' and review):\n%s", len(diffs), specPath, strings.Join(diffs[:min(len(diffs), 30)], "\n"))
	}
}

// tamperingRepo forwards to the real repository, except that it serves
// other bytes for the paths in evil and 404 for those in missing.
func tamperingRepo(t *testing.T, evil, missing []string) string {
	t.Helper()
	base, err := builder.MavenRepository()
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(u)
		r.Out.Host = u.Host
	}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := strings.TrimPrefix(r.URL.Path, "/")
		for _, e := range evil {
			if p == e {
				w.Write([]byte("not the released bytes"))
				return
			}
		}
		for _, m := range missing {
			if p == m {
				http.NotFound(w, r)
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestMavenLockedBuildBadRepository: a repository that serves other bytes
// than the lock pins, or lacks a pinned file, fails the build before it
// starts, naming the file, with nothing in the output folder. No cache:
// every file comes from the repository.
func TestMavenLockedBuildBadRepository(t *testing.T) {
	s, dir := needRelease(t)
	ds := twoDaemons(t)
	lock, err := builder.ReadLock(filepath.Join(dir, s.Recipe.Maven.Lock.Path))
	if err != nil {
		t.Fatal(err)
	}
	first := lock.Files[0]
	for _, tc := range []struct {
		name           string
		evil, missing  []string
		want           []string
		wantMismatchOf string
	}{
		{name: "other bytes", evil: []string{first.Path()}, wantMismatchOf: first.Path(),
			want: []string{first.Path(), first.SHA256, "pyrsia-build lock SPEC"}},
		{name: "missing", missing: []string{first.Path()},
			want: []string{first.Path(), first.Coordinate, "HTTP 404"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			_, err := newBK(t, ds[0]).Build(context.Background(), s, builder.BuildOptions{
				OutDir: out, SpecDir: dir, Images: imageStore(t),
				MavenRepository: tamperingRepo(t, tc.evil, tc.missing), MavenCache: "-",
			})
			if err == nil {
				t.Fatal("the build succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not hold %q", err, w)
				}
			}
			var me *builder.LockMismatchError
			if tc.wantMismatchOf != "" && (!errors.As(err, &me) || me.Path != tc.wantMismatchOf) {
				t.Errorf("got %v, want a *LockMismatchError for %s", err, tc.wantMismatchOf)
			}
			if des, _ := os.ReadDir(out); len(des) > 0 {
				t.Errorf("the failed build left %d entries in the output folder", len(des))
			}
		})
	}
}

// TestMavenLockedBuildReachesForNetwork: a lock that lacks a file the build
// needs (here the release's parent pom) makes the offline build reach for
// the repository; the error names what it wanted and says to lock again.
func TestMavenLockedBuildReachesForNetwork(t *testing.T) {
	s, dir := needRelease(t)
	ds := twoDaemons(t)
	lock, err := builder.ReadLock(filepath.Join(dir, s.Recipe.Maven.Lock.Path))
	if err != nil {
		t.Fatal(err)
	}
	const parent = "org/apache/maven/shared/maven-shared-components/39/maven-shared-components-39.pom"
	var kept []builder.LockFile
	for _, f := range lock.Files {
		if f.Path() != parent {
			kept = append(kept, f)
		}
	}
	if len(kept) != len(lock.Files)-1 {
		t.Fatalf("the lock has no %s", parent)
	}
	lock.Files = kept
	data, err := lock.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	if err := os.WriteFile(filepath.Join(tmp, "partial.lock.json"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	specData, err := os.ReadFile(releaseSpecPath)
	if err != nil {
		t.Fatal(err)
	}
	specData, err = builder.SetSpecLock(specData, builder.LockRef{Path: "partial.lock.json", SHA256: sha256Hex(data)})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := builder.ParseSpec(specData)
	if err != nil {
		t.Fatal(err)
	}
	_, err = newBK(t, ds[1]).Build(context.Background(), s2, builder.BuildOptions{OutDir: filepath.Join(tmp, "out"), SpecDir: tmp, Images: imageStore(t)})
	var nl *builder.NotLockedError
	if !errors.As(err, &nl) {
		t.Fatalf("got %v, want a *NotLockedError", err)
	}
	if want := "org.apache.maven.shared:maven-shared-components:pom:39"; len(nl.Artifacts) == 0 || nl.Artifacts[0] != want {
		t.Fatalf("the error names %q, want %s", nl.Artifacts, want)
	}
	if !strings.Contains(err.Error(), "pyrsia-build lock SPEC") {
		t.Errorf("error %q does not say what to do", err)
	}
}

// TestMavenSourceReleaseWrongDigest: a source release whose bytes are not
// the spec's pin fails the build before anything runs, naming the file
// and both digests, with nothing in the output folder.
func TestMavenSourceReleaseWrongDigest(t *testing.T) {
	s, dir := needRelease(t)
	ds := twoDaemons(t)
	real := s.Source.Maven.SHA256
	wrong := strings.Repeat("0", 64)
	s.Source.Maven.SHA256 = wrong
	out := filepath.Join(t.TempDir(), "out")
	_, err := newBK(t, ds[0]).Build(context.Background(), s, builder.BuildOptions{OutDir: out, SpecDir: dir, Images: imageStore(t)})
	for _, want := range []string{"source.maven", "maven-shared-utils-3.4.2-source-release.zip", real, wrong} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want an error holding %s", err, want)
		}
	}
	if des, _ := os.ReadDir(out); len(des) > 0 {
		t.Errorf("the failed build left %s (and %d more) in the output folder", des[0].Name(), len(des)-1)
	}
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestMavenJDKNotInImage: a spec that asks for a JDK its builder image
// lacks fails at once, naming the JDK and what to do.
func TestMavenJDKNotInImage(t *testing.T) {
	ds := twoDaemons(t)
	s := spec(t, "hello-maven", "maven", "org.example.hello:hello-app:1.0.0", "  maven: {jdk: 21}", "maven")
	_, _, err := buildOn(t, ds[0], s)
	if err == nil || !strings.Contains(err.Error(), "the builder image has no JDK 21") || !strings.Contains(err.Error(), "recipe.maven.jdk") {
		t.Fatalf("got %v, want an error that the image has no JDK 21", err)
	}
}

// TestMavenNewlineCRLF: recipe.maven.newline crlf reaches the build's
// JVM: the pom.properties maven-archiver writes into each jar (with the
// platform's line separator) has CR LF line ends.
func TestMavenNewlineCRLF(t *testing.T) {
	ds := twoDaemons(t)
	s := spec(t, "hello-maven", "maven", "org.example.hello:hello-app:1.0.0", "  maven: {newline: crlf}", "maven")
	r, out, err := buildOn(t, ds[0], s)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range r.Artifacts {
		if !strings.HasSuffix(a.Name, ".jar") {
			continue
		}
		zr, err := zip.OpenReader(filepath.Join(out, a.Path))
		if err != nil {
			t.Fatal(err)
		}
		var props []byte
		for _, f := range zr.File {
			if strings.HasSuffix(f.Name, "/pom.properties") {
				rc, _ := f.Open()
				props, _ = io.ReadAll(rc)
				rc.Close()
			}
		}
		zr.Close()
		if len(props) == 0 || !strings.Contains(string(props), "\r\n") || strings.Count(string(props), "\n") != strings.Count(string(props), "\r\n") {
			t.Errorf("%s: pom.properties is %q, want CR LF line ends", a.Name, props)
		}
	}
}

// TestMavenCompareUpstreamUnpublished: a build that asks to be compared
// with the official release of a coordinate the repository does not
// publish fails naming the coordinate, and leaves no artifacts behind.
func TestMavenCompareUpstreamUnpublished(t *testing.T) {
	ds := twoDaemons(t)
	s := spec(t, "hello-maven", "maven", "org.example.hello:hello-app:1.0.0", "  maven: {compareUpstream: true}", "maven")
	empty := httptest.NewServer(http.NotFoundHandler())
	defer empty.Close()
	out := filepath.Join(t.TempDir(), "out")
	_, err := newBK(t, ds[0]).Build(context.Background(), s, builder.BuildOptions{OutDir: out, Images: imageStore(t), MavenRepository: empty.URL})
	if err == nil || !strings.Contains(err.Error(), "serves none of the jars") || !strings.Contains(err.Error(), "org/example/hello/hello-app/1.0.0/") {
		t.Fatalf("got %v, want an error that the repository publishes no jar of the coordinate", err)
	}
	if _, err := os.Stat(filepath.Join(out, "artifacts")); err == nil {
		t.Error("the artifacts of a build that failed its comparison were left in the output folder")
	}
	if _, err := os.Stat(filepath.Join(out, "manifest.json")); err == nil {
		t.Error("manifest.json of a build that failed its comparison was left")
	}
}

// TestMavenDefaultArtifactsSkipTestResources: a jar under a target/ folder
// among test resources (maven-install-plugin 3.1.2 has such) is not a
// module's output: the default collection skips it instead of failing on
// the missing pom.xml beside it.
func TestMavenDefaultArtifactsSkipTestResources(t *testing.T) {
	ds := twoDaemons(t)
	dir := t.TempDir()
	if out, err := exec.Command("cp", "-r", "../testdata/build/hello-maven", filepath.Join(dir, "src")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v\n%s", err, out)
	}
	res := filepath.Join(dir, "src", "lib", "src", "test", "resources", "unit", "target")
	if err := os.MkdirAll(res, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(res, "fixture-1.0.jar"), []byte("not a module's jar"), 0o644); err != nil {
		t.Fatal(err)
	}
	tarPath := filepath.Join(dir, "src.tar")
	if out, err := exec.Command("tar", "-C", filepath.Join(dir, "src"), "-cf", tarPath, ".").CombinedOutput(); err != nil {
		t.Fatalf("tar: %v\n%s", err, out)
	}
	s := specFor(t, tarPath, "maven", "org.example.hello:hello-app:1.0.0", "  maven: {}", "maven")
	r, out, err := buildOn(t, ds[0], s)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range r.Artifacts {
		if strings.Contains(a.Name, "fixture") {
			t.Fatalf("published the test resource %s", a.Name)
		}
	}
	var names []string
	for _, a := range r.Artifacts {
		names = append(names, a.Name)
	}
	if want := "hello-app-1.0.0.jar hello-app-1.0.0.pom hello-lib-1.0.0.jar hello-lib-1.0.0.pom hello-parent-1.0.0.pom"; strings.Join(names, " ") != want {
		t.Fatalf("artifacts %q, want the two modules' jars and poms and the parent pom they name: %q", names, want)
	}
	// The parent pom is the source's, as the modules' poms are.
	root, err := os.ReadFile("../testdata/build/hello-maven/pom.xml")
	if err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(filepath.Join(out, "artifacts", "hello-parent-1.0.0.pom")); err != nil || !bytes.Equal(got, root) {
		t.Fatalf("hello-parent-1.0.0.pom: %v, want the source's pom.xml", err)
	}
}
