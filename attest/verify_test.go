package attest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/proto"

	"github.com/pyrsia/pyrsia-build/attest"
)

var hello = []byte("hello\n")

func newVerifier(tb testing.TB, o attest.VerifierOptions) *attest.Verifier {
	tb.Helper()
	v, err := attest.NewVerifier(o)
	if err != nil {
		tb.Fatalf("NewVerifier: %v", err)
	}
	return v
}

func TestVerifyRoundTrip(t *testing.T) {
	k := keyA(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "hello-1.0.tar.gz")
	if err := os.WriteFile(path, hello, 0o644); err != nil {
		t.Fatal(err)
	}
	subject, err := attest.FileSubject(context.Background(), path)
	if err != nil {
		t.Fatalf("FileSubject: %v", err)
	}
	if got, want := subject.GetName(), "hello-1.0.tar.gz"; got != want {
		t.Errorf("FileSubject name: got %q, want %q", got, want)
	}
	if got := subject.GetDigest()["sha256"]; got != digestHello {
		t.Errorf("FileSubject sha256: got %s, want %s", got, digestHello)
	}
	b, err := attest.Attest(k.Signer, []*intoto.ResourceDescriptor{subject}, attest.PredicateSLSAProvenanceV1, testProvenance(t))
	if err != nil {
		t.Fatalf("Attest: %v", err)
	}
	b = reparse(t, b)
	v := newVerifier(t, attest.VerifierOptions{Keys: []*attest.PublicKey{k.Pub}, PredicateType: attest.PredicateSLSAProvenanceV1})

	artifacts := []struct {
		name string
		a    attest.Artifact
	}{
		{"file", attest.FileArtifact(path)},
		{"in memory", memArtifact("mem", hello)},
	}
	for _, tt := range artifacts {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := v.Verify(context.Background(), tt.a, b)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if len(ev.Signers) != 1 || ev.Signers[0] != k.Pub {
				t.Errorf("Signers: got %v, want [%s]", ev.Signers, k.Pub.Name)
			}
			if got, want := ev.DigestHex(), "sha256:"+digestHello; got != want {
				t.Errorf("DigestHex: got %s, want %s", got, want)
			}
			if got, want := ev.Size, int64(len(hello)); got != want {
				t.Errorf("Size: got %d, want %d", got, want)
			}
			if !proto.Equal(ev.Subject, subject) {
				t.Errorf("Subject: got %v, want %v", ev.Subject, subject)
			}
			if got, want := ev.Statement.GetPredicateType(), attest.PredicateSLSAProvenanceV1; got != want {
				t.Errorf("Statement predicate type: got %q, want %q", got, want)
			}
			if ev.Bundle != b || ev.Artifact.Name != tt.a.Name {
				t.Errorf("Evidence does not hold the inputs")
			}
		})
	}
}

// verifyCase is one rejection by a default step.
type verifyCase struct {
	name     string
	bundle   *attest.Bundle
	artifact attest.Artifact
	opts     attest.VerifierOptions
	wantStep string
	wantErr  string
}

func runVerifyRejects(t *testing.T, tests []verifyCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, tt.opts)
			ev, err := v.Verify(context.Background(), tt.artifact, tt.bundle)
			if err == nil {
				t.Fatalf("got no error, want step %q to reject", tt.wantStep)
			}
			if ev != nil {
				t.Errorf("got evidence with the error, want nil")
			}
			if !errors.Is(err, attest.ErrNotVerified) {
				t.Errorf("errors.Is(%v, ErrNotVerified): got false, want true", err)
			}
			var ve *attest.VerificationError
			if !errors.As(err, &ve) {
				t.Fatalf("got %T (%v), want *VerificationError", err, err)
			}
			if ve.Step != tt.wantStep {
				t.Errorf("step: got %q, want %q (error %v)", ve.Step, tt.wantStep, err)
			}
			wantErrContains(t, err, tt.wantStep+": "+tt.wantErr)
		})
	}
}

func TestVerifyRejects(t *testing.T) {
	a, b := keyA(t), keyB(t)
	onlyA := attest.VerifierOptions{Keys: []*attest.PublicKey{a.Pub}}
	good := func() *attest.Bundle { return reparse(t, attestContent(t, a, "a.txt", hello)) }

	tampered := good()
	tampered.Envelope().Payload = bytes.Replace(tampered.Envelope().Payload, []byte(`"a.txt"`), []byte(`"b.txt"`), 1)
	if !bytes.Contains(tampered.Envelope().Payload, []byte(`"b.txt"`)) {
		t.Fatalf("tampering changed nothing in %s", tampered.Envelope().Payload)
	}
	retyped := good()
	retyped.Envelope().PayloadType = "application/json"
	// Defect 4: the same statement, validly signed with another payload type.
	resigned := func() *attest.Bundle {
		env, err := a.Signer.SignEnvelope("application/vnd.unrelated+json", good().Envelope().GetPayload())
		if err != nil {
			t.Fatal(err)
		}
		return attest.NewBundle(env, a.Signer.KeyHint())
	}()

	// signEnvelope signs payload with a and wraps it in a bundle.
	signEnvelope := func(payload string) *attest.Bundle {
		env, err := a.Signer.SignEnvelope(attest.InTotoPayloadType, []byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		return reparse(t, attest.NewBundle(env, a.Signer.KeyHint()))
	}
	attestSubjects := func(subjects ...*intoto.ResourceDescriptor) *attest.Bundle {
		b, err := attest.Attest(a.Signer, subjects, attest.PredicateSLSAProvenanceV1, testProvenance(t))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	sha512Hex := strings.Repeat("ab", 64)

	runVerifyRejects(t, []verifyCase{
		{
			name:     "tampered payload",
			bundle:   tampered,
			artifact: memArtifact("a.txt", hello),
			opts:     onlyA,
			wantStep: "signature",
			wantErr:  `no signature verifies with key "key-a" (key id ` + a.Pub.ID[:16] + "…): the statement was changed after signing",
		},
		{
			name:     "tampered payload type",
			bundle:   retyped,
			artifact: memArtifact("a.txt", hello),
			opts:     onlyA,
			wantStep: "signature",
			wantErr:  `envelope payload type "application/json", want "application/vnd.in-toto+json"`,
		},
		{
			name:     "re-signed with an unrelated payload type",
			bundle:   resigned,
			artifact: memArtifact("a.txt", hello),
			opts:     onlyA,
			wantStep: "signature",
			wantErr:  `envelope payload type "application/vnd.unrelated+json", want "application/vnd.in-toto+json": not an in-toto attestation`,
		},
		{
			name:     "other key",
			bundle:   good(),
			artifact: memArtifact("a.txt", hello),
			opts:     attest.VerifierOptions{Keys: []*attest.PublicKey{b.Pub}},
			wantStep: "signature",
			wantErr:  `no signature verifies with key "key-b"`,
		},
		{
			name:     "cosign bundle, other key",
			bundle:   mustParseTestdataBundle(t, "cosign-attest-blob.sigstore.json"),
			artifact: memArtifact("a.txt", hello),
			opts:     onlyA,
			wantStep: "signature",
			wantErr:  `no signature verifies with key "key-a"`,
		},
		{
			name:     "subject digest differs",
			bundle:   good(),
			artifact: memArtifact("a.txt", []byte("hello, world\n")),
			opts:     onlyA,
			wantStep: "subject",
			wantErr:  `artifact digest sha256:853ff93762a06ddbf722c4ebe9ddd66d8f63ddaea97f521c3ecc20da7c976020 differs from the attested subject "a.txt" (sha256:5891b5b522d5df08…)`,
		},
		{
			name:     "no subject matches",
			bundle:   attestSubjects(subjectOf("a", []byte("a")), subjectOf("b", []byte("b"))),
			artifact: memArtifact("a.txt", hello),
			opts:     onlyA,
			wantStep: "subject",
			wantErr:  "artifact digest sha256:" + digestHello + " matches none of the 2 attested subjects",
		},
		{
			name:     "subject without sha256",
			bundle:   attestSubjects(&intoto.ResourceDescriptor{Name: "a.txt", Digest: map[string]string{"sha512": sha512Hex}}),
			artifact: memArtifact("a.txt", hello),
			opts:     onlyA,
			wantStep: "subject",
			wantErr:  "no subject of the statement has a sha256 digest",
		},
		{
			name:     "predicate type mismatch",
			bundle:   good(),
			artifact: memArtifact("a.txt", hello),
			opts:     attest.VerifierOptions{Keys: []*attest.PublicKey{a.Pub}, PredicateType: "https://slsa.dev/provenance/v0.2"},
			wantStep: "statement",
			wantErr:  `predicate type is "https://slsa.dev/provenance/v1", want "https://slsa.dev/provenance/v0.2"`,
		},
		{
			name:     "statement not in-toto",
			bundle:   signEnvelope(`{"hello":"world"}`),
			artifact: memArtifact("a.txt", hello),
			opts:     onlyA,
			wantStep: "statement",
			wantErr:  "attest: statement: not a valid in-toto statement",
		},
		{
			name:     "statement of unknown type",
			bundle:   signEnvelope(`{"_type":"https://example.com/Statement/v1","subject":[{"name":"a.txt","digest":{"sha256":"` + digestHello + `"}}],` + testPred + `}`),
			artifact: memArtifact("a.txt", hello),
			opts:     onlyA,
			wantStep: "statement",
			wantErr:  `attest: statement: unknown _type "https://example.com/Statement/v1"`,
		},
	})
}

func TestVerifyThreshold(t *testing.T) {
	a, b := keyA(t), keyB(t)
	both := []*attest.PublicKey{a.Pub, b.Pub}
	byA := reparse(t, attestContent(t, a, "a.txt", hello))

	// byAB carries a's signature and b's over the same payload.
	byAB := reparse(t, attestContent(t, a, "a.txt", hello))
	envB, err := b.Signer.SignEnvelope(byAB.Envelope().GetPayloadType(), byAB.Envelope().GetPayload())
	if err != nil {
		t.Fatal(err)
	}
	byAB.Envelope().Signatures = append(byAB.Envelope().Signatures, envB.Signatures...)
	byAB = reparse(t, byAB)

	passes := []struct {
		name        string
		bundle      *attest.Bundle
		threshold   int
		wantSigners []*attest.PublicKey
	}{
		{"signed by a, threshold 1", byA, 1, []*attest.PublicKey{a.Pub}},
		{"signed by a, threshold 0 means 1", byA, 0, []*attest.PublicKey{a.Pub}},
		{"signed by a and b, threshold 2", byAB, 2, []*attest.PublicKey{a.Pub, b.Pub}},
		{"signed by a and b, threshold 1", byAB, 1, []*attest.PublicKey{a.Pub, b.Pub}},
	}
	for _, tt := range passes {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, attest.VerifierOptions{Keys: both, Threshold: tt.threshold})
			ev, err := v.Verify(context.Background(), memArtifact("a.txt", hello), tt.bundle)
			if err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			if len(ev.Signers) != len(tt.wantSigners) {
				t.Fatalf("Signers: got %d, want %d", len(ev.Signers), len(tt.wantSigners))
			}
			for i := range ev.Signers {
				if ev.Signers[i] != tt.wantSigners[i] {
					t.Errorf("Signers[%d]: got %s, want %s", i, ev.Signers[i].Name, tt.wantSigners[i].Name)
				}
			}
		})
	}

	runVerifyRejects(t, []verifyCase{
		{
			name:     "signed by a, threshold 2",
			bundle:   byA,
			artifact: memArtifact("a.txt", hello),
			opts:     attest.VerifierOptions{Keys: both, Threshold: 2},
			wantStep: "signature",
			wantErr:  "signed by 1 of the 2 keys (key-a), 2 needed",
		},
		{
			name:     "signed by a, keys b and cosign",
			bundle:   byA,
			artifact: memArtifact("a.txt", hello),
			opts:     attest.VerifierOptions{Keys: []*attest.PublicKey{b.Pub, testdataKey(t, "cosign.pub")}},
			wantStep: "signature",
			wantErr:  "signed by 0 of the 2 keys (none), 1 needed",
		},
	})
}

// One signature must not count twice because the same key is listed twice
// (under two names, say): the threshold counts distinct keys.
func TestVerifyThresholdDuplicateKey(t *testing.T) {
	a := keyA(t)
	again, err := attest.NewPublicKey("key-a-again", a.Pub.Key())
	if err != nil {
		t.Fatal(err)
	}
	keys := []*attest.PublicKey{a.Pub, again}
	bundle := reparse(t, attestContent(t, a, "a.txt", hello))
	v, err := attest.NewVerifier(attest.VerifierOptions{Keys: keys, Threshold: 2})
	if err != nil {
		return // rejecting duplicate keys up front is a fine fix too
	}
	ev, err := v.Verify(context.Background(), memArtifact("a.txt", hello), bundle)
	if err == nil {
		t.Fatalf("got no error with %d signers, want threshold 2 of distinct keys to fail", len(ev.Signers))
	}
}

// SignatureStep is exported to build verifiers with [attest.Verifier.With];
// a threshold of 0 must not let an unsigned (or wrongly signed) envelope
// through, just as NewVerifier reads 0 as 1.
func TestSignatureStepThresholdZero(t *testing.T) {
	a, b := keyA(t), keyB(t)
	bundle := reparse(t, attestContent(t, a, "a.txt", hello))
	v := new(attest.Verifier).With(attest.SignatureStep([]*attest.PublicKey{b.Pub}, 0))
	ev, err := v.Verify(context.Background(), memArtifact("a.txt", hello), bundle)
	if err == nil {
		t.Fatalf("got no error with %d signers, want the signature step to reject", len(ev.Signers))
	}
}

func TestNewVerifierErrors(t *testing.T) {
	k := testdataKey(t, "cosign.pub")
	tests := []struct {
		name string
		opts attest.VerifierOptions
		want string
	}{
		{"no keys", attest.VerifierOptions{}, "attest: verifier needs at least one public key"},
		{"threshold over keys", attest.VerifierOptions{Keys: []*attest.PublicKey{k}, Threshold: 2}, "attest: threshold 2 is not between 1 and the 1 keys"},
		{"negative threshold", attest.VerifierOptions{Keys: []*attest.PublicKey{k}, Threshold: -1}, "attest: threshold -1 is not between 1 and the 1 keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := attest.NewVerifier(tt.opts)
			wantErrContains(t, err, tt.want)
			if v != nil {
				t.Errorf("got a verifier with the error, want nil")
			}
		})
	}
}

// failingReader returns some bytes, then err.
type failingReader struct {
	n   int
	err error
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, r.err
	}
	n := min(len(p), r.n)
	r.n -= n
	return n, nil
}

func TestVerifyInputErrors(t *testing.T) {
	k := testdataKey(t, "cosign.pub")
	bundle := mustParseTestdataBundle(t, "cosign-attest-blob.sigstore.json")
	v := newVerifier(t, attest.VerifierOptions{Keys: []*attest.PublicKey{k}})
	errDisk := errors.New("disk on fire")
	missing := filepath.Join(t.TempDir(), "missing.txt")

	tests := []struct {
		name     string
		ctx      func() context.Context
		artifact attest.Artifact
		wantIs   error
		wantErr  string
	}{
		{
			name:     "file missing",
			artifact: attest.FileArtifact(missing),
			wantIs:   fs.ErrNotExist,
			wantErr:  "reading artifact: open " + missing,
		},
		{
			name: "open fails",
			artifact: attest.Artifact{Name: "x", Open: func() (io.ReadCloser, error) {
				return nil, errDisk
			}},
			wantIs:  errDisk,
			wantErr: "reading artifact: disk on fire",
		},
		{
			name: "read fails",
			artifact: attest.Artifact{Name: "big.bin", Open: func() (io.ReadCloser, error) {
				return io.NopCloser(&failingReader{n: 3 << 20, err: errDisk}), nil
			}},
			wantIs:  errDisk,
			wantErr: "reading artifact big.bin: disk on fire",
		},
		{
			name: "canceled before",
			ctx: func() context.Context {
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				return ctx
			},
			artifact: memArtifact("a.txt", hello),
			wantIs:   context.Canceled,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			if tt.ctx != nil {
				ctx = tt.ctx()
			}
			ev, err := v.Verify(ctx, tt.artifact, bundle)
			if err == nil {
				t.Fatal("got no error, want an input error")
			}
			if ev != nil {
				t.Errorf("got evidence with the error, want nil")
			}
			if errors.Is(err, attest.ErrNotVerified) {
				t.Errorf("errors.Is(%v, ErrNotVerified): got true, want false", err)
			}
			if !errors.Is(err, tt.wantIs) {
				t.Errorf("errors.Is(%v, %v): got false, want true", err, tt.wantIs)
			}
			if tt.wantErr != "" {
				var in *attest.InputError
				if !errors.As(err, &in) {
					t.Errorf("got %T, want *InputError", err)
				}
				wantErrContains(t, err, tt.wantErr)
			}
		})
	}

	t.Run("canceled while hashing", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		a := attest.Artifact{Name: "slow", Open: func() (io.ReadCloser, error) {
			r := io.MultiReader(bytes.NewReader(make([]byte, 1<<20)), readerFunc(func(p []byte) (int, error) {
				cancel()
				return len(p), nil
			}), bytes.NewReader(make([]byte, 4<<20)))
			return io.NopCloser(r), nil
		}}
		_, err := v.Verify(ctx, a, bundle)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want context.Canceled", err)
		}
		if errors.Is(err, attest.ErrNotVerified) {
			t.Errorf("errors.Is(%v, ErrNotVerified): got true, want false", err)
		}
		var in *attest.InputError
		if !errors.As(err, &in) {
			t.Errorf("got %T, want *InputError", err)
		}
	})
}

type readerFunc func(p []byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

func TestVerifierWith(t *testing.T) {
	k := testdataKey(t, "cosign.pub")
	bundle := mustParseTestdataBundle(t, "cosign-attest-blob.sigstore.json")
	base := newVerifier(t, attest.VerifierOptions{Keys: []*attest.PublicKey{k}})

	var seen *attest.Evidence
	record := attest.StepFunc{StepName: "record", Func: func(_ context.Context, ev *attest.Evidence) error {
		seen = ev
		return nil
	}}
	errPolicy := errors.New("node not in policy")
	reject := attest.StepFunc{StepName: "policy", Func: func(context.Context, *attest.Evidence) error { return errPolicy }}
	inputErr := attest.StepFunc{StepName: "log", Func: func(context.Context, *attest.Evidence) error {
		return &attest.InputError{Err: errors.New("log unreachable")}
	}}

	t.Run("step runs last, on filled evidence", func(t *testing.T) {
		ev, err := base.With(record).Verify(context.Background(), memArtifact("a.txt", hello), bundle)
		if err != nil {
			t.Fatal(err)
		}
		if seen != ev {
			t.Fatalf("extra step saw %p, want the returned evidence %p", seen, ev)
		}
		if seen.Subject == nil || len(seen.Signers) != 1 || seen.Statement == nil {
			t.Errorf("extra step ran before the default steps filled in the evidence")
		}
	})
	t.Run("rejecting step", func(t *testing.T) {
		_, err := base.With(record, reject).Verify(context.Background(), memArtifact("a.txt", hello), bundle)
		var ve *attest.VerificationError
		if !errors.As(err, &ve) || ve.Step != "policy" {
			t.Fatalf("got %v, want a VerificationError from step policy", err)
		}
		if !errors.Is(err, errPolicy) || !errors.Is(err, attest.ErrNotVerified) {
			t.Errorf("got %v, want it to wrap both the step's error and ErrNotVerified", err)
		}
		if got, want := err.Error(), "policy: node not in policy"; got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("input error passes through", func(t *testing.T) {
		_, err := base.With(inputErr).Verify(context.Background(), memArtifact("a.txt", hello), bundle)
		var in *attest.InputError
		if !errors.As(err, &in) || errors.Is(err, attest.ErrNotVerified) {
			t.Fatalf("got %v, want the InputError unwrapped", err)
		}
	})
	t.Run("With copies", func(t *testing.T) {
		// Two verifiers grown from one must not share their extra steps.
		withReject := base.With(reject)
		withRecord := base.With(record)
		if _, err := withRecord.Verify(context.Background(), memArtifact("a.txt", hello), bundle); err != nil {
			t.Errorf("base.With(record): got %v, want no error", err)
		}
		if _, err := withReject.Verify(context.Background(), memArtifact("a.txt", hello), bundle); err == nil {
			t.Errorf("base.With(reject): got no error, want one")
		}
		if _, err := base.Verify(context.Background(), memArtifact("a.txt", hello), bundle); err != nil {
			t.Errorf("base after With: got %v, want no error", err)
		}
	})
	t.Run("artifact opened once", func(t *testing.T) {
		opens := 0
		a := attest.Artifact{Name: "a.txt", Open: func() (io.ReadCloser, error) {
			opens++
			return io.NopCloser(bytes.NewReader(hello)), nil
		}}
		if _, err := base.With(record).Verify(context.Background(), a, bundle); err != nil {
			t.Fatal(err)
		}
		if opens != 1 {
			t.Errorf("Open called %d times, want 1", opens)
		}
	})
}

// Verify must return an error, not panic, when given a zero Artifact or a
// nil bundle.
func TestVerifyMissingInputs(t *testing.T) {
	k := testdataKey(t, "cosign.pub")
	bundle := mustParseTestdataBundle(t, "cosign-attest-blob.sigstore.json")
	v := newVerifier(t, attest.VerifierOptions{Keys: []*attest.PublicKey{k}})
	tests := []struct {
		name     string
		artifact attest.Artifact
		bundle   *attest.Bundle
	}{
		{"zero artifact", attest.Artifact{Name: "a.txt"}, bundle},
		{"nil bundle", memArtifact("a.txt", hello), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r != nil {
					t.Fatalf("got panic %v, want an error", r)
				}
			}()
			if _, err := v.Verify(context.Background(), tt.artifact, tt.bundle); err == nil {
				t.Errorf("got no error, want one")
			}
		})
	}
}

func TestSHA256(t *testing.T) {
	tests := []struct {
		name string
		in   []byte
	}{
		{"empty", nil},
		{"hello", hello},
		{"over one buffer", bytes.Repeat([]byte("0123456789abcdef"), (3<<20)/16+5)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sum, n, err := attest.SHA256(context.Background(), bytes.NewReader(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if want := sha256.Sum256(tt.in); sum != want {
				t.Errorf("sum: got %x, want %x", sum, want)
			}
			if n != int64(len(tt.in)) {
				t.Errorf("n: got %d, want %d", n, len(tt.in))
			}
		})
	}
}

func mustParseTestdataBundle(tb testing.TB, name string) *attest.Bundle {
	tb.Helper()
	b, err := attest.ParseBundle(readTestdata(tb, name))
	if err != nil {
		tb.Fatalf("ParseBundle(%s): %v", name, err)
	}
	return b
}
