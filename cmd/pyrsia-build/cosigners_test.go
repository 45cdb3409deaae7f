package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

// TestOpenCosignersOneKeyTwoNames is defect 5 on the append path: one key
// given as two --cosigner under two names counted twice towards the
// majority that makes log append commit a checkpoint. It is refused.
func TestOpenCosignersOneKeyTwoNames(t *testing.T) {
	tmp := t.TempDir()
	_, logPub := testKeys(t, tmp, "log")
	vkey, err := os.ReadFile(logPub)
	if err != nil {
		t.Fatal(err)
	}
	logV, err := note.NewVerifier(strings.TrimSpace(string(vkey)))
	if err != nil {
		t.Fatal(err)
	}
	seed := bytes.Repeat([]byte{7}, 32)
	var specs []string
	for _, name := range []string{"node-a", "node-b"} {
		skey, _, err := note.GenerateKey(bytes.NewReader(seed), name)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(tmp, name+".note.key")
		if err := os.WriteFile(path, []byte(skey+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		specs = append(specs, path+":"+filepath.Join(tmp, "state-"+name))
	}
	otherKey, _ := testKeys(t, tmp, "node-c")
	specs = append(specs, otherKey+":"+filepath.Join(tmp, "state-c"))

	_, err = openCosigners(specs, testOrigin, logV)
	if err == nil || !strings.Contains(err.Error(), `cosigners node-a and node-b are one key under two names`) {
		t.Fatalf("got %v, want the two names of one key refused", err)
	}
	// Distinct keys are accepted.
	if _, err := openCosigners(specs[1:], testOrigin, logV); err != nil {
		t.Fatalf("distinct keys: %v", err)
	}
}
