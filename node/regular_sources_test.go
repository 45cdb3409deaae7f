package node

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestRegularReadsNewBuildNodes: a policy change that adds node-d makes a
// regular node read the log from node-d too (its sources were the first
// policy's build nodes only: once those were all replaced it would have
// stopped following), and so does the same node restarted, which applies
// the change again from its stored state before it reads the log.
func TestRegularReadsNewBuildNodes(t *testing.T) {
	c := servingCluster(t, 3)
	ctx := c.ctx()
	c.leader(ctx)
	reg := startRegular(t, c, filepath.Join(t.TempDir(), "regular"), 0, "")
	in1, _ := c.publish(ctx, 0, ociSpec(21))
	reg.waitIndexed(ctx, in1)
	d := c.addNode(nil)
	dID := c.policyNode(d).PeerID
	if src := reg.status().Source; strings.Contains(src, dID) {
		t.Fatalf("the regular node reads node-d before it is in a policy: %s", src)
	}

	p2 := withNodes(c.policy, c.policyNode(0), c.policyNode(1), c.policyNode(2), c.policyNode(d))
	if code, body := c.submit(ctx, 0, c.changeBy(c.policy, p2, 0, 1)); code != http.StatusCreated {
		t.Fatalf("submit: %d %s", code, body)
	}
	c.waitActing(ctx, p2)
	in2, _ := c.publish(ctx, 0, ociSpec(22)) // 3 of 4: node-d is not running
	reg.waitIndexed(ctx, in2)
	st := reg.status()
	if st.Policy != p2.Digest() || !strings.Contains(st.Source, dID) {
		t.Fatalf("after the change: policy %s (want %s), sources %s; want node-d's log (%s) among them", st.Policy, p2.Digest(), st.Source, dID)
	}

	reg.stop()
	reg = startRegular(t, c, reg.dir, 0, "")
	if src := reg.r.src.String(); !strings.Contains(src, dID) {
		t.Errorf("restarted (the change applied from its stored state): sources %s; want node-d's log among them", src)
	}
	reg.waitIndexed(ctx, in1, in2)
}
