package builder

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/containerd/containerd/v2/plugins/content/local"
	"github.com/moby/buildkit/client"
)

// ResolveOptions configure [BuildKit.Resolve].
type ResolveOptions struct {
	// SpecDir resolves relative paths in the spec (an archive path).
	SpecDir string
	// Images is the folder of builder images (OCI layouts) by name.
	Images string
	// Repository is the Maven repository's base URL; when empty,
	// [MavenRepository] reads it from the machine's Maven configuration.
	Repository string
	// Cache is where fetched files are kept by sha256 for later builds
	// ([MavenRepoCacheDir] when empty; "-" for none).
	Cache string
	// Progress receives human-readable progress; nil discards it.
	Progress io.Writer
	// LogPath, if set, receives the resolve run's build log.
	LogPath string
}

// Resolve finds every file a Maven spec's build reads from the Maven
// repository and returns them as a lock. It runs the recipe once in the
// builder image, with a fresh, empty local repository and Maven's only
// repository a mirror served by this process on 127.0.0.1, which forwards
// to the configured repository (and nowhere else) and records every
// artifact file it serves with its sha256. Checksum files are served but
// not locked; an artifact's maven-metadata.xml (a version range, RELEASE,
// LATEST) is locked as the metadata the build will see, made from the
// lock's versions of it ([Lock] explains why). The resolve step shares
// the host's network namespace (to reach that mirror; the buildkitd must
// allow the network.host entitlement, as [StartDaemon]'s does): Maven is
// configured to use only the mirror, but the recipe's own code is not
// fenced in by the kernel, so resolve is meant for sources one is willing
// to build, like 'go mod download'. The build phase is fenced in: network
// off, nothing but the lock's files.
//
// The spec's own lock, if any, is ignored. The build must succeed; its
// outputs are discarded.
func (b *BuildKit) Resolve(ctx context.Context, spec *Spec, opts ResolveOptions) (*Lock, error) {
	if spec.Ecosystem != "maven" {
		return nil, fmt.Errorf("builder: resolve: ecosystem %q has no dependency lock (only maven)", spec.Ecosystem)
	}
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	progress := opts.Progress
	if progress == nil {
		progress = io.Discard
	}
	repo, cache, err := mavenRepoOpts{opts.Repository, opts.Cache}.resolve()
	if err != nil {
		return nil, err
	}
	input, err := spec.InputDigest()
	if err != nil {
		return nil, err
	}
	iso, err := newIsolation(input)
	if err != nil {
		return nil, err
	}
	layout, err := ResolveImage(opts.Images, spec.BuilderImage)
	if err != nil {
		return nil, err
	}
	store, err := local.NewStore(layout)
	if err != nil {
		return nil, fmt.Errorf("builder: builder image %s: %w", spec.BuilderImage.Name, err)
	}
	srcDir, err := os.MkdirTemp("", "pyrsia-src-*")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(srcDir)
	if _, err := fetchSource(ctx, spec, opts.SpecDir, srcDir, nil, mavenRepoOpts{repo.url, cache}, progress); err != nil {
		return nil, err
	}
	rec := &recorder{client: repo.client(), cache: cache, files: map[string]string{}}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("builder: resolve: listening for Maven: %w", err)
	}
	srv := &http.Server{Handler: rec}
	go srv.Serve(ln)
	defer srv.Close()
	fmt.Fprintf(progress, "resolve: Maven's only repository is http://%s/, forwarding to the configured repository\n", ln.Addr())

	logName := opts.LogPath
	if logName == "" {
		f, err := os.CreateTemp("", "pyrsia-resolve-*.log")
		if err != nil {
			return nil, err
		}
		f.Close()
		logName = f.Name()
		defer os.Remove(logName)
	}
	logFile, err := os.Create(logName)
	if err != nil {
		return nil, err
	}
	defer logFile.Close()
	mo := mavenRun{mirror: "http://" + ln.Addr().String() + "/"}
	err = b.run(ctx, func(ctx context.Context, ch chan *client.SolveStatus) error {
		return b.solveMaven(ctx, spec, iso, srcDir, store, "", mo, ch)
	}, progress, logFile)
	if err != nil {
		if strings.Contains(err.Error(), "network.host") {
			return nil, fmt.Errorf("builder: resolve: the buildkitd refuses the host network the resolve step needs to reach its mirror on 127.0.0.1 (%w): start buildkitd with --allow-insecure-entitlement=network.host, or let pyrsia-build start its own", err)
		}
		logFile.Sync()
		log, _ := os.ReadFile(logName)
		return nil, &BuildError{Err: fmt.Errorf("resolve: %w", err), LogTail: tail(string(log), 25), LogPath: logName}
	}
	// rec.lock takes the recorder's mutex: what the handlers wrote is
	// seen from here on.
	lock := rec.lock()
	if len(rec.conflicts) > 0 {
		return nil, fmt.Errorf("builder: resolve: the maven repository served %s twice with different bytes: no lock can pin it; check the repository (or the mirror in the Maven settings) and try again", strings.Join(rec.conflicts, ", "))
	}
	if len(lock.Files) == 0 {
		return nil, errors.New("builder: resolve: the build read nothing from the Maven repository (is it a Maven build?)")
	}
	fmt.Fprintf(progress, "resolve: %d files, %d fetched from the repository\n", len(lock.Files), rec.fetched)
	return lock, nil
}

// recorder is the resolve phase's Maven repository: it forwards GET and
// HEAD to the configured repository and records the artifact files it
// served.
type recorder struct {
	client    *repoClient
	cache     string
	mu        sync.Mutex
	files     map[string]string // path -> sha256 hex
	metadata  map[string]bool   // groupId:artifactId of metadata served
	conflicts []string          // paths served twice with other bytes
	fetched   int
}

var repoPathRE = regexp.MustCompile(`^[A-Za-z0-9_.+-]+(/[A-Za-z0-9_.+-]+)*$`)

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		http.Error(w, "the resolve repository is read-only", http.StatusMethodNotAllowed)
		return
	}
	p := strings.TrimPrefix(req.URL.Path, "/")
	if !repoPathRE.MatchString(p) || slices.Contains(strings.Split(p, "/"), "..") || path.Clean(p) != p {
		http.Error(w, "not a repository path", http.StatusBadRequest)
		return
	}
	tmp, err := os.CreateTemp("", "pyrsia-resolve-file-*")
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	sha, n, err := r.client.get(req.Context(), p, tmp)
	if err != nil {
		var fe *FetchError
		if errors.As(err, &fe) && fe.Status != 0 {
			http.Error(w, err.Error(), fe.Status)
			return
		}
		slog.WarnContext(req.Context(), "resolve: fetching from the maven repository", "path", p, "err", err)
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	if ga, ok := metadataCandidate(p); ok {
		r.mu.Lock()
		if r.metadata == nil {
			r.metadata = map[string]bool{}
		}
		r.metadata[ga] = true
		r.mu.Unlock()
	}
	if f, ok := lockFileFromPath(p, sha); ok {
		r.mu.Lock()
		if old, seen := r.files[p]; seen && old != sha {
			// Served twice with other bytes: the lock cannot pin it.
			r.conflicts = append(r.conflicts, p)
		}
		r.files[p] = f.SHA256
		r.fetched++
		r.mu.Unlock()
		if r.cache != "" && os.MkdirAll(r.cache, 0o755) == nil {
			copyFile(tmp.Name(), filepath.Join(r.cache, sha))
		}
	}
	w.Header().Set("Content-Length", fmt.Sprint(n))
	if req.Method == http.MethodHead {
		return
	}
	if _, err := tmp.Seek(0, io.SeekStart); err == nil {
		io.Copy(w, tmp)
	}
}

func (r *recorder) lock() *Lock {
	r.mu.Lock()
	defer r.mu.Unlock()
	l := &Lock{Version: LockVersion}
	for p, sha := range r.files {
		if f, ok := lockFileFromPath(p, sha); ok {
			l.Files = append(l.Files, f)
		}
	}
	var gas []string
	for ga := range r.metadata {
		gas = append(gas, ga)
	}
	l.Files = append(l.Files, metadataEntries(l, gas)...)
	slices.SortFunc(l.Files, func(a, b LockFile) int { return strings.Compare(a.Path(), b.Path()) })
	return l
}

// loadLock reads the spec's lock file, checks it against the spec's pin
// and parses it. A spec from the network uses [loadRemoteLock].
func loadLock(ref *LockRef, specDir string) (*Lock, error) {
	name := filepath.Join(specDir, filepath.FromSlash(ref.Path))
	data, err := readLimited(name, maxLockSize)
	if err != nil {
		return nil, fmt.Errorf("builder: maven lock: %w (run 'pyrsia-build lock SPEC' to write it)", err)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != ref.SHA256 {
		return nil, fmt.Errorf("builder: maven lock %s has sha256 %s, the spec pins %s: the lock changed since the spec was written; run 'pyrsia-build lock SPEC' to pin it again (and review the change)", name, got, ref.SHA256)
	}
	l, err := ParseLock(data)
	if err != nil {
		return nil, fmt.Errorf("builder: %s: %w", name, err)
	}
	return l, nil
}

// loadRemoteLock is [loadLock] for a spec from the network: the lock is
// read only inside specDir ([openSpecFile]), and a lock with another
// digest is refused without saying its digest.
func loadRemoteLock(ref *LockRef, specDir string) (*Lock, error) {
	f, name, err := openSpecFile(specDir, ref.Path, true, "recipe.maven.lock.path")
	if err != nil {
		return nil, fmt.Errorf("builder: maven lock: %w", err)
	}
	defer f.Close()
	data, err := readSpecFile(f, name, maxLockSize)
	if err != nil {
		return nil, fmt.Errorf("builder: maven lock: %w", err)
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != ref.SHA256 {
		return nil, fmt.Errorf("builder: maven lock %s does not have the sha256 the spec pins (%s)", name, ref.SHA256)
	}
	l, err := ParseLock(data)
	if err != nil {
		return nil, fmt.Errorf("builder: %s: %w", name, err)
	}
	return l, nil
}

// offlineMissRE finds what an offline Maven wanted from a remote
// repository: "Cannot access central (...) in offline mode and the
// artifact g:a:ext:v has not been downloaded from it before".
var offlineMissRE = regexp.MustCompile(`in offline mode and the artifact (\S+) has not been downloaded from it before`)

// noVersionsRE finds a version range (or RELEASE, LATEST) an offline
// Maven could not resolve: "No versions available for g:a:jar:[1.0,2.0)
// within specified range".
var noVersionsRE = regexp.MustCompile(`No versions available for (\S+) within specified range`)

// unknownHostRE finds a build step that tried to reach a host.
var unknownHostRE = regexp.MustCompile(`java\.net\.UnknownHostException: ([A-Za-z0-9.-]+)`)

// failedGoalRE finds the plugin goal whose execution failed: "Failed to
// execute goal g:a:v:goal (execution) on project p".
var failedGoalRE = regexp.MustCompile(`Failed to execute goal ([A-Za-z0-9_.-]+:[A-Za-z0-9_.-]+:[A-Za-z0-9_.+-]+:[A-Za-z0-9_.-]+)`)

// NotLockedError is a build that reached for the network in the build
// phase: Maven wanted files the lock does not pin, or a step tried to
// reach a host. Use errors.As.
type NotLockedError struct {
	Artifacts []string // g:a:ext:v Maven wanted and could not find
	Ranges    []string // g:a:ext:range with no locked version in range
	Hosts     []string // hosts a step tried to reach
	Goal      string   // the plugin goal that failed (g:a:v:goal), if Maven named it
	Err       error
}

func (e *NotLockedError) Error() string {
	var parts []string
	if len(e.Artifacts) > 0 {
		parts = append(parts, fmt.Sprintf("the build needs %s, which the lock does not pin (the build phase is offline and sees only the lock's files): run 'pyrsia-build lock SPEC' to resolve again", strings.Join(e.Artifacts, ", ")))
	}
	if len(e.Ranges) > 0 {
		parts = append(parts, fmt.Sprintf("the build resolves %s and finds no version in that range in the lock's metadata (a lock written before pyrsia-build locked metadata, or an edited one): run 'pyrsia-build lock SPEC' to resolve again", strings.Join(e.Ranges, ", ")))
	}
	if len(e.Hosts) > 0 {
		step := "a build step"
		if e.Goal != "" {
			step = "the plugin goal " + e.Goal
		}
		parts = append(parts, fmt.Sprintf("%s tried to reach %s, but the build phase has no network: make the recipe skip what needs it (a test, a plugin goal)", step, strings.Join(e.Hosts, ", ")))
	}
	return "builder: " + strings.Join(parts, "; ")
}

func (e *NotLockedError) Unwrap() error { return e.Err }

// notLocked looks in a failed offline build's log for what it reached
// for; nil if nothing.
func notLocked(log string, err error) error {
	e := &NotLockedError{Err: err}
	for _, m := range offlineMissRE.FindAllStringSubmatch(log, -1) {
		a := strings.TrimRight(m[1], ".,;")
		if !slices.Contains(e.Artifacts, a) {
			e.Artifacts = append(e.Artifacts, a)
		}
	}
	for _, m := range noVersionsRE.FindAllStringSubmatch(log, -1) {
		if !slices.Contains(e.Ranges, m[1]) {
			e.Ranges = append(e.Ranges, m[1])
		}
	}
	for _, m := range unknownHostRE.FindAllStringSubmatch(log, -1) {
		if !slices.Contains(e.Hosts, m[1]) {
			e.Hosts = append(e.Hosts, m[1])
		}
	}
	if m := failedGoalRE.FindStringSubmatch(log); m != nil && len(e.Hosts) > 0 {
		e.Goal = m[1]
	}
	if len(e.Artifacts) == 0 && len(e.Ranges) == 0 && len(e.Hosts) == 0 {
		return nil
	}
	return e
}
