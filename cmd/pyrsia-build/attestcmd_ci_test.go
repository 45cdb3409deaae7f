package main

import (
	"encoding/base64"
	"encoding/json"
	"maps"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestCIScripts runs testdata/ci: attest under the environment of a CI
// run records the run in the provenance.
func TestCIScripts(t *testing.T) {
	t.Parallel()
	cmds := maps.Clone(scriptCmds)
	// payload BUNDLE prints the bundle's DSSE payload (the statement),
	// indented, keys sorted.
	cmds["payload"] = func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 1 {
			ts.Fatalf("usage: payload BUNDLE")
		}
		var b struct {
			DSSEEnvelope struct {
				Payload string `json:"payload"`
			} `json:"dsseEnvelope"`
		}
		ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[0])), &b))
		p, err := base64.StdEncoding.DecodeString(b.DSSEEnvelope.Payload)
		ts.Check(err)
		var v any
		ts.Check(json.Unmarshal(p, &v))
		out, err := json.MarshalIndent(v, "", "  ")
		ts.Check(err)
		ts.Stdout().Write(append(out, '\n'))
	}
	testscript.Run(t, testscript.Params{Dir: "testdata/ci", Cmds: cmds})
}
