package actions

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// bash runs script after sourcing lib.sh and returns its stdout.
func bash(t *testing.T, env []string, script string) string {
	t.Helper()
	cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", `source lib.sh; `+script)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bash %q: %v", script, err)
	}
	return string(out)
}

func TestEscaping(t *testing.T) {
	tests := []struct{ script, want string }{
		{`pb_error $'50% done\r\nnext'`, "::error::50%25 done%0D%0Anext\n"},
		{`pb_error 'bad: a, b' 'dir/x:y,z%.yaml' 3`, "::error file=dir/x%3Ay%2Cz%25.yaml,line=3::bad: a, b\n"},
		{`pb_error 'm' 'f.yaml' 'not-a-number'`, "::error file=f.yaml::m\n"},
		{`pb_mask $'pa%ss\nline two\n\n'`, "::add-mask::pa%25ss%0Aline two%0A%0A\n::add-mask::pa%25ss\n::add-mask::line two\n"},
		{`pb_mask ''`, ""},
		{`pb_cell $'a|b <i>&\n` + "`x`" + `'`, `a\|b &lt;i&gt;&amp; 'x'`},
		{`pb_cell ''`, "–"},
	}
	for _, tt := range tests {
		if got := bash(t, nil, tt.script); got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.script, got, tt.want)
		}
	}
}

// TestOutputDelimiter: multi-line values, also ones that look like a
// delimiter or an output, come back whole from $GITHUB_OUTPUT.
func TestOutputDelimiter(t *testing.T) {
	out := filepath.Join(t.TempDir(), "output")
	values := map[string]string{
		"one":    "plain",
		"lines":  "sha256:aa  a.jar\nsha256:bb  b.pom",
		"tricky": "EOF\nghadelimiter_\nname=value\nx<<EOF\n",
		"empty":  "",
	}
	var script strings.Builder
	for k, v := range values {
		script.WriteString("pb_output " + k + " $'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`, "\n", `\n`).Replace(v) + "'\n")
	}
	bash(t, []string{"GITHUB_OUTPUT=" + out}, script.String())
	got, err := parseOutputFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range values {
		if got[k] != v {
			t.Errorf("output %s: got %q, want %q", k, got[k], v)
		}
	}
	if len(got) != len(values) {
		t.Errorf("got outputs %q", got)
	}
}

func TestFieldLine(t *testing.T) {
	spec := filepath.Join(t.TempDir(), "spec.yaml")
	os.WriteFile(spec, []byte("version: 1\n# ecosystem: in a comment\necosystem: oci\nsource:\n  git:\n    url: x\n    commit: abc\nrecipe:\n  oci: {dockerfile: D, target: t}\nbuilderImage: {name: busybox, digest: sha256:00}\n"), 0o644)
	for field, want := range map[string]string{
		"ecosystem": "3", "source.git.commit": "7", "recipe.oci.target": "9", "builderImage.digest": "10", "nope": "", "source.nope": "",
	} {
		if got := strings.TrimSpace(bash(t, nil, "pb_field_line '"+spec+"' '"+field+"'")); got != want {
			t.Errorf("%s: got line %q, want %q", field, got, want)
		}
	}
}
