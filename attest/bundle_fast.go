package attest

import (
	"encoding/base64"
	"strings"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
)

// parseBundleFast decodes a Sigstore bundle as protojson.Unmarshal with
// DiscardUnknown does, for the bundles NewBundle and cosign write with a
// key: a media type, a public key hint, a DSSE envelope. Like
// parseStatementFast it gives up (ok false) on everything else and on
// every error, for protojson to decode or word: a message signature,
// certificates, transparency log entries, timestamps, a JSON null as a
// field's value, a repeated field, base64 that protojson refuses, a key
// in brackets (an extension's name to protojson), and anything that is
// not strict JSON (in skipped fields too: protojson reads
// them). What it accepts is valid JSON. FuzzBundleFastDifferential holds it
// to protojson.
func parseBundleFast(b []byte) (*protobundle.Bundle, bool) {
	p := fastParser{in: b}
	pb, ok := p.bundle()
	if !ok {
		return nil, false
	}
	p.ws()
	if p.pos != len(p.in) {
		return nil, false
	}
	return pb, true
}

const (
	bnMediaType = 1 << iota
	bnVerificationMaterial
	bnDsseEnvelope
)

func (p *fastParser) bundle() (*protobundle.Bundle, bool) {
	pb := new(protobundle.Bundle)
	var seen fieldSet
	ok := p.object(func(key string) bool {
		var f uint
		switch key {
		case "mediaType", "media_type":
			f = bnMediaType
		case "verificationMaterial", "verification_material":
			f = bnVerificationMaterial
		case "dsseEnvelope", "dsse_envelope":
			f = bnDsseEnvelope
		case "messageSignature", "message_signature":
			return false
		default:
			return p.skipUnknown(key, 1)
		}
		if !seen.first(f) {
			return false
		}
		var ok bool
		switch f {
		case bnMediaType:
			pb.MediaType, ok = p.stringValue()
		case bnVerificationMaterial:
			pb.VerificationMaterial, ok = p.verificationMaterial()
		case bnDsseEnvelope:
			var env *dssepb.Envelope
			env, ok = p.envelope()
			pb.Content = &protobundle.Bundle_DsseEnvelope{DsseEnvelope: env}
		}
		return ok
	})
	return pb, ok
}

func (p *fastParser) verificationMaterial() (*protobundle.VerificationMaterial, bool) {
	if p.next() != '{' {
		return nil, false
	}
	vm := new(protobundle.VerificationMaterial)
	seenKey := false
	ok := p.object(func(key string) bool {
		switch key {
		case "publicKey", "public_key":
			if seenKey || p.next() != '{' {
				return false
			}
			seenKey = true
			pk := new(protocommon.PublicKeyIdentifier)
			vm.Content = &protobundle.VerificationMaterial_PublicKey{PublicKey: pk}
			seenHint := false
			return p.object(func(key string) bool {
				if key != "hint" {
					return p.skipUnknown(key, 3)
				}
				if seenHint {
					return false
				}
				seenHint = true
				var ok bool
				pk.Hint, ok = p.stringValue()
				return ok
			})
		case "x509CertificateChain", "x509_certificate_chain", "certificate",
			"tlogEntries", "tlog_entries", "timestampVerificationData", "timestamp_verification_data":
			return false
		}
		return p.skipUnknown(key, 2)
	})
	return vm, ok
}

const (
	envPayload = 1 << iota
	envPayloadType
	envSignatures
)

func (p *fastParser) envelope() (*dssepb.Envelope, bool) {
	if p.next() != '{' {
		return nil, false
	}
	env := new(dssepb.Envelope)
	var seen fieldSet
	ok := p.object(func(key string) bool {
		var f uint
		switch key {
		case "payload":
			f = envPayload
		case "payloadType":
			f = envPayloadType
		case "signatures":
			f = envSignatures
		default:
			return p.skipUnknown(key, 2)
		}
		if !seen.first(f) {
			return false
		}
		var ok bool
		switch f {
		case envPayload:
			env.Payload, ok = p.bytesValue()
		case envPayloadType:
			env.PayloadType, ok = p.stringValue()
		case envSignatures:
			ok = p.array(func() bool {
				s, ok := p.signature()
				env.Signatures = append(env.Signatures, s)
				return ok
			})
		}
		return ok
	})
	return env, ok
}

func (p *fastParser) signature() (*dssepb.Signature, bool) {
	if p.next() != '{' {
		return nil, false
	}
	s := new(dssepb.Signature)
	seenSig, seenKeyID := false, false
	ok := p.object(func(key string) bool {
		var ok bool
		switch key {
		case "sig":
			if seenSig {
				return false
			}
			seenSig = true
			s.Sig, ok = p.bytesValue()
		case "keyid":
			if seenKeyID {
				return false
			}
			seenKeyID = true
			s.Keyid, ok = p.stringValue()
		default:
			ok = p.skipUnknown(key, 3)
		}
		return ok
	})
	return s, ok
}

// bytesValue reads a bytes field's base64 string as protojson does:
// standard or URL alphabet (URL when it holds '-' or '_'), padded when its
// length is a multiple of 4, else unpadded.
func (p *fastParser) bytesValue() ([]byte, bool) {
	s, ok := p.stringValue()
	if !ok {
		return nil, false
	}
	enc := base64.StdEncoding
	if strings.ContainsAny(s, "-_") {
		enc = base64.URLEncoding
	}
	if len(s)%4 != 0 {
		enc = enc.WithPadding(base64.NoPadding)
	}
	b, err := enc.DecodeString(s)
	return b, err == nil
}

// skipUnknown skips the value of key, a name the message has no field
// of, as protojson does with DiscardUnknown; it gives up on a name in
// brackets, which protojson looks up as an extension's even then: a
// registered extension that does not extend the message
// (google.api.field_behavior, wherever the Sigstore protos are), or a
// registered message's name ("[google.protobuf.Any]"), is an error.
func (p *fastParser) skipUnknown(key string, depth int) bool {
	if strings.HasPrefix(key, "[") {
		return false
	}
	return p.skip(depth)
}

// skip reads and drops any JSON value (an unknown field's), strictly: its
// strings must be what protojson reads too.
func (p *fastParser) skip(depth int) bool {
	if depth > maxFastDepth {
		return false
	}
	switch ch := p.next(); {
	case ch == '{':
		return p.object(func(string) bool { return p.skip(depth + 1) })
	case ch == '[':
		return p.array(func() bool { return p.skip(depth + 1) })
	case ch == '"':
		_, ok := p.str()
		return ok
	case ch == 't':
		return p.literal("true")
	case ch == 'f':
		return p.literal("false")
	case ch == 'n':
		return p.literal("null")
	case ch == '-' || '0' <= ch && ch <= '9':
		_, ok := p.number()
		return ok
	}
	return false
}
