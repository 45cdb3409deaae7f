package attest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	intoto "github.com/in-toto/attestation/go/v1"
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
	Artifact Artifact
	Bundle   *Bundle

	// Filled in by the steps.
	Signers   []*PublicKey               // keys whose signature verified
	Statement *intoto.Statement          // the decoded, signed statement
	Digest    [sha256.Size]byte          // SHA-256 of the artifact
	Size      int64                      // bytes in the artifact
	Subject   *intoto.ResourceDescriptor // the subject that names Digest
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

// Verifier checks an artifact against an attestation bundle by running its
// steps in order. The default steps, from [NewVerifier], are:
//
//  1. signature: the DSSE envelope is signed by at least Threshold of Keys;
//  2. statement: the payload is an in-toto statement (of PredicateType, if set);
//  3. digest: the artifact is read once through SHA-256;
//  4. subject: a subject of the statement carries that digest.
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
		SubjectStep(),
	}}, nil
}

// With returns a copy of v with more steps at the end.
func (v *Verifier) With(steps ...Step) *Verifier {
	return &Verifier{steps: append(append([]Step(nil), v.steps...), steps...)}
}

// Verify runs every step on the evidence. It returns the filled-in evidence,
// or the first step's error: a *VerificationError (errors.Is ErrNotVerified)
// when the evidence does not hold, or an input error.
func (v *Verifier) Verify(ctx context.Context, a Artifact, b *Bundle) (*Evidence, error) {
	if len(v.steps) == 0 {
		return nil, errors.New("attest: verifier has no steps (use NewVerifier)")
	}
	if a.Open == nil || b == nil {
		return nil, &InputError{errors.New("attest: nothing to verify: no artifact or no bundle")}
	}
	ev := &Evidence{Artifact: a, Bundle: b}
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

// SignatureStep requires at least threshold of keys to have signed the envelope.
func SignatureStep(keys []*PublicKey, threshold int) Step {
	threshold = max(threshold, 1)
	return StepFunc{"signature", func(_ context.Context, ev *Evidence) error {
		ev.Signers = VerifyEnvelope(ev.Bundle.Envelope(), keys)
		if len(ev.Signers) >= threshold {
			return nil
		}
		if len(keys) == 1 {
			return fmt.Errorf("no signature verifies with key %q (key id %s): the statement was changed after signing, or another key signed it", keys[0].Name, short(keys[0].ID))
		}
		return fmt.Errorf("envelope is signed by %d of the %d keys, %d needed", len(ev.Signers), len(keys), threshold)
	}}
}

// StatementStep decodes the signed payload and, if predicateType is set,
// requires it.
func StatementStep(predicateType string) Step {
	return StepFunc{"statement", func(_ context.Context, ev *Evidence) error {
		st, err := ParseStatement(ev.Bundle.Envelope().GetPayload())
		if err != nil {
			return err
		}
		if predicateType != "" && st.GetPredicateType() != predicateType {
			return fmt.Errorf("predicate type is %q, want %q", st.GetPredicateType(), predicateType)
		}
		ev.Statement = st
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

// SubjectStep requires a subject of the statement to carry the artifact's
// SHA-256 digest. Names are not compared: files get renamed on download.
func SubjectStep() Step {
	return StepFunc{"subject", func(_ context.Context, ev *Evidence) error {
		want := hex.EncodeToString(ev.Digest[:])
		withSHA256 := 0
		for _, s := range ev.Statement.GetSubject() {
			got, ok := s.GetDigest()["sha256"]
			if !ok {
				continue
			}
			withSHA256++
			if strings.EqualFold(got, want) {
				ev.Subject = s
				return nil
			}
		}
		if withSHA256 == 0 {
			return errors.New("no subject of the statement has a sha256 digest")
		}
		subjects := ev.Statement.GetSubject()
		if len(subjects) == 1 {
			return fmt.Errorf("artifact digest %s differs from the attested subject %q (sha256:%s)",
				ev.DigestHex(), subjects[0].GetName(), short(subjects[0].GetDigest()["sha256"]))
		}
		return fmt.Errorf("artifact digest %s matches none of the %d attested subjects", ev.DigestHex(), len(subjects))
	}}
}

// SHA256 reads r to the end through SHA-256 in constant memory, stopping
// early if ctx is done.
func SHA256(ctx context.Context, r io.Reader) (sum [sha256.Size]byte, n int64, err error) {
	h := sha256.New()
	n, err = io.CopyBuffer(h, ctxReader{ctx, r}, make([]byte, hashBufSize))
	h.Sum(sum[:0])
	return sum, n, err
}

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
