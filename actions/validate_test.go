package actions

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// validator finds a validator on PATH, or skips (fails in CI).
func validator(t *testing.T, name, install string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		requireInCI(t, name+" is not on PATH: PATH=\"$("+install+"):$PATH\"")
	}
	return p
}

// TestActionValidator checks every action.yml against GitHub's metadata
// schema with action-validator, which catches what actionlint does not
// (a run step without shell, an output without value); a broken action in
// testdata shows it does.
func TestActionValidator(t *testing.T) {
	av := validator(t, "action-validator", "scripts/install-action-validator.sh")
	files, err := filepath.Glob("*/action.yml")
	if err != nil || len(files) != 3 {
		t.Fatalf("got action files %v (%v), want build, publish and verify", files, err)
	}
	for _, f := range files {
		if out, err := exec.Command(av, f).CombinedOutput(); err != nil {
			t.Errorf("action-validator %s: %v\n%s", f, err, out)
		}
	}
	out, err := exec.Command(av, "testdata/invalid-action/action.yml").CombinedOutput()
	if err == nil {
		t.Fatal("action-validator accepted testdata/invalid-action/action.yml")
	}
	for _, want := range []string{"/runs/steps/0/shell", "/outputs/digest/value"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("action-validator did not name %s:\n%s", want, out)
		}
	}
}

// TestActionlint checks every workflow with actionlint (which also reads
// the local actions a workflow uses); a broken workflow in testdata shows
// it does.
func TestActionlint(t *testing.T) {
	al := validator(t, "actionlint", "scripts/install-actionlint.sh")
	files, err := filepath.Glob("../.github/workflows/*.yml")
	if err != nil || len(files) < 2 {
		t.Fatalf("got workflows %v (%v), want ci.yml and release.yml", files, err)
	}
	lint := func(files ...string) ([]byte, error) {
		cmd := exec.Command(al, append([]string{"-no-color"}, files...)...)
		cmd.Dir = ".."
		return cmd.CombinedOutput()
	}
	rel := make([]string, len(files))
	for i, f := range files {
		rel[i] = strings.TrimPrefix(f, "../")
	}
	if out, err := lint(rel...); err != nil {
		t.Errorf("actionlint: %v\n%s", err, out)
	}
	out, err := lint("actions/testdata/invalid-workflow/bad.yml")
	if err == nil {
		t.Fatal("actionlint accepted actions/testdata/invalid-workflow/bad.yml")
	}
	for _, want := range []string{"nosuchcontext", "no-such-input"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("actionlint did not name %s:\n%s", want, out)
		}
	}
}
