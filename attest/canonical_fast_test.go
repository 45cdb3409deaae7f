package attest

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
)

// canonicalFastSeeds are documents of the kinds the fast path serves (a
// build spec, unsorted keys, protojson's spacing) and the edges it must
// leave to canonicalSlow (escapes, duplicates, depth, bad numbers).
var canonicalFastSeeds = []string{
	`{"b":[1,2.50,-0,1e3],"a":null,"A":"<&>\u2028"}`,
	`{"version":1,"source":{"archive":{"url":"http://source.invalid/x.tar","sha256":"00"}},"recipe":{"maven":{}}}`,
	` { "b" : [ 1 , 2.50 , -0, 1e3 ] , "a" : null } `,
	`{"z":{"y":true,"x":false},"é":"é","A":"<&>"}`,
	`{"a":1,"b":2,"a":3}`, `{"b":1,"a":2,"b":3}`, `{"a":1,"a":2}`,
	`[{"a":{"a":{}}},"\ud800"]`, "\"\u2028\"", "\"\u2029x\"", "\"\x01\"",
	`-`, `-01`, `1.`, `1e`, `1e+`, `01`, `.5`, `1.5E-7`, `-0.0e0`, `truex`, `[true,false,null]`, `nul`,
	`[1,]`, `{,}`, `{"a"}`, `{"a":}`, `{"a" 1}`, `[`, `{`, `"abc`, ``, ` `, `{} {}`, `[]x`,
	strings.Repeat("[", 64) + strings.Repeat("]", 64), strings.Repeat("[", 65) + strings.Repeat("]", 65),
	strings.Repeat(`{"a":`, 64) + "1" + strings.Repeat("}", 64), strings.Repeat(`{"a":`, 65) + "1" + strings.Repeat("}", 65),
}

// The fast path answers only what canonicalSlow answers the same: when it
// gives a form, canonicalSlow gives that form and no error.
func FuzzCanonicalFast(f *testing.F) {
	for _, s := range canonicalFastSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if !utf8.Valid(data) {
			return // CanonicalJSON refuses it before either path
		}
		fast, ok := canonicalFast(data)
		slow, err := canonicalSlow(data)
		if !ok {
			return
		}
		if err != nil {
			t.Fatalf("fast path gave %q for %q, the slow one refuses it: %v", fast, data, err)
		}
		if !bytes.Equal(fast, slow) {
			t.Fatalf("fast path gave %q for %q, the slow one %q", fast, data, slow)
		}
	})
}

func TestCanonicalFastSeeds(t *testing.T) {
	for _, s := range canonicalFastSeeds {
		if !utf8.ValidString(s) {
			continue
		}
		fast, ok := canonicalFast([]byte(s))
		slow, err := canonicalSlow([]byte(s))
		if ok && (err != nil || !bytes.Equal(fast, slow)) {
			t.Errorf("%q: fast %q, slow %q, %v", s, fast, slow, err)
		}
		// CanonicalJSON answers as canonicalSlow, fast path or not.
		got, gerr := CanonicalJSON([]byte(s))
		if (gerr == nil) != (err == nil) || err == nil && !bytes.Equal(got, slow) || err != nil && gerr.Error() != err.Error() {
			t.Errorf("%q: CanonicalJSON %q, %v; slow %q, %v", s, got, gerr, slow, err)
		}
	}
}

// The fast path serves the documents of the hot paths, or it saves
// nothing: a canonical spec, a spec with unsorted keys and spaces, and the
// externalParameters.spec as protojson writes it (publish.ParseStatement).
func TestCanonicalFastServesTheHotPaths(t *testing.T) {
	spec := `{"builderImage":{"digest":"sha256:07","name":"maven"},"coordinate":"org.example:hello:1.1","ecosystem":"maven","recipe":{"maven":{}},"source":{"archive":{"sha256":"02","url":"http://source.invalid/hello-1.1.tar"}},"sourceDateEpoch":1700000000,"version":1}`
	st, err := structpb.NewValue(map[string]any{"version": 1, "coordinate": "org.example:hello:1.1", "recipe": map[string]any{"maven": map[string]any{"artifacts": []any{"a", "b"}}}, "ok": true, "none": nil})
	if err != nil {
		t.Fatal(err)
	}
	pj, err := protojson.MarshalOptions{Multiline: true}.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	pj2, err := protojson.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{spec, ` {"version": 1, "ecosystem":"maven",  "coordinate":"x"}`, string(pj), string(pj2)} {
		if _, ok := canonicalFast([]byte(doc)); !ok {
			t.Errorf("the fast path leaves %q to the slow one", doc)
		}
	}
}

func BenchmarkCanonicalJSON(b *testing.B) {
	spec := []byte(`{"version":1,"ecosystem":"maven","coordinate":"org.example:hello:1.1","source":{"archive":{"url":"http://source.invalid/hello-1.1.tar","sha256":"0000000000000000000000000000000000000000000000000000000000000002"}},"recipe":{"maven":{}},"builderImage":{"name":"maven","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000007"},"sourceDateEpoch":1700000000}`)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := CanonicalJSON(spec); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("slow", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			if _, err := canonicalSlow(spec); err != nil {
				b.Fatal(err)
			}
		}
	})
}
