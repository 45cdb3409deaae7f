package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pyrsia/pyrsia-build/publish"
)

// Pull writes an OCI layout of the published image with its proof
// bundle, every byte checked; a node that lies about a byte, or a name
// that is not published, leaves nothing in the output folder.
func TestPullVerifies(t *testing.T) {
	c := servingCluster(t, 3)
	ctx := c.ctx()
	in, _ := c.publish(ctx, 0, ociSpec(4))
	trust, _ := c.policy.Trust()
	base := "http://" + c.nodes[1].api.Addr().String()
	c.waitLogged(ctx, 1, []string{in}) // final at node-a once a majority cosigned: node-b may be behind
	rec, _ := c.nodes[1].node.Log().Index().ByInputDigest(in)
	want := rec.Subjects[0].Digest
	if _, err := c.nodes[1].node.Log().WaitFinal(ctx, rec.LogIndex+1); err != nil {
		t.Fatal(err)
	}

	out := filepath.Join(t.TempDir(), "image")
	p, err := Pull(ctx, "hello:1.4", PullOptions{Node: base, Trust: trust, Out: out})
	if err != nil {
		t.Fatalf("Pull: %v", err)
	}
	if p.Files[0].Digest != want || p.InputDigest != in || len(p.Cosigners) < 2 {
		t.Errorf("Pull: %+v, want manifest %s of input %s cosigned by a majority", p, want, in)
	}
	checkLayout(t, out, want, "1.4")

	// Not published: nothing written.
	out2 := filepath.Join(t.TempDir(), "none")
	if _, err := Pull(ctx, "hello:7.7", PullOptions{Node: base, Trust: trust, Out: out2}); !errors.Is(err, ErrNotVerified) || !strings.Contains(err.Error(), "pyrsia-build publish SPEC") {
		t.Errorf("unpublished: got %v, want ErrNotVerified with the hint", err)
	}
	if _, err := os.Stat(out2); !os.IsNotExist(err) {
		t.Errorf("unpublished: %s exists", out2)
	}
	// A non-empty output folder is refused.
	if _, err := Pull(ctx, "hello:1.4", PullOptions{Node: base, Trust: trust, Out: out}); err == nil || !strings.Contains(err.Error(), "not an empty folder") {
		t.Errorf("into a full folder: got %v", err)
	}

	// A node that flips a byte of the layer.
	u, _ := url.Parse(base)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(r *http.Response) error {
		if strings.Contains(r.Request.URL.Path, "/blobs/") && r.StatusCode == http.StatusOK {
			b, _ := io.ReadAll(r.Body)
			if len(b) > 600 { // the layer, not the config
				b[len(b)/2] ^= 1
			}
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		return nil
	}
	liar := httptest.NewServer(rp)
	defer liar.Close()
	out3 := filepath.Join(t.TempDir(), "lied")
	if _, err := Pull(ctx, "hello:1.4", PullOptions{Node: liar.URL, Trust: trust, Out: out3}); !errors.Is(err, ErrNotVerified) {
		t.Errorf("from a lying node: got %v, want ErrNotVerified", err)
	}
	if _, err := os.Stat(out3); !os.IsNotExist(err) {
		t.Errorf("from a lying node: %s exists", out3)
	}
	if des, _ := os.ReadDir(filepath.Dir(out3)); len(des) != 0 {
		t.Errorf("from a lying node: left %v behind", des)
	}
}

// checkLayout checks an OCI layout written by Pull.
func checkLayout(t *testing.T, dir, digest, tag string) {
	t.Helper()
	var idx struct {
		Manifests []struct {
			Digest      string            `json:"digest"`
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil || json.Unmarshal(b, &idx) != nil || len(idx.Manifests) != 1 || idx.Manifests[0].Digest != digest ||
		idx.Manifests[0].Annotations["org.opencontainers.image.ref.name"] != tag {
		t.Fatalf("index.json: %s (%v), want manifest %s tagged %s", b, err, digest, tag)
	}
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		t.Error(err)
	}
	des, _ := os.ReadDir(filepath.Join(dir, "blobs", "sha256"))
	for _, de := range des {
		b, _ := os.ReadFile(filepath.Join(dir, "blobs", "sha256", de.Name()))
		if sha(b) != "sha256:"+de.Name() {
			t.Errorf("blob %s hashes to %s", de.Name(), sha(b))
		}
	}
	if len(des) != 3 {
		t.Errorf("%d blobs, want manifest, config and layer", len(des))
	}
	pb, err := os.ReadFile(filepath.Join(dir, ProofFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := publish.ParseProofBundle(bytes.TrimSpace(pb)); err != nil {
		t.Errorf("%s: %v", ProofFile, err)
	}
}
