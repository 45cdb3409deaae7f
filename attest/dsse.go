package attest

import (
	"bytes"
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

// VerifyEnvelope checks every signature of env against keys and returns the
// distinct keys that signed it (a key listed twice counts once), in the
// order of keys. A signature that no
// key verifies is ignored: it is the caller's policy that decides how many
// signers are enough.
func VerifyEnvelope(env *dssepb.Envelope, keys []*PublicKey) []*PublicKey {
	pae := PAE(env.GetPayloadType(), env.GetPayload())
	var signers []*PublicKey
	seen := make(map[string]bool)
	for _, k := range keys {
		if seen[k.ID] {
			continue
		}
		for _, sig := range env.GetSignatures() {
			if err := k.v.VerifySignature(bytes.NewReader(sig.GetSig()), bytes.NewReader(pae)); err == nil {
				signers = append(signers, k)
				seen[k.ID] = true
				break
			}
		}
	}
	return signers
}
