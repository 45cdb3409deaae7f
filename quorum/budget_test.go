package quorum

import (
	"context"
	"fmt"
	"testing"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
)

// In an open network, requesters the policy does not list share the
// nonce budget of the build node that publishes their requests: one node
// inventing requester keys fills only its own.
func TestNonceBudgetPerPublishingNode(t *testing.T) {
	nodes := testNodes(t, 3)
	net := testNetwork(t, nodes, NetworkOptions{Open: true})
	g := validatorGossip(net, 4, 100)
	send := func(via *testNode, signer int, coord string) pubsub.ValidationResult {
		spec, _ := testSpec(t, coord)
		r, err := NewBuildRequest(RequestOptions{Policy: net.Digest(), Spec: spec, Signer: testSigner(t, signer), IncludeKey: true})
		if err != nil {
			t.Fatal(err)
		}
		b, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		return g.validateRequest(context.Background(), via.id, gossipMsg(via.id, b))
	}
	evil := nodes[2]
	for i := range 4 {
		if r := send(evil, 10+i%2, fmt.Sprint("flood:", i)); r != pubsub.ValidationAccept {
			t.Fatalf("request %d via %s: %v", i, evil.name, r)
		}
	}
	if r := send(evil, 10, "flood:5"); r == pubsub.ValidationAccept {
		t.Fatalf("a 5th open request via %s was accepted past its budget of 4", evil.name)
	}
	if got := g.Drops()["requests/"+DropReplayCacheFull]; got != 1 {
		t.Fatalf("replay-cache-full drops %d, want 1 (%v)", got, g.Drops())
	}
	if r := send(nodes[0], 11, "honest:1"); r != pubsub.ValidationAccept {
		t.Fatalf("an open request via %s was refused (%v, drops %v) because %s filled its own budget", nodes[0].name, r, g.Drops(), evil.name)
	}
}

// The evidence of an equivocation names the node and the request and
// holds the first vote's digest and the second vote.
func TestEquivocationEvidence(t *testing.T) {
	nodes := testNodes(t, 3)
	net := testNetwork(t, nodes, NetworkOptions{})
	g := validatorGossip(net, 100, 100)
	var got []Equivocation
	g.o.OnEquivocation = func(e Equivocation) { got = append(got, e) }
	spec, input := testSpec(t, "demo:4")
	var msgs [][]byte
	for _, artifact := range []string{"artifact", "other artifact", "artifact"} {
		b, err := testVote(t, net.Digest(), nodes[1], spec, input, artifact).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, b)
	}
	var results []pubsub.ValidationResult
	for _, b := range msgs {
		results = append(results, g.validateVote(context.Background(), nodes[1].id, gossipMsg(nodes[1].id, b)))
	}
	// The third is a new signing of the first vote's content; its time
	// may equal the first's (same millisecond) and then it is the same
	// message, a duplicate; otherwise it is a second equivocation.
	if results[0] != pubsub.ValidationAccept || results[1] != pubsub.ValidationReject {
		t.Fatalf("results %v, want the first accepted and the second rejected", results)
	}
	if len(got) == 0 {
		t.Fatal("no equivocation evidence")
	}
	e := got[0]
	if e.Node != nodes[1].name || e.Request != testRequestID(input) || e.InputDigest != input || e.First != "sha256:"+digestOf(msgs[0]) || string(e.Second) != string(msgs[1]) {
		t.Fatalf("evidence %+v does not name the node, request and both votes", e)
	}
	// An exact copy of the first is a duplicate, ignored, not evidence.
	n := len(got)
	if r := g.validateVote(context.Background(), nodes[2].id, gossipMsg(nodes[1].id, msgs[0])); r != pubsub.ValidationIgnore || len(got) != n {
		t.Fatalf("a copy of the first vote: %v, %d pieces of evidence; want ignored, none new", r, len(got)-n)
	}
}
