package quorum

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish"
	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
)

// MessageVersion is the version of the build requests this package reads
// and writes, their "v" field.
const MessageVersion = 1

// VoteVersion is the version of the votes this package reads and writes,
// their "v" field. Version 2 binds a vote to one request (its id and a
// time); version 1 votes, bound to nothing, are refused.
const VoteVersion = 2

// Size limits of gossip messages, checked by the sender and by every
// topic validator. A request carries a build spec (a few hundred bytes); a
// vote carries one Sigstore bundle (about 2-4 KiB): both limits leave
// room, and a majority of 15 votes' envelopes still fits a 64 KiB log entry
// only if envelopes stay small (the builder keeps statements small).
const (
	MaxRequestSize = 64 << 10
	MaxVoteSize    = 64 << 10
)

// maxReasonSize bounds the error text of a failed build's vote.
const maxReasonSize = 2048

// Message types, the "type" field.
const (
	typeRequest = "build-request"
	typeVote    = "vote"
)

// RequestPayloadType is the DSSE payload type under which a requester
// signs a build request: the signature is over
// PAE(RequestPayloadType, body), body being the request's JSON without
// its "sig" field (see [BuildRequest.SignedBody]).
const RequestPayloadType = "application/vnd.pyrsia-build.build-request.v1+json"

// BuildRequest asks the build nodes to build a spec. It travels on the
// requests topic as JSON, fields in this order:
//
//	{"v":1,"type":"build-request",
//	 "policy":"sha256:<policy digest>",
//	 "inputDigest":"sha256:<sha256 of spec>",
//	 "spec":{...canonical JSON of the build spec...},
//	 "nonce":"<32 lowercase hex: 16 random bytes>",
//	 "time":<unix milliseconds>,
//	 "requester":"<key id: hex sha256 of the PKIX DER public key>",
//	 "requesterKey":"<PEM public key; optional, needed when the policy is open>",
//	 "sig":"<base64 ECDSA P-256 signature>"}
//
// The signature is a DSSE signature (attest.Signer.SignEnvelope) over
// PAE([RequestPayloadType], the same JSON without "sig"). Validators
// require: the network's policy digest, the spec in canonical form whose
// sha256 is inputDigest, a time within the replay window, a nonce not seen
// before, a requester the policy lists (or any key when the policy is open)
// and a signature by that requester's key.
type BuildRequest struct {
	Policy       string
	InputDigest  string
	Spec         json.RawMessage
	Nonce        string
	Time         time.Time
	Requester    string
	RequesterKey []byte
	Sig          []byte
}

type wireRequest struct {
	V            int             `json:"v"`
	Type         string          `json:"type"`
	Policy       string          `json:"policy"`
	InputDigest  string          `json:"inputDigest"`
	Spec         json.RawMessage `json:"spec"`
	Nonce        string          `json:"nonce"`
	Time         int64           `json:"time"`
	Requester    string          `json:"requester"`
	RequesterKey string          `json:"requesterKey,omitempty"`
	Sig          []byte          `json:"sig,omitempty"`
}

// RequestOptions configure [NewBuildRequest].
type RequestOptions struct {
	// Policy is the network's policy digest.
	Policy string
	// Spec is the build spec as JSON; it is put in canonical form.
	Spec []byte
	// Signer is the requester's cosign key.
	Signer *attest.Signer
	// IncludeKey puts the requester's public key into the request, for
	// networks whose policy is open (the key is not listed there).
	IncludeKey bool
	// Now is the request's time; zero means time.Now().
	Now time.Time
}

// NewBuildRequest makes and signs a build request with a fresh nonce.
func NewBuildRequest(o RequestOptions) (*BuildRequest, error) {
	if o.Signer == nil {
		return nil, errors.New("quorum: build request: no requester key")
	}
	if err := checkDigest(o.Policy); err != nil {
		return nil, fmt.Errorf("quorum: build request: policy digest: %w", err)
	}
	spec, err := publish.CanonicalJSON(o.Spec)
	if err != nil {
		return nil, fmt.Errorf("quorum: build request: spec: %w", err)
	}
	if len(spec) == 0 || spec[0] != '{' {
		return nil, errors.New("quorum: build request: spec is not a JSON object")
	}
	var nonce [16]byte
	if _, err := io.ReadFull(rand.Reader, nonce[:]); err != nil {
		return nil, fmt.Errorf("quorum: build request: nonce: %w", err)
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	sum := sha256.Sum256(spec)
	r := &BuildRequest{
		Policy:      o.Policy,
		InputDigest: "sha256:" + hex.EncodeToString(sum[:]),
		Spec:        spec,
		Nonce:       hex.EncodeToString(nonce[:]),
		Time:        time.UnixMilli(now.UnixMilli()),
		Requester:   o.Signer.KeyID(),
	}
	if o.IncludeKey {
		pemKey, err := cryptoutils.MarshalPublicKeyToPEM(o.Signer.Public())
		if err != nil {
			return nil, fmt.Errorf("quorum: build request: encoding requester key: %w", err)
		}
		r.RequesterKey = pemKey
	}
	body, err := r.SignedBody()
	if err != nil {
		return nil, err
	}
	env, err := o.Signer.SignEnvelope(RequestPayloadType, body)
	if err != nil {
		return nil, fmt.Errorf("quorum: build request: %w", err)
	}
	r.Sig = env.GetSignatures()[0].GetSig()
	if _, err := r.Marshal(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *BuildRequest) wire() wireRequest {
	return wireRequest{
		V:            MessageVersion,
		Type:         typeRequest,
		Policy:       r.Policy,
		InputDigest:  r.InputDigest,
		Spec:         r.Spec,
		Nonce:        r.Nonce,
		Time:         r.Time.UnixMilli(),
		Requester:    r.Requester,
		RequesterKey: string(r.RequesterKey),
		Sig:          r.Sig,
	}
}

// ID returns the request's id, "sha256:<hex>" of its signed body: it
// names one request (its nonce makes two requests for one input differ),
// and votes name it ([Vote.Request]).
func (r *BuildRequest) ID() string {
	body, err := r.SignedBody()
	if err != nil {
		return ""
	}
	return "sha256:" + digestOf(body)
}

// SignedBody returns the bytes the requester signs: the request's JSON
// without "sig".
func (r *BuildRequest) SignedBody() ([]byte, error) {
	w := r.wire()
	w.Sig = nil
	b, err := marshalJSON(w)
	if err != nil {
		return nil, fmt.Errorf("quorum: build request: encoding: %w", err)
	}
	return b, nil
}

// Marshal encodes the request for the requests topic.
func (r *BuildRequest) Marshal() ([]byte, error) {
	b, err := marshalJSON(r.wire())
	if err != nil {
		return nil, fmt.Errorf("quorum: build request: encoding: %w", err)
	}
	if len(b) > MaxRequestSize {
		return nil, fmt.Errorf("quorum: build request: %d bytes, over the %d byte limit (is the spec this large?)", len(b), MaxRequestSize)
	}
	return b, nil
}

// VerifySignature checks the request's signature against key.
func (r *BuildRequest) VerifySignature(key *attest.PublicKey) error {
	body, err := r.SignedBody()
	if err != nil {
		return err
	}
	env := &dssepb.Envelope{PayloadType: RequestPayloadType, Payload: body, Signatures: []*dssepb.Signature{{Sig: r.Sig}}}
	if len(attest.VerifyEnvelope(env, []*attest.PublicKey{key})) != 1 {
		return fmt.Errorf("quorum: build request %s: signature does not verify against requester key %s", r.InputDigest, short(key.ID))
	}
	return nil
}

// ParseBuildRequest decodes a build request and checks its form: size,
// version, type, no unknown fields, digests, canonical spec whose sha256 is
// the input digest, nonce, time, requester key id (and key, when given,
// matching it) and a signature present. It checks no signature: see
// [BuildRequest.VerifySignature] (the topic validator does).
func ParseBuildRequest(b []byte) (*BuildRequest, error) {
	if len(b) > MaxRequestSize {
		return nil, fmt.Errorf("quorum: build request: %d bytes, over the %d byte limit", len(b), MaxRequestSize)
	}
	if err := checkVersion(b, typeRequest, MessageVersion); err != nil {
		return nil, fmt.Errorf("quorum: build request: %w", err)
	}
	var w wireRequest
	if err := decodeStrict(b, &w); err != nil {
		return nil, fmt.Errorf("quorum: build request: %w", err)
	}
	if err := checkDigest(w.Policy); err != nil {
		return nil, fmt.Errorf("quorum: build request: policy: %w", err)
	}
	if err := checkDigest(w.InputDigest); err != nil {
		return nil, fmt.Errorf("quorum: build request: inputDigest: %w", err)
	}
	if len(w.Spec) == 0 || w.Spec[0] != '{' {
		return nil, errors.New("quorum: build request: spec is missing or not a JSON object")
	}
	canon, err := publish.CanonicalJSON(w.Spec)
	if err != nil {
		return nil, fmt.Errorf("quorum: build request: spec: %w", err)
	}
	if !bytes.Equal(canon, w.Spec) {
		return nil, errors.New("quorum: build request: spec is not in canonical form (keys sorted, no spaces)")
	}
	sum := sha256.Sum256(canon)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != w.InputDigest {
		return nil, fmt.Errorf("quorum: build request: inputDigest %s is not the spec's sha256 %s", w.InputDigest, got)
	}
	if len(w.Nonce) != 32 || !isLowerHex(w.Nonce) {
		return nil, fmt.Errorf("quorum: build request: nonce %q is not 32 lowercase hex digits", truncate(w.Nonce))
	}
	if w.Time <= 0 {
		return nil, fmt.Errorf("quorum: build request: time %d is not a positive unix time in milliseconds", w.Time)
	}
	if len(w.Requester) != 64 || !isLowerHex(w.Requester) {
		return nil, fmt.Errorf("quorum: build request: requester %q is not a key id (64 lowercase hex digits)", truncate(w.Requester))
	}
	if len(w.Sig) == 0 {
		return nil, errors.New("quorum: build request: no signature")
	}
	if len(w.Sig) > 512 {
		return nil, fmt.Errorf("quorum: build request: signature of %d bytes is too long for ECDSA P-256", len(w.Sig))
	}
	r := &BuildRequest{
		Policy:      w.Policy,
		InputDigest: w.InputDigest,
		Spec:        w.Spec,
		Nonce:       w.Nonce,
		Time:        time.UnixMilli(w.Time),
		Requester:   w.Requester,
		Sig:         w.Sig,
	}
	if w.RequesterKey != "" {
		k, err := attest.ParsePublicKey("requester", []byte(w.RequesterKey))
		if err != nil {
			return nil, fmt.Errorf("quorum: build request: requesterKey: %w", err)
		}
		if k.ID != w.Requester {
			return nil, fmt.Errorf("quorum: build request: requesterKey has key id %s, the request names %s", short(k.ID), short(w.Requester))
		}
		r.RequesterKey = []byte(w.RequesterKey)
	}
	return r, nil
}

// Vote is one build node's answer to a build request. It travels on the
// votes topic as JSON, fields in this order:
//
//	{"v":2,"type":"vote",
//	 "policy":"sha256:<policy digest>",
//	 "request":"sha256:<the request's id: see BuildRequest.ID>",
//	 "inputDigest":"sha256:<the request's input digest>",
//	 "node":"<the node's name in the policy>",
//	 "time":<unix milliseconds>,
//	 "bundle":{...Sigstore bundle v0.3: the DSSE envelope of the node's attestation...},
//	 "manifest":"sha256:<digest of the node's output manifest>",
//	 "error":"<why the build failed; only without bundle and manifest>"}
//
// A successful build's vote has bundle and manifest and no error; a failed
// build's vote has only error. A vote counts only for the request it
// names, and only while that request's round is open; its time is checked
// against the replay window, so an old vote cannot be replayed later.
// Validators require: the network's policy digest, a time within the
// replay window, one vote per node and request (a different second one is
// equivocation), a node name that the policy maps to the message's signed author
// (the gossip message is signed by the author's libp2p key, StrictSign),
// and for a successful build an envelope signed by that node's cosign key
// whose statement names at least one subject with a sha256 digest and
// whose SLSA externalParameters.spec hashes, in canonical form, to
// inputDigest: a node cannot reuse a genuine attestation for another input.
type Vote struct {
	Policy string
	// Request is the id of the request voted on ([BuildRequest.ID]).
	Request     string
	InputDigest string
	Node        string
	// Time is when the vote was made (milliseconds).
	Time     time.Time
	Bundle   *attest.Bundle
	Manifest string
	Error    string

	// Subjects are the artifacts the attestation names, sorted (set by
	// [ParseVote] and [NewVote]).
	Subjects []publish.Subject

	// enc is the encoding NewVote made and checked, for PublishVote, with
	// the fields it encodes: a vote changed since is encoded again.
	enc *voteEncoding
}

type voteEncoding struct {
	b      []byte
	fields voteFields
}

// voteFields are the fields of a Vote that its encoding holds.
type voteFields struct {
	policy, request, input, node, manifest, err string
	time                                        time.Time
	bundle                                      *attest.Bundle
}

func (v *Vote) fields() voteFields {
	return voteFields{policy: v.Policy, request: v.Request, input: v.InputDigest, node: v.Node, manifest: v.Manifest, err: v.Error, time: v.Time, bundle: v.Bundle}
}

// encoded is v.Marshal(), answered with the encoding NewVote checked when
// the vote is unchanged since.
func (v *Vote) encoded() ([]byte, error) {
	if v.enc != nil && v.enc.fields == v.fields() {
		return v.enc.b, nil
	}
	return v.Marshal()
}

type wireVote struct {
	V           int             `json:"v"`
	Type        string          `json:"type"`
	Policy      string          `json:"policy"`
	Request     string          `json:"request"`
	InputDigest string          `json:"inputDigest"`
	Node        string          `json:"node"`
	Time        int64           `json:"time"`
	Bundle      json.RawMessage `json:"bundle,omitempty"`
	Manifest    string          `json:"manifest,omitempty"`
	Error       string          `json:"error,omitempty"`
}

// VoteFor names what a vote answers: the network, the request and its
// input, the voting node and the vote's time.
type VoteFor struct {
	Policy      string
	Request     string // [BuildRequest.ID]
	InputDigest string
	Node        string
	Time        time.Time // zero means time.Now()
}

func (f VoteFor) vote() *Vote {
	t := f.Time
	if t.IsZero() {
		t = time.Now()
	}
	return &Vote{Policy: f.Policy, Request: f.Request, InputDigest: f.InputDigest, Node: f.Node, Time: time.UnixMilli(t.UnixMilli())}
}

// NewVote makes the vote of a successful build and checks it as
// [ParseVote] will.
func NewVote(f VoteFor, bundle *attest.Bundle, manifest string) (*Vote, error) {
	return newVote(f, bundle, manifest, publish.ParseStatement)
}

// NewVote is [NewVote] with the attestation's statement parsed by c
// ([VerifiedEnvelopes.Statement]) and remembered there: the node's own
// validator then finds it parsed when the vote is published, and its FSM
// when the entry made of the votes comes. For the node's own attestations
// (the key it signs with is its policy key).
func (c *VerifiedEnvelopes) NewVote(f VoteFor, bundle *attest.Bundle, manifest string) (*Vote, error) {
	return newVote(f, bundle, manifest, c.Statement)
}

func newVote(f VoteFor, bundle *attest.Bundle, manifest string, parse func([]byte) (*publish.ParsedStatement, error)) (*Vote, error) {
	v := f.vote()
	v.Bundle, v.Manifest = bundle, manifest
	b, err := v.Marshal()
	if err != nil {
		return nil, err
	}
	return parseOwnVote(b, parse)
}

// parseOwnVote parses a vote this package just encoded, and keeps the
// encoding for PublishVote.
func parseOwnVote(b []byte, parse func([]byte) (*publish.ParsedStatement, error)) (*Vote, error) {
	v, err := parseVote(b, parse)
	if err != nil {
		return nil, err
	}
	v.enc = &voteEncoding{b: b, fields: v.fields()}
	return v, nil
}

// NewFailedVote makes the vote of a build that failed, with the reason.
func NewFailedVote(f VoteFor, reason string) (*Vote, error) {
	if reason == "" {
		reason = "build failed"
	}
	if len(reason) > maxReasonSize {
		reason = reason[:maxReasonSize]
	}
	reason = strings.ToValidUTF8(reason, "?")
	v := f.vote()
	v.Error = reason
	b, err := v.Marshal()
	if err != nil {
		return nil, err
	}
	return parseOwnVote(b, publish.ParseStatement)
}

// Failed reports whether the vote says the build failed.
func (v *Vote) Failed() bool { return v.Bundle == nil }

// Envelope returns the vote's DSSE envelope, nil for a failed build.
func (v *Vote) Envelope() *dssepb.Envelope {
	if v.Bundle == nil {
		return nil
	}
	return v.Bundle.Envelope()
}

// Marshal encodes the vote for the votes topic.
func (v *Vote) Marshal() ([]byte, error) {
	w := wireVote{V: VoteVersion, Type: typeVote, Policy: v.Policy, Request: v.Request, InputDigest: v.InputDigest, Node: v.Node, Time: v.Time.UnixMilli(), Manifest: v.Manifest, Error: v.Error}
	if v.Bundle != nil {
		bb, err := v.Bundle.MarshalJSON()
		if err != nil {
			return nil, fmt.Errorf("quorum: vote: encoding bundle: %w", err)
		}
		w.Bundle = bb
	}
	b, err := marshalJSON(w)
	if err != nil {
		return nil, fmt.Errorf("quorum: vote: encoding: %w", err)
	}
	if len(b) > MaxVoteSize {
		return nil, fmt.Errorf("quorum: vote: %d bytes, over the %d byte limit (keep attestations small)", len(b), MaxVoteSize)
	}
	return b, nil
}

// VerifySignature checks that the vote's envelope is signed by m's cosign
// key. A failed build's vote has no envelope; its author is vouched for by
// the gossip message signature alone.
func (v *Vote) VerifySignature(m Member) error {
	return v.verifySignature(m, attest.VerifyEnvelope)
}

// verifySignature is VerifySignature with the envelope checked by
// signers (attest.VerifyEnvelope, or a [VerifiedEnvelopes]' Verify).
func (v *Vote) verifySignature(m Member, signers func(*dssepb.Envelope, []*attest.PublicKey) []*attest.PublicKey) error {
	if v.Node != m.Name {
		return fmt.Errorf("quorum: vote for %s names node %q, checked against %q", v.InputDigest, v.Node, m.Name)
	}
	env := v.Envelope()
	if env == nil {
		return nil
	}
	if len(signers(env, []*attest.PublicKey{m.Key})) != 1 {
		return fmt.Errorf("quorum: vote of %q for %s: attestation is not signed by the node's policy key %s", m.Name, v.InputDigest, short(m.Key.ID))
	}
	return nil
}

// ParseVote decodes a vote and checks its form (see [Vote]). It checks no
// signature: see [Vote.VerifySignature].
func ParseVote(b []byte) (*Vote, error) {
	return parseVote(b, publish.ParseStatement)
}

// votePrefix is how every vote this package writes starts.
var votePrefix = []byte(`{"v":2,"type":"vote",`)

// parseVote is ParseVote with the statement parsed by parse
// (publish.ParseStatement, or a [VerifiedEnvelopes]' Statement).
func parseVote(b []byte, parse func([]byte) (*publish.ParsedStatement, error)) (*Vote, error) {
	if len(b) > MaxVoteSize {
		return nil, fmt.Errorf("quorum: vote: %d bytes, over the %d byte limit", len(b), MaxVoteSize)
	}
	// A vote that starts as ours do is of this version and type: its
	// "v" and "type" are checked again once decoded (a second "v" or
	// "type" further on, which encoding/json would take, is refused
	// there); any other is probed first, to tell a vote of another
	// version from a malformed one.
	fast := bytes.HasPrefix(b, votePrefix)
	if !fast {
		if err := checkVersion(b, typeVote, VoteVersion); err != nil {
			return nil, fmt.Errorf("quorum: vote: %w", err)
		}
	}
	var w wireVote
	if err := decodeStrict(b, &w); err != nil {
		return nil, fmt.Errorf("quorum: vote: %w", err)
	}
	if w.V != VoteVersion || w.Type != typeVote {
		return nil, fmt.Errorf("quorum: vote: \"v\" %d and \"type\" %q, want %d and %q (is \"v\" or \"type\" given twice?)", w.V, truncate(w.Type), VoteVersion, typeVote)
	}
	if err := checkDigest(w.Policy); err != nil {
		return nil, fmt.Errorf("quorum: vote: policy: %w", err)
	}
	if err := checkDigest(w.Request); err != nil {
		return nil, fmt.Errorf("quorum: vote: request: %w", err)
	}
	if err := checkDigest(w.InputDigest); err != nil {
		return nil, fmt.Errorf("quorum: vote: inputDigest: %w", err)
	}
	if err := checkNodeName(w.Node); err != nil {
		return nil, fmt.Errorf("quorum: vote: node: %w", err)
	}
	if w.Time <= 0 {
		return nil, fmt.Errorf("quorum: vote of %q: time %d is not a positive unix time in milliseconds", w.Node, w.Time)
	}
	v := &Vote{Policy: w.Policy, Request: w.Request, InputDigest: w.InputDigest, Node: w.Node, Time: time.UnixMilli(w.Time), Manifest: w.Manifest, Error: w.Error}
	if len(w.Bundle) == 0 || string(w.Bundle) == "null" {
		switch {
		case w.Error == "":
			return nil, fmt.Errorf("quorum: vote of %q: neither a bundle nor an error", w.Node)
		case w.Manifest != "":
			return nil, fmt.Errorf("quorum: vote of %q: a manifest without a bundle", w.Node)
		case len(w.Error) > maxReasonSize || !utf8.ValidString(w.Error):
			return nil, fmt.Errorf("quorum: vote of %q: error text is over %d bytes or not UTF-8", w.Node, maxReasonSize)
		}
		return v, nil
	}
	if w.Error != "" {
		return nil, fmt.Errorf("quorum: vote of %q: both a bundle and an error", w.Node)
	}
	if err := checkDigest(w.Manifest); err != nil {
		return nil, fmt.Errorf("quorum: vote of %q: manifest: %w", w.Node, err)
	}
	bundle, err := attest.ParseBundle(w.Bundle)
	if err != nil {
		return nil, fmt.Errorf("quorum: vote of %q: %w", w.Node, err)
	}
	ps, err := parse(bundle.Envelope().GetPayload())
	if err != nil {
		return nil, fmt.Errorf("quorum: vote of %q: %w", w.Node, err)
	}
	st := ps.Statement
	for _, s := range st.GetSubject() {
		d, ok := s.GetDigest()["sha256"]
		if !ok {
			return nil, fmt.Errorf("quorum: vote of %q: subject %q has no sha256 digest", w.Node, truncate(s.GetName()))
		}
		sub := publish.Subject{Name: s.GetName(), Digest: "sha256:" + d}
		if err := checkDigest(sub.Digest); err != nil {
			return nil, fmt.Errorf("quorum: vote of %q: subject %q: %w", w.Node, truncate(s.GetName()), err)
		}
		if sub.Name == "" {
			return nil, fmt.Errorf("quorum: vote of %q: a subject has no name", w.Node)
		}
		v.Subjects = append(v.Subjects, sub)
	}
	if len(v.Subjects) == 0 {
		return nil, fmt.Errorf("quorum: vote of %q: the attestation names no subject", w.Node)
	}
	slices.SortFunc(v.Subjects, compareSubjects)
	for i := 1; i < len(v.Subjects); i++ {
		if v.Subjects[i] == v.Subjects[i-1] {
			return nil, fmt.Errorf("quorum: vote of %q: subject %q is listed twice", w.Node, truncate(v.Subjects[i].Name))
		}
	}
	// The attestation must be about this input.
	if ps.Spec == nil {
		if ps.SpecErr == nil || errors.Is(ps.SpecErr, publish.ErrNoSpec) {
			return nil, fmt.Errorf("quorum: vote of %q: the attestation has no externalParameters.spec", w.Node)
		}
		return nil, fmt.Errorf("quorum: vote of %q: attestation spec: %w", w.Node, ps.SpecErr)
	}
	sum := sha256.Sum256(ps.Spec)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != w.InputDigest {
		return nil, fmt.Errorf("quorum: vote of %q: the attestation is for input %s, the vote for %s", w.Node, got, w.InputDigest)
	}
	v.Bundle = bundle
	return v, nil
}

// SubjectsKey identifies a set of subjects (sorted): two votes agree when
// their keys are equal.
func SubjectsKey(subjects []publish.Subject) string {
	var b strings.Builder
	for _, s := range subjects {
		b.WriteString(s.Name)
		b.WriteByte(0)
		b.WriteString(s.Digest)
		b.WriteByte('\n')
	}
	return b.String()
}

func compareSubjects(a, b publish.Subject) int {
	if c := strings.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	return strings.Compare(a.Digest, b.Digest)
}

// checkVersion reads "v" and "type" first, so that a message of another
// version is told apart from a malformed one.
func checkVersion(b []byte, wantType string, version int) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return errors.New("empty message")
	}
	var probe struct {
		V    *json.RawMessage `json:"v"`
		Type *string          `json:"type"`
	}
	// The first value only: decodeStrict reports trailing data.
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&probe); err != nil {
		return fmt.Errorf("not a JSON object: %w", err)
	}
	if probe.V == nil {
		return errors.New(`missing version field "v"`)
	}
	if string(*probe.V) != fmt.Sprint(version) {
		return fmt.Errorf("%w %s (this build reads version %d; upgrade pyrsia-build?)", ErrUnsupportedVersion, truncate(string(*probe.V)), version)
	}
	if probe.Type == nil || *probe.Type != wantType {
		got := "none"
		if probe.Type != nil {
			got = fmt.Sprintf("%q", truncate(*probe.Type))
		}
		return fmt.Errorf("message type %s, want %q", got, wantType)
	}
	return nil
}

// ErrUnsupportedVersion is returned (wrapped) by the message parsers for a
// message of a version this build does not read. Use errors.Is.
var ErrUnsupportedVersion = errors.New("unsupported message version")

func decodeStrict(b []byte, v any) error {
	if !utf8.Valid(b) {
		return errors.New("not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("malformed JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// checkDigest checks a "sha256:<64 lowercase hex>" digest.
func checkDigest(d string) error {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok || len(h) != 64 || !isLowerHex(h) {
		return fmt.Errorf(`%q is not "sha256:" and 64 lowercase hex digits`, truncate(d))
	}
	return nil
}

func isLowerHex(s string) bool {
	for _, c := range []byte(s) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// checkNodeName checks a policy node name: [a-z0-9][a-z0-9.-]*, at most 64.
func checkNodeName(s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("%q is not a node name (1 to 64 of a-z, 0-9, '.', '-')", truncate(s))
	}
	for i, r := range s {
		ok := unicode.IsLower(r) && r < utf8.RuneSelf || unicode.IsDigit(r) && r < utf8.RuneSelf || i > 0 && (r == '.' || r == '-')
		if !ok {
			return fmt.Errorf("%q is not a node name (1 to 64 of a-z, 0-9, '.', '-', starting with a letter or digit)", truncate(s))
		}
	}
	return nil
}

func truncate(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// short abbreviates a key id or digest for messages.
func short(s string) string {
	if len(s) > 19 {
		return s[:19] + "…"
	}
	return s
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
