package publish

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"unicode/utf8"

	"github.com/pyrsia/pyrsia-build/publish/witness"
)

// ProofBundleMediaType is the media type of a proof bundle, its "mediaType"
// field: version 1, a bundle without policy changes.
const ProofBundleMediaType = "application/vnd.pyrsia.proof-bundle.v1+json"

// ProofBundleV2MediaType is the media type of a proof bundle that carries
// the log's policy changes ([ProofBundle.PolicyChanges]). A bundle without
// them is written as version 1, which verifiers of earlier builds read.
const ProofBundleV2MediaType = "application/vnd.pyrsia.proof-bundle.v2+json"

// Limits of a proof bundle.
const (
	// MaxProofHashes bounds the inclusion proof: a tree of 2^64 leaves
	// needs no more.
	MaxProofHashes = 64
	// MaxCheckpointSize bounds the checkpoint note with its signatures
	// and cosignatures: witness's limit, the one for checkpoints
	// everywhere.
	MaxCheckpointSize = witness.MaxCheckpointSize
	// MaxProofBundleSize bounds the encoding of a proof bundle: an entry
	// and MaxPolicyChanges policy changes of MaxEntrySize in base64, with
	// their proofs, and a checkpoint.
	MaxProofBundleSize = 8 << 20
	// MaxPolicyChanges bounds the policy changes a bundle carries.
	MaxPolicyChanges = 64
)

// hashSize is the size of a SHA-256 Merkle tree hash.
const hashSize = 32

// ProofBundle is what a verifier needs, besides the artifact and the network
// policy, to check offline that an entry is in the log: the entry's exact
// bytes, its index, an RFC 6962 inclusion proof into the tree of TreeSize
// leaves, and the checkpoint for that tree with its cosignatures. The DSSE
// envelopes inside the entry are the attestations.
//
// This package checks a bundle's shape only; it verifies no proof and no
// signature.
type ProofBundle struct {
	// MediaType is ProofBundleMediaType. MarshalJSON fills it in when
	// empty.
	MediaType string
	// RawEntry is the entry exactly as the log stores it; see
	// [ProofBundle.Entry].
	RawEntry []byte
	// Index is the entry's position in the log, from 0.
	Index uint64
	// TreeSize is the size of the tree the proof and checkpoint are for.
	TreeSize uint64
	// InclusionProof holds the 32-byte hashes of the RFC 6962 inclusion
	// proof of LeafHash(RawEntry) at Index, lowest level first.
	InclusionProof [][]byte
	// Checkpoint is the signed note of the tree of TreeSize leaves (C2SP
	// tlog-checkpoint), with the build nodes' cosignatures.
	Checkpoint string
	// PolicyChanges are the log's policy change entries below TreeSize,
	// each with its inclusion proof into the same tree, in log order: a
	// verifier given the network's first policy follows them to the
	// policy in force at Index (for the entry) and at TreeSize (for the
	// checkpoint). Empty when the policy never changed (version 1).
	PolicyChanges []PolicyChangeProof
}

// PolicyChangeProof is a policy change entry of the log with its RFC 6962
// inclusion proof into the tree of the bundle's TreeSize.
type PolicyChangeProof struct {
	Index          uint64
	RawEntry       []byte
	InclusionProof [][]byte
}

type wireBundle struct {
	MediaType      string            `json:"mediaType"`
	Entry          []byte            `json:"entry"`
	Index          uint64            `json:"index"`
	TreeSize       uint64            `json:"treeSize"`
	InclusionProof [][]byte          `json:"inclusionProof"`
	Checkpoint     string            `json:"checkpoint"`
	PolicyChanges  []wirePolicyProof `json:"policyChanges,omitempty"`
}

type wirePolicyProof struct {
	Index          uint64   `json:"index"`
	Entry          []byte   `json:"entry"`
	InclusionProof [][]byte `json:"inclusionProof"`
}

// Entry parses the bundle's entry with [ParseEntry].
func (p *ProofBundle) Entry() (*Entry, error) {
	return ParseEntry(p.RawEntry)
}

// MarshalJSON encodes the bundle as compact JSON with the fields in a fixed
// order and bytes in padded standard base64. It checks the bundle's shape as
// ParseProofBundle does and fails on a bundle that ParseProofBundle would
// reject.
func (p ProofBundle) MarshalJSON() ([]byte, error) {
	if p.MediaType == "" {
		p.MediaType = ProofBundleMediaType
		if len(p.PolicyChanges) > 0 {
			p.MediaType = ProofBundleV2MediaType
		}
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	w := wireBundle{
		MediaType:      p.MediaType,
		Entry:          p.RawEntry,
		Index:          p.Index,
		TreeSize:       p.TreeSize,
		InclusionProof: p.InclusionProof,
		Checkpoint:     p.Checkpoint,
	}
	if w.InclusionProof == nil {
		w.InclusionProof = [][]byte{}
	}
	for _, c := range p.PolicyChanges {
		wc := wirePolicyProof{Index: c.Index, Entry: c.RawEntry, InclusionProof: c.InclusionProof}
		if wc.InclusionProof == nil {
			wc.InclusionProof = [][]byte{}
		}
		w.PolicyChanges = append(w.PolicyChanges, wc)
	}
	b, err := marshalJSON(w)
	if err != nil {
		return nil, fmt.Errorf("publish: proof bundle: encoding: %w", err)
	}
	if len(b) > MaxProofBundleSize {
		return nil, fmt.Errorf("publish: proof bundle: encoding is %d bytes, over the %d byte limit", len(b), MaxProofBundleSize)
	}
	return b, nil
}

// IsProofBundle reports whether data starts with a JSON object whose
// mediaType is [ProofBundleMediaType], whatever follows it: it tells a proof
// bundle from a Sigstore bundle, so that a damaged proof bundle (trailing
// data, say) gets ParseProofBundle's error rather than another parser's.
func IsProofBundle(data []byte) bool {
	var probe struct {
		MediaType string `json:"mediaType"`
	}
	return json.NewDecoder(bytes.NewReader(data)).Decode(&probe) == nil && (probe.MediaType == ProofBundleMediaType || probe.MediaType == ProofBundleV2MediaType)
}

// ParseProofBundle decodes a proof bundle and checks its shape strictly: the
// media type, no unknown fields or trailing data, base64 that decodes, an
// entry within MaxEntrySize, Index < TreeSize, an inclusion proof of 32-byte
// hashes as long as RFC 6962 requires for Index and TreeSize, a checkpoint
// for TreeSize, and the canonical encoding: MarshalJSON of the result gives
// back b exactly. A single trailing newline, as a file usually ends, is
// allowed and is not part of the canonical encoding.
//
// ParseProofBundle does not parse the entry (see [ProofBundle.Entry]) and
// verifies no proof and no signature.
func ParseProofBundle(b []byte) (*ProofBundle, error) {
	if len(b) > MaxProofBundleSize {
		return nil, fmt.Errorf("publish: proof bundle: %d bytes is over the %d byte limit", len(b), MaxProofBundleSize)
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	if len(b) == 0 {
		return nil, errors.New("publish: proof bundle: empty")
	}
	if !utf8.Valid(b) {
		return nil, errors.New("publish: proof bundle: not valid UTF-8")
	}
	// A first, loose pass names the field that is wrong, which the
	// strict decoder reports only as a position.
	var probe struct {
		MediaType      *json.RawMessage `json:"mediaType"`
		Entry          *json.RawMessage `json:"entry"`
		InclusionProof *json.RawMessage `json:"inclusionProof"`
	}
	if err := decodeOne(b, &probe, false); err != nil {
		return nil, fmt.Errorf("publish: proof bundle: %w", err)
	}
	var mt string
	if probe.MediaType == nil {
		return nil, errors.New("publish: proof bundle: missing mediaType (not a proof bundle?)")
	}
	if err := json.Unmarshal(*probe.MediaType, &mt); err != nil || mt != ProofBundleMediaType && mt != ProofBundleV2MediaType {
		return nil, fmt.Errorf("publish: proof bundle: media type %s, want %q (or %q)", truncate(string(*probe.MediaType)), ProofBundleMediaType, ProofBundleV2MediaType)
	}
	if probe.Entry != nil {
		if err := checkBase64(*probe.Entry); err != nil {
			return nil, fmt.Errorf("publish: proof bundle: entry: %w", err)
		}
	}
	if probe.InclusionProof != nil {
		var hashes []json.RawMessage
		if err := json.Unmarshal(*probe.InclusionProof, &hashes); err != nil {
			return nil, errors.New("publish: proof bundle: inclusionProof is not a list of base64 strings")
		}
		if len(hashes) > MaxProofHashes {
			return nil, fmt.Errorf("publish: proof bundle: inclusion proof has %d hashes, more than %d", len(hashes), MaxProofHashes)
		}
		for i, h := range hashes {
			if err := checkBase64(h); err != nil {
				return nil, fmt.Errorf("publish: proof bundle: inclusion proof hash %d: %w", i, err)
			}
		}
	}

	var w wireBundle
	if err := decodeOne(b, &w, true); err != nil {
		return nil, fmt.Errorf("publish: proof bundle: %w", err)
	}
	p := &ProofBundle{
		MediaType:      w.MediaType,
		RawEntry:       w.Entry,
		Index:          w.Index,
		TreeSize:       w.TreeSize,
		InclusionProof: w.InclusionProof,
		Checkpoint:     w.Checkpoint,
	}
	for _, c := range w.PolicyChanges {
		p.PolicyChanges = append(p.PolicyChanges, PolicyChangeProof{Index: c.Index, RawEntry: c.Entry, InclusionProof: c.InclusionProof})
	}
	canon, err := p.MarshalJSON()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(canon, b) {
		return nil, errors.New("publish: proof bundle: not in canonical form (reformatted? whitespace, field order, escaping or base64 differ from what MarshalJSON writes)")
	}
	return p, nil
}

// check checks the bundle's shape.
func (p *ProofBundle) check() error {
	switch {
	case p.MediaType == ProofBundleMediaType && len(p.PolicyChanges) > 0:
		return fmt.Errorf("publish: proof bundle: media type %q carries no policy changes (a bundle with them is %q)", ProofBundleMediaType, ProofBundleV2MediaType)
	case p.MediaType == ProofBundleV2MediaType && len(p.PolicyChanges) == 0:
		return fmt.Errorf("publish: proof bundle: media type %q without policy changes (a bundle without them is %q)", ProofBundleV2MediaType, ProofBundleMediaType)
	case p.MediaType != ProofBundleMediaType && p.MediaType != ProofBundleV2MediaType:
		return fmt.Errorf("publish: proof bundle: media type %q, want %q", truncate(p.MediaType), ProofBundleMediaType)
	}
	if len(p.PolicyChanges) > MaxPolicyChanges {
		return fmt.Errorf("publish: proof bundle: %d policy changes, more than %d", len(p.PolicyChanges), MaxPolicyChanges)
	}
	for i, c := range p.PolicyChanges {
		f := fmt.Sprintf("publish: proof bundle: policy change %d (index %d)", i, c.Index)
		switch {
		case i > 0 && c.Index <= p.PolicyChanges[i-1].Index:
			return fmt.Errorf("%s: not after the one before (index %d): policy changes are listed once each, in log order", f, p.PolicyChanges[i-1].Index)
		case c.Index >= p.TreeSize:
			return fmt.Errorf("%s: not in a tree of size %d", f, p.TreeSize)
		case c.Index == p.Index:
			return fmt.Errorf("%s: the bundle's entry is at that index", f)
		case len(c.RawEntry) == 0:
			return fmt.Errorf("%s: missing entry", f)
		case len(c.RawEntry) > MaxEntrySize:
			return fmt.Errorf("%s: entry is %d bytes, over the %d byte limit", f, len(c.RawEntry), MaxEntrySize)
		}
		for j, h := range c.InclusionProof {
			if len(h) != hashSize {
				return fmt.Errorf("%s: inclusion proof hash %d is %d bytes, want %d", f, j, len(h), hashSize)
			}
		}
		if want := InclusionProofLen(c.Index, p.TreeSize); len(c.InclusionProof) != want {
			return fmt.Errorf("%s: inclusion proof has %d hashes, want %d in a tree of size %d", f, len(c.InclusionProof), want, p.TreeSize)
		}
	}
	if len(p.RawEntry) == 0 {
		return errors.New("publish: proof bundle: missing entry")
	}
	if len(p.RawEntry) > MaxEntrySize {
		return fmt.Errorf("publish: proof bundle: entry is %d bytes, over the %d byte limit", len(p.RawEntry), MaxEntrySize)
	}
	if p.TreeSize == 0 {
		return errors.New("publish: proof bundle: tree size is 0 (an empty tree includes no entry)")
	}
	if p.Index >= p.TreeSize {
		return fmt.Errorf("publish: proof bundle: index %d is not in a tree of size %d", p.Index, p.TreeSize)
	}
	if len(p.InclusionProof) > MaxProofHashes {
		return fmt.Errorf("publish: proof bundle: inclusion proof has %d hashes, more than %d", len(p.InclusionProof), MaxProofHashes)
	}
	for i, h := range p.InclusionProof {
		if len(h) != hashSize {
			return fmt.Errorf("publish: proof bundle: inclusion proof hash %d is %d bytes, want %d", i, len(h), hashSize)
		}
	}
	if want := InclusionProofLen(p.Index, p.TreeSize); len(p.InclusionProof) != want {
		return fmt.Errorf("publish: proof bundle: inclusion proof has %d hashes, want %d for index %d in a tree of size %d", len(p.InclusionProof), want, p.Index, p.TreeSize)
	}
	return checkCheckpointShape(p.Checkpoint, p.TreeSize)
}

// InclusionProofLen returns the number of hashes in the RFC 6962 inclusion
// proof of leaf index in a tree of size leaves (index < size).
func InclusionProofLen(index, size uint64) int {
	inner := bits.Len64(index ^ (size - 1))
	return inner + bits.OnesCount64(index>>inner)
}

// checkCheckpointShape checks that cp is a signed note of a C2SP
// tlog-checkpoint for a tree of treeSize leaves, with witness's parser. It
// checks no signature.
func checkCheckpointShape(cp string, treeSize uint64) error {
	if cp == "" {
		return errors.New("publish: proof bundle: missing checkpoint")
	}
	n, err := witness.OpenUnverified([]byte(cp))
	if err != nil {
		return fmt.Errorf("publish: proof bundle: checkpoint: %s", strings.TrimPrefix(err.Error(), "witness: "))
	}
	c, err := witness.ParseCheckpointText([]byte(n.Text))
	if err != nil {
		return fmt.Errorf("publish: proof bundle: checkpoint: %s", strings.TrimPrefix(err.Error(), "witness: "))
	}
	if c.Size != treeSize {
		return fmt.Errorf("publish: proof bundle: checkpoint is for a tree of size %d, the proof for size %d", c.Size, treeSize)
	}
	return nil
}

// checkBase64 checks that raw is a JSON string in padded standard base64.
func checkBase64(raw json.RawMessage) error {
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return errors.New("not a base64 string")
	}
	if _, err := base64.StdEncoding.Strict().DecodeString(s); err != nil {
		return fmt.Errorf("not valid base64: %w", err)
	}
	return nil
}
