package node

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// requireInCI skips locally and fails in CI, where nothing may skip.
func requireInCI(t *testing.T, reason string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set, so not skipping: %s", reason)
	}
	t.Skip(reason)
}

// A real client, crane, pulls a published image through a regular node
// (whose content comes from the build nodes over the exchange): the
// layout it writes has the published manifest digest; an unpublished tag
// fails with the registry's error and the hint.
func TestRegularCranePull(t *testing.T) {
	crane := os.Getenv("PYRSIA_CRANE")
	if crane == "" {
		var err error
		if crane, err = exec.LookPath("crane"); err != nil {
			requireInCI(t, `crane is not on PATH (nor in PYRSIA_CRANE): PATH="$(scripts/install-crane.sh):$PATH"`)
		}
	}
	c := servingCluster(t, 3)
	ctx := c.ctx()
	in, _ := c.publish(ctx, 0, ociSpec(10))
	c.waitProvided(ctx, in)
	reg := startRegular(t, c, filepath.Join(t.TempDir(), "regular"), 1, "")
	reg.waitIndexed(ctx, in)
	rec, _ := reg.r.Index().ByInputDigest(in)
	host := strings.TrimPrefix(reg.url, "http://")
	dir := filepath.Join(t.TempDir(), "layout")
	if out, err := exec.CommandContext(ctx, crane, "pull", "--insecure", "--format=oci", host+"/hello:1.10", dir).CombinedOutput(); err != nil {
		t.Fatalf("crane pull: %v\n%s", err, out)
	}
	var idx struct {
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	b, _ := os.ReadFile(filepath.Join(dir, "index.json"))
	if json.Unmarshal(b, &idx) != nil || len(idx.Manifests) != 1 || idx.Manifests[0].Digest != rec.Subjects[0].Digest {
		t.Errorf("crane's layout: %s, want the published manifest %s", b, rec.Subjects[0].Digest)
	}
	out, err := exec.CommandContext(ctx, crane, "manifest", "--insecure", host+"/hello:9.9").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "MANIFEST_UNKNOWN") || !strings.Contains(string(out), "pyrsia-build publish SPEC --node") {
		t.Errorf("crane manifest of an unpublished tag: %v\n%s", err, out)
	}
}
