package serve

import (
	"archive/zip"
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pyrsia/pyrsia-build/publish/index"
	"github.com/pyrsia/pyrsia-build/publish/store"
)

// Real Maven (Debian's 3.8.7) against the repository, on a loopback
// listener. Maven's plugins come from Debian's offline repository
// (/usr/share/maven-repo, a file:// plugin repository); every artifact
// comes from the node: the settings mirror every other repository to it,
// so Maven reaches nothing else. Install: apt-get install
// mavenDebianPackages (scripts/install-debian-deps.sh). In CI nothing
// skips.

const debianMavenRepo = "/usr/share/maven-repo"

// mavenPlugins are the plugins the tests run, as Debian packages them.
var mavenPlugins = []string{
	"org/apache/maven/plugins/maven-dependency-plugin/3.5.0",
	"org/apache/maven/plugins/maven-compiler-plugin/3.10.1",
	"org/apache/maven/plugins/maven-resources-plugin/3.3.0",
}

// mavenDebianPackages hold mvn, javac and the plugins with their
// dependencies (junit 4 and junit 5's BOM among them).
const mavenDebianPackages = "maven openjdk-17-jdk-headless libmaven-dependency-plugin-java libmaven-compiler-plugin-java libmaven-resources-plugin-java junit4 junit5"

func requireInCI(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("CI: %s", reason)
	}
	t.Skip(reason)
}

func needMaven(t testing.TB) {
	t.Helper()
	const install = "apt-get install " + mavenDebianPackages + " (scripts/install-debian-deps.sh)"
	for _, bin := range []string{"mvn", "javac"} {
		if _, err := exec.LookPath(bin); err != nil {
			requireInCI(t, bin+" is not on PATH: "+install)
		}
	}
	for _, p := range append(mavenPlugins, "junit/junit/4.x", "org/junit/junit-bom/debian") {
		if _, err := os.Stat(filepath.Join(debianMavenRepo, p)); err != nil {
			requireInCI(t, "Debian's Maven repository lacks "+p+": "+install)
		}
	}
}

// accessLog records the paths a server was asked for.
type accessLog struct {
	mu    sync.Mutex
	paths []string
}

func (l *accessLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		l.mu.Lock()
		l.paths = append(l.paths, r.Method+" "+r.URL.Path)
		l.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (l *accessLog) all() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.paths)
}

func (l *accessLog) has(req string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Contains(l.paths, req)
}

// helloLib compiles a library of one class for version and returns its
// jar and pom.
func helloLib(t *testing.T, version string) (jar, pom []byte) {
	t.Helper()
	dir := t.TempDir()
	src := filepath.Join(dir, "src", "org", "example", "hello", "Greeting.java")
	if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
		t.Fatal(err)
	}
	code := "package org.example.hello;\n\npublic class Greeting {\n" +
		"    public static String hello(String name) { return \"hello, \" + name + \" (" + version + ")\"; }\n}\n"
	if err := os.WriteFile(src, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	classes := filepath.Join(dir, "classes")
	if out, err := exec.Command("javac", "--release", "17", "-d", classes, src).CombinedOutput(); err != nil {
		t.Fatalf("javac: %v\n%s", err, out)
	}
	class, err := os.ReadFile(filepath.Join(classes, "org", "example", "hello", "Greeting.class"))
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	z := zip.NewWriter(&b)
	for _, f := range []struct {
		name string
		data []byte
	}{
		{"META-INF/MANIFEST.MF", []byte("Manifest-Version: 1.0\r\nCreated-By: pyrsia-build test\r\n\r\n")},
		{"org/example/hello/Greeting.class", class},
	} {
		w, err := z.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: time.Date(2023, 11, 14, 22, 13, 20, 0, time.UTC)})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(f.data)
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	pom = []byte(`<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>org.example</groupId>
  <artifactId>hello-lib</artifactId>
  <version>` + version + `</version>
  <packaging>jar</packaging>
</project>
`)
	return b.Bytes(), pom
}

// mavenClient runs mvn against a node serving the published versions of
// org.example:hello-lib.
type mavenClient struct {
	t        *testing.T
	dir      string
	settings string
	global   string
	plugins  string // a local repository holding the plugins only
	log      *accessLog
}

func newMavenClient(t *testing.T, versions ...string) *mavenClient {
	t.Helper()
	needMaven(t)
	// The node: a real index of entries, and its own store holding the
	// files (each checked against its digest on the way in).
	x, err := index.New()
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.TempDir(), store.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for i, v := range versions {
		jar, pom := helloLib(t, v)
		files := map[string][]byte{"hello-lib-" + v + ".jar": jar, "hello-lib-" + v + ".pom": pom}
		for _, b := range files {
			if err := st.Put(context.Background(), digestOf(b), int64(len(b)), bytes.NewReader(b)); err != nil {
				t.Fatal(err)
			}
		}
		if err := x.Add(uint64(i), mavenEntry(t, "org.example:hello-lib:"+v, files)); err != nil {
			t.Fatal(err)
		}
	}
	repo := NewMaven(MavenOptions{Index: x, Content: StoreContent{Store: st}, Logger: quiet, Hint: "pyrsia-build publish SPEC --node ADDR"})
	log := &accessLog{}
	mux := http.NewServeMux()
	mux.Handle(MavenPrefix, repo)
	srv := httptest.NewServer(log.wrap(mux))
	t.Cleanup(srv.Close)

	c := &mavenClient{t: t, dir: t.TempDir(), log: log}
	c.settings = filepath.Join(c.dir, "settings.xml")
	c.global = filepath.Join(c.dir, "global-settings.xml")
	c.plugins = filepath.Join(c.dir, "plugins")
	settings := `<settings>
  <mirrors>
    <mirror>
      <id>pyrsia-node</id>
      <mirrorOf>*,!debian</mirrorOf>
      <url>` + srv.URL + `/maven2/</url>
    </mirror>
  </mirrors>
  <profiles>
    <profile>
      <id>debian-plugins</id>
      <pluginRepositories>
        <pluginRepository>
          <id>debian</id>
          <url>file://` + debianMavenRepo + `</url>
          <releases><checksumPolicy>ignore</checksumPolicy></releases>
        </pluginRepository>
      </pluginRepositories>
    </profile>
  </profiles>
  <activeProfiles><activeProfile>debian-plugins</activeProfile></activeProfiles>
</settings>
`
	if err := os.WriteFile(c.settings, []byte(settings), 0o644); err != nil {
		t.Fatal(err)
	}
	// No global settings: not the machine's mirrors, proxies or servers.
	if err := os.WriteFile(c.global, []byte("<settings/>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Debian's repository has no checksum files, which strict checksums
	// (-C) refuse: the plugins are resolved once without -C, into a
	// repository that then seeds each test's local repository. Every
	// artifact of the node is then fetched with -C.
	var goals []string
	for _, p := range mavenPlugins {
		parts := strings.Split(p, "/")
		n := len(parts)
		goals = append(goals, strings.Join(parts[:n-2], ".")+":"+parts[n-2]+":"+parts[n-1]+":help")
	}
	c.mvn(c.plugins, c.dir, false, goals...)
	if asked := log.all(); len(asked) > 0 {
		t.Fatalf("resolving the plugins asked the node for %q: they must all come from %s", asked, debianMavenRepo)
	}
	return c
}

// mvn runs mvn with the node's settings and the local repository repo in
// dir, with strict checksums if strict.
func (c *mavenClient) mvn(repo, dir string, strict bool, args ...string) string {
	c.t.Helper()
	all := []string{"-B", "-e", "-s", c.settings, "-gs", c.global, "-Dmaven.repo.local=" + repo}
	if strict {
		all = append(all, "-C")
	}
	cmd := exec.Command("mvn", append(all, args...)...)
	cmd.Dir = dir
	// HOME: not the user's ~/.m2 or ~/.mavenrc.
	cmd.Env = append(os.Environ(), "HOME="+c.dir, "MAVEN_OPTS=", "MAVEN_ARGS=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		c.t.Fatalf("mvn %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// localRepo returns a fresh local repository holding the plugins only.
func (c *mavenClient) localRepo(name string) string {
	c.t.Helper()
	repo := filepath.Join(c.dir, name)
	if err := os.CopyFS(repo, os.DirFS(c.plugins)); err != nil {
		c.t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(repo, "org", "example")); err == nil {
		c.t.Fatal("the plugins' repository holds org/example")
	}
	return repo
}

// fromNode checks that the local repository got version's jar and pom of
// hello-lib from the node, and that Maven asked the node for them and their
// .sha1 checksums.
func (c *mavenClient) fromNode(repo, version string) {
	c.t.Helper()
	dir := filepath.Join(repo, "org", "example", "hello-lib", version)
	remote, err := os.ReadFile(filepath.Join(dir, "_remote.repositories"))
	if err != nil {
		c.t.Fatal(err)
	}
	for _, ext := range []string{"jar", "pom"} {
		name := "hello-lib-" + version + "." + ext
		if !strings.Contains(string(remote), name+">pyrsia-node=") {
			c.t.Errorf("%s: %s not from pyrsia-node:\n%s", dir, name, remote)
		}
		path := "/maven2/org/example/hello-lib/" + version + "/" + name
		for _, p := range []string{path, path + ".sha1"} {
			if !c.log.has("GET " + p) {
				c.t.Errorf("the node was not asked for %s (asked: %q)", p, c.log.all())
			}
		}
	}
	// Nothing in the local repository came from another repository than
	// the node and Debian's.
	filepath.WalkDir(repo, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.Name() != "_remote.repositories" {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, line := range strings.Split(string(b), "\n") {
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if !strings.HasSuffix(line, ">pyrsia-node=") && !strings.HasSuffix(line, ">debian=") {
				c.t.Errorf("%s: %q is from another repository", path, line)
			}
		}
		return nil
	})
}

func TestMavenClientDependencyGet(t *testing.T) {
	c := newMavenClient(t, "1.0.0")
	repo := c.localRepo("get")
	c.mvn(repo, c.dir, true, "org.apache.maven.plugins:maven-dependency-plugin:3.5.0:get", "-Dartifact=org.example:hello-lib:1.0.0")
	c.fromNode(repo, "1.0.0")
	jar, _ := helloLib(t, "1.0.0")
	got, err := os.ReadFile(filepath.Join(repo, "org", "example", "hello-lib", "1.0.0", "hello-lib-1.0.0.jar"))
	if err != nil {
		t.Fatal(err)
	}
	// javac is reproducible and the jar's times are fixed: the same jar.
	if !bytes.Equal(got, jar) {
		t.Error("the jar in the local repository is not the published one")
	}

	// An artifact the node does not have fails, naming the node.
	cmd := exec.Command("mvn", "-B", "-C", "-s", c.settings, "-gs", c.global, "-Dmaven.repo.local="+repo,
		"org.apache.maven.plugins:maven-dependency-plugin:3.5.0:get", "-Dartifact=org.example:hello-lib:9.9")
	cmd.Dir, cmd.Env = c.dir, append(os.Environ(), "HOME="+c.dir)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "pyrsia-node") {
		t.Errorf("mvn dependency:get of an unpublished version: %v\n%s", err, out)
	}
}

// TestMavenClientProjects: projects whose poms depend on the published jar,
// at a version and through a version range, compile against it; and
// RELEASE resolves to the newest release.
func TestMavenClientProjects(t *testing.T) {
	c := newMavenClient(t, "1.0.0", "1.5.0", "2.0.0")
	t.Run("release", func(t *testing.T) {
		c.t = t
		repo := c.localRepo("repo-release")
		c.mvn(repo, c.dir, true, "org.apache.maven.plugins:maven-dependency-plugin:3.5.0:get", "-Dartifact=org.example:hello-lib:RELEASE")
		c.fromNode(repo, "2.0.0")
		for _, v := range []string{"1.0.0", "1.5.0"} {
			if _, err := os.Stat(filepath.Join(repo, "org", "example", "hello-lib", v)); err == nil {
				t.Errorf("RELEASE fetched %s too", v)
			}
		}
	})
	for _, tc := range []struct {
		name, dependency, resolved string
	}{
		{"version", "1.0.0", "1.0.0"},
		{"range", "[1.0,2.0)", "1.5.0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			dir := filepath.Join(c.dir, "project-"+tc.name)
			src := filepath.Join(dir, "src", "main", "java", "org", "example", "app", "Main.java")
			if err := os.MkdirAll(filepath.Dir(src), 0o755); err != nil {
				t.Fatal(err)
			}
			pom := `<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>org.example</groupId>
  <artifactId>app</artifactId>
  <version>1.0</version>
  <properties>
    <project.build.sourceEncoding>UTF-8</project.build.sourceEncoding>
    <maven.compiler.release>17</maven.compiler.release>
  </properties>
  <dependencies>
    <dependency>
      <groupId>org.example</groupId>
      <artifactId>hello-lib</artifactId>
      <version>` + tc.dependency + `</version>
    </dependency>
  </dependencies>
  <build>
    <plugins>
      <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-resources-plugin</artifactId><version>3.3.0</version></plugin>
      <plugin><groupId>org.apache.maven.plugins</groupId><artifactId>maven-compiler-plugin</artifactId><version>3.10.1</version></plugin>
    </plugins>
  </build>
</project>
`
			main := "package org.example.app;\n\nimport org.example.hello.Greeting;\n\npublic class Main {\n" +
				"    public static void main(String[] args) { System.out.println(Greeting.hello(\"maven\")); }\n}\n"
			if err := os.WriteFile(filepath.Join(dir, "pom.xml"), []byte(pom), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(src, []byte(main), 0o644); err != nil {
				t.Fatal(err)
			}
			repo := c.localRepo("repo-" + tc.name)
			c.mvn(repo, dir, true, "compile")
			if _, err := os.Stat(filepath.Join(dir, "target", "classes", "org", "example", "app", "Main.class")); err != nil {
				t.Fatalf("compile made no Main.class: %v", err)
			}
			c.fromNode(repo, tc.resolved)
			for _, v := range []string{"1.0.0", "1.5.0", "2.0.0"} {
				_, err := os.Stat(filepath.Join(repo, "org", "example", "hello-lib", v, "hello-lib-"+v+".jar"))
				if got := err == nil; got != (v == tc.resolved) {
					t.Errorf("local repository has the %s jar: %v, want %v", v, got, v == tc.resolved)
				}
			}
			if tc.name == "range" {
				for _, p := range []string{"/maven2/org/example/hello-lib/maven-metadata.xml", "/maven2/org/example/hello-lib/maven-metadata.xml.sha1"} {
					if !c.log.has("GET " + p) {
						t.Errorf("the node was not asked for %s", p)
					}
				}
			}
		})
	}
}
