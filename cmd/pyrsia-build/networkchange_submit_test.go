package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pyrsia/pyrsia-build/publish/policy"
)

// TestNetworkSubmit: propose, approve and submit a change to a running
// network of three build nodes: a minority's change is refused (by this
// command with --policy, and by the node without), malformed bytes name
// the file, a majority's change is appended (flags after the operand),
// submitted again it is already there, and a change of the policy it
// replaced is refused as stale.
func TestNetworkSubmit(t *testing.T) {
	t.Setenv("COSIGN_PASSWORD", "")
	api, policyFile := startTestNetwork(t, []string{"honest", "honest", "honest"}, 20*time.Second)
	root := filepath.Dir(policyFile)
	key := func(i int) string { return filepath.Join(root, string(rune('0'+i)), "keys", "cosign.key") }
	cur, err := policy.Load(policyFile)
	if err != nil {
		t.Fatal(err)
	}
	writePolicy := func(name string, p *policy.Policy) string {
		b, err := p.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		f := filepath.Join(root, name)
		if err := os.WriteFile(f, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	open := *cur
	open.Open = true
	openFile := writePolicy("open.json", &open)
	change := filepath.Join(root, "change.json")
	if code, _, errOut := runCLI("network", "propose", "--policy", policyFile, "--new", openFile, "-o", change); code != 0 {
		t.Fatalf("propose: %d %s", code, errOut)
	}
	if code, _, errOut := runCLI("network", "approve", "--policy", policyFile, "--key", key(0), change); code != 0 {
		t.Fatalf("approve: %d %s", code, errOut)
	}

	// One approval of three: refused here with --policy, and by the node.
	code, out, errOut := runCLI("network", "submit", "--node", api, "--policy", policyFile, change)
	if code == 0 || !strings.Contains(errOut, "2 of the 3 build nodes") || !strings.Contains(out, "approved  1 of 3") {
		t.Errorf("a minority's change with --policy: %d\n%s\n%s", code, out, errOut)
	}
	code, _, errOut = runCLI("network", "submit", "--node", api, change)
	if code == 0 || !strings.Contains(errOut, "the node refused") || !strings.Contains(errOut, "refused") {
		t.Errorf("a minority's change: %d %s", code, errOut)
	}

	bad := filepath.Join(root, "bad.json")
	os.WriteFile(bad, []byte(`{"v":1,"kind":"policy","previous":`), 0o644)
	if code, _, errOut := runCLI("network", "submit", "--node", api, bad); code == 0 || !strings.Contains(errOut, bad) {
		t.Errorf("malformed bytes: %d %s (want the file named)", code, errOut)
	}

	if code, _, errOut := runCLI("network", "approve", "--policy", policyFile, "--key", key(2), change); code != 0 {
		t.Fatalf("approve: %d %s", code, errOut)
	}
	code, out, errOut = runCLI("network", "submit", change, "--node", api)
	if code != 0 || !strings.Contains(out, "appended at log index 0") || !strings.Contains(out, open.Digest()) {
		t.Fatalf("a majority's change: %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCLI("network", "submit", "--node", api, change)
	if code != 0 || !strings.Contains(out, "already in the log at log index 0") {
		t.Errorf("the change again: %d\n%s\n%s", code, out, errOut)
	}

	// A change of the first policy, now replaced: stale.
	other := *cur
	other.Requesters = nil
	other.Nodes = cur.Nodes[:2]
	otherFile := writePolicy("other.json", &other)
	stale := filepath.Join(root, "stale.json")
	if code, _, errOut := runCLI("network", "propose", "--policy", policyFile, "--new", otherFile, "-o", stale); code != 0 {
		t.Fatalf("propose: %d %s", code, errOut)
	}
	for _, i := range []int{0, 1} {
		if code, _, errOut := runCLI("network", "approve", "--policy", policyFile, "--key", key(i), stale); code != 0 {
			t.Fatalf("approve: %d %s", code, errOut)
		}
	}
	code, _, errOut = runCLI("network", "submit", "--node", api, stale)
	if code == 0 || !strings.Contains(errOut, "a later change replaced it") || !strings.Contains(errOut, open.Digest()) {
		t.Errorf("a stale change: %d %s", code, errOut)
	}

	code, out, _ = runCLI("network", "submit", "--help")
	if code != 0 || !strings.Contains(out, "Examples:") || !strings.Contains(out, "--node") {
		t.Errorf("network submit --help: %d\n%s", code, out)
	}
	if code, _, errOut := runCLI("network", "submit", "--node", api); code == 0 || !strings.Contains(errOut, "one CHANGE file") {
		t.Errorf("no CHANGE: %d %s", code, errOut)
	}
}
