package actions

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// action is an action.yml, decoded strictly: a field the runner emulation
// does not know fails the test.
type action struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description"`
	Author      string `yaml:"author"`
	Branding    struct {
		Icon  string `yaml:"icon"`
		Color string `yaml:"color"`
	} `yaml:"branding"`
	Inputs map[string]struct {
		Description string  `yaml:"description"`
		Required    bool    `yaml:"required"`
		Default     *string `yaml:"default"`
	} `yaml:"inputs"`
	Outputs map[string]struct {
		Description string `yaml:"description"`
		Value       string `yaml:"value"`
	} `yaml:"outputs"`
	Runs struct {
		Using string `yaml:"using"`
		Steps []step `yaml:"steps"`
	} `yaml:"runs"`
}

type step struct {
	ID    string    `yaml:"id"`
	Name  string    `yaml:"name"`
	Shell string    `yaml:"shell"`
	Env   yaml.Node `yaml:"env"`
	Run   string    `yaml:"run"`
}

func loadAction(t *testing.T, dir string) *action {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, "action.yml"))
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var a action
	if err := dec.Decode(&a); err != nil {
		t.Fatalf("%s/action.yml: %v", dir, err)
	}
	if a.Runs.Using != "composite" {
		t.Fatalf("%s: runs.using is %q, want composite", dir, a.Runs.Using)
	}
	return &a
}

// env returns a step's env in the order it is written.
func (s *step) env(t *testing.T) [][2]string {
	t.Helper()
	if s.Env.Kind == 0 {
		return nil
	}
	if s.Env.Kind != yaml.MappingNode {
		t.Fatalf("step %s: env is not a mapping", s.ID)
	}
	var out [][2]string
	for i := 0; i+1 < len(s.Env.Content); i += 2 {
		out = append(out, [2]string{s.Env.Content[i].Value, s.Env.Content[i+1].Value})
	}
	return out
}

// annotation is a workflow command ::error/::warning/::notice.
type annotation struct {
	Level string
	Props map[string]string
	Msg   string
}

// result is what a run of an action left.
type result struct {
	ExitCode    int
	FailedStep  string
	Outputs     map[string]string
	Log         string // the log as the runner shows it (commands consumed, masks applied)
	RawLog      string // stdout and stderr of every step, before masking, without add-mask commands
	Masks       []string
	Annotations []annotation
	Summary     string
	Env         string // $GITHUB_ENV
	Path        string // $GITHUB_PATH
	steps       map[string]map[string]string
}

// runner runs composite actions as the GitHub runner does, in a temp dir.
type runner struct {
	temp      string // RUNNER_TEMP
	workspace string // GITHUB_WORKSPACE, the steps' working directory
	toolCache string // RUNNER_TOOL_CACHE
	context   map[string]string
}

var exprRE = regexp.MustCompile(`\$\{\{\s*(.*?)\s*\}\}`)

// expand replaces the expressions the actions use: inputs.NAME,
// steps.ID.outputs.NAME and github.action_path. Any other expression fails
// the test.
func expand(t *testing.T, s string, a *action, inputs map[string]string, stepOut map[string]map[string]string, actionPath string) string {
	t.Helper()
	return exprRE.ReplaceAllStringFunc(s, func(m string) string {
		e := exprRE.FindStringSubmatch(m)[1]
		parts := strings.Split(e, ".")
		switch {
		case len(parts) == 2 && parts[0] == "inputs":
			if _, ok := a.Inputs[parts[1]]; !ok {
				t.Fatalf("expression %s: no input %q is declared", m, parts[1])
			}
			return inputs[parts[1]]
		case len(parts) == 4 && parts[0] == "steps" && parts[2] == "outputs":
			return stepOut[parts[1]][parts[3]]
		case e == "github.action_path":
			return actionPath
		}
		t.Fatalf("expression %s: the runner emulation knows only inputs.X, steps.X.outputs.Y and github.action_path", m)
		return ""
	})
}

// run runs the action in dir with the inputs with (unknown inputs fail
// the test; missing ones take their default).
func (r *runner) run(t *testing.T, dir string, with map[string]string) *result {
	t.Helper()
	a := loadAction(t, dir)
	actionPath, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[string]string{}
	for name, in := range a.Inputs {
		if in.Default != nil {
			inputs[name] = *in.Default
		}
	}
	for k, v := range with {
		if _, ok := a.Inputs[k]; !ok {
			t.Fatalf("%s has no input %q", dir, k)
		}
		inputs[k] = v
	}
	files := map[string]string{}
	for _, f := range []string{"GITHUB_STEP_SUMMARY", "GITHUB_ENV", "GITHUB_PATH"} {
		p := filepath.Join(r.temp, "_runner_file_commands", strings.ToLower(f))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		files[f] = p
	}
	res := &result{Outputs: map[string]string{}}
	stepOut := map[string]map[string]string{}
	var rawLog strings.Builder
	for i, s := range a.Runs.Steps {
		if s.Shell != "bash" {
			t.Fatalf("step %d (%s): shell %q: the emulation runs bash only (and a composite run step must name its shell)", i, s.ID, s.Shell)
		}
		if s.Run == "" {
			t.Fatalf("step %d (%s): no run", i, s.ID)
		}
		outFile := filepath.Join(r.temp, "_runner_file_commands", fmt.Sprintf("set_output_%d", i))
		if err := os.WriteFile(outFile, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		script := filepath.Join(r.temp, fmt.Sprintf("step-%d.sh", i))
		if err := os.WriteFile(script, []byte(expand(t, s.Run, a, inputs, stepOut, actionPath)), 0o644); err != nil {
			t.Fatal(err)
		}
		env := r.baseEnv()
		env = append(env, "GITHUB_ACTION_PATH="+actionPath, "GITHUB_OUTPUT="+outFile,
			"GITHUB_STEP_SUMMARY="+files["GITHUB_STEP_SUMMARY"], "GITHUB_ENV="+files["GITHUB_ENV"], "GITHUB_PATH="+files["GITHUB_PATH"])
		for _, kv := range s.env(t) {
			env = append(env, kv[0]+"="+expand(t, kv[1], a, inputs, stepOut, actionPath))
		}
		// The runner's bash: bash --noprofile --norc -eo pipefail {0}.
		cmd := exec.Command("bash", "--noprofile", "--norc", "-eo", "pipefail", script)
		cmd.Dir = r.workspace
		cmd.Env = env
		var out bytes.Buffer
		cmd.Stdout = &out
		cmd.Stderr = &out
		err := cmd.Run()
		r.commands(t, res, out.String(), &rawLog)
		outs, perr := parseOutputFile(outFile)
		if perr != nil {
			t.Fatalf("step %s: GITHUB_OUTPUT: %v", s.ID, perr)
		}
		stepOut[s.ID] = outs
		if err != nil {
			ee, ok := err.(*exec.ExitError)
			if !ok {
				t.Fatalf("step %s: %v", s.ID, err)
			}
			res.ExitCode, res.FailedStep = ee.ExitCode(), s.ID
			break
		}
	}
	for name, o := range a.Outputs {
		res.Outputs[name] = expand(t, o.Value, a, inputs, stepOut, actionPath)
	}
	res.steps = stepOut
	res.RawLog = rawLog.String()
	res.Log = res.RawLog
	for _, m := range res.Masks {
		res.Log = strings.ReplaceAll(res.Log, m, "***")
	}
	res.Summary = readFile(t, files["GITHUB_STEP_SUMMARY"])
	res.Env = readFile(t, files["GITHUB_ENV"])
	res.Path = readFile(t, files["GITHUB_PATH"])
	return res
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// baseEnv is the runner's environment: the github context variables, the
// runner's folders, and what Go needs from this machine.
func (r *runner) baseEnv() []string {
	env := []string{"HOME=" + os.Getenv("HOME"), "PATH=" + os.Getenv("PATH"), "RUNNER_TEMP=" + r.temp,
		"RUNNER_TOOL_CACHE=" + r.toolCache, "GITHUB_WORKSPACE=" + r.workspace, "CI=true", "LANG=C.UTF-8"}
	for _, k := range []string{"GOPATH", "GOMODCACHE", "GOCACHE", "GOPROXY", "GOFLAGS", "GONOSUMDB", "GOSUMDB", "GOTOOLCHAIN", "GOPRIVATE", "TMPDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	keys := make([]string, 0, len(r.context))
	for k := range r.context {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		env = append(env, k+"="+r.context[k])
	}
	return env
}

// commands reads a step's output as the runner does: ::add-mask::,
// ::stop-commands::TOKEN ... ::TOKEN::, and annotations; the rest is log.
func (r *runner) commands(t *testing.T, res *result, out string, log *strings.Builder) {
	stop := ""
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		if stop != "" {
			if line == "::"+stop+"::" {
				stop = ""
				continue
			}
			log.WriteString(line + "\n")
			continue
		}
		if !strings.HasPrefix(line, "::") {
			log.WriteString(line + "\n")
			continue
		}
		cmd, data, ok := strings.Cut(line[2:], "::")
		if !ok {
			log.WriteString(line + "\n")
			continue
		}
		name, props, _ := strings.Cut(cmd, " ")
		switch name {
		case "add-mask":
			res.Masks = append(res.Masks, unescapeData(data))
		case "stop-commands":
			stop = data
		case "error", "warning", "notice":
			a := annotation{Level: name, Props: map[string]string{}, Msg: unescapeData(data)}
			for _, p := range strings.Split(props, ",") {
				if k, v, ok := strings.Cut(p, "="); ok {
					a.Props[k] = unescapeProp(v)
				}
			}
			res.Annotations = append(res.Annotations, a)
			log.WriteString(line + "\n")
		default:
			t.Errorf("unknown workflow command %q", line)
		}
	}
}

func unescapeData(s string) string {
	return strings.NewReplacer("%0D", "\r", "%0A", "\n", "%25", "%").Replace(s)
}

func unescapeProp(s string) string {
	return strings.NewReplacer("%0D", "\r", "%0A", "\n", "%3A", ":", "%2C", ",", "%25", "%").Replace(s)
}

// parseOutputFile reads $GITHUB_OUTPUT: NAME=VALUE lines and
// NAME<<DELIM ... DELIM blocks, as the runner does.
func parseOutputFile(p string) (map[string]string, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	lines := strings.Split(string(b), "\n")
	if len(lines) > 0 && lines[len(lines)-1] == "" {
		lines = lines[:len(lines)-1]
	}
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if name, delim, ok := strings.Cut(l, "<<"); ok && !strings.Contains(name, "=") {
			var val []string
			j := i + 1
			for ; j < len(lines) && lines[j] != delim; j++ {
				val = append(val, lines[j])
			}
			if j == len(lines) {
				return nil, fmt.Errorf("line %d: delimiter %q of %q never ends", i+1, delim, name)
			}
			out[name] = strings.Join(val, "\n")
			i = j
			continue
		}
		name, val, ok := strings.Cut(l, "=")
		if !ok {
			return nil, fmt.Errorf("line %d: %q is neither NAME=VALUE nor NAME<<DELIM", i+1, l)
		}
		out[name] = val
	}
	return out, nil
}
