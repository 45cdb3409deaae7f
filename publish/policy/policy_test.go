package policy_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"golang.org/x/mod/sumdb/note"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTestdata(t *testing.T) {
	files, err := filepath.Glob("testdata/*")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			p, err := policy.Load(f)
			if strings.HasPrefix(name, "invalid-") {
				if err == nil {
					t.Fatalf("got a policy, want an error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			// The canonical form parses back to the same digest.
			b, err := p.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			q, err := policy.Parse(b)
			if err != nil {
				t.Fatalf("canonical form: %v", err)
			}
			if q.Digest() != p.Digest() || !strings.HasPrefix(p.Digest(), "sha256:") {
				t.Errorf("digest %s after a round trip, want %s", q.Digest(), p.Digest())
			}
			if _, err := p.Trust(); err != nil {
				t.Errorf("Trust: %v", err)
			}
		})
	}
}

// The JSON and the YAML file say the same thing: same policy, same digest.
func TestYAMLIsJSON(t *testing.T) {
	j, err := policy.Parse(readTestdata(t, "valid-three-nodes.json"))
	if err != nil {
		t.Fatal(err)
	}
	y, err := policy.Parse(readTestdata(t, "valid-three-nodes.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if j.Digest() != y.Digest() {
		t.Errorf("YAML digest %s, JSON digest %s, want equal", y.Digest(), j.Digest())
	}
	if got, want := j.Threshold(), 2; got != want {
		t.Errorf("Threshold() = %d, want %d", got, want)
	}
	if n, ok := j.Node("node-b"); !ok || n.Name != "node-b" {
		t.Errorf("Node(node-b) = %v, %v", n, ok)
	}
	if n, ok := j.NodeByPeerID(j.Nodes[2].PeerID); !ok || n.Name != "node-c" {
		t.Errorf("NodeByPeerID = %v, %v, want node-c", n, ok)
	}
	if _, ok := j.NodeByPeerID(""); ok {
		t.Error("NodeByPeerID(\"\") found a node")
	}
}

// The digest does not depend on the order of nodes or on PEM line ends.
func TestDigestCanonical(t *testing.T) {
	p, err := policy.Parse(readTestdata(t, "valid-three-nodes.json"))
	if err != nil {
		t.Fatal(err)
	}
	q := *p
	q.Nodes = []policy.Node{p.Nodes[2], p.Nodes[0], p.Nodes[1]}
	q.Nodes[0].CosignKey = strings.TrimSpace(q.Nodes[0].CosignKey)
	if p.Digest() != q.Digest() {
		t.Errorf("digest changed with node order or PEM trailing newline")
	}
	q.Open = true
	if p.Digest() == q.Digest() {
		t.Errorf("digest did not change with Open")
	}
}

// edit returns the valid JSON policy changed by f.
func edit(t *testing.T, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(readTestdata(t, "valid-three-nodes.json"), &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func node(m map[string]any, i int) map[string]any { return m["nodes"].([]any)[i].(map[string]any) }

// sameKeyOtherName gives vkey's public key under another name.
func sameKeyOtherName(t *testing.T, vkey, name string) string {
	t.Helper()
	parts := strings.SplitN(vkey, "+", 3)
	raw, _ := base64.StdEncoding.DecodeString(parts[2])
	k, err := note.NewEd25519VerifierKey(name, ed25519.PublicKey(raw[1:]))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestParseErrors(t *testing.T) {
	valid := readTestdata(t, "valid-three-nodes.json")
	yaml := readTestdata(t, "valid-three-nodes.yaml")
	tests := []struct {
		name  string
		input []byte
		field string
		want  string
	}{
		{"empty", nil, "", "empty"},
		{"not JSON", []byte("{nope"), "", "not valid JSON"},
		{"truncated", valid[:len(valid)/2], "", "JSON ends early"},
		{"trailing data", append(append([]byte(nil), valid...), "{}"...), "", "trailing data"},
		{"unknown field", edit(t, func(m map[string]any) { m["threshold"] = 1 }), "", `unknown field "threshold"`},
		{"duplicate key", []byte(`{"version":1,"version":1}`), "", `key "version" appears twice`},
		{"version 2", edit(t, func(m map[string]any) { m["version"] = 2 }), "version", "2 is not supported"},
		{"version as string", edit(t, func(m map[string]any) { m["version"] = "1" }), "", "field version: JSON string where int belongs"},
		{"no name", edit(t, func(m map[string]any) { delete(m, "name") }), "name", "empty"},
		{"name with space", edit(t, func(m map[string]any) { m["name"] = "a b" }), "name", "holds a space"},
		{"no nodes", edit(t, func(m map[string]any) { m["nodes"] = []any{} }), "nodes", "no build nodes"},
		{"bad node name", edit(t, func(m map[string]any) { node(m, 0)["name"] = "Node_A" }), "nodes[0].name", "is not [a-z0-9][a-z0-9.-]*"},
		{"two nodes one name", edit(t, func(m map[string]any) { node(m, 1)["name"] = "node-a" }), "nodes[1] (node-a).name", "also the name of nodes[0]"},
		{"bad cosign key", edit(t, func(m map[string]any) { node(m, 1)["cosignKey"] = "nope" }), "nodes[1] (node-b).cosignKey", "no PEM block"},
		{"cosign key and garbage", edit(t, func(m map[string]any) { node(m, 1)["cosignKey"] = node(m, 1)["cosignKey"].(string) + "x" }), "nodes[1] (node-b).cosignKey", "data after the PEM block"},
		{"one cosign key twice", edit(t, func(m map[string]any) { node(m, 1)["cosignKey"] = node(m, 0)["cosignKey"] }), "nodes[1] (node-b).cosignKey", "the same key as that of nodes[0] (node-a)"},
		{"bad peer id", edit(t, func(m map[string]any) { node(m, 2)["peerId"] = "0OIl" + strings.Repeat("a", 50) }), "nodes[2] (node-c).peerId", "not base58"},
		{"one peer id twice", edit(t, func(m map[string]any) { node(m, 2)["peerId"] = node(m, 0)["peerId"] }), "nodes[2] (node-c).peerId", "also the peer id of nodes[0]"},
		{"private note key", edit(t, func(m map[string]any) { node(m, 0)["noteKey"] = "PRIVATE+KEY+node-a+00000000+AAAA" }), "nodes[0] (node-a).noteKey", "this is a signer (private) key"},
		{"one note key under two names", edit(t, func(m map[string]any) {
			node(m, 1)["noteKey"] = sameKeyOtherName(t, node(m, 0)["noteKey"].(string), "node-b")
		}), "nodes[1] (node-b).noteKey", "one key under two names would be counted twice"},
		{"bad requester", edit(t, func(m map[string]any) { m["requesters"] = []any{"x"} }), "requesters[0]", "no PEM block"},
		{"YAML unknown field", append(append([]byte(nil), yaml...), "extra: 1\n"...), "", "field extra not found"},
		{"YAML two documents", append(append([]byte(nil), yaml...), "---\nversion: 1\n"...), "", "more than one YAML document"},
		{"YAML duplicate key", append(append([]byte(nil), yaml...), "open: true\n"...), "", `mapping key "open" already defined`},
		{"YAML version 1.0", bytes.Replace(yaml, []byte("version: 1\n"), []byte("version: 1.0\n"), 1), "", `version "1.0" is not an integer`},
		{"oversize", make([]byte, policy.MaxPolicySize+1), "", "over the 1048576 byte limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := policy.Parse(tt.input)
			var pe *policy.Error
			if p != nil || !errors.As(err, &pe) {
				t.Fatalf("got %v, %v, want a *policy.Error", p, err)
			}
			if pe.Field != tt.field || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got field %q error %q, want field %q and %q", pe.Field, err, tt.field, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "policy: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestLoad(t *testing.T) {
	if _, err := policy.Load("/dev/zero"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("Load(/dev/zero): got %v, want not a regular file", err)
	}
	bad := filepath.Join(t.TempDir(), "p.json")
	os.WriteFile(bad, []byte(`{"version":2}`), 0o644)
	if _, err := policy.Load(bad); err == nil || !strings.HasPrefix(err.Error(), bad+": policy: version") {
		t.Errorf("Load: got %v, want the file named", err)
	}
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*")
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := policy.Parse(data)
		if err != nil {
			var pe *policy.Error
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *policy.Error", err)
			}
			return
		}
		// What parses has a canonical form that parses to the same digest,
		// and compiles.
		b, err := p.Marshal()
		if err != nil {
			t.Fatalf("Marshal of a parsed policy: %v", err)
		}
		q, err := policy.Parse(b)
		if err != nil {
			t.Fatalf("canonical form does not parse: %v\n%s", err, b)
		}
		if p.Digest() != q.Digest() {
			t.Fatalf("digest changed in a round trip")
		}
		tr, err := p.Trust()
		if err != nil {
			t.Fatalf("Trust of a valid policy: %v", err)
		}
		if tr.BuildThreshold != p.Threshold() || len(tr.BuildKeys) != len(p.Nodes) || len(tr.Cosigners) != len(p.Nodes) {
			t.Fatalf("Trust: %d keys, threshold %d, for %d nodes", len(tr.BuildKeys), tr.BuildThreshold, len(p.Nodes))
		}
	})
}

func TestAddNode(t *testing.T) {
	p, err := policy.Parse(readTestdata(t, "valid-three-nodes.json"))
	if err != nil {
		t.Fatal(err)
	}
	before := p.Digest()
	dup := p.Nodes[0]
	dup.Name = "node-d"
	if err := p.AddNode(dup); err == nil || len(p.Nodes) != 3 || p.Digest() != before {
		t.Fatalf("AddNode of a node with node-a's keys: got %v, %d nodes, want an error and no change", err, len(p.Nodes))
	}
	solo, err := policy.Parse(readTestdata(t, "valid-one-node-open.json"))
	if err != nil {
		t.Fatal(err)
	}
	n := solo.Nodes[0]
	n.NoteKey = sameKeyOtherName(t, p.Nodes[0].NoteKey, "x")
	if err := p.AddNode(n); err == nil || !strings.Contains(err.Error(), "nodes[3] (solo).noteKey: the same key as that of nodes[0]") {
		t.Fatalf("AddNode with node-a's note key: got %v", err)
	}
	n.NoteKey = ""
	if err := p.AddNode(n); err == nil {
		t.Fatal("AddNode with no note key: got no error")
	}
}

func TestMayRequest(t *testing.T) {
	p, err := policy.Parse(readTestdata(t, "valid-three-nodes.json"))
	if err != nil {
		t.Fatal(err)
	}
	key := func(pemText string) *attest.PublicKey {
		k, err := attest.ParsePublicKey("k", []byte(pemText))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	solo, _ := policy.Parse(readTestdata(t, "valid-one-node-open.json"))
	stranger := key(solo.Nodes[0].CosignKey)
	if name, ok := p.MayRequest(key(p.Nodes[1].CosignKey)); !ok || name != "node-b" {
		t.Errorf("node-b: got %q, %v", name, ok)
	}
	if name, ok := p.MayRequest(key(p.Requesters[0])); !ok || name != "requesters[0]" {
		t.Errorf("requester: got %q, %v", name, ok)
	}
	if _, ok := p.MayRequest(stranger); ok {
		t.Error("a stranger may request in a closed network")
	}
	p.Open = true
	if name, ok := p.MayRequest(stranger); !ok || name != "anyone" {
		t.Errorf("stranger in an open network: got %q, %v", name, ok)
	}
}
