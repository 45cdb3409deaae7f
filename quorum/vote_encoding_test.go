package quorum

import (
	"bytes"
	"context"
	"testing"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
)

// TestVoteEncodingKept: PublishVote sends the encoding NewVote made and
// checked while the vote is unchanged, and encodes a vote changed since
// (a copy with another manifest, a field set by hand) again: never the
// bytes of another vote.
func TestVoteEncodingKept(t *testing.T) {
	nodes := testNodes(t, 1)
	spec, input := testSpec(t, "demo:enc")
	v := testVote(t, testPolicyDigest, nodes[0], spec, input, "artifact")
	want, err := v.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	got, err := v.encoded()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("unchanged vote: %q, %v; want %q", got, err, want)
	}
	if v.enc == nil || &got[0] != &v.enc.b[0] {
		t.Fatal("the kept encoding was not used")
	}
	for name, change := range map[string]func(*Vote){
		"manifest": func(w *Vote) { w.Manifest = "sha256:" + hexDigest("other") },
		"node":     func(w *Vote) { w.Node = "node-z" },
		"time":     func(w *Vote) { w.Time = w.Time.Add(1) },
		"error":    func(w *Vote) { w.Bundle, w.Manifest, w.Error = nil, "", "failed" },
		"request":  func(w *Vote) { w.Request = testRequestID("other") },
	} {
		w := *v
		change(&w)
		want, err := w.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		got, err := w.encoded()
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s changed: sent %q, %v; want %q", name, got, err, want)
		}
	}
	fv, err := NewFailedVote(testVoteFor(testPolicyDigest, input, nodes[0].name), "no")
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := fv.encoded(); !bytes.Equal(got, must(fv.Marshal())) {
		t.Fatalf("failed vote: %q", got)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// TestNewVoteRemembersOwnStatement: VerifiedEnvelopes.NewVote parses the
// node's own statement once: its validator, checking the vote when it is
// published, finds the statement parsed, and still checks the vote in
// full (a vote under another node's name is refused).
func TestNewVoteRemembersOwnStatement(t *testing.T) {
	nodes := testNodes(t, 3)
	net := testNetwork(t, nodes, NetworkOptions{})
	g := validatorGossip(net, 100, 100)
	g.o.Envelopes = NewVerifiedEnvelopes(0)
	spec, input := testSpec(t, "demo:own")
	b := testBundle(t, nodes[0].signer, spec, map[string]string{"demo": hexDigest("own")})
	v, err := g.o.Envelopes.NewVote(testVoteFor(net.Digest(), input, nodes[0].name), b, "sha256:"+hexDigest("m"))
	if err != nil {
		t.Fatal(err)
	}
	if _, parsed := g.o.Envelopes.StatementHits(); parsed != 1 {
		t.Fatalf("%d statements parsed, want 1", parsed)
	}
	raw, _ := v.encoded()
	// The same vote from another node's peer: refused (wrong node).
	if r := g.validateVote(context.Background(), nodes[1].id, gossipMsg(nodes[1].id, raw)); r == pubsub.ValidationAccept {
		t.Fatal("a vote naming node-a accepted from node-b")
	}
	if r := g.validateVote(context.Background(), nodes[0].id, gossipMsg(nodes[0].id, raw)); r != pubsub.ValidationAccept {
		t.Fatalf("own vote: %v (drops %v)", r, g.Drops())
	}
	if hits, parsed := g.o.Envelopes.StatementHits(); parsed != 1 || hits != 2 {
		t.Fatalf("%d hits, %d parsed; want 2 and 1", hits, parsed)
	}
	// Its own vote signed by another key: refused all the same.
	forged := testBundle(t, nodes[1].signer, spec, map[string]string{"demo": hexDigest("own")})
	fv, err := g.o.Envelopes.NewVote(testVoteFor(net.Digest(), input, nodes[2].name), forged, "sha256:"+hexDigest("m"))
	if err != nil {
		t.Fatal(err)
	}
	fraw, _ := fv.encoded()
	if r := g.validateVote(context.Background(), nodes[2].id, gossipMsg(nodes[2].id, fraw)); r == pubsub.ValidationAccept {
		t.Fatal("a vote whose attestation another node signed accepted")
	}
}
