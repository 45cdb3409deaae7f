package publish

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	fmtlog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
	"google.golang.org/protobuf/encoding/protojson"
)

// ProofOptions configure [VerifyProof]: the network policy as far as an
// offline verifier needs it.
type ProofOptions struct {
	// Keys are the build nodes' cosign public keys.
	Keys []*attest.PublicKey
	// Threshold is how many of Keys must have attested the artifact;
	// 0 means an absolute majority, floor(n/2)+1.
	Threshold int
	// PredicateType, if set, is required of every counted statement.
	PredicateType string
	// Origin is required of the checkpoint; empty means the log key's
	// name, which names the log by convention.
	Origin string
	// LogVerifier checks the checkpoint's log signature. Required.
	LogVerifier note.Verifier
	// Cosigners check the checkpoint's cosignatures (C2SP
	// tlog-cosignature); with none, the log signature alone is checked.
	Cosigners []note.Verifier
	// CosignThreshold is how many Cosigners must have cosigned for the
	// checkpoint to be final; 0 means an absolute majority.
	CosignThreshold int
	// AllowUnwitnessed accepts a checkpoint that only the log signed, when
	// no Cosigners are given. Without it, VerifyProof requires Cosigners:
	// a log's own signature does not stop it from showing different
	// verifiers different trees.
	AllowUnwitnessed bool
}

// ProofEvidence is what [VerifyProof] established.
type ProofEvidence struct {
	*attest.Evidence
	Entry      *Entry
	Index      uint64
	Checkpoint *fmtlog.Checkpoint
	Cosigners  []string // names of the cosigners whose cosignature verified
}

// VerifyProof checks an artifact against a proof bundle, offline:
//
//  1. checkpoint: signed by the log and, when Cosigners are given, cosigned
//     by CosignThreshold of them (final), for the bundle's tree size;
//  2. inclusion: the entry's leaf hash is in that tree at its index;
//  3. the entry's envelopes, by [attest.Verifier]: at least Threshold of
//     Keys signed statements whose subjects carry the artifact's digest;
//  4. entry: the entry's agreed subjects carry that digest too.
//
// Errors are those of [attest.Verifier.Verify]: a *attest.VerificationError
// (errors.Is attest.ErrNotVerified) when the evidence does not hold.
func VerifyProof(ctx context.Context, a attest.Artifact, pb *ProofBundle, o ProofOptions) (*ProofEvidence, error) {
	if o.LogVerifier == nil {
		return nil, errors.New("publish: no log key to check the checkpoint with")
	}
	if len(o.Keys) == 0 {
		return nil, errors.New("publish: no build node keys to check the attestations with")
	}
	if len(o.Cosigners) == 0 && !o.AllowUnwitnessed {
		return nil, errors.New("publish: no cosigner keys: a checkpoint signed only by the log is not final")
	}
	if o.Origin == "" {
		o.Origin = o.LogVerifier.Name()
	}
	threshold := o.Threshold
	if threshold == 0 {
		threshold = witness.Threshold(len(o.Keys))
	}
	fail := func(step string, err error) error { return &attest.VerificationError{Step: step, Err: err} }

	var cp *fmtlog.Checkpoint
	var cosigners []string
	var err error
	if len(o.Cosigners) > 0 {
		ct := o.CosignThreshold
		if ct == 0 {
			ct = witness.Threshold(len(o.Cosigners))
		}
		cp, cosigners, err = witness.VerifyFinal([]byte(pb.Checkpoint), o.Origin, o.LogVerifier, o.Cosigners, ct)
	} else {
		cp, _, err = witness.ParseCheckpoint([]byte(pb.Checkpoint), o.Origin, o.LogVerifier)
	}
	if err != nil {
		return nil, fail("checkpoint", err)
	}
	if cp.Size != pb.TreeSize {
		return nil, fail("checkpoint", fmt.Errorf("checkpoint is for %d entries, the proof for %d", cp.Size, pb.TreeSize))
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, pb.Index, pb.TreeSize, LeafHash(pb.RawEntry), pb.InclusionProof, cp.Hash); err != nil {
		return nil, fail("inclusion", fmt.Errorf("entry %d is not in the tree of %d entries: %w", pb.Index, pb.TreeSize, err))
	}
	entry, err := pb.Entry()
	if err != nil {
		// The log committed to bytes that are not an entry: the log is at fault.
		return nil, fail("entry", err)
	}
	if got := entry.SpecDigest(); got != entry.InputDigest {
		return nil, fail("entry", fmt.Errorf("the entry's input digest %s is not the sha256 of its spec (%s)", entry.InputDigest, got))
	}
	v, err := attest.NewVerifier(attest.VerifierOptions{Keys: o.Keys, Threshold: threshold, PredicateType: o.PredicateType})
	if err != nil {
		return nil, err
	}
	v = v.With(attest.StepFunc{StepName: "entry", Func: func(_ context.Context, ev *attest.Evidence) error {
		if !slices.ContainsFunc(entry.Subjects, func(s Subject) bool { return s.Digest == ev.DigestHex() }) {
			return fmt.Errorf("the log entry's agreed subjects do not include %s", ev.DigestHex())
		}
		// The entry certifies itself only if what it claims (the spec, so
		// the coordinate and input digest, and the subjects) is what the
		// build nodes signed: a log operator must not be able to put
		// genuine attestations under another name.
		var bound, unbound []string
		for _, sd := range ev.Signed {
			if err := bindsTo(sd.Statement, entry); err != nil {
				unbound = append(unbound, fmt.Sprintf("%s (%v)", sd.Key.Name, err))
				continue
			}
			bound = append(bound, sd.Key.Name)
		}
		if len(bound) < threshold {
			return fmt.Errorf("%d of the signers attested the entry's spec and subjects, %d needed: %s", len(bound), threshold, strings.Join(unbound, "; "))
		}
		return nil
	}})
	ev, err := v.VerifyEnvelopes(ctx, a, entry.Envelopes)
	if err != nil {
		return nil, err
	}
	return &ProofEvidence{Evidence: ev, Entry: entry, Index: pb.Index, Checkpoint: cp, Cosigners: cosigners}, nil
}

// bindsTo checks that a signed statement is about the entry: its subjects
// are the entry's subjects, and its SLSA externalParameters.spec, in
// canonical form, is the entry's spec.
func bindsTo(st *intoto.Statement, e *Entry) error {
	var subjects []Subject
	for _, s := range st.GetSubject() {
		subjects = append(subjects, Subject{Name: s.GetName(), Digest: "sha256:" + strings.ToLower(s.GetDigest()["sha256"])})
	}
	slices.SortFunc(subjects, compareSubjects)
	want := slices.SortedFunc(slices.Values(e.Subjects), compareSubjects)
	if !slices.Equal(subjects, want) {
		return errors.New("other subjects")
	}
	spec := st.GetPredicate().GetFields()["buildDefinition"].GetStructValue().
		GetFields()["externalParameters"].GetStructValue().GetFields()["spec"]
	if spec == nil {
		return errors.New("no externalParameters.spec")
	}
	raw, err := protojson.Marshal(spec)
	if err != nil {
		return err
	}
	canon, err := CanonicalJSON(raw)
	if err != nil {
		return err
	}
	if !bytes.Equal(canon, e.Spec) {
		return errors.New("another spec")
	}
	return nil
}
