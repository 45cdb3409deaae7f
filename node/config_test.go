package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
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
	if err := c.CheckKind(true); err != nil {
		t.Errorf("the build node's example has a field of the other kind: %v", err)
	}
	r, err := LoadConfig(context.Background(), "../deploy/regular.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if r.Build == nil || *r.Build || r.Data != "/var/lib/pyrsia-build-regular" || r.Policy != "/etc/pyrsia-build/policy.json" ||
		len(r.Listen) != 1 || len(r.Bootstrap) != 1 || r.HTTP == nil || *r.HTTP != DefaultHTTP || r.LogURL != "" ||
		r.StoreMaxBytes != DefaultStoreBytes || r.LogLevel != "info" || r.LogFormat != "text" {
		t.Errorf("example regular configuration: got %+v", r)
	}
	if err := r.CheckKind(false); err != nil {
		t.Errorf("the regular node's example has a field of the other kind: %v", err)
	}
	// Every field of the format is in the example of its kind (and so
	// explained); the fields both kinds take, in both.
	build, _ := os.ReadFile("../deploy/node.example.yaml")
	regular, _ := os.ReadFile("../deploy/regular.example.yaml")
	shows := func(b []byte, name string) bool {
		return strings.Contains(string(b), "\n"+name+":") || strings.Contains(string(b), "\n# "+name+":")
	}
	for _, name := range configFieldNames() {
		wantBuild, wantRegular := !slices.Contains(regularOnly, name), !slices.Contains(buildOnly, name)
		if wantBuild != shows(build, name) {
			t.Errorf("deploy/node.example.yaml shows field %s: %v, want %v", name, !wantBuild, wantBuild)
		}
		if wantRegular != shows(regular, name) {
			t.Errorf("deploy/regular.example.yaml shows field %s: %v, want %v", name, !wantRegular, wantRegular)
		}
	}
}

func TestConfigCheckKind(t *testing.T) {
	c, err := ParseConfig("r.yaml", []byte("data: d\nlogUrl: https://mirror.example/log/\nhttp: \"\"\nstoreMaxBytes: 1024\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.LogURL != "https://mirror.example/log/" || c.HTTP == nil || *c.HTTP != "" || c.StoreMaxBytes != 1024 {
		t.Errorf("got %+v", c)
	}
	if err := c.CheckKind(false); err != nil {
		t.Errorf("a regular node's fields for a regular node: %v", err)
	}
	var ce *ConfigError
	if err := c.CheckKind(true); !errors.As(err, &ce) || err.Error() != "r.yaml:2: logUrl: is a regular node's field, and this configuration runs a build node" {
		t.Errorf("a regular node's fields for a build node: got %v", err)
	}
	b, err := ParseConfig("b.yaml", []byte("data: d\nmaxBuilds: 3\napi: x:1\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.CheckKind(false); err == nil || !strings.HasPrefix(err.Error(), "b.yaml:2: maxBuilds: is a build node's field") {
		t.Errorf("a build node's field for a regular node: got %v", err)
	}
	if err := (&Config{}).CheckKind(false); err != nil {
		t.Errorf("an empty configuration: %v", err)
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
		{"store bound", "storeMaxBytes: 0\n", "node.yaml:1: storeMaxBytes: 0: want a positive number of bytes"},
		{"store bound as string", "storeMaxBytes: 10GiB\n", `node.yaml:1: storeMaxBytes: is str "10GiB", want int`},
		{"log URL", "logUrl: file:///log\n", `node.yaml:1: logUrl: "file:///log": want an http:// or https:// URL`},
		{"http as number", "http: 7888\n", `node.yaml:1: http: is int "7888", want str`},
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
	if b, err = os.ReadFile("../deploy/regular.example.yaml"); err != nil {
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
		if err == nil {
			for _, build := range []bool{true, false} {
				var ce *ConfigError
				if err := c.CheckKind(build); err != nil && (!errors.As(err, &ce) || ce.Line <= 0) {
					t.Fatalf("CheckKind(%v): %v, want a *ConfigError with a line", build, err)
				}
			}
		}
	})
}
