package quorum

import (
	"context"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/pyrsia/pyrsia-build/attest"
)

// TestRequestCopiesStillChecked: a copy of an accepted request (the same
// bytes) skips its parse and signature check, and nothing else: from an
// author outside the policy it is dropped (unknown peer), under a policy
// that no longer lists its requester (unknown requester), past the replay
// window (stale), from the author again (replay), and a copy that differs
// in one byte of its signature is verified and refused (bad signature).
func TestRequestCopiesStillChecked(t *testing.T) {
	nodes := testNodes(t, 4)
	requester := testSigner(t, 20)
	rkey := publicKey(t, requester, "requester")
	withReq := testNetwork(t, nodes[:3], NetworkOptions{Requesters: []*attest.PublicKey{rkey}})
	without := testNetwork(t, nodes[:3], NetworkOptions{})
	cur := withReq
	g := validatorGossip(withReq, 100, 100)
	g.o.Members = func() *Network { return cur }
	g.copies = newRequestCopies(16, 1<<20)
	now := time.Now()
	g.o.Now = func() time.Time { return now }
	spec, _ := testSpec(t, "demo:copies")
	req, err := NewBuildRequest(RequestOptions{Policy: withReq.Digest(), Spec: spec, Signer: requester, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	author := nodes[1]
	if r := g.validateRequest(context.Background(), author.id, gossipMsg(author.id, raw)); r != pubsub.ValidationAccept {
		t.Fatalf("the request: %v (drops %v)", r, g.Drops())
	}
	check := func(what string, from *testNode, data []byte, reason string) {
		t.Helper()
		before := g.Drops()["requests/"+reason]
		if r := g.validateRequest(context.Background(), from.id, gossipMsg(from.id, data)); r == pubsub.ValidationAccept {
			t.Fatalf("%s: accepted", what)
		}
		if got := g.Drops()["requests/"+reason]; got != before+1 {
			t.Fatalf("%s: drops %v, want one more %s", what, g.Drops(), reason)
		}
	}
	check("a copy from a stranger", nodes[3], raw, DropUnknownPeer)
	check("a copy from the author", author, raw, DropReplay)
	// The stranger's copy is dropped before the memory is asked (its
	// author is judged before any parse: TestStrangersMessagesNotParsed).
	hits := g.copies.hits
	if hits != 1 {
		t.Fatalf("%d copies answered from memory, want 1", hits)
	}
	cur = without
	check("a copy once the requester is removed", author, raw, DropUnknownRequester)
	cur = withReq
	now = now.Add(11 * time.Minute)
	check("a copy past the replay window", author, raw, DropStale)
	now = now.Add(-11 * time.Minute)
	bad := []byte(string(raw))
	// The signature is base64, the last field: change one of its
	// characters.
	i := len(bad) - 4
	if bad[i] == 'A' {
		bad[i] = 'B'
	} else {
		bad[i] = 'A'
	}
	check("a copy with another signature", author, bad, DropBadSignature)
	if g.copies.hits != hits+2 {
		t.Fatalf("%d hits, want %d: the changed copy is not the request", g.copies.hits, hits+2)
	}
}

// TestRequestCopiesBound: the requests remembered stay within the count
// and the bytes bounds, the oldest forgotten first.
func TestRequestCopiesBound(t *testing.T) {
	c := newRequestCopies(3, 10_000)
	for i := range 5 {
		c.add([32]byte{byte(i)}, &BuildRequest{}, requestCopySize(100))
	}
	if c.order.Len() != 3 || len(c.at) != 3 {
		t.Fatalf("%d remembered, bound 3", c.order.Len())
	}
	if _, ok := c.get([32]byte{0}); ok {
		t.Fatal("the oldest is still remembered")
	}
	if _, ok := c.get([32]byte{4}); !ok {
		t.Fatal("the newest is not remembered")
	}
	c.add([32]byte{9}, &BuildRequest{}, requestCopySize(4_700)) // 9,912 bytes: the others go
	if c.bytes > 10_000 || c.order.Len() != 1 {
		t.Fatalf("%d remembered, %d bytes, bound 10,000", c.order.Len(), c.bytes)
	}
	c.add([32]byte{10}, &BuildRequest{}, requestCopySize(6_000)) // over the whole bound
	if _, ok := c.get([32]byte{10}); ok || c.bytes > 10_000 {
		t.Fatalf("a request over the whole bound remembered (%d bytes)", c.bytes)
	}
	var none *requestCopies
	none.add([32]byte{1}, &BuildRequest{}, 1)
	if _, ok := none.get([32]byte{1}); ok {
		t.Fatal("a nil cache remembered")
	}
}
