package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pyrsia/pyrsia-build/node"
	"github.com/urfave/cli/v2"
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

// The settings of a regular node: the flags over the --config file over
// the flags' defaults.
func TestRegularSettings(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "regular.yaml")
	if err := os.WriteFile(conf, []byte(`data: state
policy: ../policy.json
listen: [/ip4/127.0.0.1/tcp/4001]
bootstrap: [/ip4/127.0.0.1/tcp/4002/p2p/12D3KooWExample]
logUrl: https://mirror.example/log/
http: ""
storeMaxBytes: 4096
logLevel: debug
logFormat: json
`), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (*regularSettings, error) {
		var s *regularSettings
		var err error
		cmd := withRegular(nodeCommand())
		cmd.Action = func(c *cli.Context) error {
			cfg, lerr := node.LoadConfig(c.Context, conf)
			if lerr != nil {
				t.Fatal(lerr)
			}
			s, err = readRegularSettings(c, cfg)
			return nil
		}
		app := &cli.App{Commands: []*cli.Command{cmd}, Writer: io.Discard, ErrWriter: io.Discard}
		if rerr := app.Run(append([]string{"pyrsia-build", "node"}, args...)); rerr != nil {
			t.Fatal(rerr)
		}
		return s, err
	}
	s, err := run()
	if err != nil {
		t.Fatal(err)
	}
	want := regularSettings{data: filepath.Join(dir, "state"), policy: filepath.Join(filepath.Dir(dir), "policy.json"), http: "",
		logURL: "https://mirror.example/log/", listen: []string{"/ip4/127.0.0.1/tcp/4001"}, bootstrap: []string{"/ip4/127.0.0.1/tcp/4002/p2p/12D3KooWExample"},
		storeMaxBytes: 4096, logLevel: "debug", logFormat: "json"}
	if fmt.Sprint(*s) != fmt.Sprint(want) {
		t.Errorf("from the file:\n got %+v\nwant %+v", *s, want)
	}
	s, err = run("--data", "other", "--policy", "p.json", "--http", "127.0.0.1:1", "--log-url", "http://m.example/",
		"--listen", "/ip4/127.0.0.1/tcp/9", "--bootstrap", "/ip4/127.0.0.1/tcp/8/p2p/12D3KooWOther",
		"--store-max-bytes", "8192", "--log-level", "warn", "--log-format", "text")
	if err != nil {
		t.Fatal(err)
	}
	want = regularSettings{data: "other", policy: "p.json", http: "127.0.0.1:1", logURL: "http://m.example/",
		listen: []string{"/ip4/127.0.0.1/tcp/9"}, bootstrap: []string{"/ip4/127.0.0.1/tcp/8/p2p/12D3KooWOther"},
		storeMaxBytes: 8192, logLevel: "warn", logFormat: "text"}
	if fmt.Sprint(*s) != fmt.Sprint(want) {
		t.Errorf("flags over the file:\n got %+v\nwant %+v", *s, want)
	}
}
