package serve

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/index"
)

// MavenPrefix is the path the Maven repository is mounted at.
const MavenPrefix = "/maven2/"

// DefaultHint is the hint a not-found answer carries when the options give
// none.
const DefaultHint = "publish its build spec through the build network: pyrsia-build publish SPEC --node ADDR"

// MavenOptions configures [NewMaven].
type MavenOptions struct {
	// Index holds the verified log entries the repository answers for.
	// Required.
	Index *index.Index
	// Content gives the verified bytes of published files. Required.
	Content Content
	// Logger logs failures to get content (and, at debug level, every
	// request not found). Default: slog.Default().
	Logger *slog.Logger
	// Hint is the line a not-found answer ends with: how to request what
	// is missing. Default: [DefaultHint].
	Hint string
}

// NewMaven returns a read-only Maven 2 repository of the artifacts the log
// published, for requests under [MavenPrefix] (mount it there:
// mux.Handle(serve.MavenPrefix, serve.NewMaven(o))).
//
// # What it serves
//
// A log entry of ecosystem "maven" and coordinate "g:a:v" publishes its
// subjects as files of version v of g:a, each under its name:
// /maven2/g/r/o/u/p/a/v/a-v.jar for groupId g.r.o.u.p. A subject's name
// must fit Maven's layout, artifactId-version[-classifier].ext. A subject
// named for another artifactId of the same group and version (the other
// modules of a multi-module build: hello-lib-1.0.0.jar in the entry of
// org.example.hello:hello-app:1.0.0) is served under that artifactId. Any
// other subject (another version, a name outside the layout) is not
// served. Releases are immutable: where two entries name the same file,
// the entry of that artifact's own coordinate comes first, then the
// earlier entry in the log; the other is ignored for that file.
//
// Beside every file it serves .sha1, .md5, .sha256 and .sha512 (lowercase
// hex, computed from the verified bytes and cached), and per artifact a
// maven-metadata.xml (with its checksums) listing every version with a
// file in Maven's version order, latest and release (the newest version
// that is not a snapshot), so that version ranges, LATEST and RELEASE
// resolve. Its lastUpdated is N+1 seconds after the Unix epoch, N the log
// index of the newest entry that serves a file of the artifact (the log
// has no clock): two nodes with the same log serve the same bytes, and a
// later entry gives a later time. What is published of an artifact is
// worked out once and cached until the index grows.
//
// Files are served with their sha256 as a strong ETag, Content-Length and
// Range support. GET and HEAD only: other methods get 405, the repository
// is read-only. A path that is malformed gets 400 (414 if over-long);
// anything not published, 404 with a short text that ends with the Hint.
// A published file whose bytes the Content cannot get now (no peer has
// them) gets 503, any other failure of the Content 502: never 404, which
// Maven would remember as missing.
func NewMaven(o MavenOptions) http.Handler {
	if o.Index == nil || o.Content == nil {
		panic("serve: NewMaven needs MavenOptions.Index and MavenOptions.Content")
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Hint == "" {
		o.Hint = DefaultHint
	}
	return &mavenRepo{opts: o, sums: newSumCache(4096), views: map[string]*artifactView{}}
}

type mavenRepo struct {
	opts MavenOptions
	sums *sumCache

	// views caches what is published of each artifact asked for, for
	// the index as it was when it had viewsLen entries: the index only
	// grows, so a new length is a new entry, and the cache starts over.
	mu       sync.Mutex
	viewsLen int
	views    map[string]*artifactView // by "group:artifact"
}

// maxViews bounds the artifacts whose views are cached (those asked for
// and not published too).
const maxViews = 4096

// artifactView is what is published of one artifact: its files, and its
// maven-metadata.xml, made when first asked for.
type artifactView struct {
	files    map[string]map[string]mavenFile // by version, then name
	metaOnce sync.Once
	meta     []byte
	metaSums map[string]string // by checksum kind
}

// metadata returns the artifact's maven-metadata.xml and its checksums.
func (v *artifactView) metadata(group, artifact string) ([]byte, map[string]string) {
	v.metaOnce.Do(func() {
		v.meta = mavenMetadataXML(group, artifact, v.files)
		v.metaSums = map[string]string{}
		for _, k := range checksumKinds {
			v.metaSums[k] = hexSum(k, v.meta)
		}
	})
	return v.meta, v.metaSums
}

// view returns what is published of group:artifact.
func (m *mavenRepo) view(group, artifact string) *artifactView {
	key := group + ":" + artifact
	n := m.opts.Index.Len()
	m.mu.Lock()
	if n != m.viewsLen {
		m.views, m.viewsLen = map[string]*artifactView{}, n
	}
	v := m.views[key]
	m.mu.Unlock()
	if v != nil {
		return v
	}
	// Made outside the lock; two requests may both make it. Entries
	// added meanwhile change the length, so the view is made again at
	// the next request.
	v = &artifactView{files: m.artifactFiles(group, artifact)}
	m.mu.Lock()
	if n == m.viewsLen {
		if len(m.views) >= maxViews {
			for k := range m.views {
				delete(m.views, k)
				break
			}
		}
		m.views[key] = v
	}
	m.mu.Unlock()
	return v
}

func (m *mavenRepo) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		textError(w, http.StatusMethodNotAllowed, fmt.Sprintf(
			"maven: %s %s: this repository is read-only: artifacts are published through the build network, never uploaded to a node\nhint: %s",
			r.Method, r.URL.Path, m.opts.Hint))
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, MavenPrefix)
	if !ok {
		textError(w, http.StatusNotFound, fmt.Sprintf("maven: %s is not under %s", r.URL.Path, MavenPrefix))
		return
	}
	p, err := parseMavenPath(rest)
	switch {
	case errors.Is(err, errNoSuchPath):
		textError(w, http.StatusNotFound, fmt.Sprintf("maven: %s: %v", truncate(r.URL.Path), err))
		return
	case errors.Is(err, errPathTooLong):
		textError(w, http.StatusRequestURITooLong, fmt.Sprintf("maven: %s: %v", truncate(r.URL.Path), err))
		return
	case err != nil:
		textError(w, http.StatusBadRequest, fmt.Sprintf("maven: bad path %s: %v", truncate(r.URL.Path), err))
		return
	}
	if p.metadata() {
		m.serveMetadata(w, r, p)
		return
	}
	m.serveFile(w, r, p)
}

// mavenFile is a published file: its digest and the log index of the
// entry that serves it.
type mavenFile struct {
	digest   string
	logIndex uint64
}

// artifactFiles returns the published files of group:artifact, by version
// and file name, with the rules of [NewMaven]'s "What it serves".
func (m *mavenRepo) artifactFiles(group, artifact string) map[string]map[string]mavenFile {
	recs := m.opts.Index.ByCoordinatePrefix(publish.EcosystemMaven, group+":")
	files := map[string]map[string]mavenFile{}
	add := func(rec index.Record, version string) {
		for _, s := range rec.Subjects {
			if !fitsArtifact(s.Name, artifact, version) {
				continue
			}
			if files[version] == nil {
				files[version] = map[string]mavenFile{}
			}
			if _, taken := files[version][s.Name]; !taken {
				files[version][s.Name] = mavenFile{digest: s.Digest, logIndex: rec.LogIndex}
			}
		}
	}
	// Records come in log order: first the artifact's own entries, then
	// those of its siblings in the group.
	for _, own := range []bool{true, false} {
		for _, rec := range recs {
			g, a, v, ok := splitCoordinate(rec.Coordinate)
			if !ok || g != group || (a == artifact) != own || !validSegment(v) || v[0] == '.' {
				continue
			}
			add(rec, v)
		}
	}
	return files
}

func splitCoordinate(c string) (group, artifact, version string, ok bool) {
	parts := strings.Split(c, ":")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}

func (m *mavenRepo) notFound(w http.ResponseWriter, r *http.Request, what string) {
	m.opts.Logger.DebugContext(r.Context(), "maven: not found", "path", r.URL.Path)
	textError(w, http.StatusNotFound, fmt.Sprintf("maven: %s\nhint: %s", what, m.opts.Hint))
}

func (m *mavenRepo) serveFile(w http.ResponseWriter, r *http.Request, p mavenPath) {
	coord := p.group + ":" + p.artifact + ":" + p.version
	f, ok := m.view(p.group, p.artifact).files[p.version][p.file]
	if !ok {
		m.notFound(w, r, fmt.Sprintf("%s is not published: no entry of the log serves %s/%s", coord, mavenDir(p.group, p.artifact, p.version), p.file))
		return
	}
	if p.checksum != "" {
		sum, err := m.checksum(r.Context(), f.digest, p.checksum)
		if err != nil {
			m.contentError(w, r, p, f, err)
			return
		}
		serveBytes(w, r, "text/plain; charset=utf-8", []byte(sum), "")
		return
	}
	blob, err := m.opts.Content.Open(r.Context(), f.digest, -1)
	if err != nil {
		m.contentError(w, r, p, f, err)
		return
	}
	defer blob.Close()
	h := w.Header()
	h.Set("Content-Type", mavenContentType(p.file))
	h.Set("ETag", `"`+f.digest+`"`)
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", time.Time{}, blob)
}

func (m *mavenRepo) contentError(w http.ResponseWriter, r *http.Request, p mavenPath, f mavenFile, err error) {
	name := mavenDir(p.group, p.artifact, p.version) + "/" + p.file
	if r.Context().Err() != nil {
		return // the client went away
	}
	if errors.Is(err, fs.ErrNotExist) {
		m.opts.Logger.WarnContext(r.Context(), "maven: published file unavailable", "path", name, "digest", f.digest, "log_index", f.logIndex, "err", err)
		w.Header().Set("Retry-After", "30")
		textError(w, http.StatusServiceUnavailable, fmt.Sprintf(
			"maven: %s (%s, log index %d) is published, but this node cannot get its bytes now: no peer provides them\nhint: try again later", name, f.digest, f.logIndex))
		return
	}
	m.opts.Logger.ErrorContext(r.Context(), "maven: getting published file", "path", name, "digest", f.digest, "log_index", f.logIndex, "err", err)
	textError(w, http.StatusBadGateway, fmt.Sprintf(
		"maven: %s (%s, log index %d) is published, but getting its verified bytes failed: %v\nhint: try again later; if it persists, see the node's log", name, f.digest, f.logIndex, err))
}

func (m *mavenRepo) serveMetadata(w http.ResponseWriter, r *http.Request, p mavenPath) {
	v := m.view(p.group, p.artifact)
	if len(v.files) == 0 {
		m.notFound(w, r, fmt.Sprintf("%s:%s is not published: no entry of the log serves a version of it", p.group, p.artifact))
		return
	}
	body, sums := v.metadata(p.group, p.artifact)
	if p.checksum != "" {
		serveBytes(w, r, "text/plain; charset=utf-8", []byte(sums[p.checksum]), "")
		return
	}
	serveBytes(w, r, "text/xml; charset=utf-8", body, sums["sha256"])
}

// serveBytes serves b with a strong ETag of its sha256 (hex), given or
// computed.
func serveBytes(w http.ResponseWriter, r *http.Request, contentType string, b []byte, sha256hex string) {
	if sha256hex == "" {
		sha256hex = hexSum("sha256", b)
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("ETag", `"`+sha256hex+`"`)
	h.Set("X-Content-Type-Options", "nosniff")
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(b))
}

func textError(w http.ResponseWriter, code int, msg string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, msg+"\n")
}

// truncate shortens a path for an error message.
func truncate(s string) string {
	const max = 200
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// mavenContentType is the Content-Type of a file by its extension: a table
// of its own, not the system's MIME types, so that every node answers the
// same.
func mavenContentType(name string) string {
	switch {
	case strings.HasSuffix(name, ".jar"), strings.HasSuffix(name, ".war"), strings.HasSuffix(name, ".ear"):
		return "application/java-archive"
	case strings.HasSuffix(name, ".pom"), strings.HasSuffix(name, ".xml"):
		return "text/xml; charset=utf-8"
	case strings.HasSuffix(name, ".json"), strings.HasSuffix(name, ".module"):
		return "application/json"
	case strings.HasSuffix(name, ".asc"), strings.HasSuffix(name, ".txt"):
		return "text/plain; charset=utf-8"
	case strings.HasSuffix(name, ".zip"):
		return "application/zip"
	case strings.HasSuffix(name, ".tar.gz"), strings.HasSuffix(name, ".tgz"):
		return "application/gzip"
	}
	return "application/octet-stream"
}

func newHash(kind string) hash.Hash {
	switch kind {
	case "sha1":
		return sha1.New()
	case "md5":
		return md5.New()
	case "sha256":
		return sha256.New()
	case "sha512":
		return sha512.New()
	}
	panic("serve: unknown checksum kind " + kind)
}

func hexSum(kind string, b []byte) string {
	h := newHash(kind)
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// checksum returns the hex checksum of kind of the published file with
// digest. The sha256 is the digest itself (the Content checked it); the
// others are computed from the verified bytes once and cached.
func (m *mavenRepo) checksum(ctx context.Context, digest, kind string) (string, error) {
	if kind == "sha256" {
		return strings.TrimPrefix(digest, "sha256:"), nil
	}
	if s, ok := m.sums.get(digest); ok {
		return s.of(kind), nil
	}
	blob, err := m.opts.Content.Open(ctx, digest, -1)
	if err != nil {
		return "", err
	}
	defer blob.Close()
	s1, s5, s512, s256 := sha1.New(), md5.New(), sha512.New(), sha256.New()
	if _, err := io.Copy(io.MultiWriter(s1, s5, s512, s256), blob); err != nil {
		return "", fmt.Errorf("reading %s: %w", digest, err)
	}
	// The Content hands out verified bytes only; a blob that reads back
	// otherwise (a disk gone bad under it) gives no checksum.
	if got := "sha256:" + hex.EncodeToString(s256.Sum(nil)); got != digest {
		return "", fmt.Errorf("reading %s: the bytes read have digest %s", digest, got)
	}
	s := sums{sha1: hex.EncodeToString(s1.Sum(nil)), md5: hex.EncodeToString(s5.Sum(nil)), sha512: hex.EncodeToString(s512.Sum(nil))}
	m.sums.put(digest, s)
	return s.of(kind), nil
}

type sums struct{ sha1, md5, sha512 string }

func (s sums) of(kind string) string {
	switch kind {
	case "sha1":
		return s.sha1
	case "md5":
		return s.md5
	}
	return s.sha512
}

// sumCache keeps the checksums of up to max files. When full it forgets
// one at random (Go's map order): checksums are cheap to compute again.
type sumCache struct {
	mu  sync.Mutex
	max int
	m   map[string]sums
}

func newSumCache(max int) *sumCache { return &sumCache{max: max, m: map[string]sums{}} }

func (c *sumCache) get(digest string) (sums, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.m[digest]
	return s, ok
}

func (c *sumCache) put(digest string, s sums) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[digest]; !ok && len(c.m) >= c.max {
		for k := range c.m {
			delete(c.m, k)
			break
		}
	}
	c.m[digest] = s
}
