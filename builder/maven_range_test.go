package builder_test

import (
	"archive/zip"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pyrsia/pyrsia-build/builder"
)

const rangeSpecPath = "../testdata/version-range/spec.yaml"

// credentialedMirror is a Maven repository on loopback that forwards to
// the real one (read from the machine's Maven configuration) and answers
// only requests with the basic-auth user and password.
type credentialedMirror struct {
	URL            string
	served, denied atomic.Int64
}

func newCredentialedMirror(t *testing.T, user, pass string) *credentialedMirror {
	t.Helper()
	base, err := builder.MavenRepository()
	if err != nil {
		requireInCI(t, err.Error())
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	proxy := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(u)
		r.Out.Host = u.Host
		r.Out.Header.Del("Authorization") // the mirror's, not upstream's
	}}
	m := &credentialedMirror{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			m.denied.Add(1)
			w.Header().Set("WWW-Authenticate", `Basic realm="mirror"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		m.served.Add(1)
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	m.URL = srv.URL
	return m
}

// TestMavenVersionRangeLockedBuild: a project with a dependency version
// range locks (the lock holds the artifact's metadata as the build will
// see it) and builds offline from its lock, with the range resolved to the
// locked version. Everything comes through a mirror that needs basic auth,
// whose credentials are in a settings.xml found where the machine's Maven
// configuration is looked for (~/.m2 of a home folder of the test's own):
// resolve and the build's fetches of the locked files use them.
func TestMavenVersionRangeLockedBuild(t *testing.T) {
	needBuildkit(t)
	ds := twoDaemons(t) // before HOME changes: the daemons outlive this test
	s, err := builder.ReadSpec(rangeSpecPath)
	if err != nil {
		t.Fatal(err)
	}
	if d := imageDigest(t, imageStore(t), "maven"); d != s.BuilderImage.Digest {
		t.Fatalf("the maven image in the store is %s, %s pins %s: remake the image, or update the spec", d, rangeSpecPath, s.BuilderImage.Digest)
	}
	dir, err := filepath.Abs(filepath.Dir(rangeSpecPath))
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 16)
	rand.Read(key)
	pass := hex.EncodeToString(key)
	mirror := newCredentialedMirror(t, "pyrsia-test", pass)

	home := t.TempDir()
	os.MkdirAll(filepath.Join(home, ".m2"), 0o755)
	settings := `<settings>
  <servers><server><id>range-test-mirror</id><username>pyrsia-test</username><password>${env.PYRSIA_RANGE_TEST_PASSWORD}</password></server></servers>
  <mirrors><mirror><id>range-test-mirror</id><mirrorOf>*</mirrorOf><url>` + mirror.URL + `</url></mirror></mirrors>
</settings>
`
	if err := os.WriteFile(filepath.Join(home, ".m2", "settings.xml"), []byte(settings), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PYRSIA_RANGE_TEST_PASSWORD", pass)
	t.Setenv("HOME", home)
	t.Setenv("XDG_CACHE_HOME", filepath.Join(home, ".cache")) // a cold cache
	t.Setenv(builder.MavenRepoEnv, "")
	if got, err := builder.MavenRepository(); err != nil || got != mirror.URL {
		t.Fatalf("the Maven configuration names %q (%v), want the test's mirror", got, err)
	}
	ctx := context.Background()

	logPath := filepath.Join(t.TempDir(), "resolve.log")
	lock, err := newBK(t, ds[0]).Resolve(ctx, s, builder.ResolveOptions{SpecDir: dir, Images: imageStore(t), LogPath: logPath})
	if err != nil {
		t.Fatal(err)
	}
	if n := mirror.denied.Load(); n > 0 || mirror.served.Load() == 0 {
		t.Fatalf("the mirror served %d requests and refused %d: want all with the settings' credentials", mirror.served.Load(), n)
	}
	var metadata, versions []string
	for _, f := range lock.Files {
		if strings.HasPrefix(f.Coordinate, "org.apache.commons:commons-lang3") {
			if f.File == "maven-metadata.xml" {
				metadata = append(metadata, f.Path())
			} else if strings.HasSuffix(f.File, ".jar") {
				versions = append(versions, f.Coordinate)
			}
		}
	}
	// 3.12.0 is the highest in [3.10,3.13); a plugin needs 3.14.0 (out of
	// the range, so the build cannot pick it). No other version has a jar
	// in the lock: a build that resolved the range to another one would
	// fail offline instead of compiling.
	if len(metadata) != 1 || strings.Join(versions, " ") != "org.apache.commons:commons-lang3:3.12.0 org.apache.commons:commons-lang3:3.14.0" {
		t.Fatalf("the lock holds metadata %q and jars %q of commons-lang3, want its metadata and the jars of 3.12.0 (the highest in [3.10,3.13)) and 3.14.0", metadata, versions)
	}
	committed, err := builder.ReadLock(filepath.Join(dir, s.Recipe.Maven.Lock.Path))
	if err != nil {
		t.Fatal(err)
	}
	assertSameLock(t, rangeSpecPath, committed, lock)

	// The build: offline, no cache, so every locked file comes through the
	// mirror with the credentials; the range resolves from the lock alone.
	served := mirror.served.Load()
	out := filepath.Join(t.TempDir(), "out")
	res, err := newBK(t, ds[1]).Build(ctx, s, builder.BuildOptions{OutDir: out, SpecDir: dir, Images: imageStore(t), MavenCache: "-"})
	if err != nil {
		t.Fatal(err)
	}
	if mirror.served.Load() == served || mirror.denied.Load() > 0 {
		t.Fatalf("the build's fetches: %d served, %d refused", mirror.served.Load()-served, mirror.denied.Load())
	}
	if len(res.Artifacts) != 2 || res.Artifacts[0].Name != "range-app-1.0.0.jar" {
		t.Fatalf("artifacts %+v, want the jar and the pom", res.Artifacts)
	}
	zr, err := zip.OpenReader(filepath.Join(out, "artifacts", "range-app-1.0.0.jar"))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	if _, err := zr.Open("org/example/range/Hello.class"); err != nil {
		t.Fatalf("the jar has no Hello.class: %v", err)
	}
	for _, p := range []string{logPath, filepath.Join(out, "build.log")} {
		if b, _ := os.ReadFile(p); strings.Contains(string(b), pass) {
			t.Fatalf("%s shows the mirror's password", p)
		}
	}
}
