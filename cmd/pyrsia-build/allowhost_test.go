package main

import (
	"strings"
	"testing"
)

// TestNodeAllowSourceHostFlag: a bad --allow-source-host entry stops the
// node before anything starts, with an error that names the entry.
func TestNodeAllowSourceHostFlag(t *testing.T) {
	dir := t.TempDir()
	code, _, stderr := runCLI("node", "--build", "--data", dir, "--policy", dir+"/policy.json",
		"--allow-source-host", "127.0.0.1:7880", "--allow-source-host", "http://127.0.0.1:7880/")
	if code != exitInput || !strings.Contains(stderr, `--allow-source-host: builder: allowed source host "http://127.0.0.1:7880/"`) {
		t.Errorf("exit %d, %s", code, stderr)
	}
}
