package builder

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseSpecMavenFieldErrors(t *testing.T) {
	h := strings.Repeat("a", 64)
	lock := "  maven:\n    lock: {path: maven.lock.json, sha256: " + h + "}"
	src := "  archive:\n    path: hello.tar.gz\n    sha256: " + testSHA + "\n"
	for _, tt := range []struct {
		name, spec, field, msg string
	}{
		{"lock path upward", edit(t, mavenSpec, "  maven: {}", edit(t, lock, "maven.lock.json", "../x.json")), "recipe.maven.lock.path", "leaves the source folder"},
		{"lock path absolute", edit(t, mavenSpec, "  maven: {}", edit(t, lock, "maven.lock.json", "/etc/x.json")), "recipe.maven.lock.path", "relative path"},
		{"lock sha missing", edit(t, mavenSpec, "  maven: {}", "  maven:\n    lock: {path: maven.lock.json}"), "recipe.maven.lock.sha256", "pyrsia-build lock SPEC"},
		{"lock sha short", edit(t, mavenSpec, "  maven: {}", edit(t, lock, h, "abc")), "recipe.maven.lock.sha256", "64 lowercase hex"},
		{"jdk too small", edit(t, mavenSpec, "  maven: {}", "  maven: {jdk: 5}"), "recipe.maven.jdk", "not a JDK major version"},
		{"jdk a string", edit(t, mavenSpec, "  maven: {}", "  maven: {jdk: seventeen}"), "recipe.maven.jdk", "want an integer"},
		{"umask not octal", edit(t, mavenSpec, "  maven: {}", "  maven: {umask: \"089\"}"), "recipe.maven.umask", "3 octal digits"},
		{"newline cr", edit(t, mavenSpec, "  maven: {}", "  maven: {newline: cr}"), "recipe.maven.newline", `"cr" is not a newline style: use lf or crlf`},
		{"newline upper case", edit(t, mavenSpec, "  maven: {}", "  maven: {newline: CRLF}"), "recipe.maven.newline", "use lf or crlf"},
		{"newline escaped", edit(t, mavenSpec, "  maven: {}", "  maven: {newline: \"\\r\\n\"}"), "recipe.maven.newline", "use lf or crlf"},
		{"maven source and archive", edit(t, mavenSpec, src, src+"  maven: {coordinate: a:b:1, sha256: "+h+"}\n"), "source", "more than one"},
		{"maven source coordinate", edit(t, mavenSpec, src, "  maven: {coordinate: a:b, sha256: "+h+"}\n"), "source.maven", "not groupId:artifactId:version"},
		{"maven source file of another artifact", edit(t, mavenSpec, src, "  maven: {coordinate: a:b:1, file: c-1-src.zip, sha256: "+h+"}\n"), "source.maven", "is not b-1"},
		{"maven source not an archive", edit(t, mavenSpec, src, "  maven: {coordinate: a:b:1, file: b-1.jar, sha256: "+h+"}\n"), "source.maven.file", "does not end in"},
		{"maven source sha missing", edit(t, mavenSpec, src, "  maven: {coordinate: a:b:1}\n"), "source.maven.sha256", "missing"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSpec([]byte(tt.spec))
			var se *SpecError
			if !errors.As(err, &se) || se.Field != tt.field || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("got %v, want a spec error of field %s holding %q", err, tt.field, tt.msg)
			}
		})
	}
}

// TestMavenFieldsInInputDigest: the lock's digest, the JDK and the umask
// are inputs; a spec without them keeps the digest it had.
func TestMavenFieldsInInputDigest(t *testing.T) {
	base, err := ParseSpec([]byte(mavenSpec))
	if err != nil {
		t.Fatal(err)
	}
	d0, _ := base.InputDigest()
	seen := map[string]string{d0: "no lock"}
	for name, recipe := range map[string]string{
		"lock a":  "  maven:\n    lock: {path: maven.lock.json, sha256: " + strings.Repeat("a", 64) + "}",
		"lock b":  "  maven:\n    lock: {path: maven.lock.json, sha256: " + strings.Repeat("b", 64) + "}",
		"jdk 21":  "  maven: {jdk: 21}",
		"umask 2": "  maven: {umask: \"002\"}",
		"crlf":    "  maven: {newline: crlf}",
	} {
		s, err := ParseSpec([]byte(edit(t, mavenSpec, "  maven: {}", recipe)))
		if err != nil {
			t.Fatal(err)
		}
		d, _ := s.InputDigest()
		if other, dup := seen[d]; dup {
			t.Fatalf("%s and %s have one input digest", name, other)
		}
		seen[d] = name
		if c := s.clone(); c.Recipe.Maven.Lock != nil && c.Recipe.Maven.Lock == s.Recipe.Maven.Lock {
			t.Fatal("clone shares the lock reference")
		}
	}
}

// TestMavenNewline: "lf" is the JVM's own separator and so the same
// build as no newline (one input digest); "crlf" gives the build's JVMs
// CR LF, which a real java launcher takes from the option as it is given.
func TestMavenNewline(t *testing.T) {
	digest := func(recipe string) (string, *Spec) {
		t.Helper()
		s, err := ParseSpec([]byte(edit(t, mavenSpec, "  maven: {}", recipe)))
		if err != nil {
			t.Fatal(err)
		}
		d, err := s.InputDigest()
		if err != nil {
			t.Fatal(err)
		}
		return d, s
	}
	none, _ := digest("  maven: {}")
	lf, _ := digest("  maven: {newline: lf}")
	crlf, s := digest("  maven: {newline: crlf}")
	if lf != none {
		t.Errorf("newline: lf has input digest %s, no newline %s: want one", lf, none)
	}
	if crlf == none {
		t.Error("newline: crlf has the input digest of no newline")
	}
	c, err := s.CanonicalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(c), `"newline":"crlf"`) {
		t.Errorf("canonical JSON %s lacks the newline", c)
	}
	if got := newlines[s.Recipe.Maven.Newline]; got != "\r\n" {
		t.Fatalf("crlf gives the separator %q", got)
	}

	// The option the build sets, read by a real java launcher.
	java, err := exec.LookPath("java")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("CI: java is not on PATH (the machine's Maven needs one: apt-get install maven)")
		}
		t.Skip("java is not on PATH (apt-get install maven)")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "Sep.java")
	os.WriteFile(src, []byte(`public class Sep { public static void main(String[] a) { for (char c : System.lineSeparator().toCharArray()) System.out.print((int) c + " "); } }`), 0o644)
	for sep, want := range map[string]string{"\r\n": "13 10 ", "\n": "10 "} {
		cmd := exec.Command(java, src)
		cmd.Env = append(os.Environ(), "JDK_JAVA_OPTIONS="+javaLineSeparatorOpt(sep))
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("java: %v", err)
		}
		if string(out) != want {
			t.Errorf("separator %q: the JVM's line.separator is %q, want %q", sep, out, want)
		}
	}
}

func TestCompareUpstream(t *testing.T) {
	ctx := context.Background()
	zipBytes := func(files []zipFile) []byte {
		p := filepath.Join(t.TempDir(), "x.jar")
		writeZip(t, p, files)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	jar := zipBytes([]zipFile{{name: "META-INF/MANIFEST.MF", body: "Manifest-Version: 1.0\nBuild-Jdk-Spec: 17\n"}, {name: "a/A.class", body: "cafe"}})
	other := zipBytes([]zipFile{{name: "META-INF/MANIFEST.MF", body: "Manifest-Version: 1.0\nBuild-Jdk-Spec: 21\n"}, {name: "a/A.class", body: "cafe"}})
	pom := []byte("<project/>\n")
	out := t.TempDir()
	os.MkdirAll(filepath.Join(out, "artifacts"), 0o755)
	m := &OutputManifest{Version: 1}
	for name, b := range map[string][]byte{"lib-1.0.jar": jar, "lib-1.0.pom": pom, "lib-1.0-tests.jar": jar} {
		p := filepath.Join(out, "artifacts", name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		am, err := ManifestFile(ctx, name, p)
		if err != nil {
			t.Fatal(err)
		}
		am.Path = "artifacts/" + name
		m.Artifacts = append(m.Artifacts, am)
	}
	if err := WriteManifest(filepath.Join(out, "manifest.json"), m); err != nil {
		t.Fatal(err)
	}
	const dir = "org/x/lib/1.0/"

	t.Run("matches", func(t *testing.T) {
		_, url := newRepo(t, map[string][]byte{dir + "lib-1.0.jar": jar, dir + "lib-1.0.pom": pom})
		res, err := CompareUpstream(ctx, out, "org.x:lib:1.0", url)
		if err != nil {
			t.Fatal(err)
		}
		if !res.Same || res.Official["lib-1.0.jar"] != "sha256:"+sha(jar) {
			t.Fatalf("got %+v, want the same, with the official digests", res)
		}
		if len(res.Unpublished) != 1 || res.Unpublished[0] != "lib-1.0-tests.jar" {
			t.Fatalf("unpublished %q, want the tests jar", res.Unpublished)
		}
	})
	t.Run("differs", func(t *testing.T) {
		_, url := newRepo(t, map[string][]byte{dir + "lib-1.0.jar": other, dir + "lib-1.0.pom": pom})
		res, err := CompareUpstream(ctx, out, "org.x:lib:1.0", url)
		if err != nil {
			t.Fatal(err)
		}
		if res.Same {
			t.Fatal("a jar with another manifest is the same")
		}
		var sb strings.Builder
		res.Diff.Print(&sb)
		for _, want := range []string{"changed: META-INF/MANIFEST.MF", "-Build-Jdk-Spec: 17", "+Build-Jdk-Spec: 21", "lib-1.0.pom: identical"} {
			if !strings.Contains(sb.String(), want) {
				t.Errorf("report lacks %q:\n%s", want, sb.String())
			}
		}
	})
	t.Run("no published jar", func(t *testing.T) {
		_, url := newRepo(t, map[string][]byte{dir + "lib-1.0.pom": pom})
		_, err := CompareUpstream(ctx, out, "org.x:lib:1.0", url)
		if err == nil || !strings.Contains(err.Error(), "serves none of the jars") || !strings.Contains(err.Error(), dir) {
			t.Fatalf("got %v, want an error that the repository has no jar", err)
		}
	})
}

func TestMavenPURL(t *testing.T) {
	for _, tc := range []struct{ file, want string }{
		{"lib-1.0.jar", "pkg:maven/org.x/lib@1.0"},
		{"lib-1.0.pom", "pkg:maven/org.x/lib@1.0?type=pom"},
		{"lib-1.0-source-release.zip", "pkg:maven/org.x/lib@1.0?classifier=source-release&type=zip"},
		{"lib-1.0-tests.jar", "pkg:maven/org.x/lib@1.0?classifier=tests&type=jar"},
	} {
		if got := mavenPURL(LockFile{Coordinate: "org.x:lib:1.0", File: tc.file}); got != tc.want {
			t.Errorf("%s: got %s, want %s", tc.file, got, tc.want)
		}
	}
}

// TestProvenanceMaven: a locked build from a source release names the
// source and the lock as resolved dependencies, and a build compared with
// the official release records each official file's digest and whether it
// matched, as byproducts.
func TestProvenanceMaven(t *testing.T) {
	h := strings.Repeat("a", 64)
	spec := edit(t, mavenSpec, "  archive:\n    path: hello.tar.gz\n    sha256: "+testSHA+"\n", "  maven: {coordinate: \"org.example:hello:1.0\", sha256: "+h+"}\n")
	spec = edit(t, spec, "  maven: {}", "  maven:\n    compareUpstream: true\n    lock: {path: maven.lock.json, sha256: "+strings.Repeat("b", 64)+"}")
	s, err := ParseSpec([]byte(spec))
	if err != nil {
		t.Fatal(err)
	}
	if !s.Recipe.Maven.CompareUpstream {
		t.Fatal("compareUpstream: true did not parse")
	}
	jarSHA, otherSHA := strings.Repeat("c", 64), strings.Repeat("d", 64)
	res := &Result{
		InputDigest: "sha256:" + h, Coordinate: s.Coordinate, SourceDigest: "sha256:" + h, BuilderImageDigest: testDigest,
		Artifacts: []Artifact{{Name: "hello-1.0.jar", Digest: "sha256:" + jarSHA}, {Name: "hello-1.0.pom", Digest: "sha256:" + jarSHA}},
		Upstream: &UpstreamResult{Coordinate: s.Coordinate, Official: map[string]string{"hello-1.0.jar": "sha256:" + jarSHA, "hello-1.0.pom": "sha256:" + otherSHA},
			Diff: &DiffResult{Artifacts: []ArtifactDiff{
				{Name: "hello-1.0.jar", DigestA: "sha256:" + jarSHA, DigestB: "sha256:" + jarSHA},
				{Name: "hello-1.0.pom", DigestA: "sha256:" + jarSHA, DigestB: "sha256:" + otherSHA},
			}}},
	}
	_, prov, err := Provenance(s, res, "urn:test", time.Unix(1, 0), time.Unix(2, 0))
	if err != nil {
		t.Fatal(err)
	}
	deps := map[string]string{}
	for _, d := range prov.BuildDefinition.ResolvedDependencies {
		deps[d.Uri] = d.Digest["sha256"]
	}
	if deps["pkg:maven/org.example/hello@1.0?classifier=source-release&type=zip"] != h || deps["maven.lock.json"] != strings.Repeat("b", 64) {
		t.Fatalf("resolved dependencies %v lack the source release or the lock", deps)
	}
	bp := prov.RunDetails.Byproducts
	if len(bp) != 2 {
		t.Fatalf("%d byproducts, want the official jar and pom", len(bp))
	}
	for _, b := range bp {
		match := b.Annotations.AsMap()["matchesBuild"]
		switch b.Name {
		case "hello-1.0.jar":
			if b.Digest["sha256"] != jarSHA || match != true {
				t.Errorf("jar byproduct %v, want the official digest and a match", b)
			}
		case "hello-1.0.pom":
			if b.Digest["sha256"] != otherSHA || match != false {
				t.Errorf("pom byproduct %v, want the official digest and no match", b)
			}
		}
	}
	if _, err := ParseSpec([]byte(edit(t, spec, "compareUpstream: true", "compareUpstream: yes please"))); err == nil || !strings.Contains(err.Error(), "true or false") {
		t.Fatalf("got %v, want a refusal of a non-boolean", err)
	}
}

// TestFetchMavenSource: a source release comes from the repository,
// checked against its pin, and unpacks without its top-level folder; a
// wrong digest is refused naming the file and both digests.
func TestFetchMavenSource(t *testing.T) {
	zipPath := filepath.Join(t.TempDir(), "lib-1.0-source-release.zip")
	writeZip(t, zipPath, []zipFile{{name: "lib-1.0/pom.xml", body: "<project/>"}, {name: "lib-1.0/src/A.java", body: "class A {}"}})
	zipData, err := os.ReadFile(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	_, url := newRepo(t, map[string][]byte{"org/x/lib/1.0/lib-1.0-source-release.zip": zipData})
	ctx := context.Background()
	dst := t.TempDir()
	got, err := fetchMavenSource(ctx, &MavenSource{Coordinate: "org.x:lib:1.0", SHA256: sha(zipData)}, mavenRepoOpts{base: url, cache: "-"}, dst, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got != "sha256:"+sha(zipData) {
		t.Fatalf("source digest %s", got)
	}
	if b, err := os.ReadFile(filepath.Join(dst, "pom.xml")); err != nil || string(b) != "<project/>" {
		t.Fatalf("pom.xml at the source root: %q, %v", b, err)
	}
	wrong := strings.Repeat("0", 64)
	_, err = fetchMavenSource(ctx, &MavenSource{Coordinate: "org.x:lib:1.0", SHA256: wrong}, mavenRepoOpts{base: url, cache: "-"}, t.TempDir(), nil)
	for _, want := range []string{"source.maven", "lib-1.0-source-release.zip", sha(zipData), wrong} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want an error holding %s", err, want)
		}
	}
	_, err = fetchMavenSource(ctx, &MavenSource{Coordinate: "org.x:lib:2.0", SHA256: wrong}, mavenRepoOpts{base: url, cache: "-"}, t.TempDir(), nil)
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("got %v, want a 404 for a release that is not there", err)
	}
}

// TestCompareUpstreamStaysInTheCoordinate: the build's own code names its
// outputs; a name that is not a file of the coordinate (here one whose
// escaped slashes a repository decodes, reaching another artifact's
// official jar) is not fetched, so it cannot be passed off as the
// official release.
func TestCompareUpstreamStaysInTheCoordinate(t *testing.T) {
	ctx := context.Background()
	p := filepath.Join(t.TempDir(), "x.jar")
	writeZip(t, p, []zipFile{{name: "META-INF/MANIFEST.MF", body: "Manifest-Version: 1.0\n"}})
	otherJar, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	pom := []byte("<project/>\n")
	out := t.TempDir()
	os.MkdirAll(filepath.Join(out, "artifacts"), 0o755)
	m := &OutputManifest{Version: 1}
	const sneaky = "..%2F..%2Fother%2F1.0%2Fother-1.0.jar"
	for name, b := range map[string][]byte{sneaky: otherJar, "lib-1.0.pom": pom} {
		p := filepath.Join(out, "artifacts", name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		am, err := ManifestFile(ctx, name, p)
		if err != nil {
			t.Fatal(err)
		}
		am.Path = "artifacts/" + name
		m.Artifacts = append(m.Artifacts, am)
	}
	if err := WriteManifest(filepath.Join(out, "manifest.json"), m); err != nil {
		t.Fatal(err)
	}
	// A repository that cleans the (decoded) path, as file servers do.
	files := map[string][]byte{"org/x/lib/1.0/lib-1.0.pom": pom, "org/x/other/1.0/other-1.0.jar": otherJar}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := files[strings.TrimPrefix(path.Clean(r.URL.Path), "/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	defer srv.Close()
	res, err := CompareUpstream(ctx, out, "org.x:lib:1.0", srv.URL)
	if err == nil {
		t.Fatalf("got %+v (official %v), want an error: the build made no jar of org.x:lib:1.0", res, res.Official)
	}
	if !strings.Contains(err.Error(), "serves none of the jars") {
		t.Fatalf("got %v, want an error that the repository serves no jar the build made", err)
	}
}
