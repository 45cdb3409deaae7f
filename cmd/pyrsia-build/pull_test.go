package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pyrsia/pyrsia-build/node"
	"github.com/pyrsia/pyrsia-build/node/nodetest"
	"github.com/pyrsia/pyrsia-build/publish/policy"
)

// startServingNetwork runs three build nodes that admit regular nodes, in
// this process, and returns the policy file, the first node's data folder
// and its libp2p address.
func startServingNetwork(t *testing.T) (policyFile string, dirs []string, boot string) {
	t.Helper()
	root := t.TempDir()
	p := &policy.Policy{Version: policy.Version, Name: "test.example/net"}
	var keys []*node.Keys
	for i := range 3 {
		dir := filepath.Join(root, fmt.Sprint(i))
		k, err := node.InitKeys(dir, fmt.Sprintf("node-%c", 'a'+i), nil)
		if err != nil {
			t.Fatal(err)
		}
		keys, dirs = append(keys, k), append(dirs, dir)
		pn := k.PolicyNode()
		p.Nodes = append(p.Nodes, policy.Node{Name: pn.Name, CosignKey: pn.CosignKey, PeerID: pn.PeerID, NoteKey: pn.NoteKey})
	}
	b, _ := p.Marshal()
	policyFile = filepath.Join(root, "policy.json")
	os.WriteFile(policyFile, b, 0o644)
	rc := raft.DefaultConfig()
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout, rc.CommitTimeout = 300*time.Millisecond, 300*time.Millisecond, 150*time.Millisecond, 5*time.Millisecond
	var peers []peer.AddrInfo
	var nodes []*node.Node
	for i, k := range keys {
		ln, _ := net.Listen("tcp", "127.0.0.1:0")
		n, err := node.New(context.Background(), node.Options{Data: dirs[i], Policy: p, Keys: k,
			Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Bootstrap: peers, API: ln, Builder: node.BuilderFunc(nodetest.Build), Deadline: time.Minute,
			RaftConfig: rc, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Serving: node.ServingOptions{AdmitPeers: true}})
		if err != nil {
			t.Fatal(err)
		}
		peers = append(peers, peer.AddrInfo{ID: n.Host().ID(), Addrs: n.Host().Addrs()})
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
	boot = fmt.Sprintf("%s/p2p/%s", nodes[0].Host().Addrs()[0], nodes[0].Host().ID())
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		for _, n := range nodes {
			if n.Raft().State() == raft.Leader {
				return policyFile, dirs, boot
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no Raft leader in 30s")
		}
	}
}

// startRegularNode runs 'pyrsia-build node --config FILE' (a regular
// node: its data folder relative to the file, its policy, bootstrap peer
// and log level from the file; --http and --listen given as flags
// override the file's, whose http cannot be listened on) in this process
// and returns its HTTP address once it answers.
func startRegularNode(t *testing.T, policyFile, boot string) string {
	t.Helper()
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	dir := t.TempDir()
	conf := filepath.Join(dir, "regular.yaml")
	b, _ := json.Marshal(map[string]any{"data": "data", "policy": policyFile, "bootstrap": []string{boot},
		"http": "127.0.0.1:99999", "listen": []string{"/ip4/192.0.2.1/tcp/1"}, "logLevel": "warn", "storeMaxBytes": 1 << 30})
	if err := os.WriteFile(conf, b, 0o644); err != nil { // JSON is YAML
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var stderr syncBuffer
	go func() {
		done <- runApp(ctx, newApp(strings.NewReader(""), io.Discard, &stderr), []string{"pyrsia-build", "node", "--config", conf,
			"--http", addr, "--listen", "/ip4/127.0.0.1/tcp/0"})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && ctx.Err() == nil {
			t.Errorf("regular node: %v\n%s", err, stderr.String())
		}
	})
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if resp, err := http.Get("http://" + addr + "/healthz"); err == nil {
			resp.Body.Close()
			if _, err := os.Stat(filepath.Join(dir, "data", "keys", "p2p.key")); err != nil {
				t.Fatalf("the data folder is not the file's data: relative to it: %v", err)
			}
			return addr
		}
		select {
		case err := <-done:
			t.Fatalf("the regular node stopped: %v\n%s", err, stderr.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the regular node does not answer:\n%s", stderr.String())
		}
	}
}

const pullImageSpec = `version: 1
ecosystem: oci
coordinate: hello:1.0
source:
  archive:
    url: http://source.invalid/hello-oci-1.0.tar
    sha256: 0000000000000000000000000000000000000000000000000000000000000002
recipe:
  oci: {}
builderImage:
  name: busybox
  digest: sha256:0000000000000000000000000000000000000000000000000000000000000009
sourceDateEpoch: 1700000000
`

// TestPullFetchThroughRegularNode: a regular node started by 'node'
// without --build follows a build network; 'publish --key' through it
// gets an image and a jar built and published; 'pull' and 'fetch' write
// them verified, with proof bundles that 'verify --policy' accepts; an
// unpublished name exits 1 and writes nothing; 'status' works against it.
func TestPullFetchThroughRegularNode(t *testing.T) {
	t.Setenv("COSIGN_PASSWORD", "")
	policyFile, dirs, boot := startServingNetwork(t)
	reg := startRegularNode(t, policyFile, boot)
	dir := t.TempDir()
	key := filepath.Join(dirs[2], "keys", "cosign.key") // a build node's key may request builds
	for name, spec := range map[string]string{"image.yaml": pullImageSpec, "jar.yaml": testNodeSpec} {
		f := filepath.Join(dir, name)
		os.WriteFile(f, []byte(spec), 0o644)
		code, stdout, stderr := runCLI("publish", "--node", reg, "--key", key, "--policy", policyFile, "-o", filepath.Join(dir, name+".proof.json"), f)
		if code != 0 || !strings.Contains(stdout, "final: checkpoint") || !strings.Contains(stdout, "vote  node-") {
			t.Fatalf("publish %s through the regular node: exit %d\n%s\n%s", name, code, stdout, stderr)
		}
	}

	img := filepath.Join(dir, "hello")
	code, stdout, stderr := runCLI("pull", "--node", reg, "--policy", policyFile, "-o", img, "hello:1.0")
	if code != 0 || !strings.Contains(stdout, "verified  hello:1.0") {
		t.Fatalf("pull: exit %d\n%s\n%s", code, stdout, stderr)
	}
	var idx struct {
		Manifests []struct{ Digest string } `json:"manifests"`
	}
	b, _ := os.ReadFile(filepath.Join(img, "index.json"))
	if json.Unmarshal(b, &idx) != nil || len(idx.Manifests) != 1 {
		t.Fatalf("index.json: %s", b)
	}
	manifest := filepath.Join(img, "blobs", "sha256", strings.TrimPrefix(idx.Manifests[0].Digest, "sha256:"))
	if code, stdout, stderr := runCLI("verify", "--policy", policyFile, "--bundle", filepath.Join(img, node.ProofFile), manifest); code != 0 {
		t.Errorf("verify the pulled manifest: exit %d\n%s\n%s", code, stdout, stderr)
	}

	lib := filepath.Join(dir, "lib")
	code, stdout, stderr = runCLI("fetch", "--node", reg, "--policy", policyFile, "-o", lib, "org.example:hello:1.0")
	if code != 0 || !strings.Contains(stdout, "hello-1.0.jar") {
		t.Fatalf("fetch: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if code, stdout, stderr := runCLI("verify", "--policy", policyFile, "--bundle", filepath.Join(lib, node.ProofFile), filepath.Join(lib, "hello-1.0.jar")); code != 0 {
		t.Errorf("verify the fetched jar: exit %d\n%s\n%s", code, stdout, stderr)
	}

	none := filepath.Join(dir, "none")
	if code, _, stderr := runCLI("pull", "--node", reg, "--policy", policyFile, "-o", none, "hello:9.9"); code != exitNotVerified || !strings.Contains(stderr, "pyrsia-build publish SPEC --node") {
		t.Errorf("pull of an unpublished tag: exit %d, %s", code, stderr)
	}
	if _, err := os.Stat(none); !os.IsNotExist(err) {
		t.Errorf("pull of an unpublished tag wrote %s", none)
	}
	if code, stdout, stderr := runCLI("status", "--node", reg, "hello:1.0"); code != 0 || !strings.Contains(stdout, "state     final") {
		t.Errorf("status through the regular node: exit %d\n%s\n%s", code, stdout, stderr)
	}
	if code, stdout, stderr := runCLI("node", "status", "--node", reg); code != 0 || !strings.Contains(stdout, "node      regular") || !strings.Contains(stdout, "indexed   2 entries") {
		t.Errorf("node status of the regular node: exit %d\n%s\n%s", code, stdout, stderr)
	}
}
