package attest

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"
)

// protojsonParseStatement is ParseStatement as it was before
// parseStatementFast: protojson for every payload. The differential tests
// hold ParseStatement to it.
func protojsonParseStatement(payload []byte) (*intoto.Statement, error) {
	return parseStatement(payload, false)
}

// buildStatement is a statement as a build node writes it (the shape of
// builder.Provenance's): a spec in externalParameters, resolved
// dependencies, a byproduct with annotations, a subject's media type.
func buildStatement(tb testing.TB) []byte {
	tb.Helper()
	prov, err := NewProvenance(ProvenanceOptions{
		BuildType: "https://pyrsia.io/pyrsia-build/build-spec/v1",
		ExternalParameters: map[string]any{"spec": map[string]any{
			"version": 1, "ecosystem": "maven", "coordinate": "org.example:hello:1.0",
			"source":  map[string]any{"git": map[string]any{"url": "https://example.org/hello.git", "commit": "0123456789abcdef0123456789abcdef01234567"}},
			"builder": map[string]any{"image": "maven@sha256:00", "command": []any{"mvn", "-B", "package", "-Dx=<a&b>"}},
			"env":     map[string]any{"TZ": "UTC", "LANG": "C.UTF-8 \u00e9\u2028"},
			"limits":  map[string]any{"memoryMiB": 2048, "cpu": 1.5, "network": false, "none": nil},
		}},
		ResolvedDependencies: []*intoto.ResourceDescriptor{
			{Uri: "git+https://example.org/hello.git", Digest: map[string]string{"gitCommit": "0123456789abcdef0123456789abcdef01234567"}},
			{Name: "builder", Uri: "pkg:docker/maven", Digest: map[string]string{"sha256": strings.Repeat("ab", 32)}, DownloadLocation: "https://example.org/x", MediaType: "application/vnd.oci.image.index.v1+json"},
		},
		BuilderID:  "https://pyrsia.io/node/a",
		StartedOn:  time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		FinishedOn: time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC),
	})
	if err != nil {
		tb.Fatal(err)
	}
	ann, err := structpb.NewStruct(map[string]any{"official": true, "matchesBuild": false})
	if err != nil {
		tb.Fatal(err)
	}
	prov.RunDetails.Byproducts = append(prov.RunDetails.Byproducts, &intoto.ResourceDescriptor{
		Name: "hello-1.0.jar", Uri: "pkg:maven/org.example/hello@1.0", Digest: map[string]string{"sha256": strings.Repeat("cd", 32)}, Annotations: ann,
	})
	st, err := NewStatement([]*intoto.ResourceDescriptor{
		{Name: "hello-1.0.jar", Digest: map[string]string{"sha256": strings.Repeat("ef", 32)}, MediaType: "application/java-archive"},
		{Name: "hello-1.0.pom", Digest: map[string]string{"sha256": strings.Repeat("01", 32), "sha512": strings.Repeat("02", 64)}},
	}, PredicateSLSAProvenanceV1, prov)
	if err != nil {
		tb.Fatal(err)
	}
	b, err := MarshalStatement(st)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// statementSeeds are real statements: testdata's bundles' payloads, the
// in-toto payloads in publish's testdata entries, a build node's.
func statementSeeds(tb testing.TB) [][]byte {
	tb.Helper()
	seeds := [][]byte{buildStatement(tb)}
	paths, err := filepath.Glob(filepath.Join("testdata", "*.sigstore.json"))
	if err != nil || len(paths) == 0 {
		tb.Fatalf("no testdata bundles: %v", err)
	}
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		b, err := ParseBundle(data)
		if err != nil {
			tb.Fatalf("%s: %v", p, err)
		}
		seeds = append(seeds, b.Envelope().GetPayload())
	}
	entries, _ := filepath.Glob(filepath.Join("..", "publish", "testdata", "entry", "*.json"))
	for _, p := range entries {
		data, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		var e struct {
			Envelopes []struct {
				Payload string `json:"payload"`
			} `json:"envelopes"`
		}
		if json.Unmarshal(data, &e) != nil {
			continue
		}
		for _, env := range e.Envelopes {
			if pl, err := base64.StdEncoding.DecodeString(env.Payload); err == nil {
				seeds = append(seeds, pl)
			}
		}
	}
	return seeds
}

// oddStatements are the forms parseStatementFast leaves to protojson or
// decodes with care: proto field names, escapes, surrogates, nulls,
// repeated fields and keys, numbers at the edges, bad UTF-8, trailing data.
var oddStatements = []string{
	``, `{}`, `null`, `[]`, ` {} `, `{} x`, `{"_type":1}`,
	`{"_type":"https://in-toto.io/Statement/v1"}`,
	`{"_type":"https://in-toto.io/Statement/v0.1","subject":[{"name":"a","digest":{"sha256":"` + strings.Repeat("a", 64) + `"}}],"predicateType":"p","predicate":{}}`,
	`{"type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"x":"y"}}],"predicate_type":"p","predicate":{"n":1e308,"l":[null,true,"x",-0,0.5e-3,1E+2]}}`,
	`{"_type":"https://in-toto.io/Statement/v1","type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"x":"y"}}],"predicateType":"p","predicate":{}}`,
	`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"x":"y","x":"z"}}],"predicateType":"p","predicate":{}}`,
	`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"x":"y"}}],"predicateType":"p","predicate":{"a":1,"a":2}}`,
	`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"x":"y"}}],"predicateType":"p","predicate":null}`,
	`{"_type":null,"subject":null,"predicateType":"p","predicate":{}}`,
	`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"x":null}}],"predicateType":"p","predicate":{}}`,
	`{"_type":"https://in-toto.io/Statement/v1","subject":[null],"predicateType":"p","predicate":{}}`,
	`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","content":"aGk=","digest":{"x":"y"}}],"predicateType":"p","predicate":{}}`,
	`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","download_location":"d","media_type":"m","annotations":{"k":[{}]},"digest":{"x":"y"}}],"predicateType":"p","predicate":{}}`,
	`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"\u0061\n\"\\\/\b\f\r\t\u00e9\ud83d\ude00","digest":{"x":"y"}}],"predicateType":"p","predicate":{"\ud83d\udE00\u0000":"\"\u00e9"}}`,
	`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"x":"y"}}],"predicateType":"p","predicate":{"\ud83d":1}}`,
	`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"x":"y"}}],"predicateType":"p","predicate":{"s":"\udc00\ud800"}}`,
	`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"x":"y"}}],"predicateType":"p","predicate":{"n":1e400,"m":01,"o":1.,"p":-,"q":.5}}`,
	`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"x":"y"}}],"predicateType":"p","predicate":{"n":truex}}`,
	`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"x":"y"}}],"predicateType":"p","predicate":{"n":[1,]}}`,
	"{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[{\"name\":\"\xff\",\"digest\":{\"x\":\"y\"}}],\"predicateType\":\"p\",\"predicate\":{}}",
	"{\"_type\":\"https://in-toto.io/Statement/v1\",\"subject\":[{\"name\":\"a\tb\",\"digest\":{\"x\":\"y\"}}],\"predicateType\":\"p\",\"predicate\":{}}",
	`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"sha256":"AB"}}],"predicateType":"p","predicate":{}}`,
	`{"_type":"https://in-toto.io/Statement/v2","subject":[{"name":"a","digest":{"x":"y"}}],"predicateType":"p","predicate":{}}`,
	`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"x":"y"}}],"predicateType":"p","predicate":{},"x":1}`,
	`{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"x":"y"}}],"predicateType":"p","predicate":{"a":` + strings.Repeat("[", 120) + strings.Repeat("]", 120) + `}}`,
}

// sameErr reports whether two errors of ParseStatement say the same
// thing. A statement with two bad digests is refused for either (Validate
// ranges over a map), so those compare by kind.
func sameErr(a, b error) bool {
	if a == nil || b == nil {
		return a == b
	}
	for _, k := range []error{intoto.ErrInvalidDigestEncoding, intoto.ErrIncorrectDigestLength} {
		if errors.Is(a, k) || errors.Is(b, k) {
			return (errors.Is(a, intoto.ErrInvalidDigestEncoding) || errors.Is(a, intoto.ErrIncorrectDigestLength)) &&
				(errors.Is(b, intoto.ErrInvalidDigestEncoding) || errors.Is(b, intoto.ErrIncorrectDigestLength))
		}
	}
	return a.Error() == b.Error()
}

// checkStatementDifferential holds parseStatementFast and ParseStatement
// to protojson on data. It reports whether the fast path took data.
func checkStatementDifferential(t *testing.T, data []byte) bool {
	t.Helper()
	fast, ok := parseStatementFast(data)
	if ok {
		ref := new(intoto.Statement)
		if err := protojson.Unmarshal(data, ref); err != nil {
			t.Fatalf("parseStatementFast accepts what protojson refuses (%v):\n%q", err, data)
		}
		if !proto.Equal(fast, ref) {
			t.Fatalf("parseStatementFast decodes differently from protojson:\ngot  %v\nwant %v\ninput %q", fast, ref, data)
		}
	}
	got, gotErr := ParseStatement(data)
	want, wantErr := protojsonParseStatement(data)
	if !sameErr(gotErr, wantErr) {
		t.Fatalf("ParseStatement: got error %v, want %v\ninput %q", gotErr, wantErr, data)
	}
	if !proto.Equal(got, want) {
		t.Fatalf("ParseStatement: got %v, want %v\ninput %q", got, want, data)
	}
	return ok
}

// TestStatementFastDifferential checks the seeds and odd forms, and that
// the fast path does take every real statement (else the differential
// test would compare protojson with itself).
func TestStatementFastDifferential(t *testing.T) {
	real := 0
	for i, s := range statementSeeds(t) {
		took := checkStatementDifferential(t, s)
		if _, err := protojsonParseStatement(s); err != nil {
			continue // publish's testdata entries hold made-up payloads
		}
		real++
		if !took {
			t.Errorf("seed %d: parseStatementFast gave up on a real statement:\n%s", i, s)
		}
	}
	if real < 3 {
		t.Errorf("%d real statements among the seeds, want at least 3", real)
	}
	took := 0
	for _, s := range oddStatements {
		if checkStatementDifferential(t, []byte(s)) {
			took++
		}
	}
	if took < 5 {
		t.Errorf("parseStatementFast took %d of the odd forms, want at least the 5 it decodes", took)
	}
}

// FuzzStatementFastDifferential: ParseStatement (fast path, then
// protojson) accepts and rejects what protojson alone does, with the same
// statement and error; what parseStatementFast accepts, protojson decodes
// to the same message.
func FuzzStatementFastDifferential(f *testing.F) {
	for _, s := range statementSeeds(f) {
		f.Add(s)
	}
	for _, s := range oddStatements {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkStatementDifferential(t, data)
	})
}

// BenchmarkParseStatement: a build node's statement by protojson (the
// path before parseStatementFast) and by ParseStatement.
func BenchmarkParseStatement(b *testing.B) {
	payload := buildStatement(b)
	for _, bm := range []struct {
		name  string
		parse func([]byte) (*intoto.Statement, error)
	}{{"protojson", protojsonParseStatement}, {"fast", ParseStatement}} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(payload)))
			for b.Loop() {
				if _, err := bm.parse(payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
