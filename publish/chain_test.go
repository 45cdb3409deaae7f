package publish_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/pyrsia/pyrsia-build/publish/policy/policytest"
	"github.com/pyrsia/pyrsia-build/publish/tlog"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
)

const chainNet = "example.org/chain-test"

// chainNode is a build node with its private keys.
type chainNode struct {
	node   policy.Node
	signer *attest.Signer
	skey   string // note signer key
}

var chainNodes struct {
	once sync.Once
	n    []chainNode
}

// testChainNodes makes seven nodes' keys once, node-0 to node-6 (scrypt
// is slow). rekey(i) gives node i another cosign key: node-6's.
func testChainNodes(t testing.TB) []chainNode {
	t.Helper()
	chainNodes.once.Do(func() {
		chainNodes.n = make([]chainNode, 7)
		var wg sync.WaitGroup
		for i := range chainNodes.n {
			wg.Go(func() {
				name := fmt.Sprintf("node-%d", i)
				kp, err := attest.GenerateKeyPair([]byte("pw"))
				if err != nil {
					panic(err)
				}
				s, err := attest.LoadSigner(kp.Private, []byte("pw"))
				if err != nil {
					panic(err)
				}
				skey, vkey, err := witness.GenerateKey(name)
				if err != nil {
					panic(err)
				}
				chainNodes.n[i] = chainNode{signer: s, skey: skey, node: policy.Node{Name: name, CosignKey: string(kp.Public),
					PeerID: "12D3KooW" + strings.Repeat("b", 43) + string(rune('A'+i)), NoteKey: vkey}}
			})
		}
		wg.Wait()
	})
	return chainNodes.n
}

func chainPolicy(t testing.TB, ns ...chainNode) *policy.Policy {
	t.Helper()
	p := &policy.Policy{Version: 1, Name: chainNet}
	for _, n := range ns {
		p.Nodes = append(p.Nodes, n.node)
	}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	return p
}

// changeEntry makes the log entry of a change from old to new approved by
// approvers (signed as they are: with whatever key they hold).
func changeEntry(t testing.TB, old, new *policy.Policy, approvers ...chainNode) []byte {
	t.Helper()
	var signers []*attest.Signer
	for _, a := range approvers {
		signers = append(signers, a.signer)
	}
	return policytest.ChangeEntry(t, old, new, signers...)
}

// publishEntry makes the publish entry of content attested by voters.
func publishEntry(t testing.TB, content string, voters ...chainNode) []byte {
	t.Helper()
	sum := sha256.Sum256([]byte(content))
	digest := hex.EncodeToString(sum[:])
	coord := "org.example:hello:" + fmt.Sprint(len(content))
	spec := []byte(`{"coordinate":"` + coord + `","ecosystem":"maven"}`)
	var envs []*dssepb.Envelope
	for _, v := range voters {
		prov, err := attest.NewProvenance(attest.ProvenanceOptions{
			BuildType: "https://example.com/test", ExternalParameters: map[string]any{"spec": map[string]any{"coordinate": coord, "ecosystem": "maven"}},
			BuilderID: "urn:test:" + v.node.Name,
		})
		if err != nil {
			t.Fatal(err)
		}
		b, err := attest.Attest(v.signer, []*intoto.ResourceDescriptor{{Name: "hello.jar", Digest: map[string]string{"sha256": digest}}}, attest.PredicateSLSAProvenanceV1, prov)
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, b.Envelope())
	}
	e, err := publish.NewEntry("maven", coord, spec, envs)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := e.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// chainLog writes entries to a real log signed by signer's note key,
// cosigned by cosigners, and returns a proof bundle of the entry at index
// (with every policy change of the log) and the artifact file of content.
func chainBundle(t *testing.T, entries [][]byte, index uint64, content string, signer chainNode, cosigners ...chainNode) (*publish.ProofBundle, string) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	ls, err := witness.NewLogSigner(signer.skey)
	if err != nil {
		t.Fatal(err)
	}
	lv, _ := witness.NewLogVerifier(signer.node.NoteKey)
	l, err := tlog.Open(ctx, tlog.Options{Dir: filepath.Join(dir, "log"), Origin: chainNet, Signer: ls, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, e := range entries {
		if _, err := l.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	cp, err := l.Publish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	signed := cp.Note
	for _, c := range cosigners {
		cs, _ := witness.NewCosignatureSigner(c.skey)
		w, err := witness.NewCosigner(witness.CosignerOptions{Signer: cs, Origin: chainNet, LogVerifier: lv, StateDir: filepath.Join(dir, c.node.Name)})
		if err != nil {
			t.Fatal(err)
		}
		sig, err := w.Cosign(ctx, cp.Note, witness.ProofSourceFunc(l.ConsistencyProof))
		if err != nil {
			t.Fatal(err)
		}
		if signed, err = witness.AddSignatures(signed, sig); err != nil {
			t.Fatal(err)
		}
	}
	incl, err := l.InclusionProof(ctx, index, cp.Size)
	if err != nil {
		t.Fatal(err)
	}
	pb := &publish.ProofBundle{RawEntry: entries[index], Index: index, TreeSize: cp.Size, InclusionProof: incl, Checkpoint: string(signed)}
	for i, e := range entries {
		if k, _ := publish.EntryKind(e); k == publish.KindPolicy {
			p, err := l.InclusionProof(ctx, uint64(i), cp.Size)
			if err != nil {
				t.Fatal(err)
			}
			pb.PolicyChanges = append(pb.PolicyChanges, publish.PolicyChangeProof{Index: uint64(i), RawEntry: e, InclusionProof: p})
		}
	}
	data, err := pb.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if pb, err = publish.ParseProofBundle(data); err != nil {
		t.Fatal(err)
	}
	artifact := filepath.Join(dir, "hello.jar")
	if err := os.WriteFile(artifact, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return pb, artifact
}

func verifyChain(t *testing.T, pb *publish.ProofBundle, artifact string, first *policy.Policy) (*publish.ProofEvidence, error) {
	t.Helper()
	return publish.VerifyProofChain(context.Background(), attest.FileArtifact(artifact), pb, first, publish.ProofOptions{})
}

func wantRefusal(t *testing.T, err error, step, want string) {
	t.Helper()
	var ve *attest.VerificationError
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("got %v, want a refusal containing %q", err, want)
	}
	if !asVerification(err, &ve) || ve.Step != step {
		t.Fatalf("got %v, want a verification error of step %q", err, step)
	}
}

func asVerification(err error, ve **attest.VerificationError) bool {
	for err != nil {
		if v, ok := err.(*attest.VerificationError); ok {
			*ve = v
			return true
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return false
		}
		err = u.Unwrap()
	}
	return false
}

// A sixth node joins; entries after the change need 4 of 6.
func TestChainAddSixthNode(t *testing.T) {
	n := testChainNodes(t)
	five := chainPolicy(t, n[:5]...)
	six := chainPolicy(t, n[:6]...)
	entries := [][]byte{
		publishEntry(t, "v1", n[0], n[1], n[2]), // 3 of 5
		changeEntry(t, five, six, n[0], n[1], n[2]),
		publishEntry(t, "v22", n[1], n[3], n[4], n[5]), // 4 of 6, with the new node
		publishEntry(t, "v333", n[0], n[1], n[2]),      // 3 of 6: the old majority
	}
	cosigners := []chainNode{n[1], n[2], n[3], n[5]} // 4 of the six
	t.Run("before the change", func(t *testing.T) {
		pb, art := chainBundle(t, entries, 0, "v1", n[0], cosigners...)
		if _, err := verifyChain(t, pb, art, five); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("the new majority", func(t *testing.T) {
		pb, art := chainBundle(t, entries, 2, "v22", n[5], cosigners...) // the new node signs the checkpoint
		ev, err := verifyChain(t, pb, art, five)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Policy != six.Digest() || len(ev.PolicyChanges) != 1 {
			t.Errorf("got policy %s after changes %v, want %s after [1]", ev.Policy, ev.PolicyChanges, six.Digest())
		}
	})
	t.Run("the old majority is not enough", func(t *testing.T) {
		pb, art := chainBundle(t, entries, 3, "v333", n[0], cosigners...)
		_, err := verifyChain(t, pb, art, five)
		wantRefusal(t, err, "signature", "signed by 3 of the 6 keys")
	})
	t.Run("checkpoint judged by the policy in force at its size", func(t *testing.T) {
		// 3 cosignatures are a majority of five, not of six.
		pb, art := chainBundle(t, entries, 0, "v1", n[0], n[0], n[1], n[2])
		_, err := verifyChain(t, pb, art, five)
		wantRefusal(t, err, "checkpoint", "")
	})
	t.Run("VerifyProof refuses a bundle with changes", func(t *testing.T) {
		pb, art := chainBundle(t, entries, 2, "v22", n[5], cosigners...)
		tr, _ := six.Trust()
		if _, err := publish.VerifyProof(context.Background(), attest.FileArtifact(art), pb, tr, publish.ProofOptions{}); err == nil || !strings.Contains(err.Error(), "VerifyProofChain") {
			t.Fatalf("got %v, want a pointer to VerifyProofChain", err)
		}
	})
}

func TestChainRotateKey(t *testing.T) {
	n := testChainNodes(t)
	three := chainPolicy(t, n[:3]...)
	rotated := chainPolicy(t, n[:3]...)
	rotated.Nodes[1].CosignKey = n[6].node.CosignKey
	newB := chainNode{node: rotated.Nodes[1], signer: n[6].signer, skey: n[1].skey}
	entries := [][]byte{
		publishEntry(t, "old", n[0], n[1]),
		changeEntry(t, three, rotated, n[1], n[2]),
		publishEntry(t, "new1", n[0], newB),
		publishEntry(t, "new22", n[0], n[1]), // node-1's rotated-out key
	}
	cos := []chainNode{n[0], n[1], n[2]}
	t.Run("old entry", func(t *testing.T) {
		pb, art := chainBundle(t, entries, 0, "old", n[2], cos...)
		if _, err := verifyChain(t, pb, art, three); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("new entry", func(t *testing.T) {
		pb, art := chainBundle(t, entries, 2, "new1", n[2], cos...)
		if _, err := verifyChain(t, pb, art, three); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("rotated-out key counts for nothing", func(t *testing.T) {
		pb, art := chainBundle(t, entries, 3, "new22", n[2], cos...)
		_, err := verifyChain(t, pb, art, three)
		wantRefusal(t, err, "signature", "signed by 1 of the 3 keys (node-0)")
	})
}

func TestChainRemoveNode(t *testing.T) {
	n := testChainNodes(t)
	three := chainPolicy(t, n[:3]...)
	two := chainPolicy(t, n[:2]...)
	entries := [][]byte{
		publishEntry(t, "before", n[0], n[2]),
		changeEntry(t, three, two, n[0], n[1]),
		publishEntry(t, "after1", n[0], n[2]), // node-2 was removed
	}
	pb, art := chainBundle(t, entries, 0, "before", n[0], n[0], n[1])
	if _, err := verifyChain(t, pb, art, three); err != nil {
		t.Fatalf("node-2's vote before its removal: %v", err)
	}
	pb, art = chainBundle(t, entries, 2, "after1", n[0], n[0], n[1])
	_, err := verifyChain(t, pb, art, three)
	wantRefusal(t, err, "signature", "signed by 1 of the 2 keys (node-0), 2 needed")
	// A checkpoint after the change signed by the removed node's note
	// key is not the log's, nor one it cosigned final.
	pb, art = chainBundle(t, entries, 0, "before", n[2], n[0], n[1])
	_, err = verifyChain(t, pb, art, three)
	wantRefusal(t, err, "checkpoint", `no signature by log key "node-0\" or \"node-1"`)
	pb, art = chainBundle(t, entries, 0, "before", n[0], n[0], n[2])
	_, err = verifyChain(t, pb, art, three)
	wantRefusal(t, err, "checkpoint", "")
}

func TestChainMinorityChange(t *testing.T) {
	n := testChainNodes(t)
	three := chainPolicy(t, n[:3]...)
	// node-0 alone adds node-3 and node-4 to take over the majority.
	takeover := chainPolicy(t, n[0], n[1], n[2], n[3], n[4])
	entries := [][]byte{
		changeEntry(t, three, takeover, n[0], n[5]), // node-5 is an outsider
		publishEntry(t, "evil", n[0], n[3], n[4]),
	}
	pb, art := chainBundle(t, entries, 1, "evil", n[0], n[0], n[3], n[4])
	_, err := verifyChain(t, pb, art, three)
	wantRefusal(t, err, "policy", "policy change at log index 0: policy: change: approved by 1 of the 3 build nodes of the policy in force (node-0), 2 needed; not counted: approval")
	if !strings.Contains(err.Error(), "is not a build node of the policy in force") {
		t.Errorf("got %v, want the outsider named", err)
	}
}

func TestChainBrokenBundle(t *testing.T) {
	n := testChainNodes(t)
	three := chainPolicy(t, n[:3]...)
	two := chainPolicy(t, n[:2]...)
	entries := [][]byte{
		changeEntry(t, three, two, n[0], n[1]),
		publishEntry(t, "x", n[0], n[1]),
	}
	pb, art := chainBundle(t, entries, 1, "x", n[0], n[0], n[1])
	t.Run("wrong first policy", func(t *testing.T) {
		other := chainPolicy(t, n[:4]...)
		_, err := verifyChain(t, pb, art, other)
		wantRefusal(t, err, "policy", "but the policy in force is")
	})
	t.Run("change not in the tree", func(t *testing.T) {
		bad := *pb
		bad.PolicyChanges = []publish.PolicyChangeProof{pb.PolicyChanges[0]}
		bad.PolicyChanges[0].RawEntry = changeEntry(t, three, two, n[0], n[1], n[2])
		_, err := verifyChain(t, &bad, art, three)
		wantRefusal(t, err, "policy", "policy change 0 is not in the tree")
	})
}

// CheckLogEntry is every node's check: a change signed by a minority is
// refused, and after an approved change entries are judged by the new
// policy.
func TestCheckLogEntry(t *testing.T) {
	ctx := context.Background()
	n := testChainNodes(t)
	three := chainPolicy(t, n[:3]...)
	four := chainPolicy(t, n[:4]...)
	chain, err := policy.NewChain(three)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := publish.CheckLogEntry(ctx, chain, 0, changeEntry(t, three, four, n[0])); err == nil || !strings.Contains(err.Error(), "approved by 1 of the 3") {
		t.Fatalf("a minority's change: got %v, want a refusal", err)
	}
	if key, err := publish.CheckLogEntry(ctx, chain, 0, publishEntry(t, "a", n[0], n[1])); err != nil || !strings.HasPrefix(key, "sha256:") {
		t.Fatalf("2 of 3 before the change: %q, %v", key, err)
	}
	change := changeEntry(t, three, four, n[0], n[2])
	key, err := publish.CheckLogEntry(ctx, chain, 1, change)
	if err != nil || key != publish.PolicyKeyPrefix+four.Digest() {
		t.Fatalf("the change: %q, %v", key, err)
	}
	if _, err := publish.CheckLogEntry(ctx, chain, 1, change); err != nil {
		t.Fatalf("the change replayed: %v", err)
	}
	if _, err := publish.CheckLogEntry(ctx, chain, 2, publishEntry(t, "bb", n[0], n[1])); err == nil || !strings.Contains(err.Error(), "signed by 2 of the 4 keys") {
		t.Fatalf("2 of 4 after the change: got %v, want a refusal", err)
	}
	if _, err := publish.CheckLogEntry(ctx, chain, 2, publishEntry(t, "bb", n[0], n[1], n[3])); err != nil {
		t.Fatalf("3 of 4 with the new node: %v", err)
	}
	// A node rebuilding its chain from its log gets the same policy.
	again, _ := policy.NewChain(three)
	log := [][]byte{nil, change}
	if err := publish.FollowChain(ctx, again, []uint64{1}, func(_ context.Context, i uint64) ([]byte, error) { return log[i], nil }); err != nil {
		t.Fatal(err)
	}
	if p, _ := again.Current(); p.Digest() != four.Digest() {
		t.Errorf("rebuilt chain: %s, want %s", p.Digest(), four.Digest())
	}
}

// Regression (hostile review of the policy chain): the keys a change
// rotated out (lost, stolen: the reason to rotate them) still make a
// majority of the first policy. Their holders write a log of their own,
// without the change, sign and cosign its checkpoint with the old note
// keys and hand out its bundle, which carries no policy change: given only
// the first policy, a verifier cannot tell it from the network's log.
// ProofOptions.LaterPolicy, a policy the verifier knows was in force (the
// one its nodes run), refuses every bundle whose checkpoint the chain
// does not judge by that policy or a later one.
func TestChainForkByRotatedOutKeys(t *testing.T) {
	n := testChainNodes(t)
	three := chainPolicy(t, n[:3]...)
	// Every node gets new keys; node-6's cosign key goes to node-0, say.
	rotated := chainPolicy(t, n[3:6]...)
	rotated.Nodes[0].Name, rotated.Nodes[1].Name, rotated.Nodes[2].Name = "node-0", "node-1", "node-2"
	rotated.Nodes[0].NoteKey, rotated.Nodes[1].NoteKey, rotated.Nodes[2].NoteKey = n[3].node.NoteKey, n[4].node.NoteKey, n[5].node.NoteKey
	if err := rotated.Validate(); err != nil {
		t.Fatal(err)
	}
	real := [][]byte{
		changeEntry(t, three, rotated, n[0], n[1]),
		publishEntry(t, "real", n[3], n[4]),
	}
	pb, art := chainBundle(t, real, 1, "real", n[3], n[3], n[4])
	if _, err := verifyChain(t, pb, art, three); err != nil {
		t.Fatalf("the network's own bundle: %v", err)
	}
	opts := publish.ProofOptions{LaterPolicy: rotated.Digest()}
	if _, err := publish.VerifyProofChain(context.Background(), attest.FileArtifact(art), pb, three, opts); err != nil {
		t.Fatalf("the network's own bundle, knowing the rotated policy: %v", err)
	}

	// The fork: old keys only, no change.
	fork := [][]byte{publishEntry(t, "evil", n[0], n[1])}
	fpb, fart := chainBundle(t, fork, 0, "evil", n[0], n[0], n[1])
	if _, err := verifyChain(t, fpb, fart, three); err != nil {
		t.Fatalf("without a later policy the fork verifies (what LaterPolicy is for): %v", err)
	}
	_, err := publish.VerifyProofChain(context.Background(), attest.FileArtifact(fart), fpb, three, opts)
	wantRefusal(t, err, "policy", "is not the policy in force at the checkpoint, nor one before it")
	// The fork with the real change after its entry is judged by the
	// rotated policy at its checkpoint, which the old keys did not sign.
	fork = append(fork, real[0])
	fpb, fart = chainBundle(t, fork, 0, "evil", n[0], n[0], n[1])
	_, err = publish.VerifyProofChain(context.Background(), attest.FileArtifact(fart), fpb, three, opts)
	wantRefusal(t, err, "checkpoint", "")
	// A later policy that is not valid is the caller's error.
	if _, err := publish.VerifyProofChain(context.Background(), attest.FileArtifact(art), pb, three, publish.ProofOptions{LaterPolicy: "sha256:nope"}); err == nil {
		t.Fatal("a later policy digest that is not one was accepted")
	}
}

// FuzzChainCheck: whatever bytes a log holds at an index, Chain.Check
// (what ChainChecker.CheckEntry asks) applies nothing and gives the answer
// Chain.Apply gives, and Apply changes the chain only when it accepts.
func FuzzChainCheck(f *testing.F) {
	n := testChainNodes(f)
	three := chainPolicy(f, n[:3]...)
	four := chainPolicy(f, n[:4]...)
	seeds, _ := filepath.Glob(filepath.Join("testdata", "policychange", "*.json"))
	for _, name := range seeds {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, uint64(3))
	}
	f.Add(changeEntry(f, three, four, n[0], n[1]), uint64(3))
	f.Add(changeEntry(f, three, four, n[0]), uint64(0))
	f.Add(changeEntry(f, four, three, n[0], n[1], n[2]), uint64(7))
	f.Fuzz(func(t *testing.T, b []byte, index uint64) {
		chain, err := policy.NewChain(three)
		if err != nil {
			t.Fatal(err)
		}
		c, err := publish.ParsePolicyChange(b)
		if err != nil {
			return
		}
		_, checkErr := chain.Check(index, c)
		if got := chain.Changes(); len(got) != 0 {
			t.Fatalf("Check applied a change: %v", got)
		}
		_, applyErr := chain.Apply(index, c)
		if (checkErr == nil) != (applyErr == nil) {
			t.Fatalf("Check says %v, Apply %v", checkErr, applyErr)
		}
		p, from := chain.Current()
		switch {
		case applyErr != nil && (len(chain.Changes()) != 0 || p.Digest() != three.Digest()):
			t.Fatalf("a refused change changed the chain: %v, %s", chain.Changes(), p.Digest())
		case applyErr == nil && (p.Digest() != c.New.Digest() || from != index+1):
			t.Fatalf("an accepted change at %d: policy %s from %d", index, p.Digest(), from)
		}
	})
}

// LogEntryKind takes bytes that start as a canonical publish entry for a
// publish entry without reading the rest: a policy change behind that
// prefix (a second "kind" further on, which EntryKind reads) is judged as
// a publish entry by CheckLogEntry, refused, and never applied; it is no
// policy change either.
func TestLogEntryKindPrefix(t *testing.T) {
	ctx := context.Background()
	n := testChainNodes(t)
	three := chainPolicy(t, n[:3]...)
	four := chainPolicy(t, n[:4]...)
	change := changeEntry(t, three, four, n[0], n[2])
	if k, err := publish.LogEntryKind(change); err != nil || k != publish.KindPolicy {
		t.Fatalf("a policy change: LogEntryKind %q, %v", k, err)
	}
	pe := publishEntry(t, "a", n[0], n[1])
	if k, err := publish.LogEntryKind(pe); err != nil || k != publish.KindPublish {
		t.Fatalf("a publish entry: LogEntryKind %q, %v", k, err)
	}
	rest, ok := bytes.CutPrefix(change, []byte(`{"v":1,"kind":"policy",`))
	if !ok {
		t.Fatalf("the change starts %.40q", change)
	}
	hidden := append([]byte(`{"v":1,"kind":"publish","kind":"policy",`), rest...)
	if k, err := publish.EntryKind(hidden); err != nil || k != publish.KindPolicy {
		t.Fatalf("EntryKind reads the last kind: %q, %v", k, err)
	}
	if k, err := publish.LogEntryKind(hidden); err != nil || k != publish.KindPublish {
		t.Fatalf("LogEntryKind: %q, %v; want publish, from the prefix", k, err)
	}
	if _, err := publish.ParsePolicyChange(hidden); err == nil {
		t.Fatal("ParsePolicyChange accepts a change behind a publish entry's prefix")
	}
	chain, err := policy.NewChain(three)
	if err != nil {
		t.Fatal(err)
	}
	if key, e, err := publish.CheckLogEntryParsed(ctx, chain, 0, hidden, publish.EntryOptions{}); err == nil {
		t.Fatalf("CheckLogEntry accepts the hidden change: %q, %v", key, e)
	}
	if chain.Changes() != nil {
		t.Fatal("the hidden change was applied to the chain")
	}
	key, e, err := publish.CheckLogEntryParsed(ctx, chain, 0, pe, publish.EntryOptions{})
	if err != nil || e == nil || e.InputDigest != key {
		t.Fatalf("CheckLogEntryParsed of a publish entry: %q, %+v, %v", key, e, err)
	}
	if b, _ := e.MarshalBinary(); !bytes.Equal(b, pe) {
		t.Error("the parsed entry does not encode back to the entry")
	}
	if _, e, err := publish.CheckLogEntryParsed(ctx, chain, 1, change, publish.EntryOptions{}); err != nil || e != nil {
		t.Fatalf("CheckLogEntryParsed of a change: %+v, %v; want no publish entry", e, err)
	}
}
