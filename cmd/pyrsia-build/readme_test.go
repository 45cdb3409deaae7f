package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// quickStartBlocks returns the ```sh blocks of the README's "Quick start"
// section, in order.
func quickStartBlocks(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## Quick start\n")
	if !ok {
		t.Fatal(`README.md has no "## Quick start" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var blocks []string
	for {
		_, rest, ok := strings.Cut(section, "```sh\n")
		if !ok {
			break
		}
		block, rest, ok := strings.Cut(rest, "```\n")
		if !ok {
			t.Fatal("README.md: a ```sh block in the quick start is not closed")
		}
		blocks = append(blocks, block)
		section = rest
	}
	if len(blocks) != 2 {
		t.Fatalf("README.md's quick start has %d sh blocks, want 2 (keys and attestations; a build): update this test", len(blocks))
	}
	return blocks
}

// builtBinary builds pyrsia-build for a test that runs it as a separate
// process, and returns the folder that holds it.
func builtBinary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("go", "build", "-o", filepath.Join(dir, "pyrsia-build"), ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return dir
}

// TestReadmeQuickStart runs the README's quick start blocks as they are
// written, with bash, from a folder that holds the repository's testdata,
// so that the README cannot drift from what works. The build block needs
// root, buildkitd, runc and debootstrap (it makes the maven image, a minute
// or two); it skips without them locally and fails in CI.
func TestReadmeQuickStart(t *testing.T) {
	t.Parallel()
	blocks := quickStartBlocks(t)
	testdata, err := filepath.Abs("../../testdata")
	if err != nil {
		t.Fatal(err)
	}
	home, _ := os.UserHomeDir()
	for i, name := range []string{"keys and attestations", "build"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if name == "build" {
				if os.Geteuid() != 0 {
					requireInCI(t, "the quick start's build needs root")
				}
				for _, tool := range []string{"buildkitd", "runc", "debootstrap"} {
					if _, err := exec.LookPath(tool); err != nil {
						requireInCI(t, tool+" is not on PATH: scripts/install-debian-deps.sh, PATH=\"$(scripts/install-buildkit.sh):$PATH\"")
					}
				}
			}
			bin := builtBinary(t)
			dir := t.TempDir()
			var script strings.Builder
			script.WriteString("# The README's quick start, blocks 1 to " + fmt.Sprint(i+1) + ".\n")
			for j := range i + 1 {
				fmt.Fprintf(&script, "exec bash -euo pipefail block%d.sh\nstdout '^verified: '\n", j+1)
			}
			for j := range i + 1 {
				fmt.Fprintf(&script, "-- block%d.sh --\n%s", j+1, blocks[j])
			}
			if err := os.WriteFile(filepath.Join(dir, "quickstart.txt"), []byte(script.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			testscript.Run(t, testscript.Params{
				Dir: dir,
				Setup: func(env *testscript.Env) error {
					env.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
					env.Setenv("COSIGN_PASSWORD", "quickstart")
					env.Setenv("HOME", home) // the .deb cache of image make
					env.Setenv("XDG_STATE_HOME", filepath.Join(env.WorkDir, "state"))
					return os.Symlink(testdata, filepath.Join(env.WorkDir, "testdata"))
				},
			})
		})
	}
}
