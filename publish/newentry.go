package publish

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/pyrsia/pyrsia-build/attest"
	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
)

// NewEntry makes the log entry that publishes what several build nodes
// attested: spec is the build spec as JSON (it is canonicalized; the input
// digest is the SHA-256 of the canonical form), envelopes are the nodes'
// DSSE envelopes. Every envelope's statement must name the same subjects
// (names and sha256 digests): those become the entry's agreed subjects.
// Signatures are not checked here; verifiers check them against the policy.
func NewEntry(ecosystem, coordinate string, spec []byte, envelopes []*dssepb.Envelope) (*Entry, error) {
	e, _, err := NewEntryWith(ecosystem, coordinate, spec, envelopes, NewEntryOptions{})
	return e, err
}

// NewEntryOptions change how [NewEntryWith] makes an entry.
type NewEntryOptions struct {
	// Statements, if set, is used instead of parsing each envelope's
	// payload: as [EntryOptions.Statements], a cache of this process's
	// own parses of the same bytes (quorum.VerifiedEnvelopes).
	Statements func(payload []byte) (*ParsedStatement, error)
}

// NewEntryWith is [NewEntry] with options. It also returns the entry's
// encoding ([Entry.MarshalBinary]), which it has checked as a reader will
// ([ParseEntry]): the bytes to append.
func NewEntryWith(ecosystem, coordinate string, spec []byte, envelopes []*dssepb.Envelope, o NewEntryOptions) (*Entry, []byte, error) {
	canon, err := CanonicalJSON(spec)
	if err != nil {
		return nil, nil, fmt.Errorf("publish: entry: spec: %w", err)
	}
	if len(envelopes) == 0 {
		return nil, nil, errors.New("publish: entry: no attestations")
	}
	parse := attest.ParseStatement
	if o.Statements != nil {
		parse = func(payload []byte) (*intoto.Statement, error) {
			ps, err := o.Statements(payload)
			if err != nil {
				return nil, err
			}
			return ps.Statement, nil
		}
	}
	var subjects []Subject
	for i, env := range envelopes {
		st, err := parse(env.GetPayload())
		if err != nil {
			return nil, nil, fmt.Errorf("publish: entry: attestation %d: %w", i+1, err)
		}
		var these []Subject
		for _, s := range st.GetSubject() {
			d, ok := s.GetDigest()["sha256"]
			if !ok {
				return nil, nil, fmt.Errorf("publish: entry: attestation %d: subject %q has no sha256 digest", i+1, s.GetName())
			}
			these = append(these, Subject{Name: s.GetName(), Digest: "sha256:" + strings.ToLower(d)})
		}
		slices.SortFunc(these, compareSubjects)
		if i == 0 {
			subjects = these
		} else if !slices.Equal(subjects, these) {
			return nil, nil, fmt.Errorf("publish: entry: attestation %d names other subjects than attestation 1: the builds disagree", i+1)
		}
	}
	sum := sha256.Sum256(canon)
	e := &Entry{
		InputDigest: "sha256:" + hex.EncodeToString(sum[:]),
		Ecosystem:   ecosystem,
		Coordinate:  coordinate,
		Spec:        json.RawMessage(canon),
		Subjects:    subjects,
		Envelopes:   envelopes,
	}
	// Check the whole entry as a reader will.
	b, err := e.MarshalBinary()
	if err != nil {
		return nil, nil, err
	}
	if _, err := ParseEntry(b); err != nil {
		return nil, nil, err
	}
	return e, b, nil
}
