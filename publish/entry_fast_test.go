package publish

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/pyrsia/pyrsia-build/publish/policy"
)

// trickyStrings are strings that encoding/json escapes, or not, in ways a
// hand-written encoder could get wrong.
var trickyStrings = []string{
	"", "plain", `quote"d`, `back\slash`, "tab\there", "nl\n", "\x00\x01\x1f", "\x7f",
	"<html>&amp;", "é ü 日本", "\u2028\u2029", "bad \xff utf8", "\xed\xa0\x80", "emoji 😀",
}

func TestEntryEncoderIsEncodingJSON(t *testing.T) {
	for _, s := range trickyStrings {
		want, err := marshalJSON(s)
		if err != nil {
			t.Fatal(err)
		}
		if got := appendJSONString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("appendJSONString(%q) = %s, want %s", s, got, want)
		}
	}
	for _, p := range [][]byte{nil, {}, {0}, []byte("ab"), []byte("abc"), bytes.Repeat([]byte{0xff}, 100)} {
		want, _ := marshalJSON(p)
		if got := appendJSONBytes(nil, p); !bytes.Equal(got, want) {
			t.Errorf("appendJSONBytes(%q) = %s, want %s", p, got, want)
		}
	}
	w, err := sampleEntry(t).wire()
	if err != nil {
		t.Fatal(err)
	}
	checkEncoder(t, w)
	w.Envelopes[0].Signatures[0].KeyID = "key <1>"
	w.Subjects[0].Name = "\u2028"
	checkEncoder(t, w)
	checkEncoder(t, &wireEntry{V: 7, Kind: `"`, Envelopes: []wireEnvelope{{}}})
}

func checkEncoder(t *testing.T, w *wireEntry) {
	t.Helper()
	want, err := marshalJSON(w)
	if err != nil {
		t.Fatal(err)
	}
	if got := appendEntry(nil, w); !bytes.Equal(got, want) {
		t.Errorf("appendEntry:\n got %s\nwant %s", got, want)
	}
}

// FuzzEntryEncoder: the hand-written encoder writes what encoding/json
// writes, for any entry that decodes.
func FuzzEntryEncoder(f *testing.F) {
	for _, s := range fuzzSeeds(f, "entry") {
		f.Add(s)
	}
	for _, s := range trickyStrings {
		f.Add([]byte(`{"v":1,"kind":"publish","coordinate":` + string(mustJSON(s)) + `,"envelopes":[{"payload":"AA==","signatures":[{"keyid":` + string(mustJSON(s)) + `,"sig":"AA=="}]}]}`))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var w wireEntry
		if json.Unmarshal(b, &w) != nil {
			return
		}
		if w.Spec != nil && !json.Valid(w.Spec) {
			return
		}
		checkEncoder(t, &w)
	})
}

func mustJSON(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}

// TestParseEntryPrefixShortcut: bytes that start as a canonical publish
// entry does skip EntryKind's scan, and are refused all the same when the
// rest does not hold (a hostile leader's entry).
func TestParseEntryPrefixShortcut(t *testing.T) {
	good := mustMarshal(t, sampleEntry(t))
	if !bytes.HasPrefix(good, publishPrefix) {
		t.Fatalf("a canonical entry does not start with %s: %s", publishPrefix, good)
	}
	end := len(good) - 1
	tests := []struct {
		name  string
		input []byte
		want  string
	}{
		{"second kind", append(append([]byte{}, good[:end]...), `,"kind":"policy"}`...), "not in canonical form"},
		{"second version", append(append([]byte{}, good[:end]...), `,"v":2}`...), "not in canonical form"},
		{"duplicate key", append(append([]byte{}, good[:end]...), `,"coordinate":"hello:1.0"}`...), "not in canonical form"},
		{"unknown field", append(append([]byte{}, good[:end]...), `,"extra":1}`...), `unknown field "extra"`},
		{"garbage after the prefix", append(append([]byte{}, publishPrefix...), `garbage`...), "not JSON"},
		{"prefix alone", publishPrefix, "JSON ends early"},
		{"whitespace", bytes.Replace(good, []byte(`,"ecosystem"`), []byte(`, "ecosystem"`), 1), "whitespace between JSON tokens"},
		{"not utf8", bytes.Replace(good, []byte("hello:1.0"), []byte("hello:1.\xff"), 1), "not valid UTF-8"},
		{"oversize", append(append([]byte{}, publishPrefix...), make([]byte, MaxEntrySize)...), "over the 65535 byte limit"},
		{"escaped", bytes.Replace(good, []byte(`"coordinate":"hello:1.0"`), []byte(`"coordinate":"hell\u006f:1.0"`), 1), "not in canonical form"},
		{"html escaped", bytes.Replace(good, []byte(`<final>`), []byte(`\u003cfinal\u003e`), 1), "not canonical"},
	}
	// An empty chain: CheckLogEntry must refuse these before it judges
	// anything by a policy.
	chain := new(policy.Chain)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if bytes.Equal(tt.input, good) {
				t.Fatal("the test input is the good entry")
			}
			_, err := ParseEntry(tt.input)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("ParseEntry: got %v, want an error containing %q", err, tt.want)
			}
			if _, err := CheckLogEntry(context.Background(), chain, 0, tt.input); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("CheckLogEntry: got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// A whole entry reformatted (indented) is named as reformatted, not as a
// spec that is not canonical (its spec is indented too, and the spec's
// check used to answer first: log_badinput's script failed so).
func TestParseEntryReformatted(t *testing.T) {
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, mustMarshal(t, sampleEntry(t)), "", "  "); err != nil {
		t.Fatal(err)
	}
	_, err := ParseEntry(pretty.Bytes())
	if err == nil || !strings.Contains(err.Error(), "not in canonical form (whitespace between JSON tokens") {
		t.Fatalf("ParseEntry(indented entry) = %v, want not in canonical form (whitespace ...)", err)
	}
}

// MarshalBinary makes its buffer once: the size hint covers the encoding
// of an entry whose strings need no escapes.
func TestEncodedSizeHint(t *testing.T) {
	w, err := sampleEntry(t).wire()
	if err != nil {
		t.Fatal(err)
	}
	if got, hint := len(appendEntry(nil, w)), encodedSizeHint(w); hint < got || hint > got+1024 {
		t.Errorf("hint %d for an encoding of %d bytes", hint, got)
	}
	b, err := sampleEntry(t).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if cap(b) != encodedSizeHint(w) {
		t.Errorf("MarshalBinary's buffer has room for %d bytes, the hint is %d: it was grown", cap(b), encodedSizeHint(w))
	}
}
