package serve_test

// Real clients against the OCI face: crane, skopeo and the OCI
// distribution-spec conformance suite pull a real image (the busybox
// builder image that `pyrsia-build image make busybox` makes) published
// by a real signed log entry through a real log and its index.

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/logservice"
	"github.com/pyrsia/pyrsia-build/publish/serve"
	"github.com/pyrsia/pyrsia-build/publish/store"
	"github.com/pyrsia/pyrsia-build/publish/tlog"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"golang.org/x/mod/sumdb/note"
)

// requireInCI skips locally and fails in CI, where nothing may skip.
func requireInCI(t *testing.T, reason string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set, so not skipping: %s", reason)
	}
	t.Skip(reason)
}

// tool finds a client: env names a path that overrides PATH.
func tool(t *testing.T, name, env, install string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		return p
	}
	p, err := exec.LookPath(name)
	if err != nil {
		requireInCI(t, fmt.Sprintf("%s is not on PATH (nor in %s): %s", name, env, install))
	}
	return p
}

const (
	coordinate = "busybox:1.36"
	repo       = "busybox"
	tag        = "1.36"
)

// published is a node's OCI face serving one published image.
type published struct {
	host     string // 127.0.0.1:PORT
	manifest string // digest
	config   string // digest
	layers   []string
}

// publishBusybox puts the busybox builder image into a store, publishes
// it as busybox:1.36 through a real log (a signed attestation, the entry
// appended, indexed by the log service), and serves it on loopback.
func publishBusybox(t *testing.T) *published {
	t.Helper()
	images := os.Getenv("PYRSIA_IMAGES")
	if images == "" {
		requireInCI(t, "PYRSIA_IMAGES is not set: make the image with 'pyrsia-build image make --store DIR busybox' and set PYRSIA_IMAGES=DIR")
	}
	layout := filepath.Join(images, "busybox")
	var idx struct {
		Manifests []struct {
			Digest string `json:"digest"`
		} `json:"manifests"`
	}
	b, err := os.ReadFile(filepath.Join(layout, "index.json"))
	if err != nil {
		requireInCI(t, fmt.Sprintf("no busybox image in PYRSIA_IMAGES: %v (make it with 'pyrsia-build image make --store %s busybox')", err, images))
	}
	if err := json.Unmarshal(b, &idx); err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("%s/index.json: %v, want one manifest", layout, err)
	}
	p := &published{manifest: idx.Manifests[0].Digest}
	blob := func(d string) string {
		return filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(d, "sha256:"))
	}
	mb, err := os.ReadFile(blob(p.manifest))
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Config struct{ Digest string }
		Layers []struct{ Digest string }
	}
	if err := json.Unmarshal(mb, &m); err != nil {
		t.Fatal(err)
	}
	p.config = m.Config.Digest
	for _, l := range m.Layers {
		p.layers = append(p.layers, l.Digest)
	}

	ctx := t.Context()
	st, err := store.Open(t.TempDir(), store.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, d := range append([]string{p.manifest, p.config}, p.layers...) {
		f, err := os.Open(blob(d))
		if err != nil {
			t.Fatal(err)
		}
		err = st.Put(ctx, d, -1, f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
	}

	// The entry: a build node's signed statement, as publish makes it.
	signer, err := testSigner()
	if err != nil {
		t.Fatal(err)
	}
	spec := []byte(`{"ecosystem":"oci","coordinate":"` + coordinate + `","source":{"note":"the busybox builder image"}}`)
	prov, err := attest.NewProvenance(attest.ProvenanceOptions{
		BuildType:          "https://pyrsia.io/build/v1",
		ExternalParameters: map[string]any{"spec": coordinate},
		BuilderID:          "https://pyrsia.io/node/test",
	})
	if err != nil {
		t.Fatal(err)
	}
	bundle, err := attest.Attest(signer, []*intoto.ResourceDescriptor{{
		Name: coordinate, Digest: map[string]string{"sha256": strings.TrimPrefix(p.manifest, "sha256:")},
	}}, "https://slsa.dev/provenance/v1", prov)
	if err != nil {
		t.Fatal(err)
	}
	e, err := publish.NewEntry("oci", coordinate, spec, []*dssepb.Envelope{bundle.Envelope()})
	if err != nil {
		t.Fatal(err)
	}
	eb, err := e.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	const origin = "pyrsia-build.example/serve-test"
	skey, vkey, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{7}, 32)), "log")
	if err != nil {
		t.Fatal(err)
	}
	ls, err := witness.NewLogSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	lv, err := witness.NewLogVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	svc, err := logservice.Open(ctx, logservice.Options{
		Log:           tlog.Options{Dir: filepath.Join(t.TempDir(), "log"), Origin: origin, Signer: ls},
		Final:         logservice.CosignedBy(origin, lv, nil, 0),
		RetryInterval: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		svc.Close()
	})
	// An unrelated entry first, so the image is not at log index 0.
	other := []byte(`{"ecosystem":"oci","coordinate":"other:1"}`)
	oe, err := publish.NewEntry("oci", "other:1", other, []*dssepb.Envelope{mustAttest(t, signer, "other:1", strings.Repeat("ab", 32))})
	if err != nil {
		t.Fatal(err)
	}
	ob, _ := oe.MarshalBinary()
	for _, entry := range [][]byte{ob, eb} {
		if _, err := svc.Append(ctx, entry); err != nil {
			t.Fatal(err)
		}
	}
	if recs := svc.Index().ByCoordinate("oci", coordinate); len(recs) != 1 {
		t.Fatalf("index: %d records for %s, want 1", len(recs), coordinate)
	}

	mux := http.NewServeMux()
	mux.Handle("/v2/", serve.NewOCI(serve.OCIOptions{
		Index: svc.Index(), Content: serve.StoreContent{Store: st},
		Hint: "request it with: pyrsia-build publish SPEC --node ADDR", Logger: slog.New(slog.DiscardHandler),
	}))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p.host = strings.TrimPrefix(srv.URL, "http://")
	return p
}

// testSigner is one build node's key, made once (scrypt is slow).
var testSigner = sync.OnceValues(func() (*attest.Signer, error) {
	kp, err := attest.GenerateKeyPair([]byte("pw"))
	if err != nil {
		return nil, err
	}
	return attest.LoadSigner(kp.Private, []byte("pw"))
})

func mustAttest(t *testing.T, s *attest.Signer, name, hex string) *dssepb.Envelope {
	t.Helper()
	prov, err := attest.NewProvenance(attest.ProvenanceOptions{BuildType: "https://pyrsia.io/build/v1", BuilderID: "https://pyrsia.io/node/test", ExternalParameters: map[string]any{"spec": name}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := attest.Attest(s, []*intoto.ResourceDescriptor{{Name: name, Digest: map[string]string{"sha256": hex}}}, "https://slsa.dev/provenance/v1", prov)
	if err != nil {
		t.Fatal(err)
	}
	return b.Envelope()
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", filepath.Base(name), strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out)
}

// layoutManifest returns the digest of the one manifest in an OCI layout.
func layoutManifest(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	var idx struct{ Manifests []struct{ Digest string } }
	if err := json.Unmarshal(b, &idx); err != nil || len(idx.Manifests) != 1 {
		t.Fatalf("%s/index.json %s: %v, want one manifest", dir, b, err)
	}
	return idx.Manifests[0].Digest
}

func TestCrane(t *testing.T) {
	crane := tool(t, "crane", "PYRSIA_CRANE", `PATH="$(scripts/install-crane.sh):$PATH"`)
	p := publishBusybox(t)
	ref := p.host + "/" + repo + ":" + tag
	for _, r := range []string{ref, p.host + "/library/" + repo + ":" + tag} {
		if got := strings.TrimSpace(run(t, crane, "digest", "--insecure", r)); got != p.manifest {
			t.Errorf("crane digest %s = %s, want %s", r, got, p.manifest)
		}
	}
	m := run(t, crane, "manifest", "--insecure", ref)
	if got := digestOf([]byte(m)); got != p.manifest {
		t.Errorf("crane manifest: bytes hash to %s, want %s", got, p.manifest)
	}
	if got := strings.Fields(run(t, crane, "ls", "--insecure", p.host+"/"+repo)); len(got) != 1 || got[0] != tag {
		t.Errorf("crane ls = %q, want [%s]", got, tag)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	run(t, crane, "pull", "--insecure", "--format=oci", ref, dir)
	if got := layoutManifest(t, dir); got != p.manifest {
		t.Errorf("crane pull: the layout's manifest is %s, want the published %s", got, p.manifest)
	}
	for _, d := range append([]string{p.config}, p.layers...) {
		b, err := os.ReadFile(filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(d, "sha256:")))
		if err != nil || digestOf(b) != d {
			t.Errorf("crane pull: blob %s: %v", d, err)
		}
	}
	// An unpublished tag: crane fails with the registry's message and hint.
	cmd := exec.CommandContext(t.Context(), crane, "manifest", "--insecure", p.host+"/"+repo+":9.9")
	out, err := cmd.CombinedOutput()
	if err == nil || !bytes.Contains(out, []byte("MANIFEST_UNKNOWN")) || !bytes.Contains(out, []byte("pyrsia-build publish")) {
		t.Errorf("crane manifest of an unpublished tag: %v\n%s\nwant MANIFEST_UNKNOWN with the hint", err, out)
	}
}

func TestSkopeo(t *testing.T) {
	skopeo := tool(t, "skopeo", "PYRSIA_SKOPEO", "apt-get install skopeo (scripts/install-debian-deps.sh)")
	p := publishBusybox(t)
	tmp := t.TempDir()
	policy := filepath.Join(tmp, "policy.json")
	if err := os.WriteFile(policy, []byte(`{"default":[{"type":"insecureAcceptAnything"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{repo, "library/" + repo} {
		dir := filepath.Join(tmp, strings.ReplaceAll(name, "/", "-"))
		// The busybox image's layer is an uncompressed tar, which skopeo
		// gzips on its way into an OCI layout unless told not to: that
		// would make another manifest. --preserve-digests fails instead
		// of changing anything.
		run(t, skopeo, "--policy", policy, "copy", "--src-tls-verify=false",
			"--preserve-digests", "--dest-oci-accept-uncompressed-layers",
			"docker://"+p.host+"/"+name+":"+tag, "oci:"+dir)
		if got := layoutManifest(t, dir); got != p.manifest {
			t.Errorf("skopeo copy of %s: the layout's manifest is %s, want the published %s", name, got, p.manifest)
		}
	}
}

// The counts of a Ginkgo run: "Ran 18 of 77 Specs" and
// "18 Passed | 0 Failed | 0 Pending | 59 Skipped".
var ginkgoCounts = regexp.MustCompile(`(\d+) Passed \| (\d+) Failed \| (\d+) Pending \| (\d+) Skipped`)

func TestOCIConformance(t *testing.T) {
	suite := tool(t, "oci-conformance", "PYRSIA_OCI_CONFORMANCE", `PATH="$(scripts/install-oci-conformance.sh):$PATH"`)
	p := publishBusybox(t)
	report := t.TempDir()
	cmd := exec.CommandContext(t.Context(), suite, "-test.v", "-ginkgo.no-color")
	cmd.Dir = report
	cmd.Env = append(os.Environ(),
		"OCI_ROOT_URL=http://"+p.host,
		"OCI_NAMESPACE="+repo,
		"OCI_TEST_PULL=1",
		"OCI_TAG_NAME="+tag,
		"OCI_MANIFEST_DIGEST="+p.manifest,
		"OCI_BLOB_DIGEST="+p.config,
		"OCI_REPORT_DIR="+report,
		"OCI_HIDE_SKIPPED_WORKFLOWS=1",
	)
	out, err := cmd.CombinedOutput()
	c := ginkgoCounts.FindSubmatch(out)
	if err != nil || c == nil {
		t.Fatalf("the conformance suite failed: %v\n%s", err, out)
	}
	t.Logf("OCI conformance, pull: %s passed, %s failed, %s pending, %s skipped", c[1], c[2], c[3], c[4])
	// Of the suite's pull specs, 14 run against published content (the
	// others push their own set-up first, and are skipped): every one of
	// them must pass.
	if string(c[2]) != "0" || string(c[1]) != "14" {
		t.Errorf("conformance: %s passed, %s failed; want all 14 pull specs to pass\n%s", c[1], c[2], out)
	}
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}
