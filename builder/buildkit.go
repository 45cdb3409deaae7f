package builder

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/moby/buildkit/client"
	spb "github.com/moby/buildkit/sourcepolicy/pb"
	"github.com/moby/buildkit/util/progress/progressui"
	"github.com/tonistiigi/fsutil"
	"golang.org/x/sync/errgroup"
)

// BuildKit builds specs on a buildkitd: OCI images through the Dockerfile
// frontend, Maven projects through LLB, both with the network off, the
// builder image from a local OCI layout, and SOURCE_DATE_EPOCH applied.
type BuildKit struct {
	c *client.Client
	// ProgressMode is progressui's display mode for BuildOptions.Progress:
	// "auto" (a compact display on a terminal, plain lines otherwise),
	// "plain", "tty" or "quiet". Empty means auto.
	ProgressMode string
}

// NewBuildKit connects to the buildkitd at addr (unix:///path/to/sock) and
// checks that it has a worker.
func NewBuildKit(ctx context.Context, addr string) (*BuildKit, error) {
	c, err := client.New(ctx, addr)
	if err != nil {
		return nil, fmt.Errorf("builder: connecting to buildkitd at %s: %w", addr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ws, err := c.ListWorkers(ctx)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("builder: buildkitd at %s does not answer: %w", addr, err)
	}
	if len(ws) == 0 {
		c.Close()
		return nil, fmt.Errorf("builder: buildkitd at %s has no worker", addr)
	}
	return &BuildKit{c: c}, nil
}

// Close closes the connection.
func (b *BuildKit) Close() error { return b.c.Close() }

// builderImageStore is the OCI store ID the builder image is known by.
const builderImageStore = "pyrsia-builder-image"

// Build implements [Builder].
//
// Every build sees only its own inputs, even on a buildkitd that other
// specs use (see [isolation]).
func (b *BuildKit) Build(ctx context.Context, spec *Spec, opts BuildOptions) (*Result, error) {
	if opts.Remote {
		if err := spec.ValidateRemoteWith(RemoteOptions{AllowHosts: opts.AllowHosts}); err != nil {
			return nil, err
		}
	}
	input, err := spec.InputDigest()
	if err != nil {
		return nil, err
	}
	return b.build(ctx, spec, input, opts)
}

// isolation is what keeps one build from seeing another's state on a
// shared buildkitd, whose cache persists between builds:
//
//   - Cache mounts (RUN --mount=type=cache) live in a namespace of their
//     own per build, BUILDKIT_CACHE_MOUNT_NS, made of the input digest and
//     a random nonce; the namespace is part of every mount's id, so no
//     other build (not even a rebuild of the same spec, which must not
//     depend on what an earlier run left) can name them. Namespacing is
//     chosen over pruning between builds because it holds by
//     construction: a prune races with concurrent builds on the same
//     daemon (it would empty a running build's mount between two of its
//     steps), and a build that crashes before its prune would leave its
//     mounts to the next. What a build leaves is garbage no one can name;
//     buildkitd's GC collects it (the default policy drops unused cache
//     mounts over 512 MB after 48 hours).
//   - The build cache is never read: every step runs (no-cache for the
//     Dockerfile frontend, IgnoreCache for the Maven LLB), so no step's
//     result can come from another spec's run of a step that merely
//     looked the same (a cache key does not cover what a step read from
//     a cache mount, the clock, or chance).
//   - The local source is synced under a session key of its own, so
//     BuildKit's incremental sync of the "context" and "source" folders
//     never starts from another build's files. The one exception is a
//     locked Maven build's repository, kept under its lock's key and
//     checked in the container before Maven sees it (see repoKeep).
//   - The Dockerfile frontend is told it is already the frontend to run
//     ("cmdline" set), so a "# syntax=" line or BUILDKIT_SYNTAX never makes
//     it fetch another frontend image; the source policy would deny that
//     fetch too. Specs may not set BUILDKIT_* build args at all.
type isolation struct {
	// ns is the build's cache-mount namespace and session key.
	ns string
}

func newIsolation(input string) (isolation, error) {
	var nonce [16]byte
	if _, err := rand.Read(nonce[:]); err != nil {
		return isolation{}, fmt.Errorf("builder: making a build nonce: %w", err)
	}
	return isolation{ns: "pyrsia-" + strings.TrimPrefix(input, "sha256:") + "-" + hex.EncodeToString(nonce[:])}, nil
}

func (b *BuildKit) build(ctx context.Context, spec *Spec, input string, opts BuildOptions) (*Result, error) {
	iso, err := newIsolation(input)
	if err != nil {
		return nil, err
	}
	if err := checkOutDir(opts.OutDir); err != nil {
		return nil, err
	}
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	var times phaseTimes
	times.start()
	// The lock's files are fetched and checked before anything is written
	// to the output folder: a repository that serves other bytes fails the
	// build with nothing half-written.
	var mo mavenRun
	var keep repoKeep
	if spec.Ecosystem == "maven" && spec.Recipe.Maven.Lock != nil {
		repo, cache, cleanup, err := prepareLockRepo(ctx, spec.Recipe.Maven.Lock, opts, progress)
		if err != nil {
			return nil, err
		}
		defer cleanup()
		mo.repo = repo
		if lfs, ok := repo.(*lockFS); ok && keepLockRepos {
			if keep, err = keepRepo(cache, spec.Recipe.Maven.Lock.SHA256); err != nil {
				// A speed-up only: without a key the files are sent afresh.
				fmt.Fprintf(progress, "maven: the lock's repository is sent afresh: %v\n", err)
			} else {
				mo.repoKey, mo.repoSums = keep.key(), lfs.sums()
			}
		}
		times.done("maven lock files")
	}
	layout, err := ResolveImage(opts.Images, spec.BuilderImage)
	if err != nil {
		return nil, err
	}
	srcDir, err := os.MkdirTemp("", "pyrsia-src-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(srcDir)
	var guard *netGuard
	if opts.Remote {
		if guard, err = newNetGuard(RemoteOptions{AllowHosts: opts.AllowHosts}); err != nil {
			return nil, err
		}
	}
	// The source too is fetched and checked before the output folder is
	// made: a source with another digest leaves nothing there.
	sourceDigest, err := fetchSource(ctx, spec, opts.SpecDir, srcDir, guard, mavenRepoOpts{opts.MavenRepository, opts.MavenCache}, progress)
	if err != nil {
		return nil, err
	}
	times.done("source")
	if err := prepareOutDir(opts.OutDir); err != nil {
		return nil, err
	}
	store, err := local.NewStore(layout)
	if err != nil {
		return nil, fmt.Errorf("builder: builder image %s: %w", spec.BuilderImage.Name, err)
	}
	logFile, err := os.Create(filepath.Join(opts.OutDir, "build.log"))
	if err != nil {
		return nil, err
	}
	defer logFile.Close()

	artifactsDir := filepath.Join(opts.OutDir, "artifacts")
	var solve func(ctx context.Context, ch chan *client.SolveStatus) error
	switch spec.Ecosystem {
	case "oci":
		solve = func(ctx context.Context, ch chan *client.SolveStatus) error {
			return b.solveDockerfile(ctx, spec, iso, srcDir, store, filepath.Join(artifactsDir, "image"), ch)
		}
	case "maven":
		solve = func(ctx context.Context, ch chan *client.SolveStatus) error {
			return b.solveMaven(ctx, spec, iso, srcDir, store, artifactsDir, mo, ch)
		}
	default:
		return nil, fmt.Errorf("builder: ecosystem %q is not supported", spec.Ecosystem)
	}
	solveCtx, cancelSolve := context.WithCancel(ctx)
	defer cancelSolve()
	if lfs, ok := mo.repo.(*lockFS); ok {
		lfs.onDamage = cancelSolve
	}
	if err := b.run(solveCtx, solve, progress, logFile); err != nil {
		logFile.Sync()
		log, _ := os.ReadFile(logFile.Name())
		if mo.repo != nil {
			if nl := notLocked(string(log), err); nl != nil {
				err = nl
			}
		}
		if lfs, ok := mo.repo.(*lockFS); ok {
			if d := lfs.damaged(); d != nil {
				err = d
			}
		}
		if mo.repoKey != "" {
			if rc := repoCopyFailed(string(log)); rc != nil {
				keep.drop()
				err = rc
			}
		}
		return nil, &BuildError{Err: err, LogTail: tail(string(log), 25), LogPath: logFile.Name()}
	}
	times.done("solve")

	res := &Result{InputDigest: input, Coordinate: spec.Coordinate, SourceDigest: sourceDigest, BuilderImageDigest: spec.BuilderImage.Digest}
	m := &OutputManifest{Version: 1}
	if spec.Ecosystem == "oci" {
		am, err := ManifestOCILayout(ctx, spec.Coordinate, filepath.Join(artifactsDir, "image"))
		if err != nil {
			return nil, err
		}
		am.Path = "artifacts/image"
		m.Artifacts = append(m.Artifacts, am)
		res.Artifacts = append(res.Artifacts, Artifact{Name: spec.Coordinate, Digest: am.Digest, Path: "artifacts/image", MediaType: "application/vnd.oci.image.manifest.v1+json"})
	} else {
		files, err := os.ReadDir(artifactsDir)
		if err != nil {
			return nil, err
		}
		if len(files) == 0 {
			return nil, &BuildError{Err: errors.New("the build produced no jar or pom"), LogPath: logFile.Name()}
		}
		for _, f := range files {
			// The build's own code decides what lands in /out: a symlink
			// there must not make the host read (and publish) its files.
			if !f.Type().IsRegular() {
				return nil, &BuildError{Err: fmt.Errorf("the build's output %s is not a regular file (%s)", f.Name(), f.Type()), LogPath: logFile.Name()}
			}
		}
		if len(spec.Recipe.Maven.Artifacts) == 0 {
			// A consumer of the modules needs the parent poms they name.
			added, err := addReactorParents(srcDir, artifactsDir)
			if err != nil {
				return nil, err
			}
			if len(added) > 0 {
				if files, err = os.ReadDir(artifactsDir); err != nil {
					return nil, err
				}
			}
		}
		for _, f := range files {
			am, err := ManifestFile(ctx, f.Name(), filepath.Join(artifactsDir, f.Name()))
			if err != nil {
				return nil, err
			}
			am.Path = path.Join("artifacts", f.Name())
			m.Artifacts = append(m.Artifacts, am)
			res.Artifacts = append(res.Artifacts, Artifact{Name: f.Name(), Digest: am.Digest, Path: path.Join("artifacts", f.Name()), MediaType: mavenMediaType(f.Name())})
		}
	}
	if err := WriteManifest(filepath.Join(opts.OutDir, "manifest.json"), m); err != nil {
		return nil, err
	}
	times.done("outputs")
	times.write(logFile)
	if mo.repo != nil {
		res.MavenLockDigest = "sha256:" + spec.Recipe.Maven.Lock.SHA256
	}
	if spec.Ecosystem == "maven" && spec.Recipe.Maven.CompareUpstream {
		up, err := CompareUpstream(ctx, opts.OutDir, spec.Coordinate, opts.MavenRepository)
		if err != nil {
			// The build asked to be judged against the release: without
			// it, its output is not what was asked for. Keep the log.
			os.RemoveAll(artifactsDir)
			os.Remove(filepath.Join(opts.OutDir, "manifest.json"))
			return nil, fmt.Errorf("%w (recipe.maven.compareUpstream is set: the artifacts were removed from %s; unset it to keep a build of an unpublished coordinate)", err, opts.OutDir)
		}
		res.Upstream = up
		verdict := "matches the official release"
		if !up.Same {
			verdict = "differs from the official release ('pyrsia-build compare --upstream OUT' shows how)"
		}
		fmt.Fprintf(progress, "%s: %s\n", spec.Coordinate, verdict)
	}
	return res, nil
}

func mavenMediaType(name string) string {
	switch {
	case strings.HasSuffix(name, ".jar"):
		return "application/java-archive"
	case strings.HasSuffix(name, ".pom"):
		return "application/xml"
	}
	return "application/octet-stream"
}

// BuildError is a failed build, with the end of its log.
type BuildError struct {
	Err     error
	LogTail string
	LogPath string
}

func (e *BuildError) Error() string {
	msg := "build failed: " + e.Err.Error()
	if e.LogTail != "" {
		msg += "\n--- last lines of " + e.LogPath + " ---\n" + e.LogTail
	}
	return msg
}
func (e *BuildError) Unwrap() error { return e.Err }

// checkOutDir checks that the output folder is missing or empty.
func checkOutDir(dir string) error {
	if dir == "" {
		return errors.New("builder: no output folder")
	}
	des, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	if len(des) > 0 {
		return fmt.Errorf("builder: output folder %s is not empty", dir)
	}
	return nil
}

func prepareOutDir(dir string) error {
	if err := checkOutDir(dir); err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return os.Mkdir(filepath.Join(dir, "artifacts"), 0o755)
}

// keepLockRepos says whether a locked build's repository, sent from the
// cache, is kept by BuildKit for the next build of its lock (see
// repoKeep). Benchmarks turn it off to measure the fresh sync.
var keepLockRepos = true

// prepareLockRepo makes the local repository the build sees: the lock's
// files, fetched from the configured Maven repository (or the cache) and
// checked. With a cache, the files are sent to BuildKit from the cache
// entries themselves, checked as they are sent (see [lockFS]); without
// one, they are fetched into a temporary folder that cleanup removes.
// cache is the cache folder, "" for none.
func prepareLockRepo(ctx context.Context, ref *LockRef, opts BuildOptions, progress io.Writer) (repo fsutil.FS, cache string, cleanup func(), err error) {
	cleanup = func() {}
	load := loadLock
	if opts.Remote {
		load = loadRemoteLock
	}
	l, err := load(ref, opts.SpecDir)
	if err != nil {
		return nil, "", cleanup, err
	}
	rc, cache, err := mavenRepoOpts{opts.MavenRepository, opts.MavenCache}.resolve()
	if err != nil {
		return nil, "", cleanup, err
	}
	var n int
	if cache != "" {
		var lfs *lockFS
		lfs, n, err = newLockFS(ctx, l, rc.client(), cache, progress)
		if err != nil {
			return nil, "", cleanup, fmt.Errorf("builder: %w", err)
		}
		repo = lfs
	} else {
		dir, err := os.MkdirTemp("", "pyrsia-m2-*")
		if err != nil {
			return nil, "", cleanup, err
		}
		cleanup = func() { os.RemoveAll(dir) }
		if n, err = lockRepo(ctx, l, rc.client(), "", dir, progress); err != nil {
			cleanup()
			return nil, "", func() {}, fmt.Errorf("builder: %w", err)
		}
		if repo, err = fsutil.NewFS(dir); err != nil {
			cleanup()
			return nil, "", func() {}, err
		}
	}
	fmt.Fprintf(progress, "maven: %d locked files ready (%d fetched, %d from the cache)\n", len(l.Files), n, len(l.Files)-n)
	return repo, cache, cleanup, nil
}

// run solves, showing progress to the user and writing plain progress to
// the build log.
func (b *BuildKit) run(ctx context.Context, solve func(context.Context, chan *client.SolveStatus) error, progress, log io.Writer) error {
	mode := progressui.DisplayMode(b.ProgressMode)
	if mode == "" {
		mode = progressui.AutoMode
	}
	if f, ok := progress.(*os.File); mode == progressui.AutoMode && (!ok || !isTerminal(f)) {
		mode = progressui.PlainMode
	}
	user, err := progressui.NewDisplay(progress, mode)
	if err != nil {
		return err
	}
	plain, err := progressui.NewDisplay(log, progressui.PlainMode)
	if err != nil {
		return err
	}
	ch := make(chan *client.SolveStatus)
	userCh := make(chan *client.SolveStatus)
	logCh := make(chan *client.SolveStatus)
	eg, ectx := errgroup.WithContext(ctx)
	eg.Go(func() error { return solve(ectx, ch) })
	eg.Go(func() error {
		defer close(userCh)
		defer close(logCh)
		for s := range ch {
			userCh <- s
			logCh <- s
		}
		return nil
	})
	eg.Go(func() error { _, err := user.UpdateFrom(context.WithoutCancel(ectx), userCh); return err })
	eg.Go(func() error { _, err := plain.UpdateFrom(context.WithoutCancel(ectx), logCh); return err })
	return eg.Wait()
}

func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

func epochString(s *Spec) string { return strconv.FormatInt(s.SourceDateEpoch, 10) }

func (b *BuildKit) solveDockerfile(ctx context.Context, spec *Spec, iso isolation, srcDir string, store content.Store, out string, ch chan *client.SolveStatus) error {
	// client.Solve closes ch; an error before it is called must close ch
	// too, or the progress displays would wait for it forever.
	solving := false
	defer func() {
		if !solving {
			close(ch)
		}
	}()
	r := spec.Recipe.OCI
	ctxDir, err := within(srcDir, filepath.Join(srcDir, filepath.FromSlash(r.Context)))
	if err != nil {
		return fmt.Errorf("build context %s: %w", r.Context, err)
	}
	dockerfile := filepath.Join(ctxDir, filepath.FromSlash(r.Dockerfile))
	if _, err := within(srcDir, filepath.Dir(dockerfile)); err != nil {
		return fmt.Errorf("dockerfile %s: %w", r.Dockerfile, err)
	}
	ctxFS, err := fsutil.NewFS(ctxDir)
	if err != nil {
		return fmt.Errorf("build context %s: %w", r.Context, err)
	}
	dfFS, err := fsutil.NewFS(filepath.Dir(dockerfile))
	if err != nil {
		return fmt.Errorf("dockerfile %s: %w", r.Dockerfile, err)
	}
	// The build args first: what the builder sets below wins over them
	// (Validate refuses these names; this holds for a Spec that skipped it).
	attrs := make(map[string]string)
	for k, v := range r.BuildArgs {
		attrs["build-arg:"+k] = v
	}
	maps.Copy(attrs, map[string]string{
		"filename":                    filepath.Base(dockerfile),
		"platform":                    spec.Platform,
		"force-network-mode":          "none",
		"build-arg:SOURCE_DATE_EPOCH": epochString(spec),
		// The Dockerfile names the builder image by its store name; the
		// named context pins it to the local layout and digest.
		"context:" + spec.BuilderImage.Name: "oci-layout://" + builderImageStore + "@" + spec.BuilderImage.Digest,
		// See isolation.
		"build-arg:BUILDKIT_CACHE_MOUNT_NS": iso.ns,
		"no-cache":                          "",
		"cmdline":                           "",
	})
	if r.Target != "" {
		attrs["target"] = r.Target
	}
	solving = true
	_, err = b.c.Solve(ctx, nil, client.SolveOpt{
		Frontend:      "dockerfile.v0",
		FrontendAttrs: attrs,
		SharedKey:     iso.ns,
		LocalMounts:   map[string]fsutil.FS{"context": ctxFS, "dockerfile": dfFS},
		OCIStores:     map[string]content.Store{builderImageStore: store},
		SourcePolicy:  sourcePolicy(spec.BuilderImage.Digest),
		Exports: []client.ExportEntry{{
			Type:      client.ExporterOCI,
			Attrs:     map[string]string{"tar": "false", "rewrite-timestamp": "true", "name": spec.Coordinate},
			OutputDir: out,
		}},
	}, ch)
	return err
}

// sourcePolicy lets a build read nothing but its local source (and the
// Dockerfile) and the pinned builder image: no registry image (a FROM of
// another image, COPY --from an image, a "# syntax=" frontend), no ADD of
// a URL or a git repository. BuildKit fetches those itself, outside the
// build steps' network namespace, so "network off" alone does not stop them.
func sourcePolicy(imageDigest string) *spb.Policy {
	rule := func(action spb.PolicyAction, ident string) *spb.Rule {
		return &spb.Rule{Action: action, Selector: &spb.Selector{Identifier: ident, MatchType: spb.MatchType_WILDCARD}}
	}
	// The last matching rule wins.
	return &spb.Policy{Version: 1, Rules: []*spb.Rule{
		rule(spb.PolicyAction_DENY, "*"),
		rule(spb.PolicyAction_ALLOW, "local://*"),
		rule(spb.PolicyAction_ALLOW, "oci-layout://*@"+imageDigest),
	}}
}

// within resolves symlinks in dir and requires the result to stay inside
// root: a symlink in the source tree must not make a host folder the build
// context.
func within(root, dir string) (string, error) {
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return "", err
	}
	real, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", err
	}
	if rel, err := filepath.Rel(realRoot, real); err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("leads outside the source (to %s)", real)
	}
	return real, nil
}

// phaseTimes records how long each phase of a build took, for the end of
// its log: where a slow build spends its time.
type phaseTimes struct {
	last   time.Time
	phases []string
}

func (t *phaseTimes) start() { t.last = time.Now() }

// done ends the phase name, which began when the last one ended.
func (t *phaseTimes) done(name string) {
	now := time.Now()
	t.phases = append(t.phases, fmt.Sprintf("%s %.3fs", name, now.Sub(t.last).Seconds()))
	t.last = now
}

func (t *phaseTimes) write(w io.Writer) {
	for _, p := range t.phases {
		fmt.Fprintf(w, "pyrsia-build: phase %s\n", p)
	}
}
