package attest_test

import (
	"slices"
	"strings"
	"testing"

	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"

	"github.com/pyrsia/pyrsia-build/attest"
)

func TestPAE(t *testing.T) {
	tests := []struct {
		name        string
		payloadType string
		payload     string
		want        string
	}{
		{
			// https://github.com/secure-systems-lab/dsse/blob/master/protocol.md#test-vectors
			name:        "dsse spec vector",
			payloadType: "http://example.com/HelloWorld",
			payload:     "hello world",
			want:        "DSSEv1 29 http://example.com/HelloWorld 11 hello world",
		},
		{
			name: "empty",
			want: "DSSEv1 0  0 ",
		},
		{
			name:        "lengths count bytes, not runes",
			payloadType: "t",
			payload:     "é",
			want:        "DSSEv1 1 t 2 é",
		},
		{
			name:        "payload with spaces and newlines is not escaped",
			payloadType: attest.InTotoPayloadType,
			payload:     "a b\nc",
			want:        "DSSEv1 28 application/vnd.in-toto+json 5 a b\nc",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(attest.PAE(tt.payloadType, []byte(tt.payload)))
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestVerifyEnvelope(t *testing.T) {
	a, b := keyA(t), keyB(t)
	payload := []byte(`{"hello":"world"}`)
	byA, err := a.Signer.SignEnvelope(attest.InTotoPayloadType, payload)
	if err != nil {
		t.Fatal(err)
	}
	byB, err := b.Signer.SignEnvelope(attest.InTotoPayloadType, payload)
	if err != nil {
		t.Fatal(err)
	}
	if got := len(byA.GetSignatures()); got != 1 {
		t.Fatalf("SignEnvelope: got %d signatures, want 1", got)
	}
	if got := byA.GetSignatures()[0].GetKeyid(); got != "" {
		t.Errorf("SignEnvelope: got keyid %q, want none (as cosign)", got)
	}
	byBoth := &dssepb.Envelope{
		Payload:     payload,
		PayloadType: attest.InTotoPayloadType,
		Signatures:  []*dssepb.Signature{byB.Signatures[0], byA.Signatures[0]},
	}
	otherType := &dssepb.Envelope{Payload: payload, PayloadType: "text/plain", Signatures: byA.Signatures}
	otherPayload := &dssepb.Envelope{Payload: []byte(`{"hello":"World"}`), PayloadType: attest.InTotoPayloadType, Signatures: byA.Signatures}
	doubled := &dssepb.Envelope{Payload: payload, PayloadType: attest.InTotoPayloadType, Signatures: []*dssepb.Signature{byA.Signatures[0], byA.Signatures[0]}}
	// A keyid is not signed: it only picks the key tried first.
	withKeyID := func(env *dssepb.Envelope, ids ...string) *dssepb.Envelope {
		out := &dssepb.Envelope{Payload: env.Payload, PayloadType: env.PayloadType}
		for i, sig := range env.Signatures {
			out.Signatures = append(out.Signatures, &dssepb.Signature{Sig: sig.Sig, Keyid: ids[i]})
		}
		return out
	}
	aAsA := withKeyID(byA, a.Pub.ID)
	aAsB := withKeyID(byA, b.Pub.ID)
	aAsUnknown := withKeyID(byA, strings.Repeat("0", 64))
	bothSwapped := withKeyID(byBoth, a.Pub.ID, b.Pub.ID) // byBoth is b's then a's
	bothAsA := withKeyID(byBoth, a.Pub.ID, a.Pub.ID)

	tests := []struct {
		name string
		env  *dssepb.Envelope
		keys []*attest.PublicKey
		want []string // names of the signers, in order
	}{
		{"signed by a, keys a b", byA, []*attest.PublicKey{a.Pub, b.Pub}, []string{"key-a"}},
		{"signed by a, key b", byA, []*attest.PublicKey{b.Pub}, nil},
		{"signed by both, keys a b", byBoth, []*attest.PublicKey{a.Pub, b.Pub}, []string{"key-a", "key-b"}},
		{"signed by both, keys b a", byBoth, []*attest.PublicKey{b.Pub, a.Pub}, []string{"key-b", "key-a"}},
		{"two signatures by a count once", doubled, []*attest.PublicKey{a.Pub}, []string{"key-a"}},
		{"payload type changed", otherType, []*attest.PublicKey{a.Pub, b.Pub}, nil},
		{"payload changed", otherPayload, []*attest.PublicKey{a.Pub, b.Pub}, nil},
		{"keyid of the signer", aAsA, []*attest.PublicKey{b.Pub, a.Pub}, []string{"key-a"}},
		{"keyid of another key: the signer still found, the other not counted", aAsB, []*attest.PublicKey{a.Pub, b.Pub}, []string{"key-a"}},
		{"keyid of another key, the signer not listed", aAsB, []*attest.PublicKey{b.Pub}, nil},
		{"keyid of no listed key", aAsUnknown, []*attest.PublicKey{b.Pub, a.Pub}, []string{"key-a"}},
		{"both keyids wrong", bothSwapped, []*attest.PublicKey{a.Pub, b.Pub}, []string{"key-a", "key-b"}},
		{"both claim a", bothAsA, []*attest.PublicKey{b.Pub, a.Pub}, []string{"key-b", "key-a"}},
		{"no keys", byA, nil, nil},
		{"nil envelope", nil, []*attest.PublicKey{a.Pub}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, k := range attest.VerifyEnvelope(tt.env, tt.keys) {
				got = append(got, k.Name)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("got signers %q, want %q", got, tt.want)
			}
		})
	}
}
