package node

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/builder"
)

// Builder builds a spec into an output folder, as [builder.Builder] does:
// the artifacts and OUT/manifest.json. The node signs the attestation
// itself. The real one is [BuildKitBuilder].
type Builder interface {
	Build(ctx context.Context, spec *builder.Spec, outDir string) (*builder.Result, error)
}

// BuilderFunc adapts a function to a [Builder].
type BuilderFunc func(ctx context.Context, spec *builder.Spec, outDir string) (*builder.Result, error)

// Build calls f.
func (f BuilderFunc) Build(ctx context.Context, spec *builder.Spec, outDir string) (*builder.Result, error) {
	return f(ctx, spec, outDir)
}

// BuildKitBuilder builds with BuildKit, with the builder images of Images.
type BuildKitBuilder struct {
	BuildKit *builder.BuildKit
	Images   string
	// AllowHosts are the source hosts that are not public and that
	// builds may fetch from all the same ([builder.RemoteOptions]): the
	// node's [Options].AllowSourceHosts.
	AllowHosts []string
}

// Build builds spec with BuildKit, with no cache: every build of a node
// sees only its own inputs. The spec came from the network: it is built as
// a remote spec (no local files, only public addresses and AllowHosts).
func (b *BuildKitBuilder) Build(ctx context.Context, spec *builder.Spec, outDir string) (*builder.Result, error) {
	return b.BuildKit.Build(ctx, spec, builder.BuildOptions{OutDir: outDir, Images: b.Images, NoCache: true, Remote: true, AllowHosts: b.AllowHosts})
}

// parseSpec parses a spec from the network under the node's rules: those
// of [builder.ParseRemoteSpec], with the operator's AllowSourceHosts.
func (n *Node) parseSpec(data []byte) (*builder.Spec, error) {
	return builder.ParseRemoteSpecWith(data, builder.RemoteOptions{AllowHosts: n.o.AllowSourceHosts})
}

// A build's files in DATA/builds/<input hex>/.
const (
	resultFile      = "result.json" // written last: a folder without it is not a build
	attestationFile = "attestation.sigstore.json"
	manifestFile    = "manifest.json"
	failureFile     = "failure.txt"
)

// Build is a finished build of one input digest on this node.
type Build struct {
	InputDigest string
	Dir         string
	Result      *builder.Result
	Bundle      *attest.Bundle
	// ManifestDigest is "sha256:<hex>" of manifest.json.
	ManifestDigest string
}

// buildStore keeps builds under DATA/builds, one at a time per input.
type buildStore struct {
	dir      string
	builder  Builder
	signer   *attest.Signer
	node     string
	mu       sync.Mutex
	inflight map[string]chan struct{}
	counts   buildCounts // see metrics.go
}

func inputHex(input string) (string, error) {
	h, ok := strings.CutPrefix(input, "sha256:")
	if !ok || len(h) != 64 {
		return "", fmt.Errorf("node: input digest %q is not sha256:<64 hex>", input)
	}
	if _, err := hex.DecodeString(h); err != nil || strings.ToLower(h) != h {
		return "", fmt.Errorf("node: input digest %q is not sha256:<64 lowercase hex>", input)
	}
	return h, nil
}

// get returns the stored build of input, or nil.
func (s *buildStore) get(input string) (*Build, error) {
	h, err := inputHex(input)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(s.dir, h)
	rb, err := readFileLimited(filepath.Join(dir, resultFile), 1<<20)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("node: stored build %s: %w", dir, err)
	}
	var res builder.Result
	if err := json.Unmarshal(rb, &res); err != nil {
		return nil, fmt.Errorf("node: stored build %s: %s: %w", dir, resultFile, err)
	}
	ab, err := readFileLimited(filepath.Join(dir, attestationFile), 1<<20)
	if err != nil {
		return nil, fmt.Errorf("node: stored build %s: %w", dir, err)
	}
	bundle, err := attest.ParseBundle(ab)
	if err != nil {
		return nil, fmt.Errorf("node: stored build %s: %s: %w", dir, attestationFile, err)
	}
	mb, err := readFileLimited(filepath.Join(dir, manifestFile), 64<<20)
	if err != nil {
		return nil, fmt.Errorf("node: stored build %s: %w", dir, err)
	}
	sum := sha256.Sum256(mb)
	return &Build{InputDigest: input, Dir: dir, Result: &res, Bundle: bundle, ManifestDigest: "sha256:" + hex.EncodeToString(sum[:])}, nil
}

// build returns the stored build of spec, or builds it; concurrent calls
// for one input build once.
func (s *buildStore) build(ctx context.Context, spec *builder.Spec) (*Build, error) {
	input, err := spec.InputDigest()
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	for {
		if b, err := s.get(input); b != nil || err != nil {
			return b, err
		}
		s.mu.Lock()
		wait, busy := s.inflight[input]
		if !busy {
			wait = make(chan struct{})
			s.inflight[input] = wait
		}
		s.mu.Unlock()
		if busy {
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		s.counts.started.Add(1)
		b, err := s.run(ctx, spec, input)
		s.counts.finished(err)
		s.mu.Lock()
		delete(s.inflight, input)
		close(wait)
		s.mu.Unlock()
		return b, err
	}
}

// inFlight returns the input digests being built.
func (s *buildStore) inFlight() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.inflight {
		out = append(out, k)
	}
	return out
}

func (s *buildStore) run(ctx context.Context, spec *builder.Spec, input string) (*Build, error) {
	h, _ := inputHex(input)
	var rnd [6]byte
	rand.Read(rnd[:])
	tmp := filepath.Join(s.dir, ".tmp-"+h[:16]+"-"+hex.EncodeToString(rnd[:]))
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	defer os.RemoveAll(tmp)
	started := time.Now()
	res, err := s.builder.Build(ctx, spec, tmp)
	if err != nil {
		return nil, fmt.Errorf("node: building %s: %w", input, err)
	}
	if res == nil {
		return nil, fmt.Errorf("node: building %s: the builder returned neither a result nor an error", input)
	}
	if res.InputDigest != input {
		return nil, fmt.Errorf("node: builder returned a result for input %s, want %s", res.InputDigest, input)
	}
	subjects, prov, err := builder.Provenance(spec, res, "urn:pyrsia-build:node:"+s.node, started, time.Now())
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	bundle, err := attest.Attest(s.signer, subjects, attest.PredicateSLSAProvenanceV1, prov)
	if err != nil {
		return nil, fmt.Errorf("node: signing the attestation: %w", err)
	}
	ab, err := json.Marshal(bundle)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	rb, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, attestationFile), append(ab, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if err := os.WriteFile(filepath.Join(tmp, resultFile), append(rb, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if _, err := os.Stat(filepath.Join(tmp, manifestFile)); err != nil {
		return nil, fmt.Errorf("node: the builder wrote no %s: %w", manifestFile, err)
	}
	dst := filepath.Join(s.dir, h)
	os.RemoveAll(dst) // a folder without result.json: an interrupted earlier build
	if err := os.Rename(tmp, dst); err != nil {
		return nil, fmt.Errorf("node: storing the build: %w", err)
	}
	return s.get(input)
}
