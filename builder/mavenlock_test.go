package builder

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

const lockSample = "../testdata/maven-shared-utils/maven.lock.json"

func TestParseLockSample(t *testing.T) {
	data, err := os.ReadFile(lockSample)
	if err != nil {
		t.Fatal(err)
	}
	l, err := ParseLock(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Files) < 100 {
		t.Fatalf("got %d files, want the sample's hundreds", len(l.Files))
	}
	out, err := l.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out, data) {
		t.Fatalf("Marshal does not give back the file 'pyrsia-build lock' wrote")
	}
}

func TestParseLockErrors(t *testing.T) {
	good := `{"coordinate":"org.example:lib:1.0","file":"lib-1.0.jar","sha256":"` + strings.Repeat("a", 64) + `"}`
	doc := func(files ...string) string {
		return `{"version":1,"files":[` + strings.Join(files, ",") + `]}`
	}
	entry := func(coord, file, sum string) string {
		return `{"coordinate":"` + coord + `","file":"` + file + `","sha256":"` + sum + `"}`
	}
	h := strings.Repeat("a", 64)
	for _, tc := range []struct {
		name, data, want string
	}{
		{"not json", "nope", "not a lock"},
		{"version", `{"version":2,"files":[]}`, "version 2"},
		{"unknown field", `{"version":1,"files":[],"repo":"x"}`, "unknown field"},
		{"trailing", doc(good) + "{}", "trailing data"},
		{"bad coordinate", doc(entry("org.example:lib", "lib-1.0.jar", h)), "not groupId:artifactId:version"},
		{"empty group part", doc(entry("org..example:lib:1.0", "lib-1.0.jar", h)), "empty groupId part"},
		{"snapshot", doc(entry("org.example:lib:1.0-SNAPSHOT", "lib-1.0-SNAPSHOT.jar", h)), "snapshot"},
		{"file of another artifact", doc(entry("org.example:lib:1.0", "other-1.0.jar", h)), "is not lib-1.0"},
		{"file with a slash", doc(entry("org.example:lib:1.0", "lib-1.0/../../x.jar", h)), "is not lib-1.0"},
		{"file without extension", doc(entry("org.example:lib:1.0", "lib-1.0", h)), "is not lib-1.0"},
		{"file of a longer version", doc(entry("org.example:lib:1.0", "lib-1.0.1x", h)), ""},
		{"bad sha", doc(entry("org.example:lib:1.0", "lib-1.0.jar", "ABC")), "64 lowercase hex"},
		{"twice", doc(good, good), "listed twice"},
		{"out of order", doc(entry("org.example:lib:1.0", "lib-1.0.pom", h), good), "out of order"},
		{"metadata of a version", doc(entry("org.example:lib:1.0", "maven-metadata.xml", h)), "is not lib-1.0"},
		{"metadata of a group", doc(entry("org.example", "maven-metadata.xml", h)), "not groupId:artifactId:version"},
		{"metadata with a bad group", doc(entry("org..example:lib", "maven-metadata.xml", h)), "not groupId:artifactId"},
		{"metadata other file", doc(entry("org.example:lib", "maven-metadata-central.xml", h)), "not groupId:artifactId:version"},
		{"metadata bad sha", doc(entry("org.example:lib", "maven-metadata.xml", "x")), "64 lowercase hex"},
		// A file of artifact "maven", version "metadata-central", lands
		// where Maven reads the metadata of org.example.maven:
		// metadata-central from the repository "central": the lock's
		// metadata is only ever the one made from its versions.
		{"metadata as a file", doc(entry("org.example:maven:metadata-central", "maven-metadata-central.xml", h)), "Maven's metadata"},
		{"local metadata as a file", doc(entry("org.example:maven:metadata-local", "maven-metadata-local.xml", h)), "Maven's metadata"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseLock([]byte(tc.data))
			if tc.want == "" {
				// "lib-1.0.1x" is lib 1.0 with classifier-less extension "1x":
				// a name Maven could ask for; accepted.
				if err != nil {
					t.Fatalf("got %v, want no error", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "lock: ") {
				t.Fatalf("got %v, want an error starting with \"lock: \" and holding %q", err, tc.want)
			}
		})
	}
}

func FuzzParseLock(f *testing.F) {
	if data, err := os.ReadFile(lockSample); err == nil {
		f.Add(data)
	}
	f.Add([]byte(`{"version":1,"files":[]}`))
	f.Add([]byte(`{"version":1,"files":[{"coordinate":"a:b:1","file":"b-1.jar","sha256":"` + strings.Repeat("0", 64) + `"}]}`))
	if data, err := os.ReadFile("../testdata/version-range/maven.lock.json"); err == nil {
		f.Add(data) // with metadata
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := ParseLock(data)
		if err != nil {
			return
		}
		for _, fl := range l.Files {
			p := fl.Path()
			if strings.Contains(p, "..") || strings.HasPrefix(p, "/") || strings.Contains(p, "//") {
				t.Fatalf("lock entry %+v has path %q outside a repository", fl, p)
			}
			if fl.isMetadata() {
				if ga, ok := metadataCandidate(p); !ok || ga != fl.Coordinate {
					t.Fatalf("metadata path %q of %+v does not read back (%q, %v)", p, fl, ga, ok)
				}
				continue
			}
			if g, ok := lockFileFromPath(p, fl.SHA256); !ok || g != fl {
				t.Fatalf("path %q of %+v does not read back (%+v, %v)", p, fl, g, ok)
			}
		}
		out, err := l.Marshal()
		if err != nil {
			t.Fatalf("a parsed lock does not marshal: %v", err)
		}
		l2, err := ParseLock(out)
		if err != nil {
			t.Fatalf("a marshalled lock does not parse: %v", err)
		}
		if len(l2.Files) != len(l.Files) {
			t.Fatalf("round trip: %d files, want %d", len(l2.Files), len(l.Files))
		}
	})
}

func TestLockFileFromPath(t *testing.T) {
	h := strings.Repeat("b", 64)
	for _, tc := range []struct {
		path string
		want string // coordinate; "" for not locked
	}{
		{"org/apache/apache/29/apache-29.pom", "org.apache:apache:29"},
		{"junit/junit/4.13.2/junit-4.13.2.jar", "junit:junit:4.13.2"},
		{"org/x/lib/1.0/lib-1.0-sources.jar", "org.x:lib:1.0"},
		{"org/x/lib/1.0/lib-1.0.jar.sha1", ""},
		{"org/x/lib/maven-metadata.xml", ""},
		{"org/x/lib/1.0/maven-metadata.xml", ""},
		{"org/x/lib/1.0-SNAPSHOT/lib-1.0-20200101.jar", ""},
		{"lib/1.0/lib-1.0.jar", ""},
	} {
		f, ok := lockFileFromPath(tc.path, h)
		if got := f.Coordinate; !ok && tc.want != "" || ok && got != tc.want {
			t.Errorf("%s: got %q (%v), want %q", tc.path, got, ok, tc.want)
		}
	}
}

// repoServer serves files by repository path, counting requests.
type repoServer struct {
	files map[string][]byte
	hits  atomic.Int64
}

func (s *repoServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.hits.Add(1)
	b, ok := s.files[strings.TrimPrefix(r.URL.Path, "/")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Write(b)
}

func newRepo(t *testing.T, files map[string][]byte) (*repoServer, string) {
	rs := &repoServer{files: files}
	srv := httptest.NewServer(rs)
	t.Cleanup(srv.Close)
	return rs, srv.URL
}

func TestLockRepo(t *testing.T) {
	jar, pom := []byte("jar bytes"), []byte("<project/>")
	lock := &Lock{Version: 1, Files: []LockFile{
		{Coordinate: "org.x:lib:1.0", File: "lib-1.0.jar", SHA256: sha(jar)},
		{Coordinate: "org.x:lib:1.0", File: "lib-1.0.pom", SHA256: sha(pom)},
	}}
	ctx := context.Background()

	t.Run("fetched, checked and cached", func(t *testing.T) {
		rs, url := newRepo(t, map[string][]byte{"org/x/lib/1.0/lib-1.0.jar": jar, "org/x/lib/1.0/lib-1.0.pom": pom})
		cache, dir := t.TempDir(), t.TempDir()
		n, err := lockRepo(ctx, lock, newRepoClient(url), cache, dir, io.Discard)
		if err != nil || n != 2 {
			t.Fatalf("got %d, %v; want 2 fetched", n, err)
		}
		if b, _ := os.ReadFile(filepath.Join(dir, "org/x/lib/1.0/lib-1.0.jar")); !bytes.Equal(b, jar) {
			t.Fatalf("the jar in the repository folder is %q", b)
		}
		// A second build takes both from the cache.
		n, err = lockRepo(ctx, lock, newRepoClient(url), cache, t.TempDir(), io.Discard)
		if err != nil || n != 0 || rs.hits.Load() != 2 {
			t.Fatalf("second run: %d fetched, %d requests, %v; want 0 fetched, 2 requests in all", n, rs.hits.Load(), err)
		}
		// A damaged cache entry is not used: the file is fetched again.
		os.WriteFile(filepath.Join(cache, sha(jar)), []byte("rotten"), 0o644)
		dir3 := t.TempDir()
		n, err = lockRepo(ctx, lock, newRepoClient(url), cache, dir3, io.Discard)
		if err != nil || n != 1 {
			t.Fatalf("damaged cache: %d fetched, %v; want 1 fetched", n, err)
		}
		if b, _ := os.ReadFile(filepath.Join(dir3, "org/x/lib/1.0/lib-1.0.jar")); !bytes.Equal(b, jar) {
			t.Fatalf("with a damaged cache the jar is %q", b)
		}
	})

	t.Run("the repository serves other bytes", func(t *testing.T) {
		_, url := newRepo(t, map[string][]byte{"org/x/lib/1.0/lib-1.0.jar": []byte("evil"), "org/x/lib/1.0/lib-1.0.pom": pom})
		dir := t.TempDir()
		_, err := lockRepo(ctx, lock, newRepoClient(url), "", dir, io.Discard)
		var me *LockMismatchError
		if !errors.As(err, &me) {
			t.Fatalf("got %v, want a *LockMismatchError", err)
		}
		if me.Path != "org/x/lib/1.0/lib-1.0.jar" || me.Want != sha(jar) || me.Got != sha([]byte("evil")) {
			t.Fatalf("got %+v", me)
		}
		for _, want := range []string{"org/x/lib/1.0/lib-1.0.jar", sha(jar), sha([]byte("evil")), "pyrsia-build lock"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not name %s", err, want)
			}
		}
		if _, err := os.Stat(filepath.Join(dir, "org/x/lib/1.0/lib-1.0.jar")); err == nil {
			t.Fatal("the wrong jar was placed in the repository folder")
		}
	})

	t.Run("the repository lacks a file", func(t *testing.T) {
		_, url := newRepo(t, map[string][]byte{"org/x/lib/1.0/lib-1.0.jar": jar})
		_, err := lockRepo(ctx, lock, newRepoClient(url), "", t.TempDir(), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "org/x/lib/1.0/lib-1.0.pom") || !strings.Contains(err.Error(), "404") {
			t.Fatalf("got %v, want an error naming the missing pom and HTTP 404", err)
		}
	})
}

func TestCentralMirror(t *testing.T) {
	settings := func(mirrors string) []byte {
		return []byte(`<settings><mirrors>` + mirrors + `</mirrors></settings>`)
	}
	m := func(id, of, url string) string {
		return `<mirror><id>` + id + `</id><mirrorOf>` + of + `</mirrorOf><url>` + url + `</url></mirror>`
	}
	for _, tc := range []struct {
		name, data, want string
	}{
		{"none", string(settings("")), ""},
		{"http blocker only", string(settings(`<mirror><id>b</id><mirrorOf>external:http:*</mirrorOf><url>http://0.0.0.0/</url><blocked>true</blocked></mirror>`)), ""},
		{"star", string(settings(m("a", "*", "https://a.example/m2"))), "https://a.example/m2"},
		{"exact id first", string(settings(m("a", "*", "https://a.example/") + m("c", "central", "https://c.example/"))), "https://c.example/"},
		{"list", string(settings(m("a", "other,central", "https://a.example/"))), "https://a.example/"},
		{"excluded", string(settings(m("a", "*,!central", "https://a.example/"))), ""},
		{"external", string(settings(m("a", "external:*", "https://a.example/"))), "https://a.example/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, _, err := centralMirror([]byte(tc.data))
			if err != nil || got != tc.want {
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestMavenRepositoryEnv(t *testing.T) {
	t.Setenv(MavenRepoEnv, "https://repo.example/maven2/")
	got, err := MavenRepository()
	if err != nil || got != "https://repo.example/maven2" {
		t.Fatalf("got %q, %v", got, err)
	}
	t.Setenv(MavenRepoEnv, "file:///srv/m2")
	if _, err := MavenRepository(); err == nil || !strings.Contains(err.Error(), "not an http or https URL") {
		t.Fatalf("got %v, want a refusal of a file URL", err)
	}
}

// TestMavenRepositoryFromConfig reads the machine's real Maven
// configuration: with Maven installed it must name an http(s) repository.
func TestMavenRepositoryFromConfig(t *testing.T) {
	t.Setenv(MavenRepoEnv, "")
	if mavenHome() == "" {
		t.Skip("no Maven installation (apt-get install maven)")
	}
	got, err := MavenRepository()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(got, "http://") && !strings.HasPrefix(got, "https://") {
		t.Fatalf("got %q", got)
	}
}

func TestNotLocked(t *testing.T) {
	log := `#4 3.1 [ERROR]     Non-resolvable parent POM for org.apache.maven.shared:maven-shared-utils:3.4.2: Cannot access central (https://x) in offline mode and the artifact org.apache.maven.shared:maven-shared-components:pom:39 has not been downloaded from it before. and 'parent.relativePath' points at wrong local POM @ line 23, column 11
#4 3.2 java.net.UnknownHostException: example.org
`
	err := notLocked(log, errors.New("exit code 1"))
	var nl *NotLockedError
	if !errors.As(err, &nl) {
		t.Fatalf("got %v, want a *NotLockedError", err)
	}
	if len(nl.Artifacts) != 1 || nl.Artifacts[0] != "org.apache.maven.shared:maven-shared-components:pom:39" {
		t.Fatalf("artifacts %q", nl.Artifacts)
	}
	if len(nl.Hosts) != 1 || nl.Hosts[0] != "example.org" {
		t.Fatalf("hosts %q", nl.Hosts)
	}
	if !strings.Contains(err.Error(), "pyrsia-build lock SPEC") {
		t.Fatalf("error %q does not say what to do", err)
	}
	if !strings.Contains(err.Error(), "a build step tried to reach example.org") {
		t.Fatalf("error %q does not name the host", err)
	}

	// Maven names the plugin goal that reached for a host; a range with
	// no locked version is named too.
	log = `[INFO] --- maven-surefire-plugin:3.2.5:test (default-test) @ app ---
java.net.UnknownHostException: api.example.org
[ERROR] Failed to execute goal org.apache.maven.plugins:maven-surefire-plugin:3.2.5:test (default-test) on project app: There are test failures.
[ERROR] Failed to collect dependencies at org.apache.commons:commons-lang3:jar:[3.10,3.13): No versions available for org.apache.commons:commons-lang3:jar:[3.10,3.13) within specified range
`
	err = notLocked(log, errors.New("exit code 1"))
	if !errors.As(err, &nl) || nl.Goal != "org.apache.maven.plugins:maven-surefire-plugin:3.2.5:test" || len(nl.Ranges) != 1 || nl.Ranges[0] != "org.apache.commons:commons-lang3:jar:[3.10,3.13)" {
		t.Fatalf("got %+v", err)
	}
	for _, want := range []string{"the plugin goal org.apache.maven.plugins:maven-surefire-plugin:3.2.5:test tried to reach api.example.org", "finds no version in that range in the lock's metadata", "pyrsia-build lock SPEC"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not hold %q", err, want)
		}
	}
	if notLocked("[ERROR] COMPILATION ERROR", nil) != nil {
		t.Fatal("a compile error was taken for a network reach")
	}
}

func TestSetSpecLock(t *testing.T) {
	spec := `# a comment that stays
version: 1
ecosystem: maven
coordinate: org.x:lib:1.0
source:
  archive: {path: lib.tar, sha256: ` + strings.Repeat("c", 64) + `}
recipe:
  maven:
    goals: [package]   # why package
builderImage: {name: maven, digest: sha256:` + strings.Repeat("d", 64) + `}
sourceDateEpoch: 1700000000
`
	ref := LockRef{Path: "maven.lock.json", SHA256: strings.Repeat("e", 64)}
	out, err := SetSpecLock([]byte(spec), ref)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"# a comment that stays", "# why package"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("lost %q:\n%s", want, out)
		}
	}
	s, err := ParseSpec(out)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Recipe.Maven.Lock; got == nil || *got != ref {
		t.Fatalf("lock %+v, want %+v", got, ref)
	}
	// Again with a new digest: replaced, not added.
	ref.SHA256 = strings.Repeat("f", 64)
	out2, err := SetSpecLock(out, ref)
	if err != nil {
		t.Fatal(err)
	}
	if s, err = ParseSpec(out2); err != nil || *s.Recipe.Maven.Lock != ref {
		t.Fatalf("second lock: %v, %+v", err, s)
	}
	if strings.Count(string(out2), "lock:") != 1 {
		t.Fatalf("lock given twice:\n%s", out2)
	}
	// An OCI spec has no lock.
	oci := strings.Replace(spec, "ecosystem: maven", "ecosystem: oci", 1)
	oci = strings.Replace(oci, "  maven:\n    goals: [package]   # why package", "  oci: {}", 1)
	oci = strings.Replace(oci, "coordinate: org.x:lib:1.0", "coordinate: lib:1.0", 1)
	if _, err := SetSpecLock([]byte(oci), ref); err == nil || !strings.Contains(err.Error(), "recipe.maven") {
		t.Fatalf("got %v, want an error naming recipe.maven", err)
	}
}

// TestRecorder: the resolve phase's mirror forwards to the repository,
// records artifact files with their sha256, not checksums, an artifact's
// metadata as the lock's own (not a group's), and refuses what is not a
// repository path.
func TestRecorder(t *testing.T) {
	jar := []byte("jar")
	_, url := newRepo(t, map[string][]byte{
		"org/x/lib/1.0/lib-1.0.jar":      jar,
		"org/x/lib/1.0/lib-1.0.jar.sha1": []byte("abc"),
		"org/x/lib/maven-metadata.xml":   []byte("<metadata/>"),
		"org/x/maven-metadata.xml":       []byte("<metadata/>"),
	})
	rec := &recorder{client: newRepoClient(url), files: map[string]string{}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	for path, want := range map[string]int{
		"/org/x/lib/1.0/lib-1.0.jar":      200,
		"/org/x/lib/1.0/lib-1.0.jar.sha1": 200,
		"/org/x/lib/maven-metadata.xml":   200,
		"/org/x/maven-metadata.xml":       200,
		"/org/x/lib/1.0/lib-1.0.pom":      404,
		"/org/x/../../etc/passwd":         400,
	} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: HTTP %d, want %d", path, resp.StatusCode, want)
		}
		if path == "/org/x/lib/1.0/lib-1.0.jar" && !bytes.Equal(body, jar) {
			t.Errorf("the jar came through as %q", body)
		}
	}
	l := rec.lock()
	if len(l.Files) != 2 || l.Files[0].Path() != "org/x/lib/1.0/lib-1.0.jar" || l.Files[0].SHA256 != sha(jar) {
		t.Fatalf("lock %+v, want the jar and its metadata", l.Files)
	}
	if m := l.Files[1]; m.Path() != "org/x/lib/maven-metadata.xml" || m.SHA256 != sha(lockMetadata(l, "org.x:lib")) {
		t.Fatalf("lock %+v, want the metadata made from the lock", m)
	}
	if err := l.Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestMavenSamplesPinned: every Maven release sample under testdata parses,
// pins its lock by the lock's real digest, and names a builder image that
// 'pyrsia-build image make' makes.
func TestMavenSamplesPinned(t *testing.T) {
	specs, _ := filepath.Glob("../testdata/maven-*/spec.yaml")
	if len(specs) < 3 {
		t.Fatalf("found %d Maven release samples, want at least 3", len(specs))
	}
	for _, p := range specs {
		t.Run(filepath.Base(filepath.Dir(p)), func(t *testing.T) {
			s, err := ReadSpec(p)
			if err != nil {
				t.Fatal(err)
			}
			r := s.Recipe.Maven
			if r == nil || r.Lock == nil || s.Source.Maven == nil {
				t.Fatalf("%s: want a maven spec with a lock and a source release", p)
			}
			l, err := loadLock(r.Lock, filepath.Dir(p))
			if err != nil {
				t.Fatal(err)
			}
			if len(l.Files) == 0 {
				t.Fatal("empty lock")
			}
			if s.BuilderImage.Name != "maven" && s.BuilderImage.Name != "maven-jdk21" {
				t.Fatalf("builder image %q is not one 'pyrsia-build image make' makes", s.BuilderImage.Name)
			}
		})
	}
}

// TestLoadLockChanged: a lock edited after the spec pinned it is refused
// before anything is fetched.
func TestLoadLockChanged(t *testing.T) {
	dir := t.TempDir()
	data := []byte(`{"version":1,"files":[]}` + "\n")
	os.WriteFile(filepath.Join(dir, "maven.lock.json"), data, 0o644)
	if _, err := loadLock(&LockRef{Path: "maven.lock.json", SHA256: sha(data)}, dir); err != nil {
		t.Fatal(err)
	}
	_, err := loadLock(&LockRef{Path: "maven.lock.json", SHA256: strings.Repeat("0", 64)}, dir)
	if err == nil || !strings.Contains(err.Error(), "the spec pins") || !strings.Contains(err.Error(), "pyrsia-build lock SPEC") {
		t.Fatalf("got %v, want a refusal that says to lock again", err)
	}
	_, err = loadLock(&LockRef{Path: "missing.json", SHA256: sha(data)}, dir)
	if err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Fatalf("got %v, want an error naming the missing lock", err)
	}
}

// TestLockRepoBounded: the lock's files together are bounded (a lock of
// 40,000 of the largest files of a repository would fill the disk),
// whether they are fetched or come from the cache.
func TestLockRepoBounded(t *testing.T) {
	old := maxLockBytes
	t.Cleanup(func() { maxLockBytes = old })
	maxLockBytes = 15
	jar, pom := []byte("jar bytes"), []byte("<project/>")
	lock := &Lock{Version: 1, Files: []LockFile{
		{Coordinate: "org.x:lib:1.0", File: "lib-1.0.jar", SHA256: sha(jar)},
		{Coordinate: "org.x:lib:1.0", File: "lib-1.0.pom", SHA256: sha(pom)},
	}}
	_, url := newRepo(t, map[string][]byte{"org/x/lib/1.0/lib-1.0.jar": jar, "org/x/lib/1.0/lib-1.0.pom": pom})
	cache := t.TempDir()
	for _, run := range []string{"fetched", "cached"} {
		dir := t.TempDir()
		_, err := lockRepo(context.Background(), lock, newRepoClient(url), cache, dir, io.Discard)
		if err == nil || !strings.Contains(err.Error(), "more than 15 bytes at org/x/lib/1.0/lib-1.0.pom") {
			t.Fatalf("%s: got %v, want the lock refused as too large at the pom", run, err)
		}
		if _, err := os.Stat(filepath.Join(dir, "org/x/lib/1.0/lib-1.0.pom")); err == nil {
			t.Fatalf("%s: the file over the bound was placed", run)
		}
		// The first run cached the jar only; cache the pom as well.
		writeCacheEntry(t, pom, filepath.Join(cache, sha(pom)))
	}
}

func writeCacheEntry(t *testing.T, b []byte, dst string) {
	t.Helper()
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
