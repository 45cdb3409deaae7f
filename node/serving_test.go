package node

import (
	"bytes"
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
)

// A build node puts the published outputs it built in its store, pinned,
// and again after a restart (pins last as long as the process); it serves
// them on /v2/ and /maven2/ of its API.
func TestServingBuildNodeStoresOutputs(t *testing.T) {
	c := servingCluster(t, 3)
	ctx := c.ctx()
	ociIn, mavenIn := publishBoth(t, c, ctx, 7)
	var digests []string
	for _, in := range []string{ociIn, mavenIn} {
		rec, _ := c.nodes[0].node.Log().Index().ByInputDigest(in)
		for _, s := range rec.Subjects {
			digests = append(digests, s.Digest)
		}
	}
	waitStored := func(i int) {
		t.Helper()
		for {
			st := c.nodes[i].node.serving.store
			missing := 0
			for _, d := range digests {
				if !st.Has(d) {
					missing++
				}
			}
			// The image's config and layer, the manifest, the jar and the pom.
			if missing == 0 && st.Stats().Blobs == 5 && st.Stats().Pinned == 5 {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s: %d published outputs not in the store; stats %+v", c.nodes[i].name, missing, st.Stats())
			case <-c.after():
			}
		}
	}
	// node-a built both (it took the requests): wait for its outputs.
	c.waitVotes(ctx, 0, mavenIn, 3)
	waitStored(0)
	c.stop(0)
	c.start(0)
	c.nodes[0].node.gater.AllowOthers(true)
	waitStored(0)
	if st := c.apiStatus(0); st.Serving == nil || st.Serving.Store.Blobs != 5 || st.Serving.Store.Pinned != 5 {
		t.Errorf("GET /status of the build node: serving %+v, want its 5 pinned outputs", st.Serving)
	}
	rec, _ := c.nodes[0].node.Log().Index().ByInputDigest(ociIn)
	checkPull(t, "http://"+c.nodes[0].api.Addr().String(), "hello", "1.7", rec.Subjects[0].Digest)
	resp, err := http.Get("http://" + c.nodes[0].api.Addr().String() + "/maven2/org/example/hello/1.7/hello-1.7.jar")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(strings.Join(digests, " "), sha(b)) {
		t.Errorf("GET the jar from the build node: %d, digest %s", resp.StatusCode, sha(b))
	}
}

// Fetch writes a published Maven coordinate's files with the proof
// bundle; a node that changes a byte of the jar leaves nothing in -o.
func TestFetchVerifies(t *testing.T) {
	c := servingCluster(t, 3)
	ctx := c.ctx()
	_, mavenIn := publishBoth(t, c, ctx, 8)
	reg := startRegular(t, c, filepath.Join(t.TempDir(), "regular"), 2, "")
	reg.waitIndexed(ctx, mavenIn)
	trust, _ := c.policy.Trust()

	out := filepath.Join(t.TempDir(), "lib")
	p, err := Fetch(ctx, "org.example:hello:1.8", PullOptions{Node: reg.url, Trust: trust, Out: out})
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if len(p.Files) != 2 {
		t.Errorf("Fetch: %+v, want the jar and the pom", p)
	}
	for _, f := range p.Files {
		b, err := os.ReadFile(filepath.Join(out, f.Name))
		if err != nil || sha(b) != f.Digest {
			t.Errorf("%s: %v, digest %s, want %s", f.Name, err, sha(b), f.Digest)
		}
	}
	if _, err := os.Stat(filepath.Join(out, ProofFile)); err != nil {
		t.Error(err)
	}

	u, _ := url.Parse(reg.url)
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.ModifyResponse = func(r *http.Response) error {
		if strings.HasSuffix(r.Request.URL.Path, ".jar") && r.StatusCode == http.StatusOK {
			b, _ := io.ReadAll(r.Body)
			b[len(b)-1] ^= 1
			r.Body = io.NopCloser(bytes.NewReader(b))
		}
		return nil
	}
	liar := httptest.NewServer(rp)
	defer liar.Close()
	out2 := filepath.Join(t.TempDir(), "lied")
	if _, err := Fetch(ctx, "org.example:hello:1.8", PullOptions{Node: liar.URL, Trust: trust, Out: out2}); !errors.Is(err, ErrNotVerified) {
		t.Errorf("from a lying node: got %v, want ErrNotVerified", err)
	}
	if des, _ := os.ReadDir(filepath.Dir(out2)); len(des) != 0 {
		t.Errorf("from a lying node: left %v behind", des)
	}
	if _, err := Fetch(ctx, "org.example:hello", PullOptions{Node: reg.url, Trust: trust, Out: out2}); err == nil || !strings.Contains(err.Error(), "is not group:artifact:version") {
		t.Errorf("a bad coordinate: got %v", err)
	}
}

// A regular node follows another regular node's /log/ (the log as that
// one verified it), checking everything again.
func TestRegularFollowsARegularNode(t *testing.T) {
	c := servingCluster(t, 3)
	ctx := c.ctx()
	ociIn, mavenIn := publishBoth(t, c, ctx, 9)
	first := startRegular(t, c, filepath.Join(t.TempDir(), "first"), 0, "")
	first.waitIndexed(ctx, ociIn, mavenIn)
	second := startRegular(t, c, filepath.Join(t.TempDir(), "second"), 1, first.url+"/log/")
	second.waitIndexed(ctx, ociIn, mavenIn)
	if st := second.status(); !strings.Contains(st.Source, first.url) || st.LogSize != 2 {
		t.Errorf("second regular node: %+v, want it following the first's log at size 2", st)
	}
	rec, _ := second.r.Index().ByInputDigest(ociIn)
	checkPull(t, second.url, "hello", "1.9", rec.Subjects[0].Digest)
}
