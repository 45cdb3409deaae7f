package builder

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"net/url"
	"path"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/pyrsia/pyrsia-build/attest"
)

// Build spec v1
//
// A build spec is a small YAML (or JSON) document:
//
//	version: 1
//	ecosystem: oci                     # oci | maven
//	coordinate: hello:1.0              # oci: name:tag; maven: groupId:artifactId:version
//	source:
//	  git: {url: https://github.com/example/hello, commit: <40 or 64 hex>}
//	  # or archive: {path: hello.tar.gz, sha256: <64 hex>}   (or url: instead of path)
//	recipe:
//	  oci: {dockerfile: Dockerfile, target: "", context: ., buildArgs: {K: V}}
//	  # or maven: {goals: [package], modules: [], args: [-Dx=y], artifacts: [target/*.jar]}
//	builderImage: {name: busybox, digest: sha256:<64 hex>}
//	sourceDateEpoch: 1700000000
//	platform: linux/amd64              # optional
//
// [ParseSpec] rejects unknown fields, validates every field and applies the
// defaults. The SHA-256 of [Spec.CanonicalJSON] is the input digest. A spec
// that arrives over a network is parsed with [ParseRemoteSpec] (or checked
// with [Spec.ValidateRemote]), which refuses the local paths a local build
// may use.

// SpecVersion is the only build spec version this package reads.
const SpecVersion = 1

// DefaultPlatform is the platform of a spec that names none.
const DefaultPlatform = "linux/amd64"

// Spec is a build spec v1: what to build, from which source, how, and in
// which builder image. Use [ParseSpec] or [ReadSpec] to get one; a Spec made
// in Go is checked by [Spec.Validate].
type Spec struct {
	// Version is the spec format version; it must be 1.
	Version int `json:"version"`
	// Ecosystem is "oci" or "maven".
	Ecosystem string `json:"ecosystem"`
	// Coordinate is "name:tag" for oci, "groupId:artifactId:version" for
	// maven.
	Coordinate string `json:"coordinate"`
	Source     Source `json:"source"`
	Recipe     Recipe `json:"recipe"`
	// BuilderImage is the image the build runs in, pinned by digest.
	BuilderImage ImageRef `json:"builderImage"`
	// SourceDateEpoch (seconds since 1970, > 0) is the time stamp of every
	// file the build writes.
	SourceDateEpoch int64 `json:"sourceDateEpoch"`
	// Platform is "os/arch" or "os/arch/variant"; "linux/amd64" when empty.
	Platform string `json:"platform,omitempty"`
}

// Source is where the source comes from: exactly one of Git, Archive and
// Maven.
type Source struct {
	Git     *GitSource     `json:"git,omitempty"`
	Archive *ArchiveSource `json:"archive,omitempty"`
	Maven   *MavenSource   `json:"maven,omitempty"`
}

// MavenSource is a source archive published in a Maven repository, such as
// the -source-release.zip of an Apache release, fetched from the Maven
// repository of the node's Maven configuration ([MavenRepository]) and
// pinned by its SHA-256. A zip (or tar) whose entries all lie in one
// top-level folder (as source releases' do, "artifactId-version/") is
// unpacked without that folder.
type MavenSource struct {
	// Coordinate is groupId:artifactId:version.
	Coordinate string `json:"coordinate"`
	// File is the file name, artifactId-version-classifier.extension:
	// "<artifactId>-<version>-source-release.zip" when empty.
	File string `json:"file,omitempty"`
	// SHA256 is the file's digest, 64 lowercase hex digits.
	SHA256 string `json:"sha256"`
}

// lockFile returns the source as a lock entry (its repository path and pin).
func (m *MavenSource) lockFile() LockFile {
	f := LockFile{Coordinate: m.Coordinate, File: m.File, SHA256: m.SHA256}
	if f.File == "" {
		_, a, v := splitCoordinate(m.Coordinate)
		f.File = a + "-" + v + "-source-release.zip"
	}
	return f
}

// GitSource is a git repository at one commit.
type GitSource struct {
	// URL is an https, http, ssh, git or file URL, or scp-like
	// "user@host:path".
	URL string `json:"url"`
	// Commit is the full commit id: 40 lowercase hex digits (sha1), or 64
	// (sha256 repositories).
	Commit string `json:"commit"`
}

// ArchiveSource is a source archive (.tar, .tar.gz, .tgz or .zip) pinned by
// its SHA-256. Exactly one of Path and URL is set.
type ArchiveSource struct {
	// Path is a local file; a relative path is relative to the spec's
	// folder ([BuildOptions].SpecDir).
	Path string `json:"path,omitempty"`
	// URL is an http or https URL.
	URL string `json:"url,omitempty"`
	// SHA256 is the archive file's digest, 64 lowercase hex digits.
	SHA256 string `json:"sha256"`
}

// Format returns the archive's format from its file name: "tar", "tar.gz"
// (for .tar.gz and .tgz) or "zip"; "" if the name has none of these endings.
func (a *ArchiveSource) Format() string {
	name := a.Path
	if name == "" {
		if u, err := url.Parse(a.URL); err == nil {
			name = u.Path
		}
	}
	return archiveFormat(name)
}

func archiveFormat(name string) string {
	name = strings.ToLower(name)
	switch {
	case strings.HasSuffix(name, ".tar.gz"), strings.HasSuffix(name, ".tgz"):
		return "tar.gz"
	case strings.HasSuffix(name, ".tar"):
		return "tar"
	case strings.HasSuffix(name, ".zip"):
		return "zip"
	}
	return ""
}

// Recipe is how to build: OCI is set iff the ecosystem is oci, Maven iff it
// is maven.
type Recipe struct {
	OCI   *OCIRecipe   `json:"oci,omitempty"`
	Maven *MavenRecipe `json:"maven,omitempty"`
}

// OCIRecipe builds an image with the Dockerfile frontend built into
// buildkitd. A "# syntax=" line in the Dockerfile is ignored: the builder
// never fetches another frontend.
type OCIRecipe struct {
	// Dockerfile is the Dockerfile's path, relative to Context;
	// "Dockerfile" when empty.
	Dockerfile string `json:"dockerfile,omitempty"`
	// Target is the stage to build; the last stage when empty.
	Target string `json:"target,omitempty"`
	// Context is the build context: a folder of the source, relative to
	// its root; "." when empty.
	Context string `json:"context,omitempty"`
	// BuildArgs are the Dockerfile's ARG values. SOURCE_DATE_EPOCH is set
	// by the builder and may not be given here, nor may BuildKit's own
	// BUILDKIT_* args.
	BuildArgs map[string]string `json:"buildArgs,omitempty"`
}

// MavenRecipe builds with Maven, offline (-o is always added).
type MavenRecipe struct {
	// Goals are the phases and goals to run; ["package"] when empty.
	Goals []string `json:"goals,omitempty"`
	// Modules are the -pl selection (paths, [groupId]:artifactId, a
	// leading ! to exclude); all modules when empty.
	Modules []string `json:"modules,omitempty"`
	// Args are extra arguments, each a -D (property) or -P (profile).
	Args []string `json:"args,omitempty"`
	// Artifacts are the files to publish: path.Match globs relative to the
	// source root ("*" does not cross "/"). When empty the builder
	// publishes every reactor module's target/*.jar and its pom.xml; that
	// default is left to the builder and not written into the spec.
	Artifacts []string `json:"artifacts,omitempty"`
	// Lock pins every file the build reads from the Maven repository
	// (see [Lock]). With a lock the build runs against a local repository
	// of exactly the lock's files, each fetched by the node and checked;
	// without one, against the builder image's own repository (Debian's
	// /usr/share/maven-repo).
	Lock *LockRef `json:"lock,omitempty"`
	// JDK is the major version of the JDK the build runs with (JAVA_HOME
	// is /usr/lib/jvm/java-<jdk>-openjdk-<arch> in the builder image); the
	// image's default JDK when 0. The major version decides the bytecode
	// and the jar manifest's Build-Jdk-Spec.
	JDK int `json:"jdk,omitempty"`
	// Umask is the build's umask, 3 octal digits; "022" when empty.
	Umask string `json:"umask,omitempty"`
	// Newline is the line separator of the JVM that runs Maven, "lf" or
	// "crlf" (Reproducible Central's .buildspec newline); the JVM's own
	// (lf) when empty, and "lf" is written as empty in the canonical form
	// (the same build has one input digest). It decides the line endings of files that plugins
	// write with the platform's separator, such as pom.properties and a
	// jar's MANIFEST.MF of some archivers: a release made on Windows has
	// crlf.
	Newline string `json:"newline,omitempty"`
	// CompareUpstream asks the builder to compare the jars and poms it
	// built with the official ones the Maven repository serves for the
	// coordinate ([CompareUpstream]); the result goes into the Result and
	// the attestation. A coordinate with no published jar fails the build.
	CompareUpstream bool `json:"compareUpstream,omitempty"`
}

// LockRef points at a Maven dependency lock file and pins it by sha256.
type LockRef struct {
	// Path is the lock file, relative to the spec's folder (it must stay
	// inside it).
	Path string `json:"path"`
	// SHA256 is the lock file's digest, 64 lowercase hex digits.
	SHA256 string `json:"sha256"`
}

// ImageRef names a builder image in the node's image store by name and
// pins it by digest.
type ImageRef struct {
	// Name is the image's folder name in the image store:
	// [a-z0-9][a-z0-9._-]*.
	Name string `json:"name"`
	// Digest is "sha256:<64 hex>" of the image manifest.
	Digest string `json:"digest"`
}

// SpecError is a problem with one field of a spec. Field is the field's
// path ("source.archive.sha256"), empty for the document as a whole.
type SpecError struct {
	Field string
	Msg   string
	Err   error // the underlying error, if any
}

func (e *SpecError) Error() string {
	if e.Field == "" {
		return "spec: " + e.Msg
	}
	return "spec: " + e.Field + ": " + e.Msg
}

func (e *SpecError) Unwrap() error { return e.Err }

func fieldErr(field, format string, args ...any) error {
	return &SpecError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// maxSpecText bounds the text ParseSpec reads (comments and all), and
// maxSpecNodes the YAML nodes it visits (aliases are visited each time
// they are used, so a small file can expand enormously). The spec itself
// is bounded by [MaxSpecSize].
const (
	maxSpecText  = 1 << 20
	maxSpecNodes = 100000
)

// MaxSpecSize bounds a spec by what it takes in a log entry: its canonical
// JSON plus the names and URIs that the provenance of every build repeats
// from it (resolvedDependencies: the source's URL or path, the lock's
// path, the builder image's name) may be at most 2048 bytes.
//
// A log entry (at most [publish.MaxEntrySize], 65,535 bytes) holds the
// spec once and, in each of a majority's DSSE envelopes, base64-encoded
// again: each byte of a spec costs about 12 bytes of the entry published
// by the 8 nodes that are a majority of 15. TestMaxSpecSizeFitsAnEntry
// measures the real encodings: at this bound the entry of 8 attestations
// of a Maven build with 4 artifacts compared with the upstream release is
// about 51,000 bytes (of an OCI image, 34,000), so the rest is left for
// more artifacts. Outputs count too: each further Maven artifact compared
// with upstream takes about 5,000 bytes of the entry, so the bound cannot
// promise that every build of an accepted spec fits. A spec over the bound could never be published by such a
// network (a 5 KB spec fills the entry); [ParseSpec] and [Spec.Validate]
// refuse it before anyone builds it.
//
// [publish.MaxEntrySize]: https://pkg.go.dev/github.com/pyrsia/pyrsia-build/publish#MaxEntrySize
const MaxSpecSize = 2048

// ParseSpec parses a build spec from YAML or JSON, rejects unknown and
// duplicate fields, applies the defaults and validates every field. Errors
// are *[SpecError] and name the field.
func ParseSpec(data []byte) (*Spec, error) {
	if len(data) > maxSpecText {
		return nil, &SpecError{Msg: fmt.Sprintf("%d bytes is larger than the limit of %d", len(data), maxSpecText)}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &SpecError{Msg: "empty document"}
		}
		return nil, &SpecError{Msg: "not valid YAML: " + err.Error(), Err: err}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, &SpecError{Msg: "more than one YAML document (a second \"---\")"}
	}
	budget := maxSpecNodes
	v, err := nodeToJSON(&doc, reflect.TypeFor[Spec](), "", 0, &budget)
	if err != nil {
		return nil, err
	}
	if v == nil {
		return nil, &SpecError{Msg: "empty document"}
	}
	js, err := json.Marshal(v)
	if err != nil {
		return nil, &SpecError{Msg: "encoding as JSON: " + err.Error(), Err: err}
	}
	jd := json.NewDecoder(bytes.NewReader(js))
	jd.DisallowUnknownFields()
	s := new(Spec)
	if err := jd.Decode(s); err != nil {
		// nodeToJSON checked fields and types; this is a bug.
		return nil, &SpecError{Msg: "decoding: " + err.Error(), Err: err}
	}
	s.applyDefaults()
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return s, nil
}

// ReadSpec reads and parses the build spec in the file at path, which
// must be a regular file of at most 1 MiB. Errors name the file. Every tool
// that takes a spec file reads it with ReadSpec and records
// [Spec.CanonicalJSON] (its SHA-256 is [Spec.InputDigest]), so that a
// spec has one meaning and one form everywhere.
func ReadSpec(path string) (*Spec, error) {
	data, err := readLimited(path, maxSpecText)
	if err != nil {
		return nil, fmt.Errorf("reading spec: %w", err)
	}
	s, err := ParseSpec(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return s, nil
}

// nodeToJSON turns a YAML node into a JSON-able value shaped by the Go type
// t, keeping scalars' text as written (YAML's "1.10" stays "1.10" in a
// string field) and rejecting unknown fields, duplicate keys and wrong
// kinds. A null gives nil, which the caller leaves out.
func nodeToJSON(n *yaml.Node, t reflect.Type, field string, depth int, budget *int) (any, error) {
	if depth > 32 {
		return nil, fieldErr(field, "nested too deeply")
	}
	if *budget--; *budget < 0 {
		return nil, fieldErr(field, "too many YAML nodes (more than %d, counting aliases each time they are used)", maxSpecNodes)
	}
	for n.Kind == yaml.DocumentNode || n.Kind == yaml.AliasNode {
		if n.Kind == yaml.AliasNode {
			n = n.Alias
		} else {
			if len(n.Content) == 0 {
				return nil, nil
			}
			n = n.Content[0]
		}
		depth++
		if n == nil || depth > 32 {
			return nil, fieldErr(field, "nested too deeply")
		}
	}
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" {
		return nil, nil
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	kindErr := func(want string) error {
		return fieldErr(field, "line %d: want %s, got %s", n.Line, want, describeNode(n))
	}
	switch t.Kind() {
	case reflect.String:
		if n.Kind != yaml.ScalarNode || n.ShortTag() == "!!binary" {
			return nil, kindErr("a string")
		}
		return n.Value, nil
	case reflect.Bool:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
			return nil, kindErr("true or false")
		}
		var b bool
		if err := n.Decode(&b); err != nil {
			return nil, fieldErr(field, "line %d: %q is not true or false", n.Line, n.Value)
		}
		return b, nil
	case reflect.Int, reflect.Int64:
		if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
			return nil, kindErr("an integer")
		}
		var i int64
		if err := n.Decode(&i); err != nil {
			return nil, fieldErr(field, "line %d: %q is not a 64-bit integer", n.Line, n.Value)
		}
		return i, nil
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return nil, kindErr("a list")
		}
		out := make([]any, 0, len(n.Content))
		for i, c := range n.Content {
			v, err := nodeToJSON(c, t.Elem(), fmt.Sprintf("%s[%d]", field, i), depth+1, budget)
			if err != nil {
				return nil, err
			}
			if v == nil {
				return nil, fieldErr(fmt.Sprintf("%s[%d]", field, i), "line %d: null is not allowed", c.Line)
			}
			out = append(out, v)
		}
		return out, nil
	case reflect.Map, reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return nil, kindErr("a mapping")
		}
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, vn := n.Content[i], n.Content[i+1]
			if k.Kind != yaml.ScalarNode || k.ShortTag() == "!!merge" {
				return nil, fieldErr(field, "line %d: keys must be plain strings", k.Line)
			}
			sub := joinField(field, k.Value)
			if _, dup := out[k.Value]; dup {
				return nil, fieldErr(sub, "line %d: given twice", k.Line)
			}
			elem := t
			if t.Kind() == reflect.Map {
				elem = t.Elem()
			} else {
				f, ok := structField(t, k.Value)
				if !ok {
					return nil, fieldErr(sub, "line %d: unknown field (known: %s)", k.Line, strings.Join(jsonNames(t), ", "))
				}
				elem = f.Type
			}
			v, err := nodeToJSON(vn, elem, sub, depth+1, budget)
			if err != nil {
				return nil, err
			}
			if v == nil {
				if t.Kind() == reflect.Map {
					return nil, fieldErr(sub, "line %d: null is not allowed", vn.Line)
				}
				out[k.Value] = nil // marks the key as seen; dropped below
				continue
			}
			out[k.Value] = v
		}
		for k, v := range out {
			if v == nil {
				delete(out, k)
			}
		}
		return out, nil
	}
	return nil, fieldErr(field, "unsupported Go type %s (a bug)", t)
}

func describeNode(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	switch n.ShortTag() {
	case "!!int":
		return "integer " + n.Value
	case "!!float":
		return "number " + n.Value
	case "!!bool":
		return "boolean " + n.Value
	}
	return fmt.Sprintf("%q", n.Value)
}

func joinField(parent, name string) string {
	if parent == "" {
		return name
	}
	return parent + "." + name
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	return name
}

func structField(t reflect.Type, name string) (reflect.StructField, bool) {
	for f := range t.Fields() {
		if jsonName(f) == name {
			return f, true
		}
	}
	return reflect.StructField{}, false
}

func jsonNames(t reflect.Type) []string {
	var names []string
	for f := range t.Fields() {
		names = append(names, jsonName(f))
	}
	return names
}

func (s *Spec) applyDefaults() {
	if s.Platform == "" {
		s.Platform = DefaultPlatform
	}
	if r := s.Recipe.OCI; r != nil {
		if r.Dockerfile == "" {
			r.Dockerfile = "Dockerfile"
		}
		if r.Context == "" {
			r.Context = "."
		}
	}
	if r := s.Recipe.Maven; r != nil {
		if len(r.Goals) == 0 {
			r.Goals = []string{"package"}
		}
		if r.Newline == "lf" {
			// The JVM's own separator on Linux: one build, one digest.
			r.Newline = ""
		}
	}
}

var (
	hexRE       = regexp.MustCompile(`^[0-9a-f]+$`)
	imageNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)
	// OCI distribution repository name and tag.
	ociNameRE   = regexp.MustCompile(`^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$`)
	ociTagRE    = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	mavenPartRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]*$`)
	mavenVerRE  = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.+-]*$`)
	stageRE     = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_.-]*$`)
	buildArgRE  = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	goalRE      = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.:-]*$`)
	moduleRE    = regexp.MustCompile(`^!?[A-Za-z0-9_.:][A-Za-z0-9_.:/-]*$`)
	umaskRE     = regexp.MustCompile(`^0?[0-7]{3}$`)
	// newlines are recipe.maven.newline's values and the line separator
	// each gives the Maven JVM ("" leaves the JVM's own).
	newlines   = map[string]string{"": "", "lf": "\n", "crlf": "\r\n"}
	platformRE = regexp.MustCompile(`^([a-z0-9]+)/([a-z0-9_]+)(?:/([a-z0-9]+))?$`)
)

var knownArchs = []string{"386", "amd64", "arm", "arm64", "loong64", "mips64le", "ppc64le", "riscv64", "s390x"}

// maxEpoch is 9999-12-31T23:59:59Z: later times do not fit tar or zip
// headers well, and it keeps the epoch exact as a float64.
const maxEpoch = 253402300799

func isHex(s string, n int) bool { return len(s) == n && hexRE.MatchString(s) }

func checkDigest(field, d string) error {
	if hexPart, ok := strings.CutPrefix(d, "sha256:"); !ok || !isHex(hexPart, 64) {
		return fieldErr(field, "%q is not \"sha256:\" and 64 lowercase hex digits", d)
	}
	return nil
}

// checkRelPath checks a slash-separated relative path that must stay inside
// its root.
func checkRelPath(field, p string) error {
	switch {
	case p == "":
		return fieldErr(field, "missing")
	case strings.ContainsRune(p, 0) || !utf8.ValidString(p):
		return fieldErr(field, "%q has a NUL byte or is not UTF-8", p)
	case strings.HasPrefix(p, "/") || strings.Contains(p, `\`):
		return fieldErr(field, "%q must be a relative path with forward slashes", p)
	case p != path.Clean(p):
		return fieldErr(field, "%q is not clean (want %q)", p, path.Clean(p))
	case p == ".." || strings.HasPrefix(p, "../"):
		return fieldErr(field, "%q leaves the source folder", p)
	}
	return nil
}

func checkText(field, v string) error {
	if !utf8.ValidString(v) || strings.ContainsRune(v, 0) {
		return fieldErr(field, "%q has a NUL byte or is not UTF-8", v)
	}
	return nil
}

// Validate checks every field of s as ParseSpec does. Fields that have
// defaults may be empty.
func (s *Spec) Validate() error {
	if s.Version != SpecVersion {
		if s.Version == 0 {
			return fieldErr("version", "missing (want 1)")
		}
		return fieldErr("version", "%d is not supported (want 1)", s.Version)
	}
	switch s.Ecosystem {
	case "oci", "maven":
	case "":
		return fieldErr("ecosystem", "missing (want oci or maven)")
	default:
		return fieldErr("ecosystem", "%q is not oci or maven", s.Ecosystem)
	}
	if err := s.validateCoordinate(); err != nil {
		return err
	}
	if err := s.Source.validate(); err != nil {
		return err
	}
	if err := s.Recipe.validate(s.Ecosystem); err != nil {
		return err
	}
	if s.BuilderImage.Name == "" {
		return fieldErr("builderImage.name", "missing")
	}
	if len(s.BuilderImage.Name) > 128 || !imageNameRE.MatchString(s.BuilderImage.Name) {
		return fieldErr("builderImage.name", "%q is not a name of [a-z0-9][a-z0-9._-]* (at most 128)", s.BuilderImage.Name)
	}
	if s.BuilderImage.Digest == "" {
		return fieldErr("builderImage.digest", "missing")
	}
	if err := checkDigest("builderImage.digest", s.BuilderImage.Digest); err != nil {
		return err
	}
	switch {
	case s.SourceDateEpoch == 0:
		return fieldErr("sourceDateEpoch", "missing (want seconds since 1970, > 0)")
	case s.SourceDateEpoch < 0 || s.SourceDateEpoch > maxEpoch:
		return fieldErr("sourceDateEpoch", "%d is out of range (want 1 to %d)", s.SourceDateEpoch, maxEpoch)
	}
	if s.Platform != "" {
		m := platformRE.FindStringSubmatch(s.Platform)
		if m == nil || m[1] != "linux" || !slices.Contains(knownArchs, m[2]) {
			return fieldErr("platform", "%q is not linux/<arch>[/<variant>] with arch one of %s", s.Platform, strings.Join(knownArchs, ", "))
		}
	}
	return s.checkSize()
}

// checkSize refuses a spec over [MaxSpecSize]. The fields are valid.
func (s *Spec) checkSize() error {
	canon, repeated, err := s.size()
	if err != nil {
		return err
	}
	if canon+repeated > MaxSpecSize {
		return &SpecError{Msg: fmt.Sprintf("%d bytes as canonical JSON, with the %d that every attestation repeats (the source's URL or path, the lock's path, the builder image's name), is over the limit of %d: a log entry could not hold the attestations of a majority of 15 build nodes, each of which carries the spec; shorten the longest fields (build args, Maven args, modules, URLs)", canon, repeated, MaxSpecSize)}
	}
	return nil
}

// size returns what [MaxSpecSize] counts: the canonical JSON's length and
// that of the names and URIs the provenance repeats.
func (s *Spec) size() (canon, repeated int, err error) {
	b, err := s.canonical()
	if err != nil {
		return 0, 0, err
	}
	for _, d := range specDependencies(s, s.BuilderImage.Digest) {
		repeated += len(d.GetName()) + len(d.GetUri())
	}
	return len(b), repeated, nil
}

// ValidateRemote checks s as [Spec.Validate] does, and further refuses what
// only the node's own user may ask for: a spec that arrives over a network
// (from a client of a build node) must not make the node read its own files,
// use its own credentials, or reach what only its network position reaches.
// Refused are an absolute or upward source.archive.path (a relative one is
// opened inside the folder the node gives as [BuildOptions].SpecDir, never
// through a symlink out of it), git URLs other than https and http (a file
// URL reads the node's files; ssh and user@host:path log in with the node's
// keys; git:// connections cannot be routed through the node's address
// check), and archive and git URLs whose host is localhost, a numeric
// form of an IP address, or an IP address that is not on the public
// internet (loopback, private, link-local such as the cloud metadata
// service, and the other special ranges). A build of a remote spec
// ([BuildOptions].Remote) checks every address again when it connects,
// after names are resolved. Local builds use Validate, which allows all of
// these. ValidateRemote allows no host that is not public; see
// [Spec.ValidateRemoteWith].
func (s *Spec) ValidateRemote() error {
	return s.ValidateRemoteWith(RemoteOptions{})
}

// ValidateRemoteWith is [Spec.ValidateRemote] with the node operator's
// exceptions: an archive or git URL whose host (and port) o.AllowHosts
// names is accepted whatever address it is. It fails on a bad entry of
// o.AllowHosts too.
func (s *Spec) ValidateRemoteWith(o RemoteOptions) error {
	allow, err := o.allowList()
	if err != nil {
		return err
	}
	if err := s.Validate(); err != nil {
		return err
	}
	if a := s.Source.Archive; a != nil {
		if a.Path != "" {
			if err := checkRelPath("source.archive.path", a.Path); err != nil {
				return fieldErr("source.archive.path", "%q is not allowed in a spec from the network: give a URL, or a path relative to the spec's folder that stays inside it", a.Path)
			}
		} else if err := checkRemoteHost("source.archive.url", a.URL, allow); err != nil {
			return err
		}
	}
	if g := s.Source.Git; g != nil {
		if scheme := gitScheme(g.URL); scheme != "https" && scheme != "http" {
			return fieldErr("source.git.url", "%q is not allowed in a spec from the network: only https and http URLs are (a file URL reads the node's files; ssh logs in with the node's keys; git:// cannot go through the node's address check)", g.URL)
		}
		if err := checkRemoteHost("source.git.url", g.URL, allow); err != nil {
			return err
		}
	}
	return nil
}

// checkRemoteHost refuses a URL of a spec from the network whose host
// names the node or its networks: localhost, an IP address that is not
// public, or a number that clients read as an IP address (2130706433,
// 0x7f.1, 127.1, 0177.0.0.1: curl and browsers take a host whose last
// label is numeric for IPv4 in any of these forms), unless allow names
// its host and port.
func checkRemoteHost(field, rawURL string, allow allowList) error {
	u, err := url.Parse(rawURL)
	if err != nil {
		return fieldErr(field, "%q is not a URL", rawURL)
	}
	host := normHost(u.Hostname())
	port := defaultPort(u.Scheme)
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil {
			return fieldErr(field, "%q has port %q, not a number from 0 to 65535", rawURL, p)
		}
		port = uint16(n)
	}
	if allow.permitsHost(host, port) {
		return nil
	}
	refuse := func(what string) error {
		return fieldErr(field, "%q is not allowed in a spec from the network: its host is %s, which the node reaches from inside its own network; name a public host (or, on a node you run, allow this one: pyrsia-build node --allow-source-host)", rawURL, what)
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return refuse("the node itself")
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if why := nonPublic(a); why != "" {
			return refuse("a " + why + " address")
		}
		if a.Is4() && strings.Count(host, ".") == 3 && a.String() == host {
			return nil
		}
		if a.Is6() && strings.HasPrefix(u.Host, "[") {
			return nil
		}
	}
	labels := strings.Split(host, ".")
	if last := labels[len(labels)-1]; numericLabelRE.MatchString(last) {
		return refuse(fmt.Sprintf("read as an IP address (%q is not the canonical dotted form; give a host name or a.b.c.d)", host))
	}
	return nil
}

// numericLabelRE is a host label that the WHATWG URL parser (and curl)
// read as a number: decimal, octal or hex.
var numericLabelRE = regexp.MustCompile(`^([0-9]+|0[xX][0-9a-fA-F]*)$`)

// ParseRemoteSpec is [ParseSpec] followed by [Spec.ValidateRemote]: the
// parser for specs that arrive over a network.
func ParseRemoteSpec(data []byte) (*Spec, error) {
	return ParseRemoteSpecWith(data, RemoteOptions{})
}

// ParseRemoteSpecWith is [ParseSpec] followed by
// [Spec.ValidateRemoteWith]: the parser of a node whose operator allows
// some hosts that are not public.
func ParseRemoteSpecWith(data []byte, o RemoteOptions) (*Spec, error) {
	s, err := ParseSpec(data)
	if err != nil {
		return nil, err
	}
	if err := s.ValidateRemoteWith(o); err != nil {
		return nil, err
	}
	return s, nil
}

// gitScheme returns the scheme of a git URL that checkGitURL accepts:
// "ssh" for user@host:path.
func gitScheme(s string) string {
	if scpLikeRE.MatchString(s) {
		return "ssh"
	}
	u, err := url.Parse(s)
	if err != nil {
		return ""
	}
	return strings.ToLower(u.Scheme)
}

func (s *Spec) validateCoordinate() error {
	c := s.Coordinate
	if c == "" {
		return fieldErr("coordinate", "missing")
	}
	switch s.Ecosystem {
	case "oci":
		name, tag, ok := strings.Cut(c, ":")
		if !ok || strings.Contains(tag, ":") || len(name) > 255 || !ociNameRE.MatchString(name) || !ociTagRE.MatchString(tag) {
			return fieldErr("coordinate", "%q is not name:tag (name lowercase, like hello or org/hello; tag like 1.0)", c)
		}
	case "maven":
		parts := strings.Split(c, ":")
		if len(parts) != 3 || !mavenPartRE.MatchString(parts[0]) || !mavenPartRE.MatchString(parts[1]) || !mavenVerRE.MatchString(parts[2]) {
			return fieldErr("coordinate", "%q is not groupId:artifactId:version (like org.example:hello:1.0)", c)
		}
	}
	return nil
}

func (src *Source) validate() error {
	n := 0
	for _, set := range []bool{src.Git != nil, src.Archive != nil, src.Maven != nil} {
		if set {
			n++
		}
	}
	switch {
	case n == 0:
		return fieldErr("source", "missing (want git, archive or maven)")
	case n > 1:
		return fieldErr("source", "more than one of git, archive and maven is given (want exactly one)")
	case src.Maven != nil:
		m := src.Maven
		if m.Coordinate == "" {
			return fieldErr("source.maven.coordinate", "missing")
		}
		if m.SHA256 == "" {
			return fieldErr("source.maven.sha256", "missing")
		}
		f := m.lockFile()
		if err := f.validate(); err != nil {
			return fieldErr("source.maven", "%s", err)
		}
		if archiveFormat(f.File) == "" {
			return fieldErr("source.maven.file", "%q does not end in .tar, .tar.gz, .tgz or .zip", f.File)
		}
	case src.Git != nil:
		g := src.Git
		if g.URL == "" {
			return fieldErr("source.git.url", "missing")
		}
		if err := checkGitURL(g.URL); err != nil {
			return err
		}
		if g.Commit == "" {
			return fieldErr("source.git.commit", "missing")
		}
		if !isHex(g.Commit, 40) && !isHex(g.Commit, 64) {
			return fieldErr("source.git.commit", "%q is not a full commit id (40 or 64 lowercase hex digits)", g.Commit)
		}
	default:
		a := src.Archive
		switch {
		case a.Path == "" && a.URL == "":
			return fieldErr("source.archive", "missing path or url (want exactly one)")
		case a.Path != "" && a.URL != "":
			return fieldErr("source.archive", "both path and url are given (want exactly one)")
		case a.Path != "":
			if err := checkText("source.archive.path", a.Path); err != nil {
				return err
			}
			if archiveFormat(a.Path) == "" {
				return fieldErr("source.archive.path", "%q does not end in .tar, .tar.gz, .tgz or .zip", a.Path)
			}
		default:
			u, err := url.Parse(a.URL)
			if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				return fieldErr("source.archive.url", "%q is not an http or https URL", a.URL)
			}
			if archiveFormat(u.Path) == "" {
				return fieldErr("source.archive.url", "%q does not end in .tar, .tar.gz, .tgz or .zip", a.URL)
			}
		}
		if a.SHA256 == "" {
			return fieldErr("source.archive.sha256", "missing")
		}
		if !isHex(a.SHA256, 64) {
			return fieldErr("source.archive.sha256", "%q is not 64 lowercase hex digits", a.SHA256)
		}
	}
	return nil
}

var scpLikeRE = regexp.MustCompile(`^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[^\s]+$`)

func checkGitURL(s string) error {
	if checkText("source.git.url", s) != nil || strings.ContainsAny(s, " \t\r\n") || strings.HasPrefix(s, "-") {
		return fieldErr("source.git.url", "%q has spaces, control characters or a leading dash", s)
	}
	if scpLikeRE.MatchString(s) {
		return nil
	}
	u, err := url.Parse(s)
	if err == nil {
		switch u.Scheme {
		case "https", "http", "ssh", "git":
			if u.Host != "" {
				return nil
			}
		case "file":
			if u.Path != "" {
				return nil
			}
		}
	}
	return fieldErr("source.git.url", "%q is not an https, http, ssh, git or file URL, or user@host:path", s)
}

func (r *Recipe) validate(ecosystem string) error {
	switch ecosystem {
	case "oci":
		if r.Maven != nil {
			return fieldErr("recipe.maven", "given for ecosystem oci (want recipe.oci)")
		}
		if r.OCI == nil {
			return fieldErr("recipe.oci", "missing (ecosystem oci needs it)")
		}
		return r.OCI.validate()
	case "maven":
		if r.OCI != nil {
			return fieldErr("recipe.oci", "given for ecosystem maven (want recipe.maven)")
		}
		if r.Maven == nil {
			return fieldErr("recipe.maven", "missing (ecosystem maven needs it)")
		}
		return r.Maven.validate()
	}
	return nil
}

func (r *OCIRecipe) validate() error {
	if r.Dockerfile != "" {
		if err := checkRelPath("recipe.oci.dockerfile", r.Dockerfile); err != nil {
			return err
		}
	}
	if r.Context != "" {
		if err := checkRelPath("recipe.oci.context", r.Context); err != nil {
			return err
		}
	}
	if r.Target != "" && !stageRE.MatchString(r.Target) {
		return fieldErr("recipe.oci.target", "%q is not a stage name", r.Target)
	}
	for k, v := range r.BuildArgs {
		f := "recipe.oci.buildArgs." + k
		if !buildArgRE.MatchString(k) {
			return fieldErr(f, "%q is not an ARG name ([A-Za-z_][A-Za-z0-9_]*)", k)
		}
		if k == "SOURCE_DATE_EPOCH" {
			return fieldErr(f, "is set by the builder from sourceDateEpoch; remove it")
		}
		if isReservedBuildArg(k) {
			return fieldErr(f, "is not allowed: BUILDKIT_* build args change how BuildKit builds (another frontend, a shared cache namespace), not the Dockerfile; remove it")
		}
		if err := checkText(f, v); err != nil {
			return err
		}
	}
	return nil
}

// isReservedBuildArg reports whether a build arg name is BuildKit's own
// (BUILDKIT_SYNTAX, BUILDKIT_CACHE_MOUNT_NS, ...). Build arg names are
// case sensitive, but any spelling is refused.
func isReservedBuildArg(name string) bool {
	return strings.HasPrefix(strings.ToUpper(name), "BUILDKIT_")
}

func (r *MavenRecipe) validate() error {
	for i, g := range r.Goals {
		if !goalRE.MatchString(g) {
			return fieldErr(fmt.Sprintf("recipe.maven.goals[%d]", i), "%q is not a phase or goal (like package, or jar:jar)", g)
		}
	}
	for i, m := range r.Modules {
		if !moduleRE.MatchString(m) || slices.Contains(strings.Split(strings.TrimPrefix(m, "!"), "/"), "..") {
			return fieldErr(fmt.Sprintf("recipe.maven.modules[%d]", i), "%q is not a module path or [groupId]:artifactId", m)
		}
	}
	for i, a := range r.Args {
		f := fmt.Sprintf("recipe.maven.args[%d]", i)
		if err := checkText(f, a); err != nil {
			return err
		}
		if (!strings.HasPrefix(a, "-D") && !strings.HasPrefix(a, "-P")) || len(a) < 3 {
			return fieldErr(f, "%q is not allowed: only -Dproperty=value and -Pprofile (the build is always offline)", a)
		}
	}
	if l := r.Lock; l != nil {
		if err := checkRelPath("recipe.maven.lock.path", l.Path); err != nil {
			return err
		}
		if l.SHA256 == "" {
			return fieldErr("recipe.maven.lock.sha256", "missing (run 'pyrsia-build lock SPEC' to write the lock and its digest)")
		}
		if !isHex(l.SHA256, 64) {
			return fieldErr("recipe.maven.lock.sha256", "%q is not 64 lowercase hex digits", l.SHA256)
		}
	}
	if r.JDK != 0 && (r.JDK < 8 || r.JDK > 99) {
		return fieldErr("recipe.maven.jdk", "%d is not a JDK major version (like 17 or 21)", r.JDK)
	}
	if r.Umask != "" && !umaskRE.MatchString(r.Umask) {
		return fieldErr("recipe.maven.umask", "%q is not 3 octal digits (like 022 or 002)", r.Umask)
	}
	if _, ok := newlines[r.Newline]; !ok {
		return fieldErr("recipe.maven.newline", "%q is not a newline style: use lf or crlf (as the release's .buildspec says)", r.Newline)
	}
	for i, g := range r.Artifacts {
		f := fmt.Sprintf("recipe.maven.artifacts[%d]", i)
		if err := checkRelPath(f, g); err != nil {
			return err
		}
		if _, err := path.Match(g, ""); err != nil {
			return fieldErr(f, "%q is not a valid glob", g)
		}
	}
	return nil
}

// clone returns a deep copy of s with the defaults applied.
func (s *Spec) clone() *Spec {
	c := *s
	if g := s.Source.Git; g != nil {
		g2 := *g
		c.Source.Git = &g2
	}
	if a := s.Source.Archive; a != nil {
		a2 := *a
		c.Source.Archive = &a2
	}
	if m := s.Source.Maven; m != nil {
		m2 := *m
		c.Source.Maven = &m2
	}
	if r := s.Recipe.OCI; r != nil {
		r2 := *r
		if r.BuildArgs != nil {
			r2.BuildArgs = make(map[string]string, len(r.BuildArgs))
			for k, v := range r.BuildArgs {
				r2.BuildArgs[k] = v
			}
		}
		c.Recipe.OCI = &r2
	}
	if r := s.Recipe.Maven; r != nil {
		r2 := MavenRecipe{
			Goals:           slices.Clone(r.Goals),
			Modules:         slices.Clone(r.Modules),
			Args:            slices.Clone(r.Args),
			Artifacts:       slices.Clone(r.Artifacts),
			JDK:             r.JDK,
			Umask:           r.Umask,
			Newline:         r.Newline,
			CompareUpstream: r.CompareUpstream,
		}
		if r.Lock != nil {
			l := *r.Lock
			r2.Lock = &l
		}
		c.Recipe.Maven = &r2
	}
	c.applyDefaults()
	return &c
}

// CanonicalJSON returns the spec, defaults applied, as canonical JSON in
// the form of [attest.CanonicalJSON] (object keys sorted, no insignificant
// whitespace, no HTML escaping), with empty optional fields left out. It
// fails if the spec does not validate. This is the spec a log entry
// records and an attestation's externalParameters.spec holds; tools that
// take a spec file use [ReadSpec] and then this, never the file's text.
func (s *Spec) CanonicalJSON() ([]byte, error) {
	if err := s.clone().Validate(); err != nil {
		return nil, err
	}
	return s.canonical()
}

// canonical is [Spec.CanonicalJSON] without validation.
func (s *Spec) canonical() ([]byte, error) {
	raw, err := json.Marshal(s.clone())
	if err != nil {
		return nil, fmt.Errorf("spec: encoding: %w", err)
	}
	out, err := attest.CanonicalJSON(raw)
	if err != nil {
		return nil, fmt.Errorf("spec: %w", err)
	}
	return out, nil
}

// InputDigest returns "sha256:<hex>" of the spec's canonical JSON: the
// input digest that build nodes vote on.
func (s *Spec) InputDigest() (string, error) {
	b, err := s.CanonicalJSON()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// Map returns the canonical JSON decoded into a map, for SLSA provenance's
// externalParameters. Numbers are json.Number (exact; structpb accepts them).
func (s *Spec) Map() (map[string]any, error) {
	b, err := s.CanonicalJSON()
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("spec: decoding canonical JSON: %w", err)
	}
	return m, nil
}
