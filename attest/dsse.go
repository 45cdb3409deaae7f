package attest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"
	"strconv"

	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
)

// InTotoPayloadType is the DSSE payload type of an in-toto statement.
const InTotoPayloadType = "application/vnd.in-toto+json"

// PAE is DSSE's pre-authentication encoding, the bytes that are signed:
// "DSSEv1" SP len(type) SP type SP len(payload) SP payload.
func PAE(payloadType string, payload []byte) []byte {
	var b bytes.Buffer
	b.Grow(len(payloadType) + len(payload) + 32)
	b.WriteString("DSSEv1 ")
	b.WriteString(strconv.Itoa(len(payloadType)))
	b.WriteByte(' ')
	b.WriteString(payloadType)
	b.WriteByte(' ')
	b.WriteString(strconv.Itoa(len(payload)))
	b.WriteByte(' ')
	b.Write(payload)
	return b.Bytes()
}

// SignEnvelope signs payload as a DSSE envelope with one signature.
func (s *Signer) SignEnvelope(payloadType string, payload []byte) (*dssepb.Envelope, error) {
	sig, err := s.sv.SignMessage(bytes.NewReader(PAE(payloadType, payload)))
	if err != nil {
		return nil, fmt.Errorf("attest: signing envelope: %w", err)
	}
	return &dssepb.Envelope{
		Payload:     payload,
		PayloadType: payloadType,
		// The key id is left empty, as cosign does: keys are matched by
		// trying them, never by a claim inside the signed object.
		Signatures: []*dssepb.Signature{{Sig: sig}},
	}, nil
}

// MaxSignatures bounds the signatures of one DSSE envelope. A bundle
// carries one (cosign writes one); a few more are allowed for envelopes
// signed by several keys. Each is checked against each key, so the bound
// keeps a hostile bundle from costing millions of checks.
const MaxSignatures = 16

// VerifyEnvelope checks every signature of env against keys and returns the
// distinct keys that signed it (a key listed twice counts once), in the
// order of keys. A signature that no key verifies is ignored: it is the
// caller's policy that decides how many signers are enough. The signed
// bytes are hashed once, whatever the number of keys and signatures; an
// envelope with more than [MaxSignatures] signatures has no signer.
//
// Each signature counts for the first key that verifies it, and keys that
// already signed are not tried again: a policy of n keys costs one to n
// verifications per signature, not n. A signature's keyid (DSSE's, not
// signed) only chooses the key tried first: when it names one of keys and
// that key verifies the signature, no other key is tried; when it names
// none of them, or its key does not verify, every other key is tried as
// if there were no keyid. A keyid never makes a signature count for a key
// that did not verify it.
func VerifyEnvelope(env *dssepb.Envelope, keys []*PublicKey) []*PublicKey {
	sigs := env.GetSignatures()
	if len(sigs) > MaxSignatures {
		return nil
	}
	p := prepare(env)
	signed := make(map[string]bool)
	for _, sig := range sigs {
		s := sig.GetSig()
		tried := ""
		if id := sig.GetKeyid(); id != "" {
			if k := keyWithID(keys, id); k != nil && !signed[k.ID] {
				if k.verifyDigest(p.pae, p.digest[:], s) {
					signed[k.ID] = true
					continue
				}
				tried = k.ID
			}
		}
		for _, k := range keys {
			if signed[k.ID] || k.ID == tried {
				continue
			}
			if k.verifyDigest(p.pae, p.digest[:], s) {
				signed[k.ID] = true
				break
			}
		}
	}
	var signers []*PublicKey
	for _, k := range keys {
		if signed[k.ID] {
			signers = append(signers, k)
			delete(signed, k.ID)
		}
	}
	return signers
}

func keyWithID(keys []*PublicKey, id string) *PublicKey {
	for _, k := range keys {
		if k.ID == id {
			return k
		}
	}
	return nil
}

// prepared is an envelope with its PAE and the PAE's SHA-256, computed once.
type prepared struct {
	env    *dssepb.Envelope
	pae    []byte
	digest [sha256.Size]byte
}

func prepare(env *dssepb.Envelope) *prepared {
	pae := PAE(env.GetPayloadType(), env.GetPayload())
	return &prepared{env: env, pae: pae, digest: sha256.Sum256(pae)}
}

// signedBy reports whether a signature of the envelope verifies with k.
func (p *prepared) signedBy(k *PublicKey) bool {
	sigs := p.env.GetSignatures()
	if len(sigs) > MaxSignatures {
		return false
	}
	for _, sig := range sigs {
		if k.verifyDigest(p.pae, p.digest[:], sig.GetSig()) {
			return true
		}
	}
	return false
}

// verifyDigest checks sig over msg, whose SHA-256 is digest, as
// signature.LoadVerifier(key, crypto.SHA256) would, without hashing msg
// again for ECDSA and RSA keys.
func (k *PublicKey) verifyDigest(msg, digest, sig []byte) bool {
	switch pub := k.key.(type) {
	case *ecdsa.PublicKey:
		return ecdsa.VerifyASN1(pub, digest, sig)
	case *rsa.PublicKey:
		return rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest, sig) == nil
	default:
		return k.v.VerifySignature(bytes.NewReader(sig), bytes.NewReader(msg)) == nil
	}
}
