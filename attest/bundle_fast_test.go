package attest

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// protojsonParseBundle is ParseBundle as it was before parseBundleFast:
// json.Valid and protojson for every bundle. The differential tests hold
// ParseBundle to it.
func protojsonParseBundle(data []byte) (*Bundle, error) { return parseBundle(data, false) }

// bundleFastSeeds are real bundles (testdata's, NewBundle's) and the forms
// parseBundleFast leaves to protojson or decodes with care.
func bundleFastSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	paths, err := filepath.Glob(filepath.Join("testdata", "*.sigstore.json"))
	if err != nil || len(paths) == 0 {
		tb.Fatalf("no testdata bundles: %v", err)
	}
	var seeds [][]byte
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		seeds = append(seeds, data)
	}
	nb, err := NewBundle(&dssepb.Envelope{
		Payload: buildStatement(tb), PayloadType: InTotoPayloadType,
		Signatures: []*dssepb.Signature{{Sig: []byte("sig-1"), Keyid: "k1"}, {Sig: []byte{0xfb, 0xff}}},
	}, "node-a").MarshalJSON()
	if err != nil {
		tb.Fatal(err)
	}
	seeds = append(seeds, nb)
	const head = `{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"h"}},`
	for _, s := range []string{
		``, ` `, `{}`, `null`, `[]`, `{} {}`,
		head + `"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA==","keyid":"k"}]}}`,
		`{"media_type":"application/vnd.dev.sigstore.bundle.v0.3+json","verification_material":{"public_key":{"hint":"h","x":[1,{"y":null}]},"z":"\u00e9"},"dsse_envelope":{"payload":"e30","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"-_8","extra":true}],"x":1.5e3},"unknown":{"a":[]},"unknown":2}`,
		head + `"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"A==="}]}}`,
		head + `"dsseEnvelope":{"payload":"e3-_","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"+/+/"}]}}`,
		head + `"dsseEnvelope":{"payload":"e30=","payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]}}`,
		head + `"dsseEnvelope":{"payload":null,"payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]}}`,
		head + `"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":null}}`,
		head + `"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]},"x":"\ud800"}`,
		head + `"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]},"x":1e400}`,
		head + `"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]},"[x.y]":1}`,
		head + `"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA==","[google.api.field_behavior]":1}]}}`,
		head + `"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]},"messageSignature":{}}`,
		head + `"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]},"dsse_envelope":{}}`,
		`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"certificate":{"rawBytes":"AA=="}},"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]}}`,
		`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"h"},"tlogEntries":[]},"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]}}`,
		`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":null},"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]}}`,
		`{"mediaType":"x","verificationMaterial":{},"dsseEnvelope":{}}`,
		head + `"dsseEnvelope":{"payload":"","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":""}]}}`,
		head + `"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="},]}}`,
		"{\"mediaType\":\"\xff\"}",
		`{"a":` + strings.Repeat("[", 99) + strings.Repeat("]", 99) + `}`,
	} {
		seeds = append(seeds, []byte(s))
	}
	return seeds
}

// checkBundleDifferential holds parseBundleFast and ParseBundle to
// protojson on data, and reports whether the fast path took data.
func checkBundleDifferential(t *testing.T, data []byte) bool {
	t.Helper()
	fast, ok := parseBundleFast(data)
	if ok {
		if !json.Valid(data) {
			t.Fatalf("parseBundleFast accepts what is not JSON:\n%q", data)
		}
		ref := new(protobundle.Bundle)
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, ref); err != nil {
			t.Fatalf("parseBundleFast accepts what protojson refuses (%v):\n%q", err, data)
		}
		if !proto.Equal(fast, ref) {
			t.Fatalf("parseBundleFast decodes differently from protojson:\ngot  %v\nwant %v\ninput %q", fast, ref, data)
		}
	}
	got, gotErr := ParseBundle(data)
	want, wantErr := protojsonParseBundle(data)
	if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
		t.Fatalf("ParseBundle: got error %v, want %v\ninput %q", gotErr, wantErr, data)
	}
	if gotErr == nil && !proto.Equal(got.pb, want.pb) {
		t.Fatalf("ParseBundle: got %v, want %v\ninput %q", got.pb, want.pb, data)
	}
	return ok
}

func TestBundleFastDifferential(t *testing.T) {
	took := 0
	seeds := bundleFastSeeds(t)
	for i, s := range seeds {
		fastOK := checkBundleDifferential(t, s)
		if fastOK {
			took++
		}
		if _, err := ParseBundle(s); err == nil && !fastOK && i < 3 {
			t.Errorf("seed %d: parseBundleFast gave up on a real bundle:\n%s", i, s)
		}
	}
	if took < 8 {
		t.Errorf("parseBundleFast took %d of %d seeds, want at least 8", took, len(seeds))
	}
}

// FuzzBundleFastDifferential: ParseBundle (fast path, then protojson)
// accepts and rejects what protojson alone does, with the same bundle
// and error; what parseBundleFast accepts, protojson decodes the same.
func FuzzBundleFastDifferential(f *testing.F) {
	for _, s := range bundleFastSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkBundleDifferential(t, data)
	})
}

// BenchmarkParseBundle: NewBundle's bundle by protojson (before
// parseBundleFast) and by ParseBundle.
func BenchmarkParseBundle(b *testing.B) {
	data, err := NewBundle(&dssepb.Envelope{
		Payload: buildStatement(b), PayloadType: InTotoPayloadType,
		Signatures: []*dssepb.Signature{{Sig: bytes.Repeat([]byte{7}, 72), Keyid: "k1"}},
	}, "node-a").MarshalJSON()
	if err != nil {
		b.Fatal(err)
	}
	for _, bm := range []struct {
		name  string
		parse func([]byte) (*Bundle, error)
	}{{"protojson", protojsonParseBundle}, {"fast", ParseBundle}} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := bm.parse(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
