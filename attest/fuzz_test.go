package attest_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/pyrsia/pyrsia-build/attest"
)

// bundleSeeds returns every testdata/*.sigstore.json.
func bundleSeeds(f *testing.F) [][]byte {
	f.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*.sigstore.json"))
	if err != nil {
		f.Fatal(err)
	}
	if len(paths) == 0 {
		f.Fatal("no testdata/*.sigstore.json to seed from")
	}
	var seeds [][]byte
	for _, p := range paths {
		seeds = append(seeds, readTestdata(f, filepath.Base(p)))
	}
	return seeds
}

func FuzzParseBundle(f *testing.F) {
	seeds := bundleSeeds(f)
	// Payloads signed by the fixture keys: the only ones a bundle that
	// verifies may carry.
	signed := map[string]bool{}
	for _, s := range seeds {
		f.Add(s)
		b, err := attest.ParseBundle(s)
		if err != nil {
			f.Fatalf("seed does not parse: %v", err)
		}
		signed[string(b.Envelope().GetPayload())] = true
		f.Add(s[:len(s)/2])
		f.Add(bytes.Replace(s, []byte(`"payloadType":"application/vnd.in-toto+json"`), []byte(`"payloadType":"text/plain"`), 1))
		f.Add(bytes.Replace(s, []byte(`"publicKey"`), []byte(`"certificate"`), 1))
	}
	for _, s := range []string{
		``,
		`{}`,
		`null`,
		`[]`,
		`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}`,
		`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{}},"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]}}`,
		`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{}},"dsseEnvelope":{"payload":"e30","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"-_8"}]}}`,
		`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{}},"messageSignature":{"signature":"AA=="}}`,
		`{"dsseEnvelope":{"payload":7,"signatures":[{"sig":null}]}}`,
		"{\"mediaType\":\"\xff\"}",
	} {
		f.Add([]byte(s))
	}

	var keys []*attest.PublicKey
	for _, fx := range fixtures {
		keys = append(keys, testdataKey(f, fx.key))
	}
	v, err := attest.NewVerifier(attest.VerifierOptions{Keys: keys})
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := attest.ParseBundle(data)
		if err != nil {
			if b != nil {
				t.Fatalf("got a bundle and error %v, want nil bundle", err)
			}
			return
		}
		env := b.Envelope()
		switch {
		case env == nil:
			t.Fatal("parsed bundle has no envelope")
		case len(env.GetSignatures()) == 0:
			t.Fatal("parsed bundle has no signatures")
		case env.GetPayloadType() != attest.InTotoPayloadType:
			t.Fatalf("payload type: got %q, want %q", env.GetPayloadType(), attest.InTotoPayloadType)
		case len(env.GetPayload()) == 0:
			t.Fatal("parsed bundle has an empty payload")
		}
		for i, s := range env.GetSignatures() {
			if len(s.GetSig()) == 0 {
				t.Fatalf("signature %d is empty", i)
			}
		}

		again, err := b.MarshalJSON()
		if err != nil {
			t.Fatalf("MarshalJSON of a parsed bundle: %v", err)
		}
		b2, err := attest.ParseBundle(again)
		if err != nil {
			t.Fatalf("ParseBundle(MarshalJSON()) of a parsed bundle: %v\n%s", err, again)
		}
		if !proto.Equal(b2.Envelope(), env) || b2.MediaType() != b.MediaType() || b2.KeyHint() != b.KeyHint() {
			t.Fatalf("re-parsed bundle differs:\n%s", again)
		}

		// Verification must not panic, and nothing but a fixture's signed
		// payload may verify.
		ev, err := v.Verify(context.Background(), memArtifact("a.txt", hello), b)
		if err == nil && !signed[string(env.GetPayload())] {
			t.Fatalf("a payload no fixture key signed verified, by %d keys:\n%s", len(ev.Signers), env.GetPayload())
		}
	})
}

func FuzzParseStatement(f *testing.F) {
	for _, s := range bundleSeeds(f) {
		b, err := attest.ParseBundle(s)
		if err != nil {
			f.Fatalf("seed does not parse: %v", err)
		}
		p := b.Envelope().GetPayload()
		f.Add(p)
		f.Add(p[:len(p)-1])
		f.Add(bytes.Replace(p, []byte(`"sha256"`), []byte(`"sha512"`), 1))
	}
	subject := `"subject":[{"name":"a.txt","digest":{"sha256":"` + digestHello + `"}}]`
	for _, s := range []string{
		``,
		`{}`,
		`null`,
		`{"_type":"https://in-toto.io/Statement/v1"}`,
		`{"_type":"https://in-toto.io/Statement/v0.1",` + subject + `,"predicateType":"p","predicate":{}}`,
		`{"_type":"https://in-toto.io/Statement/v1",` + subject + `,"predicateType":"p","predicate":{"n":1e308,"l":[null,true,"x"]}}`,
		`{"_type":"https://in-toto.io/Statement/v1","subject":[{"digest":{"sha256":"AB"}}],"predicateType":"p","predicate":{}}`,
		`{"_type":"https://in-toto.io/Statement/v1","subject":[{"uri":"x","digest":{"custom":"?"}}],"predicate_type":"p","predicate":{}}`,
		`{"_type":"https://in-toto.io/Statement/v1",` + subject + `,"predicateType":"p","predicate":{},"x":1}`,
	} {
		f.Add([]byte(s))
	}

	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := attest.ParseStatement(data)
		if err != nil {
			if st != nil {
				t.Fatalf("got a statement and error %v, want nil statement", err)
			}
			return
		}
		if typ := st.GetType(); typ != attest.StatementTypeV1 && typ != attest.StatementTypeV01 {
			t.Fatalf("_type: got %q, want v1 or v0.1", typ)
		}
		if len(st.GetSubject()) == 0 {
			t.Fatal("parsed statement has no subject")
		}
		for i, s := range st.GetSubject() {
			if len(s.GetDigest()) == 0 {
				t.Fatalf("subject %d has no digest", i)
			}
		}
		if st.GetPredicateType() == "" || st.GetPredicate() == nil {
			t.Fatal("parsed statement has no predicate")
		}

		again, err := attest.MarshalStatement(st)
		if err != nil {
			t.Fatalf("MarshalStatement of a parsed statement: %v", err)
		}
		st2, err := attest.ParseStatement(again)
		if err != nil {
			t.Fatalf("ParseStatement(MarshalStatement()) of a parsed statement: %v\n%s", err, again)
		}
		if !proto.Equal(st2, st) {
			t.Fatalf("re-parsed statement differs:\ngot  %v\nwant %v", st2, st)
		}
	})
}

// FuzzParsePublicKey feeds key files from outside: one PEM block and
// nothing else, or an error; never a panic.
func FuzzParsePublicKey(f *testing.F) {
	for _, name := range []string{"cosign.pub", "pyrsia.pub"} {
		b := readTestdata(f, name)
		f.Add(b)
		f.Add(append(append([]byte(nil), b...), b...))
		f.Add(append(append([]byte(nil), b...), "garbage"...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		k, err := attest.ParsePublicKey("k", data)
		if err != nil {
			if k != nil {
				t.Fatal("a key with an error")
			}
			return
		}
		if k.ID == "" || k.Key() == nil {
			t.Fatalf("key without id or key: %+v", k)
		}
	})
}
