package quorum

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish"
)

// Cosign keys cost about 0.2 s each (scrypt): make them once per test
// binary.
var (
	signersMu sync.Mutex
	signers   []*attest.Signer
)

func testSigner(t testing.TB, i int) *attest.Signer {
	t.Helper()
	signersMu.Lock()
	defer signersMu.Unlock()
	for len(signers) <= i {
		kp, err := attest.GenerateKeyPair([]byte("pw"))
		if err != nil {
			t.Fatal(err)
		}
		s, err := attest.LoadSigner(kp.Private, []byte("pw"))
		if err != nil {
			t.Fatal(err)
		}
		signers = append(signers, s)
	}
	return signers[i]
}

func publicKey(t testing.TB, s *attest.Signer, name string) *attest.PublicKey {
	t.Helper()
	k, err := attest.NewPublicKey(name, s.Public())
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// testNode is one build node of a test network.
type testNode struct {
	name   string
	key    crypto.PrivKey
	id     peer.ID
	signer *attest.Signer
}

func nodeName(i int) string { return fmt.Sprintf("node-%c", 'a'+i) }

func testNodes(t testing.TB, n int) []*testNode {
	t.Helper()
	nodes := make([]*testNode, n)
	for i := range nodes {
		key, _, err := crypto.GenerateEd25519Key(nil)
		if err != nil {
			t.Fatal(err)
		}
		id, err := peer.IDFromPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = &testNode{name: nodeName(i), key: key, id: id, signer: testSigner(t, i)}
	}
	return nodes
}

const testPolicyDigest = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

func testNetwork(t testing.TB, nodes []*testNode, o NetworkOptions) *Network {
	t.Helper()
	if o.Digest == "" {
		o.Digest = testPolicyDigest
	}
	for _, nd := range nodes {
		o.Members = append(o.Members, Member{Name: nd.name, PeerID: nd.id, Key: publicKey(t, nd.signer, nd.name)})
	}
	n, err := NewNetwork(o)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func startHost(t testing.TB, key crypto.PrivKey, g *Gater) host.Host {
	t.Helper()
	h, err := NewHost(HostOptions{Key: key, Gater: g, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

func connectAll(t testing.TB, hosts []host.Host) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for i, a := range hosts {
		for _, b := range hosts[i+1:] {
			if err := a.Connect(ctx, AddrInfo(b)); err != nil {
				t.Fatalf("connecting %s to %s: %v", a.ID(), b.ID(), err)
			}
		}
	}
}

// waitFor polls cond every few milliseconds until it holds or the timeout
// passes.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// testSpec returns a build spec and its input digest.
func testSpec(t testing.TB, coordinate string) ([]byte, string) {
	t.Helper()
	spec, err := publish.CanonicalJSON([]byte(fmt.Sprintf(`{"coordinate":%q,"ecosystem":"oci","source":{"archive":"src.tar","sha256":"00"}}`, coordinate)))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(spec)
	return spec, "sha256:" + hex.EncodeToString(sum[:])
}

// testBundle is a node's signed attestation naming subjects for spec.
func testBundle(t testing.TB, s *attest.Signer, spec []byte, subjects map[string]string) *attest.Bundle {
	t.Helper()
	var specMap map[string]any
	if err := json.Unmarshal(spec, &specMap); err != nil {
		t.Fatal(err)
	}
	pred, err := attest.NewProvenance(attest.ProvenanceOptions{
		BuildType:          "https://pyrsia.io/build/v1",
		ExternalParameters: map[string]any{"spec": specMap},
		BuilderID:          "https://pyrsia.io/node/test",
	})
	if err != nil {
		t.Fatal(err)
	}
	var rds []*intoto.ResourceDescriptor
	for name, d := range subjects {
		rds = append(rds, &intoto.ResourceDescriptor{Name: name, Digest: map[string]string{"sha256": d}})
	}
	b, err := attest.Attest(s, rds, "https://slsa.dev/provenance/v1", pred)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func hexDigest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// testRequestID is the request id of the tests' votes for input.
func testRequestID(input string) string { return "sha256:" + hexDigest("request of "+input) }

func testVoteFor(policy, input, node string) VoteFor {
	return VoteFor{Policy: policy, Request: testRequestID(input), InputDigest: input, Node: node}
}

func testVote(t testing.TB, policy string, nd *testNode, spec []byte, input string, artifact string) *Vote {
	t.Helper()
	b := testBundle(t, nd.signer, spec, map[string]string{"demo": hexDigest(artifact)})
	v, err := NewVote(testVoteFor(policy, input, nd.name), b, "sha256:"+hexDigest("manifest of "+artifact))
	if err != nil {
		t.Fatal(err)
	}
	return v
}
