package node

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/quorum"
)

// TestRegularProofBundleCarriesPolicyChanges: with a policy change in the
// log before an entry, the regular node's proof bundle of the entry is a
// version 2 bundle that carries the change, verifies from the network's
// first policy, and is what Pull writes to proof.json; a client given only
// the first policy's trust (no chain to follow) refuses it. The change is
// not listed among the entries skipped.
func TestRegularProofBundleCarriesPolicyChanges(t *testing.T) {
	c := servingCluster(t, 3)
	ctx := c.ctx()
	open := *c.policy
	open.Open = true
	l := c.leader(ctx)
	res, err := c.nodes[l].node.raft.Propose(ctx, quorum.AppendEntryCommand(c.changeBy(c.policy, &open, 0, 1)))
	if err != nil {
		t.Fatal(err)
	}
	if r := res.(quorum.ApplyResult); r.Err != nil || r.Index != 0 {
		t.Fatalf("the change: got %+v, want it at index 0", r)
	}
	c.waitActing(ctx, &open)
	in, evs := c.publish(ctx, 0, ociSpec(7))
	if ev := lastEvent(evs); ev.Type != EventFinal {
		t.Fatalf("the round after the change ended with %+v, want final", ev)
	}
	reg := startRegular(t, c, filepath.Join(t.TempDir(), "regular"), 0, "")
	reg.waitIndexed(ctx, in)

	code, h, b := reg.get("/v1/proof/" + in)
	if code != http.StatusOK || h.Get("Content-Type") != publish.ProofBundleV2MediaType {
		t.Fatalf("GET /v1/proof: %d %q %s", code, h.Get("Content-Type"), b)
	}
	pb, err := publish.ParseProofBundle([]byte(strings.TrimSpace(string(b))))
	if err != nil {
		t.Fatal(err)
	}
	// The build node's /v1/proof declares the version its body is.
	for i, tn := range c.nodes {
		resp, err := http.Get("http://" + tn.api.Addr().String() + "/v1/proof/" + in)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		bpb, perr := publish.ParseProofBundle(bytes.TrimSpace(body))
		if resp.StatusCode != http.StatusOK || perr != nil || len(bpb.PolicyChanges) != 1 || resp.Header.Get("Content-Type") != publish.ProofBundleV2MediaType {
			t.Errorf("build node %d: GET /v1/proof: %d %q (%v) %s; want 200 with a version 2 bundle declared so", i, resp.StatusCode, resp.Header.Get("Content-Type"), perr, body)
		}
	}
	if pb.Index != 1 || len(pb.PolicyChanges) != 1 || pb.PolicyChanges[0].Index != 0 {
		t.Fatalf("the bundle of entry %d carries %+v, want entry 1 with the change at 0", pb.Index, pb.PolicyChanges)
	}
	if st := reg.status(); len(st.Skipped) != 0 {
		t.Errorf("skipped %v: a policy change is not an entry that fails to certify itself", st.Skipped)
	}

	out := filepath.Join(t.TempDir(), "image")
	p, err := Pull(ctx, "hello:1.7", PullOptions{Node: reg.url, Policy: c.policy, Out: out})
	if err != nil {
		t.Fatalf("Pull from the first policy: %v", err)
	}
	written, err := os.ReadFile(filepath.Join(out, ProofFile))
	if err != nil {
		t.Fatal(err)
	}
	wpb, err := publish.ParseProofBundle([]byte(strings.TrimSpace(string(written))))
	if err != nil || len(wpb.PolicyChanges) != 1 {
		t.Fatalf("%s: %v, %d policy changes; want the change", ProofFile, err, len(wpb.PolicyChanges))
	}
	manifest, err := os.ReadFile(filepath.Join(out, "blobs", "sha256", strings.TrimPrefix(p.Files[0].Digest, "sha256:")))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := publish.VerifyProofChain(context.Background(), attest.Artifact{Name: "hello:1.7", Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(manifest)), nil }}, wpb, c.policy, publish.ProofOptions{})
	if err != nil {
		t.Fatalf("VerifyProofChain of %s: %v", ProofFile, err)
	}
	if ev.Policy != open.Digest() || len(ev.PolicyChanges) != 1 {
		t.Errorf("policy in force %s after %v, want %s after the change", ev.Policy, ev.PolicyChanges, open.Digest())
	}

	trust, _ := c.policy.Trust()
	out2 := filepath.Join(t.TempDir(), "trust-only")
	if _, err := Pull(ctx, "hello:1.7", PullOptions{Node: reg.url, Trust: trust, Out: out2}); !errors.Is(err, ErrNotVerified) || !strings.Contains(err.Error(), "policy changes") {
		t.Errorf("Pull with a trust only: got %v, want ErrNotVerified naming the policy changes", err)
	}
	if _, err := os.Stat(out2); !os.IsNotExist(err) {
		t.Errorf("Pull with a trust only wrote %s", out2)
	}
}
