package builder

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/pyrsia/pyrsia-build/attest"
)

const (
	testCommit = "5f3c2a0e9d1b7c4a8e6f2d0b9a7c5e3f1d2b4a6c"
	testSHA    = "0f4b7e2a9c1d3e5f6a8b0c2d4e6f8a1b3c5d7e9f0a2b4c6d8e0f1a3b5c7d9e1f"
	testDigest = "sha256:9ae97d36d26566ff84e8893c64a6dc4fe8ca6d1144bf5b87b2b85a32def253c7"
)

const ociSpec = `version: 1
ecosystem: oci
coordinate: hello:1.0
source:
  git:
    url: https://example.com/hello.git
    commit: ` + testCommit + `
recipe:
  oci: {}
builderImage:
  name: busybox
  digest: ` + testDigest + `
sourceDateEpoch: 1700000000
`

const mavenSpec = `version: 1
ecosystem: maven
coordinate: org.example:hello:1.0
source:
  archive:
    path: hello.tar.gz
    sha256: ` + testSHA + `
recipe:
  maven: {}
builderImage:
  name: maven
  digest: ` + testDigest + `
sourceDateEpoch: 1700000000
`

// edit replaces old with new in s once, failing the test if old is absent.
func edit(t *testing.T, s, old, new string) string {
	t.Helper()
	if !strings.Contains(s, old) {
		t.Fatalf("edit: %q not in spec", old)
	}
	return strings.Replace(s, old, new, 1)
}

func TestParseSpecErrors(t *testing.T) {
	tests := []struct {
		name  string
		spec  string
		field string // the SpecError's Field
		msg   string // a part of the error message
	}{
		{"empty", "", "", "empty document"},
		{"comment only", "# nothing\n", "", "empty document"},
		{"not a mapping", "- a\n- b\n", "", "want a mapping"},
		{"bad yaml", "version: [1\n", "", "not valid YAML"},
		{"two documents", ociSpec + "---\nversion: 1\n", "", "more than one YAML document"},
		{"unknown top field", ociSpec + "extra: 1\n", "extra", "unknown field"},
		{"unknown nested field", edit(t, ociSpec, "oci: {}", "oci: {dockerfil: x}"), "recipe.oci.dockerfil", "unknown field"},
		{"unknown git field", edit(t, ociSpec, "    url:", "    branch: main\n    url:"), "source.git.branch", "unknown field"},
		{"case matters", edit(t, ociSpec, "sourceDateEpoch", "sourcedateepoch"), "sourcedateepoch", "unknown field"},
		{"duplicate key", ociSpec + "version: 1\n", "version", "given twice"},
		{"version missing", edit(t, ociSpec, "version: 1\n", ""), "version", "missing"},
		{"version 2", edit(t, ociSpec, "version: 1", "version: 2"), "version", "not supported"},
		{"version string", edit(t, ociSpec, "version: 1", `version: "1"`), "version", "want an integer"},
		{"version float", edit(t, ociSpec, "version: 1", `version: 1.0`), "version", "want an integer"},
		{"ecosystem missing", edit(t, ociSpec, "ecosystem: oci\n", ""), "ecosystem", "missing"},
		{"ecosystem bad", edit(t, ociSpec, "ecosystem: oci", "ecosystem: npm"), "ecosystem", `"npm" is not oci or maven`},
		{"coordinate missing", edit(t, ociSpec, "coordinate: hello:1.0\n", ""), "coordinate", "missing"},
		{"oci coordinate no tag", edit(t, ociSpec, "hello:1.0", "hello"), "coordinate", "not name:tag"},
		{"oci coordinate upper", edit(t, ociSpec, "hello:1.0", "Hello:1.0"), "coordinate", "not name:tag"},
		{"oci coordinate maven shape", edit(t, ociSpec, "hello:1.0", "org.example:hello:1.0"), "coordinate", "not name:tag"},
		{"oci coordinate empty tag", edit(t, ociSpec, "hello:1.0", "'hello:'"), "coordinate", "not name:tag"},
		{"maven coordinate two parts", edit(t, mavenSpec, "org.example:hello:1.0", "hello:1.0"), "coordinate", "not groupId:artifactId:version"},
		{"maven coordinate four parts", edit(t, mavenSpec, "org.example:hello:1.0", "org.example:hello:jar:1.0"), "coordinate", "not groupId:artifactId:version"},
		{"maven coordinate space", edit(t, mavenSpec, "org.example:hello:1.0", "org example:hello:1.0"), "coordinate", "not groupId:artifactId:version"},
		{"source missing", edit(t, ociSpec, "source:\n  git:\n    url: https://example.com/hello.git\n    commit: "+testCommit+"\n", ""), "source", "missing"},
		{"source empty", edit(t, ociSpec, "source:\n  git:\n    url: https://example.com/hello.git\n    commit: "+testCommit+"\n", "source: {}\n"), "source", "missing"},
		{"git and archive", edit(t, ociSpec, "  git:", "  archive: {path: a.tar, sha256: "+testSHA+"}\n  git:"), "source", "more than one of git, archive and maven"},
		{"git url missing", edit(t, ociSpec, "    url: https://example.com/hello.git\n", ""), "source.git.url", "missing"},
		{"git url bad scheme", edit(t, ociSpec, "https://example.com/hello.git", "ftp://example.com/hello.git"), "source.git.url", "not an https"},
		{"git url dash", edit(t, ociSpec, "https://example.com/hello.git", "--upload-pack=x"), "source.git.url", "leading dash"},
		{"git url a mapping", edit(t, ociSpec, "https://example.com/hello.git", "{a: b}"), "source.git.url", "want a string, got a mapping"},
		{"commit missing", edit(t, ociSpec, "    commit: "+testCommit+"\n", ""), "source.git.commit", "missing"},
		{"commit short", edit(t, ociSpec, testCommit, testCommit[:12]), "source.git.commit", "not a full commit id"},
		{"commit upper", edit(t, ociSpec, testCommit, strings.ToUpper(testCommit)), "source.git.commit", "not a full commit id"},
		{"commit 41", edit(t, ociSpec, testCommit, testCommit+"a"), "source.git.commit", "not a full commit id"},
		{"archive no path or url", edit(t, mavenSpec, "    path: hello.tar.gz\n", ""), "source.archive", "missing path or url"},
		{"archive path and url", edit(t, mavenSpec, "    path: hello.tar.gz\n", "    path: hello.tar.gz\n    url: https://example.com/hello.tar.gz\n"), "source.archive", "both path and url"},
		{"archive bad extension", edit(t, mavenSpec, "hello.tar.gz", "hello.rar"), "source.archive.path", "does not end in"},
		{"archive url not http", edit(t, mavenSpec, "    path: hello.tar.gz", "    url: file:///tmp/hello.tar.gz"), "source.archive.url", "not an http or https URL"},
		{"archive url bad extension", edit(t, mavenSpec, "    path: hello.tar.gz", "    url: https://example.com/hello"), "source.archive.url", "does not end in"},
		{"archive sha missing", edit(t, mavenSpec, "    sha256: "+testSHA+"\n", ""), "source.archive.sha256", "missing"},
		{"archive sha short", edit(t, mavenSpec, testSHA, "abc"), "source.archive.sha256", `"abc" is not 64 lowercase hex digits`},
		{"archive sha prefixed", edit(t, mavenSpec, "sha256: "+testSHA, "sha256: sha256:"+testSHA), "source.archive.sha256", "not 64 lowercase hex digits"},
		{"recipe missing", edit(t, ociSpec, "recipe:\n  oci: {}\n", ""), "recipe.oci", "missing"},
		{"oci with maven recipe", edit(t, ociSpec, "oci: {}", "maven: {}"), "recipe.maven", "given for ecosystem oci"},
		{"maven with oci recipe", edit(t, mavenSpec, "maven: {}", "oci: {}"), "recipe.oci", "given for ecosystem maven"},
		{"maven recipe missing", edit(t, mavenSpec, "recipe:\n  maven: {}\n", "recipe: {}\n"), "recipe.maven", "missing"},
		{"dockerfile absolute", edit(t, ociSpec, "oci: {}", "oci: {dockerfile: /etc/Dockerfile}"), "recipe.oci.dockerfile", "relative path"},
		{"dockerfile escapes", edit(t, ociSpec, "oci: {}", "oci: {dockerfile: ../Dockerfile}"), "recipe.oci.dockerfile", "leaves the source folder"},
		{"context unclean", edit(t, ociSpec, "oci: {}", "oci: {context: a//b}"), "recipe.oci.context", "not clean"},
		{"target bad", edit(t, ociSpec, "oci: {}", "oci: {target: 'a b'}"), "recipe.oci.target", "not a stage name"},
		{"build arg name", edit(t, ociSpec, "oci: {}", "oci: {buildArgs: {'A-B': x}}"), "recipe.oci.buildArgs.A-B", "not an ARG name"},
		{"build arg epoch", edit(t, ociSpec, "oci: {}", "oci: {buildArgs: {SOURCE_DATE_EPOCH: '1'}}"), "recipe.oci.buildArgs.SOURCE_DATE_EPOCH", "set by the builder"},
		{"build arg null", edit(t, ociSpec, "oci: {}", "oci: {buildArgs: {A: null}}"), "recipe.oci.buildArgs.A", "null is not allowed"},
		{"goal bad", edit(t, mavenSpec, "maven: {}", "maven: {goals: ['-o']}"), "recipe.maven.goals[0]", "not a phase or goal"},
		{"module escapes", edit(t, mavenSpec, "maven: {}", "maven: {modules: [a, ../b]}"), "recipe.maven.modules[1]", "not a module path"},
		{"maven arg offline", edit(t, mavenSpec, "maven: {}", "maven: {args: [-DskipTests, -U]}"), "recipe.maven.args[1]", "only -Dproperty=value and -Pprofile"},
		{"maven arg settings", edit(t, mavenSpec, "maven: {}", "maven: {args: [-s, settings.xml]}"), "recipe.maven.args[0]", "not allowed"},
		{"maven arg bare -D", edit(t, mavenSpec, "maven: {}", "maven: {args: [-D]}"), "recipe.maven.args[0]", "not allowed"},
		{"maven args not a list", edit(t, mavenSpec, "maven: {}", "maven: {args: -DskipTests}"), "recipe.maven.args", "want a list"},
		{"artifact glob bad", edit(t, mavenSpec, "maven: {}", "maven: {artifacts: ['target/[.jar']}"), "recipe.maven.artifacts[0]", "not a valid glob"},
		{"artifact glob absolute", edit(t, mavenSpec, "maven: {}", "maven: {artifacts: [/target/*.jar]}"), "recipe.maven.artifacts[0]", "relative path"},
		{"image name missing", edit(t, ociSpec, "  name: busybox\n", ""), "builderImage.name", "missing"},
		{"image name upper", edit(t, ociSpec, "name: busybox", "name: BusyBox"), "builderImage.name", "not a name"},
		{"image name slash", edit(t, ociSpec, "name: busybox", "name: a/b"), "builderImage.name", "not a name"},
		{"image digest missing", edit(t, ociSpec, "  digest: "+testDigest+"\n", ""), "builderImage.digest", "missing"},
		{"image digest no algo", edit(t, ociSpec, "digest: sha256:", "digest: "), "builderImage.digest", `is not "sha256:" and 64 lowercase hex digits`},
		{"image digest sha512", edit(t, ociSpec, "digest: sha256:", "digest: sha512:"), "builderImage.digest", "not \"sha256:\""},
		{"image digest short", edit(t, ociSpec, testDigest, "sha256:abcd"), "builderImage.digest", "not \"sha256:\""},
		{"epoch missing", edit(t, ociSpec, "sourceDateEpoch: 1700000000\n", ""), "sourceDateEpoch", "missing"},
		{"epoch zero", edit(t, ociSpec, "1700000000", "0"), "sourceDateEpoch", "missing"},
		{"epoch negative", edit(t, ociSpec, "1700000000", "-1"), "sourceDateEpoch", "out of range"},
		{"epoch too big", edit(t, ociSpec, "1700000000", "999999999999"), "sourceDateEpoch", "out of range"},
		{"epoch overflows", edit(t, ociSpec, "1700000000", "99999999999999999999"), "sourceDateEpoch", "want an integer, got number"},
		{"epoch string", edit(t, ociSpec, "1700000000", "'1700000000'"), "sourceDateEpoch", "want an integer"},
		{"epoch date", edit(t, ociSpec, "1700000000", "2023-11-14"), "sourceDateEpoch", "want an integer"},
		{"platform no arch", ociSpec + "platform: linux\n", "platform", "is not linux/<arch>"},
		{"platform windows", ociSpec + "platform: windows/amd64\n", "platform", "is not linux/<arch>"},
		{"platform unknown arch", ociSpec + "platform: linux/x86\n", "platform", "is not linux/<arch>"},
		{"platform too long", ociSpec + "platform: linux/arm/v7/x\n", "platform", "is not linux/<arch>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSpec([]byte(tt.spec))
			if err == nil {
				t.Fatalf("got no error and %+v, want an error about %s", s, tt.field)
			}
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("got %T %v, want a *SpecError", err, err)
			}
			if se.Field != tt.field {
				t.Errorf("got field %q, want %q (error: %v)", se.Field, tt.field, err)
			}
			if !strings.Contains(err.Error(), tt.msg) || !strings.HasPrefix(err.Error(), "spec: ") {
				t.Errorf("got %q, want it to start with \"spec: \" and hold %q", err, tt.msg)
			}
		})
	}
}

func TestParseSpecDefaults(t *testing.T) {
	s, err := ParseSpec([]byte(ociSpec))
	if err != nil {
		t.Fatal(err)
	}
	want := &Spec{
		Version:         1,
		Ecosystem:       "oci",
		Coordinate:      "hello:1.0",
		Source:          Source{Git: &GitSource{URL: "https://example.com/hello.git", Commit: testCommit}},
		Recipe:          Recipe{OCI: &OCIRecipe{Dockerfile: "Dockerfile", Context: "."}},
		BuilderImage:    ImageRef{Name: "busybox", Digest: testDigest},
		SourceDateEpoch: 1700000000,
		Platform:        "linux/amd64",
	}
	if !reflect.DeepEqual(s, want) {
		t.Errorf("got %+v, want %+v", s, want)
	}

	m, err := ParseSpec([]byte(mavenSpec))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Recipe.Maven.Goals; !reflect.DeepEqual(got, []string{"package"}) {
		t.Errorf("got goals %q, want [package]", got)
	}
	if m.Recipe.Maven.Artifacts != nil || m.Recipe.Maven.Modules != nil {
		t.Errorf("got artifacts %q modules %q, want none", m.Recipe.Maven.Artifacts, m.Recipe.Maven.Modules)
	}
	if got := m.Source.Archive.Format(); got != "tar.gz" {
		t.Errorf("got format %q, want tar.gz", got)
	}
}

func TestParseSpecKeepsScalarText(t *testing.T) {
	// YAML would read 1.10 as a float and 0755 as an octal integer; a string
	// field must get the text as written.
	s, err := ParseSpec([]byte(edit(t, ociSpec, "oci: {}", "oci: {buildArgs: {V: 1.10, M: 0755, B: yes, E: ''}}")))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"V": "1.10", "M": "0755", "B": "yes", "E": ""}
	if !reflect.DeepEqual(s.Recipe.OCI.BuildArgs, want) {
		t.Errorf("got %q, want %q", s.Recipe.OCI.BuildArgs, want)
	}
	// An all-digit commit must not turn into a number.
	digits := strings.Repeat("1234567890", 4)
	s, err = ParseSpec([]byte(edit(t, ociSpec, testCommit, digits)))
	if err != nil {
		t.Fatal(err)
	}
	if s.Source.Git.Commit != digits {
		t.Errorf("got commit %q, want %q", s.Source.Git.Commit, digits)
	}
}

func TestParseSpecAliasBudget(t *testing.T) {
	many := "maven: {args: [&a -Dx=1" + strings.Repeat(", *a", maxSpecNodes) + "]}"
	_, err := ParseSpec([]byte(edit(t, mavenSpec, "maven: {}", many)))
	if err == nil || !strings.Contains(err.Error(), "too many YAML nodes") {
		t.Errorf("got %v, want too many YAML nodes", err)
	}
}

func TestParseSpecAccepts(t *testing.T) {
	tests := []struct{ name, spec string }{
		{"sha256 commit", edit(t, ociSpec, testCommit, testSHA)},
		{"scp-like git url", edit(t, ociSpec, "https://example.com/hello.git", "git@github.com:pyrsia/hello.git")},
		{"file git url", edit(t, ociSpec, "https://example.com/hello.git", "file:///srv/git/hello")},
		{"oci name with path", edit(t, ociSpec, "hello:1.0", "pyrsia/hello-world:v1.0_rc.1")},
		{"arm64", ociSpec + "platform: linux/arm64\n"},
		{"arm v7", ociSpec + "platform: linux/arm/v7\n"},
		{"null optional", ociSpec + "platform: null\n"},
		{"archive url zip", edit(t, mavenSpec, "    path: hello.tar.gz", "    url: https://example.com/hello-1.0.zip?x=1")},
		{"maven full recipe", edit(t, mavenSpec, "maven: {}", "maven: {goals: [clean, 'jar:jar'], modules: [core, ':cli', '!docs'], args: [-DskipTests, -Prelease], artifacts: ['*/target/*.jar']}")},
		{"anchors", edit(t, ociSpec, "oci: {}", "oci: {target: &t build, context: *t}")},
		{"json", `{"version":1,"ecosystem":"oci","coordinate":"hello:1.0","source":{"git":{"url":"https://example.com/hello.git","commit":"` + testCommit + `"}},"recipe":{"oci":{}},"builderImage":{"name":"busybox","digest":"` + testDigest + `"},"sourceDateEpoch":1700000000}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := ParseSpec([]byte(tt.spec)); err != nil {
				t.Errorf("got %v, want no error", err)
			}
		})
	}
}

func TestInputDigestStable(t *testing.T) {
	base, err := ParseSpec([]byte(ociSpec))
	if err != nil {
		t.Fatal(err)
	}
	want, err := base.InputDigest()
	if err != nil {
		t.Fatal(err)
	}
	same := map[string]string{
		"reordered": `sourceDateEpoch: 1700000000
builderImage: {digest: ` + testDigest + `, name: busybox}
recipe:
    oci: {}
source:   {git: {commit: "` + testCommit + `", url: "https://example.com/hello.git"}}
coordinate: 'hello:1.0'
ecosystem: oci
version: 1   # comment
`,
		"defaults spelt out": edit(t, ociSpec, "oci: {}", "oci: {dockerfile: Dockerfile, context: .}") + "platform: linux/amd64\n",
		"json": `{
  "builderImage": {"name": "busybox", "digest": "` + testDigest + `"},
  "version": 1, "ecosystem": "oci", "coordinate": "hello:1.0",
  "source": {"git": {"url": "https://example.com/hello.git", "commit": "` + testCommit + `"}},
  "recipe": {"oci": {"buildArgs": {}}},
  "sourceDateEpoch": 1700000000
}`,
	}
	for name, text := range same {
		t.Run(name, func(t *testing.T) {
			s, err := ParseSpec([]byte(text))
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.InputDigest()
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				a, _ := base.CanonicalJSON()
				b, _ := s.CanonicalJSON()
				t.Errorf("got %s, want %s\n%s\n%s", got, want, b, a)
			}
		})
	}
	differ := map[string]string{
		"epoch":     edit(t, ociSpec, "1700000000", "1700000001"),
		"commit":    edit(t, ociSpec, testCommit, testCommit[:39]+"d"),
		"platform":  ociSpec + "platform: linux/arm64\n",
		"target":    edit(t, ociSpec, "oci: {}", "oci: {target: build}"),
		"build arg": edit(t, ociSpec, "oci: {}", "oci: {buildArgs: {A: b}}"),
	}
	for name, text := range differ {
		t.Run("changed "+name, func(t *testing.T) {
			s, err := ParseSpec([]byte(text))
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.InputDigest()
			if err != nil {
				t.Fatal(err)
			}
			if got == want {
				t.Errorf("got the same digest %s for a changed spec", got)
			}
		})
	}
}

func TestCanonicalJSON(t *testing.T) {
	s, err := ParseSpec([]byte(edit(t, ociSpec, "oci: {}", "oci: {buildArgs: {Z: '<&>', A: x}}")))
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.CanonicalJSON()
	if err != nil {
		t.Fatal(err)
	}
	want := `{"builderImage":{"digest":"` + testDigest + `","name":"busybox"},"coordinate":"hello:1.0","ecosystem":"oci","platform":"linux/amd64","recipe":{"oci":{"buildArgs":{"A":"x","Z":"<&>"},"context":".","dockerfile":"Dockerfile"}},"source":{"git":{"commit":"` + testCommit + `","url":"https://example.com/hello.git"}},"sourceDateEpoch":1700000000,"version":1}`
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// The canonical JSON parses back to the same spec.
	back, err := ParseSpec(got)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, s) {
		t.Errorf("got %+v back, want %+v", back, s)
	}

	m, err := s.Map()
	if err != nil {
		t.Fatal(err)
	}
	if m["sourceDateEpoch"] != json.Number("1700000000") {
		t.Errorf("got sourceDateEpoch %#v, want json.Number 1700000000", m["sourceDateEpoch"])
	}
	if m["source"].(map[string]any)["git"].(map[string]any)["commit"] != testCommit {
		t.Errorf("got source %v, want the commit", m["source"])
	}
}

func TestCanonicalJSONOfGoSpec(t *testing.T) {
	// A Spec made in Go gets its defaults in the canonical JSON without
	// being changed, and an invalid one has no digest.
	s := &Spec{
		Version: 1, Ecosystem: "maven", Coordinate: "org.example:hello:1.0",
		Source:          Source{Archive: &ArchiveSource{Path: "hello.zip", SHA256: testSHA}},
		Recipe:          Recipe{Maven: &MavenRecipe{}},
		BuilderImage:    ImageRef{Name: "maven", Digest: testDigest},
		SourceDateEpoch: 1,
	}
	got, err := s.CanonicalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), `"maven":{"goals":["package"]}`) || !strings.Contains(string(got), `"platform":"linux/amd64"`) {
		t.Errorf("got %s, want defaults applied", got)
	}
	if s.Platform != "" || s.Recipe.Maven.Goals != nil {
		t.Errorf("CanonicalJSON changed the spec: %+v", s)
	}
	s.SourceDateEpoch = -5
	if _, err := s.InputDigest(); err == nil {
		t.Errorf("got no error for an invalid spec")
	}
}

func TestReadSpecExamples(t *testing.T) {
	files, err := filepath.Glob("testdata/specs/*.yaml")
	if err != nil || len(files) < 2 {
		t.Fatalf("got %d example specs (%v), want at least 2", len(files), err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			s, err := ReadSpec(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.InputDigest(); err != nil {
				t.Fatal(err)
			}
		})
	}
	_, err = ReadSpec("testdata/specs/missing.yaml")
	if err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("got %v, want an error naming the file", err)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(bad, []byte(ociSpec+"extra: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = ReadSpec(bad)
	if err == nil || !strings.Contains(err.Error(), "bad.yaml: spec: extra: ") {
		t.Errorf("got %v, want an error naming the file and the field", err)
	}
}

func FuzzParseSpec(f *testing.F) {
	files, _ := filepath.Glob("testdata/specs/*.yaml")
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(ociSpec))
	f.Add([]byte(mavenSpec))
	if data, err := os.ReadFile("../testdata/maven-shared-utils/spec.yaml"); err == nil {
		f.Add(data) // a maven source, a lock, a JDK
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := ParseSpec(data)
		if err != nil {
			var se *SpecError
			if !errors.As(err, &se) {
				t.Fatalf("got %T %v, want a *SpecError", err, err)
			}
			return
		}
		// A parsed spec has a canonical form that parses back to itself.
		c, err := s.CanonicalJSON()
		if err != nil {
			t.Fatalf("parsed spec has no canonical JSON: %v", err)
		}
		if a, err := attest.CanonicalJSON(c); err != nil || string(a) != string(c) {
			t.Fatalf("not attest.CanonicalJSON's form: %s -> %s, %v", c, a, err)
		}
		back, err := ParseSpec(c)
		if err != nil {
			t.Fatalf("canonical JSON %s does not parse: %v", c, err)
		}
		c2, err := back.CanonicalJSON()
		if err != nil || string(c2) != string(c) {
			t.Fatalf("canonical JSON not stable:\n%s\n%s (%v)", c, c2, err)
		}
	})
}

func ExampleParseSpec() {
	s, err := ParseSpec([]byte(`
version: 1
ecosystem: oci
coordinate: hello:1.0
source:
  archive: {path: hello.tar.gz, sha256: 0f4b7e2a9c1d3e5f6a8b0c2d4e6f8a1b3c5d7e9f0a2b4c6d8e0f1a3b5c7d9e1f}
recipe:
  oci: {target: runtime}
builderImage: {name: busybox, digest: "sha256:9ae97d36d26566ff84e8893c64a6dc4fe8ca6d1144bf5b87b2b85a32def253c7"}
sourceDateEpoch: 1700000000
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(s.Recipe.OCI.Dockerfile, s.Recipe.OCI.Context, s.Platform)
	c, _ := s.CanonicalJSON()
	fmt.Println(string(c))

	_, err = ParseSpec([]byte(strings.Replace(ociSpec, "oci: {}", "oci: {dockerfil: x}", 1)))
	fmt.Println(err)
	// Output:
	// Dockerfile . linux/amd64
	// {"builderImage":{"digest":"sha256:9ae97d36d26566ff84e8893c64a6dc4fe8ca6d1144bf5b87b2b85a32def253c7","name":"busybox"},"coordinate":"hello:1.0","ecosystem":"oci","platform":"linux/amd64","recipe":{"oci":{"context":".","dockerfile":"Dockerfile","target":"runtime"}},"source":{"archive":{"path":"hello.tar.gz","sha256":"0f4b7e2a9c1d3e5f6a8b0c2d4e6f8a1b3c5d7e9f0a2b4c6d8e0f1a3b5c7d9e1f"}},"sourceDateEpoch":1700000000,"version":1}
	// spec: recipe.oci.dockerfil: line 9: unknown field (known: dockerfile, target, context, buildArgs)
}
