package serve

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/pyrsia/pyrsia-build/publish/index"
)

// FuzzParsePath checks that any request path parses to a route whose name,
// tag and digest keep to the spec's grammar, or to a *pathError, and that
// the handler answers any path and method without panicking, with the
// spec's JSON error body on an error.
func FuzzParsePath(f *testing.F) {
	d := "sha256:" + strings.Repeat("ab", 32)
	for _, seed := range []string{
		"/v2/", "/v2", "/v2/_catalog", "/v2/hello/manifests/1.0", "/v2/hello/manifests/" + d,
		"/v2/library/hello/manifests/latest", "/v2/a/b/c/blobs/" + d, "/v2/hello/tags/list",
		"/v2/hello/blobs/uploads/", "/v2/hello/blobs/uploads/123", "/v2/hello/referrers/" + d,
		"/v2/../manifests/x", "/v2/hello/manifests/.INVALID_MANIFEST_NAME", "/v2/hello/manifests/sha256:totallywrong",
		"/v2/a/manifests/manifests/manifests/b", "/v2//blobs/" + d, "/v2/hello/blobs/sha512:abc", "/v3/x",
		"/v2/a__b--c.d/manifests/t", "/v2/a___b/manifests/t", "/v2/hello/manifests/" + strings.Repeat("x", 200),
	} {
		f.Add(seed)
	}
	x, err := index.New()
	if err != nil {
		f.Fatal(err)
	}
	h := NewOCI(OCIOptions{Index: x, Content: nil, Logger: slog.New(slog.DiscardHandler)})
	f.Fuzz(func(t *testing.T, p string) {
		r, err := parsePath(p)
		if err != nil {
			var pe *pathError
			if !errors.As(err, &pe) || pe.code == "" || pe.status < 400 {
				t.Fatalf("parsePath(%q): %v, not a *pathError with a code", p, err)
			}
		} else if r.kind != routeBase && r.kind != routeCatalog {
			if len(r.name) > maxName || !nameRE.MatchString(r.name) {
				t.Fatalf("parsePath(%q): name %q out of the grammar", p, r.name)
			}
			for _, seg := range strings.Split(r.name, "/") {
				if seg == ".." || seg == "." || seg == "" {
					t.Fatalf("parsePath(%q): name %q has segment %q", p, r.name, seg)
				}
			}
			if r.tag != "" && !tagRE.MatchString(r.tag) {
				t.Fatalf("parsePath(%q): tag %q out of the grammar", p, r.tag)
			}
			if r.digest != "" && !digestRE.MatchString(r.digest) {
				t.Fatalf("parsePath(%q): digest %q out of the grammar", p, r.digest)
			}
			if r.kind == routeManifest && (r.tag == "") == (r.digest == "") {
				t.Fatalf("parsePath(%q): a manifest route with tag %q and digest %q", p, r.tag, r.digest)
			}
		}
		// The whole handler, on an empty index (Content is never reached).
		for _, method := range []string{"GET", "HEAD", "PUT"} {
			req := &http.Request{Method: method, URL: &url.URL{Path: p}, Header: http.Header{}}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req.WithContext(t.Context()))
			if w.Code == 200 && (p == "/v2" || p == "/v2/") {
				continue
			}
			if w.Code < 400 {
				t.Fatalf("%s %q on an empty index: %d", method, p, w.Code)
			}
			var body struct{ Errors []ociError }
			if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil || len(body.Errors) != 1 {
				t.Fatalf("%s %q: error body %q is not the spec's", method, p, w.Body.Bytes())
			}
		}
	})
}
