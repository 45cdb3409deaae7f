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

	"github.com/pyrsia/pyrsia-build/node"
	"github.com/pyrsia/pyrsia-build/publish/policy"
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
	dir := t.TempDir()
	specFile := filepath.Join(dir, "hello.yaml")
	if err := os.WriteFile(specFile, []byte(testNodeSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	policyFile, data := testPolicyFile(t, dir, 3)
	code, stdout, stderr := runCLI("publish", "--node", srv.URL, "--policy", policyFile, "--data", data, specFile)
	mu.Lock()
	defer mu.Unlock()
	if len(followed) > 0 || strings.Contains(stdout, other) {
		t.Fatalf("publish took the node's input digest %s for its spec and followed %v (exit %d)\n%s\n%s", other, followed, code, stdout, stderr)
	}
	if code != exitNotVerified || !strings.Contains(stderr, "the node answered input digest") {
		t.Fatalf("publish with a wrong input digest from the node: exit %d, want 1 saying so\n%s", code, stderr)
	}
	// Without --policy nothing is sent.
	if code, _, stderr := runCLI("publish", "--node", srv.URL, "--data", data, specFile); code != exitInput || !strings.Contains(stderr, "--policy is required") {
		t.Fatalf("publish without --policy: exit %d, %s", code, stderr)
	}
}

// testPolicyFile writes a policy of n build nodes (keys under dir) and an
// API token for the first, and returns the policy file and the first
// node's data folder.
func testPolicyFile(t *testing.T, dir string, n int) (policyFile, data string) {
	t.Helper()
	p := &policy.Policy{Version: policy.Version, Name: "test.example/net"}
	for i := range n {
		k, err := node.InitKeys(filepath.Join(dir, fmt.Sprint(i)), fmt.Sprintf("node-%c", 'a'+i), nil)
		if err != nil {
			t.Fatal(err)
		}
		pn := k.PolicyNode()
		p.Nodes = append(p.Nodes, policy.Node{Name: pn.Name, CosignKey: pn.CosignKey, PeerID: pn.PeerID, NoteKey: pn.NoteKey})
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	policyFile = filepath.Join(dir, "policy.json")
	if err := os.WriteFile(policyFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	data = filepath.Join(dir, "0")
	if _, err := node.LoadAPIToken(data); err != nil {
		t.Fatal(err)
	}
	return policyFile, data
}
