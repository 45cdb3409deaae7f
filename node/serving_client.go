package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
)

// ErrNotVerified is wrapped by the errors of [Pull] and [Fetch] for
// what a node served that does not hold under the policy: an artifact
// not published, bytes that do not match the log, a proof that does not
// verify. (A *attest.VerificationError, errors.Is attest.ErrNotVerified,
// says the same from the checks of the proof bundle.) Use errors.Is.
var ErrNotVerified = errors.New("node: not verified")

// ProofFile is the name of the proof bundle [Pull] and [Fetch] write
// into their output folder.
const ProofFile = "proof.json"

// Limits of what a node may send Pull and Fetch.
const (
	maxPullManifest = 4 << 20
	maxFetchFile    = 1 << 30
)

// PullOptions configure [Pull] and [Fetch].
type PullOptions struct {
	// Node is the base URL of a node's HTTP face ("http://127.0.0.1:7888").
	Node string
	// Policy is the network's first policy: everything the node sends is
	// checked against the policy in force, following the policy changes
	// the proof bundle carries (publish.VerifyProofChain).
	Policy *policy.Policy
	// Trust, when Policy is nil, is the policy's trust: a proof bundle
	// that carries policy changes is then refused.
	Trust *policy.Trust
	// Out is the folder to write: it must not exist, or be empty. It is
	// written whole or not at all.
	Out string
	// Client makes the requests (default http.DefaultClient).
	Client *http.Client
}

// Pulled is what [Pull] or [Fetch] wrote, verified.
type Pulled struct {
	Coordinate  string
	InputDigest string
	// Index is the entry's position in the log, TreeSize the size of the
	// final checkpoint its proof is against, Cosigners who cosigned it.
	Index, TreeSize uint64
	Cosigners       []string
	// Files are the artifacts written (an OCI image: its manifest digest),
	// each with its digest.
	Files []publish.Subject
}

// Pull writes the OCI image published as ref ("name:tag") to o.Out as an
// OCI image layout (oci-layout, index.json naming the published manifest
// digest with the tag, blobs/sha256/...) and its proof bundle
// (ProofFile), after checking every byte against the log under o.Trust:
// the proof bundle (final checkpoint, inclusion, the entry certified by a
// majority of the policy's build nodes, for this coordinate), the
// manifest against the entry's digest, each blob against the manifest.
func Pull(ctx context.Context, ref string, o PullOptions) (*Pulled, error) {
	name, tag, ok := strings.Cut(ref, ":")
	if !ok || name == "" || tag == "" || strings.Contains(ref, "@") || strings.ContainsAny(tag, "/:") {
		return nil, fmt.Errorf("node: pull: reference %q is not name:tag", ref)
	}
	c, err := newPullClient(o)
	if err != nil {
		return nil, err
	}
	pb, e, err := c.published(ctx, publish.EcosystemOCI, ref)
	if err != nil {
		return nil, err
	}
	if len(e.Subjects) != 1 {
		return nil, fmt.Errorf("%w: the entry of %s publishes %d subjects, an image has one", ErrNotVerified, ref, len(e.Subjects))
	}
	digest := e.Subjects[0].Digest
	tmp, err := c.tempDir()
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	blobs := filepath.Join(tmp, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return nil, err
	}
	path := "/v2/" + name + "/manifests/" + digest
	manifest, mediaType, err := c.getBytes(ctx, path, maxPullManifest, "application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json")
	if err != nil {
		return nil, err
	}
	if got := sha256Digest(manifest); got != digest {
		return nil, fmt.Errorf("%w: the node sent a manifest of digest %s for %s, published as %s", ErrNotVerified, got, ref, digest)
	}
	ev, err := c.verify(ctx, attest.Artifact{Name: ref, Open: func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(manifest)), nil
	}}, pb)
	if err != nil {
		return nil, fmt.Errorf("node: pull %s: %w", ref, err)
	}
	var m struct {
		MediaType string       `json:"mediaType"`
		Config    descriptor   `json:"config"`
		Layers    []descriptor `json:"layers"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil || m.Config.Digest == "" {
		return nil, fmt.Errorf("%w: the published manifest %s of %s is not an image manifest: %v", ErrNotVerified, digest, ref, err)
	}
	if m.MediaType != "" {
		mediaType = m.MediaType
	}
	if err := os.WriteFile(filepath.Join(blobs, strings.TrimPrefix(digest, "sha256:")), manifest, 0o644); err != nil {
		return nil, err
	}
	for _, d := range append([]descriptor{m.Config}, m.Layers...) {
		h, err := inputHex(d.Digest)
		if err != nil || d.Size < 0 {
			return nil, fmt.Errorf("%w: the manifest names blob %q of size %d", ErrNotVerified, d.Digest, d.Size)
		}
		if err := c.getFile(ctx, "/v2/"+name+"/blobs/"+d.Digest, filepath.Join(blobs, h), d.Digest, d.Size); err != nil {
			return nil, err
		}
	}
	index := map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests": []map[string]any{{
			"mediaType":   mediaType,
			"digest":      digest,
			"size":        len(manifest),
			"annotations": map[string]string{"org.opencontainers.image.ref.name": tag},
		}},
	}
	ib, _ := json.Marshal(index)
	files := map[string][]byte{"index.json": ib, "oci-layout": []byte(`{"imageLayoutVersion":"1.0.0"}`)}
	out := &Pulled{Coordinate: ref, InputDigest: e.InputDigest, Index: pb.Index, TreeSize: pb.TreeSize, Cosigners: ev.Cosigners,
		Files: []publish.Subject{{Name: ref, Digest: digest}}}
	return out, c.finish(tmp, pb, files)
}

// Fetch writes the files of the Maven coordinate published as
// "group:artifact:version" to o.Out, with its proof bundle (ProofFile),
// after checking each against the log under o.Trust as [Pull] does.
func Fetch(ctx context.Context, coordinate string, o PullOptions) (*Pulled, error) {
	parts := strings.Split(coordinate, ":")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" || strings.ContainsAny(coordinate, "/\\") {
		return nil, fmt.Errorf("node: fetch: coordinate %q is not group:artifact:version", coordinate)
	}
	c, err := newPullClient(o)
	if err != nil {
		return nil, err
	}
	pb, e, err := c.published(ctx, publish.EcosystemMaven, coordinate)
	if err != nil {
		return nil, err
	}
	tmp, err := c.tempDir()
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	out := &Pulled{Coordinate: coordinate, InputDigest: e.InputDigest, Index: pb.Index, TreeSize: pb.TreeSize}
	dir := "/maven2/" + strings.ReplaceAll(parts[0], ".", "/") + "/" + parts[1] + "/" + parts[2] + "/"
	for _, s := range e.Subjects {
		if s.Name != filepath.Base(s.Name) || s.Name == "." || s.Name == ".." || s.Name == ProofFile || strings.ContainsAny(s.Name, "/\\") {
			return nil, fmt.Errorf("%w: the entry of %s names a file %q that cannot be written", ErrNotVerified, coordinate, s.Name)
		}
		p := filepath.Join(tmp, s.Name)
		if err := c.getFile(ctx, dir+url.PathEscape(s.Name), p, s.Digest, -1); err != nil {
			return nil, err
		}
		ev, err := c.verify(ctx, attest.Artifact{Name: s.Name, Open: func() (io.ReadCloser, error) { return os.Open(p) }}, pb)
		if err != nil {
			return nil, fmt.Errorf("node: fetch %s: %s: %w", coordinate, s.Name, err)
		}
		out.Cosigners = ev.Cosigners
		out.Files = append(out.Files, s)
	}
	return out, c.finish(tmp, pb, nil)
}

type pullClient struct {
	o    PullOptions
	base string
	http *http.Client
}

func newPullClient(o PullOptions) (*pullClient, error) {
	switch {
	case o.Policy == nil && o.Trust == nil:
		return nil, errors.New("node: no policy to check the node's answers with")
	case o.Out == "":
		return nil, errors.New("node: no output folder")
	}
	u, err := url.Parse(o.Node)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("node: %q is not a node's http:// URL", o.Node)
	}
	if fi, err := os.Stat(o.Out); err == nil {
		des, derr := os.ReadDir(o.Out)
		if !fi.IsDir() || derr != nil || len(des) > 0 {
			return nil, fmt.Errorf("node: %s exists and is not an empty folder: give another output folder, or remove it", o.Out)
		}
	}
	c := &pullClient{o: o, base: strings.TrimSuffix(o.Node, "/"), http: o.Client}
	if c.http == nil {
		c.http = http.DefaultClient
	}
	return c, nil
}

// published returns the proof bundle of the latest entry of coordinate
// the node knows, checked: its checkpoint final under the trust, the
// entry in its tree, certified by the policy's build nodes, and of this
// ecosystem and coordinate.
func (c *pullClient) published(ctx context.Context, ecosystem, coordinate string) (*publish.ProofBundle, *publish.Entry, error) {
	b, _, err := c.getBytes(ctx, "/v1/status/"+url.PathEscape(coordinate), 4<<20, "application/json")
	if errors.Is(err, errNotFound) {
		return nil, nil, fmt.Errorf("%w: %s is not published in this network (as far as the node knows): request it with 'pyrsia-build publish SPEC --node %s'", ErrNotVerified, coordinate, c.base)
	}
	if err != nil {
		return nil, nil, err
	}
	var st RoundStatus
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, nil, fmt.Errorf("node: %s: its status answer is not JSON: %w", c.base, err)
	}
	if st.State != "final" {
		return nil, nil, fmt.Errorf("%w: %s is %q on the node: no final checkpoint covers it (yet): try again shortly, or see 'pyrsia-build status %s --node %s'", ErrNotVerified, coordinate, st.State, coordinate, c.base)
	}
	if _, err := inputHex(st.InputDigest); err != nil {
		return nil, nil, fmt.Errorf("node: %s: its status names no input digest: %w", c.base, err)
	}
	b, _, err = c.getBytes(ctx, "/v1/proof/"+st.InputDigest, publish.MaxProofBundleSize, publish.ProofBundleV2MediaType+", "+publish.ProofBundleMediaType)
	if err != nil {
		return nil, nil, err
	}
	pb, err := publish.ParseProofBundle(bytes.TrimSpace(b))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the node's proof bundle of %s: %w", ErrNotVerified, coordinate, err)
	}
	cpTrust, entryTrust, err := c.trustOf(pb)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the proof bundle of %s: %w", ErrNotVerified, coordinate, err)
	}
	cp, _, err := cpTrust.VerifyCheckpoint([]byte(pb.Checkpoint))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the proof bundle of %s: checkpoint: %w", ErrNotVerified, coordinate, err)
	}
	if cp.Size != pb.TreeSize {
		return nil, nil, fmt.Errorf("%w: the proof bundle of %s: its checkpoint is for %d entries, the proof for %d", ErrNotVerified, coordinate, cp.Size, pb.TreeSize)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, pb.Index, pb.TreeSize, publish.LeafHash(pb.RawEntry), pb.InclusionProof, cp.Hash); err != nil {
		return nil, nil, fmt.Errorf("%w: the proof bundle of %s: entry %d is not in the tree of %d entries: %w", ErrNotVerified, coordinate, pb.Index, pb.TreeSize, err)
	}
	e, err := pb.Entry()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the proof bundle of %s: %w", ErrNotVerified, coordinate, err)
	}
	if e.Ecosystem != ecosystem || e.Coordinate != coordinate || e.InputDigest != st.InputDigest {
		return nil, nil, fmt.Errorf("%w: the node's proof bundle for %s %s is of %s %s (input %s)", ErrNotVerified, ecosystem, coordinate, e.Ecosystem, e.Coordinate, e.InputDigest)
	}
	if _, err := publish.VerifyEntry(ctx, e, entryTrust); err != nil {
		return nil, nil, fmt.Errorf("node: %s: %w", coordinate, err)
	}
	return pb, e, nil
}

// trustOf returns the trust that judges pb's checkpoint and the one that
// judges its entry: with a first policy, those in force at the
// checkpoint's size and at the entry's index once pb's policy changes
// are followed.
func (c *pullClient) trustOf(pb *publish.ProofBundle) (cp, entry *policy.Trust, err error) {
	if c.o.Policy == nil {
		if len(pb.PolicyChanges) > 0 {
			return nil, nil, fmt.Errorf("it carries %d policy changes: check it with the network's first policy (PullOptions.Policy)", len(pb.PolicyChanges))
		}
		return c.o.Trust, c.o.Trust, nil
	}
	chain, _, err := publish.FollowBundle(pb, c.o.Policy)
	if err != nil {
		return nil, nil, err
	}
	_, cp = chain.ForCheckpoint(pb.TreeSize)
	_, entry = chain.At(pb.Index)
	return cp, entry, nil
}

// verify checks an artifact against pb under the client's policy.
func (c *pullClient) verify(ctx context.Context, a attest.Artifact, pb *publish.ProofBundle) (*publish.ProofEvidence, error) {
	if c.o.Policy != nil {
		return publish.VerifyProofChain(ctx, a, pb, c.o.Policy, publish.ProofOptions{})
	}
	return publish.VerifyProof(ctx, a, pb, c.o.Trust, publish.ProofOptions{})
}

var errNotFound = errors.New("not found")

// getBytes GETs a path of the node, at most limit bytes.
func (c *pullClient) getBytes(ctx context.Context, path string, limit int64, accept string) ([]byte, string, error) {
	resp, err := c.get(ctx, path, accept)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, "", fmt.Errorf("node: GET %s%s: %w", c.base, path, err)
	}
	if int64(len(b)) > limit {
		return nil, "", fmt.Errorf("%w: GET %s%s: over %d bytes", ErrNotVerified, c.base, path, limit)
	}
	return b, resp.Header.Get("Content-Type"), nil
}

func (c *pullClient) get(ctx context.Context, path, accept string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	req.Header.Set("Accept", accept)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("node: asking the node at %s: %w", c.base, err)
	}
	if resp.StatusCode == http.StatusOK {
		return resp, nil
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	err = fmt.Errorf("node: GET %s%s: %s: %s", c.base, path, resp.Status, bytes.TrimSpace(msg))
	if resp.StatusCode == http.StatusNotFound {
		err = fmt.Errorf("%w (%w)", errNotFound, err)
	}
	return nil, err
}

// getFile GETs a path of the node into file, checking its digest and,
// when not -1, its size.
func (c *pullClient) getFile(ctx context.Context, path, file, digest string, size int64) error {
	resp, err := c.get(ctx, path, "*/*")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	defer f.Close()
	limit := int64(maxFetchFile)
	if size >= 0 {
		limit = size
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fmt.Errorf("node: GET %s%s: %w", c.base, path, err)
	}
	switch {
	case n > limit:
		return fmt.Errorf("%w: GET %s%s: more than the %d bytes of %s", ErrNotVerified, c.base, path, limit, digest)
	case size >= 0 && n != size:
		return fmt.Errorf("%w: GET %s%s: %d bytes, want %d", ErrNotVerified, c.base, path, n, size)
	case hexDigest(h) != digest:
		return fmt.Errorf("%w: GET %s%s: the bytes hash to %s, not %s", ErrNotVerified, c.base, path, hexDigest(h), digest)
	}
	return f.Close()
}

func (c *pullClient) tempDir() (string, error) {
	parent := filepath.Dir(filepath.Clean(c.o.Out))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return "", err
	}
	return os.MkdirTemp(parent, "."+filepath.Base(c.o.Out)+".tmp-*")
}

// finish writes the proof bundle and files into tmp, syncs and renames it
// to the output folder.
func (c *pullClient) finish(tmp string, pb *publish.ProofBundle, files map[string][]byte) error {
	b, err := json.Marshal(pb) // the canonical form verify reads
	if err != nil {
		return err
	}
	if files == nil {
		files = map[string][]byte{}
	}
	files[ProofFile] = append(b, '\n')
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), data, 0o644); err != nil {
			return err
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if fi, err := os.Stat(c.o.Out); err == nil && fi.IsDir() {
		if err := os.Remove(c.o.Out); err != nil { // empty, checked at start
			return fmt.Errorf("node: %s: %w", c.o.Out, err)
		}
	}
	if err := os.Rename(tmp, c.o.Out); err != nil {
		return fmt.Errorf("node: writing %s: %w", c.o.Out, err)
	}
	return nil
}

func sha256Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

func hexDigest(h hash.Hash) string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }
