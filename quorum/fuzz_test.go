package quorum

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func addSeeds(f *testing.F, prefix string) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", prefix+"*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds testdata/%s*.json: %v", prefix, err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"v":1,"type":"` + strings.TrimSuffix(prefix, "-") + `"}`))
	f.Add([]byte(`{"v":2}`))
	f.Add([]byte(`[]`))
}

// FuzzParseBuildRequest: the parser never panics, and what it accepts
// encodes back to a request it accepts, the same.
func FuzzParseBuildRequest(f *testing.F) {
	addSeeds(f, "request")
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseBuildRequest(b)
		if err != nil {
			return
		}
		out, err := r.Marshal()
		if err != nil {
			t.Fatalf("accepted request does not encode: %v", err)
		}
		r2, err := ParseBuildRequest(out)
		if err != nil {
			t.Fatalf("re-encoded request refused: %v\n%s", err, out)
		}
		if !reflect.DeepEqual(r, r2) {
			t.Fatalf("round trip changed the request:\n%+v\n%+v", r, r2)
		}
	})
}

// FuzzParseVote: likewise for votes.
func FuzzParseVote(f *testing.F) {
	addSeeds(f, "vote")
	// One node's memory of parsed statements across the inputs, as a
	// validator keeps it: it must never change a verdict.
	cache := NewVerifiedEnvelopes(64)
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := ParseVote(b)
		for range 2 {
			vc, errc := parseVote(b, cache.Statement)
			if (err == nil) != (errc == nil) || err != nil && err.Error() != errc.Error() {
				t.Fatalf("with the statement memory: %v, without: %v", errc, err)
			}
			if err == nil && !reflect.DeepEqual(vc.Subjects, v.Subjects) {
				t.Fatalf("with the statement memory, subjects %v, without %v", vc.Subjects, v.Subjects)
			}
		}
		if err != nil {
			return
		}
		out, err := v.Marshal()
		if err != nil {
			t.Fatalf("accepted vote does not encode: %v", err)
		}
		v2, err := ParseVote(out)
		if err != nil {
			t.Fatalf("re-encoded vote refused: %v\n%s", err, out)
		}
		if v2.Node != v.Node || v2.Request != v.Request || !v2.Time.Equal(v.Time) || v2.InputDigest != v.InputDigest || v2.Manifest != v.Manifest || !reflect.DeepEqual(v2.Subjects, v.Subjects) {
			t.Fatalf("round trip changed the vote:\n%+v\n%+v", v, v2)
		}
	})
}
