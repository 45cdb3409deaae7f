package node

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pyrsia/pyrsia-build/builder"
	"github.com/pyrsia/pyrsia-build/publish"
)

// The regular-node tests run a small build network of real nodes (see
// cluster_test.go) whose builder writes, in milliseconds, an OCI image
// layout for an oci spec and a jar and a pom for a maven spec, and
// regular nodes bootstrapped to it, with real libp2p hosts, HTTP servers
// and stores.

func sha(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// servingBuild builds oci and maven specs; the bytes are a function of
// the input digest.
func servingBuild(ctx context.Context, spec *builder.Spec, out string) (*builder.Result, error) {
	input, err := spec.InputDigest()
	if err != nil {
		return nil, err
	}
	art := filepath.Join(out, "artifacts")
	if err := os.MkdirAll(art, 0o755); err != nil {
		return nil, err
	}
	res := &builder.Result{InputDigest: input, SourceDigest: "sha256:" + spec.Source.Archive.SHA256, BuilderImageDigest: spec.BuilderImage.Digest}
	var om builder.OutputManifest
	om.Version = builder.ManifestVersion
	if spec.Ecosystem == publish.EcosystemOCI {
		layer, config, manifest := testImage(input)
		blobs := filepath.Join(art, "blobs", "sha256")
		if err := os.MkdirAll(blobs, 0o755); err != nil {
			return nil, err
		}
		for _, b := range [][]byte{layer, config, manifest} {
			if err := os.WriteFile(filepath.Join(blobs, sha(b)[7:]), b, 0o644); err != nil {
				return nil, err
			}
		}
		idx := fmt.Sprintf(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"%s","size":%d}]}`, sha(manifest), len(manifest))
		os.WriteFile(filepath.Join(art, "index.json"), []byte(idx), 0o644)
		os.WriteFile(filepath.Join(art, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
		am, err := builder.ManifestOCILayout(ctx, spec.Coordinate, art)
		if err != nil {
			return nil, err
		}
		am.Path = "artifacts"
		om.Artifacts = append(om.Artifacts, am)
		res.Artifacts = []builder.Artifact{{Name: spec.Coordinate, Digest: sha(manifest), Path: "artifacts", MediaType: "application/vnd.oci.image.manifest.v1+json"}}
	} else {
		files := mavenFiles(spec.Coordinate, input)
		for _, name := range slices.Sorted(maps.Keys(files)) {
			data := files[name]
			p := filepath.Join(art, name)
			if err := os.WriteFile(p, data, 0o644); err != nil {
				return nil, err
			}
			am, err := builder.ManifestFile(ctx, name, p)
			if err != nil {
				return nil, err
			}
			am.Path = "artifacts/" + name
			om.Artifacts = append(om.Artifacts, am)
			res.Artifacts = append(res.Artifacts, builder.Artifact{Name: name, Digest: sha(data), Path: "artifacts/" + name})
		}
	}
	if err := builder.WriteManifest(filepath.Join(out, "manifest.json"), &om); err != nil {
		return nil, err
	}
	return res, nil
}

// testImage returns an image's layer, config and manifest.
func testImage(input string) (layer, config, manifest []byte) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := []byte("hello from " + input + "\n")
	tw.WriteHeader(&tar.Header{Name: "hello.txt", Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(1700000000, 0), Typeflag: tar.TypeReg})
	tw.Write(body)
	tw.Close()
	layer = buf.Bytes()
	config = fmt.Appendf(nil, `{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]},"config":{"Cmd":["cat","/hello.txt"]}}`, sha(layer))
	manifest = fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}`,
		sha(config), len(config), sha(layer), len(layer))
	return layer, config, manifest
}

// mavenFiles returns the jar and pom of a coordinate g:a:v.
func mavenFiles(coordinate, input string) map[string][]byte {
	g, a, v, _ := splitGAV(coordinate)
	base := a + "-" + v
	return map[string][]byte{
		base + ".jar": testJar(input),
		base + ".pom": fmt.Appendf(nil, "<project><groupId>%s</groupId><artifactId>%s</artifactId><version>%s</version><!-- %s --></project>\n", g, a, v, input),
	}
}

// testJar returns a small jar whose bytes depend on input only.
func testJar(input string) []byte {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	w, _ := zw.CreateHeader(&zip.FileHeader{Name: "hello.txt", Method: zip.Store, Modified: time.Unix(1700000000, 0).UTC()})
	io.WriteString(w, "hello from "+input+"\n")
	zw.Close()
	return buf.Bytes()
}

func splitGAV(c string) (g, a, v string, ok bool) {
	var parts [3]string
	n := 0
	start := 0
	for i := 0; i <= len(c); i++ {
		if i == len(c) || c[i] == ':' {
			if n == 3 {
				return "", "", "", false
			}
			parts[n] = c[start:i]
			n++
			start = i + 1
		}
	}
	return parts[0], parts[1], parts[2], n == 3
}

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
		builders[i] = BuilderFunc(servingBuild)
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
