package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pyrsia/pyrsia-build/node/nodetest"
)

// The regular-node tests run a small build network of real nodes (see
// cluster_test.go) whose builder (nodetest.Build) writes, in
// milliseconds, an OCI image layout for an oci spec and a jar and a pom
// for a maven spec, and
// regular nodes bootstrapped to it, with real libp2p hosts, HTTP servers
// and stores.

func sha(b []byte) string { return nodetest.Digest(b) }

// ociSpec is a remote oci spec; n makes a distinct input digest.
func ociSpec(n int) []byte {
	return fmt.Appendf(nil, `version: 1
ecosystem: oci
coordinate: hello:1.%d
source:
  archive:
    url: http://source.invalid/hello-oci-1.%d.tar
    sha256: %064x
recipe:
  oci: {}
builderImage:
  name: busybox
  digest: sha256:%064x
sourceDateEpoch: 1700000000
`, n, n, n+1, 9)
}

// servingCluster starts n build nodes that admit regular nodes.
func servingCluster(t *testing.T, n int) *cluster {
	t.Helper()
	builders := map[int]Builder{}
	for i := range n {
		builders[i] = BuilderFunc(nodetest.Build)
	}
	c := newCluster(t, n, builders)
	c.startAll()
	for _, tn := range c.nodes {
		tn.node.gater.AllowOthers(true)
	}
	return c
}

type testRegular struct {
	t      *testing.T
	dir    string
	o      RegularOptions
	r      *Regular
	url    string
	cancel context.CancelFunc
	done   chan error
}

// startRegular starts a regular node in dir, following the log of
// c.nodes[boot] over libp2p (or logURL, when given).
func startRegular(t *testing.T, c *cluster, dir string, boot int, logURL string) *testRegular {
	t.Helper()
	tr := &testRegular{t: t, dir: dir}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	tr.o = RegularOptions{Data: dir, Policy: c.policy, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, HTTP: ln, LogURL: logURL,
		PollInterval: 50 * time.Millisecond, Logger: logger}
	if boot >= 0 {
		bn := c.nodes[boot].node
		tr.o.Bootstrap = []peer.AddrInfo{{ID: bn.Host().ID(), Addrs: bn.Host().Addrs()}}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r, err := NewRegular(ctx, tr.o)
	if err != nil {
		cancel()
		ln.Close()
		t.Fatalf("NewRegular: %v", err)
	}
	tr.r, tr.url, tr.cancel, tr.done = r, "http://"+ln.Addr().String(), cancel, make(chan error, 1)
	go func() { tr.done <- r.Run(ctx) }()
	t.Cleanup(tr.stop)
	return tr
}

func (tr *testRegular) stop() {
	if tr.r == nil {
		return
	}
	tr.cancel()
	if err := <-tr.done; err != nil {
		tr.t.Errorf("regular node: Run: %v", err)
	}
	tr.r = nil
}

// waitIndexed waits until the regular node has indexed every input.
func (tr *testRegular) waitIndexed(ctx context.Context, inputs ...string) {
	tr.t.Helper()
	for {
		missing := 0
		for _, in := range inputs {
			if _, ok := tr.r.Index().ByInputDigest(in); !ok {
				missing++
			}
		}
		if missing == 0 {
			return
		}
		select {
		case <-ctx.Done():
			tr.t.Fatalf("the regular node indexed %d of %d inputs; status %+v", len(inputs)-missing, len(inputs), tr.r.Status())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// get fetches a path of the regular node's HTTP face.
func (tr *testRegular) get(path string) (int, http.Header, []byte) {
	tr.t.Helper()
	resp, err := http.Get(tr.url + path)
	if err != nil {
		tr.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		tr.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

func (tr *testRegular) status() RegularStatus {
	tr.t.Helper()
	code, _, b := tr.get("/status")
	var st RegularStatus
	if code != http.StatusOK || json.Unmarshal(b, &st) != nil {
		tr.t.Fatalf("GET /status: %d %s", code, b)
	}
	return st
}

// after is a short wait between two looks at a node's state.
func (c *cluster) after() <-chan time.Time { return time.After(20 * time.Millisecond) }

// waitProvided waits until a build node has provided every blob of the
// published entry of input in the DHT (a regular node finds no provider
// before).
func (c *cluster) waitProvided(ctx context.Context, input string) {
	c.t.Helper()
	for {
		for _, tn := range c.nodes {
			if tn.node != nil {
				if _, ok := tn.node.serving.provided.Load(input); ok {
					return
				}
			}
		}
		select {
		case <-ctx.Done():
			c.t.Fatalf("no build node provided the published outputs of %s", input)
		case <-c.after():
		}
	}
}
