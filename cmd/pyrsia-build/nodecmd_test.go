package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/builder"
	"github.com/pyrsia/pyrsia-build/node"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/urfave/cli/v2"
)

// pomBuilder is a test-only builder: it writes hello.pom with bytes that
// depend on the input digest and on salt (nodes with another salt
// disagree).
func pomBuilder(salt string) node.BuilderFunc {
	return func(ctx context.Context, spec *builder.Spec, out string) (*builder.Result, error) {
		input, _ := spec.InputDigest()
		os.MkdirAll(filepath.Join(out, "artifacts"), 0o755)
		data := []byte("<project>" + input + " " + salt + "</project>\n")
		p := filepath.Join(out, "artifacts", "hello.pom")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return nil, err
		}
		am, err := builder.ManifestFile(ctx, "hello.pom", p)
		if err != nil {
			return nil, err
		}
		am.Path = "artifacts/hello.pom"
		if err := builder.WriteManifest(filepath.Join(out, "manifest.json"), &builder.OutputManifest{Version: builder.ManifestVersion, Artifacts: []builder.ArtifactManifest{am}}); err != nil {
			return nil, err
		}
		sum := sha256.Sum256(data)
		return &builder.Result{InputDigest: input, Artifacts: []builder.Artifact{{Name: "hello.pom", Digest: "sha256:" + hex.EncodeToString(sum[:]), Path: am.Path}},
			SourceDigest: "sha256:" + spec.Source.Archive.SHA256, BuilderImageDigest: spec.BuilderImage.Digest}, nil
	}
}

// startTestNetwork runs three build nodes in this process (real libp2p,
// Raft and logs; test builders) and returns the first node's API address
// and the policy file.
func startTestNetwork(t *testing.T, salts []string, deadline time.Duration, requesters ...string) (api, policyFile string) {
	t.Helper()
	root := t.TempDir()
	p := &policy.Policy{Version: policy.Version, Name: "test.example/net", Requesters: requesters}
	var keys []*node.Keys
	for i := range salts {
		k, err := node.InitKeys(filepath.Join(root, fmt.Sprint(i)), fmt.Sprintf("node-%c", 'a'+i), nil)
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, k)
		pn := k.PolicyNode()
		p.Nodes = append(p.Nodes, policy.Node{Name: pn.Name, CosignKey: pn.CosignKey, PeerID: pn.PeerID, NoteKey: pn.NoteKey})
	}
	b, err := p.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	policyFile = filepath.Join(root, "policy.json")
	os.WriteFile(policyFile, b, 0o644)
	rc := raft.DefaultConfig()
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout, rc.CommitTimeout = 300*time.Millisecond, 300*time.Millisecond, 150*time.Millisecond, 5*time.Millisecond
	var boot []peer.AddrInfo
	var nodes []*node.Node
	for i, k := range keys {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			api = ln.Addr().String()
		}
		n, err := node.New(context.Background(), node.Options{Data: filepath.Join(root, fmt.Sprint(i)), Policy: p, Keys: k,
			Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Bootstrap: boot, API: ln, Builder: pomBuilder(salts[i]), Deadline: deadline,
			RaftConfig: rc, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		boot = append(boot, peer.AddrInfo{ID: n.Host().ID(), Addrs: n.Host().Addrs()})
		nodes = append(nodes, n)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- n.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("node %d: %v", i, err)
			}
		})
	}
	// Wait for a leader: publish needs one to append.
	for deadline := time.Now().Add(30 * time.Second); ; {
		for _, n := range nodes {
			if n.Raft().State() == raft.Leader {
				return api, policyFile
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no Raft leader in 30s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const testNodeSpec = `version: 1
ecosystem: maven
coordinate: org.example:hello:1.0
source:
  archive:
    url: http://source.invalid/hello-1.0.tar
    sha256: 0000000000000000000000000000000000000000000000000000000000000001
recipe:
  maven: {}
builderImage:
  name: maven
  digest: sha256:0000000000000000000000000000000000000000000000000000000000000007
sourceDateEpoch: 1700000000
`

// TestPublishVerifyStatus: publish through a node's API, verify with the
// policy alone, status by input and by coordinate.
func TestPublishVerifyStatus(t *testing.T) {
	api, policyFile := startTestNetwork(t, []string{"honest", "honest", "honest"}, time.Minute)
	dir := t.TempDir()
	specFile := filepath.Join(dir, "hello.yaml")
	os.WriteFile(specFile, []byte(testNodeSpec), 0o644)
	proof := filepath.Join(dir, "hello.proof.json")
	data := filepath.Join(filepath.Dir(policyFile), "0")
	code, stdout, stderr := runCLI("publish", specFile, "--node", api, "--data", data, "--policy", policyFile, "-o", proof)
	if code != 0 {
		t.Fatalf("publish: exit %d\n%s\n%s", code, stdout, stderr)
	}
	t.Logf("publish:\n%s", stdout)
	for _, want := range []string{"input     sha256:", "vote  node-", "final: checkpoint of size 1", "published entry 0", "proof     " + proof} {
		if !strings.Contains(stdout, want) {
			t.Errorf("publish output does not say %q", want)
		}
	}
	s, _ := builder.ParseSpec([]byte(testNodeSpec))
	input, _ := s.InputDigest()
	artifact := filepath.Join(dir, "hello.pom")
	os.WriteFile(artifact, []byte("<project>"+input+" honest</project>\n"), 0o644)
	code, stdout, stderr = runCLI("verify", "--policy", policyFile, "--bundle", proof, artifact)
	if code != 0 {
		t.Fatalf("verify --policy: exit %d\n%s\n%s", code, stdout, stderr)
	}
	os.WriteFile(artifact, []byte("other bytes"), 0o644)
	if code, _, stderr = runCLI("verify", "--policy", policyFile, "--bundle", proof, artifact); code != exitNotVerified {
		t.Errorf("verify --policy of other bytes: exit %d, want 1: %s", code, stderr)
	}
	if code, _, stderr = runCLI("verify", "--policy", policyFile, "--key", policyFile, "--bundle", proof, artifact); code != exitInput || !strings.Contains(stderr, "--policy gives every key") {
		t.Errorf("verify --policy --key: exit %d, %s", code, stderr)
	}
	os.WriteFile(artifact, []byte("<project>"+input+" honest</project>\n"), 0o644)
	// --later-policy: the policy in force is one the bundle leads to; a
	// policy it does not lead to (here another network's) is refused.
	if code, stdout, stderr = runCLI("verify", "--policy", policyFile, "--later-policy", policyFile, "--bundle", proof, artifact); code != 0 {
		t.Errorf("verify --later-policy (the first policy, still in force): exit %d\n%s\n%s", code, stdout, stderr)
	}
	other := "../../publish/policy/testdata/valid-three-nodes.json"
	if code, _, stderr = runCLI("verify", "--policy", policyFile, "--later-policy", other, "--bundle", proof, artifact); code != exitNotVerified || !strings.Contains(stderr, "is not the policy in force at the checkpoint, nor one before it") {
		t.Errorf("verify --later-policy of a policy the bundle does not lead to: exit %d, %s", code, stderr)
	}
	if code, _, stderr = runCLI("verify", "--key", policyFile, "--later-policy", other, "--bundle", proof, artifact); code != exitInput || !strings.Contains(stderr, "--later-policy goes with --policy") {
		t.Errorf("verify --later-policy without --policy: exit %d, %s", code, stderr)
	}
	for _, what := range []string{input, "org.example:hello:1.0"} {
		code, stdout, stderr = runCLI("status", "--node", api, what)
		if code != 0 || !strings.Contains(stdout, "state     final") || !strings.Contains(stdout, "entry     0 (maven org.example:hello:1.0)") {
			t.Errorf("status %s: exit %d\n%s\n%s", what, code, stdout, stderr)
		}
	}
	// node status: the node's state for a person, and as JSON.
	code, stdout, stderr = runCLI("node", "status", "--node", api)
	for _, want := range []string{"node      node-", "peers     2 connected: node-", "raft      ", ", term ", "log       1 entries", "final     checkpoint of 1 entries, root ", "building  none", "dropped   0 gossip messages", "refused   0 peers outside the policy, 0 specs", "verdicts  none recent"} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("node status: exit %d, output does not say %q:\n%s%s", code, want, stdout, stderr)
		}
	}
	code, stdout, stderr = runCLI("node", "status", "--node", api, "--json")
	var st node.Status
	if err := json.Unmarshal([]byte(stdout), &st); code != 0 || err != nil || st.LogSize != 1 || st.Final != 1 || st.FinalRoot == "" || len(st.Peers) != 2 {
		t.Errorf("node status --json: exit %d, %v: %+v\n%s", code, err, st, stderr)
	}
	if code, _, stderr = runCLI("node", "status", "--node", "127.0.0.1:1"); code == 0 || !strings.Contains(stderr, "127.0.0.1:1") {
		t.Errorf("node status of no node: exit %d, %s", code, stderr)
	}
	code, _, stderr = runCLI("status", "--node", api, "sha256:"+strings.Repeat("0", 64))
	if code != exitInput || !strings.Contains(stderr, "the node knows nothing of") {
		t.Errorf("status of an unknown input: exit %d, %s", code, stderr)
	}
	// A spec that names a local file is refused by the node.
	local := strings.Replace(testNodeSpec, "url: http://source.invalid/hello-1.0.tar", "path: /etc/hello-1.0.tar", 1)
	os.WriteFile(specFile, []byte(local), 0o644)
	code, _, stderr = runCLI("publish", "--node", api, "--data", data, "--policy", policyFile, specFile)
	if code != exitInput || !strings.Contains(stderr, "not allowed in a spec from the network") {
		t.Errorf("publish of a local path: exit %d, %s", code, stderr)
	}
}

// TestPublishNoQuorum: three different outputs, the verdict, exit 1.
func TestPublishNoQuorum(t *testing.T) {
	api, policyFile := startTestNetwork(t, []string{"a", "b", "c"}, 2*time.Second)
	dir := t.TempDir()
	specFile := filepath.Join(dir, "hello.yaml")
	os.WriteFile(specFile, []byte(testNodeSpec), 0o644)
	code, stdout, stderr := runCLI("publish", "--node", api, "--data", filepath.Join(filepath.Dir(policyFile), "0"), "--policy", policyFile, specFile)
	if code != exitNotVerified || !strings.Contains(stderr, "no quorum for sha256:") || !strings.Contains(stderr, "differs in hello.pom") {
		t.Fatalf("publish without quorum: exit %d\n%s\n%s", code, stdout, stderr)
	}
	t.Logf("%s", stderr)
	s, _ := builder.ParseSpec([]byte(testNodeSpec))
	input, _ := s.InputDigest()
	code, stdout, stderr = runCLI("node", "status", "--node", api)
	if code != 0 || !strings.Contains(stdout, "verdict   no quorum for "+input) || !strings.Contains(stdout, "log       0 entries") {
		t.Errorf("node status after a verdict: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runCLI("status", "--node", api, input)
	if code != exitNotVerified || !strings.Contains(stdout, "state     no-quorum") || !strings.Contains(stderr, "no quorum for "+input) {
		t.Errorf("status after no quorum: exit %d\n%s\n%s", code, stdout, stderr)
	}
}

// The settings of node: the flags over the --config file over the flags'
// defaults.
func TestNodeSettings(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "node.yaml")
	if err := os.WriteFile(conf, []byte(`build: true
data: state
policy: /etc/policy.json
listen: [/ip4/127.0.0.1/tcp/4001]
bootstrap: [/ip4/127.0.0.1/tcp/4002/p2p/12D3KooWExample]
api: ""
images: imgs
maxBuilds: 3
deadline: 90s
allowSourceHosts: [git.example:8080]
logLevel: debug
logFormat: json
`), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (*nodeSettings, error) {
		var s *nodeSettings
		var err error
		cmd := nodeCommand()
		cmd.Action = func(c *cli.Context) error { s, err = readNodeSettings(c); return nil }
		app := &cli.App{Commands: []*cli.Command{cmd}, Writer: io.Discard, ErrWriter: io.Discard}
		if rerr := app.Run(append([]string{"pyrsia-build", "node"}, args...)); rerr != nil {
			t.Fatal(rerr)
		}
		return s, err
	}
	s, err := run("--config", conf)
	if err != nil {
		t.Fatal(err)
	}
	want := nodeSettings{build: true, data: filepath.Join(dir, "state"), policy: "/etc/policy.json", api: "",
		listen: []string{"/ip4/127.0.0.1/tcp/4001"}, bootstrap: []string{"/ip4/127.0.0.1/tcp/4002/p2p/12D3KooWExample"}, allow: []string{"git.example:8080"},
		images: filepath.Join(dir, "imgs"), maxBuilds: 3, deadline: 90 * time.Second, logLevel: slog.LevelDebug, logFormat: "json"}
	if fmt.Sprint(*s) != fmt.Sprint(want) {
		t.Errorf("from the file:\n got %+v\nwant %+v", *s, want)
	}
	s, err = run("--config", conf, "--data", "other", "--api", "127.0.0.1:1", "--listen", "/ip4/127.0.0.1/tcp/9", "--max-builds", "1",
		"--deadline", "1m", "--log-level", "warn", "--log-format", "text", "--images", "i2", "--allow-source-host", "h")
	if err != nil {
		t.Fatal(err)
	}
	want.data, want.api, want.listen, want.maxBuilds, want.deadline, want.logLevel, want.logFormat, want.images, want.allow =
		"other", "127.0.0.1:1", []string{"/ip4/127.0.0.1/tcp/9"}, 1, time.Minute, slog.LevelWarn, "text", "i2", []string{"h"}
	if fmt.Sprint(*s) != fmt.Sprint(want) {
		t.Errorf("flags over the file:\n got %+v\nwant %+v", *s, want)
	}
	// Without a file: the flags' defaults.
	s, err = run("--build", "--data", "d", "--policy", "p")
	if err != nil {
		t.Fatal(err)
	}
	if s.api != "127.0.0.1:7888" || s.maxBuilds != 2 || s.deadline != 10*time.Minute || s.logLevel != slog.LevelInfo || s.logFormat != "text" || s.images != "images" {
		t.Errorf("defaults: got %+v", *s)
	}
}

// TestPublishWithRequesterKey: publish --key signs the request with the
// requester's own key; the node only passes it on. A listed requester is
// published; an unlisted one is refused by the node at once.
func TestPublishWithRequesterKey(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("COSIGN_PASSWORD", "")
	var pubs []string
	for _, name := range []string{"me", "other"} {
		kp, err := attest.GenerateKeyPair(nil)
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(dir, name+".key"), kp.Private, 0o600)
		pubs = append(pubs, string(kp.Public))
	}
	api, policyFile := startTestNetwork(t, []string{"honest", "honest", "honest"}, time.Minute, pubs[0])
	specFile := filepath.Join(dir, "hello.yaml")
	os.WriteFile(specFile, []byte(strings.ReplaceAll(testNodeSpec, "1.0", "3.0")), 0o644)
	proof := filepath.Join(dir, "hello.proof.json")
	code, stdout, stderr := runCLI("publish", "--node", api, "--key", filepath.Join(dir, "me.key"), "--policy", policyFile, "-o", proof, specFile)
	if code != 0 || !strings.Contains(stdout, "published entry 0") {
		t.Fatalf("publish --key of a listed requester: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if _, err := os.Stat(proof); err != nil {
		t.Error(err)
	}
	code, stdout, stderr = runCLI("publish", "--node", api, "--key", filepath.Join(dir, "other.key"), "--policy", policyFile, specFile)
	if code != exitInput || !strings.Contains(stderr, "is not one of the policy test.example/net's build nodes or requesters, and the policy is not open") {
		t.Errorf("publish --key of an unlisted requester: exit %d\n%s\n%s", code, stdout, stderr)
	}
	code, _, stderr = runCLI("publish", "--node", api, "--key", filepath.Join(dir, "me.key"), "--data", dir, "--policy", policyFile, specFile)
	if code != exitInput || !strings.Contains(stderr, "do not go with it") {
		t.Errorf("publish --key --data: exit %d, %s", code, stderr)
	}
}
