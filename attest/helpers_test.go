package attest_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"

	"github.com/pyrsia/pyrsia-build/attest"
)

// testPassword encrypts the keys made by the tests. cosign's scrypt makes
// every GenerateKeyPair and LoadSigner cost about 0.2 s (over 1 s under
// -race), whatever the password, so the tests make each key once.
var testPassword = []byte("test")

// testKey is a key pair made at run time, never stored in testdata.
type testKey struct {
	Pair   *attest.KeyPair
	Signer *attest.Signer
	Pub    *attest.PublicKey
}

// lazyKey makes one testKey the first time a test asks for it.
type lazyKey struct {
	name string
	once sync.Once
	key  *testKey
	err  error
}

func (l *lazyKey) get(tb testing.TB) *testKey {
	tb.Helper()
	l.once.Do(func() { l.key, l.err = newTestKey(l.name) })
	if l.err != nil {
		tb.Fatalf("making test key %s: %v", l.name, l.err)
	}
	return l.key
}

var (
	lazyKeyA = &lazyKey{name: "key-a"}
	lazyKeyB = &lazyKey{name: "key-b"}
)

// keyA and keyB return the two keys the tests sign with, made once per test
// binary.
func keyA(tb testing.TB) *testKey { tb.Helper(); return lazyKeyA.get(tb) }
func keyB(tb testing.TB) *testKey { tb.Helper(); return lazyKeyB.get(tb) }

func newTestKey(name string) (*testKey, error) {
	kp, err := attest.GenerateKeyPair(testPassword)
	if err != nil {
		return nil, err
	}
	s, err := attest.LoadSigner(kp.Private, testPassword)
	if err != nil {
		return nil, err
	}
	pub, err := attest.ParsePublicKey(name, kp.Public)
	if err != nil {
		return nil, err
	}
	return &testKey{Pair: kp, Signer: s, Pub: pub}, nil
}

// testProvenance is a small, fixed SLSA provenance predicate.
func testProvenance(tb testing.TB) *slsa.Provenance {
	tb.Helper()
	p, err := attest.NewProvenance(attest.ProvenanceOptions{
		BuildType:          "https://pyrsia.io/build/test/v1",
		ExternalParameters: map[string]any{"package": "hello", "version": "1.0.0"},
		BuilderID:          "https://pyrsia.io/node/test",
		BuilderVersion:     map[string]string{"pyrsia-build": "test"},
		InvocationID:       "test-invocation",
		StartedOn:          time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		FinishedOn:         time.Date(2025, 1, 2, 3, 4, 6, 0, time.UTC),
	})
	if err != nil {
		tb.Fatalf("NewProvenance: %v", err)
	}
	return p
}

// subjectOf names content by its SHA-256, as FileSubject does for a file.
func subjectOf(name string, content []byte) *intoto.ResourceDescriptor {
	sum := sha256.Sum256(content)
	return &intoto.ResourceDescriptor{Name: name, Digest: map[string]string{"sha256": hex.EncodeToString(sum[:])}}
}

// attestContent returns a bundle, signed by k, with one SLSA provenance
// subject naming content.
func attestContent(tb testing.TB, k *testKey, name string, content []byte) *attest.Bundle {
	tb.Helper()
	b, err := attest.Attest(k.Signer, []*intoto.ResourceDescriptor{subjectOf(name, content)}, attest.PredicateSLSAProvenanceV1, testProvenance(tb))
	if err != nil {
		tb.Fatalf("Attest: %v", err)
	}
	return b
}

// reparse sends b through its JSON form, as a bundle file does.
func reparse(tb testing.TB, b *attest.Bundle) *attest.Bundle {
	tb.Helper()
	data, err := b.MarshalJSON()
	if err != nil {
		tb.Fatalf("MarshalJSON: %v", err)
	}
	out, err := attest.ParseBundle(data)
	if err != nil {
		tb.Fatalf("ParseBundle(MarshalJSON()): %v\n%s", err, data)
	}
	return out
}

// keyHint is the key hint cosign writes for the key with hex id: the
// standard base64 of the same SHA-256.
func keyHint(tb testing.TB, id string) string {
	tb.Helper()
	raw, err := hex.DecodeString(id)
	if err != nil {
		tb.Fatalf("key id %q: %v", id, err)
	}
	return base64.StdEncoding.EncodeToString(raw)
}

// memArtifact is an artifact held in memory.
func memArtifact(name string, content []byte) attest.Artifact {
	return attest.Artifact{Name: name, Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(content)), nil
	}}
}

// readTestdata returns testdata/name.
func readTestdata(tb testing.TB, name string) []byte {
	tb.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// testdataKey parses testdata/name as a public key named by the file.
func testdataKey(tb testing.TB, name string) *attest.PublicKey {
	tb.Helper()
	k, err := attest.ParsePublicKey(name, readTestdata(tb, name))
	if err != nil {
		tb.Fatalf("ParsePublicKey(%s): %v", name, err)
	}
	return k
}

// mutateJSON decodes data as a JSON object, lets edit change it, and
// encodes it again.
func mutateJSON(tb testing.TB, data []byte, edit func(m map[string]any)) []byte {
	tb.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		tb.Fatalf("decoding test JSON: %v", err)
	}
	edit(m)
	out, err := json.Marshal(m)
	if err != nil {
		tb.Fatalf("encoding test JSON: %v", err)
	}
	return out
}

// obj returns m[key] as a JSON object, for editing nested fields.
func obj(tb testing.TB, m map[string]any, key string) map[string]any {
	tb.Helper()
	o, ok := m[key].(map[string]any)
	if !ok {
		tb.Fatalf("test JSON: %q is %T, not an object", key, m[key])
	}
	return o
}

// wantErrContains fails unless err is non-nil and its text contains want.
func wantErrContains(tb testing.TB, err error, want string) {
	tb.Helper()
	switch {
	case err == nil:
		tb.Fatalf("got no error, want one containing %q", want)
	case !strings.Contains(err.Error(), want):
		tb.Fatalf("got error %q, want one containing %q", err, want)
	}
}
