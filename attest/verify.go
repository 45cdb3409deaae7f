package attest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"

	intoto "github.com/in-toto/attestation/go/v1"
	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
)

// ErrNotVerified is wrapped by every [VerificationError]: the evidence was
// read, and it does not hold. Use errors.Is to tell it from an input error
// (a file that cannot be read or parsed).
var ErrNotVerified = errors.New("not verified")

// VerificationError reports the step that rejected the evidence.
type VerificationError struct {
	Step string
	Err  error
}

func (e *VerificationError) Error() string { return e.Step + ": " + e.Err.Error() }

// Unwrap returns the cause and [ErrNotVerified].
func (e *VerificationError) Unwrap() []error { return []error{e.Err, ErrNotVerified} }

// Artifact is the thing being verified: a file, or any byte stream.
type Artifact struct {
	// Name is shown in verdicts and errors, usually the file path.
	Name string
	// Open returns the artifact's bytes. It is called at most once.
	Open func() (io.ReadCloser, error)
}

// FileArtifact returns the artifact at path.
func FileArtifact(path string) Artifact {
	return Artifact{Name: path, Open: func() (io.ReadCloser, error) { return os.Open(path) }}
}

// Evidence is what the steps of a [Verifier] read and fill in, in order.
type Evidence struct {
	Artifact  Artifact
	Bundle    *Bundle            // the bundle, when verifying one
	Envelopes []*dssepb.Envelope // the envelopes to check: the bundle's, or a log entry's

	// Filled in by the steps.
	Signed    []Signed                   // one per key that signed, in key order
	Signers   []*PublicKey               // the keys of Signed
	Digest    [sha256.Size]byte          // SHA-256 of the artifact
	Size      int64                      // bytes in the artifact
	Statement *intoto.Statement          // a signed statement that names Digest
	Subject   *intoto.ResourceDescriptor // its subject that names Digest
}

// Signed is an envelope with the key that signed it and, once the
// statement step has run, its decoded statement.
type Signed struct {
	Key       *PublicKey
	Envelope  *dssepb.Envelope
	Statement *intoto.Statement
}

// DigestHex returns the artifact digest as "sha256:hex".
func (e *Evidence) DigestHex() string { return "sha256:" + hex.EncodeToString(e.Digest[:]) }

// A Step checks one property of the evidence. A step that rejects the
// evidence returns an error; the Verifier wraps it in a VerificationError
// unless it is an input error (one that says nothing about the evidence,
// such as an unreadable file), which the step marks with [InputError].
type Step interface {
	Name() string
	Check(ctx context.Context, ev *Evidence) error
}

// StepFunc adapts a function to a Step.
type StepFunc struct {
	StepName string
	Func     func(ctx context.Context, ev *Evidence) error
}

func (s StepFunc) Name() string                                  { return s.StepName }
func (s StepFunc) Check(ctx context.Context, ev *Evidence) error { return s.Func(ctx, ev) }

// InputError marks an error that is about reading input, not about what
// the input says. The verifier passes it through unchanged.
type InputError struct{ Err error }

func (e *InputError) Error() string { return e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// Verifier checks an artifact against signed DSSE envelopes (one, from a
// bundle; or the several of a log entry, one per build node) by running its
// steps in order. The default steps, from [NewVerifier], are:
//
//  1. signature: at least Threshold of Keys signed an envelope;
//  2. statement: each signed payload is an in-toto statement (of
//     PredicateType, if set);
//  3. digest: the artifact is read once through SHA-256;
//  4. subject: the statements of at least Threshold signers carry that
//     digest in a subject.
//
// Later checks (a log inclusion proof, the network policy) are further steps.
type Verifier struct {
	steps []Step
}

// VerifierOptions configure [NewVerifier].
type VerifierOptions struct {
	// Keys that may sign. At least one is required.
	Keys []*PublicKey
	// Threshold is how many distinct Keys must have signed; 0 means 1.
	Threshold int
	// PredicateType, if set, is required of the statement.
	PredicateType string
}

// NewVerifier returns a Verifier with the default steps.
func NewVerifier(o VerifierOptions) (*Verifier, error) {
	if len(o.Keys) == 0 {
		return nil, errors.New("attest: verifier needs at least one public key")
	}
	if o.Threshold == 0 {
		o.Threshold = 1
	}
	if o.Threshold < 0 || o.Threshold > len(o.Keys) {
		return nil, fmt.Errorf("attest: threshold %d is not between 1 and the %d keys", o.Threshold, len(o.Keys))
	}
	ids := make(map[string]string)
	for _, k := range o.Keys {
		if other, dup := ids[k.ID]; dup {
			return nil, fmt.Errorf("attest: keys %q and %q are the same key", other, k.Name)
		}
		ids[k.ID] = k.Name
	}
	return &Verifier{steps: []Step{
		SignatureStep(o.Keys, o.Threshold),
		StatementStep(o.PredicateType),
		DigestStep(),
		SubjectStep(o.Threshold),
	}}, nil
}

// With returns a copy of v with more steps at the end.
func (v *Verifier) With(steps ...Step) *Verifier {
	return &Verifier{steps: append(append([]Step(nil), v.steps...), steps...)}
}

// Verify checks an artifact against a bundle. It returns the filled-in
// evidence, or the first step's error: a *VerificationError (errors.Is
// ErrNotVerified) when the evidence does not hold, or an input error.
func (v *Verifier) Verify(ctx context.Context, a Artifact, b *Bundle) (*Evidence, error) {
	if b == nil {
		return nil, &InputError{errors.New("attest: nothing to verify: no bundle")}
	}
	return v.run(ctx, &Evidence{Artifact: a, Bundle: b, Envelopes: []*dssepb.Envelope{b.Envelope()}})
}

// VerifyEnvelopes checks an artifact against several envelopes, such as
// the build nodes' votes recorded in a log entry. Errors are as for Verify.
func (v *Verifier) VerifyEnvelopes(ctx context.Context, a Artifact, envs []*dssepb.Envelope) (*Evidence, error) {
	if len(envs) == 0 {
		return nil, &InputError{errors.New("attest: nothing to verify: no envelopes")}
	}
	return v.run(ctx, &Evidence{Artifact: a, Envelopes: envs})
}

func (v *Verifier) run(ctx context.Context, ev *Evidence) (*Evidence, error) {
	if len(v.steps) == 0 {
		return nil, errors.New("attest: verifier has no steps (use NewVerifier)")
	}
	if ev.Artifact.Open == nil {
		return nil, &InputError{errors.New("attest: nothing to verify: no artifact")}
	}
	for _, s := range v.steps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := s.Check(ctx, ev); err != nil {
			var in *InputError
			if errors.As(err, &in) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return nil, err
			}
			return nil, &VerificationError{Step: s.Name(), Err: err}
		}
	}
	return ev, nil
}

// SignatureStep requires at least threshold of keys to have signed an
// envelope of payload type [InTotoPayloadType]; envelopes of other types
// are not counted, whoever signed them. Each key counts once.
func SignatureStep(keys []*PublicKey, threshold int) Step {
	threshold = max(threshold, 1)
	return StepFunc{"signature", func(_ context.Context, ev *Evidence) error {
		ev.Signed, ev.Signers = nil, nil
		var envs []*prepared
		wrongType, tooMany := "", 0
		for _, env := range ev.Envelopes {
			switch {
			case env.GetPayloadType() != InTotoPayloadType:
				wrongType = env.GetPayloadType()
			case len(env.GetSignatures()) > MaxSignatures:
				tooMany = len(env.GetSignatures())
			default:
				envs = append(envs, prepare(env))
			}
		}
		for _, k := range keys {
			if slices.Contains(ev.Signers, k) {
				continue
			}
			for _, p := range envs {
				if p.signedBy(k) {
					ev.Signers = append(ev.Signers, k)
					ev.Signed = append(ev.Signed, Signed{Key: k, Envelope: p.env})
					break
				}
			}
		}
		if len(ev.Signers) >= threshold {
			return nil
		}
		var why string
		switch {
		case wrongType != "" && len(envs) == 0:
			return fmt.Errorf("envelope payload type %q, want %q: not an in-toto attestation", clip(wrongType), InTotoPayloadType)
		case tooMany > 0 && len(envs) == 0:
			return fmt.Errorf("envelope has %d signatures, more than %d", tooMany, MaxSignatures)
		case wrongType != "":
			why = fmt.Sprintf(" (envelopes of payload type %q are not counted)", clip(wrongType))
		}
		if len(keys) == 1 {
			return fmt.Errorf("no signature verifies with key %q (key id %s): the statement was changed after signing, or another key signed it%s", keys[0].Name, short(keys[0].ID), why)
		}
		return fmt.Errorf("signed by %d of the %d keys (%s), %d needed%s", len(ev.Signers), len(keys), keyNames(ev.Signers), threshold, why)
	}}
}

// StatementStep decodes each signed payload and, if predicateType is set,
// requires it.
func StatementStep(predicateType string) Step {
	return StepFunc{"statement", func(_ context.Context, ev *Evidence) error {
		for i := range ev.Signed {
			sd := &ev.Signed[i]
			st, err := ParseStatement(sd.Envelope.GetPayload())
			if err != nil && len(ev.Signed) > 1 {
				return fmt.Errorf("signed by %q: %w", sd.Key.Name, err)
			} else if err != nil {
				return err
			}
			if predicateType != "" && st.GetPredicateType() != predicateType {
				return fmt.Errorf("predicate type is %q, want %q", st.GetPredicateType(), predicateType)
			}
			sd.Statement = st
		}
		if len(ev.Signed) > 0 {
			ev.Statement = ev.Signed[0].Statement
		}
		return nil
	}}
}

// hashBufSize is the read size for hashing: large enough that system calls
// cost nothing next to SHA-256, small enough to stay in cache.
const hashBufSize = 1 << 20

// DigestStep reads the artifact once through SHA-256, in constant memory.
func DigestStep() Step {
	return StepFunc{"digest", func(ctx context.Context, ev *Evidence) error {
		r, err := ev.Artifact.Open()
		if err != nil {
			return &InputError{fmt.Errorf("reading artifact: %w", err)}
		}
		defer r.Close()
		ev.Digest, ev.Size, err = SHA256(ctx, r)
		if err != nil {
			return &InputError{fmt.Errorf("reading artifact %s: %w", ev.Artifact.Name, err)}
		}
		return nil
	}}
}

// SubjectStep requires the statements of at least threshold signers to
// carry the artifact's SHA-256 digest in a subject. Names are not compared:
// files get renamed on download.
func SubjectStep(threshold int) Step {
	threshold = max(threshold, 1)
	return StepFunc{"subject", func(_ context.Context, ev *Evidence) error {
		want := hex.EncodeToString(ev.Digest[:])
		var agree []*PublicKey
		for _, sd := range ev.Signed {
			if s := subjectWithDigest(sd.Statement, want); s != nil {
				if ev.Subject == nil {
					ev.Statement, ev.Subject = sd.Statement, s
				}
				agree = append(agree, sd.Key)
			}
		}
		if len(agree) >= threshold {
			return nil
		}
		ev.Statement, ev.Subject = nil, nil
		if len(ev.Signed) != 1 {
			return fmt.Errorf("artifact digest %s is attested by %d of the %d signers (%s), %d needed", ev.DigestHex(), len(agree), len(ev.Signed), keyNames(agree), threshold)
		}
		subjects := ev.Signed[0].Statement.GetSubject()
		withSHA256 := 0
		for _, s := range subjects {
			if _, ok := s.GetDigest()["sha256"]; ok {
				withSHA256++
			}
		}
		switch {
		case withSHA256 == 0:
			return errors.New("no subject of the statement has a sha256 digest")
		case len(subjects) == 1:
			return fmt.Errorf("artifact digest %s differs from the attested subject %q (sha256:%s)",
				ev.DigestHex(), subjects[0].GetName(), short(subjects[0].GetDigest()["sha256"]))
		default:
			return fmt.Errorf("artifact digest %s matches none of the %d attested subjects", ev.DigestHex(), len(subjects))
		}
	}}
}

func subjectWithDigest(st *intoto.Statement, sha256hex string) *intoto.ResourceDescriptor {
	for _, s := range st.GetSubject() {
		if got, ok := s.GetDigest()["sha256"]; ok && strings.EqualFold(got, sha256hex) {
			return s
		}
	}
	return nil
}

func keyNames(keys []*PublicKey) string {
	if len(keys) == 0 {
		return "none"
	}
	names := make([]string, len(keys))
	for i, k := range keys {
		names[i] = k.Name
	}
	return strings.Join(names, ", ")
}

// SHA256 reads r to the end through SHA-256 in constant memory, stopping
// early if ctx is done.
func SHA256(ctx context.Context, r io.Reader) (sum [sha256.Size]byte, n int64, err error) {
	h := sha256.New()
	buf := hashBufs.Get().(*[]byte)
	n, err = io.CopyBuffer(h, ctxReader{ctx, r}, *buf)
	hashBufs.Put(buf)
	h.Sum(sum[:0])
	return sum, n, err
}

// hashBufs are SHA256's read buffers: one of hashBufSize a call, made
// afresh (and zeroed) each time, was a third of the bytes a burst of
// builds allocated (one manifest entry an artifact).
var hashBufs = sync.Pool{New: func() any {
	b := make([]byte, hashBufSize)
	return &b
}}

// ctxReader stops a long read when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

func short(s string) string {
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}

// clip shortens a string from the input for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
