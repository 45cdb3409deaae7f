package publish

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish/policy"
)

// sampleChange is a change of the three-node test policy that removes
// node-c, with two approvals whose signatures are placeholders (the parser
// checks no signature).
func sampleChange(t *testing.T) *policy.Change {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("policy", "testdata", "valid-three-nodes.json"))
	if err != nil {
		t.Fatal(err)
	}
	old, err := policy.Parse(b)
	if err != nil {
		t.Fatal(err)
	}
	n, _ := policy.Parse(b)
	n.Nodes = n.Nodes[:2]
	c := &policy.Change{Previous: old.Digest(), New: n}
	for i, node := range old.Nodes[:2] {
		k, err := attest.ParsePublicKey(node.Name, []byte(node.CosignKey))
		if err != nil {
			t.Fatal(err)
		}
		c.Approvals = append(c.Approvals, policy.Approval{KeyID: k.ID, Sig: []byte{0x30, byte(i), 'p', 'l', 'a', 'c', 'e'}})
	}
	return c
}

func TestPolicyChangeRoundTrip(t *testing.T) {
	c := sampleChange(t)
	b, err := MarshalPolicyChange(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(b, []byte(`{"v":1,"kind":"policy","previous":"sha256:`)) {
		t.Errorf("encoding starts %.60s, want v, kind, previous first", b)
	}
	got, err := ParsePolicyChange(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.Previous != c.Previous || got.New.Digest() != c.New.Digest() || len(got.Approvals) != 2 {
		t.Errorf("got %+v, want %+v", got, c)
	}
	if kind, err := EntryKind(b); err != nil || kind != KindPolicy {
		t.Errorf("EntryKind = %q, %v; want %q", kind, err, KindPolicy)
	}
	if _, err := ParseEntry(b); !errors.Is(err, ErrNotPublish) || errors.Is(err, ErrUnknownKind) {
		t.Errorf("ParseEntry of a policy change: got %v, want ErrNotPublish and not ErrUnknownKind", err)
	}
	// A proposal, with no approvals, encodes and parses too.
	c.Approvals = nil
	b, err = MarshalPolicyChange(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParsePolicyChange(b); err != nil || !bytes.HasSuffix(b, []byte(`"approvals":[]}`)) {
		t.Errorf("proposal %s: %v", b, err)
	}
}

func TestParsePolicyChangeErrors(t *testing.T) {
	good, err := MarshalPolicyChange(sampleChange(t))
	if err != nil {
		t.Fatal(err)
	}
	c := sampleChange(t)
	keyA := c.Approvals[0].KeyID
	keyB := c.Approvals[1].KeyID
	// The new policy's "name" field, the first key of its canonical form.
	newPolicy := string(good[bytes.Index(good, []byte(`"policy":`))+len(`"policy":`) : bytes.Index(good, []byte(`,"approvals":`))])
	tests := []struct {
		name  string
		input string
		want  string
	}{
		{"bad JSON", string(good[:len(good)-3]), "JSON ends early"},
		{"not JSON", "policy please", "not JSON"},
		{"pretty", strings.Replace(string(good), `"kind":`, `"kind": `, 1), "whitespace between JSON tokens"},
		{"unknown field", strings.Replace(string(good), `"previous":`, `"extra":1,"previous":`, 1), `unknown field "extra"`},
		{"wrong previous digest", strings.Replace(string(good), `"previous":"sha256:`, `"previous":"sha512:`, 1), `previous policy digest: "sha512:`},
		{"same policy", strings.Replace(string(good), c.Previous, c.New.Digest(), 1), "nothing changes"},
		{"duplicated approvals", strings.Replace(string(good), keyB, keyA, 1), "by the same key"},
		{"unsorted approvals", strings.NewReplacer(keyA, keyB, keyB, keyA).Replace(string(good)), "approvals are not sorted by keyid"},
		{"bad keyid", strings.Replace(string(good), keyA, "node-a", 1), `approval 0: keyid: "node-a"`},
		{"empty signature", strings.Replace(string(good), `"sig":"MABwbGFjZQ=="`, `"sig":""`, 1), "empty signature"},
		{"new policy fails to parse", strings.Replace(string(good), `"version":1}`, `"version":2}`, 1), "the new policy: policy: version: 2 is not supported"},
		{"new policy not an object", strings.Replace(string(good), newPolicy, `"policy.json"`, 1), `"policy" is not a JSON object`},
		{"new policy not canonical", strings.NewReplacer(`"policy":{"name":"example.org/pyrsia-net",`, `"policy":{`, `"version":1}`, `"version":1,"name":"example.org/pyrsia-net"}`).Replace(string(good)), "the new policy is not in its canonical form"},
		{"kind publish", strings.Replace(string(good), `"kind":"policy"`, `"kind":"publish"`, 1), `of kind "publish", not "policy"`},
		{"version 2", strings.Replace(string(good), `"v":1`, `"v":2`, 1), "unsupported version 2"},
		{"too large", `{"v":1,"kind":"policy","previous":"` + strings.Repeat("x", MaxEntrySize) + `"}`, "over the 65535 byte limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParsePolicyChange([]byte(tt.input))
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			if !strings.HasPrefix(err.Error(), "publish: ") || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %q, want one starting \"publish: \" and containing %q", err, tt.want)
			}
		})
	}
}

// TestWritePolicyChangeTestdata rewrites the samples of policy change
// entries with -update.
func TestWritePolicyChangeTestdata(t *testing.T) {
	if !*update {
		t.Skip("run with -update to rewrite testdata")
	}
	good, err := MarshalPolicyChange(sampleChange(t))
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join("testdata", "policychange")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	c := sampleChange(t)
	c.Approvals = nil
	proposal, err := MarshalPolicyChange(c)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"valid-remove-node.json":    good,
		"valid-proposal.json":       proposal,
		"invalid-pretty.json":       indent(t, good),
		"invalid-duplicate.json":    bytes.Replace(good, []byte(sampleChange(t).Approvals[1].KeyID), []byte(sampleChange(t).Approvals[0].KeyID), 1),
		"invalid-policy-v2.json":    bytes.Replace(good, []byte(`"version":1}`), []byte(`"version":2}`), 1),
		"invalid-same-policy.json":  bytes.Replace(good, []byte(c.Previous), []byte(c.New.Digest()), 1),
		"invalid-kind-publish.json": bytes.Replace(good, []byte(`"kind":"policy"`), []byte(`"kind":"publish"`), 1),
	} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPolicyChangeTestdata(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "policychange", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no samples: %v", err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ParsePolicyChange(b)
		if valid := strings.HasPrefix(filepath.Base(f), "valid-"); valid != (err == nil) {
			t.Errorf("%s: got %v", f, err)
		}
	}
}

func FuzzParsePolicyChange(f *testing.F) {
	for _, s := range fuzzSeeds(f, "policychange") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParsePolicyChange(b)
		if err != nil {
			if c != nil {
				t.Fatal("ParsePolicyChange returned a change and an error")
			}
			if !strings.HasPrefix(err.Error(), "publish: ") {
				t.Fatalf("error %q lacks the publish: prefix", err)
			}
			return
		}
		out, err := MarshalPolicyChange(c)
		if err != nil {
			t.Fatalf("MarshalPolicyChange of a parsed change: %v", err)
		}
		if !bytes.Equal(out, b) {
			t.Fatalf("re-encoding differs:\n got %q\nwant %q", out, b)
		}
		if _, err := ParseEntry(b); !errors.Is(err, ErrNotPublish) {
			t.Fatalf("ParseEntry of a policy change: %v, want ErrNotPublish", err)
		}
	})
}
