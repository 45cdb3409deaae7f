package serve

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/index"
	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
)

// memContent is a Content over a map of bytes by digest, for tests: every
// blob it hands out is checked against its digest first. fail, when set,
// is the error for a digest instead.
type memContent struct {
	mu    sync.Mutex
	blobs map[string][]byte
	fail  map[string]error
	opens int
}

func newMemContent() *memContent {
	return &memContent{blobs: map[string][]byte{}, fail: map[string]error{}}
}

func (c *memContent) add(b []byte) string {
	d := digestOf(b)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.blobs[d] = b
	return d
}

func (c *memContent) Open(ctx context.Context, digest string, size int64) (Blob, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.opens++
	if err := c.fail[digest]; err != nil {
		return nil, err
	}
	b, ok := c.blobs[digest]
	if !ok {
		return nil, fmt.Errorf("memcontent: %s: %w", digest, fs.ErrNotExist)
	}
	if digestOf(b) != digest {
		return nil, fmt.Errorf("memcontent: %s: bytes have another digest", digest)
	}
	if size >= 0 && int64(len(b)) != size {
		return nil, fmt.Errorf("memcontent: %s: %d bytes, want %d", digest, len(b), size)
	}
	return bytesBlob{bytes.NewReader(b)}, nil
}

type bytesBlob struct{ *bytes.Reader }

func (bytesBlob) Close() error { return nil }

// mavenEntry returns an entry publishing files (name → content) under a
// Maven coordinate; its spec names the coordinate, as an entry's must.
func mavenEntry(t testing.TB, coordinate string, files map[string][]byte) *publish.Entry {
	t.Helper()
	spec, err := json.Marshal(map[string]any{"coordinate": coordinate, "ecosystem": "maven", "version": 1})
	if err != nil {
		t.Fatal(err)
	}
	e := &publish.Entry{
		Ecosystem:  publish.EcosystemMaven,
		Coordinate: coordinate,
		Spec:       spec,
		Envelopes: []*dssepb.Envelope{{
			PayloadType: "application/vnd.in-toto+json",
			Payload:     []byte(`{}`),
			Signatures:  []*dssepb.Signature{{Sig: []byte("sig")}},
		}},
	}
	e.InputDigest = e.SpecDigest()
	for name, b := range files {
		e.Subjects = append(e.Subjects, publish.Subject{Name: name, Digest: digestOf(b)})
	}
	return e
}

// mavenFixture is a repository over a real index of entries and a
// memContent holding their files.
var quiet = slog.New(slog.DiscardHandler)

type mavenFixture struct {
	index   *index.Index
	content *memContent
	handler http.Handler
}

type mavenPublished struct {
	coordinate string
	files      map[string][]byte
}

func newMavenFixture(t testing.TB, entries ...mavenPublished) *mavenFixture {
	t.Helper()
	x, err := index.New()
	if err != nil {
		t.Fatal(err)
	}
	c := newMemContent()
	for i, p := range entries {
		for _, b := range p.files {
			c.add(b)
		}
		if err := x.Add(uint64(i), mavenEntry(t, p.coordinate, p.files)); err != nil {
			t.Fatal(err)
		}
	}
	return &mavenFixture{index: x, content: c, handler: NewMaven(MavenOptions{Index: x, Content: c, Logger: quiet, Hint: "pyrsia-build publish SPEC --node 127.0.0.1:7888"})}
}

func (f *mavenFixture) do(t testing.TB, method, path string, header ...string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(method, "http://node.test/", nil)
	r.URL.Path = path // as given: httptest would clean it
	for i := 0; i+1 < len(header); i += 2 {
		r.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	f.handler.ServeHTTP(w, r)
	return w
}

var (
	jar10 = []byte("PK\x03\x04 the jar of hello-lib 1.0.0")
	pom10 = []byte("<project><artifactId>hello-lib</artifactId><version>1.0.0</version></project>")
)

func helloFixture(t testing.TB) *mavenFixture {
	return newMavenFixture(t, mavenPublished{"org.example:hello-lib:1.0.0", map[string][]byte{
		"hello-lib-1.0.0.jar": jar10,
		"hello-lib-1.0.0.pom": pom10,
	}})
}

func TestMavenServesFiles(t *testing.T) {
	f := helloFixture(t)
	const jar = "/maven2/org/example/hello-lib/1.0.0/hello-lib-1.0.0.jar"
	w := f.do(t, "GET", jar)
	if w.Code != 200 || !bytes.Equal(w.Body.Bytes(), jar10) {
		t.Fatalf("GET %s: %d %q, want 200 and the jar", jar, w.Code, w.Body.String())
	}
	for k, want := range map[string]string{
		"Content-Type":   "application/java-archive",
		"Content-Length": fmt.Sprint(len(jar10)),
		"ETag":           `"` + digestOf(jar10) + `"`,
		"Accept-Ranges":  "bytes",
	} {
		if got := w.Header().Get(k); got != want {
			t.Errorf("GET %s: %s = %q, want %q", jar, k, got, want)
		}
	}
	w = f.do(t, "GET", "/maven2/org/example/hello-lib/1.0.0/hello-lib-1.0.0.pom")
	if w.Code != 200 || !bytes.Equal(w.Body.Bytes(), pom10) || w.Header().Get("Content-Type") != "text/xml; charset=utf-8" {
		t.Errorf("GET pom: %d %q %q", w.Code, w.Header().Get("Content-Type"), w.Body.String())
	}

	w = f.do(t, "HEAD", jar)
	if w.Code != 200 || w.Body.Len() != 0 || w.Header().Get("Content-Length") != fmt.Sprint(len(jar10)) {
		t.Errorf("HEAD %s: %d, body %d bytes, Content-Length %q", jar, w.Code, w.Body.Len(), w.Header().Get("Content-Length"))
	}

	w = f.do(t, "GET", jar, "Range", "bytes=4-8")
	if w.Code != http.StatusPartialContent || w.Body.String() != string(jar10[4:9]) {
		t.Errorf("GET %s, Range bytes=4-8: %d %q, want 206 %q", jar, w.Code, w.Body.String(), jar10[4:9])
	}
	if got, want := w.Header().Get("Content-Range"), fmt.Sprintf("bytes 4-8/%d", len(jar10)); got != want {
		t.Errorf("Content-Range = %q, want %q", got, want)
	}
	w = f.do(t, "GET", jar, "Range", fmt.Sprintf("bytes=%d-", len(jar10)+5))
	if w.Code != http.StatusRequestedRangeNotSatisfiable {
		t.Errorf("GET %s past its end: %d, want 416", jar, w.Code)
	}
	w = f.do(t, "GET", jar, "If-None-Match", `"`+digestOf(jar10)+`"`)
	if w.Code != http.StatusNotModified || w.Body.Len() != 0 {
		t.Errorf("GET %s, If-None-Match its digest: %d, want 304", jar, w.Code)
	}
}

func TestMavenChecksums(t *testing.T) {
	f := helloFixture(t)
	hexOf := func(h []byte) string { return hex.EncodeToString(h) }
	s1, s5, s256, s512 := sha1.Sum(jar10), md5.Sum(jar10), sha256.Sum256(jar10), sha512.Sum512(jar10)
	want := map[string]string{"sha1": hexOf(s1[:]), "md5": hexOf(s5[:]), "sha256": hexOf(s256[:]), "sha512": hexOf(s512[:])}
	opens := 0
	for round := 0; round < 2; round++ {
		for _, kind := range checksumKinds {
			p := "/maven2/org/example/hello-lib/1.0.0/hello-lib-1.0.0.jar." + kind
			w := f.do(t, "GET", p)
			if w.Code != 200 || w.Body.String() != want[kind] {
				t.Errorf("GET %s: %d %q, want 200 %q", p, w.Code, w.Body.String(), want[kind])
			}
			if ct := w.Header().Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("GET %s: Content-Type %q", p, ct)
			}
		}
		if round == 0 {
			opens = f.content.opens
		}
	}
	// sha1, md5 and sha512 are computed in one read and cached; sha256 is
	// the digest.
	if opens != 1 || f.content.opens != 1 {
		t.Errorf("the content was opened %d times for the first round of checksums, %d in all, want 1 and 1", opens, f.content.opens)
	}
}

func TestMavenMetadata(t *testing.T) {
	var entries []mavenPublished
	// Published out of order, with snapshots and pre-releases, and one
	// version in two entries (log indexes 3 and 8: the second serves no
	// file, the first one's stays, so lastUpdated is from index 7).
	for _, v := range []string{"1.10", "1.0", "1.0-alpha", "1.0.1", "2.0-SNAPSHOT", "1.0-rc", "1.0-beta", "1.0-SNAPSHOT", "1.0.1"} {
		entries = append(entries, mavenPublished{"org.example:lib:" + v, map[string][]byte{
			"lib-" + v + ".jar": []byte("jar " + v),
		}})
	}
	entries = append(entries, mavenPublished{"org.example:other:3.0", map[string][]byte{"other-3.0.jar": []byte("other")}})
	f := newMavenFixture(t, entries...)
	const path = "/maven2/org/example/lib/maven-metadata.xml"
	w := f.do(t, "GET", path)
	want := `<?xml version="1.0" encoding="UTF-8"?>
<metadata>
  <groupId>org.example</groupId>
  <artifactId>lib</artifactId>
  <versioning>
    <latest>2.0-SNAPSHOT</latest>
    <release>1.10</release>
    <versions>
      <version>1.0-alpha</version>
      <version>1.0-beta</version>
      <version>1.0-rc</version>
      <version>1.0-SNAPSHOT</version>
      <version>1.0</version>
      <version>1.0.1</version>
      <version>1.10</version>
      <version>2.0-SNAPSHOT</version>
    </versions>
    <lastUpdated>19700101000008</lastUpdated>
  </versioning>
</metadata>
`
	if w.Code != 200 || w.Body.String() != want {
		t.Fatalf("GET %s: %d\n%s\nwant 200\n%s", path, w.Code, w.Body.String(), want)
	}
	if ct := w.Header().Get("Content-Type"); ct != "text/xml; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	for _, kind := range checksumKinds {
		w := f.do(t, "GET", path+"."+kind)
		if w.Code != 200 || w.Body.String() != hexSum(kind, []byte(want)) {
			t.Errorf("GET %s.%s: %d %q, want %q", path, kind, w.Code, w.Body.String(), hexSum(kind, []byte(want)))
		}
	}

	// Another node with the same log serves the same bytes.
	if again := newMavenFixture(t, entries...).do(t, "GET", path); again.Body.String() != want {
		t.Errorf("a second node serves\n%s", again.Body.String())
	}
}

// TestMavenMetadataCycle: versions in one of the cycles of Maven's order
// are listed alike whatever order they were published in.
func TestMavenMetadataCycle(t *testing.T) {
	vs := []string{"0", "A", "0A0", "1.0", "1"}
	var want string
	for i := range vs {
		var entries []mavenPublished
		for j := range vs {
			v := vs[(i+j)%len(vs)]
			entries = append(entries, mavenPublished{"g:a:" + v, map[string][]byte{"a-" + v + ".jar": []byte(v)}})
		}
		body := newMavenFixture(t, entries...).do(t, "GET", "/maven2/g/a/maven-metadata.xml").Body.String()
		got := body[strings.Index(body, "<versions>"):strings.Index(body, "</versions>")]
		if i == 0 {
			want = got
		} else if got != want {
			t.Errorf("published from %q on: %s, want %s", vs[i], got, want)
		}
	}
}

func TestMavenMetadataWithoutRelease(t *testing.T) {
	f := newMavenFixture(t, mavenPublished{"g:a:1.0-SNAPSHOT", map[string][]byte{"a-1.0-SNAPSHOT.jar": []byte("s")}})
	w := f.do(t, "GET", "/maven2/g/a/maven-metadata.xml")
	if w.Code != 200 || strings.Contains(w.Body.String(), "<release>") || !strings.Contains(w.Body.String(), "<latest>1.0-SNAPSHOT</latest>") {
		t.Errorf("metadata of snapshots only: %d\n%s", w.Code, w.Body.String())
	}
}

// TestMavenFileNames decides what is served of subjects whose names do or
// do not fit the coordinate.
func TestMavenFileNames(t *testing.T) {
	jarA, jarB, jarB2, jarA2 := []byte("a's jar"), []byte("b's jar from a's build"), []byte("b's own jar"), []byte("a's jar rebuilt")
	f := newMavenFixture(t,
		mavenPublished{"g.h:a:1.0", map[string][]byte{
			"a-1.0.jar":         jarA,
			"a-1.0-sources.jar": []byte("sources"),
			"a-1.0.tar.gz":      []byte("tarball"),
			"b-1.0.jar":         jarB,        // a sibling module of the same build
			"c-1.0.pom":         []byte("c"), // another sibling
			"a-2.0.jar":         []byte("another version"),
			"README.txt":        []byte("not in the layout"),
			"a-1.0.jar.sha1":    []byte("a checksum is the repository's to make"),
			"a-1.0":             []byte("no extension"),
			"a-1.0-.jar":        []byte("empty classifier"),
			"a-1.0.":            []byte("empty extension"),
			"a-1.0x.jar":        []byte("version runs on"),
		}},
		// The sibling's own coordinate comes first, whatever the order.
		mavenPublished{"g.h:b:1.0", map[string][]byte{"b-1.0.jar": jarB2}},
		// A release is immutable: a later entry does not replace a file.
		mavenPublished{"g.h:a:1.0", map[string][]byte{"a-1.0.jar": jarA2, "a-1.0-tests.jar": []byte("tests")}},
	)
	for _, c := range []struct {
		path string
		want []byte // nil: 404
	}{
		{"g/h/a/1.0/a-1.0.jar", jarA},
		{"g/h/a/1.0/a-1.0-sources.jar", []byte("sources")},
		{"g/h/a/1.0/a-1.0-tests.jar", []byte("tests")},
		{"g/h/a/1.0/a-1.0.tar.gz", []byte("tarball")},
		{"g/h/b/1.0/b-1.0.jar", jarB2},
		{"g/h/c/1.0/c-1.0.pom", []byte("c")},
		{"g/h/a/2.0/a-2.0.jar", nil},
		{"g/h/a/1.0/a-2.0.jar", nil},
		{"g/h/a/1.0/README.txt", nil},
		{"g/h/a/1.0/b-1.0.jar", nil},
		{"g/h/a/1.0/a-1.0", nil},
		{"g/h/a/1.0/a-1.0-.jar", nil},
		{"g/h/a/1.0x/a-1.0x.jar", nil},
		{"g/h/a/1.0/a-1.0x.jar", nil},
		{"g/h/a/1.0/c-1.0.pom", nil},
		{"g/a/1.0/a-1.0.jar", nil},
		{"h/a/1.0/a-1.0.jar", nil},
	} {
		w := f.do(t, "GET", "/maven2/"+c.path)
		switch {
		case c.want == nil && w.Code != 404:
			t.Errorf("GET %s: %d %q, want 404", c.path, w.Code, w.Body.String())
		case c.want != nil && (w.Code != 200 || !bytes.Equal(w.Body.Bytes(), c.want)):
			t.Errorf("GET %s: %d %q, want 200 %q", c.path, w.Code, w.Body.String(), c.want)
		}
	}
	// The repository makes the checksum of a-1.0.jar; the subject of that
	// name is not served.
	if w := f.do(t, "GET", "/maven2/g/h/a/1.0/a-1.0.jar.sha1"); w.Body.String() != hexSum("sha1", jarA) {
		t.Errorf("GET a-1.0.jar.sha1: %q, want the jar's sha1", w.Body.String())
	}
	for _, c := range []struct{ artifact, versions string }{
		{"a", "<version>1.0</version>\n"},
		{"b", "<version>1.0</version>\n"},
		{"c", "<version>1.0</version>\n"},
	} {
		w := f.do(t, "GET", "/maven2/g/h/"+c.artifact+"/maven-metadata.xml")
		if w.Code != 200 || !strings.Contains(w.Body.String(), "<versions>\n      "+c.versions+"    </versions>") {
			t.Errorf("metadata of %s: %d\n%s", c.artifact, w.Code, w.Body.String())
		}
	}
}

func TestMavenBadRequests(t *testing.T) {
	f := helloFixture(t)
	const hint = "hint: pyrsia-build publish SPEC --node 127.0.0.1:7888"
	for _, c := range []struct {
		name, method, path string
		code               int
		body               string // a part of the body
	}{
		{"dotdot", "GET", "/maven2/org/example/../example/hello-lib/1.0.0/hello-lib-1.0.0.jar", 400, `"..": starts with '.'`},
		{"dot", "GET", "/maven2/org/./example/hello-lib/1.0.0/hello-lib-1.0.0.jar", 400, "starts with '.'"},
		{"hidden", "GET", "/maven2/org/example/hello-lib/1.0.0/.hello-lib-1.0.0.jar", 400, "starts with '.'"},
		{"empty segment", "GET", "/maven2/org//example/hello-lib/1.0.0/hello-lib-1.0.0.jar", 400, "empty"},
		{"trailing slash", "GET", "/maven2/org/example/hello-lib/1.0.0/", 400, "empty"},
		{"leading slash", "GET", "/maven2//org/example/hello-lib/1.0.0/hello-lib-1.0.0.jar", 400, "empty"},
		{"space", "GET", "/maven2/org/example/hello lib/1.0.0/hello-lib-1.0.0.jar", 400, "character"},
		{"nul", "GET", "/maven2/org/example/hello-lib/1.0.0/hello-lib-1.0.0.jar\x00", 400, "character"},
		{"backslash", "GET", "/maven2/org/example/hello-lib/1.0.0/..\\hello-lib-1.0.0.jar", 400, "starts with '.'"},
		{"colon", "GET", "/maven2/org/example/hello-lib/1.0.0/c:hello-lib-1.0.0.jar", 400, "character"},
		{"unicode", "GET", "/maven2/org/example/hello-lib/1.0.0/hellö-lib-1.0.0.jar", 400, "character"},
		{"long path", "GET", "/maven2/" + strings.Repeat("a/", 600) + "f.jar", 414, "path too long"},
		{"long segment", "GET", "/maven2/org/" + strings.Repeat("a", 300) + "/1.0/f.jar", 414, "path too long"},
		{"many segments", "GET", "/maven2/" + strings.Repeat("a/", 70) + "f.jar", 414, "path too long"},
		{"dotted group", "GET", "/maven2/org.example/hello-lib/1.0.0/hello-lib-1.0.0.jar", 404, "a groupId's dots are slashes"},
		{"root", "GET", "/maven2/", 404, "ask for GROUP/PATH/ARTIFACT/VERSION/FILE"},
		{"too short", "GET", "/maven2/org/hello-lib/1.0.0", 404, "too few segments"},
		{"group metadata", "GET", "/maven2/org/maven-metadata.xml", 404, "needs a groupId and an artifactId"},
		{"outside", "GET", "/v2/org/example/hello-lib/1.0.0/hello-lib-1.0.0.jar", 404, "not under /maven2/"},
		{"unknown group", "GET", "/maven2/org/other/hello-lib/1.0.0/hello-lib-1.0.0.jar", 404, "org.other:hello-lib:1.0.0 is not published"},
		{"unknown artifact", "GET", "/maven2/org/example/hello-app/1.0.0/hello-app-1.0.0.jar", 404, "org.example:hello-app:1.0.0 is not published"},
		{"unknown version", "GET", "/maven2/org/example/hello-lib/1.0.1/hello-lib-1.0.1.jar", 404, "org.example:hello-lib:1.0.1 is not published"},
		{"unknown file", "GET", "/maven2/org/example/hello-lib/1.0.0/hello-lib-1.0.0-sources.jar", 404, "org/example/hello-lib/1.0.0/hello-lib-1.0.0-sources.jar"},
		{"unknown checksum", "GET", "/maven2/org/example/hello-lib/1.0.0/hello-lib-1.0.0-sources.jar.sha1", 404, hint},
		{"signature", "GET", "/maven2/org/example/hello-lib/1.0.0/hello-lib-1.0.0.jar.asc", 404, hint},
		{"unknown metadata", "GET", "/maven2/org/example/hello-app/maven-metadata.xml", 404, "org.example:hello-app is not published"},
		{"version metadata", "GET", "/maven2/org/example/hello-lib/1.0.0/maven-metadata.xml", 404, hint},
		{"put", "PUT", "/maven2/org/example/hello-lib/1.0.0/hello-lib-1.0.0.jar", 405, "read-only"},
		{"post", "POST", "/maven2/org/example/hello-lib/1.0.0/hello-lib-1.0.0.jar", 405, "published through the build network"},
		{"delete", "DELETE", "/maven2/org/example/hello-lib/1.0.0/hello-lib-1.0.0.jar", 405, hint},
		{"put metadata", "PUT", "/maven2/org/example/hello-lib/maven-metadata.xml", 405, "read-only"},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := f.do(t, c.method, c.path)
			if w.Code != c.code || !strings.Contains(w.Body.String(), c.body) {
				t.Errorf("%s %q: %d %q, want %d with %q", c.method, c.path, w.Code, w.Body.String(), c.code, c.body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if c.code == 405 && w.Header().Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow = %q, want GET, HEAD", w.Header().Get("Allow"))
			}
			if c.code == 404 && strings.Contains(c.name, "unknown") && !strings.Contains(w.Body.String(), hint) {
				t.Errorf("404 without the hint: %q", w.Body.String())
			}
		})
	}
}

// TestMavenContentFailures: a published file whose bytes the node cannot
// get is never a 404 (Maven would remember it as missing) and never a
// byte of something else.
func TestMavenContentFailures(t *testing.T) {
	const jar = "/maven2/org/example/hello-lib/1.0.0/hello-lib-1.0.0.jar"
	t.Run("unavailable", func(t *testing.T) {
		f := helloFixture(t)
		f.content.fail[digestOf(jar10)] = fmt.Errorf("exchange: no provider of %s: %w", digestOf(jar10), fs.ErrNotExist)
		for _, p := range []string{jar, jar + ".sha1", jar + ".md5", jar + ".sha512"} {
			for _, method := range []string{"GET", "HEAD"} {
				w := f.do(t, method, p)
				if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") == "" || (method == "GET" && !strings.Contains(w.Body.String(), "cannot get its bytes now")) {
					t.Errorf("%s %s: %d %q, want 503 with Retry-After", method, p, w.Code, w.Body.String())
				}
			}
		}
		// The sha256 is the published digest: no bytes needed.
		if w := f.do(t, "GET", jar+".sha256"); w.Code != 200 || w.Body.String() != strings.TrimPrefix(digestOf(jar10), "sha256:") {
			t.Errorf("GET .sha256: %d %q", w.Code, w.Body.String())
		}
	})
	t.Run("failing", func(t *testing.T) {
		f := helloFixture(t)
		f.content.fail[digestOf(jar10)] = errors.New("store: blob over the size limit")
		for _, p := range []string{jar, jar + ".sha1"} {
			w := f.do(t, "GET", p)
			if w.Code != http.StatusBadGateway || !strings.Contains(w.Body.String(), "store: blob over the size limit") {
				t.Errorf("GET %s: %d %q, want 502 naming the error", p, w.Code, w.Body.String())
			}
		}
	})
	t.Run("bytes go bad", func(t *testing.T) {
		// A Content whose blob reads back other bytes than it checked (a
		// disk going bad under it): no checksum is made of them.
		f := helloFixture(t)
		f.handler = NewMaven(MavenOptions{Index: f.index, Content: lyingContent{f.content}, Logger: quiet})
		w := f.do(t, "GET", jar+".sha1")
		if w.Code != http.StatusBadGateway || strings.Contains(w.Body.String(), hexSum("sha1", []byte("other bytes"))) {
			t.Errorf("GET .sha1 of bad bytes: %d %q, want 502", w.Code, w.Body.String())
		}
		if w := f.do(t, "GET", jar+".sha1"); w.Code != http.StatusBadGateway {
			t.Errorf("a second GET: %d, want 502 (nothing cached)", w.Code)
		}
	})
}

type lyingContent struct{ c *memContent }

func (l lyingContent) Open(ctx context.Context, digest string, size int64) (Blob, error) {
	if _, err := l.c.Open(ctx, digest, size); err != nil {
		return nil, err
	}
	return bytesBlob{bytes.NewReader([]byte("other bytes"))}, nil
}

func TestMavenPathRoundTrip(t *testing.T) {
	for _, c := range []struct {
		in   string
		want mavenPath
	}{
		{"org/example/hello-lib/1.0.0/hello-lib-1.0.0.jar", mavenPath{"org.example", "hello-lib", "1.0.0", "hello-lib-1.0.0.jar", ""}},
		{"org/example/hello-lib/1.0.0/hello-lib-1.0.0.jar.sha1", mavenPath{"org.example", "hello-lib", "1.0.0", "hello-lib-1.0.0.jar", "sha1"}},
		{"org/example/hello-lib/maven-metadata.xml", mavenPath{"org.example", "hello-lib", "", "maven-metadata.xml", ""}},
		{"org/example/hello-lib/maven-metadata.xml.sha512", mavenPath{"org.example", "hello-lib", "", "maven-metadata.xml", "sha512"}},
		{"g/a/1/a-1.pom.md5", mavenPath{"g", "a", "1", "a-1.pom", "md5"}},
		{"g/a.b/1.0/.sha1x", mavenPath{}},
	} {
		got, err := parseMavenPath(c.in)
		if c.want == (mavenPath{}) {
			if err == nil {
				t.Errorf("parseMavenPath(%q) = %+v, want an error", c.in, got)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("parseMavenPath(%q) = %+v, %v, want %+v", c.in, got, err, c.want)
		}
	}
}

// FuzzParseMavenPath checks that every path the parser accepts is the one
// path of what it names: no two paths reach the same file.
func FuzzParseMavenPath(f *testing.F) {
	for _, s := range []string{
		"org/example/hello-lib/1.0.0/hello-lib-1.0.0.jar",
		"org/example/hello-lib/1.0.0/hello-lib-1.0.0.jar.sha1",
		"org/example/hello-lib/maven-metadata.xml.md5",
		"org/example/../hello-lib/1.0.0/x.jar",
		"org//example/a/1/a-1.jar",
		"org.example/a/1/a-1.jar",
		"a/b/c/.sha1",
		"a/b/c/d.sha256.sha1",
		strings.Repeat("a/", 40),
		"",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseMavenPath(s)
		if err != nil {
			return
		}
		var back string
		if p.metadata() {
			back = strings.ReplaceAll(p.group, ".", "/") + "/" + p.artifact + "/" + p.file
		} else {
			back = mavenDir(p.group, p.artifact, p.version) + "/" + p.file
		}
		if p.checksum != "" {
			back += "." + p.checksum
		}
		if back != s {
			t.Fatalf("parseMavenPath(%q) = %+v, which is the path %q", s, p, back)
		}
		for _, seg := range strings.Split(s, "/") {
			if seg == "" || seg == "." || seg == ".." || len(s) > maxMavenPath {
				t.Fatalf("parseMavenPath(%q) accepted", s)
			}
		}
	})
}

// FuzzMavenHandler: whatever the path, the answer is a published file, a
// checksum, metadata, or an error, and never a panic.
func FuzzMavenHandler(f *testing.F) {
	for _, s := range []string{
		"/maven2/org/example/hello-lib/1.0.0/hello-lib-1.0.0.jar",
		"/maven2/org/example/hello-lib/1.0.0/hello-lib-1.0.0.pom.sha512",
		"/maven2/org/example/hello-lib/maven-metadata.xml.md5",
		"/maven2/org/example/hello-lib/1.0.0/../1.0.0/hello-lib-1.0.0.jar",
		"/maven2/",
		"/maven2",
	} {
		f.Add(s)
	}
	fx := helloFixture(f)
	f.Fuzz(func(t *testing.T, path string) {
		w := fx.do(t, "GET", path)
		switch w.Code {
		case 200:
			p, err := parseMavenPath(strings.TrimPrefix(path, MavenPrefix))
			if err != nil {
				t.Fatalf("GET %q: 200, but the path does not parse: %v", path, err)
			}
			if p.checksum == "" && !p.metadata() && !bytes.Equal(w.Body.Bytes(), jar10) && !bytes.Equal(w.Body.Bytes(), pom10) {
				t.Fatalf("GET %q: 200 with %q, which was not published", path, w.Body.String())
			}
		case 400, 404, 414:
		default:
			t.Fatalf("GET %q: %d %q", path, w.Code, w.Body.String())
		}
	})
}

// TestMavenConcurrent: many clients at once get the same bytes and
// checksums (run with -race).
func TestMavenConcurrent(t *testing.T) {
	f := helloFixture(t)
	const jar = "/maven2/org/example/hello-lib/1.0.0/hello-lib-1.0.0.jar"
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, c := range []struct{ path, want string }{
				{jar, string(jar10)},
				{jar + ".sha1", hexSum("sha1", jar10)},
				{jar + ".md5", hexSum("md5", jar10)},
				{"/maven2/org/example/hello-lib/maven-metadata.xml.sha1", ""},
			} {
				w := f.do(t, "GET", c.path)
				if w.Code != 200 || (c.want != "" && w.Body.String() != c.want) {
					errs <- fmt.Sprintf("GET %s: %d %q, want %q", c.path, w.Code, w.Body.String(), c.want)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// BenchmarkMaven: requests answered in process, for an artifact with 1000
// published versions in a group of 10 such artifacts (a file request
// reads the group's records from the index).
func BenchmarkMaven(b *testing.B) {
	var entries []mavenPublished
	jar := bytes.Repeat([]byte("j"), 4096)
	for a := 0; a < 10; a++ {
		for v := 0; v < 1000; v++ {
			version := fmt.Sprintf("1.%d.%d", v/10, v%10)
			name := fmt.Sprintf("lib%d", a)
			entries = append(entries, mavenPublished{"org.example:" + name + ":" + version, map[string][]byte{
				name + "-" + version + ".jar": append(jar, version...),
			}})
		}
	}
	f := newMavenFixture(b, entries...)
	for _, c := range []struct{ name, path string }{
		{"jar", "/maven2/org/example/lib3/1.50.5/lib3-1.50.5.jar"},
		{"sha1", "/maven2/org/example/lib3/1.50.5/lib3-1.50.5.jar.sha1"},
		{"metadata", "/maven2/org/example/lib3/maven-metadata.xml"},
		{"missing", "/maven2/org/example/lib3/9.9/lib3-9.9.jar"},
	} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if w := f.do(b, "GET", c.path); w.Code != 200 && c.name != "missing" {
					b.Fatalf("GET %s: %d", c.path, w.Code)
				}
			}
		})
	}
}

// TestMavenFollowsTheIndex: what the repository caches of an artifact is
// made again when the index grows, so a new version shows at once.
func TestMavenFollowsTheIndex(t *testing.T) {
	f := helloFixture(t)
	const meta = "/maven2/org/example/hello-lib/maven-metadata.xml"
	const jar11 = "/maven2/org/example/hello-lib/1.1.0/hello-lib-1.1.0.jar"
	if w := f.do(t, "GET", meta); strings.Contains(w.Body.String(), "1.1.0") {
		t.Fatalf("metadata before 1.1.0 is published:\n%s", w.Body.String())
	}
	if w := f.do(t, "GET", jar11); w.Code != 404 {
		t.Fatalf("GET %s before it is published: %d", jar11, w.Code)
	}
	jar := []byte("the jar of 1.1.0")
	f.content.add(jar)
	if err := f.index.Add(1, mavenEntry(t, "org.example:hello-lib:1.1.0", map[string][]byte{"hello-lib-1.1.0.jar": jar})); err != nil {
		t.Fatal(err)
	}
	if w := f.do(t, "GET", meta); !strings.Contains(w.Body.String(), "<release>1.1.0</release>") {
		t.Errorf("metadata after 1.1.0 is published:\n%s", w.Body.String())
	}
	if w := f.do(t, "GET", jar11); w.Code != 200 || w.Body.String() != string(jar) {
		t.Errorf("GET %s after it is published: %d %q", jar11, w.Code, w.Body.String())
	}
}
