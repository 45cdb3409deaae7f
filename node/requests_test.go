package node

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/quorum"
)

func testRequester(t testing.TB) (*attest.Signer, string) {
	t.Helper()
	kp, err := attest.GenerateKeyPair(nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := attest.LoadSigner(kp.Private, nil)
	if err != nil {
		t.Fatal(err)
	}
	return s, string(kp.Public)
}

// postRequest posts a signed request to node i's POST /v1/requests.
func (c *cluster) postRequest(i int, req *quorum.BuildRequest) (int, map[string]string) {
	c.t.Helper()
	b, err := req.Marshal()
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := http.Post("http://"+c.nodes[i].api.Addr().String()+"/v1/requests", "application/json", strings.NewReader(string(b)))
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]string
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// A build request signed by an outside requester goes through a node's
// API, which only gossips it: a requester the policy lists is published;
// one it does not list is refused by the API with the reason, and dropped
// (and counted) by every node when a node gossips it anyway.
func TestRequesterSignedRequests(t *testing.T) {
	c := newCluster(t, 3, nil)
	listed, listedPub := testRequester(t)
	stranger, _ := testRequester(t)
	c.policy.Requesters = []string{listedPub}
	if err := c.policy.Validate(); err != nil {
		t.Fatal(err)
	}
	c.start(0)
	c.start(1)
	ctx := c.ctx()
	c.leader(ctx)
	f := c.startFaulty(ctx, 2) // node-c gossips what it is given, unchecked
	a := c.nodes[0].node

	// The listed requester's request, through node-a's API (no API token:
	// the requester's signature is what counts).
	req, err := quorum.NewBuildRequest(quorum.RequestOptions{Policy: a.net().Digest(), Spec: mustCanonical(t, testSpec(90)), Signer: listed})
	if err != nil {
		t.Fatal(err)
	}
	code, out := c.postRequest(0, req)
	if code != http.StatusAccepted || out["inputDigest"] != req.InputDigest {
		t.Fatalf("listed requester: %d %v, want 202 and the input digest", code, out)
	}
	evs := c.wait(ctx, 0, req.InputDigest)
	if ev := lastEvent(evs); ev.Type != EventFinal {
		t.Fatalf("listed requester's round ended with %v, want final", ev)
	}
	if _, err := c.verify(ctx, 0, req.InputDigest, expected(t, testSpec(90))); err != nil {
		t.Fatalf("VerifyProof: %v", err)
	}

	// A key the policy does not list (with its key included, as for an
	// open policy): refused, nothing gossiped.
	sreq, err := quorum.NewBuildRequest(quorum.RequestOptions{Policy: a.net().Digest(), Spec: mustCanonical(t, testSpec(91)), Signer: stranger, IncludeKey: true})
	if err != nil {
		t.Fatal(err)
	}
	code, out = c.postRequest(0, sreq)
	if code != http.StatusForbidden || !strings.Contains(out["error"], "requester key "+stranger.KeyID()+" is not one of the policy "+testNetwork+"'s build nodes or requesters") {
		t.Fatalf("unlisted requester: %d %v, want 403 naming the key and the policy", code, out)
	}
	// A forged signature: the listed requester's key id, another's signature.
	forged := *req
	forged.Nonce = strings.Repeat("ab", 16)
	if code, out = c.postRequest(0, &forged); code != http.StatusBadRequest || !strings.Contains(out["error"], "signature does not verify") {
		t.Errorf("forged request: %d %v, want 400 naming the signature", code, out)
	}
	// Gossiped anyway, by node-c: every node drops it and counts it.
	sb, _ := sreq.Marshal()
	f.send(ctx, t, f.reqs, 2, sb)
	for i := range 2 {
		for c.apiStatus(i).Dropped["requests/"+quorum.DropUnknownRequester] < 1 {
			select {
			case <-ctx.Done():
				t.Fatalf("%s did not count the unlisted requester's request: %v", c.nodes[i].name, c.apiStatus(i).Dropped)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	for i := range 2 {
		n := c.nodes[i].node
		n.mu.Lock()
		r := n.rounds[sreq.InputDigest]
		n.mu.Unlock()
		if r != nil {
			t.Errorf("%s opened a round for the unlisted requester's request", c.nodes[i].name)
		}
	}
}
