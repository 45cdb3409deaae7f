package publish_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
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
	"github.com/pyrsia/pyrsia-build/publish/tlog"
	"github.com/pyrsia/pyrsia-build/publish/witness"
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
	opts     publish.ProofOptions
}

// published runs the publication flow for real: each of the voting nodes
// attests the artifact, the entry is appended to a durable log, the
// checkpoint is cosigned by three cosigners, and a proof bundle is cut.
func published(t *testing.T, voters int, content string, mods ...func(*publish.Entry)) fixture {
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
		m(entry)
	}
	raw, err := entry.MarshalBinary()
	if err != nil {
		t.Fatal(err)
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
	for i := 0; i < 3; i++ {
		sk, vk, _ := witness.GenerateKey(fmt.Sprintf("cosigner-%d", i))
		cs, _ := witness.NewCosignatureSigner(sk)
		cv, _ := witness.NewCosignatureVerifier(vk)
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
	return fixture{artifact: artifact, pb: pb, opts: publish.ProofOptions{
		Keys: pubs, Origin: origin, LogVerifier: logVerifier, Cosigners: cosigners,
		PredicateType: attest.PredicateSLSAProvenanceV1,
	}}
}

func TestVerifyProof(t *testing.T) {
	ctx := context.Background()
	good := published(t, 2, "the jar")
	ev, err := publish.VerifyProof(ctx, attest.FileArtifact(good.artifact), good.pb, good.opts)
	if err != nil {
		t.Fatalf("VerifyProof: %v", err)
	}
	if len(ev.Signers) != 2 || len(ev.Cosigners) != 2 || ev.Subject.GetName() != "hello.jar" {
		t.Fatalf("evidence: %d signers, %d cosigners, subject %q", len(ev.Signers), len(ev.Cosigners), ev.Subject.GetName())
	}

	unwitnessed := good.opts
	unwitnessed.Cosigners = nil
	if _, err := publish.VerifyProof(ctx, attest.FileArtifact(good.artifact), good.pb, unwitnessed); err == nil || !strings.Contains(err.Error(), "not final") {
		t.Fatalf("no cosigners: got %v, want an error", err)
	}
	unwitnessed.AllowUnwitnessed = true
	if _, err := publish.VerifyProof(ctx, attest.FileArtifact(good.artifact), good.pb, unwitnessed); err != nil {
		t.Fatalf("no cosigners, AllowUnwitnessed: %v", err)
	}

	minority := published(t, 1, "the jar")
	otherLog := published(t, 2, "the jar")
	lyingInput := published(t, 2, "the jar", func(e *publish.Entry) { e.InputDigest = "sha256:" + strings.Repeat("ab", 32) })
	// Genuine attestations of one build, put by the log under another name.
	renamed := published(t, 2, "the jar", func(e *publish.Entry) {
		e.Coordinate = "org.victim:core:9.9"
		e.Spec = []byte(`{"coordinate":"org.victim:core:9.9","ecosystem":"maven"}`)
		e.InputDigest = e.SpecDigest()
	})
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
		{"another log's key", good, func(f *fixture) { f.opts.LogVerifier = otherLog.opts.LogVerifier }, "checkpoint", ""},
		{"cosigners of another log", good, func(f *fixture) { f.opts.Cosigners = otherLog.opts.Cosigners }, "checkpoint", ""},
		{"all three cosigners required", good, func(f *fixture) { f.opts.CosignThreshold = 3 }, "checkpoint", "2 of 3"},
		{"wrong origin", good, func(f *fixture) { f.opts.Origin = "example.com/other" }, "checkpoint", ""},
		{"input digest not of the spec", lyingInput, nil, "entry", "is not the sha256 of its spec"},
		{"attestations under another coordinate", renamed, nil, "entry", "0 of the signers attested the entry's spec and subjects, 2 needed: node-a (another spec)"},
		{"subjects nobody attested", moreSubjects, nil, "entry", "(other subjects)"},
		{"wrong predicate type", good, func(f *fixture) { f.opts.PredicateType = "https://spdx.dev/Document" }, "statement", "predicate type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := tc.fx
			if tc.mod != nil {
				tc.mod(&f)
			}
			_, err := publish.VerifyProof(ctx, attest.FileArtifact(f.artifact), f.pb, f.opts)
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
