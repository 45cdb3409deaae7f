package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"pyrsia-build": func() { os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs the end-to-end CLI scripts in testdata/script.
func TestScripts(t *testing.T) {
	t.Parallel()
	testscript.Run(t, testscript.Params{Dir: "testdata/script", Cmds: scriptCmds})
}

// TestCosign runs testdata/cosign against the real cosign command: our
// bundles and keys must work with cosign, and cosign's with us.
func TestCosign(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("cosign"); err != nil {
		requireInCI(t, "cosign is not on PATH: install it with scripts/install-cosign.sh and add its folder to PATH")
	}
	testscript.Run(t, testscript.Params{Dir: "testdata/cosign", Cmds: scriptCmds})
}

// requireInCI skips the test locally, and fails it in CI, where nothing
// may skip.
func requireInCI(t *testing.T, reason string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("CI: %s", reason)
	}
	t.Skip(reason)
}

// scriptCmds are the commands the scripts use to damage files.
var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	// exits N PROG ARGS... runs PROG like exec and checks that it exits
	// with code N; its output is kept for stdout and stderr.
	"exits": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) < 2 {
			ts.Fatalf("usage: exits N PROG ARGS...")
		}
		want, err := strconv.Atoi(args[0])
		ts.Check(err)
		got := 0
		if err := ts.Exec(args[1], args[2:]...); err != nil {
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				ts.Fatalf("%s: %v", args[1], err)
			}
			got = ee.ExitCode()
		}
		if got != want {
			ts.Fatalf("%s exited with %d, want %d", args[1], got, want)
		}
	},
	// mkfifo FILE makes a named pipe.
	"mkfifo": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 1 {
			ts.Fatalf("usage: mkfifo FILE")
		}
		ts.Check(syscall.Mkfifo(ts.MkAbs(args[0]), 0o644))
	},
	// sparse FILE N makes FILE N bytes long (holes: it takes no space).
	"sparse": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 2 {
			ts.Fatalf("usage: sparse FILE N")
		}
		n, err := strconv.ParseInt(args[1], 10, 64)
		ts.Check(err)
		f, err := os.Create(ts.MkAbs(args[0]))
		ts.Check(err)
		ts.Check(f.Truncate(n))
		ts.Check(f.Close())
	},
	// truncate FILE N keeps the first N bytes of FILE.
	"truncate": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) != 2 {
			ts.Fatalf("usage: truncate FILE N")
		}
		n, err := strconv.Atoi(args[1])
		ts.Check(err)
		data := []byte(ts.ReadFile(args[0]))
		if n > len(data) {
			ts.Fatalf("%s has only %d bytes", args[0], len(data))
		}
		ts.Check(os.WriteFile(ts.MkAbs(args[0]), data[:n], 0o644))
	},
	// editbundle FILE OP ARGS... changes a bundle's JSON:
	//   media-type VALUE       sets mediaType
	//   payload-raw VALUE      sets the envelope's payload string as is
	//   payload-replace OLD NEW  decodes the payload, replaces OLD by NEW, encodes it
	"editbundle": func(ts *testscript.TestScript, neg bool, args []string) {
		if neg || len(args) < 3 {
			ts.Fatalf("usage: editbundle FILE media-type|payload-raw|payload-replace ARGS...")
		}
		var b map[string]any
		ts.Check(json.Unmarshal([]byte(ts.ReadFile(args[0])), &b))
		env, _ := b["dsseEnvelope"].(map[string]any)
		switch args[1] {
		case "media-type":
			b["mediaType"] = args[2]
		case "payload-raw":
			env["payload"] = args[2]
		case "payload-replace":
			if len(args) != 4 {
				ts.Fatalf("usage: editbundle FILE payload-replace OLD NEW")
			}
			p, err := base64.StdEncoding.DecodeString(env["payload"].(string))
			ts.Check(err)
			if !strings.Contains(string(p), args[2]) {
				ts.Fatalf("payload does not contain %q", args[2])
			}
			env["payload"] = base64.StdEncoding.EncodeToString([]byte(strings.Replace(string(p), args[2], args[3], 1)))
		default:
			ts.Fatalf("editbundle: unknown operation %q", args[1])
		}
		out, err := json.Marshal(b)
		ts.Check(err)
		ts.Check(os.WriteFile(ts.MkAbs(args[0]), out, 0o644))
	},
}
