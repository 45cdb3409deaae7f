package attest_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/pyrsia/pyrsia-build/attest"
)

func TestBundleRoundTrip(t *testing.T) {
	k := keyA(t)
	b := attestContent(t, k, "a.txt", []byte("hello\n"))
	if got, want := b.MediaType(), attest.BundleMediaType; got != want {
		t.Errorf("MediaType: got %q, want %q", got, want)
	}
	if got, want := b.KeyHint(), k.Signer.KeyHint(); got != want {
		t.Errorf("KeyHint: got %q, want %q", got, want)
	}

	data, err := b.MarshalJSON()
	if err != nil {
		t.Fatalf("MarshalJSON: %v", err)
	}
	// The JSON layout cosign writes and reads.
	var shape struct {
		MediaType            string `json:"mediaType"`
		VerificationMaterial struct {
			PublicKey struct {
				Hint string `json:"hint"`
			} `json:"publicKey"`
		} `json:"verificationMaterial"`
		DsseEnvelope struct {
			Payload     []byte `json:"payload"`
			PayloadType string `json:"payloadType"`
			Signatures  []struct {
				Sig []byte `json:"sig"`
			} `json:"signatures"`
		} `json:"dsseEnvelope"`
	}
	if err := json.Unmarshal(data, &shape); err != nil {
		t.Fatalf("bundle JSON: %v\n%s", err, data)
	}
	if shape.MediaType != attest.BundleMediaType ||
		shape.VerificationMaterial.PublicKey.Hint != k.Signer.KeyHint() ||
		shape.DsseEnvelope.PayloadType != attest.InTotoPayloadType ||
		len(shape.DsseEnvelope.Payload) == 0 ||
		len(shape.DsseEnvelope.Signatures) != 1 || len(shape.DsseEnvelope.Signatures[0].Sig) == 0 {
		t.Errorf("bundle JSON does not have the Sigstore v0.3 layout:\n%s", data)
	}

	back, err := attest.ParseBundle(data)
	if err != nil {
		t.Fatalf("ParseBundle(MarshalJSON()): %v", err)
	}
	if got, want := back.MediaType(), b.MediaType(); got != want {
		t.Errorf("MediaType after round trip: got %q, want %q", got, want)
	}
	if got, want := back.KeyHint(), b.KeyHint(); got != want {
		t.Errorf("KeyHint after round trip: got %q, want %q", got, want)
	}
	if !proto.Equal(back.Envelope(), b.Envelope()) {
		t.Errorf("envelope after round trip:\ngot  %v\nwant %v", back.Envelope(), b.Envelope())
	}
	again, err := back.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, data) {
		t.Errorf("MarshalJSON after round trip:\ngot  %s\nwant %s", again, data)
	}
}

func TestParseBundleMediaTypes(t *testing.T) {
	fixture := readTestdata(t, "cosign-attest-blob.sigstore.json")
	for _, mt := range []string{
		"application/vnd.dev.sigstore.bundle.v0.3+json",
		"application/vnd.dev.sigstore.bundle+json;version=0.3",
		"application/vnd.dev.sigstore.bundle+json;version=0.2",
		"application/vnd.dev.sigstore.bundle+json;version=0.1",
	} {
		t.Run(mt, func(t *testing.T) {
			data := mutateJSON(t, fixture, func(m map[string]any) { m["mediaType"] = mt })
			b, err := attest.ParseBundle(data)
			if err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			if got := b.MediaType(); got != mt {
				t.Errorf("MediaType: got %q, want %q", got, mt)
			}
		})
	}
}

func TestParseBundleErrors(t *testing.T) {
	fixture := readTestdata(t, "cosign-attest-blob.sigstore.json")
	edit := func(f func(m map[string]any)) []byte { return mutateJSON(t, fixture, f) }
	envelope := func(m map[string]any) map[string]any { return obj(t, m, "dsseEnvelope") }

	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "attest: bundle: file is empty"},
		{"truncated JSON", fixture[:len(fixture)/2], "attest: bundle: JSON ends early (truncated file?)"},
		{"not JSON", []byte("mediaType: application/vnd.dev.sigstore.bundle.v0.3+json\n"), "attest: bundle: not JSON (at byte 1: invalid character 'm'"},
		{"JSON array", []byte(`[]`), "attest: bundle: not a Sigstore bundle: "},
		{"JSON null", []byte(`null`), "attest: bundle: not a Sigstore bundle: "},
		{"wrong field type", []byte(`{"mediaType":3}`), "attest: bundle: not a Sigstore bundle: "},
		{
			"unknown media type",
			edit(func(m map[string]any) { m["mediaType"] = "application/vnd.dev.sigstore.bundle.v0.4+json" }),
			`attest: bundle: unknown media type "application/vnd.dev.sigstore.bundle.v0.4+json" (want "application/vnd.dev.sigstore.bundle.v0.3+json")`,
		},
		{
			"missing media type",
			edit(func(m map[string]any) { delete(m, "mediaType") }),
			"attest: bundle: missing mediaType (not a Sigstore bundle?)",
		},
		{
			"bad base64 payload",
			edit(func(m map[string]any) { envelope(m)["payload"] = "not base64!" }),
			"attest: bundle: envelope payload is not a base64 string",
		},
		{
			"payload not a string",
			edit(func(m map[string]any) { envelope(m)["payload"] = 42 }),
			"attest: bundle: envelope payload is not a base64 string",
		},
		{
			"bad base64 signature",
			edit(func(m map[string]any) { envelope(m)["signatures"] = []any{map[string]any{"sig": "%%%"}} }),
			"attest: bundle: envelope signature 0 is not a base64 string",
		},
		{
			"message signature bundle",
			edit(func(m map[string]any) {
				delete(m, "dsseEnvelope")
				m["messageSignature"] = map[string]any{
					"messageDigest": map[string]any{"algorithm": "SHA2_256", "digest": "WJG1tSLV3whtD/CxEPvZ0hu0/HFjrzTQgoai6Eb2vgM="},
					"signature":     "MEUCIQCAgRDM2Br4TewzVCpyVSj+tkbwkbLpxqXHxJ0wZc6yqA==",
				}
			}),
			"attest: bundle: holds a plain message signature, not an attestation (DSSE envelope)",
		},
		{
			"no content",
			edit(func(m map[string]any) { delete(m, "dsseEnvelope") }),
			"attest: bundle: no DSSE envelope",
		},
		{
			"no signatures",
			edit(func(m map[string]any) { envelope(m)["signatures"] = []any{} }),
			"attest: bundle: envelope has no signatures",
		},
		{
			"signatures missing",
			edit(func(m map[string]any) { delete(envelope(m), "signatures") }),
			"attest: bundle: envelope has no signatures",
		},
		{
			"empty signature",
			edit(func(m map[string]any) {
				sigs := envelope(m)["signatures"].([]any)
				envelope(m)["signatures"] = append(sigs, map[string]any{"sig": ""})
			}),
			"attest: bundle: envelope signature 1 is empty",
		},
		{
			"wrong payload type",
			edit(func(m map[string]any) { envelope(m)["payloadType"] = "application/json" }),
			`attest: bundle: envelope payload type "application/json", want "application/vnd.in-toto+json"`,
		},
		{
			"empty payload",
			edit(func(m map[string]any) { envelope(m)["payload"] = "" }),
			"attest: bundle: envelope has an empty payload",
		},
		{
			"certificate verification material",
			edit(func(m map[string]any) {
				m["verificationMaterial"] = map[string]any{"certificate": map[string]any{"rawBytes": "MIIB"}}
			}),
			"attest: bundle: signed with a certificate (keyless signing)",
		},
		{
			"certificate chain verification material",
			edit(func(m map[string]any) {
				m["verificationMaterial"] = map[string]any{"x509CertificateChain": map[string]any{"certificates": []any{map[string]any{"rawBytes": "MIIB"}}}}
			}),
			"attest: bundle: signed with a certificate (keyless signing)",
		},
		{
			"missing verification material",
			edit(func(m map[string]any) { delete(m, "verificationMaterial") }),
			"attest: bundle: missing verificationMaterial",
		},
		{
			"verification material names no key",
			edit(func(m map[string]any) { m["verificationMaterial"] = map[string]any{} }),
			"attest: bundle: verificationMaterial names no key",
		},
		{
			"oversize",
			append(bytes.Clone(fixture), bytes.Repeat([]byte(" "), attest.MaxBundleSize)...),
			"bytes is over the 34603008 byte limit",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := attest.ParseBundle(tt.in)
			wantErrContains(t, err, tt.want)
			if b != nil {
				t.Errorf("got a bundle with the error, want nil")
			}
		})
	}
}

// Fields this package does not read (a transparency log entry, say) are
// ignored, so bundles from newer cosign versions still parse.
func TestParseBundleIgnoresUnknownFields(t *testing.T) {
	data := mutateJSON(t, readTestdata(t, "cosign-attest-blob.sigstore.json"), func(m map[string]any) {
		m["futureField"] = map[string]any{"x": 1}
		obj(t, m, "verificationMaterial")["tlogEntries"] = []any{}
	})
	if _, err := attest.ParseBundle(data); err != nil {
		t.Errorf("got %v, want no error", err)
	}
}

// A syntax error in the last byte of a file is not a truncated file.
func TestParseBundleTrailingGarbage(t *testing.T) {
	fixture := readTestdata(t, "cosign-attest-blob.sigstore.json")
	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"trailing garbage", append(bytes.TrimSpace(bytes.Clone(fixture)), 'x'), "attest: bundle: not JSON"},
		{"one bad byte", []byte("\xff"), "attest: bundle: not JSON"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := attest.ParseBundle(tt.in)
			wantErrContains(t, err, tt.want)
			if strings.Contains(err.Error(), "truncated") {
				t.Errorf("got %q, want no mention of truncation", err)
			}
		})
	}
}
