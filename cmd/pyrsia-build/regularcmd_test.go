package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRegularConfigErrors: a regular node's --config is checked before
// anything starts: a build node's field in it, a regular node's field in a
// build node's file, a mistyped field, each named with the file and the
// line; a flag given overrides the file (here: the missing bootstrap).
func TestRegularConfigErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, body string
		flags      []string
		want       string
	}{
		{"build field", "data: d\npolicy: p.json\nmaxBuilds: 2\n", nil, "maxBuilds: is a build node's field, and this configuration runs a regular node"},
		{"regular field in a build node's file", "build: true\ndata: d\nhttp: 127.0.0.1:1\n", nil, "http: is a regular node's field, and this configuration runs a build node"},
		{"regular field with --build", "data: d\nlogUrl: https://mirror.example/log/\n", []string{"--build"}, "logUrl: is a regular node's field"},
		{"mistyped", "data: d\nstoreMaxBytes: lots\n", nil, `storeMaxBytes: is str "lots", want int`},
		{"unknown", "data: d\nlog-url: x\n", nil, "log-url: unknown field"},
		{"no log source", "data: d\npolicy: p.json\n", nil, "fields bootstrap: and logUrl: of --config"},
		{"no data", "policy: p.json\nlogUrl: https://mirror.example/log/\n", nil, "node needs --data and --policy"},
		{"store bound from a flag", "data: d\npolicy: p.json\nlogUrl: https://mirror.example/log/\n", []string{"--store-max-bytes", "0"}, "--store-max-bytes 0"},
		{"build: false over the file's true", "build: true\ndata: d\npolicy: p.json\nimages: i\n", []string{"--build=false"}, "images: is a build node's field"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := write(strings.ReplaceAll(tc.name, " ", "-")+".yaml", tc.body)
			code, _, stderr := runCLI(append([]string{"node", "--config", f}, tc.flags...)...)
			if code != exitInput || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", code, stderr, exitInput, tc.want)
			}
			if inFile := !strings.Contains(tc.want, "--"); inFile && !strings.Contains(stderr, f+":") {
				t.Errorf("stderr %q does not name the file %s", stderr, f)
			}
		})
	}
}
