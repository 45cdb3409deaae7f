package serve

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/index"
	"github.com/pyrsia/pyrsia-build/publish/store"
)

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// image is a small OCI image: a config, layers, and the manifest naming
// them.
type image struct {
	config, manifest []byte
	layers           [][]byte
}

func newImage(seed string, layers ...string) image {
	im := image{config: []byte(`{"architecture":"amd64","os":"linux","seed":"` + seed + `"}`)}
	var descs []string
	for _, l := range layers {
		im.layers = append(im.layers, []byte(l))
		descs = append(descs, fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}`, digestOf([]byte(l)), len(l)))
	}
	im.manifest = []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[%s]}`,
		digestOf(im.config), len(im.config), strings.Join(descs, ",")))
	return im
}

func (im image) digest() string { return digestOf(im.manifest) }

func (im image) put(t testing.TB, s *store.Store) {
	t.Helper()
	for _, b := range append([][]byte{im.config, im.manifest}, im.layers...) {
		if err := s.Put(context.Background(), digestOf(b), int64(len(b)), bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
}

// ociEntry is an entry publishing manifest digest md as coordinate.
func ociEntry(coordinate, md, input string) *publish.Entry {
	spec, _ := json.Marshal(map[string]string{"coordinate": coordinate, "ecosystem": "oci", "input": input})
	return &publish.Entry{
		InputDigest: digestOf(spec),
		Ecosystem:   "oci",
		Coordinate:  coordinate,
		Spec:        spec,
		Subjects:    []publish.Subject{{Name: coordinate, Digest: md}},
	}
}

const testHint = "request it with: pyrsia-build publish SPEC --node ADDR"

type fixture struct {
	srv            *httptest.Server
	store          *store.Store
	idx            *index.Index
	v1, v2, other  image
	unnamed, absnt []byte
}

// newFixture publishes:
//
//	0 hello:1.0    v1
//	1 hello:latest v1
//	2 other:1      other
//	3 hello:1.0    v2 (the tag moved)
//	4 hello:2.0    v2
//	5 team/tool:x  other
//
// v1's second layer is not in the store (published, bytes missing), and
// an unnamed blob is in the store but in no manifest.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	s, err := store.Open(t.TempDir(), store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f := &fixture{
		store: s,
		v1:    newImage("v1", strings.Repeat("layer one of v1 ", 100), "second layer of v1, never stored"),
		v2:    newImage("v2", "layer of v2"),
		other: newImage("other", "layer of other"),
	}
	f.v1.put(t, s)
	f.v2.put(t, s)
	f.other.put(t, s)
	f.absnt = f.v1.layers[1]
	// Remove the missing layer: put everything, then open a new store
	// without it.
	f.unnamed = []byte("in the store, in no manifest")
	if err := s.Put(context.Background(), digestOf(f.unnamed), -1, bytes.NewReader(f.unnamed)); err != nil {
		t.Fatal(err)
	}
	f.idx, err = index.New()
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range []*publish.Entry{
		ociEntry("hello:1.0", f.v1.digest(), "a"),
		ociEntry("hello:latest", f.v1.digest(), "b"),
		ociEntry("other:1", f.other.digest(), "c"),
		ociEntry("hello:1.0", f.v2.digest(), "d"),
		ociEntry("hello:2.0", f.v2.digest(), "e"),
		ociEntry("team/tool:x", f.other.digest(), "f"),
	} {
		if err := f.idx.Add(uint64(i), e); err != nil {
			t.Fatal(err)
		}
	}
	f.srv = httptest.NewServer(NewOCI(OCIOptions{Index: f.idx, Content: StoreContent{Store: s}, Hint: testHint, Logger: slog.New(slog.DiscardHandler)}))
	t.Cleanup(f.srv.Close)
	return f
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (f *fixture) do(t *testing.T, method, path string, header ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{resp.StatusCode, resp.Header, b}
}

// errorCode returns the code of a spec error body, or fails.
func errorCode(t *testing.T, r response) (code, message string) {
	t.Helper()
	var body struct {
		Errors []struct{ Code, Message string }
	}
	if err := json.Unmarshal(r.body, &body); err != nil || len(body.Errors) != 1 {
		t.Fatalf("error body %q is not the spec's {\"errors\":[...]} with one error (%v)", r.body, err)
	}
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type %q, want application/json", ct)
	}
	return body.Errors[0].Code, body.Errors[0].Message
}

func TestOCIBase(t *testing.T) {
	f := newFixture(t)
	for _, p := range []string{"/v2/", "/v2"} {
		r := f.do(t, "GET", p)
		if r.status != 200 || string(r.body) != "{}" || r.header.Get("Docker-Distribution-API-Version") != "registry/2.0" {
			t.Errorf("GET %s: %d %q %v, want 200 {} with Docker-Distribution-API-Version: registry/2.0", p, r.status, r.body, r.header)
		}
	}
}

func TestOCIManifests(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, path string
		want       image
	}{
		{"tag moved to the latest entry", "/v2/hello/manifests/1.0", f.v2},
		{"another tag", "/v2/hello/manifests/latest", f.v1},
		{"by digest, an older publication", "/v2/hello/manifests/" + f.v1.digest(), f.v1},
		{"by digest", "/v2/hello/manifests/" + f.v2.digest(), f.v2},
		{"nested name", "/v2/team/tool/manifests/x", f.other},
		{"Docker's mirror form", "/v2/library/hello/manifests/2.0", f.v2},
		{"mirror form by digest", "/v2/library/other/manifests/" + f.other.digest(), f.other},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, method := range []string{"GET", "HEAD"} {
				r := f.do(t, method, tt.path, "Accept", "application/vnd.oci.image.manifest.v1+json")
				if r.status != 200 {
					t.Fatalf("%s %s: %d %s, want 200", method, tt.path, r.status, r.body)
				}
				wantBody := tt.want.manifest
				if method == "HEAD" {
					wantBody = nil
				}
				if !bytes.Equal(r.body, wantBody) {
					t.Errorf("%s %s: body %q, want %q", method, tt.path, r.body, wantBody)
				}
				for k, v := range map[string]string{
					"Content-Type":          "application/vnd.oci.image.manifest.v1+json",
					"Docker-Content-Digest": tt.want.digest(),
					"Content-Length":        fmt.Sprint(len(tt.want.manifest)),
				} {
					if got := r.header.Get(k); got != v {
						t.Errorf("%s %s: %s: %q, want %q", method, tt.path, k, got, v)
					}
				}
			}
		})
	}
}

func TestOCIMediaType(t *testing.T) {
	f := newFixture(t)
	// A Docker schema 2 manifest keeps its own media type.
	m := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.docker.distribution.manifest.v2+json","config":{"mediaType":"application/vnd.docker.container.image.v1+json","digest":"` + digestOf(f.v2.config) + `","size":` + fmt.Sprint(len(f.v2.config)) + `},"layers":[]}`)
	if err := f.store.Put(context.Background(), digestOf(m), -1, bytes.NewReader(m)); err != nil {
		t.Fatal(err)
	}
	if err := f.idx.Add(6, ociEntry("docker:1", digestOf(m), "g")); err != nil {
		t.Fatal(err)
	}
	r := f.do(t, "GET", "/v2/docker/manifests/1")
	if r.status != 200 || r.header.Get("Content-Type") != "application/vnd.docker.distribution.manifest.v2+json" {
		t.Errorf("GET a Docker manifest: %d, Content-Type %q; want 200 and its own media type", r.status, r.header.Get("Content-Type"))
	}
}

func TestOCIBlobs(t *testing.T) {
	f := newFixture(t)
	layer := f.v1.layers[0]
	ld := digestOf(layer)
	t.Run("whole", func(t *testing.T) {
		for _, p := range []string{"/v2/hello/blobs/" + ld, "/v2/library/hello/blobs/" + ld, "/v2/hello/blobs/" + digestOf(f.v2.config)} {
			r := f.do(t, "GET", p)
			if r.status != 200 {
				t.Fatalf("GET %s: %d %s", p, r.status, r.body)
			}
			if got := digestOf(r.body); got != r.header.Get("Docker-Content-Digest") || !strings.HasSuffix(p, got) {
				t.Errorf("GET %s: body hashes to %s, Docker-Content-Digest %s", p, got, r.header.Get("Docker-Content-Digest"))
			}
			if r.header.Get("Content-Length") != fmt.Sprint(len(r.body)) {
				t.Errorf("Content-Length %s for %d bytes", r.header.Get("Content-Length"), len(r.body))
			}
		}
		r := f.do(t, "HEAD", "/v2/hello/blobs/"+ld)
		if r.status != 200 || len(r.body) != 0 || r.header.Get("Content-Length") != fmt.Sprint(len(layer)) || r.header.Get("Docker-Content-Digest") != ld {
			t.Errorf("HEAD blob: %d, %d bytes, headers %v", r.status, len(r.body), r.header)
		}
	})
	t.Run("ranges", func(t *testing.T) {
		tests := []struct {
			rng          string
			status       int
			body, cRange string
		}{
			{"bytes=10-19", 206, string(layer[10:20]), fmt.Sprintf("bytes 10-19/%d", len(layer))},
			{"bytes=1590-", 206, string(layer[1590:]), fmt.Sprintf("bytes 1590-1599/%d", len(layer))},
			{"bytes=-5", 206, string(layer[len(layer)-5:]), fmt.Sprintf("bytes 1595-1599/%d", len(layer))},
			{"bytes=5000-6000", 416, "", fmt.Sprintf("bytes */%d", len(layer))},
		}
		for _, tt := range tests {
			r := f.do(t, "GET", "/v2/hello/blobs/"+ld, "Range", tt.rng)
			if r.status != tt.status || r.header.Get("Content-Range") != tt.cRange || (tt.status == 206 && string(r.body) != tt.body) {
				t.Errorf("Range %s: %d, Content-Range %q, body %q; want %d, %q, %q", tt.rng, r.status, r.header.Get("Content-Range"), r.body, tt.status, tt.cRange, tt.body)
			}
		}
	})
	t.Run("not served", func(t *testing.T) {
		tests := []struct {
			name, path string
			status     int
			code       string
		}{
			{"another repository's blob", "/v2/hello/blobs/" + digestOf(f.other.layers[0]), 404, "BLOB_UNKNOWN"},
			{"in the store, in no manifest", "/v2/hello/blobs/" + digestOf(f.unnamed), 404, "BLOB_UNKNOWN"},
			{"a manifest as a blob", "/v2/hello/blobs/" + f.v1.digest(), 404, "BLOB_UNKNOWN"},
			{"unknown name", "/v2/nothing/blobs/" + ld, 404, "NAME_UNKNOWN"},
			{"unknown digest", "/v2/hello/blobs/" + digestOf([]byte("hello world")), 404, "BLOB_UNKNOWN"},
			{"bad digest", "/v2/hello/blobs/sha256:abc", 400, "DIGEST_INVALID"},
			{"upper-case digest", "/v2/hello/blobs/" + strings.ToUpper(ld), 400, "DIGEST_INVALID"},
			{"other algorithm", "/v2/hello/blobs/sha512:" + strings.Repeat("ab", 64), 404, "BLOB_UNKNOWN"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := f.do(t, "GET", tt.path)
				if code, _ := errorCode(t, r); r.status != tt.status || code != tt.code {
					t.Errorf("GET %s: %d %s, want %d %s", tt.path, r.status, code, tt.status, tt.code)
				}
				if h := f.do(t, "HEAD", tt.path); h.status != tt.status || len(h.body) != 0 {
					t.Errorf("HEAD %s: %d with %d bytes, want %d without a body", tt.path, h.status, len(h.body), tt.status)
				}
			})
		}
	})
}

func TestOCIMissingAndDamaged(t *testing.T) {
	f := newFixture(t)
	// Published, but the bytes are gone from the store (damaged on disk):
	// never served, a 404 so that a client tries elsewhere.
	dir := t.TempDir()
	s, err := store.Open(dir, store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	layer := f.v1.layers[0]
	for _, b := range [][]byte{f.v1.config, f.v1.manifest, layer} { // not f.absnt
		if err := s.Put(context.Background(), digestOf(b), -1, bytes.NewReader(b)); err != nil {
			t.Fatal(err)
		}
	}
	blobPath := func(b []byte) string {
		return filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(digestOf(b), "sha256:"))
	}
	if err := os.Truncate(blobPath(layer), 3); err != nil {
		t.Fatal(err)
	}
	// Altered in place, same size.
	alt := bytes.Clone(f.v1.config)
	alt[0] = '['
	if err := os.WriteFile(blobPath(f.v1.config), alt, 0o644); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewOCI(OCIOptions{Index: f.idx, Content: StoreContent{Store: s}, Logger: slog.New(slog.DiscardHandler)}))
	defer srv.Close()
	f.srv = srv
	for _, b := range [][]byte{layer, f.v1.config, f.absnt} {
		for _, method := range []string{"GET", "HEAD"} {
			r := f.do(t, method, "/v2/hello/blobs/"+digestOf(b))
			if r.status != 404 || bytes.Contains(r.body, b[:3]) {
				t.Errorf("%s of a damaged or missing blob: %d %q, want 404", method, r.status, r.body)
			}
		}
	}
	if st := s.Stats(); st.Damaged != 2 {
		t.Errorf("store Stats() = %+v, want 2 damaged", st)
	}
	// A damaged manifest is not served either (by a handler that has not
	// read it before: one that has serves the bytes it checked then).
	if err := os.WriteFile(blobPath(f.v1.manifest), bytes.ToUpper(f.v1.manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(NewOCI(OCIOptions{Index: f.idx, Content: StoreContent{Store: s}, Logger: slog.New(slog.DiscardHandler)}))
	defer f.srv.Close()
	if r := f.do(t, "GET", "/v2/hello/manifests/latest"); r.status != 404 {
		t.Errorf("GET a damaged manifest: %d %q, want 404", r.status, r.body)
	}
}

func TestOCIUnknown(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, path   string
		status       int
		code         string
		hint         bool
		messageHolds string
	}{
		{"unknown name", "/v2/nothing/manifests/1.0", 404, "NAME_UNKNOWN", true, `"nothing"`},
		{"unknown name, mirror form", "/v2/library/nothing/manifests/1.0", 404, "NAME_UNKNOWN", true, `"library/nothing"`},
		{"unknown tag", "/v2/hello/manifests/9.9", 404, "MANIFEST_UNKNOWN", true, `"9.9"`},
		{"another name's manifest", "/v2/hello/manifests/" + f.other.digest(), 404, "MANIFEST_UNKNOWN", false, f.other.digest()},
		{"a blob as a manifest", "/v2/hello/manifests/" + digestOf(f.v1.config), 404, "MANIFEST_UNKNOWN", false, ""},
		{"invalid tag", "/v2/hello/manifests/.INVALID_MANIFEST_NAME", 404, "MANIFEST_UNKNOWN", false, "not a valid tag"},
		{"over-long tag", "/v2/hello/manifests/" + strings.Repeat("t", 129), 404, "MANIFEST_UNKNOWN", false, "not a valid tag"},
		{"bad digest", "/v2/hello/manifests/sha256:totallywrong", 400, "DIGEST_INVALID", false, "sha256:totallywrong"},
		{"unknown tags", "/v2/nothing/tags/list", 404, "NAME_UNKNOWN", true, ""},
		{"bad name", "/v2/Hello/manifests/1.0", 400, "NAME_INVALID", false, `"Hello"`},
		{"dot-dot name", "/v2/../manifests/1.0", 400, "NAME_INVALID", false, ""},
		{"dot-dot in a name", "/v2/hello/../../etc/manifests/1.0", 400, "NAME_INVALID", false, ""},
		{"empty component", "/v2/hello//x/manifests/1.0", 400, "NAME_INVALID", false, ""},
		{"over-long name", "/v2/" + strings.Repeat("a", 256) + "/manifests/1.0", 400, "NAME_INVALID", false, "over the limit"},
		{"over-long path", "/v2/" + strings.Repeat("a/", 600) + "manifests/1.0", 400, "NAME_INVALID", false, "over the limit"},
		{"not an API path", "/v2/hello/things", 404, "NAME_UNKNOWN", false, ""},
		{"not under v2", "/v3/hello/manifests/1.0", 404, "NAME_UNKNOWN", false, ""},
		{"catalog", "/v2/_catalog", 404, "UNSUPPORTED", false, ""},
		{"upload status", "/v2/hello/blobs/uploads/123", 405, "UNSUPPORTED", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.do(t, "GET", tt.path)
			code, msg := errorCode(t, r)
			if r.status != tt.status || code != tt.code {
				t.Errorf("GET %s: %d %s (%s), want %d %s", tt.path, r.status, code, msg, tt.status, tt.code)
			}
			if tt.hint != strings.Contains(msg, testHint) {
				t.Errorf("message %q: hint shown %v, want %v", msg, !tt.hint, tt.hint)
			}
			if !strings.Contains(msg, tt.messageHolds) {
				t.Errorf("message %q does not name %s", msg, tt.messageHolds)
			}
		})
	}
}

func TestOCIPushRefused(t *testing.T) {
	f := newFixture(t)
	for _, mp := range [][2]string{
		{"POST", "/v2/hello/blobs/uploads/"},
		{"POST", "/v2/newname/blobs/uploads/?mount=" + digestOf(f.v1.config) + "&from=hello"},
		{"PATCH", "/v2/hello/blobs/uploads/abc"},
		{"PUT", "/v2/hello/blobs/uploads/abc?digest=" + digestOf(f.v1.config)},
		{"PUT", "/v2/hello/manifests/1.0"},
		{"PUT", "/v2/hello/manifests/" + f.v1.digest()},
		{"DELETE", "/v2/hello/manifests/" + f.v1.digest()},
		{"DELETE", "/v2/hello/manifests/1.0"},
		{"DELETE", "/v2/hello/blobs/" + digestOf(f.v1.config)},
		{"DELETE", "/v2/nothing/blobs/sha256:bad"},
		{"POST", "/v2/"},
		{"OPTIONS", "/v2/hello/manifests/1.0"},
	} {
		r := f.do(t, mp[0], mp[1])
		if code, _ := errorCode(t, r); r.status != 405 || code != "UNSUPPORTED" || r.header.Get("Allow") != "GET, HEAD" {
			t.Errorf("%s %s: %d %s, Allow %q; want 405 UNSUPPORTED, Allow: GET, HEAD", mp[0], mp[1], r.status, code, r.header.Get("Allow"))
		}
	}
	// Nothing changed.
	if r := f.do(t, "GET", "/v2/hello/manifests/1.0"); r.status != 200 || !bytes.Equal(r.body, f.v2.manifest) {
		t.Errorf("after refused pushes: %d", r.status)
	}
}

func TestOCITags(t *testing.T) {
	f := newFixture(t)
	for i, tag := range []string{"b", "a", "c", "2.0", "Z"} {
		if err := f.idx.Add(uint64(10+i), ociEntry("many:"+tag, f.v2.digest(), "tags"+tag)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		path     string
		name     string
		want     []string
		wantLink string
	}{
		{"/v2/hello/tags/list", "hello", []string{"1.0", "2.0", "latest"}, ""},
		{"/v2/library/hello/tags/list", "library/hello", []string{"1.0", "2.0", "latest"}, ""},
		{"/v2/team/tool/tags/list", "team/tool", []string{"x"}, ""},
		{"/v2/many/tags/list", "many", []string{"2.0", "Z", "a", "b", "c"}, ""},
		{"/v2/many/tags/list?n=2", "many", []string{"2.0", "Z"}, `</v2/many/tags/list?last=Z&n=2>; rel="next"`},
		{"/v2/many/tags/list?n=2&last=Z", "many", []string{"a", "b"}, `</v2/many/tags/list?last=b&n=2>; rel="next"`},
		{"/v2/many/tags/list?n=2&last=b", "many", []string{"c"}, ""},
		{"/v2/many/tags/list?n=5", "many", []string{"2.0", "Z", "a", "b", "c"}, ""},
		{"/v2/many/tags/list?last=a", "many", []string{"b", "c"}, ""},
		{"/v2/many/tags/list?last=aa", "many", []string{"b", "c"}, ""},
		{"/v2/many/tags/list?last=c", "many", []string{}, ""},
		{"/v2/many/tags/list?n=0", "many", []string{}, ""},
	}
	for _, tt := range tests {
		r := f.do(t, "GET", tt.path)
		var body struct {
			Name string
			Tags []string
		}
		if err := json.Unmarshal(r.body, &body); err != nil || r.status != 200 {
			t.Fatalf("GET %s: %d %s", tt.path, r.status, r.body)
		}
		if body.Name != tt.name || !slices.Equal(body.Tags, tt.want) || body.Tags == nil || r.header.Get("Link") != tt.wantLink {
			t.Errorf("GET %s: %s %q, Link %q; want %s %q, Link %q", tt.path, body.Name, body.Tags, r.header.Get("Link"), tt.name, tt.want, tt.wantLink)
		}
	}
	for _, bad := range []string{"n=-1", "n=x", "n=99999999999999999999"} {
		r := f.do(t, "GET", "/v2/many/tags/list?"+bad)
		if code, _ := errorCode(t, r); r.status != 400 || code != "PAGINATION_NUMBER_INVALID" {
			t.Errorf("tags/list?%s: %d %s, want 400 PAGINATION_NUMBER_INVALID", bad, r.status, code)
		}
	}
}

func TestStoreContentSize(t *testing.T) {
	s, err := store.Open(t.TempDir(), store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b := []byte("twelve bytes")
	if err := s.Put(context.Background(), digestOf(b), 12, bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	c := StoreContent{Store: s}
	for _, size := range []int64{-1, 12} {
		bl, err := c.Open(context.Background(), digestOf(b), size)
		if err != nil {
			t.Fatalf("Open(size %d): %v", size, err)
		}
		bl.Close()
	}
	if _, err := c.Open(context.Background(), digestOf(b), 13); err == nil || !strings.Contains(err.Error(), "not the 13") {
		t.Errorf("Open with a wrong size: %v, want an error naming both sizes", err)
	}
}

func TestOCILibraryOwnEntries(t *testing.T) {
	f := newFixture(t)
	// library/own has entries of its own: they alone answer for it, and
	// own's are not mixed in.
	if err := f.idx.Add(6, ociEntry("library/own:1", f.v1.digest(), "own1")); err != nil {
		t.Fatal(err)
	}
	if err := f.idx.Add(7, ociEntry("own:2", f.v2.digest(), "own2")); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path   string
		status int
		code   string
	}{
		{"/v2/library/own/manifests/1", 200, ""},
		{"/v2/library/own/manifests/" + f.v1.digest(), 200, ""},
		{"/v2/library/own/blobs/" + digestOf(f.v1.config), 200, ""},
		{"/v2/library/own/manifests/2", 404, "MANIFEST_UNKNOWN"},
		{"/v2/library/own/manifests/" + f.v2.digest(), 404, "MANIFEST_UNKNOWN"},
		{"/v2/library/own/blobs/" + digestOf(f.v2.config), 404, "BLOB_UNKNOWN"},
		{"/v2/own/manifests/2", 200, ""},
		{"/v2/own/manifests/1", 404, "MANIFEST_UNKNOWN"},
	}
	for _, tt := range tests {
		r := f.do(t, "GET", tt.path)
		if r.status != tt.status {
			t.Errorf("GET %s: %d %s, want %d", tt.path, r.status, r.body, tt.status)
			continue
		}
		if tt.code != "" {
			if code, _ := errorCode(t, r); code != tt.code {
				t.Errorf("GET %s: %s, want %s", tt.path, code, tt.code)
			}
		}
	}
	r := f.do(t, "GET", "/v2/library/own/tags/list")
	if string(r.body) != `{"name":"library/own","tags":["1"]}` {
		t.Errorf("tags of library/own: %s", r.body)
	}
}

func TestOCIConcurrent(t *testing.T) {
	f := newFixture(t)
	paths := []string{
		"/v2/hello/manifests/1.0", "/v2/hello/manifests/latest", "/v2/other/manifests/1",
		"/v2/hello/blobs/" + digestOf(f.v1.layers[0]), "/v2/hello/blobs/" + digestOf(f.v2.config),
		"/v2/library/hello/manifests/" + f.v1.digest(), "/v2/hello/tags/list",
	}
	errs := make(chan error, 16)
	for g := range 16 {
		go func() {
			for i := range 20 {
				p := paths[(g+i)%len(paths)]
				resp, err := f.srv.Client().Get(f.srv.URL + p)
				if err != nil {
					errs <- err
					return
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					errs <- fmt.Errorf("GET %s: %d %s", p, resp.StatusCode, b)
					return
				}
				if d := resp.Header.Get("Docker-Content-Digest"); d != "" && d != digestOf(b) {
					errs <- fmt.Errorf("GET %s: body hashes to %s, header says %s", p, digestOf(b), d)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 16 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
