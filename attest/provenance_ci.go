package attest

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/types/known/structpb"
)

// BuildTypeGitHubWorkflow is the SLSA build type of a GitHub Actions
// workflow run (github.com/slsa-framework/github-actions-buildtypes).
const BuildTypeGitHubWorkflow = "https://actions.github.io/buildtypes/workflow/v1"

// CIRun is what a CI system says about the run a build or an attestation
// happens in, read from its environment by [CIRunFromEnv] and recorded in
// a SLSA provenance predicate by [CIRun.Apply]. Every value has been
// checked: URLs parse, ids are digits, refs and paths hold no control
// characters.
type CIRun struct {
	// System is "github" or "gitlab".
	System string
	// BuildType replaces the predicate's buildType when set (GitHub:
	// [BuildTypeGitHubWorkflow]).
	BuildType string
	// ExternalKey and External are added to externalParameters
	// (GitHub: "workflow" {ref, repository, path}).
	ExternalKey string
	External    map[string]any
	// InternalKey and Internal are added to internalParameters (GitHub:
	// "github" {event_name, repository_id, repository_owner_id,
	// runner_environment}).
	InternalKey string
	Internal    map[string]any
	// Source is the repository the run checked out, prepended to the
	// resolvedDependencies.
	Source *intoto.ResourceDescriptor
	// BuilderID is the run's builder URI (GitHub: the workflow); empty
	// when the CI system gives none.
	BuilderID string
	// InvocationID is a URI naming this run (and attempt).
	InvocationID string
}

// CIRunFromEnv reads the CI run from environment variables through
// getenv (os.Getenv in the CLI). It returns nil and no error outside a CI
// system it knows.
//
// GitHub Actions (GITHUB_ACTIONS=true) is recorded as SLSA does for GitHub
// workflows. The builder id is GITHUB_SERVER_URL/GITHUB_WORKFLOW_REF: a
// runner has no environment variable for the job's workflow
// (job_workflow_ref, which differs from the caller's in a reusable
// workflow, is only in the OIDC token), so the builder is the workflow the
// run started from. GitLab CI (GITLAB_CI=true) gets what its CI_*
// variables offer. A bare CI variable says nothing about the run, and
// nothing is recorded.
//
// A variable a system must set that is missing or malformed is an error
// naming it.
func CIRunFromEnv(getenv func(string) string) (*CIRun, error) {
	switch {
	case getenv("GITHUB_ACTIONS") == "true":
		return githubRun(getenv)
	case getenv("GITLAB_CI") == "true":
		return gitlabRun(getenv)
	}
	return nil, nil
}

// Apply records the run in a provenance predicate: buildType, the
// external and internal parameters, the source as the first resolved
// dependency, builder.id (when the run has one) and the invocation id. The
// predicate's other fields (the spec among the externalParameters) stay.
func (r *CIRun) Apply(p *slsa.Provenance) error {
	bd := p.GetBuildDefinition()
	if bd == nil || p.GetRunDetails() == nil {
		return fmt.Errorf("attest: ci provenance: the predicate has no buildDefinition or runDetails")
	}
	if r.BuildType != "" {
		bd.BuildType = r.BuildType
	}
	add := func(s **structpb.Struct, key string, m map[string]any) error {
		if key == "" {
			return nil
		}
		v, err := structpb.NewValue(m)
		if err != nil {
			return fmt.Errorf("attest: ci provenance: %s: %w", key, err)
		}
		if *s == nil {
			*s = &structpb.Struct{Fields: map[string]*structpb.Value{}}
		}
		if _, ok := (*s).Fields[key]; ok {
			return fmt.Errorf("attest: ci provenance: the parameters already hold %q", key)
		}
		(*s).Fields[key] = v
		return nil
	}
	if err := add(&bd.ExternalParameters, r.ExternalKey, r.External); err != nil {
		return err
	}
	if err := add(&bd.InternalParameters, r.InternalKey, r.Internal); err != nil {
		return err
	}
	if r.Source != nil {
		bd.ResolvedDependencies = append([]*intoto.ResourceDescriptor{r.Source}, bd.ResolvedDependencies...)
	}
	if r.BuilderID != "" {
		if p.RunDetails.Builder == nil {
			p.RunDetails.Builder = &slsa.Builder{}
		}
		p.RunDetails.Builder.Id = r.BuilderID
	}
	if r.InvocationID != "" {
		if p.RunDetails.Metadata == nil {
			p.RunDetails.Metadata = &slsa.BuildMetadata{}
		}
		p.RunDetails.Metadata.InvocationId = r.InvocationID
	}
	if err := p.Validate(); err != nil {
		return fmt.Errorf("attest: ci provenance: %w", err)
	}
	return nil
}

var (
	reRepo    = regexp.MustCompile(`^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$`)
	reDigits  = regexp.MustCompile(`^[0-9]{1,20}$`)
	reCommit  = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)
	reWord    = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,63}$`)
	reProject = regexp.MustCompile(`^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)+$`)
)

// ciEnv reads and checks variables, keeping the first error.
type ciEnv struct {
	getenv func(string) string
	system string
	err    error
}

func (e *ciEnv) fail(name, value, why string) string {
	if e.err == nil {
		e.err = fmt.Errorf("attest: %s: %s %q %s", e.system, name, value, why)
	}
	return ""
}

// get returns a variable, checked by check (nil: any text without
// control characters). A required variable that is empty is an error.
func (e *ciEnv) get(name string, required bool, check func(string) string) string {
	v := e.getenv(name)
	if v == "" {
		if required && e.err == nil {
			e.err = fmt.Errorf("attest: %s: %s is not set: a %s run sets it (unset %s to attest outside one)", e.system, name, e.system, e.marker())
		}
		return ""
	}
	if why := plainText(v); why != "" {
		return e.fail(name, v, why)
	}
	if check != nil {
		if why := check(v); why != "" {
			return e.fail(name, v, why)
		}
	}
	return v
}

func (e *ciEnv) marker() string {
	if e.system == "gitlab" {
		return "GITLAB_CI"
	}
	return "GITHUB_ACTIONS"
}

// plainText refuses text that could break a URI or a log line.
func plainText(s string) string {
	if len(s) > 1024 {
		return "is longer than 1024 bytes"
	}
	if !utf8.ValidString(s) {
		return "is not UTF-8"
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return "holds a control character"
		}
	}
	return ""
}

func matches(re *regexp.Regexp, what string) func(string) string {
	return func(s string) string {
		if !re.MatchString(s) {
			return "is not " + what
		}
		return ""
	}
}

// checkServer accepts an http(s) URL of a host, with no path beyond "/",
// query, fragment or user.
func checkServer(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || strings.Contains(s, "#") || strings.ContainsAny(u.Host, " \\") {
		return "is not an http(s) URL of a server"
	}
	if p := strings.TrimSuffix(u.Path, "/"); p != "" && !reProject.MatchString(strings.TrimPrefix(p, "/")) {
		return "is not an http(s) URL of a server"
	}
	return ""
}

// checkRef accepts a git ref that can be put in a URI: git's own rules
// (no space, ~ ^ : ? * [ \, no "..", no "@{") and no # or %.
func checkRef(s string) string {
	if !strings.HasPrefix(s, "refs/") || strings.ContainsAny(s, " ~^:?*[\\#%") || strings.Contains(s, "..") ||
		strings.Contains(s, "@{") || strings.HasSuffix(s, "/") || strings.HasSuffix(s, ".lock") || strings.Contains(s, "//") {
		return "is not a git ref (refs/...) that fits in a URI"
	}
	return ""
}

// checkPath accepts a relative file path in a repository.
func checkPath(s string) string {
	if s == "" || strings.HasPrefix(s, "/") || strings.ContainsAny(s, " ?#%\\@") || strings.Contains(s, "..") {
		return "is not a relative file path in the repository"
	}
	return ""
}

func githubRun(getenv func(string) string) (*CIRun, error) {
	e := &ciEnv{getenv: getenv, system: "github"}
	server := strings.TrimSuffix(e.get("GITHUB_SERVER_URL", true, checkServer), "/")
	repo := e.get("GITHUB_REPOSITORY", true, matches(reRepo, "OWNER/NAME"))
	workflowRef := e.get("GITHUB_WORKFLOW_REF", true, nil)
	ref := e.get("GITHUB_REF", true, checkRef)
	sha := e.get("GITHUB_SHA", true, matches(reCommit, "a git commit id (40 or 64 lowercase hex digits)"))
	runID := e.get("GITHUB_RUN_ID", true, matches(reDigits, "a run id (digits)"))
	attempt := e.get("GITHUB_RUN_ATTEMPT", true, matches(reDigits, "a run attempt (digits)"))
	event := e.get("GITHUB_EVENT_NAME", true, matches(reWord, "an event name"))
	repoID := e.get("GITHUB_REPOSITORY_ID", true, matches(reDigits, "a repository id (digits)"))
	ownerID := e.get("GITHUB_REPOSITORY_OWNER_ID", true, matches(reDigits, "an owner id (digits)"))
	runnerEnv := e.get("RUNNER_ENVIRONMENT", false, matches(reWord, "a runner environment (github-hosted, self-hosted)"))
	if e.err != nil {
		return nil, e.err
	}
	// GITHUB_WORKFLOW_REF is OWNER/NAME/PATH@REF, the workflow the run
	// started from, in GITHUB_REPOSITORY.
	rest, ok := strings.CutPrefix(workflowRef, repo+"/")
	path, wref, ok2 := strings.Cut(rest, "@")
	switch {
	case !ok || !ok2:
		e.fail("GITHUB_WORKFLOW_REF", workflowRef, "is not "+repo+"/PATH@REF")
	case checkPath(path) != "":
		e.fail("GITHUB_WORKFLOW_REF", workflowRef, "has a workflow path that "+checkPath(path))
	case checkRef(wref) != "":
		e.fail("GITHUB_WORKFLOW_REF", workflowRef, "has a ref that "+checkRef(wref))
	}
	if e.err != nil {
		return nil, e.err
	}
	internal := map[string]any{"event_name": event, "repository_id": repoID, "repository_owner_id": ownerID}
	if runnerEnv != "" {
		internal["runner_environment"] = runnerEnv
	}
	r := &CIRun{
		System:      "github",
		BuildType:   BuildTypeGitHubWorkflow,
		ExternalKey: "workflow",
		External:    map[string]any{"ref": wref, "repository": server + "/" + repo, "path": path},
		InternalKey: "github",
		Internal:    internal,
		Source: &intoto.ResourceDescriptor{
			Uri:    "git+" + server + "/" + repo + "@" + ref,
			Digest: map[string]string{"gitCommit": sha},
		},
		BuilderID:    server + "/" + workflowRef,
		InvocationID: server + "/" + repo + "/actions/runs/" + runID + "/attempts/" + attempt,
	}
	return r, r.checkURIs()
}

func gitlabRun(getenv func(string) string) (*CIRun, error) {
	e := &ciEnv{getenv: getenv, system: "gitlab"}
	server := strings.TrimSuffix(e.get("CI_SERVER_URL", false, checkServer), "/")
	project := strings.TrimSuffix(e.get("CI_PROJECT_URL", false, checkServer), "/")
	projectPath := e.get("CI_PROJECT_PATH", false, matches(reProject, "GROUP/.../PROJECT"))
	sha := e.get("CI_COMMIT_SHA", false, matches(reCommit, "a git commit id (40 or 64 lowercase hex digits)"))
	tag := e.get("CI_COMMIT_TAG", false, nil)
	branch := e.get("CI_COMMIT_BRANCH", false, nil)
	config := e.get("CI_CONFIG_PATH", false, checkPath)
	pipeline := e.get("CI_PIPELINE_ID", false, matches(reDigits, "a pipeline id (digits)"))
	job := e.get("CI_JOB_ID", false, matches(reDigits, "a job id (digits)"))
	source := e.get("CI_PIPELINE_SOURCE", false, matches(reWord, "a pipeline source"))
	runner := e.get("CI_RUNNER_ID", false, matches(reDigits, "a runner id (digits)"))
	if e.err != nil {
		return nil, e.err
	}
	ref := ""
	switch {
	case tag != "":
		ref = "refs/tags/" + tag
	case branch != "":
		ref = "refs/heads/" + branch
	}
	if ref != "" && checkRef(ref) != "" {
		return nil, fmt.Errorf("attest: gitlab: CI_COMMIT_TAG or CI_COMMIT_BRANCH %q %s", ref, checkRef(ref))
	}
	r := &CIRun{System: "gitlab"}
	if project != "" {
		ext := map[string]any{"repository": project}
		if ref != "" {
			ext["ref"] = ref
		}
		if config != "" {
			ext["path"] = config
		}
		r.ExternalKey, r.External = "pipeline", ext
	}
	internal := map[string]any{}
	for k, v := range map[string]string{"pipeline_id": pipeline, "job_id": job, "pipeline_source": source, "runner_id": runner} {
		if v != "" {
			internal[k] = v
		}
	}
	if len(internal) > 0 {
		r.InternalKey, r.Internal = "gitlab", internal
	}
	if project != "" && sha != "" {
		uri := "git+" + project
		if ref != "" {
			uri += "@" + ref
		}
		r.Source = &intoto.ResourceDescriptor{Uri: uri, Digest: map[string]string{"gitCommit": sha}}
	}
	if server != "" && projectPath != "" && runner != "" {
		r.BuilderID = server + "/" + projectPath + "/-/runners/" + runner
	}
	if project != "" && job != "" {
		r.InvocationID = project + "/-/jobs/" + job
	}
	return r, r.checkURIs()
}

// checkURIs makes sure the URIs made from the variables parse as URIs
// with a scheme and no fragment.
func (r *CIRun) checkURIs() error {
	for name, s := range map[string]string{"builder id": r.BuilderID, "invocation id": r.InvocationID} {
		if s == "" {
			continue
		}
		if u, err := url.Parse(s); err != nil || u.Scheme == "" || u.Fragment != "" || u.RawQuery != "" {
			return fmt.Errorf("attest: %s: the %s %q made from the environment is not a URI", r.System, name, s)
		}
	}
	return nil
}
