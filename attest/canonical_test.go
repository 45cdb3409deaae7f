package attest

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

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
		{in: `{"a":1,"a":2}`, err: `attest: canonical JSON: duplicate object key "a"`},
		{in: `{"a":1}{}`, err: "attest: canonical JSON: trailing data"},
		{in: `{"a":1`, err: "attest: canonical JSON: JSON ends early"},
		{in: `{"a" 1}`, err: "attest: canonical JSON: not JSON"},
		{in: "\"\xff\"", err: "attest: canonical JSON: not valid UTF-8"},
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
		})
	}
}

func FuzzCanonicalJSON(f *testing.F) {
	f.Add([]byte(`{"b":[1,2.50,-0,1e3],"a":null,"A":"<&>\u2028"}`))
	f.Add([]byte(`{"version":1,"source":{"git":{"url":"https://example.com/x.git"}}}`))
	f.Add([]byte(`[{"a":{"a":{}}},"\ud800"]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := CanonicalJSON(data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "attest: canonical JSON: ") {
				t.Fatalf("error %q lacks the package prefix", err)
			}
			return
		}
		// Canonical JSON is valid JSON, means the same, and is its own
		// canonical form.
		if !json.Valid(c) {
			t.Fatalf("canonical form %q of %q is not JSON", c, data)
		}
		again, err := CanonicalJSON(c)
		if err != nil || !bytes.Equal(again, c) {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", data, c, again, err)
		}
		var a, b any
		if json.Unmarshal(data, &a) == nil {
			if err := json.Unmarshal(c, &b); err != nil {
				t.Fatal(err)
			}
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			if !bytes.Equal(ja, jb) {
				t.Fatalf("canonical form %q means something else than %q", c, data)
			}
		}
	})
}
