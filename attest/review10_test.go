package attest

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoregistry"
)

// TestBundleFastExtensionNameKey: a key in brackets is an extension's
// name to protojson, which it looks up in the registry even with
// DiscardUnknown; a registered extension (google.api.field_behavior: the
// Sigstore protos import its annotations, so every binary that reads a
// bundle has it) that does not extend the message is an error. The fast
// path skipped such a key as an unknown field and accepted the bundle, at
// every level where it skips unknown fields: a node on protojson (an
// older one, or any after a fallback) refused the vote it accepted.
func TestBundleFastExtensionNameKey(t *testing.T) {
	const ext = "google.api.field_behavior"
	if _, err := protoregistry.GlobalTypes.FindExtensionByName(ext); err != nil {
		t.Fatalf("%s is not registered (%v): the test shows nothing", ext, err)
	}
	const k = `"[` + ext + `]":0`
	const env = `"payloadType":"application/vnd.in-toto+json","payload":"e30="`
	for _, s := range []string{
		`{` + k + `,"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"h"}},"dsseEnvelope":{` + env + `,"signatures":[{"sig":"AA=="}]}}`,
		`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{` + k + `,"publicKey":{"hint":"h"}},"dsseEnvelope":{` + env + `,"signatures":[{"sig":"AA=="}]}}`,
		`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"h",` + k + `}},"dsseEnvelope":{` + env + `,"signatures":[{"sig":"AA=="}]}}`,
		`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"h"}},"dsseEnvelope":{` + k + `,` + env + `,"signatures":[{"sig":"AA=="}]}}`,
		`{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"h"}},"dsseEnvelope":{` + env + `,"signatures":[{"sig":"AA==",` + k + `}]}}`,
		// The same name spelled with an escape is the same name.
		`{"\u005b` + ext + `\u005d":0,"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json","verificationMaterial":{"publicKey":{"hint":"h"}},"dsseEnvelope":{` + env + `,"signatures":[{"sig":"AA=="}]}}`,
	} {
		checkBundleDifferential(t, []byte(s))
		if _, err := ParseBundle([]byte(s)); err == nil {
			t.Errorf("ParseBundle accepts a bundle with a registered extension's name as a key:\n%s", s)
		}
	}
}

// TestBundleFastReview10Forms: adversarial bundles held to protojson:
// base64 variants, names by case, escapes in keys, numbers and UTF-8 in
// skipped fields, nulls, BOM, trailing data.
func TestBundleFastReview10Forms(t *testing.T) {
	const mt = `"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"`
	const vm = `"verificationMaterial":{"publicKey":{"hint":"h"}}`
	envWith := func(payload, sig string) string {
		return `{` + mt + `,` + vm + `,"dsseEnvelope":{"payload":` + payload + `,"payloadType":"application/vnd.in-toto+json","signatures":[{"sig":` + sig + `}]}}`
	}
	forms := []string{
		envWith(`"e30="`, `"AA=="`),
		envWith(`"e30"`, `"AA"`),
		envWith(`"e30=="`, `"AA="`),
		envWith(`"e3\n0="`, `"AA\r\n=="`),
		envWith(`"e3 0="`, `"AA=="`),
		envWith(`"e30=\n"`, `"AA=="`),
		envWith(`"e3-="`, `"A_=="`),
		envWith(`"e3+_"`, `"AA=="`),
		envWith(`"AB=="`, `"AB=="`), // non-zero trailing bits
		envWith(`"AB"`, `"AQ"`),
		envWith(`"\u0065\u0033\u0030="`, `"AA=="`),
		envWith(`"e30="`, `""`),
		envWith(`"e30="`, `null`),
		envWith(`"e30="`, `1`),
		envWith(`"e30="`, `"A"`),
		envWith(`"e30="`, `"AAAAA"`),
		envWith(`"e30="`, `"===="`),
		"\xef\xbb\xbf" + envWith(`"e30="`, `"AA=="`),
		envWith(`"e30="`, `"AA=="`) + "\x00",
		envWith(`"e30="`, `"AA=="`) + ` `,
		envWith(`"e30="`, `"AA=="`) + `}`,
		`{"MediaType":"application/vnd.dev.sigstore.bundle.v0.3+json",` + vm + `,"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]}}`,
		`{` + mt + `,` + vm + `,"DsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]}}`,
		`{` + mt + `,` + vm + `,"dsseEnvelope":{"Payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]}}`,
		`{` + mt + `,` + vm + `,"dsseEnvelope":{"payload":"e30=","payload_type":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]}}`,
		`{` + mt + `,` + vm + `,"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA==","keyId":"k","key_id":"k"}]}}`,
		`{` + mt + `,` + vm + `,"dsse\u0045nvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]}}`,
		`{"\u006dediaType":"x",` + mt + `,` + vm + `,"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]}}`,
		`{` + mt + `,"verification_material":{"public_key":{"hint":"h"}},"verificationMaterial":{"publicKey":{"hint":"h"}},"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]}}`,
		`{` + mt + `,"verificationMaterial":{"publicKey":{"hint":"h"},"public_key":{"hint":"h"}},"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]}}`,
		`{` + mt + `,"verificationMaterial":{"publicKey":{"hint":"h"},"certificate":null},"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]}}`,
		`{` + mt + `,"verificationMaterial":{"publicKey":{"hint":"h"},"x509CertificateChain":null},"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]}}`,
		`{` + mt + `,` + vm + `,"messageSignature":null,"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]}}`,
		`{` + mt + `,` + vm + `,"dsseEnvelope":null}`,
		`{` + mt + `,` + vm + `,"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]},"x":{"\ud800\udc00":"\u0000","n":[-0,1E-400,1e400,01]}}`,
		`{` + mt + `,` + vm + `,"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]},"x":[-0,1E-400,0.0e0]}`,
		`{` + mt + `,` + vm + `,"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]},"x":1e400}`,
		`{` + mt + `,` + vm + `,"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]},"x":"\xed\xa0\x80"}`,
		`{` + mt + `,` + vm + `,"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]},"x":"\xc0\xaf"}`,
		`{` + mt + `,` + vm + `,"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]},"x":"\xe2\x80\xa8\xef\xbf\xbd"}`,
		`{` + mt + `,` + vm + `,"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]},"x":"\ud800"}`,
		`{` + mt + `,` + vm + `,"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]},"x":"\ud800\u0041"}`,
		`{` + mt + `,` + vm + `,"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]},"[]":1}`,
		`{` + mt + `,` + vm + `,"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]},"[":1,"]":2,"[google.protobuf.Any]":3}`,
		`{` + mt + `,` + vm + `,"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]},"x":` + strings.Repeat("[", 98) + strings.Repeat("]", 98) + `}`,
		`{` + mt + `,` + vm + `,"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]},"x":tru}`,
		`{` + mt + `,` + vm + `,"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]},"x":1.}`,
		`{` + mt + `,` + vm + `,"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]},"x":1e+}`,
		`{` + mt + `,` + vm + `,"dsseEnvelope":{"payload":"e30=","payloadType":"application/vnd.in-toto+json","signatures":[{"sig":"AA=="}]},"x":"a` + "\x7f" + `"}`,
		"{" + mt + "," + vm + ",\"dsseEnvelope\":{\"payload\":\"e30=\",\"payloadType\":\"application/vnd.in-toto+json\",\"signatures\":[{\"sig\":\"AA==\"}]},\"x\":\"a\x1fb\"}",
		"{" + mt + "," + vm + ",\"dsseEnvelope\":{\"payload\":\"e30=\",\"payloadType\":\"application/vnd.in-toto+json\",\"signatures\":[{\"sig\":\"AA==\"}]}\f}",
		"{" + mt + "," + vm + ",\"dsseEnvelope\":{\"payload\":\"e30=\",\"payloadType\":\"application/vnd.in-toto+json\",\"signatures\":[{\"sig\":\"AA==\"}]}\u00a0}",
	}
	for _, s := range forms {
		checkBundleDifferential(t, []byte(s))
	}
}

// TestStatementFastReview10Forms: adversarial statements held to
// protojson: keys equal after unescaping, both names of a field, UTF-8
// edge cases raw and escaped, numbers at the edges, nulls, case, BOM,
// extension-name keys, nesting at the fast path's limit.
func TestStatementFastReview10Forms(t *testing.T) {
	const sub = `"subject":[{"name":"a","digest":{"sha256":"` + "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef" + `"}}]`
	with := func(pred string) string {
		return `{"_type":"https://in-toto.io/Statement/v1",` + sub + `,"predicateType":"p","predicate":` + pred + `}`
	}
	forms := []string{
		with(`{"a":1,"\u0061":2}`),
		with(`{"\u00e9":1,"é":2}`),
		with(`{"\ud83d\ude00":1,"😀":2}`),
		with(`{"\uD83D\uDE00":1}`),
		with(`{"a":"\u0000\u001f\u007f\u2028\u2029\ufffd\uFFFF\uffFE"}`),
		with("{\"a\":\"\xe2\x80\xa8\xef\xbf\xbd\xef\xbf\xbf\xf4\x8f\xbf\xbf\"}"),
		with("{\"a\":\"\xf4\x90\x80\x80\"}"),
		with("{\"a\":\"\xed\xa0\x80\"}"),
		with("{\"a\":\"\xed\xbf\xbf\"}"),
		with("{\"a\":\"\xc0\x80\"}"),
		with("{\"a\":\"\xe0\x80\xaf\"}"),
		with("{\"a\":\"\xc2\"}"),
		with("{\"a\":\"x\xc2\\n\"}"),
		with("{\"a\":\"\\n\xc2\"}"),
		with("{\"a\":\"\\n\xe2\x80\"}"),
		with(`{"a":"\ud800\ud800"}`),
		with(`{"a":"\udc00"}`),
		with(`{"a":"\ud800\\u"}`),
		with(`{"a":"\ud800\u"}`),
		with(`{"a":"\ud800x"}`),
		with(`{"a":"\u12"}`),
		with(`{"a":"\u+123"}`),
		with(`{"a":"\u0x12"}`),
		with(`{"a":"\U0041"}`),
		with(`{"a":"\x41"}`),
		with(`{"a":"\'"}`),
		with(`{"a":[-0,-0.0,0e0,-0e-0,1E+2,1e-400,2.2250738585072011e-308,4.9e-324,1.7976931348623157e308,123456789012345678901234567890]}`),
		with(`{"a":1.7976931348623159e308}`),
		with(`{"a":-1e400}`),
		with(`{"a":00}`), with(`{"a":-00}`), with(`{"a":-01}`), with(`{"a":+1}`), with(`{"a":.1}`), with(`{"a":1.e1}`), with(`{"a":1e}`),
		with(`{"a":NaN}`), with(`{"a":Infinity}`), with(`{"a":-Infinity}`), with(`{"a":"NaN"}`),
		with(`{"a":1,}`), with(`{"a":[1 2]}`), with(`{"a" 1}`), with(`{a:1}`), with(`{'a':1}`),
		with(`{"a":True}`), with(`{"a":nul}`), with(`{"a":nulll}`), with(`{"a":null}`), with(`{"a":[null]}`),
		with(`{"a":1}/`), with(`{"a":1}//`),
		with(`{}`) + ` `, with(`{}`) + "\n\t\r", with(`{}`) + "\x00", with(`{}`) + `{}`, with(`{}`) + "\f",
		"\xef\xbb\xbf" + with(`{}`),
		"\f" + with(`{}`),
		with(`{"a":` + strings.Repeat("[", 97) + strings.Repeat("]", 97) + `}`),
		with(`{"a":` + strings.Repeat("[", 98) + strings.Repeat("]", 98) + `}`),
		with(`{"a":` + strings.Repeat("[", 99) + strings.Repeat("]", 99) + `}`),
		with(`{"a":` + strings.Repeat(`{"a":`, 98) + `1` + strings.Repeat("}", 98) + `}`),
		with(`{"a":` + strings.Repeat(`{"a":`, 99) + `1` + strings.Repeat("}", 99) + `}`),
		with(`{"a":` + strings.Repeat("[", 101) + strings.Repeat("]", 101) + `}`),
		`{"_type":"https://in-toto.io/Statement/v1",` + sub + `,"predicate_type":"p","predicateType":"p","predicate":{}}`,
		`{"\u005ftype":"https://in-toto.io/Statement/v1",` + sub + `,"predicateType":"p","predicate":{}}`,
		`{"_type":"https://in-toto.io/Statement/v1","\u005ftype":"https://in-toto.io/Statement/v1",` + sub + `,"predicateType":"p","predicate":{}}`,
		`{"_Type":"https://in-toto.io/Statement/v1",` + sub + `,"predicateType":"p","predicate":{}}`,
		`{"Type":"https://in-toto.io/Statement/v1",` + sub + `,"predicateType":"p","predicate":{}}`,
		`{"_type":"https://in-toto.io/Statement/v1",` + sub + `,"PredicateType":"p","predicate":{}}`,
		`{"_type":"https://in-toto.io/Statement/v1",` + sub + `,"predicatetype":"p","predicate":{}}`,
		`{"_type":"https://in-toto.io/Statement/v1",` + sub + `,"predicateType":"p","predicate":{},"[google.api.field_behavior]":0}`,
		`{"_type":"https://in-toto.io/Statement/v1",` + sub + `,"predicateType":"p","predicate":{},"[x.y]":0}`,
		`{"_type":"https://in-toto.io/Statement/v1",` + sub + `,"predicateType":"p","predicate":{},"@type":"x"}`,
		`{"_type":"https://in-toto.io/Statement/v1",` + sub + `,"predicateType":"p","predicate":{"fields":{}}}`,
		`{"_type":"https://in-toto.io/Statement/v1",` + sub + `,"predicateType":"p","predicate":[]}`,
		`{"_type":"https://in-toto.io/Statement/v1",` + sub + `,"predicateType":null,"predicate":{}}`,
		`{"_type":"https://in-toto.io/Statement/v1",` + sub + `,"predicateType":"p","predicate":{},"predicate":{}}`,
		`{"_type":"https://in-toto.io/Statement/v1",` + sub + `,` + sub + `,"predicateType":"p","predicate":{}}`,
		`{"_type":"https://in-toto.io/Statement/v1","subject":[],"predicateType":"p","predicate":{}}`,
		`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{}}],"predicateType":"p","predicate":{}}`,
		`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef","\u0073ha256":"x"}}],"predicateType":"p","predicate":{}}`,
		`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","name":"b","digest":{"x":"y"}}],"predicateType":"p","predicate":{}}`,
		`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"x":"y"},"downloadLocation":"d","download_location":"d"}],"predicateType":"p","predicate":{}}`,
		`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"x":"y"},"mediaType":"d","media_type":"d"}],"predicateType":"p","predicate":{}}`,
		`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"x":"y"},"annotations":null}],"predicateType":"p","predicate":{}}`,
		`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"x":"y"},"annotations":{"a":1,"\u0061":1}}],"predicateType":"p","predicate":{}}`,
		`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"x":1}}],"predicateType":"p","predicate":{}}`,
		`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":["x"]}],"predicateType":"p","predicate":{}}`,
		`{"_type":"https://in-toto.io/Statement/v1","subject":{"name":"a","digest":{"x":"y"}},"predicateType":"p","predicate":{}}`,
		`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","uri":"u","URI":"u","digest":{"x":"y"}}],"predicateType":"p","predicate":{}}`,
	}
	for _, s := range forms {
		checkStatementDifferential(t, []byte(s))
	}
}
