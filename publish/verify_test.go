package publish_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/pyrsia/pyrsia-build/publish/tlog"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"golang.org/x/mod/sumdb/note"
)

const origin = "example.com/pyrsia-verify-test"

var nodes struct {
	once    sync.Once
	signers []*attest.Signer
	pubs    []*attest.PublicKey
}

// nodeKeys makes three build node key pairs once (scrypt is slow).
func nodeKeys(t *testing.T) ([]*attest.Signer, []*attest.PublicKey) {
	nodes.once.Do(func() {
		for _, name := range []string{"node-a", "node-b", "node-c"} {
			kp, err := attest.GenerateKeyPair([]byte("pw"))
			if err != nil {
				panic(err)
			}
			s, err := attest.LoadSigner(kp.Private, []byte("pw"))
			if err != nil {
				panic(err)
			}
			p, err := attest.ParsePublicKey(name, kp.Public)
			if err != nil {
				panic(err)
			}
			nodes.signers, nodes.pubs = append(nodes.signers, s), append(nodes.pubs, p)
		}
	})
	return nodes.signers, nodes.pubs
}

type fixture struct {
	artifact string
	pb       *publish.ProofBundle
	trust    policy.TrustOptions
	opts     publish.ProofOptions
	// cosignerKeys are the verifier keys of the cosigners.
	cosignerKeys []string
	// literal makes verify use a Trust literal rather than NewTrust.
	literal bool
}

// verify runs VerifyProof with the fixture's keys.
func (f fixture) verify(ctx context.Context) (*publish.ProofEvidence, error) {
	trust, err := policy.NewTrust(f.trust)
	if f.literal {
		// A Trust made by hand, past NewTrust's checks: VerifyProof must
		// still count each key once.
		trust, err = &policy.Trust{Origin: f.trust.Origin, LogVerifiers: f.trust.LogVerifiers, Cosigners: f.trust.Cosigners,
			CosignThreshold: 2, BuildKeys: f.trust.BuildKeys, BuildThreshold: 2}, nil
	}
	if err != nil {
		return nil, err
	}
	return publish.VerifyProof(ctx, attest.FileArtifact(f.artifact), f.pb, trust, f.opts)
}

// published runs the publication flow for real: each of the voting nodes
// attests the artifact, the entry is appended to a durable log, the
// checkpoint is cosigned by three cosigners, and a proof bundle is cut.
// A mod is a func(*publish.Entry), applied before encoding, or a
// func([]byte) []byte, applied to the encoding: to log bytes that
// MarshalBinary refuses to write.
func published(t *testing.T, voters int, content string, mods ...any) fixture {
	t.Helper()
	signers, pubs := nodeKeys(t)
	dir := t.TempDir()
	artifact := filepath.Join(dir, "hello.jar")
	if err := os.WriteFile(artifact, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256([]byte(content))
	digest := hex.EncodeToString(sum[:])
	spec := []byte(`{"coordinate":"org.example:hello:1.0","ecosystem":"maven"}`)
	specSum := sha256.Sum256(spec)
	entry := &publish.Entry{
		InputDigest: "sha256:" + hex.EncodeToString(specSum[:]),
		Ecosystem:   "maven",
		Coordinate:  "org.example:hello:1.0",
		Spec:        spec,
		Subjects:    []publish.Subject{{Name: "hello.jar", Digest: "sha256:" + digest}},
	}
	for i := 0; i < voters; i++ {
		prov, err := attest.NewProvenance(attest.ProvenanceOptions{
			BuildType: "https://example.com/test", ExternalParameters: map[string]any{"spec": map[string]any{"coordinate": "org.example:hello:1.0", "ecosystem": "maven"}},
			BuilderID: fmt.Sprintf("urn:test:%s", pubs[i].Name),
		})
		if err != nil {
			t.Fatal(err)
		}
		b, err := attest.Attest(signers[i], []*intoto.ResourceDescriptor{{Name: "hello.jar", Digest: map[string]string{"sha256": digest}}}, attest.PredicateSLSAProvenanceV1, prov)
		if err != nil {
			t.Fatal(err)
		}
		entry.Envelopes = append(entry.Envelopes, b.Envelope())
	}
	for _, m := range mods {
		if m, ok := m.(func(*publish.Entry)); ok {
			m(entry)
		}
	}
	raw, err := entry.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range mods {
		if m, ok := m.(func([]byte) []byte); ok {
			raw = m(raw)
		}
	}

	skey, vkey, _ := witness.GenerateKey(origin)
	logSigner, _ := witness.NewLogSigner(skey)
	logVerifier, _ := witness.NewLogVerifier(vkey)
	l, err := tlog.Open(context.Background(), tlog.Options{Dir: filepath.Join(dir, "log"), Origin: origin, Signer: logSigner,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	for i := 0; i < 5; i++ { // other entries around it
		l.Append(ctx, []byte(fmt.Sprintf("other %d", i)))
	}
	index, err := l.Append(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	l.Append(ctx, []byte("after"))
	cp, err := l.Publish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	signed := cp.Note
	var cosigners []note.Verifier
	var vkeys []string
	for i := 0; i < 3; i++ {
		sk, vk, _ := witness.GenerateKey(fmt.Sprintf("cosigner-%d", i))
		cs, _ := witness.NewCosignatureSigner(sk)
		cv, _ := witness.NewCosignatureVerifier(vk)
		vkeys = append(vkeys, vk)
		cosigners = append(cosigners, cv)
		c, err := witness.NewCosigner(witness.CosignerOptions{Signer: cs, Origin: origin, LogVerifier: logVerifier, StateDir: filepath.Join(dir, fmt.Sprintf("cosigner-%d", i))})
		if err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			continue // one cosigner is offline: 2 of 3 is final
		}
		sig, err := c.Cosign(ctx, cp.Note, witness.ProofSourceFunc(l.ConsistencyProof))
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
	pb := &publish.ProofBundle{RawEntry: raw, Index: index, TreeSize: cp.Size, InclusionProof: incl, Checkpoint: string(signed)}
	// Round-trip through the file format, as verify reads it.
	data, err := pb.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if pb, err = publish.ParseProofBundle(data); err != nil {
		t.Fatal(err)
	}
	return fixture{artifact: artifact, pb: pb, cosignerKeys: vkeys,
		trust: policy.TrustOptions{BuildKeys: pubs, Origin: origin, LogVerifiers: []note.Verifier{logVerifier}, Cosigners: cosigners},
		opts:  publish.ProofOptions{PredicateType: attest.PredicateSLSAProvenanceV1},
	}
}

func TestVerifyProof(t *testing.T) {
	ctx := context.Background()
	good := published(t, 2, "the jar")
	ev, err := good.verify(ctx)
	if err != nil {
		t.Fatalf("VerifyProof: %v", err)
	}
	if len(ev.Signers) != 2 || len(ev.Cosigners) != 2 || ev.Subject.GetName() != "hello.jar" {
		t.Fatalf("evidence: %d signers, %d cosigners, subject %q", len(ev.Signers), len(ev.Cosigners), ev.Subject.GetName())
	}

	unwitnessed := good
	unwitnessed.trust.Cosigners = nil
	if _, err := unwitnessed.verify(ctx); !errors.Is(err, publish.ErrUnwitnessed) {
		t.Fatalf("no cosigners: got %v, want an error", err)
	}
	unwitnessed.opts.AllowUnwitnessed = true
	if _, err := unwitnessed.verify(ctx); err != nil {
		t.Fatalf("no cosigners, AllowUnwitnessed: %v", err)
	}

	minority := published(t, 1, "the jar")
	otherLog := published(t, 2, "the jar")
	// An entry MarshalBinary refuses to write (ErrInputMismatch), put in
	// the log as bytes.
	lyingInput := published(t, 2, "the jar", func(b []byte) []byte {
		return regexp.MustCompile(`"inputDigest":"[^"]*"`).ReplaceAll(b, []byte(`"inputDigest":"sha256:`+strings.Repeat("ab", 32)+`"`))
	})
	// Genuine attestations of one build, put by the log under another name.
	renamed := published(t, 2, "the jar", func(e *publish.Entry) {
		e.Coordinate = "org.victim:core:9.9"
		e.Spec = []byte(`{"coordinate":"org.victim:core:9.9","ecosystem":"maven"}`)
		e.InputDigest = e.SpecDigest()
	})
	relabelled := published(t, 2, "the jar", relabel(`"coordinate":"org.example:hello:1.0","spec"`, `"coordinate":"org.victim:core:9.9","spec"`))
	relabelledEco := published(t, 2, "the jar", relabel(`"ecosystem":"maven","coordinate":"org.example:hello:1.0","spec"`, `"ecosystem":"oci","coordinate":"org.example:hello:1.0","spec"`))
	unrelated := published(t, 2, "the jar", resign(t, "application/vnd.unrelated+json"))
	moreSubjects := published(t, 2, "the jar", func(e *publish.Entry) {
		e.Subjects = append(e.Subjects, publish.Subject{Name: "extra.jar", Digest: "sha256:" + strings.Repeat("cd", 32)})
	})
	for _, tc := range []struct {
		name   string
		fx     fixture
		mod    func(*fixture)
		step   string
		errStr string
	}{
		{"one vote of three", minority, nil, "signature", "signed by 1 of the 3 keys (node-a), 2 needed"},
		{"another artifact", good, func(f *fixture) {
			f.artifact = filepath.Join(t.TempDir(), "other.jar")
			os.WriteFile(f.artifact, []byte("another jar"), 0o644)
		}, "subject", "is attested by 0 of the 2 signers"},
		{"tampered entry", good, func(f *fixture) {
			raw := append([]byte(nil), f.pb.RawEntry...)
			raw[len(raw)-3] ^= 1
			f.pb = &publish.ProofBundle{RawEntry: raw, Index: f.pb.Index, TreeSize: f.pb.TreeSize, InclusionProof: f.pb.InclusionProof, Checkpoint: f.pb.Checkpoint}
		}, "inclusion", "is not in the tree"},
		{"wrong index", good, func(f *fixture) {
			f.pb = &publish.ProofBundle{RawEntry: f.pb.RawEntry, Index: f.pb.Index - 1, TreeSize: f.pb.TreeSize, InclusionProof: f.pb.InclusionProof, Checkpoint: f.pb.Checkpoint}
		}, "inclusion", "is not in the tree"},
		{"another log's key", good, func(f *fixture) { f.trust.LogVerifiers = otherLog.trust.LogVerifiers }, "checkpoint", ""},
		{"cosigners of another log", good, func(f *fixture) { f.trust.Cosigners = otherLog.trust.Cosigners }, "checkpoint", ""},
		{"all three cosigners required", good, func(f *fixture) { f.trust.CosignThreshold = 3 }, "checkpoint", "2 of 3"},
		{"wrong origin", good, func(f *fixture) { f.trust.Origin = "example.com/other" }, "checkpoint", ""},
		// Defect 5: cosigner-0's key, listed again under another name, counts once.
		{"one cosigner key under two names", good, func(f *fixture) {
			f.literal = true
			f.trust.Cosigners = []note.Verifier{f.trust.Cosigners[0], alias(t, f.cosignerKeys[0], "cosigner-x"), f.trust.Cosigners[2]}
			f.pb = withRelabelledCosignature(t, f.pb, "cosigner-0", f.trust.Cosigners[1])
			// Only cosigner-0's cosignature stays, plus its copy under the alias.
			f.pb = dropCosignature(t, f.pb, "cosigner-1")
		}, "checkpoint", "cosigned by 1 of 2 cosigners, need 2"},
		// Defect 2: a majority's genuine attestations for org.example:hello:1.0,
		// relabelled org.victim:core:9.9 in the entry.
		{"attestations relabelled with another coordinate", relabelled, nil, "entry", `the entry says coordinate "org.victim:core:9.9", its spec "org.example:hello:1.0"`},
		{"attestations relabelled with another ecosystem", relabelledEco, nil, "entry", `the entry says ecosystem "oci", its spec "maven"`},
		// Defect 4: the same statements, re-signed with another payload type.
		{"envelopes of another payload type", unrelated, nil, "entry", `payloadType "application/vnd.unrelated+json", want "application/vnd.in-toto+json"`},
		{"input digest not of the spec", lyingInput, nil, "entry", "is not the sha256 of its spec"},
		{"attestations under another spec", renamed, nil, "entry", "0 of the build nodes attested the entry's spec and subjects, 2 needed: node-a (another spec)"},
		{"subjects nobody attested", moreSubjects, nil, "entry", "(other subjects)"},
		{"wrong predicate type", good, func(f *fixture) { f.opts.PredicateType = "https://spdx.dev/Document" }, "statement", "predicate type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.fx
			if tc.mod != nil {
				tc.mod(&f)
			}
			_, err := f.verify(ctx)
			var ve *attest.VerificationError
			if !errors.As(err, &ve) || !errors.Is(err, attest.ErrNotVerified) {
				t.Fatalf("got %v, want a VerificationError", err)
			}
			if ve.Step != tc.step || !strings.Contains(err.Error(), tc.errStr) {
				t.Fatalf("got step %q error %q, want step %q containing %q", ve.Step, err, tc.step, tc.errStr)
			}
		})
	}
}

// relabel replaces old by new, once, in an entry's encoding.
func relabel(old, new string) func([]byte) []byte {
	return func(raw []byte) []byte {
		if !strings.Contains(string(raw), old) {
			panic("relabel: " + old + " not in the entry")
		}
		return []byte(strings.Replace(string(raw), old, new, 1))
	}
}

// resign replaces every envelope of an entry's encoding by one over the
// same payload with payload type typ, signed by the same node: a valid
// signature over another type.
func resign(t *testing.T, typ string) func([]byte) []byte {
	return func(raw []byte) []byte {
		signers, pubs := nodeKeys(t)
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		for _, e := range m["envelopes"].([]any) {
			env := e.(map[string]any)
			payload, _ := base64.StdEncoding.DecodeString(env["payload"].(string))
			sig, _ := base64.StdEncoding.DecodeString(env["signatures"].([]any)[0].(map[string]any)["sig"].(string))
			old := &dssepb.Envelope{PayloadType: attest.InTotoPayloadType, Payload: payload, Signatures: []*dssepb.Signature{{Sig: sig}}}
			for i, p := range pubs {
				if len(attest.VerifyEnvelope(old, []*attest.PublicKey{p})) == 0 {
					continue
				}
				ne, err := signers[i].SignEnvelope(typ, payload)
				if err != nil {
					t.Fatal(err)
				}
				env["payloadType"] = typ
				env["signatures"] = []any{map[string]any{"sig": base64.StdEncoding.EncodeToString(ne.Signatures[0].Sig)}}
			}
		}
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
}

// alias returns the cosignature verifier of v's key under another name.
func alias(t *testing.T, vkey, name string) note.Verifier {
	t.Helper()
	parts := strings.SplitN(vkey, "+", 3)
	raw, _ := base64.StdEncoding.DecodeString(parts[2])
	k, err := note.NewEd25519VerifierKey(name, ed25519.PublicKey(raw[1:]))
	if err != nil {
		t.Fatal(err)
	}
	av, err := witness.NewCosignatureVerifier(k)
	if err != nil {
		t.Fatal(err)
	}
	return av
}

// withRelabelledCosignature adds a copy of from's cosignature line under
// to's name and key hash: anyone can, as the name is not signed.
func withRelabelledCosignature(t *testing.T, pb *publish.ProofBundle, from string, to note.Verifier) *publish.ProofBundle {
	t.Helper()
	n, err := witness.OpenUnverified([]byte(pb.Checkpoint))
	if err != nil {
		t.Fatal(err)
	}
	var sigs []note.Signature
	for _, s := range n.UnverifiedSigs {
		if s.Name == from {
			raw, _ := base64.StdEncoding.DecodeString(s.Base64)
			binary.BigEndian.PutUint32(raw[:4], to.KeyHash())
			sigs = append(sigs, note.Signature{Name: to.Name(), Hash: to.KeyHash(), Base64: base64.StdEncoding.EncodeToString(raw)})
		}
	}
	signed, err := witness.AddSignatures([]byte(pb.Checkpoint), sigs...)
	if err != nil {
		t.Fatal(err)
	}
	c := *pb
	c.Checkpoint = string(signed)
	return &c
}

// dropCosignature removes name's signature lines from the checkpoint.
func dropCosignature(t *testing.T, pb *publish.ProofBundle, name string) *publish.ProofBundle {
	t.Helper()
	var kept []string
	for _, l := range strings.SplitAfter(pb.Checkpoint, "\n") {
		if !strings.HasPrefix(l, "— "+name+" ") {
			kept = append(kept, l)
		}
	}
	c := *pb
	c.Checkpoint = strings.Join(kept, "")
	return &c
}

// VerifyEntry is what a Raft FSM runs before applying an entry: no
// artifact, no log.
func TestVerifyEntry(t *testing.T) {
	ctx := context.Background()
	good := published(t, 2, "the jar")
	trust, err := policy.NewTrust(good.trust)
	if err != nil {
		t.Fatal(err)
	}
	entry, err := good.pb.Entry()
	if err != nil {
		t.Fatal(err)
	}
	ev, err := publish.VerifyEntry(ctx, entry, trust)
	if err != nil {
		t.Fatalf("VerifyEntry: %v", err)
	}
	if len(ev.Signers) != 2 || ev.Signers[0].Name != "node-a" || ev.Signers[1].Name != "node-b" || len(ev.Signed) != 2 {
		t.Fatalf("got signers %v, want node-a and node-b", ev.Signers)
	}

	signers, _ := nodeKeys(t)
	clone := func(f func(e *publish.Entry)) *publish.Entry {
		c := *entry
		c.Envelopes = slices.Clone(entry.Envelopes)
		f(&c)
		return &c
	}
	minority, _ := published(t, 1, "the jar").pb.Entry()
	for _, tc := range []struct {
		name  string
		entry *publish.Entry
		step  string
		want  string
	}{
		// Defect 2, past ParseEntry: an Entry made in memory.
		{"relabelled coordinate", clone(func(e *publish.Entry) { e.Coordinate = "org.victim:core:9.9" }), "entry",
			`the entry says coordinate "org.victim:core:9.9", its spec "org.example:hello:1.0"`},
		{"relabelled ecosystem", clone(func(e *publish.Entry) { e.Ecosystem = "oci" }), "entry", `the entry says ecosystem "oci", its spec "maven"`},
		// Defect 4, past ParseEntry.
		{"another payload type", clone(func(e *publish.Entry) {
			for i, env := range e.Envelopes {
				for _, s := range signers {
					re, err := s.SignEnvelope("application/vnd.unrelated+json", env.GetPayload())
					if err != nil {
						t.Fatal(err)
					}
					if len(attest.VerifyEnvelope(re, good.trust.BuildKeys)) > 0 && slices.ContainsFunc(attest.VerifyEnvelope(env, good.trust.BuildKeys), func(k *attest.PublicKey) bool {
						return len(attest.VerifyEnvelope(re, []*attest.PublicKey{k})) > 0
					}) {
						e.Envelopes[i] = re
					}
				}
			}
		}), "signature", `signed by 0 of the 3 keys (none), 2 needed; 2 envelopes are not counted: their payload type is not "application/vnd.in-toto+json"`},
		{"minority", minority, "signature", "signed by 1 of the 3 keys (node-a), 2 needed"},
		{"input digest not the spec's", clone(func(e *publish.Entry) { e.InputDigest = "sha256:" + strings.Repeat("0", 64) }), "entry", "is not the sha256 of its spec"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := publish.VerifyEntry(ctx, tc.entry, trust)
			var ve *attest.VerificationError
			if !errors.As(err, &ve) || ve.Step != tc.step || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want a %s VerificationError containing %q", err, tc.step, tc.want)
			}
		})
	}
}
