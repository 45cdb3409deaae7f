package publish

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pyrsia/pyrsia-build/publish/policy"
)

// KindPolicy is the kind of an entry that changes the network's policy:
// a [policy.Change] (the new policy, the digest of the policy it replaces,
// the approvals of the build nodes of that policy). Encode one with
// [MarshalPolicyChange], read one with [ParsePolicyChange].
const KindPolicy = "policy"

// ErrNotPublish is wrapped by [ParseEntry]'s error for an entry that is
// not a publish entry: a policy change, or a kind this build does not know
// (which wraps [ErrUnknownKind] too). A reader that wants only the
// artifacts may skip such entries; use errors.Is.
var ErrNotPublish = errors.New("publish: entry: not a publish entry")

// KindError is the error of [ParseEntry] for an entry of another kind
// than [KindPublish]. It matches [ErrNotPublish], and [ErrUnknownKind]
// when this build does not know the kind.
type KindError struct {
	Kind string
}

func (e *KindError) known() bool { return e.Kind == KindPolicy }

func (e *KindError) Error() string {
	if e.known() {
		return fmt.Sprintf("publish: entry: kind %q, not a publish entry (read it with publish.ParsePolicyChange)", e.Kind)
	}
	return fmt.Sprintf("%v %q (this build knows %q and %q; upgrade pyrsia-build?)", ErrUnknownKind, truncate(e.Kind), KindPublish, KindPolicy)
}

func (e *KindError) Is(target error) bool {
	return target == ErrNotPublish || target == ErrUnknownKind && !e.known()
}

// EntryKind returns the kind of an entry of version [EntryVersion]
// without checking the rest of it: [KindPublish], [KindPolicy], or another
// kind a later version may add. It fails on bytes that are not a JSON
// object with "v" 1 and a string "kind".
func EntryKind(b []byte) (string, error) {
	if err := checkEntryBytes(b); err != nil {
		return "", err
	}
	var probe struct {
		V    *json.RawMessage `json:"v"`
		Kind *json.RawMessage `json:"kind"`
	}
	if err := decodeOne(b, &probe, false); err != nil {
		return "", fmt.Errorf("publish: entry: %w", err)
	}
	if probe.V == nil {
		return "", errors.New(`publish: entry: missing version field "v"`)
	}
	if string(*probe.V) != "1" {
		return "", fmt.Errorf("%w %s (this build reads version %d; upgrade pyrsia-build?)", ErrUnsupportedVersion, *probe.V, EntryVersion)
	}
	if probe.Kind == nil {
		return "", errors.New(`publish: entry: missing field "kind"`)
	}
	var kind string
	if err := json.Unmarshal(*probe.Kind, &kind); err != nil {
		return "", fmt.Errorf("publish: entry: kind is %s, not a string", *probe.Kind)
	}
	return kind, nil
}

// LogEntryKind is the kind by which [CheckLogEntry] judges an entry:
// [KindPublish] for bytes that start as a canonical publish entry does,
// without a scan of the rest, else [EntryKind]'s. Such bytes are judged as
// a publish entry whatever follows ([ParseEntry] checks all of it and
// refuses them unless they are one): they are never applied as a policy
// change, so a caller that must tell policy changes apart (to check them
// in order) may ask this instead of EntryKind.
func LogEntryKind(b []byte) (string, error) { return entryKind(b) }

// entryKind is the kind by which an entry is to be parsed: [KindPublish]
// for bytes that start as a canonical publish entry does, without a scan
// of the rest ([ParseEntry] checks all of it), else [EntryKind]'s.
func entryKind(b []byte) (string, error) {
	if bytes.HasPrefix(b, publishPrefix) {
		return KindPublish, nil
	}
	return EntryKind(b)
}

// wirePolicyEntry is the JSON form of a policy change entry, fields in
// the encoding's order.
type wirePolicyEntry struct {
	V         int             `json:"v"`
	Kind      string          `json:"kind"`
	Previous  string          `json:"previous"`
	Policy    json.RawMessage `json:"policy"`
	Approvals []wireApproval  `json:"approvals"`
}

type wireApproval struct {
	KeyID string `json:"keyid"`
	Sig   []byte `json:"sig"`
}

// MarshalPolicyChange encodes a change as the log entry of kind
// [KindPolicy]: compact JSON, fields in this order: "v" (1), "kind"
// ("policy"), "previous" (the digest of the policy replaced), "policy"
// (the new policy's canonical JSON, [policy.Policy.Marshal]) and
// "approvals" ([{"keyid", "sig"}], sorted by keyid; sig in padded standard
// base64). It checks the change's shape ([policy.Change.CheckShape]), not
// its approvals: an unapproved change (a proposal) encodes too. c is not
// modified.
func MarshalPolicyChange(c *policy.Change) ([]byte, error) {
	if err := c.CheckShape(); err != nil {
		return nil, fmt.Errorf("publish: policy change: %w", err)
	}
	pb, err := c.New.Marshal()
	if err != nil {
		return nil, fmt.Errorf("publish: policy change: %w", err)
	}
	w := wirePolicyEntry{V: EntryVersion, Kind: KindPolicy, Previous: c.Previous, Policy: pb, Approvals: []wireApproval{}}
	for _, a := range c.Approvals {
		w.Approvals = append(w.Approvals, wireApproval{KeyID: a.KeyID, Sig: a.Sig})
	}
	slices.SortFunc(w.Approvals, func(a, b wireApproval) int { return strings.Compare(a.KeyID, b.KeyID) })
	b, err := marshalJSON(w)
	if err != nil {
		return nil, fmt.Errorf("publish: policy change: encoding: %w", err)
	}
	if len(b) > MaxEntrySize {
		return nil, fmt.Errorf("publish: policy change: the entry is %d bytes, over the log's %d byte entry limit (the new policy is too large to be put in the log: fewer requester keys?)", len(b), MaxEntrySize)
	}
	return b, nil
}

// ParsePolicyChange decodes a log entry of kind [KindPolicy] and checks
// it strictly: version [EntryVersion], no unknown fields or trailing data,
// a new policy that [policy.Parse] accepts, in canonical form, the shape
// of the change ([policy.Change.CheckShape]: a previous digest other than
// the new policy's, no key approving twice), and the canonical encoding:
// [MarshalPolicyChange] of the result gives back b exactly. It checks no
// signature: [policy.Change.Check] judges the approvals against the policy
// in force.
func ParsePolicyChange(b []byte) (*policy.Change, error) {
	kind, err := EntryKind(b)
	if err != nil {
		return nil, err
	}
	if kind != KindPolicy {
		return nil, fmt.Errorf("publish: policy change: the entry is of kind %q, not %q", truncate(kind), KindPolicy)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, b); err == nil && compact.Len() != len(b) {
		return nil, errors.New("publish: policy change: not in canonical form (whitespace between JSON tokens: was it reformatted?)")
	}
	var w wirePolicyEntry
	if err := decodeOne(b, &w, true); err != nil {
		return nil, fmt.Errorf("publish: policy change: %w", err)
	}
	if len(w.Policy) == 0 || w.Policy[0] != '{' {
		return nil, errors.New(`publish: policy change: "policy" is not a JSON object (the new policy's canonical JSON)`)
	}
	p, err := policy.Parse(w.Policy)
	if err != nil {
		return nil, fmt.Errorf("publish: policy change: the new policy: %w", err)
	}
	c := &policy.Change{Previous: w.Previous, New: p}
	for _, a := range w.Approvals {
		c.Approvals = append(c.Approvals, policy.Approval{KeyID: a.KeyID, Sig: a.Sig})
	}
	canon, err := MarshalPolicyChange(c)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(canon, b) {
		why := "whitespace, field order, escaping or base64 differ from what MarshalPolicyChange writes"
		if pc, _ := p.Marshal(); !bytes.Equal(pc, w.Policy) {
			why = "the new policy is not in its canonical form (keys sorted, nodes sorted by name: policy.Policy.Marshal)"
		} else if !slices.IsSortedFunc(w.Approvals, func(a, b wireApproval) int { return strings.Compare(a.KeyID, b.KeyID) }) {
			why = "approvals are not sorted by keyid"
		}
		return nil, fmt.Errorf("publish: policy change: not in canonical form (%s)", why)
	}
	return c, nil
}
