package node

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish"
)

// publishBoth publishes an OCI image and a Maven artifact through node 0
// and returns their input digests.
func publishBoth(t *testing.T, c *cluster, ctx context.Context, n int) (oci, maven string) {
	t.Helper()
	oci, evs := c.publish(ctx, 0, ociSpec(n))
	if ev := lastEvent(evs); ev.Type != EventFinal {
		t.Fatalf("oci round ended with %+v, want final", ev)
	}
	maven, evs = c.publish(ctx, 0, testSpec(n))
	if ev := lastEvent(evs); ev.Type != EventFinal {
		t.Fatalf("maven round ended with %+v, want final", ev)
	}
	c.waitProvided(ctx, oci)
	c.waitProvided(ctx, maven)
	return oci, maven
}

// A regular node bootstrapped to one build node follows the log over
// libp2p, indexes what was published, and serves it: the published
// manifest and its blobs on /v2/, each checked against the log; an
// unpublished name gets the spec's error with the hint; /status shows the
// follower; the proof bundle it gives verifies under the policy.
func TestRegularFollowsAndServes(t *testing.T) {
	c := servingCluster(t, 3)
	ctx := c.ctx()
	ociIn, mavenIn := publishBoth(t, c, ctx, 1)
	reg := startRegular(t, c, filepath.Join(t.TempDir(), "regular"), 1, "")
	reg.waitIndexed(ctx, ociIn, mavenIn)

	st := reg.status()
	if st.Kind != "regular" || st.LogSize != 2 || st.Indexed != 2 || st.Stopped != nil || len(st.Cosigners) < 2 {
		t.Errorf("status: got %+v, want a follower at size 2 with 2 entries indexed, cosigned by a majority", st)
	}

	// The manifest by tag, then its blobs, each checked: on a build node
	// (from its store, where its own outputs are pinned), then on the
	// regular node, which has none of it: it comes from the build nodes
	// over the exchange, and stays in its store.
	rec, _ := reg.r.Index().ByInputDigest(ociIn)
	checkPull(t, "http://"+c.nodes[0].api.Addr().String(), "hello", "1.1", rec.Subjects[0].Digest)
	if reg.r.Store().Stats().Blobs != 0 {
		t.Fatalf("the regular node's store holds %d blobs before any pull", reg.r.Store().Stats().Blobs)
	}
	manifest := checkPull(t, reg.url, "hello", "1.1", rec.Subjects[0].Digest)
	if !reg.r.Store().Has(rec.Subjects[0].Digest) {
		t.Error("the manifest is not in the regular node's store after the pull")
	}
	if st := reg.status(); st.Exchange.Fetched == 0 || st.Store.Blobs != 3 {
		t.Errorf("after the pull: exchange %+v, store %+v; want bytes fetched from peers and 3 blobs kept", st.Exchange, st.Store)
	}
	var served int64
	for _, tn := range c.nodes {
		served += tn.node.serving.xchg.Stats().Served
	}
	if served == 0 {
		t.Error("no build node served a byte over the exchange")
	}

	// A Maven file through /maven2/, from the exchange too.
	mrec, _ := reg.r.Index().ByInputDigest(mavenIn)
	for _, s := range mrec.Subjects {
		code, _, b := reg.get("/maven2/org/example/hello/1.1/" + s.Name)
		if code != http.StatusOK || sha(b) != s.Digest {
			t.Errorf("GET /maven2/.../%s: %d, %d bytes hashing to %s, want %s", s.Name, code, len(b), sha(b), s.Digest)
		}
		code, _, b = reg.get("/maven2/org/example/hello/1.1/" + s.Name + ".sha1")
		if code != http.StatusOK || len(bytes.TrimSpace(b)) != 40 {
			t.Errorf("GET %s.sha1: %d %q", s.Name, code, b)
		}
	}
	if code, _, b := reg.get("/maven2/org/example/nothere/1.0/nothere-1.0.jar"); code != http.StatusNotFound || !strings.Contains(string(b), "pyrsia-build publish SPEC --node") {
		t.Errorf("an unpublished Maven file: %d %s, want 404 with the hint", code, b)
	}
	// It verifies under the policy with the node's proof bundle.
	pb := reg.proof(ociIn)
	trust, _ := c.policy.Trust()
	a := attest.Artifact{Name: "hello:1.1", Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(manifest)), nil }}
	if _, err := publish.VerifyProof(ctx, a, pb, trust, publish.ProofOptions{}); err != nil {
		t.Errorf("the regular node's proof bundle does not verify the manifest: %v", err)
	}

	// An unpublished name: the spec's error, with the hint.
	code, _, body := reg.get("/v2/nothere/manifests/1.0")
	if code != http.StatusNotFound || !strings.Contains(string(body), "NAME_UNKNOWN") || !strings.Contains(string(body), "pyrsia-build publish SPEC --node") {
		t.Errorf("unpublished name: %d %s, want 404 NAME_UNKNOWN with the publish hint", code, body)
	}
	code, _, body = reg.get("/v2/hello/manifests/9.9")
	if code != http.StatusNotFound || !strings.Contains(string(body), "MANIFEST_UNKNOWN") {
		t.Errorf("unpublished tag: %d %s, want 404 MANIFEST_UNKNOWN", code, body)
	}

	// The round's status, by coordinate and by input.
	for _, what := range []string{"hello:1.1", ociIn} {
		code, _, body := reg.get("/v1/status/" + what)
		var rs RoundStatus
		if code != http.StatusOK || json.Unmarshal(body, &rs) != nil || rs.State != "final" || rs.InputDigest != ociIn {
			t.Errorf("status of %s: %d %s", what, code, body)
		}
	}
}

func (tr *testRegular) proof(input string) *publish.ProofBundle {
	tr.t.Helper()
	code, _, b := tr.get("/v1/proof/" + input)
	if code != http.StatusOK {
		tr.t.Fatalf("GET /v1/proof/%s: %d %s", input, code, b)
	}
	pb, err := publish.ParseProofBundle(bytes.TrimSpace(b))
	if err != nil {
		tr.t.Fatal(err)
	}
	return pb
}

// checkPull pulls name:tag from the OCI face at base and checks the
// manifest's digest and every blob's; it returns the manifest.
func checkPull(t *testing.T, base, name, tag, want string) []byte {
	t.Helper()
	get := func(path string) (int, http.Header, []byte) {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b
	}
	code, hdr, manifest := get("/v2/" + name + "/manifests/" + tag)
	if code != http.StatusOK {
		t.Fatalf("%s: GET manifest by tag: %d %s", base, code, manifest)
	}
	if got := sha(manifest); got != want || hdr.Get("Docker-Content-Digest") != want {
		t.Fatalf("%s: manifest digest: got %s (header %s), want the published %s", base, got, hdr.Get("Docker-Content-Digest"), want)
	}
	var m struct {
		Config descriptor   `json:"config"`
		Layers []descriptor `json:"layers"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		t.Fatal(err)
	}
	for _, d := range append([]descriptor{m.Config}, m.Layers...) {
		code, _, b := get("/v2/" + name + "/blobs/" + d.Digest)
		if code != http.StatusOK || sha(b) != d.Digest || int64(len(b)) != d.Size {
			t.Errorf("%s: blob %s: %d, %d bytes hashing to %s", base, d.Digest, code, len(b), sha(b))
		}
	}
	return manifest
}
