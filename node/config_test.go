package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestExampleConfig(t *testing.T) {
	c, err := LoadConfig(context.Background(), "../deploy/node.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Build == nil || !*c.Build || c.Data != "/var/lib/pyrsia-build" || c.Policy != "/etc/pyrsia-build/policy.json" ||
		len(c.Listen) != 2 || len(c.Bootstrap) != 2 || c.API == nil || *c.API != "127.0.0.1:7888" || c.BuildkitAddr != "" ||
		c.Images != "/var/lib/pyrsia-build/images" || c.MaxBuilds != 2 || c.Deadline != 10*time.Minute ||
		len(c.AllowSourceHosts) != 1 || c.LogLevel != "info" || c.LogFormat != "text" {
		t.Errorf("example configuration: got %+v", c)
	}
	// Every field of the format is in the example (and so explained).
	b, _ := os.ReadFile("../deploy/node.example.yaml")
	for _, name := range configFieldNames() {
		if !strings.Contains(string(b), "\n"+name+":") && !strings.Contains(string(b), "\n# "+name+":") {
			t.Errorf("deploy/node.example.yaml does not show field %s", name)
		}
	}
}

func TestParseConfig(t *testing.T) {
	c, err := ParseConfig("/etc/pb/node.yaml", []byte("data: state\npolicy: ../policy.json\napi: \"\"\ndeadline: 90s\nbuild: false\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Data != "/etc/pb/state" || c.Policy != "/etc/policy.json" {
		t.Errorf("relative paths: got data %q, policy %q; want them relative to the file's folder", c.Data, c.Policy)
	}
	if c.API == nil || *c.API != "" || c.Deadline != 90*time.Second || c.Build == nil || *c.Build {
		t.Errorf("got %+v", c)
	}
	if c, err := ParseConfig("x.yaml", []byte("# only a comment\n{}\n")); err != nil || c.API != nil || c.Build != nil {
		t.Errorf("an empty mapping: got %+v, %v; want nothing set", c, err)
	}
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"unknown field", "data: d\nlisten-addr: x\n", "node.yaml:2: listen-addr: unknown field (the fields are allowSourceHosts, api,"},
		{"flag spelling", "allow-source-host: [a]\n", "node.yaml:1: allow-source-host: unknown field"},
		{"twice", "data: a\ndata: b\n", "node.yaml:2: data: given twice (first on line 1)"},
		{"wrong type", "maxBuilds: two\n", `node.yaml:1: maxBuilds: is str "two", want int`},
		{"zero builds", "maxBuilds: 0\n", "node.yaml:1: maxBuilds: 0: want at least 1"},
		{"list as string", "listen: /ip4/127.0.0.1/tcp/1\n", "node.yaml:1: listen: is str"},
		{"list of numbers", "bootstrap:\n  - 1\n", `node.yaml:2: bootstrap: item 1 is int "1", want str`},
		{"bad deadline", "deadline: 10\n", "node.yaml:1: deadline: is int \"10\", want str (a duration such as 10m or 1h30m)"},
		{"negative deadline", "deadline: -1m\n", `node.yaml:1: deadline: "-1m" is not a positive duration`},
		{"version", "version: 2\n", "node.yaml:1: version: 2 is not supported (this build reads version 1)"},
		{"log level", "logLevel: loud\n", `node.yaml:1: logLevel: "loud": want debug, info, warn or error`},
		{"log format", "logFormat: xml\n", `node.yaml:1: logFormat: "xml": want text or json`},
		{"empty path", "data: \"\"\n", "node.yaml:1: data: is empty"},
		{"null", "policy:\n", `node.yaml:1: policy: is null`},
		{"empty file", "", "node.yaml: empty"},
		{"not a mapping", "- data\n", "node.yaml:1: is a list, want a mapping"},
		{"two documents", "data: a\n---\ndata: b\n", "more than one YAML document"},
		{"bad YAML", "data: [\n", "node.yaml: not valid YAML"},
		{"alias", "listen: &l [a]\nbootstrap: *l\n", "node.yaml:2: bootstrap: is an alias"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseConfig("node.yaml", []byte(tc.in))
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("got %v, want a *ConfigError", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %q, want %q", err, tc.want)
			}
		})
	}
}

func TestLoadConfigNotAFile(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadConfig(context.Background(), dir); err == nil || !strings.Contains(err.Error(), dir) {
		t.Errorf("a folder: got %v, want an error naming it", err)
	}
	big := filepath.Join(dir, "big.yaml")
	os.WriteFile(big, []byte("data: x\n"+strings.Repeat("# pad\n", MaxConfigSize/6+1)), 0o644)
	if _, err := LoadConfig(context.Background(), big); err == nil {
		t.Error("a file over MaxConfigSize was read")
	}
}

func FuzzParseConfig(f *testing.F) {
	b, err := os.ReadFile("../deploy/node.example.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("data: a\ndata: b\n"))
	f.Add([]byte("listen: &l [a]\nbootstrap: *l\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := ParseConfig("node.yaml", in)
		if err == nil && c == nil {
			t.Fatal("no config and no error")
		}
	})
}
