package quorum

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"google.golang.org/protobuf/proto"
)

// entryOf is the log entry of spec with envs.
func entryOf(t *testing.T, spec []byte, envs ...*dssepb.Envelope) []byte {
	t.Helper()
	var labels struct{ Coordinate string }
	if err := json.Unmarshal(spec, &labels); err != nil {
		t.Fatal(err)
	}
	e, err := publish.NewEntry(publish.EcosystemOCI, labels.Coordinate, spec, envs)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVerifiedEnvelopesInTheFSMCheck: the envelopes the vote validator
// verified are answered from memory in the FSM's check of the entry made
// of them, and an entry whose envelopes differ in any byte (a lying
// leader) is verified in full and refused.
func TestVerifiedEnvelopesInTheFSMCheck(t *testing.T) {
	nodes := testNodes(t, 3)
	chain, err := policy.NewChain(testPolicy(t, nodes))
	if err != nil {
		t.Fatal(err)
	}
	_, trust := chain.At(0)
	cache := NewVerifiedEnvelopes(0)
	spec, input := testSpec(t, "demo:cached")
	subjects := map[string]string{"demo": hexDigest("a")}
	var envs []*dssepb.Envelope
	for i, nd := range nodes[:2] {
		env := testBundle(t, nd.signer, spec, subjects).Envelope()
		// As the votes validator does: one envelope, its member's key.
		if got := cache.Verify(env, trust.BuildKeys[i:i+1]); len(got) != 1 {
			t.Fatalf("%s's envelope does not verify", nd.name)
		}
		envs = append(envs, env)
	}
	if cache.Hits() != 0 {
		t.Fatalf("%d hits before any envelope was seen twice", cache.Hits())
	}
	c := &ChainChecker{Chain: chain, Envelopes: cache}
	got, err := c.CheckEntryAt(0, entryOf(t, spec, envs...))
	if err != nil || got != input {
		t.Fatalf("the entry of the verified votes: %q, %v", got, err)
	}
	if cache.Hits() != 2 {
		t.Fatalf("%d envelopes answered from memory, want 2", cache.Hits())
	}

	// A lying leader: node-b's envelope with a signature changed, or a
	// payload changed under its signature.
	stolen := proto.Clone(envs[1]).(*dssepb.Envelope)
	stolen.Signatures[0].Sig = bytes.Clone(stolen.Signatures[0].Sig)
	stolen.Signatures[0].Sig[len(stolen.Signatures[0].Sig)-1] ^= 1
	changed := proto.Clone(envs[1]).(*dssepb.Envelope)
	changed.Payload = bytes.Replace(changed.Payload, []byte(`"`), []byte(` "`), 1)
	for name, bad := range map[string]*dssepb.Envelope{"a changed signature": stolen, "a changed payload": changed} {
		hits := cache.Hits()
		if _, err := c.CheckEntryAt(0, entryOf(t, spec, envs[0], bad)); !errors.Is(err, attest.ErrNotVerified) {
			t.Fatalf("an entry with %s: got %v, want it refused", name, err)
		}
		if cache.Hits() != hits+1 {
			t.Fatalf("an entry with %s: %d answers from memory, want 1 (node-a's envelope only)", name, cache.Hits()-hits)
		}
	}
	// A bad envelope is not remembered: it is refused again, in full.
	if got := cache.Verify(stolen, trust.BuildKeys); len(got) != 0 {
		t.Fatalf("the changed signature counted for %v", got)
	}
	// The same envelope against another key is verified, not remembered.
	if got := cache.Verify(envs[0], trust.BuildKeys[1:]); len(got) != 0 {
		t.Fatalf("node-a's envelope counted for %v", got)
	}
}

// TestVerifiedEnvelopesBound: the cache keeps at most its bound, the
// least recently used go first, and a forgotten envelope is verified
// again (and still verifies).
func TestVerifiedEnvelopesBound(t *testing.T) {
	nodes := testNodes(t, 3)
	p := testPolicy(t, nodes)
	trust, err := p.Trust()
	if err != nil {
		t.Fatal(err)
	}
	cache := NewVerifiedEnvelopes(2)
	var envs []*dssepb.Envelope
	for i, nd := range nodes {
		spec, _ := testSpec(t, "demo:bound")
		env := testBundle(t, nd.signer, spec, map[string]string{"demo": hexDigest("a")}).Envelope()
		envs = append(envs, env)
		if len(cache.Verify(env, trust.BuildKeys[i:i+1])) != 1 {
			t.Fatal("does not verify")
		}
		if i == 1 {
			cache.Verify(envs[0], trust.BuildKeys[:1]) // node-a's is now the most recent
		}
	}
	if len(cache.verified.at) != 2 || cache.verified.order.Len() != 2 {
		t.Fatalf("the cache holds %d (%d in order), bound 2", len(cache.verified.at), cache.verified.order.Len())
	}
	hits := cache.Hits()
	if len(cache.Verify(envs[1], trust.BuildKeys[1:2])) != 1 || cache.Hits() != hits {
		t.Fatal("node-b's envelope, the least recently used, was not forgotten (or no longer verifies)")
	}
	if len(cache.Verify(envs[2], trust.BuildKeys[2:3])) != 1 || cache.Hits() != hits+1 {
		t.Fatal("node-c's envelope was forgotten")
	}
}

// TestVerifiedEnvelopesConcurrent: the FSM's checks of a batch (on
// GOMAXPROCS goroutines) and the validators use one cache at once; run
// with -race. Every answer is still right.
func TestVerifiedEnvelopesConcurrent(t *testing.T) {
	nodes := testNodes(t, 3)
	trust, err := testPolicy(t, nodes).Trust()
	if err != nil {
		t.Fatal(err)
	}
	spec, _ := testSpec(t, "demo:concurrent")
	var envs []*dssepb.Envelope
	for _, nd := range nodes {
		envs = append(envs, testBundle(t, nd.signer, spec, map[string]string{"demo": hexDigest("a")}).Envelope())
	}
	cache := NewVerifiedEnvelopes(2) // smaller than the set: entries come and go
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			for i := range 30 {
				k := (g + i) % 3
				got := cache.Verify(envs[k], trust.BuildKeys)
				if len(got) != 1 || got[0] != trust.BuildKeys[k] {
					errs <- fmt.Errorf("node %d's envelope counted for %v", k, got)
					return
				}
			}
			errs <- nil
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

// TestVerifiedStatementsInTheFSMCheck: the statements the vote validator
// parsed are answered from memory in the FSM's check, and every check of
// the entry still runs on them: an entry that claims another spec than
// the one the remembered statement binds is refused; a payload that does
// not parse is refused every time and not remembered.
func TestVerifiedStatementsInTheFSMCheck(t *testing.T) {
	nodes := testNodes(t, 3)
	chain, err := policy.NewChain(testPolicy(t, nodes))
	if err != nil {
		t.Fatal(err)
	}
	cache := NewVerifiedEnvelopes(0)
	spec, input := testSpec(t, "demo:parsed")
	other, _ := testSpec(t, "demo:other")
	subjects := map[string]string{"demo": hexDigest("a")}
	var envs []*dssepb.Envelope
	for _, nd := range nodes[:2] {
		b := testBundle(t, nd.signer, spec, subjects)
		v, err := NewVote(testVoteFor(testPolicyDigest, input, nd.name), b, "sha256:"+hexDigest("m"))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := v.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		// As the votes validator parses it.
		if _, err := parseVote(raw, cache.Statement); err != nil {
			t.Fatal(err)
		}
		envs = append(envs, b.Envelope())
	}
	// The test's two statements are the same bytes (one builder id, one
	// spec and subject): the second is found parsed.
	if hits, parsed := cache.StatementHits(); hits != 1 || parsed != 1 {
		t.Fatalf("%d hits, %d parsed; want 1 and 1", hits, parsed)
	}
	c := &ChainChecker{Chain: chain, Envelopes: cache}
	if got, err := c.CheckEntryAt(0, entryOf(t, spec, envs...)); err != nil || got != input {
		t.Fatalf("the entry of the parsed votes: %q, %v", got, err)
	}
	if hits, parsed := cache.StatementHits(); hits != 3 || parsed != 1 {
		t.Fatalf("%d hits, %d parsed; want 3 and 1", hits, parsed)
	}
	// A lying leader files the genuine votes under another spec.
	if _, err := c.CheckEntryAt(0, entryOf(t, other, envs...)); !errors.Is(err, attest.ErrNotVerified) || !strings.Contains(err.Error(), "another spec") {
		t.Fatalf("the votes under another spec: got %v, want it refused for another spec", err)
	}
	// A vote whose remembered statement is for spec, sent for other's
	// input, is refused by the validator's parse.
	_, otherInput := testSpec(t, "demo:other")
	v, err := NewVote(testVoteFor(testPolicyDigest, input, nodes[0].name), testBundle(t, nodes[0].signer, spec, subjects), "sha256:"+hexDigest("m"))
	if err != nil {
		t.Fatal(err)
	}
	v.InputDigest = otherInput
	raw, err := v.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := parseVote(raw, cache.Statement); err == nil || !strings.Contains(err.Error(), "the attestation is for input") {
		t.Fatalf("a remembered statement in a vote for another input: got %v", err)
	}
	// A payload that does not parse: refused each time, never remembered.
	n := len(cache.statements.at)
	for range 2 {
		if _, err := cache.Statement([]byte(`{"_type":"https://in-toto.io/Statement/v1","extra":1}`)); err == nil {
			t.Fatal("a statement with an unknown field parsed")
		}
	}
	if len(cache.statements.at) != n {
		t.Fatalf("a failed parse was remembered (%d, was %d)", len(cache.statements.at), n)
	}
	var none *VerifiedEnvelopes
	if ps, err := none.Statement(envs[0].GetPayload()); err != nil || !bytes.Equal(ps.Spec, spec) {
		t.Fatalf("a nil cache: %v, %v", ps, err)
	}
}

// TestVerifiedStatementsBound: at most the bound are remembered.
func TestVerifiedStatementsBound(t *testing.T) {
	nodes := testNodes(t, 1)
	cache := NewVerifiedEnvelopes(2)
	for i := range 3 {
		spec, _ := testSpec(t, fmt.Sprintf("demo:%d", i))
		env := testBundle(t, nodes[0].signer, spec, map[string]string{"demo": hexDigest("a")}).Envelope()
		if _, err := cache.Statement(env.GetPayload()); err != nil {
			t.Fatal(err)
		}
	}
	if len(cache.statements.at) != 2 || cache.statements.order.Len() != 2 {
		t.Fatalf("%d statements remembered (%d in order), bound 2", len(cache.statements.at), cache.statements.order.Len())
	}
}
