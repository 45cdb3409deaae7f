package deploy

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

const (
	nodeUnit     = "pyrsia-build-node.service"
	buildkitUnit = "pyrsia-build-buildkitd.service"
)

// need returns the path of a tool the test needs: a missing one skips
// locally and fails in CI.
func need(t *testing.T, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s not found: %s", name, install)
		}
		t.Skipf("%s not found: %s", name, install)
	}
	return p
}

// unitFile reads a unit's settings: key -> values, in order, of every
// section.
func unitFile(t *testing.T, name string) map[string][]string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s: %q is not KEY=VALUE", name, line)
		}
		out[k] = append(out[k], v)
	}
	return out
}

func one(t *testing.T, unit map[string][]string, name, key string) string {
	t.Helper()
	if len(unit[key]) != 1 {
		t.Fatalf("%s: %s= set %d times, want once", name, key, len(unit[key]))
	}
	return unit[key][0]
}

var (
	binOnce sync.Once
	binDir  string
	binErr  error
)

// TestMain removes the binary the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildBinary builds pyrsia-build from this tree, once for all tests.
func buildBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "deploy-test-"); binErr != nil {
			return
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(binDir, "pyrsia-build"), "./cmd/pyrsia-build")
		cmd.Dir = ".."
		if out, err := cmd.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %w\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return filepath.Join(binDir, "pyrsia-build")
}

// TestSystemdVerify runs systemd-analyze verify on both units, copied to a
// temporary folder with the binaries they name there: pyrsia-build built
// from this tree, and an executable stand-in for buildkitd.
func TestSystemdVerify(t *testing.T) {
	analyze := need(t, "systemd-analyze", "apt-get install systemd (scripts/install-debian-deps.sh)")
	dir := t.TempDir()
	bin := buildBinary(t)
	bk := filepath.Join(dir, "buildkitd")
	if err := os.WriteFile(bk, []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	var units []string
	for _, name := range []string{nodeUnit, buildkitUnit} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		s := strings.ReplaceAll(string(b), "/usr/local/bin/pyrsia-build ", bin+" ")
		s = strings.ReplaceAll(s, "/usr/local/bin/buildkitd ", bk+" ")
		if s == string(b) {
			t.Fatalf("%s names neither /usr/local/bin/pyrsia-build nor /usr/local/bin/buildkitd", name)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		units = append(units, p)
	}
	cmd := exec.Command(analyze, append([]string{"verify", "--man=no"}, units...)...)
	// The units' dependencies on each other resolve in dir; the system's
	// units (network-online.target) after it.
	cmd.Env = append(os.Environ(), "SYSTEMD_UNIT_PATH="+dir+":", "SYSTEMD_LOG_LEVEL=notice")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	// Warnings do not fail verify: none may name our units.
	for _, line := range strings.Split(string(out), "\n") {
		if strings.Contains(line, "pyrsia-build") {
			t.Errorf("systemd-analyze verify: %s", line)
		}
	}
}

// TestDeployUnitsAgree checks that the units and the example configuration
// name the same places: the data folder is the node's StateDirectory, the
// socket the node is given is the one buildkitd listens on, in its
// RuntimeDirectory, and open to the node's group.
func TestDeployUnitsAgree(t *testing.T) {
	node, bk := unitFile(t, nodeUnit), unitFile(t, buildkitUnit)
	execStart := strings.Fields(one(t, node, nodeUnit, "ExecStart"))
	flag := func(args []string, name string) string {
		for i, a := range args {
			if a == name && i+1 < len(args) {
				return args[i+1]
			}
		}
		t.Fatalf("%v has no %s", args, name)
		return ""
	}
	sock := flag(execStart, "--buildkit-addr")
	bkStart := strings.Fields(one(t, bk, buildkitUnit, "ExecStart"))
	if got := flag(bkStart, "--addr"); got != sock {
		t.Errorf("the node builds with %s, buildkitd listens on %s", sock, got)
	}
	if got, want := filepath.Dir(strings.TrimPrefix(sock, "unix://")), "/run/"+one(t, bk, buildkitUnit, "RuntimeDirectory"); got != want {
		t.Errorf("the socket's folder %s is not buildkitd's RuntimeDirectory %s", got, want)
	}
	if got, want := flag(bkStart, "--root"), "/var/lib/"+one(t, bk, buildkitUnit, "StateDirectory"); got != want {
		t.Errorf("buildkitd --root %s is not its StateDirectory %s", got, want)
	}
	if got, want := flag(bkStart, "--group"), one(t, node, nodeUnit, "Group"); got != want {
		t.Errorf("buildkitd's socket is for group %s, the node runs as group %s", got, want)
	}
	for _, a := range bkStart {
		if strings.HasPrefix(a, "--allow-insecure-entitlement") {
			t.Errorf("buildkitd allows an insecure entitlement (%s): a node's builds need none", a)
		}
	}
	conf := flag(execStart, "--config")
	if got, want := filepath.Dir(conf), "/etc/"+one(t, node, nodeUnit, "ConfigurationDirectory"); got != want {
		t.Errorf("--config %s is not in the ConfigurationDirectory %s", conf, want)
	}
	ex, err := os.ReadFile("node.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	data := "/var/lib/" + one(t, node, nodeUnit, "StateDirectory")
	if !bytes.Contains(ex, []byte("\ndata: "+data+"\n")) {
		t.Errorf("node.example.yaml's data: is not the unit's StateDirectory %s", data)
	}
	if got := one(t, node, nodeUnit, "User"); got != "pyrsia-build" {
		t.Errorf("User=%s, want the sysusers.d user pyrsia-build", got)
	}
}

// TestDeployExecStart runs the node's ExecStart as it is written, with the
// example configuration (its policy missing): the flags and the file must
// be accepted, and the node must stop at the first thing the operator has
// not made yet, the policy file, naming it.
func TestDeployExecStart(t *testing.T) {
	dir := t.TempDir()
	bin := buildBinary(t)
	ex, err := os.ReadFile("node.example.yaml")
	if err != nil {
		t.Fatal(err)
	}
	policy := filepath.Join(dir, "policy.json")
	conf := strings.Replace(string(ex), "policy: /etc/pyrsia-build/policy.json", "policy: "+policy, 1)
	conf = strings.Replace(conf, "data: /var/lib/pyrsia-build", "data: "+filepath.Join(dir, "data"), 1)
	confFile := filepath.Join(dir, "node.yaml")
	if err := os.WriteFile(confFile, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	args := strings.Fields(one(t, unitFile(t, nodeUnit), nodeUnit, "ExecStart"))
	for i, a := range args {
		if a == "/etc/pyrsia-build/node.yaml" {
			args[i] = confFile
		}
	}
	cmd := exec.CommandContext(context.Background(), bin, args[1:]...)
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	code := -1
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	if code != 2 || !strings.Contains(stderr.String(), policy) {
		t.Fatalf("ExecStart with the example configuration: exit %d (%v), want 2 naming the missing policy %s; stderr:\n%s", code, err, policy, stderr.String())
	}
}

// TestDeploySysusersTmpfiles applies the sysusers.d and tmpfiles.d files to
// an empty root: the user exists with the data folder as its home, and the
// folder is made, its own, mode 0700.
func TestDeploySysusersTmpfiles(t *testing.T) {
	sysusers := need(t, "systemd-sysusers", "apt-get install systemd (scripts/install-debian-deps.sh)")
	tmpfiles := need(t, "systemd-tmpfiles", "apt-get install systemd (scripts/install-debian-deps.sh)")
	root := t.TempDir()
	if err := os.Mkdir(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	abs := func(name string) string {
		p, err := filepath.Abs(name)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	// With --root, a relative file name is taken inside the root.
	if out, err := exec.Command(sysusers, "--root="+root, abs("pyrsia-build.sysusers.conf")).CombinedOutput(); err != nil {
		t.Fatalf("systemd-sysusers: %v\n%s", err, out)
	}
	passwd, err := os.ReadFile(filepath.Join(root, "etc/passwd"))
	if err != nil {
		t.Fatal(err)
	}
	var uid, gid int
	found := false
	for _, line := range strings.Split(string(passwd), "\n") {
		f := strings.Split(line, ":")
		if len(f) == 7 && f[0] == "pyrsia-build" {
			found = true
			uid, _ = strconv.Atoi(f[2])
			gid, _ = strconv.Atoi(f[3])
			if f[5] != "/var/lib/pyrsia-build" || f[6] != "/usr/sbin/nologin" {
				t.Errorf("passwd: %q, want home /var/lib/pyrsia-build and shell /usr/sbin/nologin", line)
			}
			if uid == 0 || uid >= 1000 {
				t.Errorf("passwd: uid %d, want a system user's", uid)
			}
		}
	}
	if !found {
		t.Fatalf("systemd-sysusers made no pyrsia-build user:\n%s", passwd)
	}
	if out, err := exec.Command(tmpfiles, "--create", "--root="+root, abs("pyrsia-build.tmpfiles.conf")).CombinedOutput(); err != nil {
		t.Fatalf("systemd-tmpfiles: %v\n%s", err, out)
	}
	fi, err := os.Stat(filepath.Join(root, "var/lib/pyrsia-build"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != os.ModeDir|0o700 {
		t.Errorf("/var/lib/pyrsia-build: mode %s, want drwx------", fi.Mode())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 && (int(st.Uid) != uid || int(st.Gid) != gid) {
		t.Errorf("/var/lib/pyrsia-build: owner %d:%d, want pyrsia-build's %d:%d", st.Uid, st.Gid, uid, gid)
	}
}

// TestDeployReadme checks that the README's service section exists and
// names every file in deploy/ that an operator installs.
func TestDeployReadme(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Running a build node as a service\n")
	if !ok {
		t.Fatal(`README.md has no "## Running a build node as a service" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	files, err := filepath.Glob("*")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, ".go") {
			continue
		}
		if !strings.Contains(section, f) {
			t.Errorf("the README's service section does not name deploy/%s", f)
		}
	}
}
