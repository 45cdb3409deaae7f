package policy_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

func testPolicy(t *testing.T) *policy.Policy {
	t.Helper()
	p, err := policy.Parse(readTestdata(t, "valid-three-nodes.json"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPolicyTrust(t *testing.T) {
	p := testPolicy(t)
	tr, err := p.Trust()
	if err != nil {
		t.Fatal(err)
	}
	if tr.Origin != p.Name || tr.PolicyDigest != p.Digest() {
		t.Errorf("got origin %q digest %q, want %q %q", tr.Origin, tr.PolicyDigest, p.Name, p.Digest())
	}
	if len(tr.BuildKeys) != 3 || tr.BuildThreshold != 2 || len(tr.Cosigners) != 3 || tr.CosignThreshold != 2 || len(tr.LogVerifiers) != 3 {
		t.Errorf("got %d build keys (threshold %d), %d cosigners (threshold %d), %d log keys; want 3 (2), 3 (2), 3",
			len(tr.BuildKeys), tr.BuildThreshold, len(tr.Cosigners), tr.CosignThreshold, len(tr.LogVerifiers))
	}
	for i, k := range tr.BuildKeys {
		if k.Name != p.Nodes[i].Name {
			t.Errorf("build key %d named %q, want %q", i, k.Name, p.Nodes[i].Name)
		}
	}
}

// flagKeys returns what the CLI's flags give for the policy's nodes.
func flagKeys(t *testing.T, p *policy.Policy) (build []*attest.PublicKey, cosigners []note.Verifier, vkeys []string) {
	t.Helper()
	for _, n := range p.Nodes {
		k, err := attest.ParsePublicKey(n.Name+".pub", []byte(n.CosignKey))
		if err != nil {
			t.Fatal(err)
		}
		v, err := witness.NewCosignatureVerifier(n.NoteKey)
		if err != nil {
			t.Fatal(err)
		}
		build, cosigners, vkeys = append(build, k), append(cosigners, v), append(vkeys, n.NoteKey)
	}
	return build, cosigners, vkeys
}

func TestNewTrust(t *testing.T) {
	p := testPolicy(t)
	build, cosigners, vkeys := flagKeys(t, p)
	logV, err := witness.NewLogVerifier(vkeys[0])
	if err != nil {
		t.Fatal(err)
	}
	// The same key under another name; a base64 key with '+' in it must not
	// confuse anything.
	alias, err := witness.NewCosignatureVerifier(sameKeyOtherName(t, vkeys[1], "node-b-again"))
	if err != nil {
		t.Fatal(err)
	}
	sameBuildKey, _ := attest.ParsePublicKey("node-a-again.pub", []byte(p.Nodes[0].CosignKey))

	tr, err := policy.NewTrust(policy.TrustOptions{LogVerifiers: []note.Verifier{logV, logV}, Cosigners: cosigners, BuildKeys: build})
	if err != nil {
		t.Fatal(err)
	}
	if tr.Origin != "node-a" || len(tr.LogVerifiers) != 1 || tr.BuildThreshold != 2 || tr.CosignThreshold != 2 || tr.PolicyDigest != "" {
		t.Errorf("got origin %q, %d log keys, thresholds %d and %d", tr.Origin, len(tr.LogVerifiers), tr.BuildThreshold, tr.CosignThreshold)
	}
	if tr, err := policy.NewTrust(policy.TrustOptions{LogVerifiers: []note.Verifier{logV}, BuildKeys: build[:1]}); err != nil || tr.CosignThreshold != 0 {
		t.Errorf("no cosigners: got %v, %v, want a Trust with no cosign threshold", tr, err)
	}

	tests := []struct {
		name string
		o    policy.TrustOptions
		want string
	}{
		{"no log key", policy.TrustOptions{BuildKeys: build}, "no log verifier key"},
		{"no build key", policy.TrustOptions{LogVerifiers: []note.Verifier{logV}}, "no build node keys"},
		{"one cosigner key under two names", policy.TrustOptions{LogVerifiers: []note.Verifier{logV}, BuildKeys: build, Cosigners: append(cosigners, alias)},
			`the same cosigner key is given twice ("node-b" and "node-b-again")`},
		{"one cosigner key twice", policy.TrustOptions{LogVerifiers: []note.Verifier{logV}, BuildKeys: build, Cosigners: []note.Verifier{cosigners[0], cosigners[0]}},
			`the same cosigner key is given twice ("node-a" and "node-a")`},
		{"one build key twice", policy.TrustOptions{LogVerifiers: []note.Verifier{logV}, BuildKeys: append(build, sameBuildKey)},
			`build node keys "node-a.pub" and "node-a-again.pub" are the same public key`},
		{"negative cosign threshold", policy.TrustOptions{LogVerifiers: []note.Verifier{logV}, BuildKeys: build, Cosigners: cosigners, CosignThreshold: -1}, "cosign threshold -1 is negative"},
		{"cosign threshold over the keys", policy.TrustOptions{LogVerifiers: []note.Verifier{logV}, BuildKeys: build, Cosigners: cosigners, CosignThreshold: 4}, "cosign threshold 4 is more than the 3 cosigner keys"},
		{"cosign threshold without cosigners", policy.TrustOptions{LogVerifiers: []note.Verifier{logV}, BuildKeys: build, CosignThreshold: 3}, "cosign threshold 3, but no cosigner keys"},
		{"build threshold over the keys", policy.TrustOptions{LogVerifiers: []note.Verifier{logV}, BuildKeys: build, BuildThreshold: 4}, "build threshold 4 is more than the 3 build node keys"},
		{"negative build threshold", policy.TrustOptions{LogVerifiers: []note.Verifier{logV}, BuildKeys: build, BuildThreshold: -1}, "build threshold -1 is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr, err := policy.NewTrust(tt.o)
			if tr != nil || err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "policy: trust: ") {
				t.Errorf("got %v, %v, want an error containing %q", tr, err, tt.want)
			}
		})
	}
}

// A key whose base64 holds '+' is told apart by its whole key, not by what
// follows its last '+' (what the verify command's guard did).
func TestPublicKeyWithPlus(t *testing.T) {
	for seed := byte(0); seed < 255; seed++ {
		_, vkey, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{seed}, 32)), "node")
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(vkey, "+") < 3 {
			continue
		}
		v1, _ := witness.NewCosignatureVerifier(vkey)
		v2, _ := witness.NewCosignatureVerifier(sameKeyOtherName(t, vkey, "other"))
		if witness.PublicKey(v1) != witness.PublicKey(v2) {
			t.Fatalf("%s: one key, two identities", vkey)
		}
		if got := witness.PublicKey(v1); !strings.HasSuffix(vkey, strings.TrimPrefix(got, "key:")) || strings.Count(got, "+") < 1 {
			t.Fatalf("%s: identity %s is not the whole key", vkey, got)
		}
		return
	}
	t.Skip("no key with '+' in its base64 among the seeds")
}

// In a network any build node signs checkpoints and every one cosigns them:
// a cosigner from the policy's Trust accepts a checkpoint signed by another
// node, and VerifyCheckpoint finds it final once a majority cosigned.
func TestNetworkCheckpoint(t *testing.T) {
	// Keys for three nodes, with their private halves.
	var nodes []policy.Node
	var skeys []string
	base := testPolicy(t)
	for i, name := range []string{"node-a", "node-b", "node-c"} {
		skey, vkey, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{byte(40 + i)}, 32)), name)
		if err != nil {
			t.Fatal(err)
		}
		n := base.Nodes[i]
		n.NoteKey = vkey
		nodes, skeys = append(nodes, n), append(skeys, skey)
	}
	p := &policy.Policy{Version: 1, Name: "example.org/net", Nodes: nodes}
	tr, err := p.Trust()
	if err != nil {
		t.Fatal(err)
	}
	// node-b signs the checkpoint as the log.
	logSigner, err := witness.NewLogSigner(skeys[1])
	if err != nil {
		t.Fatal(err)
	}
	cp, err := witness.SignCheckpoint(logSigner, log.Checkpoint{Origin: p.Name, Size: 0, Hash: rfc6962.DefaultHasher.EmptyRoot()})
	if err != nil {
		t.Fatal(err)
	}
	var sigs []note.Signature
	for i := range 2 { // node-a and node-b cosign
		cs, err := witness.NewCosignatureSigner(skeys[i])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := witness.NewCosigner(tr.CosignerOptions(cs, t.TempDir(), nil)); err == nil {
			t.Fatalf("%s: NewCosigner accepted %d log keys and no replica", nodes[i].Name, len(tr.LogVerifiers))
		}
		// Every node's replica holds the empty tree.
		replica := witness.ReplicaFunc(func(_ context.Context, size uint64) ([]byte, error) {
			if size != 0 {
				return nil, fmt.Errorf("the replica holds 0 entries, not %d", size)
			}
			return rfc6962.DefaultHasher.EmptyRoot(), nil
		})
		c, err := witness.NewCosigner(tr.CosignerOptions(cs, t.TempDir(), replica))
		if err != nil {
			t.Fatal(err)
		}
		sig, err := c.Cosign(context.Background(), cp, nil)
		if err != nil {
			t.Fatalf("%s: %v", nodes[i].Name, err)
		}
		sigs = append(sigs, sig)
	}
	if _, _, err := tr.VerifyCheckpoint(cp); !errors.Is(err, witness.ErrNotFinal) {
		t.Fatalf("without cosignatures: got %v, want not final", err)
	}
	final, err := witness.AddSignatures(cp, sigs...)
	if err != nil {
		t.Fatal(err)
	}
	got, names, err := tr.VerifyCheckpoint(final)
	if err != nil || got.Size != 0 || len(names) != 2 {
		t.Fatalf("got %v, %q, %v, want final, cosigned by node-a and node-b", got, names, err)
	}
}
