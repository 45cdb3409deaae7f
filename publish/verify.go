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
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	fmtlog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// ProofOptions configure [VerifyProof] beyond the [policy.Trust].
// ErrUnwitnessed is returned by [VerifyProof] for a Trust without
// Cosigners when [ProofOptions.AllowUnwitnessed] is not set, before
// anything is read. Use errors.Is.
var ErrUnwitnessed = errors.New("publish: no cosigner keys: a checkpoint signed only by the log is not final")

type ProofOptions struct {
	// PredicateType, if set, is required of every counted statement.
	PredicateType string
	// AllowUnwitnessed accepts a checkpoint that only the log signed, when
	// the Trust has no Cosigners. Without it, VerifyProof requires
	// Cosigners: a log's own signature does not stop it from showing
	// different verifiers different trees.
	AllowUnwitnessed bool
	// LaterPolicy, for [VerifyProofChain], is the digest of a policy of
	// the network that the verifier knows was in force (the one its
	// nodes run, say): the bundle is refused unless its changes lead from
	// the first policy to that one, at or before the checkpoint. Given
	// only the first policy, a verifier cannot tell the network's log
	// from a fork signed and cosigned by keys that a change rotated out
	// (lost or stolen: why they were rotated), whose bundle leaves the
	// change out; such a fork never reaches a policy after its keys'.
	LaterPolicy string
}

// ProofEvidence is what [VerifyProof] established.
type ProofEvidence struct {
	*attest.Evidence
	Entry      *Entry
	Index      uint64
	Checkpoint *fmtlog.Checkpoint
	Cosigners  []string // names of the cosigners whose cosignature verified
	// Policy is the digest of the policy in force at the entry
	// ([VerifyProofChain]); empty for [VerifyProof].
	Policy string
	// PolicyChanges are the log indexes of the policy changes followed.
	PolicyChanges []uint64
}

// EntryEvidence is what [VerifyEntry] established: the distinct build node
// keys whose in-toto statements bind exactly the entry's spec and subjects.
type EntryEvidence struct {
	Entry   *Entry
	Signers []*attest.PublicKey // in the order of trust.BuildKeys
	Signed  []attest.Signed     // one per signer: its envelope and statement
}

// VerifyEntry checks that an entry certifies itself under trust, without
// an artifact or a log: its input digest is the SHA-256 of its spec, its
// ecosystem and coordinate are its spec's ([CheckLabels]), and at least
// trust.BuildThreshold distinct trust.BuildKeys signed DSSE envelopes of
// payload type [attest.InTotoPayloadType] whose in-toto statements, of
// predicate type [attest.PredicateSLSAProvenanceV1], name exactly the
// entry's subjects and, as SLSA externalParameters.spec, exactly its spec.
// EntryEvidence.Signed holds, per key, the one envelope counted; other
// envelopes of the entry are not judged. A Raft FSM calls it before it applies an entry; a
// verifier through [VerifyProof].
//
// An entry that does not hold gives a *attest.VerificationError (errors.Is
// attest.ErrNotVerified) of step "signature" (too few build nodes signed)
// or "entry" (they signed something else).
func VerifyEntry(ctx context.Context, e *Entry, trust *policy.Trust) (*EntryEvidence, error) {
	return VerifyEntryWith(ctx, e, trust, EntryOptions{})
}

// EntryOptions change how [VerifyEntryWith] checks an entry's signatures.
type EntryOptions struct {
	// Signers, if set, is used instead of attest.VerifyEnvelope: the
	// distinct keys of keys that signed env, in the order of keys. It must
	// return only keys that verify a signature of env: it is for a cache
	// of this process's own earlier verifications of the same envelope
	// bytes (quorum.VerifiedEnvelopes), not for trusting anyone's word.
	Signers func(env *dssepb.Envelope, keys []*attest.PublicKey) []*attest.PublicKey
	// Statements, if set, is used instead of [ParseStatement] for an
	// envelope's payload. It must answer as ParseStatement does for the
	// same bytes: it is for a cache of this process's own earlier parses
	// of the same payload (quorum.VerifiedEnvelopes), keyed by all of its
	// bytes. The statements it returns are shared: read only.
	Statements func(payload []byte) (*ParsedStatement, error)
}

// ParsedStatement is an in-toto statement ([attest.ParseStatement]) and
// the canonical JSON of its SLSA externalParameters.spec, which an entry's
// spec and a vote's input digest are compared with.
type ParsedStatement struct {
	Statement *intoto.Statement
	// Spec is the canonical JSON of the predicate's
	// buildDefinition.externalParameters.spec; nil when SpecErr is set.
	Spec []byte
	// SpecErr says why there is no Spec: the statement has none, or it
	// does not encode.
	SpecErr error
}

// ErrNoSpec is the [ParsedStatement.SpecErr] of a statement without an
// SLSA externalParameters.spec. Use errors.Is.
var ErrNoSpec = errors.New("no externalParameters.spec")

// ParseStatement parses an envelope's payload as an in-toto statement
// ([attest.ParseStatement]) and puts its externalParameters.spec in
// canonical form. A statement without a spec is not an error here
// (SpecErr says so): the checks that need one refuse it.
func ParseStatement(payload []byte) (*ParsedStatement, error) {
	st, err := attest.ParseStatement(payload)
	if err != nil {
		return nil, err
	}
	ps := &ParsedStatement{Statement: st}
	spec := st.GetPredicate().GetFields()["buildDefinition"].GetStructValue().
		GetFields()["externalParameters"].GetStructValue().GetFields()["spec"]
	if spec == nil {
		ps.SpecErr = ErrNoSpec
		return ps, nil
	}
	if ps.Spec, err = specJSON(spec); err != nil {
		ps.Spec, ps.SpecErr = nil, err
	}
	return ps, nil
}

// VerifyEntryWith is [VerifyEntry] with options.
func VerifyEntryWith(ctx context.Context, e *Entry, trust *policy.Trust, o EntryOptions) (*EntryEvidence, error) {
	signersOf := o.Signers
	if signersOf == nil {
		signersOf = attest.VerifyEnvelope
	}
	parse := o.Statements
	if parse == nil {
		parse = ParseStatement
	}
	if trust == nil || len(trust.BuildKeys) == 0 {
		return nil, errors.New("publish: no build node keys to check the attestations with")
	}
	if e == nil {
		return nil, errors.New("publish: no entry to verify")
	}
	fail := func(err error) error { return &attest.VerificationError{Step: "entry", Err: err} }
	if err := CheckInputDigest(e); err != nil {
		return nil, fail(trimPkg(err))
	}
	if err := CheckLabels(e); err != nil {
		return nil, fail(trimPkg(err))
	}
	threshold, err := buildThreshold(trust)
	if err != nil {
		return nil, err
	}
	ev := &EntryEvidence{Entry: e}
	var signers, unbound []string
	wrongType := 0
	for _, env := range e.Envelopes {
		if env.GetPayloadType() != attest.InTotoPayloadType {
			wrongType++
		}
	}
	// Check each envelope's signatures once, against every key.
	byKey := make(map[*attest.PublicKey][]*dssepb.Envelope)
	for _, env := range e.Envelopes {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if env.GetPayloadType() != attest.InTotoPayloadType {
			continue
		}
		for _, k := range signersOf(env, trust.BuildKeys) {
			byKey[k] = append(byKey[k], env)
		}
	}
	for _, k := range trust.BuildKeys {
		envs := byKey[k]
		if len(envs) == 0 {
			continue
		}
		signers = append(signers, k.Name)
		reason := ""
		for _, env := range envs {
			ps, err := parse(env.GetPayload())
			if err != nil {
				reason = strings.TrimPrefix(err.Error(), "attest: ")
				continue
			}
			st := ps.Statement
			if pt := st.GetPredicateType(); pt != attest.PredicateSLSAProvenanceV1 {
				reason = fmt.Sprintf("predicate type %q, not SLSA provenance %q", truncate(pt), attest.PredicateSLSAProvenanceV1)
				continue
			}
			if err := bindsTo(ps, e); err != nil {
				reason = err.Error()
				continue
			}
			ev.Signers = append(ev.Signers, k)
			ev.Signed = append(ev.Signed, attest.Signed{Key: k, Envelope: env, Statement: st})
			reason = ""
			break
		}
		if reason != "" {
			unbound = append(unbound, fmt.Sprintf("%s (%s)", k.Name, reason))
		}
	}
	if len(ev.Signers) >= threshold {
		return ev, nil
	}
	typeNote := ""
	if wrongType > 0 {
		typeNote = fmt.Sprintf("; %d envelopes are not counted: their payload type is not %q", wrongType, attest.InTotoPayloadType)
	}
	if len(signers) < threshold {
		names := "none"
		if len(signers) > 0 {
			names = strings.Join(signers, ", ")
		}
		return nil, &attest.VerificationError{Step: "signature", Err: fmt.Errorf("signed by %d of the %d keys (%s), %d needed%s", len(signers), len(trust.BuildKeys), names, threshold, typeNote)}
	}
	msg := fmt.Sprintf("%d of the build nodes attested the entry's spec and subjects, %d needed", len(ev.Signers), threshold)
	if len(unbound) > 0 {
		msg += ": " + strings.Join(unbound, "; ")
	}
	return nil, fail(errors.New(msg + typeNote))
}

// VerifyProof checks an artifact against a proof bundle, offline, under
// trust (a network policy, or keys given one by one):
//
//  1. checkpoint: signed by one of trust's log keys for trust.Origin and,
//     when trust has Cosigners, cosigned by CosignThreshold distinct ones
//     (final), for the bundle's tree size;
//  2. inclusion: the entry's leaf hash is in that tree at its index;
//  3. entry: [VerifyEntry];
//  4. the artifact, against exactly the statements VerifyEntry counted
//     (EntryEvidence.Signed; other envelopes of the entry are not judged),
//     with the steps of [attest.Verifier]: each is of o.PredicateType if
//     set, and at least trust.BuildThreshold of them carry the artifact's
//     digest in a subject; the entry's agreed subjects carry it too. The
//     evidence's Statement is one of those statements.
//
// Errors are those of [attest.Verifier.Verify]: a *attest.VerificationError
// (errors.Is attest.ErrNotVerified) when the evidence does not hold.
//
// A bundle that carries policy changes is refused: it is verified with the
// network's first policy, [VerifyProofChain].
func VerifyProof(ctx context.Context, a attest.Artifact, pb *ProofBundle, trust *policy.Trust, o ProofOptions) (*ProofEvidence, error) {
	if pb != nil && len(pb.PolicyChanges) > 0 {
		return nil, &attest.InputError{Err: fmt.Errorf("publish: the proof bundle carries %d policy changes: verify it with the network's first policy (publish.VerifyProofChain; pyrsia-build verify --policy FIRST)", len(pb.PolicyChanges))}
	}
	return verifyProof(ctx, a, pb, trust, trust, o)
}

// VerifyProofChain checks an artifact against a proof bundle, offline,
// given the network's first policy: it follows the bundle's policy
// changes, each proven included in the tree of the bundle's checkpoint
// and approved by a majority of the policy in force at its index
// ([policy.Chain]), then verifies as [VerifyProof] does, judging the
// checkpoint by the policy in force at its size and the entry by the
// policy in force at its index. A vote signed with a key that a change
// rotated out counts for nothing in an entry after the change.
//
// The bundle must carry every policy change below its tree size: one left
// out in the middle breaks the chain (the next change names another
// previous policy); the last ones left out make the verifier judge with
// an older policy, which a majority of that policy's keys would have had to
// sign (and cosign) for. ProofEvidence.Policy is the digest of the policy
// in force at the entry.
func VerifyProofChain(ctx context.Context, a attest.Artifact, pb *ProofBundle, first *policy.Policy, o ProofOptions) (*ProofEvidence, error) {
	if pb == nil {
		return nil, errors.New("publish: no proof bundle")
	}
	if first == nil {
		return nil, errors.New("publish: no network policy to verify with")
	}
	if o.LaterPolicy != "" {
		if err := checkDigest(o.LaterPolicy); err != nil {
			return nil, &attest.InputError{Err: fmt.Errorf("publish: the later policy: %w", err)}
		}
	}
	chain, applied, err := FollowBundle(pb, first)
	if err != nil {
		return nil, err
	}
	if o.LaterPolicy != "" {
		if _, ok := chain.From(o.LaterPolicy); !ok {
			cur, _ := chain.ForCheckpoint(pb.TreeSize)
			return nil, &attest.VerificationError{Step: "policy", Err: fmt.Errorf("the later policy %s is not the policy in force at the checkpoint, nor one before it (the bundle's changes lead to %s): the bundle leaves out the changes to it, or is of a fork signed by keys they rotated out", o.LaterPolicy, cur.Digest())}
		}
	}
	_, cpTrust := chain.ForCheckpoint(pb.TreeSize)
	inForce, entryTrust := chain.At(pb.Index)
	ev, err := verifyProof(ctx, a, pb, cpTrust, entryTrust, o)
	if err != nil {
		return nil, err
	}
	ev.Policy = inForce.Digest()
	ev.PolicyChanges = applied
	return ev, nil
}

// FollowBundle follows a proof bundle's policy changes from the network's
// first policy: each proven included in the tree of the bundle's
// checkpoint (whose signatures it does not check: judge the checkpoint
// with chain.ForCheckpoint(pb.TreeSize)) and applied to a chain in log
// order. It returns the chain and the indexes of the changes applied; the
// entry is judged by chain.At(pb.Index). Errors are
// *attest.VerificationError of step "policy" or "checkpoint", or an
// *attest.InputError for a first policy that is not valid.
func FollowBundle(pb *ProofBundle, first *policy.Policy) (*policy.Chain, []uint64, error) {
	chain, err := policy.NewChain(first)
	if err != nil {
		return nil, nil, &attest.InputError{Err: err}
	}
	fail := func(step string, err error) error { return &attest.VerificationError{Step: step, Err: err} }
	var applied []uint64
	if len(pb.PolicyChanges) > 0 {
		n, err := witness.OpenUnverified([]byte(pb.Checkpoint))
		if err != nil {
			return nil, nil, fail("checkpoint", err)
		}
		cp, err := witness.ParseCheckpointText([]byte(n.Text))
		if err != nil {
			return nil, nil, fail("checkpoint", err)
		}
		if cp.Size != pb.TreeSize {
			return nil, nil, fail("checkpoint", fmt.Errorf("checkpoint is for %d entries, the proof for %d", cp.Size, pb.TreeSize))
		}
		// The checkpoint's signatures are checked below, with the
		// policy these changes lead to: a change proven into a
		// checkpoint that the policy in force at its size did not sign
		// and cosign proves nothing.
		for _, c := range pb.PolicyChanges {
			if err := proof.VerifyInclusion(rfc6962.DefaultHasher, c.Index, pb.TreeSize, LeafHash(c.RawEntry), c.InclusionProof, cp.Hash); err != nil {
				return nil, nil, fail("policy", fmt.Errorf("policy change %d is not in the tree of %d entries: %w", c.Index, pb.TreeSize, err))
			}
			ch, err := ParsePolicyChange(c.RawEntry)
			if err != nil {
				return nil, nil, fail("policy", fmt.Errorf("log entry %d: %w", c.Index, trimPkg(err)))
			}
			if _, err := chain.Apply(c.Index, ch); err != nil {
				return nil, nil, fail("policy", fmt.Errorf("policy change at log index %d: %w", c.Index, err))
			}
			applied = append(applied, c.Index)
		}
	}
	return chain, applied, nil
}

// verifyProof is VerifyProof with the checkpoint judged by cpTrust and the
// entry by entryTrust.
func verifyProof(ctx context.Context, a attest.Artifact, pb *ProofBundle, cpTrust, trust *policy.Trust, o ProofOptions) (*ProofEvidence, error) {
	if cpTrust == nil || len(cpTrust.LogVerifiers) == 0 || trust == nil {
		return nil, errors.New("publish: no log key to check the checkpoint with")
	}
	if len(trust.BuildKeys) == 0 {
		return nil, errors.New("publish: no build node keys to check the attestations with")
	}
	if _, err := buildThreshold(trust); err != nil {
		return nil, err
	}
	if len(cpTrust.Cosigners) == 0 && !o.AllowUnwitnessed {
		return nil, ErrUnwitnessed
	}
	if pb == nil {
		return nil, errors.New("publish: no proof bundle")
	}
	fail := func(step string, err error) error { return &attest.VerificationError{Step: step, Err: err} }

	cp, cosigners, err := cpTrust.VerifyCheckpoint([]byte(pb.Checkpoint))
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
		return nil, fail("entry", trimPkg(err))
	}
	bound, err := VerifyEntry(ctx, entry, trust)
	if err != nil {
		return nil, err
	}
	// The artifact is judged against exactly the statements VerifyEntry
	// counted, one per build node: not against every envelope of the
	// entry, where one node's junk or other-typed envelope would fail a
	// verification that a majority's statements pass.
	ev, err := verifyBound(ctx, a, bound, trust.BuildThreshold, o.PredicateType)
	if err != nil {
		return nil, err
	}
	return &ProofEvidence{Evidence: ev, Entry: entry, Index: pb.Index, Checkpoint: cp, Cosigners: cosigners}, nil
}

// verifyBound runs the artifact steps of an [attest.Verifier] (statement
// predicate type, digest, subject) over the envelopes VerifyEntry bound to
// the entry, and checks that the entry's agreed subjects carry the
// artifact's digest too.
func verifyBound(ctx context.Context, a attest.Artifact, bound *EntryEvidence, threshold int, predicateType string) (*attest.Evidence, error) {
	if a.Open == nil {
		return nil, &attest.InputError{Err: errors.New("publish: nothing to verify: no artifact")}
	}
	ev := &attest.Evidence{Artifact: a, Signed: slices.Clone(bound.Signed), Signers: slices.Clone(bound.Signers)}
	for _, sd := range ev.Signed {
		ev.Envelopes = append(ev.Envelopes, sd.Envelope)
	}
	steps := []attest.Step{
		attest.StepFunc{StepName: "statement", Func: func(_ context.Context, ev *attest.Evidence) error {
			for _, sd := range ev.Signed {
				if predicateType != "" && sd.Statement.GetPredicateType() != predicateType {
					return fmt.Errorf("signed by %q: predicate type is %q, want %q", sd.Key.Name, sd.Statement.GetPredicateType(), predicateType)
				}
			}
			if len(ev.Signed) > 0 {
				ev.Statement = ev.Signed[0].Statement
			}
			return nil
		}},
		attest.DigestStep(),
		attest.SubjectStep(threshold),
		attest.StepFunc{StepName: "entry", Func: func(_ context.Context, ev *attest.Evidence) error {
			if !slices.ContainsFunc(bound.Entry.Subjects, func(s Subject) bool { return s.Digest == ev.DigestHex() }) {
				return fmt.Errorf("the log entry's agreed subjects do not include %s", ev.DigestHex())
			}
			return nil
		}},
	}
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := s.Check(ctx, ev); err != nil {
			var in *attest.InputError
			if errors.As(err, &in) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return nil, err
			}
			return nil, &attest.VerificationError{Step: s.Name(), Err: err}
		}
	}
	return ev, nil
}

// buildThreshold is trust's BuildThreshold, refused (fail closed) unless
// it is between 1 and the number of build keys: a Trust literal that leaves
// it 0 has not said how many build nodes must agree, and taking 0 as 1
// would let one node publish alone. [policy.NewTrust] and
// [policy.Policy.Trust] always set it.
func buildThreshold(trust *policy.Trust) (int, error) {
	if t := trust.BuildThreshold; t < 1 || t > len(trust.BuildKeys) {
		return 0, fmt.Errorf("publish: trust: build threshold %d with %d build node keys, want 1 to %d (make the Trust with policy.NewTrust, which sets a majority)", t, len(trust.BuildKeys), len(trust.BuildKeys))
	}
	return trust.BuildThreshold, nil
}

// trimPkg drops the "publish: entry: " prefix of an error that is wrapped
// in a verification error.
func trimPkg(err error) error {
	msg := err.Error()
	if t, ok := strings.CutPrefix(msg, "publish: entry: "); ok {
		return wrapMsg{t, err}
	}
	return err
}

// wrapMsg is an error with another message and the same chain.
type wrapMsg struct {
	msg string
	err error
}

func (w wrapMsg) Error() string { return w.msg }
func (w wrapMsg) Unwrap() error { return w.err }

// bindsTo checks that a signed statement is about the entry: its subjects
// are the entry's subjects, and its SLSA externalParameters.spec, in
// canonical form, is the entry's spec.
func bindsTo(ps *ParsedStatement, e *Entry) error {
	var subjects []Subject
	for _, s := range ps.Statement.GetSubject() {
		subjects = append(subjects, Subject{Name: s.GetName(), Digest: "sha256:" + strings.ToLower(s.GetDigest()["sha256"])})
	}
	slices.SortFunc(subjects, compareSubjects)
	want := slices.SortedFunc(slices.Values(e.Subjects), compareSubjects)
	if !slices.Equal(subjects, want) {
		return errors.New("other subjects")
	}
	if ps.SpecErr != nil {
		return ps.SpecErr
	}
	if !bytes.Equal(ps.Spec, e.Spec) {
		return errors.New("another spec")
	}
	return nil
}
