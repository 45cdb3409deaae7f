package publish

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
)

func digestOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// sampleEntry returns a valid entry whose slices are not in canonical order.
func sampleEntry(t testing.TB) *Entry {
	t.Helper()
	spec, err := CanonicalJSON([]byte(`{"ecosystem":"oci","coordinate":"hello:1.0",
		"source":{"git":"https://example.org/hello.git","commit":"0123456789abcdef0123456789abcdef01234567"},
		"recipe":{"dockerfile":"Dockerfile","target":"<final>"},"builder":"busybox@sha256:00"}`))
	if err != nil {
		t.Fatal(err)
	}
	e := &Entry{
		InputDigest: "",
		Ecosystem:   EcosystemOCI,
		Coordinate:  "hello:1.0",
		Spec:        spec,
		Subjects: []Subject{
			{Name: "hello", Digest: digestOf("manifest-b")},
			{Name: "hello", Digest: digestOf("manifest-a")},
		},
	}
	e.InputDigest = e.SpecDigest()
	for _, node := range []string{"node-c", "node-a", "node-b"} {
		e.Envelopes = append(e.Envelopes, &dssepb.Envelope{
			PayloadType: "application/vnd.in-toto+json",
			Payload:     []byte(`{"_type":"https://in-toto.io/Statement/v1","by":"` + node + `"}`),
			Signatures: []*dssepb.Signature{
				{Sig: []byte("sig-2-" + node)},
				{Sig: []byte("sig-1-" + node)},
			},
		})
	}
	return e
}

func mustMarshal(t testing.TB, e *Entry) []byte {
	t.Helper()
	b, err := e.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestEntryRoundTrip(t *testing.T) {
	e := sampleEntry(t)
	b := mustMarshal(t, e)
	if !bytes.HasPrefix(b, []byte(`{"v":1,"kind":"publish","inputDigest":"sha256:`)) {
		t.Errorf("encoding starts %.60s, want the version and kind first", b)
	}
	if bytes.Contains(b, []byte(`\u003c`)) {
		t.Errorf("encoding escapes '<' as HTML: %s", b)
	}
	got, err := ParseEntry(b)
	if err != nil {
		t.Fatalf("ParseEntry(MarshalBinary()): %v", err)
	}
	b2 := mustMarshal(t, got)
	if !bytes.Equal(b, b2) {
		t.Errorf("re-encoding differs:\n got %s\nwant %s", b2, b)
	}
	if got.InputDigest != e.InputDigest || got.Coordinate != e.Coordinate || !bytes.Equal(got.Spec, e.Spec) {
		t.Errorf("parsed entry differs: got %+v", got)
	}
	if len(got.Subjects) != 2 || !slices.IsSortedFunc(got.Subjects, compareSubjects) {
		t.Errorf("got subjects %v, want 2 sorted by digest", got.Subjects)
	}
	if len(got.Envelopes) != 3 || len(got.Envelopes[0].Signatures) != 2 {
		t.Errorf("got %d envelopes, want 3 with 2 signatures each", len(got.Envelopes))
	}
	if got.SpecDigest() != got.InputDigest {
		t.Errorf("SpecDigest() = %s, want %s", got.SpecDigest(), got.InputDigest)
	}
}

func TestMarshalBinaryIsOrderIndependent(t *testing.T) {
	a := sampleEntry(t)
	want := mustMarshal(t, a)
	if a.Subjects[0].Digest != digestOf("manifest-b") || string(a.Envelopes[0].Signatures[0].Sig) != "sig-2-node-c" {
		t.Error("MarshalBinary reordered the entry's own slices")
	}
	b := sampleEntry(t)
	b.Subjects[0], b.Subjects[1] = b.Subjects[1], b.Subjects[0]
	b.Envelopes[0], b.Envelopes[2] = b.Envelopes[2], b.Envelopes[0]
	s := b.Envelopes[1].Signatures
	s[0], s[1] = s[1], s[0]
	if got := mustMarshal(t, b); !bytes.Equal(got, want) {
		t.Errorf("reordered entry encodes differently:\n got %s\nwant %s", got, want)
	}
}

func TestMarshalBinaryErrors(t *testing.T) {
	tests := []struct {
		name   string
		change func(e *Entry)
		want   string
	}{
		{"nil spec", func(e *Entry) { e.Spec = nil }, "missing spec"},
		{"spec not object", func(e *Entry) { e.Spec = json.RawMessage(`[1]`) }, "spec is not a JSON object"},
		{"spec unsorted", func(e *Entry) { e.Spec = json.RawMessage(`{"b":1,"a":2}`) }, "spec is not canonical JSON"},
		{"spec spaces", func(e *Entry) { e.Spec = json.RawMessage(`{"a": 1}`) }, "spec is not canonical JSON"},
		{"spec broken", func(e *Entry) { e.Spec = json.RawMessage(`{"a":`) }, "spec: attest: canonical JSON: JSON ends early"},
		{"spec duplicate key", func(e *Entry) { e.Spec = json.RawMessage(`{"a":1,"a":1}`) }, `duplicate object key "a"`},
		{"no input digest", func(e *Entry) { e.InputDigest = "" }, "input digest: empty"},
		{"input digest sha512", func(e *Entry) { e.InputDigest = "sha512:00" }, `does not start with "sha256:"`},
		{"input digest short", func(e *Entry) { e.InputDigest = "sha256:00" }, "has 2 hex digits, want 64"},
		{"input digest upper", func(e *Entry) { e.InputDigest = strings.ToUpper(e.InputDigest[:8]) + e.InputDigest[8:] }, "does not start"},
		{"input digest upper hex", func(e *Entry) { e.InputDigest = "sha256:" + strings.Repeat("A", 64) }, "not lowercase hex"},
		{"no ecosystem", func(e *Entry) { e.Ecosystem = "" }, "missing ecosystem"},
		{"npm", func(e *Entry) { e.Ecosystem = "npm" }, `unknown ecosystem "npm"`},
		{"oci no tag", func(e *Entry) { e.Coordinate = "hello" }, "is not name:tag"},
		{"oci empty tag", func(e *Entry) { e.Coordinate = "hello:" }, "is not name:tag"},
		{"maven two parts", func(e *Entry) { e.Ecosystem, e.Coordinate = EcosystemMaven, "org.example:hello" }, "is not groupId:artifactId:version"},
		{"maven empty part", func(e *Entry) { e.Ecosystem, e.Coordinate = EcosystemMaven, "org.example::1.0" }, "is not groupId:artifactId:version"},
		{"coordinate space", func(e *Entry) { e.Coordinate = "hello world:1" }, "space or control character"},
		{"coordinate empty", func(e *Entry) { e.Coordinate = "" }, "coordinate: empty"},
		{"no subjects", func(e *Entry) { e.Subjects = nil }, "no subjects"},
		{"subject no name", func(e *Entry) { e.Subjects[1].Name = "" }, "subject 1: name: empty"},
		{"subject newline", func(e *Entry) { e.Subjects[1].Name = "a\nb" }, "space or control character"},
		{"subject bad utf8", func(e *Entry) { e.Subjects[1].Name = "a\xffb" }, "not valid UTF-8"},
		{"subject bad digest", func(e *Entry) { e.Subjects[0].Digest = "md5:00" }, `subject 0 ("hello"): digest`},
		{"subject twice", func(e *Entry) { e.Subjects[1] = e.Subjects[0] }, "is listed twice"},
		{"no envelopes", func(e *Entry) { e.Envelopes = nil }, "no envelopes"},
		{"nil envelope", func(e *Entry) { e.Envelopes[1] = nil }, "envelope 1: nil envelope"},
		{"envelope twice", func(e *Entry) { e.Envelopes[1] = e.Envelopes[0] }, "the same envelope is listed twice"},
		{"no payload type", func(e *Entry) { e.Envelopes[0].PayloadType = "" }, "envelope 0: empty payloadType"},
		{"no payload", func(e *Entry) { e.Envelopes[0].Payload = nil }, "envelope 0: empty payload"},
		{"no signatures", func(e *Entry) { e.Envelopes[2].Signatures = nil }, "envelope 2: no signatures"},
		{"empty signature", func(e *Entry) { e.Envelopes[2].Signatures[1].Sig = nil }, "envelope 2: signature 1 is empty"},
		{"signature twice", func(e *Entry) { e.Envelopes[2].Signatures[1] = e.Envelopes[2].Signatures[0] }, "the same signature is listed twice"},
		{"too big", func(e *Entry) { e.Envelopes[0].Payload = make([]byte, MaxEntrySize) }, "over the 65535 byte limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := sampleEntry(t)
			tt.change(e)
			_, err := e.MarshalBinary()
			if err == nil {
				t.Fatalf("MarshalBinary: no error, want %q", tt.want)
			}
			if !strings.HasPrefix(err.Error(), "publish: entry: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %q, want one starting %q and containing %q", err, "publish: entry: ", tt.want)
			}
		})
	}
	var nilEntry *Entry
	if _, err := nilEntry.MarshalBinary(); err == nil {
		t.Error("(*Entry)(nil).MarshalBinary: no error")
	}
}

// replaceOnce replaces old in b, failing the test unless it occurs.
func replaceOnce(t *testing.T, b []byte, old, new string) []byte {
	t.Helper()
	if !bytes.Contains(b, []byte(old)) {
		t.Fatalf("%q not in %s", old, b)
	}
	return bytes.Replace(b, []byte(old), []byte(new), 1)
}

func TestParseEntryErrors(t *testing.T) {
	e := sampleEntry(t)
	good := mustMarshal(t, e)
	envB64 := func(s string) string { return `"` + b64(s) + `"` }
	tests := []struct {
		name   string
		input  func(t *testing.T) []byte
		want   string
		target error
	}{
		{"empty", func(*testing.T) []byte { return nil }, "publish: entry: empty", nil},
		{"not json", func(*testing.T) []byte { return []byte("hello") }, "not JSON (at byte 1", nil},
		{"truncated", func(*testing.T) []byte { return good[:len(good)/2] }, "JSON ends early", nil},
		{"not utf8", func(t *testing.T) []byte { return replaceOnce(t, good, "hello:1.0", "hello:1.\xff") }, "not valid UTF-8", nil},
		{"oversize", func(*testing.T) []byte { return make([]byte, MaxEntrySize+1) }, "65536 bytes is over the 65535 byte limit", nil},
		{"array", func(*testing.T) []byte { return []byte(`[1]`) }, "not a JSON object (found array)", nil},
		{"no version", func(t *testing.T) []byte { return replaceOnce(t, good, `"v":1,`, ``) }, `missing version field "v"`, nil},
		{"version 2", func(t *testing.T) []byte { return replaceOnce(t, good, `"v":1,`, `"v":2,`) }, "unsupported version 2", ErrUnsupportedVersion},
		// Defect 2: the entry's name must be its spec's.
		{"coordinate not the spec's", func(t *testing.T) []byte {
			return replaceOnce(t, good, `"coordinate":"hello:1.0","spec"`, `"coordinate":"victim:9.9","spec"`)
		}, `the entry says coordinate "victim:9.9", its spec "hello:1.0"`, ErrLabelMismatch},
		{"ecosystem not the spec's", func(t *testing.T) []byte {
			return replaceOnce(t, good, `"ecosystem":"oci","coordinate":"hello:1.0","spec"`, `"ecosystem":"maven","coordinate":"a:hello:1.0","spec"`)
		}, `the entry says ecosystem "maven", its spec "oci"`, ErrLabelMismatch},
		// Defect 4: an entry carries in-toto statements only.
		{"unrelated payload type", func(t *testing.T) []byte {
			return replaceOnce(t, good, `"payloadType":"application/vnd.in-toto+json"`, `"payloadType":"application/vnd.unrelated+json"`)
		}, `payloadType "application/vnd.unrelated+json", want "application/vnd.in-toto+json"`, nil},
		{"version string", func(t *testing.T) []byte { return replaceOnce(t, good, `"v":1,`, `"v":"1",`) }, `unsupported version "1"`, ErrUnsupportedVersion},
		{"no kind", func(t *testing.T) []byte { return replaceOnce(t, good, `"kind":"publish",`, ``) }, `missing field "kind"`, nil},
		{"kind number", func(t *testing.T) []byte { return replaceOnce(t, good, `"kind":"publish"`, `"kind":7`) }, "kind is 7, not a string", nil},
		{"kind policy", func(t *testing.T) []byte { return replaceOnce(t, good, `"kind":"publish"`, `"kind":"policy"`) }, `kind "policy", not a publish entry`, ErrNotPublish},
		{"kind unknown", func(t *testing.T) []byte { return replaceOnce(t, good, `"kind":"publish"`, `"kind":"rename"`) }, `unknown kind "rename"`, ErrUnknownKind},
		{"unknown field", func(t *testing.T) []byte { return replaceOnce(t, good, `"v":1,`, `"v":1,"extra":true,`) }, `unknown field "extra"`, nil},
		{"trailing data", func(*testing.T) []byte { return append(slicesClone(good), "{}"...) }, "trailing data", nil},
		{"trailing newline", func(*testing.T) []byte { return append(slicesClone(good), '\n') }, "not in canonical form", nil},
		{"leading space", func(*testing.T) []byte { return append([]byte(" "), good...) }, "not in canonical form", nil},
		{"duplicate field", func(t *testing.T) []byte { return replaceOnce(t, good, `"v":1,`, `"v":1,"ecosystem":"oci",`) }, "not in canonical form", nil},
		{"field order", func(t *testing.T) []byte {
			return replaceOnce(t, good, `"v":1,"kind":"publish",`, `"kind":"publish","v":1,`)
		}, "not in canonical form", nil},
		{"upper case field", func(t *testing.T) []byte { return replaceOnce(t, good, `"coordinate":`, `"Coordinate":`) }, "not in canonical form", nil},
		{"escaped char", func(t *testing.T) []byte {
			return replaceOnce(t, good, `"coordinate":"hello:1.0"`, `"coordinate":"hell\u006f:1.0"`)
		}, "not in canonical form", nil},
		{"keyid empty", func(t *testing.T) []byte { return replaceOnce(t, good, `{"sig":`, `{"keyid":"","sig":`) }, "not in canonical form", nil},
		{"bad base64", func(t *testing.T) []byte { return replaceOnce(t, good, `"sig":"`, `"sig":"!`) }, "illegal base64", nil},
		{"base64 newline", func(t *testing.T) []byte { return replaceOnce(t, good, `"sig":"`, `"sig":"\r\n`) }, "not in canonical form", nil},
		{"bad input digest", func(t *testing.T) []byte {
			return replaceOnce(t, good, `"inputDigest":"sha256:`, `"inputDigest":"sha256:0`)
		}, "input digest", nil},
		{"subjects null", func(t *testing.T) []byte {
			b := good[:bytes.Index(good, []byte(`"subjects":`))]
			return append(slicesClone(b), `"subjects":null,"envelopes":[]}`...)
		}, "no subjects", nil},
		{"subjects unsorted", func(t *testing.T) []byte {
			a, b := digestOf("manifest-a"), digestOf("manifest-b")
			x := replaceOnce(t, good, a, "A")
			x = replaceOnce(t, x, b, a)
			return replaceOnce(t, x, "A", b)
		}, "subjects are not sorted", nil},
		{"signatures unsorted", func(t *testing.T) []byte {
			x := replaceOnce(t, good, envB64("sig-1-node-a"), "X")
			x = replaceOnce(t, x, envB64("sig-2-node-a"), envB64("sig-1-node-a"))
			return replaceOnce(t, x, "X", envB64("sig-2-node-a"))
		}, "signatures of envelope", nil},
		{"spec not canonical", func(t *testing.T) []byte { return replaceOnce(t, good, `"spec":{"builder"`, `"spec":{"z":1,"builder"`) }, "spec is not canonical JSON", nil},
		{"spec not object", func(t *testing.T) []byte {
			i, j := bytes.Index(good, []byte(`"spec":`)), bytes.Index(good, []byte(`,"subjects":`))
			return append(append(slicesClone(good[:i]), `"spec":"x"`...), good[j:]...)
		}, "spec is not a JSON object", nil},
		{"spec missing", func(t *testing.T) []byte {
			i, j := bytes.Index(good, []byte(`"spec":`)), bytes.Index(good, []byte(`"subjects":`))
			return append(slicesClone(good[:i]), good[j:]...)
		}, "missing spec", nil},
		{"ecosystem number", func(t *testing.T) []byte { return replaceOnce(t, good, `"ecosystem":"oci"`, `"ecosystem":1`) }, "field ecosystem: JSON number", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseEntry(tt.input(t))
			if err == nil {
				t.Fatalf("ParseEntry: no error, want %q", tt.want)
			}
			if !strings.HasPrefix(err.Error(), "publish: entry: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %q, want one starting %q and containing %q", err, "publish: entry: ", tt.want)
			}
			if tt.target != nil && !errors.Is(err, tt.target) {
				t.Errorf("errors.Is(%v, %v) = false", err, tt.target)
			}
		})
	}
}

func b64(s string) string {
	b, _ := json.Marshal([]byte(s))
	return strings.Trim(string(b), `"`)
}

func slicesClone(b []byte) []byte { return append([]byte(nil), b...) }

func TestCanonicalJSON(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{in: `{}`, want: `{}`},
		{in: ` { "b" : [ 1 , 2.50 , -0, 1e3 ] , "a" : null } `, want: `{"a":null,"b":[1,2.50,-0,1e3]}`},
		{in: `{"z":{"y":true,"x":false},"é":"\u00e9","A":"<&>"}`, want: `{"A":"<&>","z":{"x":false,"y":true},"é":"é"}`},
		{in: `"\u2028\t\u0001"`, want: `"\u2028\t\u0001"`},
		{in: `[]`, want: `[]`},
		{in: `"x"`, want: `"x"`},
		{in: `{"a":1,"a":2}`, err: `duplicate object key "a"`},
		{in: `{"a":1}{}`, err: "trailing data"},
		{in: `{"a":1`, err: "JSON ends early"},
		{in: `{"a" 1}`, err: "not JSON"},
		{in: "\"\xff\"", err: "not valid UTF-8"},
		{in: strings.Repeat("[", 70) + strings.Repeat("]", 70), err: "nested more than 64 deep"},
		{in: ``, err: "JSON ends early"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := CanonicalJSON([]byte(tt.in))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("got %s, %v; want error containing %q", got, err, tt.err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("got %s, %v; want %s", got, err, tt.want)
			}
			again, err := CanonicalJSON(got)
			if err != nil || !bytes.Equal(again, got) {
				t.Errorf("not idempotent: CanonicalJSON(%s) = %s, %v", got, again, err)
			}
		})
	}
}

func TestLeafHash(t *testing.T) {
	// RFC 6962: the leaf hash of the empty entry is SHA-256(0x00).
	got := hex.EncodeToString(LeafHash(nil))
	if want := "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"; got != want {
		t.Errorf("LeafHash(nil) = %s, want %s", got, want)
	}
	b := mustMarshal(t, sampleEntry(t))
	sum := sha256.Sum256(append([]byte{0}, b...))
	if got := LeafHash(b); !bytes.Equal(got, sum[:]) {
		t.Errorf("LeafHash(entry) = %x, want %x", got, sum)
	}
}

// TestTestdata parses every sample in testdata: the files named
// valid-*.json must parse and re-encode to the same bytes, the files named
// invalid-*.json must not parse.
func TestTestdata(t *testing.T) {
	for _, kind := range []struct {
		prefix string
		parse  func([]byte) ([]byte, error)
	}{
		{"entry", func(b []byte) ([]byte, error) {
			e, err := ParseEntry(b)
			if err != nil {
				return nil, err
			}
			return e.MarshalBinary()
		}},
		{"proofbundle", func(b []byte) ([]byte, error) {
			p, err := ParseProofBundle(b)
			if err != nil {
				return nil, err
			}
			if _, err := p.Entry(); err != nil {
				return nil, err
			}
			return p.MarshalJSON()
		}},
	} {
		files, err := filepath.Glob(filepath.Join("testdata", kind.prefix, "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("no samples in testdata/%s", kind.prefix)
		}
		for _, f := range files {
			t.Run(f, func(t *testing.T) {
				b, err := os.ReadFile(f)
				if err != nil {
					t.Fatal(err)
				}
				out, err := kind.parse(b)
				valid := strings.HasPrefix(filepath.Base(f), "valid-")
				switch {
				case valid && err != nil:
					t.Fatalf("parsing a valid sample: %v", err)
				case valid && !bytes.Equal(out, bytes.TrimSuffix(b, []byte("\n"))):
					t.Errorf("re-encoding differs:\n got %s\nwant %s", out, b)
				case !valid && err == nil:
					t.Errorf("parsing an invalid sample: no error")
				case !valid:
					t.Logf("%v", err)
				}
			})
		}
	}
}

// fuzzSeeds returns the files in testdata/dir plus the broken inputs made by
// mutating each of them.
func fuzzSeeds(f *testing.F, dir string) [][]byte {
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata/%s: %v", dir, err)
	}
	var seeds [][]byte
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b,
			b[:len(b)/2],
			bytes.Replace(b, []byte(`":`), []byte(`": `), 1),
			bytes.Replace(b, []byte(`"v":1`), []byte(`"v":2`), 1),
			append(slicesClone(b), b...),
		)
	}
	return append(seeds, nil, []byte("{}"), []byte("null"), []byte(`{"v":1,"kind":"publish"}`))
}

func FuzzParseEntry(f *testing.F) {
	for _, s := range fuzzSeeds(f, "entry") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := ParseEntry(b)
		if err != nil {
			if e != nil {
				t.Fatal("ParseEntry returned an entry and an error")
			}
			if !strings.HasPrefix(err.Error(), "publish: entry: ") {
				t.Fatalf("error %q lacks the publish: entry: prefix", err)
			}
			return
		}
		out, err := e.MarshalBinary()
		if err != nil {
			t.Fatalf("MarshalBinary of a parsed entry: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs:\n got %q\nwant %q", out, b)
		}
		e2, err := ParseEntry(out)
		if err != nil || !reflect.DeepEqual(entryStrings(e), entryStrings(e2)) {
			t.Fatalf("second parse: %v", err)
		}
	})
}

// entryStrings flattens an entry for comparison: protobuf messages must not
// be compared with reflect.DeepEqual.
func entryStrings(e *Entry) []string {
	s := []string{e.InputDigest, e.Ecosystem, e.Coordinate, string(e.Spec)}
	for _, sub := range e.Subjects {
		s = append(s, sub.Name, sub.Digest)
	}
	for _, env := range e.Envelopes {
		s = append(s, env.PayloadType, string(env.Payload))
		for _, sig := range env.Signatures {
			s = append(s, sig.Keyid, string(sig.Sig))
		}
	}
	return s
}

func ExampleEntry_MarshalBinary() {
	e := &Entry{
		// The SHA-256 of Spec.
		InputDigest: "sha256:84c9102b6af9f04c21d5c53cb0f8277b013243516d2d737fde0105da9d23722c",
		Ecosystem:   EcosystemMaven,
		Coordinate:  "org.example:hello:1.0",
		Spec:        json.RawMessage(`{"coordinate":"org.example:hello:1.0","ecosystem":"maven"}`),
		Subjects:    []Subject{{Name: "hello-1.0.jar", Digest: "sha256:" + strings.Repeat("9a", 32)}},
		Envelopes: []*dssepb.Envelope{{
			PayloadType: "application/vnd.in-toto+json",
			Payload:     []byte(`{}`),
			Signatures:  []*dssepb.Signature{{Keyid: "node-a", Sig: []byte{1, 2, 3}}},
		}},
	}
	b, err := e.MarshalBinary()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s\n", b)
	parsed, err := ParseEntry(b)
	fmt.Println(parsed.Coordinate, err == nil)
	// Output:
	// {"v":1,"kind":"publish","inputDigest":"sha256:84c9102b6af9f04c21d5c53cb0f8277b013243516d2d737fde0105da9d23722c","ecosystem":"maven","coordinate":"org.example:hello:1.0","spec":{"coordinate":"org.example:hello:1.0","ecosystem":"maven"},"subjects":[{"name":"hello-1.0.jar","digest":"sha256:9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a"}],"envelopes":[{"payloadType":"application/vnd.in-toto+json","payload":"e30=","signatures":[{"keyid":"node-a","sig":"AQID"}]}]}
	// org.example:hello:1.0 true
}

// Defect 2 at append time: NewEntry refuses a coordinate or ecosystem that
// is not the spec's.
func TestNewEntryLabels(t *testing.T) {
	spec := []byte(`{"coordinate":"org.example:hello:1.0","ecosystem":"maven"}`)
	env := &dssepb.Envelope{PayloadType: "application/vnd.in-toto+json",
		Payload:    []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"hello.jar","digest":{"sha256":"` + strings.Repeat("ab", 32) + `"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{}}`),
		Signatures: []*dssepb.Signature{{Sig: []byte("sig")}}}
	if _, err := NewEntry("maven", "org.example:hello:1.0", spec, []*dssepb.Envelope{env}); err != nil {
		t.Fatalf("the spec's own name: %v", err)
	}
	for _, tc := range []struct{ eco, coord, want string }{
		{"maven", "org.victim:core:9.9", `the entry says coordinate "org.victim:core:9.9", its spec "org.example:hello:1.0"`},
		{"oci", "org.example:hello:1.0", `the entry says ecosystem "oci", its spec "maven"`},
	} {
		_, err := NewEntry(tc.eco, tc.coord, spec, []*dssepb.Envelope{env})
		if !errors.Is(err, ErrLabelMismatch) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewEntry(%s, %s): got %v, want %q", tc.eco, tc.coord, err, tc.want)
		}
	}
	other := &dssepb.Envelope{PayloadType: "application/vnd.unrelated+json", Payload: env.Payload, Signatures: env.Signatures}
	if _, err := NewEntry("maven", "org.example:hello:1.0", spec, []*dssepb.Envelope{other}); err == nil || !strings.Contains(err.Error(), "vnd.unrelated+json") {
		t.Errorf("NewEntry with an unrelated payload type: got %v, want it refused", err)
	}
}

// NewEntryWith takes the statements from the cache it is given, returns
// the bytes NewEntry's entry encodes to, and passes a cache's refusal on;
// SpecLabels reads the names an entry of the spec must carry.
func TestNewEntryWith(t *testing.T) {
	spec := []byte(`{"coordinate":"org.example:hello:1.0","ecosystem":"maven"}`)
	env := &dssepb.Envelope{PayloadType: "application/vnd.in-toto+json",
		Payload:    []byte(`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"hello.jar","digest":{"sha256":"` + strings.Repeat("ab", 32) + `"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{}}`),
		Signatures: []*dssepb.Signature{{Sig: []byte("sig")}}}
	eco, coord, err := SpecLabels(spec)
	if err != nil || eco != "maven" || coord != "org.example:hello:1.0" {
		t.Fatalf("SpecLabels: %q, %q, %v", eco, coord, err)
	}
	for _, bad := range []string{`{"coordinate":"x"}`, `{"Ecosystem":"maven","coordinate":"x"}`, `{"ecosystem":1,"coordinate":"x"}`} {
		if _, _, err := SpecLabels([]byte(bad)); !errors.Is(err, ErrLabelMismatch) {
			t.Errorf("SpecLabels(%s): %v, want ErrLabelMismatch", bad, err)
		}
	}
	env2 := &dssepb.Envelope{PayloadType: env.PayloadType, Payload: env.Payload, Signatures: []*dssepb.Signature{{Sig: []byte("sig2")}}}
	want, err := NewEntry(eco, coord, spec, []*dssepb.Envelope{env, env2})
	if err != nil {
		t.Fatal(err)
	}
	wantBytes, _ := want.MarshalBinary()
	calls := 0
	cache := func(p []byte) (*ParsedStatement, error) {
		calls++
		return ParseStatement(p)
	}
	e, b, err := NewEntryWith(eco, coord, spec, []*dssepb.Envelope{env, env2}, NewEntryOptions{Statements: cache})
	if err != nil {
		t.Fatal(err)
	}
	if calls != 2 {
		t.Errorf("the cache was asked %d times, want once an envelope (2)", calls)
	}
	if !bytes.Equal(b, wantBytes) || e.InputDigest != want.InputDigest {
		t.Errorf("NewEntryWith's bytes differ from NewEntry's entry's")
	}
	refuse := func([]byte) (*ParsedStatement, error) { return nil, errors.New("not a statement") }
	if _, _, err := NewEntryWith(eco, coord, spec, []*dssepb.Envelope{env}, NewEntryOptions{Statements: refuse}); err == nil || !strings.Contains(err.Error(), "attestation 1: not a statement") {
		t.Errorf("a refusing cache: %v", err)
	}
}
