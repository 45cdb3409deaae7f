package builder

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/pyrsia/pyrsia-build/attest"
)

// TestParseSpecRefusesLooseSpecs: what `attest --spec` and `log make-entry
// --spec` once recorded as typed must not parse, by ParseSpec or ReadSpec.
func TestParseSpecRefusesLooseSpecs(t *testing.T) {
	tests := []struct{ name, spec, field, msg string }{
		{"quoted epoch", edit(t, ociSpec, "1700000000", `"1700000000"`), "sourceDateEpoch", "want an integer"},
		{"duplicate key", edit(t, ociSpec, "ecosystem: oci\n", "ecosystem: oci\necosystem: oci\n"), "ecosystem", "given twice"},
		{"duplicate nested key", edit(t, ociSpec, "  name: busybox\n", "  name: busybox\n  name: other\n"), "builderImage.name", "given twice"},
		{"version 1.0", edit(t, ociSpec, "version: 1", "version: 1.0"), "version", "want an integer, got number 1.0"},
		{"negative epoch", edit(t, ociSpec, "1700000000", "-1700000000"), "sourceDateEpoch", "out of range"},
		{"two documents", ociSpec + "---\n" + ociSpec, "", "more than one YAML document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseSpec([]byte(tt.spec))
			var se *SpecError
			if !errors.As(err, &se) || se.Field != tt.field || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("ParseSpec: got %v, want a SpecError on %q holding %q", err, tt.field, tt.msg)
			}
			p := filepath.Join(t.TempDir(), "spec.yaml")
			if err := os.WriteFile(p, []byte(tt.spec), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := ReadSpec(p); !errors.As(err, &se) || !strings.Contains(err.Error(), p+": spec: ") {
				t.Fatalf("ReadSpec: got %v, want a SpecError naming the file", err)
			}
		})
	}
}

// TestParseSpecKeepsDigitsText: a commit written in digits only is a YAML
// integer, but the spec records the text, never a number.
func TestParseSpecKeepsDigitsText(t *testing.T) {
	const digits = "1234567890123456789012345678901234567890"
	s, err := ParseSpec([]byte(edit(t, ociSpec, "commit: "+testCommit, "commit: "+digits)))
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.CanonicalJSON()
	if err != nil || !strings.Contains(string(c), `"commit":"`+digits+`"`) {
		t.Fatalf("got %s, %v; want the commit as the string written", c, err)
	}
}

func TestParseSpecRefusesBuildkitArgs(t *testing.T) {
	for _, name := range []string{"BUILDKIT_SYNTAX", "BUILDKIT_CACHE_MOUNT_NS", "BUILDKIT_INLINE_CACHE", "buildkit_syntax", "BuildKit_X"} {
		t.Run(name, func(t *testing.T) {
			text := edit(t, ociSpec, "oci: {}", "oci: {buildArgs: {A: b, "+name+": docker/dockerfile:1}}")
			_, err := ParseSpec([]byte(text))
			var se *SpecError
			if !errors.As(err, &se) || se.Field != "recipe.oci.buildArgs."+name || !strings.Contains(err.Error(), "BUILDKIT_* build args") {
				t.Fatalf("got %v, want the build arg refused by name", err)
			}
		})
	}
	// Names that merely contain BUILDKIT are the Dockerfile's own.
	if _, err := ParseSpec([]byte(edit(t, ociSpec, "oci: {}", "oci: {buildArgs: {MY_BUILDKIT_X: b, BUILDKIT: c}}"))); err != nil {
		t.Fatal(err)
	}
}

func TestValidateRemote(t *testing.T) {
	bad := []struct{ name, spec, field string }{
		{"absolute archive path", edit(t, mavenSpec, "path: hello.tar.gz", "path: /etc/hello.tar.gz"), "source.archive.path"},
		{"upward archive path", edit(t, mavenSpec, "path: hello.tar.gz", "path: ../../etc/hello.tar.gz"), "source.archive.path"},
		{"unclean archive path", edit(t, mavenSpec, "path: hello.tar.gz", "path: a/../../hello.tar.gz"), "source.archive.path"},
		{"file git URL", edit(t, ociSpec, "https://example.com/hello.git", "file:///srv/git/secret.git"), "source.git.url"},
		{"FILE git URL", edit(t, ociSpec, "https://example.com/hello.git", "FILE:///srv/git/secret.git"), "source.git.url"},
		{"ssh git URL", edit(t, ociSpec, "https://example.com/hello.git", "ssh://git@example.com/hello.git"), "source.git.url"},
		{"scp-like git URL", edit(t, ociSpec, "https://example.com/hello.git", "git@example.com:hello.git"), "source.git.url"},
		{"git protocol URL", edit(t, ociSpec, "https://example.com/hello.git", "git://example.com/hello.git"), "source.git.url"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			s, err := ParseSpec([]byte(tt.spec))
			if err != nil {
				t.Fatalf("a local build must accept it: %v", err)
			}
			err = s.ValidateRemote()
			var se *SpecError
			if !errors.As(err, &se) || se.Field != tt.field || !strings.Contains(err.Error(), "not allowed in a spec from the network") {
				t.Fatalf("got %v, want %s refused for a remote spec", err, tt.field)
			}
			if _, err := ParseRemoteSpec([]byte(tt.spec)); !errors.As(err, &se) || se.Field != tt.field {
				t.Fatalf("ParseRemoteSpec: got %v, want %s refused", err, tt.field)
			}
		})
	}
	good := map[string]string{
		"relative archive path": edit(t, mavenSpec, "path: hello.tar.gz", "path: src/hello.tar.gz"),
		"archive URL":           edit(t, mavenSpec, "path: hello.tar.gz", "url: https://example.com/hello.tar.gz"),
		"https git URL":         ociSpec,
		"http git URL":          edit(t, ociSpec, "https://example.com/hello.git", "http://example.com/hello.git"),
	}
	for name, text := range good {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseRemoteSpec([]byte(text)); err != nil {
				t.Fatal(err)
			}
		})
	}
	// An invalid spec is refused as Validate refuses it.
	if _, err := ParseRemoteSpec([]byte(edit(t, ociSpec, "version: 1", "version: 2"))); err == nil {
		t.Fatal("got no error for version 2")
	}
}

func TestReadSpecOnlyRegularFiles(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.yaml")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, []byte(ociSpec+"#"+strings.Repeat("x", maxSpecText)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ path, msg string }{
		{fifo, "is not a regular file (a named pipe)"},
		{"/dev/zero", "is not a regular file (a device)"},
		{dir, "is not a regular file (a directory)"},
		{big, fmt.Sprintf("big.yaml: file is over the size limit: %d bytes, the limit is 1048576", len(ociSpec)+maxSpecText+2)},
	}
	for _, tt := range tests {
		t.Run(filepath.Base(tt.path), func(t *testing.T) {
			_, err := ReadSpec(tt.path)
			if err == nil || !strings.Contains(err.Error(), tt.msg) || !strings.HasPrefix(err.Error(), "reading spec: ") {
				t.Fatalf("got %v, want %q", err, tt.msg)
			}
		})
	}
}

func TestReadManifestOnlyRegularFiles(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "manifest.json")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/dev/zero", fifo} {
		_, err := ReadManifest(p)
		if err == nil || !strings.Contains(err.Error(), p+" is not a regular file") {
			t.Errorf("%s: got %v, want it refused as not a regular file", p, err)
		}
	}
}

// TestCanonicalJSONIsAttests: the builder's canonical form of a spec is
// attest.CanonicalJSON's, and the input digests of the example specs are
// those logs already hold.
func TestCanonicalJSONIsAttests(t *testing.T) {
	want := map[string]string{
		"hello-maven.yaml": "sha256:db7d1769641d8c2df4a3a7f7a4ff92a45d67638556f3b5d52a4ba5d09f938965",
		"hello-oci.yaml":   "sha256:f74cd6c467c0d3e3391a097243c894e088490b581588e9414cb16c0bc94e9d9c",
	}
	files, _ := filepath.Glob("testdata/specs/*.yaml")
	if len(files) != len(want) {
		t.Fatalf("got %d example specs, want %d: pin the digests of new ones here", len(files), len(want))
	}
	check := func(t *testing.T, s *Spec) string {
		t.Helper()
		c, err := s.CanonicalJSON()
		if err != nil {
			t.Fatal(err)
		}
		again, err := attest.CanonicalJSON(c)
		if err != nil || string(again) != string(c) {
			t.Fatalf("attest.CanonicalJSON(%s) = %s, %v; want it unchanged", c, again, err)
		}
		d, err := s.InputDigest()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			s, err := ReadSpec(f)
			if err != nil {
				t.Fatal(err)
			}
			if d := check(t, s); d != want[filepath.Base(f)] {
				t.Errorf("input digest %s, want %s (as before)", d, want[filepath.Base(f)])
			}
		})
	}
	// Characters encoding/json escapes for HTML, and others it escapes.
	s, err := ParseSpec([]byte(edit(t, ociSpec, "oci: {}", "oci: {buildArgs: {A: \"<&> \\u2028 \\u0001 é \\\" \\\\\"}}")))
	if err != nil {
		t.Fatal(err)
	}
	check(t, s)
}

// TestBuildRemoteRefusesLocalPaths: a build of a spec from the network is
// refused before anything is read or any daemon is asked.
func TestBuildRemoteRefusesLocalPaths(t *testing.T) {
	s, err := ParseSpec([]byte(edit(t, mavenSpec, "path: hello.tar.gz", "path: /etc/hello.tar.gz")))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	_, err = new(BuildKit).Build(t.Context(), s, BuildOptions{OutDir: out, Remote: true})
	var se *SpecError
	if !errors.As(err, &se) || se.Field != "source.archive.path" {
		t.Fatalf("got %v, want the archive path refused", err)
	}
	if _, err := os.Stat(out); err == nil {
		t.Error("the output folder was made")
	}
}

// The flow of every tool that takes a spec file (build, attest --spec, log
// make-entry --spec): ReadSpec, then record the canonical JSON and its
// digest, never the file's text.
func ExampleReadSpec() {
	s, err := ReadSpec("testdata/specs/hello-oci.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	canon, _ := s.CanonicalJSON() // what an entry's spec and a provenance's externalParameters.spec hold
	digest, _ := s.InputDigest()  // "sha256:" + hex(SHA-256(canon))
	fmt.Println(len(canon) > 0, digest)
	// Output:
	// true sha256:f74cd6c467c0d3e3391a097243c894e088490b581588e9414cb16c0bc94e9d9c
}
