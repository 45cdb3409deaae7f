package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Review finding (review2): `publish` takes the input digest from the
// node's answer and never checks it is the sha256 of the spec it sent. A
// faulty or hostile node (or anything on --node) answers with another
// input's digest, and the command follows, reports and writes the proof of
// that other input as the outcome of this spec. (An answer shorter than 12
// hex digits also panics at publishcmd.go's [:12].) The command must
// compute the spec's input digest itself, refuse a different answer, and
// verify the proof bundle it writes against the network policy.
func TestReviewPublishTrustsNodeInputDigest(t *testing.T) {
	if os.Getenv("PYRSIA_REVIEW") == "" {
		t.Skip("review finding: publish does not check the node's input digest against the spec")
	}
	other := "sha256:" + strings.Repeat("ab", 32)
	var mu sync.Mutex
	var followed []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/v1/publish":
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusAccepted)
			fmt.Fprintf(w, `{"inputDigest":%q}`, other)
		case strings.HasSuffix(r.URL.Path, "/events"):
			mu.Lock()
			followed = append(followed, r.URL.Path)
			mu.Unlock()
			fmt.Fprintf(w, `{"type":"verdict","input":%q,"verdict":{"inputDigest":%q,"text":"no quorum"}}`+"\n", other, other)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	specFile := filepath.Join(t.TempDir(), "hello.yaml")
	if err := os.WriteFile(specFile, []byte(testNodeSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr := runCLI("publish", "--node", srv.URL, specFile)
	mu.Lock()
	defer mu.Unlock()
	if len(followed) > 0 || strings.Contains(stdout, other) {
		t.Fatalf("publish took the node's input digest %s for its spec and followed %v (exit %d)\n%s\n%s", other, followed, code, stdout, stderr)
	}
}
