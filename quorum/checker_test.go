package quorum

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/pyrsia/pyrsia-build/publish/tlog"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"golang.org/x/mod/sumdb/note"
)

func testPolicy(t testing.TB, nodes []*testNode) *policy.Policy {
	t.Helper()
	p := &policy.Policy{Version: 1, Name: "test.example/net"}
	for _, nd := range nodes {
		pemKey, err := cryptoutils.MarshalPublicKeyToPEM(nd.signer.Public())
		if err != nil {
			t.Fatal(err)
		}
		_, vkey, err := witness.GenerateKey(nd.name)
		if err != nil {
			t.Fatal(err)
		}
		p.Nodes = append(p.Nodes, policy.Node{Name: nd.name, CosignKey: string(pemKey), PeerID: nd.id.String(), NoteKey: vkey})
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return p
}

// testEntry is the log entry of spec attested by the given nodes.
func testEntry(t testing.TB, nodes []*testNode, spec []byte, artifact string) []byte {
	t.Helper()
	var envs []*dssepb.Envelope
	for _, nd := range nodes {
		envs = append(envs, testBundle(t, nd.signer, spec, map[string]string{"demo": hexDigest(artifact)}).Envelope())
	}
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

func TestNetworkFromPolicy(t *testing.T) {
	nodes := testNodes(t, 5)
	p := testPolicy(t, nodes)
	n, err := NetworkFromPolicy(p)
	if err != nil {
		t.Fatal(err)
	}
	if n.Digest() != p.Digest() || n.Threshold() != 3 || len(n.Members()) != 5 {
		t.Fatalf("got digest %s threshold %d members %d", n.Digest(), n.Threshold(), len(n.Members()))
	}
	m, ok := n.ByPeer(nodes[2].id)
	if !ok || m.Name != "node-c" {
		t.Fatalf("ByPeer(node-c) = %v %v", m, ok)
	}
	if _, ok := n.Requester(m.Key.ID); !ok {
		t.Fatal("a build node may not request builds")
	}
	p.Nodes[1].PeerID = ""
	if _, err := NetworkFromPolicy(p); err == nil {
		t.Fatal("a policy without a peer id made a network")
	}
}

func TestPolicyChecker(t *testing.T) {
	nodes := testNodes(t, 6)
	p := testPolicy(t, nodes[:5])
	c, err := NewPolicyChecker(p)
	if err != nil {
		t.Fatal(err)
	}
	spec, input := testSpec(t, "demo:1")
	for _, tc := range []struct {
		name  string
		nodes []*testNode
		ok    bool
	}{
		{"majority", nodes[:3], true},
		{"all", nodes[:5], true},
		{"minority", nodes[:2], false},
		{"minority and an outsider", []*testNode{nodes[0], nodes[1], nodes[5]}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := c.CheckEntry(testEntry(t, tc.nodes, spec, "artifact"))
			if (err == nil) != tc.ok {
				t.Fatalf("got %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && got != input {
				t.Fatalf("got input %s, want %s", got, input)
			}
			if !tc.ok && !errors.Is(err, attest.ErrNotVerified) {
				t.Fatalf("got %v, want attest.ErrNotVerified", err)
			}
		})
	}
	if _, err := c.CheckEntry([]byte("not an entry")); err == nil {
		t.Fatal("garbage was accepted")
	}
}

// TestEntryOfFifteenFits: the entry of a 15-node network's majority (8
// envelopes) must fit the log's 64 KiB entry limit (with this package's
// test attestations; the builder's provenance is what must stay small).
func TestEntryOfFifteenFits(t *testing.T) {
	// Only the majority signs: 8 of 15.
	nodes := testNodes(t, 8)
	spec, _ := testSpec(t, "demo:1")
	b := testEntry(t, nodes, spec, "artifact")
	if len(b) > publish.MaxEntrySize {
		t.Fatalf("entry of 8 envelopes is %d bytes, over %d", len(b), publish.MaxEntrySize)
	}
	t.Logf("entry of 8 envelopes: %d bytes (limit %d)", len(b), publish.MaxEntrySize)
}

func openLog(t testing.TB, dir string, signer note.Signer) *tlog.Log {
	t.Helper()
	l, err := tlog.Open(context.Background(), tlog.Options{Dir: dir, Origin: "test.example/net", Signer: signer, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func applyCmd(f *FSM, idx uint64, entry []byte) ApplyResult {
	return f.Apply(&raft.Log{Index: idx, Type: raft.LogCommand, Data: AppendEntryCommand(entry)}).(ApplyResult)
}

// TestFSMWithPolicy applies real entries to a real log through the FSM:
// a majority's entry is appended, a minority's is refused, a second entry
// for the same input is refused, and nothing refused reaches the log.
func TestFSMWithPolicy(t *testing.T) {
	nodes := testNodes(t, 5)
	c, err := NewPolicyChecker(testPolicy(t, nodes))
	if err != nil {
		t.Fatal(err)
	}
	l := openLog(t, t.TempDir(), nil)
	f, err := NewFSM(FSMOptions{Checker: c, Applier: l, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	spec1, in1 := testSpec(t, "demo:1")
	spec2, _ := testSpec(t, "demo:2")
	if r := applyCmd(f, 1, testEntry(t, nodes[:3], spec1, "a")); r.Err != nil || r.Index != 0 || r.InputDigest != in1 {
		t.Fatalf("majority entry: %+v", r)
	}
	if r := applyCmd(f, 2, testEntry(t, nodes[:2], spec2, "a")); !errors.Is(r.Err, ErrRefused) {
		t.Fatalf("minority entry: got %v, want ErrRefused", r.Err)
	}
	// Another majority's entry for the same input (another artifact even).
	if r := applyCmd(f, 3, testEntry(t, nodes[2:], spec1, "b")); !errors.Is(r.Err, ErrDuplicateInput) {
		t.Fatalf("second entry for an input: got %v, want ErrDuplicateInput", r.Err)
	}
	if r := f.Apply(&raft.Log{Index: 4, Type: raft.LogCommand, Data: nil}).(ApplyResult); r.Err == nil {
		t.Fatal("an empty command was applied")
	}
	if l.Size() != 1 || f.Size() != 1 {
		t.Fatalf("log size %d, FSM size %d, want 1", l.Size(), f.Size())
	}
}

// tlogSource serves a tlog's published entries.
type tlogSource struct{ l *tlog.Log }

func (s tlogSource) Entries(ctx context.Context, start, end uint64) ([][]byte, error) {
	var out [][]byte
	for i := start; i < end; i++ {
		e, err := s.l.Entry(ctx, i)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, nil
}

// sink is a raft.SnapshotSink in memory.
type sink struct{ bytes.Buffer }

func (s *sink) ID() string    { return "test" }
func (s *sink) Cancel() error { return nil }
func (s *sink) Close() error  { return nil }

// TestFSMSnapshotCatchup: a wiped node restores a snapshot and fetches the
// entries it lacks from a peer's log, re-checking each; a peer that serves
// an entry without quorum is refused.
func TestFSMSnapshotCatchup(t *testing.T) {
	nodes := testNodes(t, 3)
	c, err := NewPolicyChecker(testPolicy(t, nodes))
	if err != nil {
		t.Fatal(err)
	}
	skey, _, err := witness.GenerateKey("test.example/net")
	if err != nil {
		t.Fatal(err)
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	peerLog := openLog(t, filepath.Join(t.TempDir(), "peer"), signer)
	peer, _ := NewFSM(FSMOptions{Checker: c, Applier: peerLog, Logger: slog.New(slog.DiscardHandler)})
	var entries [][]byte
	for i := range 5 {
		spec, _ := testSpec(t, fmt.Sprintf("demo:%d", i))
		e := testEntry(t, nodes[:2], spec, "a")
		entries = append(entries, e)
		if r := applyCmd(peer, uint64(i+1), e); r.Err != nil {
			t.Fatal(r.Err)
		}
	}
	if _, err := peerLog.Publish(context.Background()); err != nil {
		t.Fatal(err)
	}
	snap, err := peer.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	var s sink
	if err := snap.Persist(&s); err != nil {
		t.Fatal(err)
	}

	// Without a peer to fetch from, the restore fails and says why.
	wiped := openLog(t, filepath.Join(t.TempDir(), "wiped"), nil)
	f, _ := NewFSM(FSMOptions{Checker: c, Applier: wiped, Logger: slog.New(slog.DiscardHandler)})
	if err := f.Restore(io.NopCloser(bytes.NewReader(s.Bytes()))); err == nil {
		t.Fatal("restored a snapshot of 5 entries onto an empty log with no peer")
	}

	f, _ = NewFSM(FSMOptions{Checker: c, Applier: wiped, Logger: slog.New(slog.DiscardHandler),
		Catchup: &CheckedCatchup{Source: tlogSource{peerLog}, Checker: c, Batch: 2}})
	if err := f.Restore(io.NopCloser(bytes.NewReader(s.Bytes()))); err != nil {
		t.Fatal(err)
	}
	if wiped.Size() != 5 || f.Size() != 5 {
		t.Fatalf("after catch-up: log %d, FSM %d, want 5", wiped.Size(), f.Size())
	}
	for i, e := range entries {
		_, in := testSpec(t, fmt.Sprintf("demo:%d", i))
		if idx, ok := f.Lookup(in); !ok || idx != uint64(i) {
			t.Fatalf("entry %d not found after restore", i)
		}
		if got, err := wiped.Entry(context.Background(), uint64(i)); err == nil && !bytes.Equal(got, e) {
			t.Fatalf("entry %d differs from the peer's", i)
		}
	}
	// The next entry applies after the restored ones.
	spec, _ := testSpec(t, "demo:next")
	if r := applyCmd(f, 10, testEntry(t, nodes[1:], spec, "a")); r.Err != nil || r.Index != 5 {
		t.Fatalf("after restore: %+v", r)
	}

	// A peer serving an entry that lacks a quorum is caught.
	badLog := openLog(t, filepath.Join(t.TempDir(), "bad"), signer)
	badSpec, _ := testSpec(t, "demo:bad")
	if _, err := badLog.Append(context.Background(), testEntry(t, nodes[:1], badSpec, "a")); err != nil {
		t.Fatal(err)
	}
	if _, err := badLog.Publish(context.Background()); err != nil {
		t.Fatal(err)
	}
	other := openLog(t, filepath.Join(t.TempDir(), "other"), nil)
	f, _ = NewFSM(FSMOptions{Checker: c, Applier: other, Logger: slog.New(slog.DiscardHandler),
		Catchup: &CheckedCatchup{Source: tlogSource{badLog}, Checker: c, Batch: 1}})
	err = f.Restore(io.NopCloser(bytes.NewReader(s.Bytes())))
	if err == nil || !errors.Is(err, attest.ErrNotVerified) {
		t.Fatalf("got %v, want the peer's entry refused", err)
	}
	if other.Size() != 0 {
		t.Fatalf("a refused entry reached the log (size %d)", other.Size())
	}
}

// TestFSMReplayMismatch: when the log holds an entry other than the one
// Raft replays at its position, the FSM stops instead of guessing.
func TestFSMReplayMismatch(t *testing.T) {
	l := &memLog{entries: [][]byte{[]byte("entry-x")}}
	f, _ := NewFSM(FSMOptions{Checker: digestChecker, Applier: l, Logger: slog.New(slog.DiscardHandler)})
	r := applyCmd(f, 1, []byte("entry-y"))
	if r.Err == nil || f.Err() == nil {
		t.Fatalf("got %+v, want the FSM stopped", r)
	}
	if r := applyCmd(f, 2, []byte("entry-z")); r.Err == nil {
		t.Fatal("a stopped FSM applied an entry")
	}
	// The same entry replays silently.
	l2 := &memLog{entries: [][]byte{[]byte("entry-x")}}
	f2, _ := NewFSM(FSMOptions{Checker: digestChecker, Applier: l2, Logger: slog.New(slog.DiscardHandler)})
	if r := applyCmd(f2, 1, []byte("entry-x")); r.Err != nil || len(l2.entries) != 1 {
		t.Fatalf("replay: %+v, log of %d", r, len(l2.entries))
	}
}

// memLog is an Applier with EntryAt, in memory (a unit-test Applier).
type memLog struct{ entries [][]byte }

func (m *memLog) Size() uint64 { return uint64(len(m.entries)) }
func (m *memLog) Append(_ context.Context, e []byte) (uint64, error) {
	m.entries = append(m.entries, e)
	return uint64(len(m.entries) - 1), nil
}
func (m *memLog) EntryAt(_ context.Context, i uint64) ([]byte, error) { return m.entries[i], nil }
