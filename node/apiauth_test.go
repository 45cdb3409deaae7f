package node

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestAPIPostChecks: a POST to the API needs a local Host, no Origin, a
// JSON or YAML content type and the node's token; each refusal says what
// is missing.
func TestAPIPostChecks(t *testing.T) {
	dir := t.TempDir()
	tok, err := LoadAPIToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := LoadAPIToken(dir); err != nil || again != tok {
		t.Fatalf("second load: %q, %v; want the same token", again, err)
	}
	if fi, err := os.Stat(filepath.Join(dir, APITokenFile)); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file: %v, %v", fi, err)
	}
	n := &Node{apiToken: tok}
	for _, c := range []struct {
		name, url string
		hdr       map[string]string
		code      int
		says      string
	}{
		{"ok", "http://127.0.0.1:7888/v1/publish", map[string]string{"Content-Type": "application/yaml", "Authorization": "Bearer " + tok}, 0, ""},
		{"ok localhost json", "http://localhost:7888/v1/publish", map[string]string{"Content-Type": "application/json; charset=utf-8", "Authorization": "Bearer " + tok}, 0, ""},
		{"origin", "http://127.0.0.1:7888/v1/publish", map[string]string{"Origin": "https://evil.example", "Content-Type": "application/json", "Authorization": "Bearer " + tok}, 403, "Origin"},
		{"cross-site fetch", "http://127.0.0.1:7888/v1/publish", map[string]string{"Sec-Fetch-Site": "cross-site", "Content-Type": "application/json", "Authorization": "Bearer " + tok}, 403, "Sec-Fetch-Site"},
		{"rebinding", "http://evil.example:7888/v1/publish", map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + tok}, 403, "Host"},
		{"other ip", "http://10.1.2.3:7888/v1/publish", map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + tok}, 403, "Host"},
		{"text/plain", "http://127.0.0.1:7888/v1/publish", map[string]string{"Content-Type": "text/plain", "Authorization": "Bearer " + tok}, 415, "application/yaml"},
		{"no type", "http://127.0.0.1:7888/v1/publish", map[string]string{"Authorization": "Bearer " + tok}, 415, "application/yaml"},
		{"no token", "http://127.0.0.1:7888/v1/publish", map[string]string{"Content-Type": "application/json"}, 401, APITokenFile},
		{"wrong token", "http://127.0.0.1:7888/v1/publish", map[string]string{"Content-Type": "application/json", "Authorization": "Bearer " + strings.Repeat("0", 64)}, 401, APITokenFile},
	} {
		req := httptest.NewRequest(http.MethodPost, c.url, strings.NewReader("{}"))
		for k, v := range c.hdr {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		ok := n.checkPost(rec, req)
		if c.code == 0 {
			if !ok {
				t.Errorf("%s: refused: %d %s", c.name, rec.Code, rec.Body)
			}
			continue
		}
		if ok || rec.Code != c.code || !strings.Contains(rec.Body.String(), c.says) {
			t.Errorf("%s: got %v, %d %s; want %d saying %q", c.name, ok, rec.Code, strings.TrimSpace(rec.Body.String()), c.code, c.says)
		}
	}
	// A node without a token (no API) refuses every POST.
	req := httptest.NewRequest(http.MethodPost, "http://127.0.0.1/v1/publish", nil)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer ")
	if (&Node{}).checkPost(httptest.NewRecorder(), req) {
		t.Error("a node without a token accepted an empty one")
	}
}
