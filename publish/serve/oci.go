package serve

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/index"
)

// OCIOptions configure the OCI face, [NewOCI].
type OCIOptions struct {
	// Index holds the verified log entries: only what they publish is
	// served.
	Index *index.Index
	// Content gives the bytes of published manifests and blobs.
	Content Content
	// Logger gets failures to read content; nil: slog.Default().
	Logger *slog.Logger
	// Hint is what an unknown name's or tag's error says to do to get it
	// published, such as "request it with: pyrsia-build publish SPEC
	// --node ADDR".
	Hint string
	// MaxManifestBytes bounds a manifest read from Content; 0: 4 MiB.
	MaxManifestBytes int64
}

// The largest manifest read by default: registries refuse larger ones.
const defaultMaxManifest = 4 << 20

// maxTagsPage caps the tags of one tags/list page.
const maxTagsPage = 10000

// NewOCI returns the OCI distribution API, pull side, to be mounted at
// /v2/: the base endpoint, manifests by tag and by digest, blobs (with
// range requests), tags/list (with n and last), GET and HEAD only. Pushes
// and deletes get UNSUPPORTED.
//
// It serves only what the index's log entries publish. A tag is the
// latest entry for "name:tag" in the "oci" ecosystem; a manifest by digest
// must be a subject of an entry of that name; a blob must be the config or
// a layer of such a manifest (read through Content, which checked it
// against its digest). Docker's registry-mirror form, library/<name>,
// finds what is published as <name> when nothing is published under
// library/<name> itself.
func NewOCI(o OCIOptions) http.Handler {
	h := &ociHandler{o: o, log: o.Logger, manifests: make(map[string]*manifestInfo)}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.o.MaxManifestBytes <= 0 {
		h.o.MaxManifestBytes = defaultMaxManifest
	}
	return h
}

type ociHandler struct {
	o   OCIOptions
	log *slog.Logger

	mu        sync.Mutex
	manifests map[string]*manifestInfo // by digest; immutable once made
}

// manifestInfo is a published manifest read and checked once.
type manifestInfo struct {
	body      []byte
	mediaType string
	blobs     map[string]int64 // digest -> size, of config and layers
}

// maxCachedManifests bounds the manifest cache; it is emptied when full.
const maxCachedManifests = 4096

// ociError is one entry of the spec's error body.
type ociError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

func writeError(w http.ResponseWriter, status int, code, msg string, detail any) {
	b, _ := json.Marshal(struct {
		Errors []ociError `json:"errors"`
	}{[]ociError{{code, msg, detail}}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	w.Write(b)
}

func (h *ociHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
	rt, err := parsePath(r.URL.Path)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		// Every push and delete: this registry serves only what the log
		// published.
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED",
			fmt.Sprintf("%s is not supported: this node serves only artifacts its build network published (pull only)", r.Method), nil)
		return
	}
	if err != nil {
		var pe *pathError
		errors.As(err, &pe)
		writeError(w, pe.status, pe.code, pe.msg, nil)
		return
	}
	switch rt.kind {
	case routeBase:
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "2")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, "{}")
	case routeUpload:
		writeError(w, http.StatusMethodNotAllowed, "UNSUPPORTED", "blob uploads are not supported: this node serves only artifacts its build network published (pull only)", nil)
	case routeCatalog:
		writeError(w, http.StatusNotFound, "UNSUPPORTED", "the catalog is not served: ask for /v2/<name>/tags/list", nil)
	case routeReferrers:
		writeError(w, http.StatusNotFound, "UNSUPPORTED", "the referrers API is not served", nil)
	case routeTags:
		h.tags(w, r, rt)
	case routeManifest:
		h.manifest(w, r, rt)
	case routeBlob:
		h.blob(w, r, rt)
	}
}

// repository is a name as published: the name asked for, or for
// library/<name> with nothing of its own, <name>.
func (h *ociHandler) repository(name string) (string, []index.Record) {
	recs := h.ofName(name)
	if len(recs) == 0 {
		if short, ok := strings.CutPrefix(name, "library/"); ok && !strings.Contains(short, "/") {
			if recs := h.ofName(short); len(recs) > 0 {
				return short, recs
			}
		}
	}
	return name, recs
}

// ofName returns the records of the OCI entries published under name, in
// log order. The prefix "name:" also finds a coordinate whose own name
// goes on after a colon ("name:5000/other:tag", whose name is
// "name:5000/other"): those are another repository's, and left out.
func (h *ociHandler) ofName(name string) []index.Record {
	recs := h.o.Index.ByCoordinatePrefix(publish.EcosystemOCI, name+":")
	return slices.DeleteFunc(recs, func(rec index.Record) bool { return nameOf(rec.Coordinate) != name })
}

// tagOf returns the tag of a record of repository repo, or "".
func tagOf(rec index.Record, repo string) string {
	tag, ok := strings.CutPrefix(rec.Coordinate, repo+":")
	if !ok || !tagRE.MatchString(tag) {
		return ""
	}
	return tag
}

func (h *ociHandler) hint() string {
	if h.o.Hint == "" {
		return ""
	}
	return ": " + h.o.Hint
}

func (h *ociHandler) nameUnknown(w http.ResponseWriter, name string) {
	writeError(w, http.StatusNotFound, "NAME_UNKNOWN",
		fmt.Sprintf("repository %s is not published by this node's build network%s", quote(name), h.hint()),
		map[string]string{"name": name})
}

func (h *ociHandler) tags(w http.ResponseWriter, r *http.Request, rt route) {
	repo, recs := h.repository(rt.name)
	if len(recs) == 0 {
		h.nameUnknown(w, rt.name)
		return
	}
	q := r.URL.Query()
	n := -1
	if s := q.Get("n"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 0 {
			writeError(w, http.StatusBadRequest, "PAGINATION_NUMBER_INVALID", fmt.Sprintf("n=%s is not a number of tags (0 or more)", quote(s)), nil)
			return
		}
		n = v
	}
	last := q.Get("last")
	var tags []string
	for _, rec := range recs {
		if t := tagOf(rec, repo); t != "" {
			tags = append(tags, t)
		}
	}
	slices.Sort(tags)
	tags = slices.Compact(tags)
	if last != "" {
		i, _ := slices.BinarySearch(tags, last)
		if i < len(tags) && tags[i] == last {
			i++
		}
		tags = tags[i:]
	}
	page := n
	if page < 0 || page > maxTagsPage {
		page = maxTagsPage
	}
	if len(tags) > page {
		tags = tags[:page]
		if page > 0 {
			v := url.Values{"n": {strconv.Itoa(page)}, "last": {tags[len(tags)-1]}}
			w.Header().Set("Link", fmt.Sprintf(`</v2/%s/tags/list?%s>; rel="next"`, rt.name, v.Encode()))
		}
	}
	if tags == nil {
		tags = []string{}
	}
	b, _ := json.Marshal(struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{rt.name, tags})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(b)
	}
}

// published returns the manifest digests published under repo, newest
// first, without repeats.
func published(recs []index.Record) []string {
	var ds []string
	for i := len(recs) - 1; i >= 0; i-- {
		for _, s := range recs[i].Subjects {
			if !slices.Contains(ds, s.Digest) {
				ds = append(ds, s.Digest)
			}
		}
	}
	return ds
}

// imageDigest is the image manifest an OCI entry publishes: the subject
// named by the coordinate, else the first.
func imageDigest(rec index.Record) string {
	for _, s := range rec.Subjects {
		if s.Name == rec.Coordinate {
			return s.Digest
		}
	}
	return rec.Subjects[0].Digest
}

// published name returns the name a request's name is published under:
// itself, or for library/<name> with nothing published under it, <name>
// (as [ociHandler.repository] decides, without listing the tags of other
// names).
func (h *ociHandler) publishedName(name string) string {
	if short, ok := strings.CutPrefix(name, "library/"); ok && !strings.Contains(short, "/") {
		if len(h.ofName(name)) == 0 {
			return short
		}
	}
	return name
}

// nameOf returns the name part of an OCI coordinate "name:tag".
func nameOf(coordinate string) string {
	if i := strings.LastIndexByte(coordinate, ':'); i >= 0 {
		return coordinate[:i]
	}
	return coordinate
}

// manifest answers for a manifest. A lookup by tag or digest costs one
// index lookup, whatever the number of tags of the name.
func (h *ociHandler) manifest(w http.ResponseWriter, r *http.Request, rt route) {
	digest := ""
	name := h.publishedName(rt.name)
	if rt.tag != "" {
		if recs := h.o.Index.ByCoordinate(publish.EcosystemOCI, name+":"+rt.tag); len(recs) > 0 {
			digest = imageDigest(recs[len(recs)-1]) // log order: the last is the latest
		}
	} else {
		for _, rec := range h.o.Index.ByArtifact(rt.digest) {
			if rec.Ecosystem == publish.EcosystemOCI && nameOf(rec.Coordinate) == name {
				digest = rt.digest
				break
			}
		}
	}
	if digest == "" {
		if _, recs := h.repository(rt.name); len(recs) == 0 {
			h.nameUnknown(w, rt.name)
		} else if rt.tag != "" {
			writeError(w, http.StatusNotFound, "MANIFEST_UNKNOWN",
				fmt.Sprintf("tag %s of %s is not published by this node's build network%s", quote(rt.tag), quote(rt.name), h.hint()),
				map[string]string{"name": rt.name, "tag": rt.tag})
		} else {
			writeError(w, http.StatusNotFound, "MANIFEST_UNKNOWN",
				fmt.Sprintf("manifest %s is not published under %s", rt.digest, quote(rt.name)),
				map[string]string{"name": rt.name, "digest": rt.digest})
		}
		return
	}
	m, err := h.loadManifest(r.Context(), digest)
	if err != nil {
		h.contentError(w, r, "MANIFEST_UNKNOWN", "manifest", digest, err)
		return
	}
	w.Header().Set("Content-Type", m.mediaType)
	w.Header().Set("Docker-Content-Digest", digest)
	w.Header().Set("Content-Length", strconv.Itoa(len(m.body)))
	w.Header().Set("ETag", `"`+digest+`"`)
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(m.body)
	}
}

// contentError answers a failure to get published content.
func (h *ociHandler) contentError(w http.ResponseWriter, r *http.Request, code, what, digest string, err error) {
	if errors.Is(err, fs.ErrNotExist) {
		writeError(w, http.StatusNotFound, code,
			fmt.Sprintf("%s %s is published but this node cannot get its bytes now: try again later", what, digest), map[string]string{"digest": digest})
		return
	}
	h.log.ErrorContext(r.Context(), "serve: reading published content", "what", what, "digest", digest, "err", err)
	writeError(w, http.StatusInternalServerError, "UNKNOWN", fmt.Sprintf("reading %s %s: %v", what, digest, err), nil)
}

// loadManifest reads a published manifest through Content, once.
func (h *ociHandler) loadManifest(ctx context.Context, digest string) (*manifestInfo, error) {
	h.mu.Lock()
	m, ok := h.manifests[digest]
	h.mu.Unlock()
	if ok {
		return m, nil
	}
	b, err := h.o.Content.Open(ctx, digest, -1)
	if err != nil {
		return nil, err
	}
	defer b.Close()
	if b.Size() > h.o.MaxManifestBytes {
		return nil, fmt.Errorf("serve: manifest %s has %d bytes, over the limit of %d", digest, b.Size(), h.o.MaxManifestBytes)
	}
	body := make([]byte, b.Size())
	if _, err := io.ReadFull(b, body); err != nil {
		return nil, fmt.Errorf("serve: reading manifest %s: %w", digest, err)
	}
	m, err = parseManifest(body)
	if err != nil {
		return nil, fmt.Errorf("serve: manifest %s: %w", digest, err)
	}
	h.mu.Lock()
	if len(h.manifests) >= maxCachedManifests {
		clear(h.manifests)
	}
	h.manifests[digest] = m
	h.mu.Unlock()
	return m, nil
}

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// parseManifest reads what the face needs of an image manifest: its media
// type and the blobs it names.
func parseManifest(body []byte) (*manifestInfo, error) {
	var m struct {
		SchemaVersion int          `json:"schemaVersion"`
		MediaType     string       `json:"mediaType"`
		Config        *descriptor  `json:"config"`
		Layers        []descriptor `json:"layers"`
	}
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&m); err != nil {
		return nil, fmt.Errorf("not a JSON manifest: %w", err)
	}
	if m.SchemaVersion != 2 {
		return nil, fmt.Errorf("schemaVersion %d, want 2", m.SchemaVersion)
	}
	info := &manifestInfo{body: body, mediaType: m.MediaType, blobs: make(map[string]int64)}
	if info.mediaType == "" {
		info.mediaType = "application/vnd.oci.image.manifest.v1+json"
	}
	descs := m.Layers
	if m.Config != nil {
		descs = append(descs, *m.Config)
	}
	for _, d := range descs {
		if _, err := parseDigest(d.Digest); err != nil || d.Size < 0 {
			return nil, fmt.Errorf("descriptor with digest %s and size %d is not valid", quote(d.Digest), d.Size)
		}
		info.blobs[d.Digest] = d.Size
	}
	return info, nil
}

func (h *ociHandler) blob(w http.ResponseWriter, r *http.Request, rt route) {
	_, recs := h.repository(rt.name)
	if len(recs) == 0 {
		h.nameUnknown(w, rt.name)
		return
	}
	size, ok := int64(0), false
	for _, md := range published(recs) {
		m, err := h.loadManifest(r.Context(), md)
		if err != nil {
			h.log.WarnContext(r.Context(), "serve: a published manifest cannot be read", "digest", md, "err", err)
			continue
		}
		if size, ok = m.blobs[rt.digest]; ok {
			break
		}
	}
	if !ok {
		writeError(w, http.StatusNotFound, "BLOB_UNKNOWN",
			fmt.Sprintf("blob %s is not named by a manifest published under %s", rt.digest, quote(rt.name)),
			map[string]string{"name": rt.name, "digest": rt.digest})
		return
	}
	b, err := h.o.Content.Open(r.Context(), rt.digest, size)
	if err != nil {
		h.contentError(w, r, "BLOB_UNKNOWN", "blob", rt.digest, err)
		return
	}
	defer b.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Docker-Content-Digest", rt.digest)
	w.Header().Set("ETag", `"`+rt.digest+`"`)
	w.Header().Set("Accept-Ranges", "bytes")
	// ServeContent answers HEAD, Range (206, Content-Range; 416 for a
	// range outside the blob) and If-Range against the ETag.
	http.ServeContent(w, r, "", time.Time{}, b)
}
