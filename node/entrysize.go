package node

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/builder"
	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/quorum"
	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
)

// EntryTooLargeError is the reason a node votes "failed" for a build whose
// log entry could never be appended: with the attestations of a majority
// like its own, the entry would exceed the log's entry limit.
type EntryTooLargeError struct {
	InputDigest string
	// Size is the estimated size of the majority's entry; Limit the log's
	// (publish.MaxEntrySize); Attestations the majority's size;
	// Artifacts the build's.
	Size, Limit, Attestations, Artifacts int
}

func (e *EntryTooLargeError) Error() string {
	return fmt.Sprintf("its log entry would be too large: about %d bytes with %d artifacts and the attestations of a majority (%d), over the log's %d byte limit; publish fewer artifacts (recipe.maven.artifacts) or split the build",
		e.Size, e.Artifacts, e.Attestations, e.Limit)
}

// The entry's encoding (publish.Entry.MarshalBinary: log entry v1), kept
// here to measure an entry over the limit, which MarshalBinary refuses to
// encode. TestEntrySizeMatchesMarshalBinary keeps the two equal.
type sizeEntry struct {
	V           int               `json:"v"`
	Kind        string            `json:"kind"`
	InputDigest string            `json:"inputDigest"`
	Ecosystem   string            `json:"ecosystem"`
	Coordinate  string            `json:"coordinate"`
	Spec        json.RawMessage   `json:"spec"`
	Subjects    []publish.Subject `json:"subjects"`
	Envelopes   []sizeEnvelope    `json:"envelopes"`
}

type sizeEnvelope struct {
	PayloadType string          `json:"payloadType"`
	Payload     []byte          `json:"payload"`
	Signatures  []sizeSignature `json:"signatures"`
}

type sizeSignature struct {
	KeyID string `json:"keyid,omitempty"`
	Sig   []byte `json:"sig"`
}

// encodedEntrySize is the length of the log entry of the given parts.
func encodedEntrySize(input, ecosystem, coordinate string, canon []byte, subjects []publish.Subject, envs []*dssepb.Envelope) (int, error) {
	w := sizeEntry{V: publish.EntryVersion, Kind: publish.KindPublish, InputDigest: input, Ecosystem: ecosystem, Coordinate: coordinate, Spec: canon, Subjects: subjects}
	for _, env := range envs {
		se := sizeEnvelope{PayloadType: env.GetPayloadType(), Payload: env.GetPayload()}
		for _, s := range env.GetSignatures() {
			se.Signatures = append(se.Signatures, sizeSignature{KeyID: s.GetKeyid(), Sig: s.GetSig()})
		}
		w.Envelopes = append(w.Envelopes, se)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(w); err != nil {
		return 0, err
	}
	return buf.Len() - 1, nil
}

// majorityEntrySize estimates the size of the log entry that threshold
// nodes' attestations like env (this node's) would make: this node's
// envelope and threshold-1 others of its size, each with room for a
// longer node name (the builder id; the longest of names), longer
// timestamps and the longest signature. It returns an
// *EntryTooLargeError when that is over publish.MaxEntrySize.
func majorityEntrySize(input, ecosystem, coordinate string, canon []byte, subjects []publish.Subject, env *dssepb.Envelope, threshold int, ownName string, names []string) (int, error) {
	longest := len(ownName)
	for _, n := range names {
		longest = max(longest, len(n))
	}
	// Two RFC 3339 timestamps may each carry up to 9 more fraction
	// digits; a P-256 signature is at most 72 bytes of DER.
	slack := longest - len(ownName) + 18
	envs := []*dssepb.Envelope{env}
	for range threshold - 1 {
		other := &dssepb.Envelope{PayloadType: env.GetPayloadType(), Payload: make([]byte, len(env.GetPayload())+slack)}
		for _, s := range env.GetSignatures() {
			other.Signatures = append(other.Signatures, &dssepb.Signature{Keyid: s.GetKeyid(), Sig: make([]byte, max(72, len(s.GetSig())))})
		}
		envs = append(envs, other)
	}
	size, err := encodedEntrySize(input, ecosystem, coordinate, canon, subjects, envs)
	if err != nil {
		return 0, err
	}
	if size > publish.MaxEntrySize {
		return size, &EntryTooLargeError{InputDigest: input, Size: size, Limit: publish.MaxEntrySize, Attestations: threshold, Artifacts: len(subjects)}
	}
	return size, nil
}

// checkEntrySize refuses a build whose majority's entry could not be
// appended (see majorityEntrySize).
func (n *Node) checkEntrySize(req *quorum.BuildRequest, spec *builder.Spec, b *Build) error {
	env := b.Bundle.Envelope()
	st, err := attest.ParseStatement(env.GetPayload())
	if err != nil {
		return fmt.Errorf("node: this node's attestation of %s: %w", req.InputDigest, err)
	}
	var subjects []publish.Subject
	for _, s := range st.GetSubject() {
		subjects = append(subjects, publish.Subject{Name: s.GetName(), Digest: "sha256:" + strings.ToLower(s.GetDigest()["sha256"])})
	}
	slices.SortFunc(subjects, func(a, b publish.Subject) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Digest, b.Digest))
	})
	return n.checkEntrySizeOf(req, spec, b, subjects)
}

// checkEntrySizeOf is checkEntrySize with the attestation's subjects,
// sorted, known (a vote's: quorum.Vote.Subjects).
func (n *Node) checkEntrySizeOf(req *quorum.BuildRequest, spec *builder.Spec, b *Build, subjects []publish.Subject) error {
	env := b.Bundle.Envelope()
	_, err := majorityEntrySize(req.InputDigest, spec.Ecosystem, spec.Coordinate, req.Spec, subjects, env, n.net().Threshold(), n.o.Keys.Name, n.cur.Load().members)
	return err
}
