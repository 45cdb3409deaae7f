package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/pyrsia/pyrsia-build/publish/witness"
)

// changeNet writes a policy of n build nodes to dir/current.json and one
// with a node more to dir/new.json, each node's cosign private key to
// dir/node-i.key (password "pw"), and returns the two policies.
func changeNet(t *testing.T, dir string, n int) (cur, next *policy.Policy) {
	t.Helper()
	cur = &policy.Policy{Version: 1, Name: "example.org/change-test"}
	next = &policy.Policy{Version: 1, Name: cur.Name}
	for i := range n + 1 {
		name := fmt.Sprintf("node-%d", i)
		kp, err := attest.GenerateKeyPair([]byte("pw"))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name+".key"), kp.Private, 0o600); err != nil {
			t.Fatal(err)
		}
		_, vkey, err := witness.GenerateKey(name)
		if err != nil {
			t.Fatal(err)
		}
		nd := policy.Node{Name: name, CosignKey: string(kp.Public), NoteKey: vkey}
		if i < n {
			cur.Nodes = append(cur.Nodes, nd)
		}
		next.Nodes = append(next.Nodes, nd)
	}
	for file, p := range map[string]*policy.Policy{"current.json": cur, "new.json": next} {
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, file), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return cur, next
}

// Regression (hostile review of the policy chain): `network approve`
// asked for the key's password and signed before it showed what the
// change does, so a node's operator approved a change file from a
// proposer without seeing it first. It must show the change before it
// reads the key: a wrong password (or ^C at the prompt) leaves the
// operator having seen what they were asked to sign, and nothing signed.
func TestNetworkApproveShowsTheChangeBeforeSigning(t *testing.T) {
	dir := t.TempDir()
	changeNet(t, dir, 2)
	cur, change := filepath.Join(dir, "current.json"), filepath.Join(dir, "change.json")
	if code, _, stderr := runCLI("network", "propose", "--policy", cur, "--new", filepath.Join(dir, "new.json"), "-o", change); code != 0 {
		t.Fatalf("propose: exit %d: %s", code, stderr)
	}
	before, err := os.ReadFile(change)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(passwordEnv, "wrong")
	code, stdout, stderr := runCLI("network", "approve", "--policy", cur, "--key", filepath.Join(dir, "node-0.key"), change)
	if code == 0 {
		t.Fatalf("approve with a wrong password succeeded: %s", stdout)
	}
	if !strings.Contains(stdout, "add node node-2") || !strings.Contains(stdout, "approved  0 of 2 build nodes (none), 2 needed") {
		t.Errorf("approve did not show the change before reading the key:\nstdout: %s\nstderr: %s", stdout, stderr)
	}
	if after, _ := os.ReadFile(change); string(after) != string(before) {
		t.Error("a failed approval changed the change file")
	}

	t.Setenv(passwordEnv, "pw")
	for i, key := range []string{"node-0.key", "node-1.key"} {
		code, stdout, stderr := runCLI("network", "approve", "--policy", cur, "--key", filepath.Join(dir, key), change)
		if code != 0 {
			t.Fatalf("approve with %s: exit %d: %s", key, code, stderr)
		}
		if want := fmt.Sprintf("approved  %d of 2 build nodes", i+1); !strings.Contains(stdout, want) {
			t.Errorf("approve with %s: got %s, want %q", key, stdout, want)
		}
	}
	// A node outside the policy in force approves nothing.
	if code, _, stderr := runCLI("network", "approve", "--policy", cur, "--key", filepath.Join(dir, "node-2.key"), change); code == 0 || !strings.Contains(stderr, "not the cosign key of a build node of the policy in force") {
		t.Errorf("approve by the new node: exit %d: %s", code, stderr)
	}
}
