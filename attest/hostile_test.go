package attest_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/pyrsia/pyrsia-build/attest"
	"google.golang.org/protobuf/types/known/structpb"
)

// A bundle of 1,000,000 one-byte signatures over a 1 MB payload took 509 s
// to verify: every signature re-hashed the payload. The number of
// signatures is bounded, and the parser says so.
func TestBundleManySignatures(t *testing.T) {
	payload := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("x"), 1<<20))
	var b strings.Builder
	b.WriteString(`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"x"}},"dsseEnvelope":{"payloadType":"application/vnd.in-toto+json","payload":"` + payload + `","signatures":[`)
	const n = 1_000_000
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"sig":"AA=="}`)
	}
	b.WriteString(`]}}`)
	_, err := attest.ParseBundle([]byte(b.String()))
	wantErrContains(t, err, fmt.Sprintf("envelope has %d signatures, more than %d", n, attest.MaxSignatures))
}

// Envelopes built in memory, past ParseBundle, are bounded too.
func TestVerifyEnvelopeManySignatures(t *testing.T) {
	a := keyA(t)
	b := attestContent(t, a, "a.txt", hello)
	env := b.Envelope()
	if got := attest.VerifyEnvelope(env, []*attest.PublicKey{a.Pub}); len(got) != 1 {
		t.Fatalf("good envelope: got %d signers, want 1", len(got))
	}
	for range attest.MaxSignatures {
		env.Signatures = append(env.Signatures, env.Signatures[0])
	}
	if got := attest.VerifyEnvelope(env, []*attest.PublicKey{a.Pub}); len(got) != 0 {
		t.Errorf("envelope with %d signatures: got %d signers, want none", len(env.Signatures), len(got))
	}
}

// Deep but valid JSON is not "not JSON".
func TestBundleDeepJSON(t *testing.T) {
	deep := `{"mediaType":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`
	_, err := attest.ParseBundle([]byte(deep))
	wantErrContains(t, err, "JSON nested more than 100 levels deep")
	if strings.Contains(err.Error(), "not JSON") {
		t.Errorf("got %q, want no claim that valid JSON is not JSON", err)
	}
}

// A signer never writes a bundle its verifier refuses: attest with a 50 MB
// spec field signed a 66.7 MB bundle that verify refused.
func TestAttestRefusesOversize(t *testing.T) {
	a := keyA(t)
	pred, err := structpb.NewStruct(map[string]any{"spec": strings.Repeat("x", 50<<20)})
	if err != nil {
		t.Fatal(err)
	}
	_, err = attest.Attest(a.Signer, []*intoto.ResourceDescriptor{subjectOf("a.txt", hello)}, attest.PredicateSLSAProvenanceV1, pred)
	wantErrContains(t, err, fmt.Sprintf("over the %d byte limit that verifiers read", attest.MaxStatementSize))
}

func TestReadFileLimited(t *testing.T) {
	dir := t.TempDir()
	small := filepath.Join(dir, "small")
	os.WriteFile(small, []byte("12345"), 0o644)
	if b, err := attest.ReadFileLimited(small, 5); err != nil || string(b) != "12345" {
		t.Fatalf("at the limit: got %q, %v", b, err)
	}
	_, err := attest.ReadFileLimited(small, 4)
	if !errors.Is(err, attest.ErrTooLarge) {
		t.Fatalf("over the limit: got %v, want ErrTooLarge", err)
	}
	// The real size and the real limit, not the limit plus one.
	wantErrContains(t, err, small+": file is over the size limit: 5 bytes, the limit is 4")

	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Skipf("mkfifo: %v", err)
	}
	// Opening a FIFO with no writer blocks forever: this returns at once.
	_, err = attest.ReadFileLimited(fifo, 100)
	wantErrContains(t, err, fifo+" is not a regular file (a named pipe)")
	_, err = attest.ReadFileLimited("/dev/zero", 100)
	wantErrContains(t, err, "/dev/zero is not a regular file (a device)")
	_, err = attest.ReadFileLimited(dir, 100)
	wantErrContains(t, err, "is not a regular file (a directory)")
	_, err = attest.ReadFileLimited(filepath.Join(dir, "missing"), 100)
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing: got %v, want ErrNotExist", err)
	}
}

func TestReadPublicKeyFile(t *testing.T) {
	_, err := attest.ReadPublicKeyFile("/dev/zero")
	wantErrContains(t, err, "/dev/zero is not a regular file")
	big := filepath.Join(t.TempDir(), "big.pub")
	os.WriteFile(big, bytes.Repeat([]byte("x"), attest.MaxPublicKeySize+1), 0o644)
	_, err = attest.ReadPublicKeyFile(big)
	wantErrContains(t, err, fmt.Sprintf("%d bytes, the limit is %d", attest.MaxPublicKeySize+1, attest.MaxPublicKeySize))
}
