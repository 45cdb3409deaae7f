package actions

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// githubContext is the github context of a run, as a runner sets it.
var githubContext = map[string]string{
	"GITHUB_ACTIONS":             "true",
	"GITHUB_SERVER_URL":          "https://github.com",
	"GITHUB_REPOSITORY":          "octo-org/hello",
	"GITHUB_WORKFLOW_REF":        "octo-org/hello/.github/workflows/release.yml@refs/heads/main",
	"GITHUB_REF":                 "refs/heads/main",
	"GITHUB_SHA":                 "7fd1a60b01f91b314f59955a4e4d4e80d8edf11d",
	"GITHUB_RUN_ID":              "1536140711",
	"GITHUB_RUN_ATTEMPT":         "1",
	"GITHUB_EVENT_NAME":          "push",
	"GITHUB_REPOSITORY_ID":       "1296269",
	"GITHUB_REPOSITORY_OWNER_ID": "583231",
	"GITHUB_WORKFLOW":            "release",
	"GITHUB_JOB":                 "build",
	"GITHUB_ACTOR":               "octocat",
	"RUNNER_ENVIRONMENT":         "github-hosted",
	"RUNNER_OS":                  "Linux",
}

// toolCache is RUNNER_TOOL_CACHE for every test: the pyrsia-build the
// actions build is kept there (a speed-up only: the key is the source).
func toolCache(t *testing.T) string {
	t.Helper()
	d, err := os.UserCacheDir()
	if err != nil {
		t.Fatal(err)
	}
	d = filepath.Join(d, "pyrsia-build", "actions-test-tool-cache")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func newRunner(t *testing.T) *runner {
	t.Helper()
	root := t.TempDir()
	r := &runner{temp: filepath.Join(root, "temp"), workspace: filepath.Join(root, "workspace"), toolCache: toolCache(t), context: githubContext}
	for _, d := range []string{r.temp, r.workspace} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

var (
	installOnce sync.Once
	installed   string
	installErr  string
)

// pyrsiaBuild is the binary the actions build (actions/install.sh), for
// making keys in the tests.
func pyrsiaBuild(t *testing.T) string {
	t.Helper()
	installOnce.Do(func() {
		r := newRunner(t)
		// The install step runs; the next one stops at the missing key.
		res := r.run(t, "build", nil)
		installed = res.stepOutput("install", "path")
		if installed == "" {
			installErr = res.Log
		}
	})
	if installed == "" {
		t.Fatalf("actions/install.sh gave no binary:\n%s", installErr)
	}
	return installed
}

func (r *runner) write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(r.workspace, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// keygen makes cosign.key (password pw) and cosign.pub in the workspace
// and returns the private key's PEM.
func (r *runner) keygen(t *testing.T, pw string) string {
	t.Helper()
	cmd := exec.Command(pyrsiaBuild(t), "keygen")
	cmd.Dir = r.workspace
	cmd.Env = append(os.Environ(), "COSIGN_PASSWORD="+pw)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("keygen: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(r.workspace, "cosign.key"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// noSecrets fails if a secret appears anywhere the runner would show or
// keep: the log before masking, annotations, the summary, outputs, files.
func noSecrets(t *testing.T, res *result, secrets ...string) {
	t.Helper()
	var all strings.Builder
	all.WriteString(res.RawLog + res.Summary + res.Env + res.Path)
	for _, a := range res.Annotations {
		all.WriteString(a.Msg)
	}
	for _, v := range res.Outputs {
		all.WriteString(v)
	}
	for _, s := range secrets {
		for _, line := range strings.Split(s, "\n") {
			if len(strings.TrimSpace(line)) < 8 || strings.HasPrefix(line, "-----") {
				continue
			}
			if strings.Contains(all.String(), line) {
				t.Errorf("a secret (%.12q...) appears in the output", line)
			}
		}
		masked := false
		for _, m := range res.Masks {
			masked = masked || m == s
		}
		if !masked {
			t.Errorf("the secret %.12q... was not masked with ::add-mask::", s)
		}
	}
}

func (res *result) stepOutput(step, name string) string { return res.steps[step][name] }

func (res *result) errors() []annotation {
	var out []annotation
	for _, a := range res.Annotations {
		if a.Level == "error" {
			out = append(out, a)
		}
	}
	return out
}

// oneError checks that the run failed with exit code code and exactly one
// error annotation matching msg, and returns it.
func oneError(t *testing.T, res *result, code int, msg string) annotation {
	t.Helper()
	if res.ExitCode != code {
		t.Errorf("got exit code %d, want %d\n%s", res.ExitCode, code, res.Log)
	}
	errs := res.errors()
	if len(errs) != 1 {
		t.Fatalf("got %d error annotations %v, want 1\n%s", len(errs), errs, res.Log)
	}
	if !regexp.MustCompile(msg).MatchString(errs[0].Msg) {
		t.Errorf("got error %q, want it to match %q", errs[0].Msg, msg)
	}
	return errs[0]
}

var digestLine = regexp.MustCompile(`^sha256:[0-9a-f]{64}  `)

func TestAttestAndVerify(t *testing.T) {
	r := newRunner(t)
	const pw = "correct-horse%battery:staple,1"
	key := r.keygen(t, pw)
	r.write(t, "app.tar", "an artifact\n")

	res := r.run(t, "build", map[string]string{"artifacts": "app.tar", "key": key, "password": pw})
	if res.ExitCode != 0 {
		t.Fatalf("build (attest) failed with %d:\n%s", res.ExitCode, res.Log)
	}
	if d := res.Outputs["digests"]; !digestLine.MatchString(d) || !strings.HasSuffix(d, "  app.tar") {
		t.Errorf("got digests %q, want one line sha256:<hex>  app.tar", d)
	}
	if got := res.Outputs["bundle"]; got != "app.tar.sigstore.json" {
		t.Errorf("got bundle %q, want app.tar.sigstore.json", got)
	}
	if !strings.Contains(res.Summary, "| artifact | digest | votes for | votes against | differing files | log index | verdict |") ||
		!regexp.MustCompile(`\| app\.tar \| sha256:[0-9a-f]{64} \| – \| – \| – \| – \| attested \|`).MatchString(res.Summary) {
		t.Errorf("summary:\n%s", res.Summary)
	}
	noSecrets(t, res, pw, key)
	// The provenance records this run.
	var b struct{ DSSEEnvelope struct{ Payload string } }
	raw, _ := os.ReadFile(filepath.Join(r.workspace, "app.tar.sigstore.json"))
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	payload, _ := base64.StdEncoding.DecodeString(b.DSSEEnvelope.Payload)
	for _, want := range []string{`"buildType":"https://actions.github.io/buildtypes/workflow/v1"`,
		`"id":"https://github.com/octo-org/hello/.github/workflows/release.yml@refs/heads/main"`,
		`"invocationId":"https://github.com/octo-org/hello/actions/runs/1536140711/attempts/1"`} {
		if !strings.Contains(string(payload), want) {
			t.Errorf("provenance lacks %s:\n%s", want, payload)
		}
	}

	res = r.run(t, "verify", map[string]string{"artifact": "app.tar", "keys": "cosign.pub"})
	if res.ExitCode != 0 {
		t.Fatalf("verify failed with %d:\n%s", res.ExitCode, res.Log)
	}
	if res.Outputs["verdict"] != "verified" || !strings.HasPrefix(res.Outputs["digest"], "sha256:") || res.Outputs["signers"] != "cosign" {
		t.Errorf("got outputs %v", res.Outputs)
	}
	if !regexp.MustCompile(`\| app\.tar \| sha256:[0-9a-f]{64} \| cosign \| – \| – \| – \| verified \|`).MatchString(res.Summary) {
		t.Errorf("summary:\n%s", res.Summary)
	}

	t.Run("failed verification", func(t *testing.T) {
		r.write(t, "app.tar", "another artifact\n")
		res := r.run(t, "verify", map[string]string{"artifact": "app.tar", "keys": "cosign.pub"})
		oneError(t, res, 1, `^app\.tar: not verified: subject: artifact digest sha256:[0-9a-f]{64} differs from the attested subject`)
		if res.Outputs["verdict"] != "not-verified" || !strings.HasPrefix(res.Outputs["reason"], "subject: artifact digest") {
			t.Errorf("got outputs %v", res.Outputs)
		}
		if !regexp.MustCompile(`\| app\.tar \| sha256:[0-9a-f]{64} \| – \| – \| – \| – \| not verified: subject: artifact digest `).MatchString(res.Summary) {
			t.Errorf("summary:\n%s", res.Summary)
		}
	})
}

func TestWrongPassword(t *testing.T) {
	r := newRunner(t)
	key := r.keygen(t, "the-right-password")
	r.write(t, "app.tar", "an artifact\n")
	const wrong = "not-the-password:%0A,x"
	res := r.run(t, "build", map[string]string{"artifacts": "app.tar", "key": key, "password": wrong})
	oneError(t, res, 2, `^the key \(input 'key'\): wrong password \(or the key file is damaged\) \(set input 'password' to the password the key was made with\)$`)
	noSecrets(t, res, wrong, key)
	if _, err := os.Stat(filepath.Join(r.workspace, "app.tar.sigstore.json")); err == nil {
		t.Error("a bundle was written")
	}
	// publish with a requester key: the key is decrypted before a node
	// is asked.
	r.write(t, "spec.yaml", "version: 1\n")
	r.write(t, "policy.json", readFile(t, "../publish/policy/testdata/valid-three-nodes.json"))
	res = r.run(t, "publish", map[string]string{"spec": "spec.yaml", "node": "127.0.0.1:1", "policy": "policy.json", "key": key, "password": wrong})
	oneError(t, res, 2, `^the key \(input 'key'\): wrong password \(or the key file is damaged\) \(set input 'password' to the password the key was made with\)$`)
	noSecrets(t, res, wrong, key)
}

func TestMissingInput(t *testing.T) {
	r := newRunner(t)
	r.write(t, "app.tar", "an artifact\n")
	tests := []struct {
		action string
		with   map[string]string
		want   string
	}{
		{"build", map[string]string{"artifacts": "app.tar"}, `^input 'key' is required: set it under 'with:'`},
		{"build", map[string]string{"key": "k"}, `^input 'spec' is required`},
		{"build", map[string]string{"key": "k", "spec": "nope.yaml"}, `^input 'spec': nope\.yaml is not a file`},
		{"verify", map[string]string{"keys": "cosign.pub"}, `^input 'artifact' is required`},
		{"verify", map[string]string{"artifact": "app.tar"}, `^input 'keys' .* or 'policy' .* is required`},
		{"publish", map[string]string{"spec": "app.tar", "token": "t", "policy": "app.tar"}, `^input 'node' is required`},
		{"publish", map[string]string{"spec": "app.tar", "node": "127.0.0.1:1", "policy": "app.tar"}, `^input 'token' \(the node's API token: the node signs the request\) or 'key' .* is required`},
		{"publish", map[string]string{"spec": "app.tar", "node": "127.0.0.1:1", "policy": "app.tar", "token": "t", "key": "k"}, `^inputs 'token' and 'key' do not go together`},
	}
	for _, tt := range tests {
		t.Run(tt.action+"/"+tt.want, func(t *testing.T) {
			res := r.run(t, tt.action, tt.with)
			a := oneError(t, res, 2, tt.want)
			if len(a.Props) != 0 {
				t.Errorf("got properties %v, want none", a.Props)
			}
			if !strings.Contains(res.Summary, "**pyrsia-build: error:**") {
				t.Errorf("summary:\n%s", res.Summary)
			}
		})
	}
}

// TestBadSpecField: an error in a spec field is annotated on its line.
func TestBadSpecField(t *testing.T) {
	r := newRunner(t)
	key := r.keygen(t, "pw")
	tests := []struct {
		name, spec string
		line       string
		want       string
	}{
		{"scalar", "version: 1\n# a comment\necosystem: ocx\ncoordinate: a:1\n", "3", `^spec\.yaml: spec: ecosystem: "ocx" is not oci or maven`},
		{"flow mapping", "version: 1\necosystem: oci\ncoordinate: a:1\nsource:\n  archive: {path: x.tar, sha256: abc}\nbuilderImage: {name: busybox, digest: sha256:00}\n", "5", `source\.archive\.sha256: "abc" is not 64 lowercase hex digits`},
		{"unknown field", "version: 1\necosystem: oci\nfoo: 1\n", "3", `^spec\.yaml: spec: foo: line 3: unknown field`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r.write(t, "spec.yaml", tt.spec)
			res := r.run(t, "build", map[string]string{"spec": "spec.yaml", "key": key, "password": "pw"})
			a := oneError(t, res, 2, tt.want)
			if a.Props["file"] != "spec.yaml" || a.Props["line"] != tt.line {
				t.Errorf("got properties %v, want file=spec.yaml line=%s", a.Props, tt.line)
			}
		})
	}
	// publish reads the spec too (its input digest) before it asks a node.
	r.write(t, "spec.yaml", tests[0].spec)
	r.write(t, "policy.json", readFile(t, "../publish/policy/testdata/valid-three-nodes.json"))
	res := r.run(t, "publish", map[string]string{"spec": "spec.yaml", "node": "127.0.0.1:1", "token": "a-token-value", "policy": "policy.json"})
	if errs := res.errors(); len(errs) != 1 || errs[0].Props["line"] != "3" || errs[0].Props["file"] != "spec.yaml" {
		t.Errorf("publish: got errors %+v, want one on spec.yaml line 3\n%s", errs, res.Log)
	}
}

// requireInCI skips locally and fails in CI, where nothing may skip.
func requireInCI(t *testing.T, reason string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("CI: %s", reason)
	}
	t.Skip(reason)
}

// buildPrereqs returns the image store for a real build, or skips.
func buildPrereqs(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		requireInCI(t, "a build needs root (buildkitd): run the tests as root")
	}
	for _, tool := range []string{"buildkitd", "runc"} {
		if _, err := exec.LookPath(tool); err != nil {
			requireInCI(t, tool+" is not on PATH: PATH=\"$(scripts/install-buildkit.sh):$PATH\" (runc: scripts/install-debian-deps.sh)")
		}
	}
	images := os.Getenv("PYRSIA_IMAGES")
	if images == "" {
		home, _ := os.UserHomeDir()
		images = filepath.Join(home, ".cache", "pyrsia-build", "images")
	}
	if _, err := os.Stat(filepath.Join(images, "busybox", "index.json")); err != nil {
		requireInCI(t, "no busybox builder image in "+images+": pyrsia-build image make --store "+images+" busybox")
	}
	return images
}

// imageDigest reads an OCI layout's manifest digest.
func imageDigest(t *testing.T, layout string) string {
	t.Helper()
	var idx struct{ Manifests []struct{ Digest string } }
	b, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &idx); err != nil || len(idx.Manifests) == 0 {
		t.Fatalf("%s/index.json: %v", layout, err)
	}
	return idx.Manifests[0].Digest
}

// tarOf writes a tar of files (name: content) with fixed times.
func tarOf(t *testing.T, path string, files map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, name := range slices.Sorted(maps.Keys(files)) {
		hdr := &tar.Header{Name: name, Mode: 0o644, Size: int64(len(files[name])), ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(files[name]))
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(sum[:])
}

// TestBuildAndVerify builds a small image with the build action (a real
// BuildKit build in the busybox image) and verifies its manifest with the
// verify action.
func TestBuildAndVerify(t *testing.T) {
	images := buildPrereqs(t)
	r := newRunner(t)
	const pw = "pw-for-the-build"
	key := r.keygen(t, pw)
	sum := tarOf(t, filepath.Join(r.workspace, "hello.tar"), map[string]string{
		"Dockerfile": "FROM busybox\nRUN mkdir -p /app && echo 'hello from an action' > /app/hello.txt\n",
	})
	r.write(t, "hello.yaml", "version: 1\necosystem: oci\ncoordinate: hello-action:1.0\nsource:\n  archive:\n    path: hello.tar\n    sha256: "+sum+
		"\nrecipe:\n  oci: {dockerfile: Dockerfile}\nbuilderImage:\n  name: busybox\n  digest: "+imageDigest(t, filepath.Join(images, "busybox"))+"\nsourceDateEpoch: 1700000000\n")
	res := r.run(t, "build", map[string]string{"spec": "hello.yaml", "key": key, "password": pw, "images": images})
	if res.ExitCode != 0 {
		t.Fatalf("build failed with %d:\n%s", res.ExitCode, res.Log)
	}
	noSecrets(t, res, pw, key)
	digests := res.Outputs["digests"]
	m := regexp.MustCompile(`^sha256:([0-9a-f]{64})  hello-action:1\.0$`).FindStringSubmatch(digests)
	if m == nil {
		t.Fatalf("got digests %q, want one image manifest", digests)
	}
	if !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(res.Outputs["input-digest"]) {
		t.Errorf("got input-digest %q", res.Outputs["input-digest"])
	}
	if !strings.Contains(res.Summary, "| hello-action:1.0 | sha256:"+m[1]+" | – | – | – | – | built and attested |") {
		t.Errorf("summary:\n%s", res.Summary)
	}
	out := res.Outputs["out"]
	res = r.run(t, "verify", map[string]string{
		"artifact": filepath.Join(out, "artifacts", "image", "blobs", "sha256", m[1]),
		"bundle":   res.Outputs["bundle"], "keys": "cosign.pub", "type": "slsaprovenance1",
	})
	if res.ExitCode != 0 || res.Outputs["verdict"] != "verified" || res.Outputs["digest"] != "sha256:"+m[1] {
		t.Fatalf("verify: exit %d, outputs %v\n%s", res.ExitCode, res.Outputs, res.Log)
	}
}

// TestPublishNoQuorum publishes through a real build node of a network of
// three whose other two nodes never start: the node builds, votes, and
// after its --deadline gives the no-quorum verdict the action reports.
func TestPublishNoQuorum(t *testing.T) {
	images := buildPrereqs(t)
	r := newRunner(t)
	pb := pyrsiaBuild(t)
	dir := t.TempDir()
	pbRun := func(args ...string) []byte {
		t.Helper()
		cmd := exec.Command(pb, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=node-pw")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("pyrsia-build %s: %v", strings.Join(args, " "), err)
		}
		return out
	}
	for _, n := range []string{"node-a", "node-b", "node-c"} {
		if err := os.WriteFile(filepath.Join(dir, n+".json"), pbRun("node", "init", "--data", filepath.Join(dir, n), "--name", n), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	policy := filepath.Join(r.workspace, "policy.json")
	pbRun("network", "init", "--name", "test.example/actions", "--policy", policy, "node-a.json", "node-b.json", "node-c.json")

	// The source, served on loopback (a spec from the network names a URL).
	srcDir := t.TempDir()
	sum := tarOf(t, filepath.Join(srcDir, "hello.tar"), map[string]string{"Dockerfile": "FROM busybox\nRUN echo no-quorum > /hi.txt\n"})
	src := httptest.NewServer(http.FileServer(http.Dir(srcDir)))
	defer src.Close()
	srcHost := strings.TrimPrefix(src.URL, "http://")
	r.write(t, "hello.yaml", "version: 1\necosystem: oci\ncoordinate: no-quorum:1.0\nsource:\n  archive:\n    url: "+src.URL+"/hello.tar\n    sha256: "+sum+
		"\nrecipe:\n  oci: {dockerfile: Dockerfile}\nbuilderImage:\n  name: busybox\n  digest: "+imageDigest(t, filepath.Join(images, "busybox"))+"\nsourceDateEpoch: 1700000000\n")

	api := freeAddr(t)
	var nodeLog bytes.Buffer
	node := exec.Command(pb, "node", "--build", "--data", filepath.Join(dir, "node-a"), "--policy", policy,
		"--listen", "/ip4/127.0.0.1/tcp/0", "--api", api, "--images", images, "--deadline", "10s", "--allow-source-host", srcHost)
	node.Env = append(os.Environ(), "COSIGN_PASSWORD=node-pw")
	node.Stderr = &nodeLog
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		node.Process.Signal(syscall.SIGTERM)
		node.Wait()
		if t.Failed() {
			t.Logf("node log:\n%s", nodeLog.String())
		}
	}()
	for i := 0; ; i++ {
		resp, err := http.Get("http://" + api + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i == 600 {
			t.Fatalf("the node did not answer on %s: %v", api, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	token, err := os.ReadFile(filepath.Join(dir, "node-a", "api.token"))
	if err != nil {
		t.Fatal(err)
	}
	res := r.run(t, "publish", map[string]string{"spec": "hello.yaml", "node": api, "token": strings.TrimSpace(string(token)), "policy": "policy.json", "deadline": "5m"})
	oneError(t, res, 1, `^no quorum for sha256:[0-9a-f]{64}: 1 of 3 agree on sha256:[0-9a-f]{64}; node-b, node-c did not answer in 10s`)
	noSecrets(t, res, strings.TrimSpace(string(token)))
	if res.Outputs["verdict"] != "no-quorum" || !regexp.MustCompile(`^sha256:[0-9a-f]{64}$`).MatchString(res.Outputs["input-digest"]) ||
		!regexp.MustCompile(`^node-a\tsha256:[0-9a-f]{64}$`).MatchString(res.Outputs["votes"]) || res.Outputs["proof"] != "" {
		t.Errorf("got outputs %q", res.Outputs)
	}
	if !regexp.MustCompile(`\| no-quorum:1\.0 \| sha256:[0-9a-f]{64} \| 1 \| 0 \| – \| – \| no quorum \|`).MatchString(res.Summary) ||
		!strings.Contains(res.Summary, "node-b, node-c did not answer in 10s") {
		t.Errorf("summary:\n%s", res.Summary)
	}

	// The action's deadline ends the wait before the network's verdict.
	r.write(t, "other.yaml", strings.Replace(readFile(t, filepath.Join(r.workspace, "hello.yaml")), "no-quorum:1.0", "no-quorum:2.0", 1))
	res = r.run(t, "publish", map[string]string{"spec": "other.yaml", "node": api, "token": strings.TrimSpace(string(token)), "policy": "policy.json", "deadline": "2s"})
	oneError(t, res, 1, `^no verdict for other\.yaml within the deadline of 2s: the build network is still voting \('pyrsia-build status --node `+regexp.QuoteMeta(api)+` sha256:[0-9a-f]{64}' shows the outcome later\); raise input 'deadline'`)
	if res.Outputs["verdict"] != "timeout" {
		t.Errorf("got outputs %q", res.Outputs)
	}
}

// freeAddr is a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}
