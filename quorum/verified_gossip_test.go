package quorum

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/pyrsia/pyrsia-build/publish"
)

// bigVote is a vote by nd whose statement is padded to near the vote
// size limit with many small JSON values (the most memory per byte once
// parsed into a structpb).
func bigVote(t *testing.T, policy string, nd *testNode, tag string) ([]byte, []byte) {
	t.Helper()
	for n := 30000; n > 0; n -= 1000 {
		spec, _ := testSpec(t, "demo:"+tag)
		spec = []byte(strings.TrimSuffix(string(spec), "}") + `,"pad":[` + strings.Repeat("0,", n) + `0]}`)
		spec, input := canonSpec(t, spec)
		b := testBundle(t, nd.signer, spec, map[string]string{"demo": hexDigest(tag)})
		v, err := NewVote(testVoteFor(policy, input, nd.name), b, "sha256:"+hexDigest("m"+tag))
		if err != nil {
			continue // over the size limit
		}
		raw, err := v.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if len(raw) <= MaxVoteSize {
			return raw, b.Envelope().GetPayload()
		}
	}
	t.Fatal("no padding fits")
	return nil, nil
}

// TestDroppedVotesStatementsAreNotRemembered: a stranger (no member of the network, its own key) gossips votes: each
// is dropped (unknown peer), and none of their statements may stay in
// the node's memory of parsed statements; else anyone who can reach the
// votes topic fills it (4096 statements of up to ~48 KiB each, a few MiB
// each once parsed) for free.
func TestDroppedVotesStatementsAreNotRemembered(t *testing.T) {
	nodes := testNodes(t, 4)
	net := testNetwork(t, nodes[:3], NetworkOptions{})
	g := validatorGossip(net, 100, 100)
	g.o.Envelopes = NewVerifiedEnvelopes(0)
	stranger := nodes[3]
	// A member's vote signed by the stranger's key: dropped (bad signature).
	forged := &testNode{name: nodes[1].name, key: nodes[1].key, id: nodes[1].id, signer: stranger.signer}
	for i, c := range []struct {
		from *testNode
		as   *testNode
	}{{stranger, stranger}, {nodes[1], forged}} {
		raw, payload := bigVote(t, net.Digest(), c.as, fmt.Sprint("x", i))
		if r := g.validateVote(context.Background(), c.from.id, gossipMsg(c.from.id, raw)); r == pubsub.ValidationAccept {
			t.Fatalf("vote %d accepted", i)
		}
		if _, err := g.o.Envelopes.Statement(payload); err != nil {
			t.Fatal(err)
		}
		if hits, _ := g.o.Envelopes.StatementHits(); hits != 0 {
			t.Fatalf("vote %d: the statement of a dropped vote (drops %v) was remembered", i, g.Drops())
		}
		g.o.Envelopes = NewVerifiedEnvelopes(0)
	}
	// An accepted vote's statement is remembered (for the FSM's check).
	raw, payload := bigVote(t, net.Digest(), nodes[2], "honest")
	if r := g.validateVote(context.Background(), nodes[2].id, gossipMsg(nodes[2].id, raw)); r != pubsub.ValidationAccept {
		t.Fatalf("an honest vote: %v (drops %v)", r, g.Drops())
	}
	if _, err := g.o.Envelopes.Statement(payload); err != nil {
		t.Fatal(err)
	}
	if hits, parsed := g.o.Envelopes.StatementHits(); hits != 1 || parsed != 1 {
		t.Fatalf("an accepted vote's statement: %d hits, %d parsed; want 1 and 1", hits, parsed)
	}
}

func canonSpec(t *testing.T, spec []byte) ([]byte, string) {
	t.Helper()
	c, err := publish.CanonicalJSON(spec)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(c)
	return c, "sha256:" + hex.EncodeToString(sum[:])
}
