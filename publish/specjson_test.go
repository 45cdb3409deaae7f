package publish

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
)

// protojsonSpecJSON is how ParseStatement made a spec's canonical JSON
// before specEncoder: protojson, then CanonicalJSON. The differential
// tests hold specJSON to it.
func protojsonSpecJSON(v *structpb.Value) ([]byte, error) {
	raw, err := protojson.Marshal(v)
	if err != nil {
		return nil, err
	}
	return CanonicalJSON(raw)
}

// specSeeds are specs as JSON: publish's testdata entries' specs, and the
// forms the encoder must write with care.
func specSeeds(tb testing.TB) []string {
	tb.Helper()
	var seeds []string
	paths, _ := filepath.Glob(filepath.Join("testdata", "entry", "*.json"))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		var e struct {
			Spec json.RawMessage `json:"spec"`
		}
		if json.Unmarshal(data, &e) == nil && len(e.Spec) > 0 {
			seeds = append(seeds, string(e.Spec))
		}
	}
	if len(seeds) < 2 {
		tb.Fatalf("%d specs in testdata/entry, want at least 2", len(seeds))
	}
	return append(seeds,
		`{"version":1,"ecosystem":"maven","coordinate":"org.example:hello:1.0","builder":{"image":"maven@sha256:00","command":["mvn","-B","-Dx=<a&b>"]},"limits":{"memoryMiB":2048,"cpu":1.5,"network":false,"none":null}}`,
		`{}`, `[]`, `null`, `true`, `"s"`, `0`, `-0`, `1e21`, `1e20`, `1e-7`, `0.000001`, `123456789012345678901234`, `0.1`, `-1.5e-300`, `5e-324`, `1.7976931348623157e308`,
		`{"z":1,"é":2,"a":3,"A":4,"":5,"aa":6,"\u00e8":7}`,
		`{"s":"a\"b\\c\/d\b\f\n\r\t\u0001\u001f\u007f\u2028\u2029<>&é😀"}`,
		`{"\n":"\u2028","\"":[]}`,
		strings.Repeat(`[`, 64)+strings.Repeat(`]`, 64),
		strings.Repeat(`[`, 65)+strings.Repeat(`]`, 65),
		strings.Repeat(`[`, 66)+strings.Repeat(`]`, 66),
		strings.Repeat(`{"a":`, 64)+`1`+strings.Repeat(`}`, 64),
		strings.Repeat(`{"a":`, 65)+`1`+strings.Repeat(`}`, 65),
	)
}

// checkSpecDifferential holds specJSON to protojsonSpecJSON on v, and
// reports whether specEncoder took it.
func checkSpecDifferential(t *testing.T, v *structpb.Value) bool {
	t.Helper()
	got, gotErr := specJSON(v)
	want, wantErr := protojsonSpecJSON(v)
	if (gotErr == nil) != (wantErr == nil) || gotErr != nil && gotErr.Error() != wantErr.Error() {
		t.Fatalf("specJSON: got error %v, want %v\nvalue %v", gotErr, wantErr, v)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("specJSON:\ngot  %s\nwant %s", got, want)
	}
	e := specEncoder{}
	return e.value(v, 0)
}

func TestSpecJSONDifferential(t *testing.T) {
	took := 0
	seeds := specSeeds(t)
	for _, s := range seeds {
		v := new(structpb.Value)
		if err := protojson.Unmarshal([]byte(s), v); err != nil {
			t.Fatalf("seed %s: %v", s, err)
		}
		if checkSpecDifferential(t, v) {
			took++
		}
	}
	// All but the two with a value nested 65 deep (CanonicalJSON's error).
	if want := len(seeds) - 2; took != want {
		t.Errorf("specEncoder took %d of %d seeds, want %d", took, len(seeds), want)
	}
	// Values no JSON decodes to: protojson words the errors.
	for _, v := range []*structpb.Value{
		{}, structpb.NewNumberValue(nan()), structpb.NewStringValue("\xff"),
		{Kind: &structpb.Value_StructValue{}}, {Kind: &structpb.Value_ListValue{}},
		structpb.NewListValue(&structpb.ListValue{Values: []*structpb.Value{nil}}),
	} {
		checkSpecDifferential(t, v)
	}
}

func nan() float64 { var z float64; return z / z }

// TestParseStatementSpec: ParseStatement's Spec of a real statement is
// the canonical JSON protojson's path gave.
func TestParseStatementSpec(t *testing.T) {
	for _, s := range specSeeds(t)[:4] {
		payload := `{"_type":"https://in-toto.io/Statement/v1","subject":[{"name":"a","digest":{"x":"y"}}],"predicateType":"p",` +
			`"predicate":{"buildDefinition":{"externalParameters":{"spec":` + s + `}}}}`
		ps, err := ParseStatement([]byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		spec := ps.Statement.GetPredicate().GetFields()["buildDefinition"].GetStructValue().
			GetFields()["externalParameters"].GetStructValue().GetFields()["spec"]
		want, err := protojsonSpecJSON(spec)
		if err != nil || ps.SpecErr != nil || !bytes.Equal(ps.Spec, want) {
			t.Fatalf("Spec %s (err %v), want %s (err %v)", ps.Spec, ps.SpecErr, want, err)
		}
	}
}

// FuzzSpecJSONDifferential: for any JSON value protojson decodes as a
// google.protobuf.Value (what a statement's spec is), specJSON gives the
// bytes or the error protojson.Marshal and CanonicalJSON give.
func FuzzSpecJSONDifferential(f *testing.F) {
	for _, s := range specSeeds(f) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		v := new(structpb.Value)
		if protojson.Unmarshal(data, v) != nil {
			return
		}
		checkSpecDifferential(t, v)
	})
}

// BenchmarkSpecJSON: a build spec's canonical JSON by protojson.Marshal
// and CanonicalJSON (before) and by specJSON.
func BenchmarkSpecJSON(b *testing.B) {
	payload := benchStatement(b)
	ps, err := ParseStatement(payload)
	if err != nil {
		b.Fatal(err)
	}
	spec := ps.Statement.GetPredicate().GetFields()["buildDefinition"].GetStructValue().
		GetFields()["externalParameters"].GetStructValue().GetFields()["spec"]
	for _, bm := range []struct {
		name string
		enc  func(*structpb.Value) ([]byte, error)
	}{{"protojson", protojsonSpecJSON}, {"fast", specJSON}} {
		b.Run(bm.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bm.enc(spec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
