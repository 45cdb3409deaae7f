package attest_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/encoding/protojson"

	"github.com/pyrsia/pyrsia-build/attest"
)

// githubEnv is the environment of a GitHub Actions run, as a runner sets it.
func githubEnv() map[string]string {
	return map[string]string{
		"CI":                         "true",
		"GITHUB_ACTIONS":             "true",
		"GITHUB_SERVER_URL":          "https://github.com",
		"GITHUB_REPOSITORY":          "octo-org/hello",
		"GITHUB_WORKFLOW_REF":        "octo-org/hello/.github/workflows/release.yml@refs/tags/v1.2.0",
		"GITHUB_REF":                 "refs/tags/v1.2.0",
		"GITHUB_SHA":                 "7fd1a60b01f91b314f59955a4e4d4e80d8edf11d",
		"GITHUB_RUN_ID":              "1536140711",
		"GITHUB_RUN_ATTEMPT":         "2",
		"GITHUB_EVENT_NAME":          "push",
		"GITHUB_REPOSITORY_ID":       "1296269",
		"GITHUB_REPOSITORY_OWNER_ID": "583231",
		"RUNNER_ENVIRONMENT":         "github-hosted",
	}
}

func gitlabEnv() map[string]string {
	return map[string]string{
		"CI":                 "true",
		"GITLAB_CI":          "true",
		"CI_SERVER_URL":      "https://gitlab.example.org",
		"CI_PROJECT_URL":     "https://gitlab.example.org/group/sub/hello",
		"CI_PROJECT_PATH":    "group/sub/hello",
		"CI_COMMIT_SHA":      "0123456789abcdef0123456789abcdef01234567",
		"CI_COMMIT_BRANCH":   "main",
		"CI_CONFIG_PATH":     ".gitlab-ci.yml",
		"CI_PIPELINE_ID":     "4242",
		"CI_JOB_ID":          "987654",
		"CI_PIPELINE_SOURCE": "push",
		"CI_RUNNER_ID":       "12",
	}
}

func getenvOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

// ciProvenance is an attest-like predicate with the run applied, as
// indented JSON with sorted keys.
func ciProvenance(t *testing.T, env map[string]string) ([]byte, error) {
	t.Helper()
	p, err := attest.NewProvenance(attest.ProvenanceOptions{
		BuildType:          "https://pyrsia.io/pyrsia-build/attest/v1",
		ExternalParameters: map[string]any{"artifacts": []any{"app.tar"}, "spec": map[string]any{"version": 1}},
		BuilderID:          "urn:pyrsia-build:host:runner",
		BuilderVersion:     map[string]string{"pyrsia-build": "test"},
		StartedOn:          time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
		FinishedOn:         time.Date(2026, 1, 2, 3, 4, 6, 0, time.UTC),
	})
	if err != nil {
		t.Fatal(err)
	}
	run, err := attest.CIRunFromEnv(getenvOf(env))
	if err != nil {
		return nil, err
	}
	if run != nil {
		if err := run.Apply(p); err != nil {
			return nil, err
		}
	}
	raw, err := protojson.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return append(out, '\n'), nil
}

// TestCIProvenanceGolden pins every field a CI run adds.
func TestCIProvenanceGolden(t *testing.T) {
	selfHosted := githubEnv()
	selfHosted["RUNNER_ENVIRONMENT"] = "self-hosted"
	selfHosted["GITHUB_SERVER_URL"] = "https://ghe.example.com/"
	delete(selfHosted, "CI")
	reusable := githubEnv()
	reusable["GITHUB_EVENT_NAME"] = "workflow_dispatch"
	reusable["GITHUB_REF"] = "refs/heads/main"
	reusable["GITHUB_WORKFLOW_REF"] = "octo-org/hello/.github/workflows/ci.yml@refs/heads/main"
	delete(reusable, "RUNNER_ENVIRONMENT")
	tagged := gitlabEnv()
	delete(tagged, "CI_COMMIT_BRANCH")
	tagged["CI_COMMIT_TAG"] = "v1.0.0"
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"github", githubEnv()},
		{"github-self-hosted", selfHosted},
		{"github-no-runner-environment", reusable},
		{"gitlab", gitlabEnv()},
		{"gitlab-tag", tagged},
		{"gitlab-bare", map[string]string{"GITLAB_CI": "true"}},
		{"ci-bare", map[string]string{"CI": "true"}},
		{"none", map[string]string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ciProvenance(t, tt.env)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "ci", tt.name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("got\n%s\nwant (%s)\n%s", got, path, want)
			}
		})
	}
}

// TestCIProvenanceBadEnv: a value from the environment that would break a
// URI, the JSON or a log line is refused with an error naming the variable.
func TestCIProvenanceBadEnv(t *testing.T) {
	tests := []struct {
		name, key, value string // value "" deletes key
		wantErr          string
	}{
		{"missing sha", "GITHUB_SHA", "", "attest: github: GITHUB_SHA is not set"},
		{"short sha", "GITHUB_SHA", "7fd1a60", `GITHUB_SHA "7fd1a60" is not a git commit id`},
		{"newline in ref", "GITHUB_REF", "refs/heads/main\n::error::x", `GITHUB_REF "refs/heads/main\n::error::x" holds a control character`},
		{"quote in repo", "GITHUB_REPOSITORY", `octo-org/hel"lo`, `GITHUB_REPOSITORY "octo-org/hel\"lo" is not OWNER/NAME`},
		{"fragment in ref", "GITHUB_REF", "refs/heads/a#b", "is not a git ref"},
		{"server with path", "GITHUB_SERVER_URL", "https://github.com/x?y", "is not an http(s) URL of a server"},
		{"server with user", "GITHUB_SERVER_URL", "https://me@github.com", "is not an http(s) URL of a server"},
		{"server not http", "GITHUB_SERVER_URL", "javascript:alert(1)", "is not an http(s) URL of a server"},
		{"run id", "GITHUB_RUN_ID", "12/../../x", "is not a run id"},
		{"attempt", "GITHUB_RUN_ATTEMPT", "1 ", "is not a run attempt"},
		{"repository id", "GITHUB_REPOSITORY_ID", "-1", "is not a repository id"},
		{"workflow of another repo", "GITHUB_WORKFLOW_REF", "evil/repo/.github/workflows/x.yml@refs/heads/main", "is not octo-org/hello/PATH@REF"},
		{"workflow without ref", "GITHUB_WORKFLOW_REF", "octo-org/hello/.github/workflows/x.yml", "is not octo-org/hello/PATH@REF"},
		{"workflow path upward", "GITHUB_WORKFLOW_REF", "octo-org/hello/../x.yml@refs/heads/main", "has a workflow path that"},
		{"workflow ref with space", "GITHUB_WORKFLOW_REF", "octo-org/hello/.github/workflows/x.yml@refs/heads/a b", "has a ref that"},
		{"invalid utf-8", "GITHUB_EVENT_NAME", "pu\xffsh", "is not UTF-8"},
		{"line separator", "GITHUB_EVENT_NAME", "push\u2028", "holds a control character"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := githubEnv()
			if tt.value == "" {
				delete(env, tt.key)
			} else {
				env[tt.key] = tt.value
			}
			_, err := ciProvenance(t, env)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got error %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
	t.Run("gitlab", func(t *testing.T) {
		env := gitlabEnv()
		env["CI_JOB_ID"] = "1\r\n"
		if _, err := ciProvenance(t, env); err == nil || !strings.Contains(err.Error(), `attest: gitlab: CI_JOB_ID "1\r\n" holds a control character`) {
			t.Fatalf("got error %v", err)
		}
	})
}

// TestCIProvenanceKeepsSpec: the spec stays in externalParameters, where
// log entries and verifiers look for it.
func TestCIProvenanceKeepsSpec(t *testing.T) {
	got, err := ciProvenance(t, githubEnv())
	if err != nil {
		t.Fatal(err)
	}
	var p struct {
		BuildDefinition struct {
			ExternalParameters map[string]json.RawMessage
		}
	}
	if err := json.Unmarshal(got, &p); err != nil {
		t.Fatal(err)
	}
	if s := string(p.BuildDefinition.ExternalParameters["spec"]); s != `{
        "version": 1
      }` {
		t.Errorf("got externalParameters.spec %s, want the spec", s)
	}
}

func FuzzCIRunFromEnv(f *testing.F) {
	f.Add("refs/heads/main", "octo-org/hello/.github/workflows/release.yml@refs/heads/main", "https://github.com")
	f.Add("refs/heads/\x00", "octo-org/hello/a@b", "http://[::1]:80")
	f.Fuzz(func(t *testing.T, ref, workflowRef, server string) {
		env := githubEnv()
		env["GITHUB_REF"], env["GITHUB_WORKFLOW_REF"], env["GITHUB_SERVER_URL"] = ref, workflowRef, server
		out, err := ciProvenance(t, env)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("invalid JSON: %s", out)
		}
		for _, r := range string(out) {
			if r < 0x20 && r != '\n' {
				t.Fatalf("control character in %s", out)
			}
		}
	})
}
