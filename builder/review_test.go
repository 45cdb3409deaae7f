package builder

import (
	"os"
	"testing"
)

// Review finding: a spec from the network may name any http(s) or git host,
// the node's loopback, link-local (cloud metadata) and private addresses
// included: the node fetches them with its own network position (archive
// URLs through http.DefaultClient, which follows redirects to any host),
// and git's output tail comes back in the error. ValidateRemote refuses
// file paths and file URLs, but not these.
func TestReviewRemoteSpecInternalHosts(t *testing.T) {
	if os.Getenv("PYRSIA_REVIEW") == "" {
		t.Skip("review finding: a remote spec can make the node fetch loopback, link-local and private addresses")
	}
	for name, text := range map[string]string{
		"loopback archive":   edit(t, mavenSpec, "path: hello.tar.gz", "url: http://127.0.0.1:2379/v2/keys.tar.gz"),
		"metadata archive":   edit(t, mavenSpec, "path: hello.tar.gz", "url: http://169.254.169.254/latest/x.tar.gz"),
		"localhost git":      edit(t, ociSpec, "https://example.com/hello.git", "http://localhost:3000/admin/secret.git"),
		"private git":        edit(t, ociSpec, "https://example.com/hello.git", "git://10.0.0.5/internal.git"),
		"IPv6 loopback git":  edit(t, ociSpec, "https://example.com/hello.git", "http://[::1]:8080/x.git"),
		"decimal IP archive": edit(t, mavenSpec, "path: hello.tar.gz", "url: http://2130706433/x.tar.gz"),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseRemoteSpec([]byte(text)); err == nil {
				t.Errorf("ParseRemoteSpec accepted a spec that makes the node fetch an internal address")
			}
		})
	}
}
