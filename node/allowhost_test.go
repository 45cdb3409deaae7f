package node

import (
	"bytes"
	"strings"
	"testing"

	"github.com/pyrsia/pyrsia-build/publish/policy"
)

// TestAllowSourceHosts: the node parses specs from the network with its
// operator's allowlist (Publish, requests, proposals: parseSpec), refuses
// the same spec without it, and refuses to start with a bad entry.
func TestAllowSourceHosts(t *testing.T) {
	spec := bytes.Replace(testSpec(1), []byte("http://source.invalid/"), []byte("http://127.0.0.1:7880/"), 1)
	if _, err := (&Node{}).parseSpec(spec); err == nil || !strings.Contains(err.Error(), "loopback") {
		t.Fatalf("no allowlist: got %v, want the loopback host refused", err)
	}
	if _, err := (&Node{o: Options{AllowSourceHosts: []string{"127.0.0.1:7881"}}}).parseSpec(spec); err == nil {
		t.Fatal("another port allowed: the spec was accepted")
	}
	if _, err := (&Node{o: Options{AllowSourceHosts: []string{"127.0.0.1:7880"}}}).parseSpec(spec); err != nil {
		t.Fatalf("127.0.0.1:7880 allowed: %v", err)
	}
	_, err := New(t.Context(), Options{Data: t.TempDir(), Policy: &policy.Policy{}, Keys: &Keys{}, Builder: fakeBuild("x"),
		AllowSourceHosts: []string{"http://127.0.0.1:7880/"}})
	if err == nil || !strings.Contains(err.Error(), `node: builder: allowed source host "http://127.0.0.1:7880/"`) {
		t.Fatalf("New with a bad entry: got %v, want it named", err)
	}
}
