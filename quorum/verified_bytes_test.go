package quorum

import (
	"context"
	"fmt"
	"runtime"
	"testing"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/pyrsia/pyrsia-build/publish"
)

// TestStatementHeapBoundsTheHeap: statementHeap, what the memory of
// parsed statements counts against its byte bound, is not below the heap
// a parsed statement really holds, for an honest statement and for the
// worst one a vote can carry (tens of thousands of small JSON values:
// about 40 times its size once parsed).
func TestStatementHeapBoundsTheHeap(t *testing.T) {
	nodes := testNodes(t, 1)
	_, hostile := bigVote(t, testPolicyDigest, nodes[0], "heap")
	spec, _ := testSpec(t, "demo:heap")
	honest := testBundle(t, nodes[0].signer, spec, map[string]string{"demo": hexDigest("h")}).Envelope().GetPayload()
	for _, c := range []struct {
		name    string
		payload []byte
		k       int
	}{{"honest", honest, 2000}, {"hostile", hostile, 16}} {
		k := c.k
		kept := make([]*publish.ParsedStatement, k)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.GC()
		runtime.ReadMemStats(&before)
		for i := range kept {
			ps, err := publish.ParseStatement(c.payload)
			if err != nil {
				t.Fatal(err)
			}
			kept[i] = ps
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		real := (int64(after.HeapAlloc) - int64(before.HeapAlloc)) / int64(k)
		est := int64(statementHeap(kept[0]))
		runtime.KeepAlive(kept)
		t.Logf("%s statement of %d bytes: %d bytes of heap parsed, estimated %d", c.name, len(c.payload), real, est)
		if est < real {
			t.Errorf("%s statement: estimated %d bytes of heap, it holds %d", c.name, est, real)
		}
	}
}

// TestVerifiedStatementsBytesBound: one policy member's accepted votes,
// each carrying a statement of many small values, fill the memory of
// parsed statements only up to its byte bound, not to its count bound
// (before the byte bound: all of them, 4,096 of ~1.9 MiB each at most).
func TestVerifiedStatementsBytesBound(t *testing.T) {
	nodes := testNodes(t, 3)
	net := testNetwork(t, nodes, NetworkOptions{})
	g := validatorGossip(net, 100, 100)
	g.o.Envelopes = NewVerifiedEnvelopes(0)
	_, one := bigVote(t, net.Digest(), nodes[1], "size")
	ps, err := publish.ParseStatement(one)
	if err != nil {
		t.Fatal(err)
	}
	per := statementHeap(ps)
	g.o.Envelopes.statements.maxBytes = 3*per + per/2
	const votes = 8
	for i := range votes {
		raw, _ := bigVote(t, net.Digest(), nodes[1], fmt.Sprint("fill", i))
		if r := g.validateVote(context.Background(), nodes[1].id, gossipMsg(nodes[1].id, raw)); r != pubsub.ValidationAccept {
			t.Fatalf("vote %d: %v (drops %v)", i, r, g.Drops())
		}
	}
	n, bytes := g.o.Envelopes.statementBytes()
	if bytes > g.o.Envelopes.statements.maxBytes || n > 3 {
		t.Fatalf("%d statements of %d estimated bytes remembered, bound %d bytes (%d a statement)", n, bytes, g.o.Envelopes.statements.maxBytes, per)
	}
	if n == 0 {
		t.Fatal("no statement remembered")
	}
	// An honest vote's statement still goes in (the oldest go out), and
	// is found there.
	spec, input := testSpec(t, "demo:after")
	b := testBundle(t, nodes[2].signer, spec, map[string]string{"demo": hexDigest("after")})
	v, err := NewVote(testVoteFor(net.Digest(), input, nodes[2].name), b, "sha256:"+hexDigest("m"))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := v.Marshal()
	if r := g.validateVote(context.Background(), nodes[2].id, gossipMsg(nodes[2].id, raw)); r != pubsub.ValidationAccept {
		t.Fatalf("an honest vote: %v (drops %v)", r, g.Drops())
	}
	hits0, _ := g.o.Envelopes.StatementHits()
	if _, err := g.o.Envelopes.Statement(b.Envelope().GetPayload()); err != nil {
		t.Fatal(err)
	}
	if hits, _ := g.o.Envelopes.StatementHits(); hits != hits0+1 {
		t.Fatal("the honest vote's statement was not remembered")
	}
	if _, bytes := g.o.Envelopes.statementBytes(); bytes > g.o.Envelopes.statements.maxBytes {
		t.Fatalf("%d bytes remembered, bound %d", bytes, g.o.Envelopes.statements.maxBytes)
	}
	// A statement larger than the whole bound is not remembered at all.
	small := NewVerifiedEnvelopes(0)
	small.statements.maxBytes = per - 1
	if _, err := small.Statement(one); err != nil {
		t.Fatal(err)
	}
	if n, bytes := small.statementBytes(); n != 0 || bytes != 0 {
		t.Fatalf("a statement over the whole bound: %d remembered, %d bytes", n, bytes)
	}
}
