package attest_test

import (
	"testing"

	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"

	"github.com/pyrsia/pyrsia-build/attest"
)

var lazyKeyC = &lazyKey{name: "key-c"}

// FuzzVerifyEnvelopeKeyids: a signature's keyid is not signed, so anyone
// who passes an envelope on can set it. Whatever the keyids (none, the
// signer's, another policy key's, an outsider's, junk), the order and
// repeats of the signatures and of the keys, VerifyEnvelope returns
// exactly the policy keys whose own signature is in the envelope, each
// once, in the order of keys: a keyid never makes a signature count for
// another key, twice, or not at all.
func FuzzVerifyEnvelopeKeyids(f *testing.F) {
	a, b, c := keyA(f), keyB(f), lazyKeyC.get(f)
	payload := []byte(`{"_type":"https://in-toto.io/Statement/v1"}`)
	signers := []*testKey{a, b, c}
	sigs := make([][]byte, len(signers))
	for i, k := range signers {
		env, err := k.Signer.SignEnvelope(attest.InTotoPayloadType, payload)
		if err != nil {
			f.Fatal(err)
		}
		sigs[i] = env.Signatures[0].Sig
	}
	keyids := []string{"", a.Pub.ID, b.Pub.ID, c.Pub.ID, "junk"}
	f.Add([]byte{0x00, 0x12, 0x01}, byte(0))
	f.Add([]byte{0x10, 0x10, 0x21}, byte(1))
	f.Add([]byte{0x20, 0x03, 0x41, 0x33}, byte(2))
	f.Fuzz(func(t *testing.T, choice []byte, order byte) {
		var policy []*attest.PublicKey
		switch order % 4 {
		case 0:
			policy = []*attest.PublicKey{a.Pub, b.Pub}
		case 1:
			policy = []*attest.PublicKey{b.Pub, a.Pub}
		case 2:
			policy = []*attest.PublicKey{a.Pub, a.Pub, b.Pub}
		case 3:
			policy = []*attest.PublicKey{b.Pub}
		}
		env := &dssepb.Envelope{PayloadType: attest.InTotoPayloadType, Payload: payload}
		signed := map[string]bool{}
		for _, ch := range choice {
			// Low bits: whose signature (a, b, c, or junk); high bits: the keyid.
			who := int(ch&0x0f) % 4
			sig := []byte("not a signature")
			if who < 3 {
				sig = sigs[who]
				signed[signers[who].Pub.ID] = true
			}
			env.Signatures = append(env.Signatures, &dssepb.Signature{Sig: sig, Keyid: keyids[int(ch>>4)%len(keyids)]})
		}
		got := attest.VerifyEnvelope(env, policy)
		var want []*attest.PublicKey
		if len(env.Signatures) <= attest.MaxSignatures {
			seen := map[string]bool{}
			for _, k := range policy {
				if signed[k.ID] && !seen[k.ID] {
					seen[k.ID] = true
					want = append(want, k)
				}
			}
		}
		if len(got) != len(want) {
			t.Fatalf("signers %v, want %v", names(got), names(want))
		}
		for i := range got {
			if got[i].ID != want[i].ID {
				t.Fatalf("signers %v, want %v", names(got), names(want))
			}
		}
	})
}

func names(ks []*attest.PublicKey) []string {
	var out []string
	for _, k := range ks {
		out = append(out, k.Name)
	}
	return out
}
