package publish

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/pyrsia/pyrsia-build/attest"
	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"github.com/transparency-dev/merkle/rfc6962"
)

// EntryVersion is the version of the log entry encoding this package reads
// and writes, the "v" field of every entry.
const EntryVersion = 1

// KindPublish is the kind of an entry that publishes an artifact, the
// "kind" field of the entry. [ParseEntry] reads entries of this kind only:
// a policy change ([KindPolicy]) gives an error that matches
// [ErrNotPublish], a kind this build does not know one that matches
// [ErrUnknownKind] (and ErrNotPublish) too.
const KindPublish = "publish"

// MaxEntrySize bounds the encoding of one log entry: 65535 bytes, the most
// a C2SP tlog-tiles entry bundle can hold (each entry is prefixed by a
// 16-bit length). A majority of ~15 build nodes' envelopes fits easily.
const MaxEntrySize = 1<<16 - 1

// Ecosystems an entry may name.
const (
	EcosystemOCI   = "oci"
	EcosystemMaven = "maven"
)

// ErrUnknownKind is returned (wrapped) by [ParseEntry] for an entry whose
// kind this build does not know. A reader that follows the log may skip such
// entries; use errors.Is.
var ErrUnknownKind = errors.New("publish: entry: unknown kind")

// ErrUnsupportedVersion is returned (wrapped) by [ParseEntry] for an entry
// whose version this build does not read; use errors.Is.
var ErrUnsupportedVersion = errors.New("publish: entry: unsupported version")

// Subject is one artifact an entry publishes: a name (an OCI image
// reference's repository, a Maven file name) and its digest,
// "sha256:<64 lowercase hex>".
type Subject struct {
	Name   string `json:"name"`
	Digest string `json:"digest"`
}

// Entry is a log entry of kind [KindPublish], version [EntryVersion]: an
// input digest, the build spec it is the digest of, the subjects a majority
// of build nodes agreed on, and their DSSE envelopes. The entry certifies
// itself: a verifier checks the envelopes' signatures against the network
// policy and trusts no log operator.
//
// The log stores the bytes of [Entry.MarshalBinary]; the leaf hash is
// [LeafHash] of those bytes.
type Entry struct {
	// InputDigest is "sha256:<64 lowercase hex>", the digest of the build
	// spec's canonical JSON.
	InputDigest string
	// Ecosystem is [EcosystemOCI] or [EcosystemMaven].
	Ecosystem string
	// Coordinate names the artifact in its ecosystem: "name:tag" for OCI,
	// "groupId:artifactId:version" for Maven.
	Coordinate string
	// Spec is the build spec as canonical JSON (see [CanonicalJSON]): an
	// object, keys sorted, no insignificant whitespace.
	Spec json.RawMessage
	// Subjects are the agreed artifacts: at least one, no two alike.
	// MarshalBinary writes them sorted by name, then digest.
	Subjects []Subject
	// Envelopes are the majority's DSSE envelopes: at least one, no two
	// alike. MarshalBinary writes them sorted by the SHA-256 of their
	// encoding, and the signatures inside each sorted by key id, then
	// signature bytes.
	Envelopes []*dssepb.Envelope
}

// wireEntry is the JSON form of an entry. The field order is the encoding's
// field order: version first, so that a reader can tell versions apart.
type wireEntry struct {
	V           int             `json:"v"`
	Kind        string          `json:"kind"`
	InputDigest string          `json:"inputDigest"`
	Ecosystem   string          `json:"ecosystem"`
	Coordinate  string          `json:"coordinate"`
	Spec        json.RawMessage `json:"spec"`
	Subjects    []Subject       `json:"subjects"`
	Envelopes   []wireEnvelope  `json:"envelopes"`
}

type wireEnvelope struct {
	PayloadType string          `json:"payloadType"`
	Payload     []byte          `json:"payload"`
	Signatures  []wireSignature `json:"signatures"`
}

type wireSignature struct {
	KeyID string `json:"keyid,omitempty"`
	Sig   []byte `json:"sig"`
}

// MarshalBinary encodes the entry as the bytes the log stores: compact JSON
// with the fields in a fixed order, "v" first, bytes in padded standard
// base64, subjects and envelopes sorted. The same entry always gives the
// same bytes, whatever the order of its slices. e is not modified.
func (e *Entry) MarshalBinary() ([]byte, error) {
	w, err := e.wire()
	if err != nil {
		return nil, err
	}
	b := appendEntry(make([]byte, 0, encodedSizeHint(w)), w)
	if len(b) > MaxEntrySize {
		return nil, fmt.Errorf("publish: entry: encoding is %d bytes, over the %d byte limit", len(b), MaxEntrySize)
	}
	return b, nil
}

// SpecDigest returns "sha256:<hex>" of e.Spec. An entry's InputDigest must
// equal it ([CheckInputDigest]).
func (e *Entry) SpecDigest() string {
	sum := sha256.Sum256(e.Spec)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// ErrInputMismatch is returned for an entry whose input digest is not the
// SHA-256 of its spec. Use errors.Is.
var ErrInputMismatch = errors.New("publish: entry: input digest is not the sha256 of the spec")

// CheckInputDigest checks that e's InputDigest is its [Entry.SpecDigest]:
// an entry is found by its input digest (the index, a node's "already
// published" check), so an entry filed under another spec's input digest
// would answer for a build it is not. [ParseEntry], [Entry.MarshalBinary],
// [VerifyEntry] and the index check it.
func CheckInputDigest(e *Entry) error {
	if got := e.SpecDigest(); got != e.InputDigest {
		return fmt.Errorf("%w: the entry's input digest %s is not the sha256 of its spec (%s)", ErrInputMismatch, e.InputDigest, got)
	}
	return nil
}

// wire checks e and returns its JSON form, sorted.
func (e *Entry) wire() (*wireEntry, error) {
	if e == nil {
		return nil, errors.New("publish: entry: nil entry")
	}
	if err := checkDigest(e.InputDigest); err != nil {
		return nil, fmt.Errorf("publish: entry: input digest: %w", err)
	}
	if err := checkCoordinate(e.Ecosystem, e.Coordinate); err != nil {
		return nil, err
	}
	if err := checkSpec(e.Spec); err != nil {
		return nil, err
	}
	if err := CheckInputDigest(e); err != nil {
		return nil, err
	}
	if err := CheckLabels(e); err != nil {
		return nil, err
	}
	if len(e.Subjects) == 0 {
		return nil, errors.New("publish: entry: no subjects (an entry publishes at least one artifact)")
	}
	subjects := slices.Clone(e.Subjects)
	for i, s := range subjects {
		if err := checkName(s.Name); err != nil {
			return nil, fmt.Errorf("publish: entry: subject %d: name: %w", i, err)
		}
		if err := checkDigest(s.Digest); err != nil {
			return nil, fmt.Errorf("publish: entry: subject %d (%q): digest: %w", i, s.Name, err)
		}
	}
	slices.SortFunc(subjects, compareSubjects)
	for i := 1; i < len(subjects); i++ {
		if subjects[i] == subjects[i-1] {
			return nil, fmt.Errorf("publish: entry: subject %q %s is listed twice", subjects[i].Name, subjects[i].Digest)
		}
	}

	if len(e.Envelopes) == 0 {
		return nil, errors.New("publish: entry: no envelopes (an entry carries the majority's signed attestations)")
	}
	type keyed struct {
		env wireEnvelope
		key [sha256.Size]byte
	}
	envs := make([]keyed, len(e.Envelopes))
	for i, env := range e.Envelopes {
		we, err := wireEnv(env)
		if err != nil {
			return nil, fmt.Errorf("publish: entry: envelope %d: %w", i, err)
		}
		envs[i] = keyed{we, envelopeKey(we)}
	}
	slices.SortFunc(envs, func(a, b keyed) int { return bytes.Compare(a.key[:], b.key[:]) })
	w := &wireEntry{
		V:           EntryVersion,
		Kind:        KindPublish,
		InputDigest: e.InputDigest,
		Ecosystem:   e.Ecosystem,
		Coordinate:  e.Coordinate,
		Spec:        e.Spec,
		Subjects:    subjects,
		Envelopes:   make([]wireEnvelope, len(envs)),
	}
	for i := range envs {
		if i > 0 && envs[i].key == envs[i-1].key {
			return nil, errors.New("publish: entry: the same envelope is listed twice")
		}
		w.Envelopes[i] = envs[i].env
	}
	return w, nil
}

func compareSubjects(a, b Subject) int {
	return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Digest, b.Digest))
}

func compareSignatures(a, b wireSignature) int {
	return cmp.Or(strings.Compare(a.KeyID, b.KeyID), bytes.Compare(a.Sig, b.Sig))
}

// wireEnv checks env and returns its JSON form with the signatures sorted.
func wireEnv(env *dssepb.Envelope) (wireEnvelope, error) {
	if env == nil {
		return wireEnvelope{}, errors.New("nil envelope")
	}
	if env.GetPayloadType() == "" {
		return wireEnvelope{}, errors.New("empty payloadType")
	}
	if env.GetPayloadType() != attest.InTotoPayloadType {
		return wireEnvelope{}, fmt.Errorf("payloadType %q, want %q (an entry carries in-toto attestations)", truncate(env.GetPayloadType()), attest.InTotoPayloadType)
	}
	if len(env.GetPayload()) == 0 {
		return wireEnvelope{}, errors.New("empty payload")
	}
	if len(env.GetSignatures()) == 0 {
		return wireEnvelope{}, errors.New("no signatures")
	}
	if n := len(env.GetSignatures()); n > attest.MaxSignatures {
		return wireEnvelope{}, fmt.Errorf("%d signatures, more than %d (a build node signs its envelope once)", n, attest.MaxSignatures)
	}
	we := wireEnvelope{
		PayloadType: env.GetPayloadType(),
		Payload:     env.GetPayload(),
		Signatures:  make([]wireSignature, len(env.GetSignatures())),
	}
	for i, s := range env.GetSignatures() {
		if len(s.GetSig()) == 0 {
			return wireEnvelope{}, fmt.Errorf("signature %d is empty", i)
		}
		if !utf8.ValidString(s.GetKeyid()) {
			return wireEnvelope{}, fmt.Errorf("signature %d: keyid is not valid UTF-8", i)
		}
		we.Signatures[i] = wireSignature{KeyID: s.GetKeyid(), Sig: s.GetSig()}
	}
	slices.SortFunc(we.Signatures, compareSignatures)
	for i := 1; i < len(we.Signatures); i++ {
		if compareSignatures(we.Signatures[i], we.Signatures[i-1]) == 0 {
			return wireEnvelope{}, errors.New("the same signature is listed twice")
		}
	}
	return we, nil
}

// envelopeKey is the sort key of an envelope: the SHA-256 of its encoding.
func envelopeKey(we wireEnvelope) [sha256.Size]byte {
	return sha256.Sum256(appendEnvelope(make([]byte, 0, 2048), we))
}

// encodedSizeHint is about the length of appendEntry's encoding of w (at
// least it, unless a string needs escapes): the buffer is made once.
func encodedSizeHint(w *wireEntry) int {
	n := 128 + len(w.Kind) + len(w.InputDigest) + len(w.Ecosystem) + len(w.Coordinate) + len(w.Spec)
	for _, s := range w.Subjects {
		n += 24 + len(s.Name) + len(s.Digest)
	}
	for _, we := range w.Envelopes {
		n += 48 + len(we.PayloadType) + base64.StdEncoding.EncodedLen(len(we.Payload))
		for _, s := range we.Signatures {
			n += 24 + len(s.KeyID) + base64.StdEncoding.EncodedLen(len(s.Sig))
		}
	}
	return n
}

// appendEntry appends the JSON encoding of w, byte for byte what
// marshalJSON(w) writes (TestEntryEncoderIsEncodingJSON,
// FuzzEntryEncoder): written by hand because encoding/json's reflection
// was a large part of checking an entry's canonical form.
func appendEntry(b []byte, w *wireEntry) []byte {
	b = append(b, `{"v":`...)
	b = strconv.AppendInt(b, int64(w.V), 10)
	b = append(b, `,"kind":`...)
	b = appendJSONString(b, w.Kind)
	b = append(b, `,"inputDigest":`...)
	b = appendJSONString(b, w.InputDigest)
	b = append(b, `,"ecosystem":`...)
	b = appendJSONString(b, w.Ecosystem)
	b = append(b, `,"coordinate":`...)
	b = appendJSONString(b, w.Coordinate)
	b = append(b, `,"spec":`...)
	if w.Spec == nil {
		b = append(b, "null"...)
	} else {
		// encoding/json compacts a RawMessage; wire() has checked that
		// the spec is canonical JSON, which is compact.
		// Compacted straight into b (Compact appends to its buffer).
		c := bytes.NewBuffer(b)
		if json.Compact(c, w.Spec) != nil {
			panic("publish: encoding an entry: the spec is not JSON")
		}
		b = c.Bytes()
	}
	b = append(b, `,"subjects":`...)
	if w.Subjects == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, s := range w.Subjects {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"name":`...)
			b = appendJSONString(b, s.Name)
			b = append(b, `,"digest":`...)
			b = appendJSONString(b, s.Digest)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"envelopes":`...)
	if w.Envelopes == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, we := range w.Envelopes {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendEnvelope(b, we)
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendEnvelope appends the JSON encoding of we, as marshalJSON(we).
func appendEnvelope(b []byte, we wireEnvelope) []byte {
	b = append(b, `{"payloadType":`...)
	b = appendJSONString(b, we.PayloadType)
	b = append(b, `,"payload":`...)
	b = appendJSONBytes(b, we.Payload)
	b = append(b, `,"signatures":`...)
	if we.Signatures == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, s := range we.Signatures {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '{')
			if s.KeyID != "" {
				b = append(b, `"keyid":`...)
				b = appendJSONString(b, s.KeyID)
				b = append(b, ',')
			}
			b = append(b, `"sig":`...)
			b = appendJSONBytes(b, s.Sig)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, '}')
}

// appendJSONString appends s as marshalJSON(s) writes it: a string of
// printable ASCII other than '"' and '\\' as it is, any other through
// encoding/json.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '"' || c == '\\' {
			enc, err := marshalJSON(s)
			if err != nil {
				panic("publish: encoding a string: " + err.Error()) // a string always encodes
			}
			return append(b, enc...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSONBytes appends p as encoding/json writes a []byte: padded
// standard base64, null for nil.
func appendJSONBytes(b []byte, p []byte) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, p)
	return append(b, '"')
}

// ParseEntry decodes a log entry and checks it strictly: version
// [EntryVersion], kind [KindPublish] (else a [*KindError], which matches
// [ErrNotPublish], and [ErrUnknownKind] for a kind this build does not
// know), no unknown fields or trailing data, well-formed
// digests, coordinate and spec, at least one subject and one envelope, and
// the canonical encoding: MarshalBinary of the result gives back b exactly.
// It checks no signature.
func ParseEntry(b []byte) (*Entry, error) {
	// A canonical publish entry starts with publishPrefix: for such bytes
	// the kind is known without EntryKind's scan of the whole entry. What
	// the prefix does not prove (the rest of the JSON, no second "v" or
	// "kind" further on) the strict decoding and the comparison with the
	// canonical encoding below refuse, as they do for any other bytes.
	if err := checkEntryBytes(b); err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(b, publishPrefix) {
		kind, err := EntryKind(b)
		if err != nil {
			return nil, err
		}
		if kind != KindPublish {
			return nil, &KindError{Kind: kind}
		}
	}
	var w wireEntry
	if err := decodeOne(b, &w, true); err != nil {
		return nil, fmt.Errorf("publish: entry: %w", err)
	}
	e := &Entry{
		InputDigest: w.InputDigest,
		Ecosystem:   w.Ecosystem,
		Coordinate:  w.Coordinate,
		Spec:        w.Spec,
		Subjects:    w.Subjects,
		Envelopes:   make([]*dssepb.Envelope, len(w.Envelopes)),
	}
	for i, we := range w.Envelopes {
		env := &dssepb.Envelope{
			PayloadType: we.PayloadType,
			Payload:     we.Payload,
			Signatures:  make([]*dssepb.Signature, len(we.Signatures)),
		}
		for j, s := range we.Signatures {
			env.Signatures[j] = &dssepb.Signature{Keyid: s.KeyID, Sig: s.Sig}
		}
		e.Envelopes[i] = env
	}
	canon, err := e.MarshalBinary()
	if err != nil {
		if reformatted(b) { // a reformatted entry, not only its spec
			return nil, fmt.Errorf("publish: entry: not in canonical form (%s)", diagnoseEntry(b, &w))
		}
		return nil, err
	}
	if !bytes.Equal(canon, b) {
		return nil, fmt.Errorf("publish: entry: not in canonical form (%s)", diagnoseEntry(b, &w))
	}
	return e, nil
}

// publishPrefix is how every canonical publish entry starts.
var publishPrefix = []byte(`{"v":1,"kind":"publish",`)

// checkEntryBytes checks what every entry must be before it is decoded:
// within the size limit, not empty, valid UTF-8.
func checkEntryBytes(b []byte) error {
	if len(b) > MaxEntrySize {
		return fmt.Errorf("publish: entry: %d bytes is over the %d byte limit", len(b), MaxEntrySize)
	}
	if len(b) == 0 {
		return errors.New("publish: entry: empty")
	}
	if !utf8.Valid(b) {
		return errors.New("publish: entry: not valid UTF-8")
	}
	return nil
}

// diagnoseEntry says why an entry (b, decoded as w) that checks out is not
// in canonical form.
func diagnoseEntry(b []byte, w *wireEntry) string {
	if reformatted(b) {
		return "whitespace between JSON tokens: was it reformatted?"
	}
	if !slices.IsSortedFunc(w.Subjects, compareSubjects) {
		return "subjects are not sorted by name, then digest"
	}
	for i, we := range w.Envelopes {
		if !slices.IsSortedFunc(we.Signatures, compareSignatures) {
			return fmt.Sprintf("signatures of envelope %d are not sorted by keyid, then sig", i)
		}
	}
	for i := 1; i < len(w.Envelopes); i++ {
		a, b := envelopeKey(w.Envelopes[i-1]), envelopeKey(w.Envelopes[i])
		if bytes.Compare(a[:], b[:]) > 0 {
			return "envelopes are not sorted by the SHA-256 of their encoding"
		}
	}
	return "whitespace, field order, escaping, base64 or a field that should be left out differ from what MarshalBinary writes"
}

// reformatted reports whether b, valid JSON, has whitespace between its
// tokens (run only to explain a refusal: it costs a pass over b).
func reformatted(b []byte) bool {
	var compact bytes.Buffer
	return json.Compact(&compact, b) == nil && compact.Len() != len(b)
}

// LeafHash returns the RFC 6962 leaf hash of an entry's bytes: the hash the
// log's Merkle tree holds for it.
func LeafHash(entryBytes []byte) []byte {
	return rfc6962.DefaultHasher.HashLeaf(entryBytes)
}

// checkDigest checks a "sha256:<64 lowercase hex>" digest.
func checkDigest(d string) error {
	hexPart, ok := strings.CutPrefix(d, "sha256:")
	switch {
	case d == "":
		return errors.New(`empty (want "sha256:" and 64 lowercase hex digits)`)
	case !ok:
		return fmt.Errorf(`%q does not start with "sha256:"`, truncate(d))
	case len(hexPart) != 2*sha256.Size:
		return fmt.Errorf("%q has %d hex digits, want %d", truncate(d), len(hexPart), 2*sha256.Size)
	}
	for _, c := range []byte(hexPart) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("%q is not lowercase hex", truncate(d))
		}
	}
	return nil
}

// checkName checks a coordinate or subject name: not empty, valid UTF-8, no
// spaces or control characters.
func checkName(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if !utf8.ValidString(s) {
		return errors.New("not valid UTF-8")
	}
	for _, r := range s {
		if unicode.IsSpace(r) || unicode.IsControl(r) || r == utf8.RuneError {
			return fmt.Errorf("%q holds a space or control character", truncate(s))
		}
	}
	return nil
}

func checkCoordinate(ecosystem, coordinate string) error {
	if err := checkName(coordinate); err != nil {
		return fmt.Errorf("publish: entry: coordinate: %w", err)
	}
	switch ecosystem {
	case EcosystemOCI:
		i := strings.LastIndexByte(coordinate, ':')
		if i <= 0 || i == len(coordinate)-1 {
			return fmt.Errorf("publish: entry: OCI coordinate %q is not name:tag", truncate(coordinate))
		}
	case EcosystemMaven:
		parts := strings.Split(coordinate, ":")
		if len(parts) != 3 || slices.Contains(parts, "") {
			return fmt.Errorf("publish: entry: Maven coordinate %q is not groupId:artifactId:version", truncate(coordinate))
		}
	case "":
		return errors.New(`publish: entry: missing ecosystem (want "oci" or "maven")`)
	default:
		return fmt.Errorf(`publish: entry: unknown ecosystem %q (want "oci" or "maven")`, truncate(ecosystem))
	}
	return nil
}

// ErrLabelMismatch is wrapped by the error for an entry whose ecosystem or
// coordinate is not its spec's: genuine attestations put under another
// name. Use errors.Is.
var ErrLabelMismatch = errors.New("publish: entry: the entry's name is not its spec's")

// CheckLabels checks that the ecosystem and coordinate an entry claims are
// its spec's "ecosystem" and "coordinate" fields, so that nobody (a log
// operator, an appender) can publish the build nodes' attestations of one
// artifact under another artifact's name. [ParseEntry], [NewEntry],
// [VerifyEntry] and the index check it.
func CheckLabels(e *Entry) error {
	eco, coord, err := SpecLabels(e.Spec)
	if err != nil {
		return err
	}
	switch {
	case eco != e.Ecosystem:
		return fmt.Errorf("%w: the entry says ecosystem %q, its spec %q", ErrLabelMismatch, truncate(e.Ecosystem), truncate(eco))
	case coord != e.Coordinate:
		return fmt.Errorf("%w: the entry says coordinate %q, its spec %q", ErrLabelMismatch, truncate(e.Coordinate), truncate(coord))
	}
	return nil
}

// SpecLabels returns a build spec's "ecosystem" and "coordinate" fields
// (JSON strings, keys matched exactly): the names an entry of the spec
// must carry ([CheckLabels]). It checks nothing else of the spec. A
// missing or non-string field is an error wrapping [ErrLabelMismatch].
func SpecLabels(spec []byte) (ecosystem, coordinate string, err error) {
	// A map, not a struct: encoding/json matches struct fields without
	// regard to case (and folds "ſ" to "s"), a map's keys are exact.
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(spec, &fields); err != nil {
		return "", "", fmt.Errorf("publish: entry: spec: ecosystem and coordinate: %w", explainJSON(err, len(spec)))
	}
	label := func(key string) (string, error) {
		raw, ok := fields[key]
		if !ok {
			return "", fmt.Errorf("%w: the spec has no %q field", ErrLabelMismatch, key)
		}
		var v string
		if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &v) != nil {
			return "", fmt.Errorf("%w: the spec's %q field is not a string", ErrLabelMismatch, key)
		}
		return v, nil
	}
	if ecosystem, err = label("ecosystem"); err != nil {
		return "", "", err
	}
	if coordinate, err = label("coordinate"); err != nil {
		return "", "", err
	}
	return ecosystem, coordinate, nil
}

func checkSpec(spec json.RawMessage) error {
	if len(spec) == 0 {
		return errors.New("publish: entry: missing spec")
	}
	if spec[0] != '{' {
		return errors.New("publish: entry: spec is not a JSON object")
	}
	canon, err := CanonicalJSON(spec)
	if err != nil {
		return fmt.Errorf("publish: entry: spec: %w", err)
	}
	if !bytes.Equal(canon, spec) {
		return errors.New("publish: entry: spec is not canonical JSON (keys sorted, no spaces; see publish.CanonicalJSON)")
	}
	return nil
}

// truncate shortens s for an error message.
func truncate(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// decodeOne decodes the one JSON value in b into v, rejecting unknown
// fields when strict.
func decodeOne(b []byte, v any, strict bool) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return explainJSON(err, len(b))
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// explainJSON turns an encoding/json error into words.
func explainJSON(err error, n int) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn) && syn.Offset >= int64(n):
		return errors.New("JSON ends early (truncated?)")
	case errors.As(err, &syn):
		return fmt.Errorf("not JSON (at byte %d: %w)", syn.Offset, err)
	case errors.As(err, &typ) && typ.Field == "":
		return fmt.Errorf("not a JSON object (found %s)", typ.Value)
	case errors.As(err, &typ):
		return fmt.Errorf("field %s: JSON %s where %s belongs", typ.Field, typ.Value, typ.Type)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("JSON ends early (truncated?)")
	default:
		return err
	}
}

// marshalJSON is json.Marshal without HTML escaping: '<', '>' and '&' are
// written as themselves.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// CanonicalJSON returns the canonical form of a JSON value, the form an
// entry's spec must have. It is [attest.CanonicalJSON], the one encoder the
// builder's input digest uses too.
func CanonicalJSON(b []byte) ([]byte, error) { return attest.CanonicalJSON(b) }
