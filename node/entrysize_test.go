package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/pyrsia/pyrsia-build/builder"
	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/quorum"
	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
)

// manyBuild builds as many artifacts as the minor version of the spec's
// coordinate says (org.example:hello:1.N: N poms), as a Maven build of a
// large multi-module project would.
func manyBuild(ctx context.Context, spec *builder.Spec, out string) (*builder.Result, error) {
	input, err := spec.InputDigest()
	if err != nil {
		return nil, err
	}
	_, minor, _ := strings.Cut(spec.Coordinate, ":1.")
	count, err := strconv.Atoi(minor)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(out, "artifacts"), 0o755); err != nil {
		return nil, err
	}
	res := &builder.Result{InputDigest: input, SourceDigest: "sha256:" + spec.Source.Archive.SHA256, BuilderImageDigest: spec.BuilderImage.Digest}
	om := &builder.OutputManifest{Version: builder.ManifestVersion}
	for i := range count {
		name := fmt.Sprintf("module-%04d-1.%d.pom", i, count)
		rel := "artifacts/" + name
		data := []byte(input + " " + name)
		if err := os.WriteFile(filepath.Join(out, rel), data, 0o644); err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		am, err := builder.ManifestFile(ctx, name, filepath.Join(out, rel))
		if err != nil {
			return nil, err
		}
		am.Path = rel
		om.Artifacts = append(om.Artifacts, am)
		res.Artifacts = append(res.Artifacts, builder.Artifact{Name: name, Digest: "sha256:" + hex.EncodeToString(sum[:]), Path: rel, MediaType: "application/xml"})
	}
	if err := builder.WriteManifest(filepath.Join(out, "manifest.json"), om); err != nil {
		return nil, err
	}
	return res, nil
}

// A build with so many artifacts that the entry of a majority's
// attestations would be over the log's limit gets a verdict that says so
// (the nodes vote "failed" with the reason), not a quorum that could
// never be appended; one that fits is published, and the estimate the
// nodes voted on was not below the real entry's size.
func TestEntryTooLargeIsAVerdict(t *testing.T) {
	many := BuilderFunc(manyBuild)
	c := newCluster(t, 3, map[int]Builder{0: many, 1: many, 2: many})
	c.startAll()
	ctx := c.ctx()

	// 60 artifacts: about 33 KB with 2 attestations.
	input, evs := c.publish(ctx, 0, testSpec(60))
	if ev := lastEvent(evs); ev.Type != EventFinal {
		t.Fatalf("60 artifacts: round ended with %v, want final", ev)
	}
	n := c.nodes[0].node
	rec, _ := n.Log().Index().ByInputDigest(input)
	entry, err := n.Log().EntryAt(ctx, rec.LogIndex)
	if err != nil {
		t.Fatal(err)
	}
	b, err := n.builds.get(input)
	if err != nil {
		t.Fatal(err)
	}
	s, _ := builder.ParseSpec(testSpec(60))
	canon, _ := s.CanonicalJSON()
	est, err := majorityEntrySize(input, s.Ecosystem, s.Coordinate, canon, rec.Subjects, b.Bundle.Envelope(), 2, "node-a", n.cur.Load().members)
	if err != nil {
		t.Fatal(err)
	}
	if est < len(entry) || est > len(entry)+200 {
		t.Errorf("estimated %d bytes for an entry of %d", est, len(entry))
	}

	// 140 artifacts: about 77 KB with 2 attestations.
	_, evs = c.publish(ctx, 0, testSpec(140))
	ev := lastEvent(evs)
	if ev.Type != EventVerdict {
		t.Fatalf("140 artifacts: round ended with %v, want a verdict", ev)
	}
	// Two failed votes are enough for the verdict (no quorum possible).
	if len(ev.Verdict.Failed) < 2 || len(ev.Verdict.Groups) != 0 {
		t.Fatalf("verdict %q: want the nodes failed, none agreeing", ev.Verdict.Text)
	}
	for name, why := range ev.Verdict.Failed {
		if !strings.Contains(why, "over the log's 65535 byte limit") || !strings.Contains(why, "with 140 artifacts") {
			t.Errorf("%s failed with %q, want the entry size reason", name, why)
		}
	}
	if got := n.Log().Size(); got != 1 {
		t.Errorf("log size %d, want 1 (nothing appended for the large build)", got)
	}
	t.Logf("verdict: %s", ev.Verdict.Text)
}

// The size the nodes compute is the size of the entry publish encodes.
func TestEntrySizeMatchesMarshalBinary(t *testing.T) {
	for _, count := range []int{1, 40} {
		dir := t.TempDir()
		k, err := InitKeys(dir, "node-a", nil)
		if err != nil {
			t.Fatal(err)
		}
		bs := &buildStore{dir: filepath.Join(dir, "builds"), builder: BuilderFunc(manyBuild), signer: k.Cosign, node: "node-a", inflight: map[string]chan struct{}{}}
		s, err := builder.ParseSpec(testSpec(count))
		if err != nil {
			t.Fatal(err)
		}
		b, err := bs.build(context.Background(), s)
		if err != nil {
			t.Fatal(err)
		}
		canon, _ := s.CanonicalJSON()
		e, err := publish.NewEntry(s.Ecosystem, s.Coordinate, canon, []*dssepb.Envelope{b.Bundle.Envelope()})
		if err != nil {
			t.Fatal(err)
		}
		want, err := e.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		got, err := encodedEntrySize(e.InputDigest, e.Ecosystem, e.Coordinate, e.Spec, e.Subjects, e.Envelopes)
		if err != nil {
			t.Fatal(err)
		}
		if got != len(want) {
			t.Errorf("%d artifacts: computed %d bytes, MarshalBinary %d", count, got, len(want))
		}
	}
}

// An entry carries a majority's envelopes, not every agreeing node's: its
// size is the one the nodes checked before voting (the regression: with
// all three votes in before the proposal, the entry had three envelopes,
// 48 KB where the nodes had checked 35 KB).
func TestQuorumTakesAMajoritysEnvelopes(t *testing.T) {
	c := newCluster(t, 3, nil)
	network, err := quorum.NetworkFromPolicy(c.policy)
	if err != nil {
		t.Fatal(err)
	}
	spec, err := builder.ParseRemoteSpec(testSpec(7))
	if err != nil {
		t.Fatal(err)
	}
	canon, _ := spec.CanonicalJSON()
	input, _ := spec.InputDigest()
	r := &round{input: input, spec: canon, votes: map[string]*quorum.Vote{}, index: -1}
	for _, tn := range c.nodes {
		store := &buildStore{dir: filepath.Join(tn.dir, "builds"), builder: fakeBuild("honest"), signer: tn.keys.Cosign, node: tn.name, inflight: map[string]chan struct{}{}}
		b, err := store.build(context.Background(), spec)
		if err != nil {
			t.Fatal(err)
		}
		v, err := quorum.NewVote(quorum.VoteFor{Policy: network.Digest(), Request: "sha256:" + strings.Repeat("1", 64), InputDigest: input, Node: tn.name}, b.Bundle, b.ManifestDigest)
		if err != nil {
			t.Fatal(err)
		}
		r.add(v)
	}
	envs, ok := r.quorum(network)
	if !ok || len(envs) != network.Threshold() {
		t.Fatalf("quorum of 3 agreeing votes: %d envelopes (ok %v), want the threshold, %d", len(envs), ok, network.Threshold())
	}
}
