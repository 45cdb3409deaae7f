package attest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"google.golang.org/protobuf/encoding/protojson"
)

// BundleMediaType is the media type of the bundles this package writes:
// Sigstore bundle v0.3.
const BundleMediaType = "application/vnd.dev.sigstore.bundle.v0.3+json"

// MaxBundleSize bounds a bundle file: a statement plus signatures and
// encoding overhead.
const MaxBundleSize = 2*MaxStatementSize + 1<<20

// bundleMediaTypes are the media types ParseBundle accepts: the v0.3
// spellings and the two earlier versions, which share the DSSE layout.
var bundleMediaTypes = map[string]bool{
	"application/vnd.dev.sigstore.bundle+json;version=0.1": true,
	"application/vnd.dev.sigstore.bundle+json;version=0.2": true,
	"application/vnd.dev.sigstore.bundle+json;version=0.3": true,
	"application/vnd.dev.sigstore.bundle.v0.3+json":        true,
}

// Bundle is a Sigstore bundle that carries a DSSE envelope signed with a
// public key (no certificate): what `cosign attest-blob --key
// --new-bundle-format` writes, and what [NewBundle] makes.
type Bundle struct {
	pb *protobundle.Bundle
}

// NewBundle wraps a signed envelope in a v0.3 bundle. keyHint names the
// signing key (see [Signer.KeyHint]); verifiers do not trust it.
func NewBundle(env *dssepb.Envelope, keyHint string) *Bundle {
	return &Bundle{pb: &protobundle.Bundle{
		MediaType: BundleMediaType,
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content: &protobundle.VerificationMaterial_PublicKey{
				PublicKey: &protocommon.PublicKeyIdentifier{Hint: keyHint},
			},
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: env},
	}}
}

// Envelope returns the bundle's DSSE envelope.
func (b *Bundle) Envelope() *dssepb.Envelope { return b.pb.GetDsseEnvelope() }

// MediaType returns the bundle's media type.
func (b *Bundle) MediaType() string { return b.pb.GetMediaType() }

// KeyHint returns the unauthenticated hint naming the signing key.
func (b *Bundle) KeyHint() string {
	return b.pb.GetVerificationMaterial().GetPublicKey().GetHint()
}

// MarshalJSON encodes the bundle in the Sigstore bundle JSON form.
func (b *Bundle) MarshalJSON() ([]byte, error) {
	return marshalCompact(b.pb)
}

// ParseBundle decodes a Sigstore bundle and checks that it has the shape
// this package verifies: a known media type, a DSSE envelope with an in-toto
// payload and at least one signature, and public-key verification material.
// It does not verify anything cryptographic.
func ParseBundle(data []byte) (*Bundle, error) {
	return parseBundle(data, true)
}

// parseBundle is ParseBundle, with parseBundleFast first when fast (the
// differential tests hold the two paths to each other).
func parseBundle(data []byte, fast bool) (*Bundle, error) {
	if len(data) > MaxBundleSize {
		return nil, fmt.Errorf("attest: bundle: %d bytes is over the %d byte limit", len(data), MaxBundleSize)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, errors.New("attest: bundle: file is empty")
	}
	if err := checkDepth(data); err != nil {
		return nil, fmt.Errorf("attest: bundle: %w", err)
	}
	// parseBundleFast decodes the usual bundles as protojson would, at
	// a fraction of its cost; what it gives up on (the rare forms and
	// every error) protojson decodes or decodeBundle words.
	var pb *protobundle.Bundle
	ok := false
	if fast {
		pb, ok = parseBundleFast(data)
	}
	if !ok {
		var err error
		if pb, err = decodeBundle(data); err != nil {
			return nil, err
		}
	}
	return checkBundle(pb)
}

// decodeBundle decodes a bundle with protojson, saying plainly what is
// wrong with data that is not JSON.
func decodeBundle(data []byte) (*protobundle.Bundle, error) {
	if !json.Valid(data) {
		// protojson's errors for broken JSON name a byte offset in terms
		// only a parser understands; say it plainly.
		var probe any
		err := json.Unmarshal(data, &probe)
		var syn *json.SyntaxError
		switch {
		case errors.As(err, &syn) && syn.Error() == "unexpected end of JSON input":
			return nil, errors.New("attest: bundle: JSON ends early (truncated file?)")
		case errors.As(err, &syn):
			return nil, fmt.Errorf("attest: bundle: not JSON (at byte %d: %s)", syn.Offset, syn.Error())
		default:
			return nil, fmt.Errorf("attest: bundle: not JSON: %w", err)
		}
	}
	pb := new(protobundle.Bundle)
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, pb); err != nil {
		if berr := checkEnvelopeEncoding(data); berr != nil {
			return nil, berr
		}
		return nil, fmt.Errorf("attest: bundle: not a Sigstore bundle: %w", err)
	}
	return pb, nil
}

// checkBundle is ParseBundle's checks of a decoded bundle.
func checkBundle(pb *protobundle.Bundle) (*Bundle, error) {
	if mt := pb.GetMediaType(); !bundleMediaTypes[mt] {
		if mt == "" {
			return nil, errors.New("attest: bundle: missing mediaType (not a Sigstore bundle?)")
		}
		return nil, fmt.Errorf("attest: bundle: unknown media type %q (want %q)", mt, BundleMediaType)
	}
	env := pb.GetDsseEnvelope()
	if env == nil {
		if pb.GetMessageSignature() != nil {
			return nil, errors.New("attest: bundle: holds a plain message signature, not an attestation (DSSE envelope)")
		}
		return nil, errors.New("attest: bundle: no DSSE envelope")
	}
	if env.GetPayloadType() != InTotoPayloadType {
		return nil, fmt.Errorf("attest: bundle: envelope payload type %q, want %q", env.GetPayloadType(), InTotoPayloadType)
	}
	if len(env.GetPayload()) == 0 {
		return nil, errors.New("attest: bundle: envelope has an empty payload")
	}
	if len(env.GetSignatures()) == 0 {
		return nil, errors.New("attest: bundle: envelope has no signatures")
	}
	if n := len(env.GetSignatures()); n > MaxSignatures {
		return nil, fmt.Errorf("attest: bundle: envelope has %d signatures, more than %d (a bundle carries one)", n, MaxSignatures)
	}
	for i, s := range env.GetSignatures() {
		if len(s.GetSig()) == 0 {
			return nil, fmt.Errorf("attest: bundle: envelope signature %d is empty", i)
		}
	}
	vm := pb.GetVerificationMaterial()
	switch {
	case vm == nil:
		return nil, errors.New("attest: bundle: missing verificationMaterial")
	case vm.GetPublicKey() != nil:
	case vm.GetCertificate() != nil || vm.GetX509CertificateChain() != nil:
		return nil, errors.New("attest: bundle: signed with a certificate (keyless signing); pyrsia-build verifies bundles signed with a key")
	default:
		return nil, errors.New("attest: bundle: verificationMaterial names no key")
	}
	return &Bundle{pb: pb}, nil
}

// checkEnvelopeEncoding explains a protojson failure by naming the
// envelope field whose base64 is broken, which protojson reports only as a
// position in the file.
func checkEnvelopeEncoding(data []byte) error {
	var raw struct {
		DsseEnvelope *struct {
			Payload    any `json:"payload"`
			Signatures []struct {
				Sig any `json:"sig"`
			} `json:"signatures"`
		} `json:"dsseEnvelope"`
	}
	if json.Unmarshal(data, &raw) != nil || raw.DsseEnvelope == nil {
		return nil // protojson explains other shapes
	}
	if !isBase64(raw.DsseEnvelope.Payload) {
		return errors.New("attest: bundle: envelope payload is not a base64 string")
	}
	for i, s := range raw.DsseEnvelope.Signatures {
		if !isBase64(s.Sig) {
			return fmt.Errorf("attest: bundle: envelope signature %d is not a base64 string", i)
		}
	}
	return nil
}

// isBase64 accepts what protojson accepts for bytes: standard or URL
// encoding, padded or not.
func isBase64(v any) bool {
	s, ok := v.(string)
	if !ok {
		return v == nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		if _, err := enc.DecodeString(s); err == nil {
			return true
		}
	}
	return false
}

// maxDepth is how deep JSON may nest in a bundle: a bundle nests about 10
// levels, a predicate a few more.
const maxDepth = 100

// checkDepth reports JSON nested deeper than maxDepth. Deep JSON can be
// valid JSON; the decoders refuse it at some depth with messages that call
// it "not JSON", so say what it is.
func checkDepth(data []byte) error {
	depth, inString, escaped := 0, false, false
	for _, c := range data {
		switch {
		case inString && escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case inString && c == '"':
			inString = false
		case inString:
		case c == '"':
			inString = true
		case c == '{' || c == '[':
			depth++
			if depth > maxDepth {
				return fmt.Errorf("JSON nested more than %d levels deep (a bundle nests about 10): valid JSON, perhaps, but not a bundle this verifier reads", maxDepth)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}
