package image

import (
	"bufio"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"time"
)

// Media types and annotation keys of the OCI image spec v1.1.
const (
	MediaTypeIndex     = "application/vnd.oci.image.index.v1+json"
	MediaTypeManifest  = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeConfig    = "application/vnd.oci.image.config.v1+json"
	MediaTypeLayer     = "application/vnd.oci.image.layer.v1.tar"
	MediaTypeLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
	AnnotationRefName  = "org.opencontainers.image.ref.name"
)

// DefaultPath is the PATH of an image whose config sets none.
const DefaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// ImageConfig is what goes into an image's config besides its layer.
type ImageConfig struct {
	// Env is the environment; nil means [DefaultPath] only.
	Env []string
	// WorkingDir defaults to "/".
	WorkingDir string
	Entrypoint []string
	Cmd        []string
	User       string
	Labels     map[string]string
	// CreatedBy is the history entry's created_by ("pyrsia-build image
	// make busybox").
	CreatedBy string
	// Comment is the history entry's comment (what the image was made
	// from: package versions).
	Comment string
	// Gzip compresses the layer (compress/gzip, level 9, empty header).
	// The default is an uncompressed layer: its digest then depends on
	// nothing but the files and [WriteLayer]'s format, not on a
	// compressor's version; the store is local, so the size matters less.
	Gzip bool
}

// Made is an image written to a store.
type Made struct {
	Name string
	// Digest is the image manifest's digest, "sha256:<hex>": what a
	// build spec pins.
	Digest string
	// Dir is the OCI layout folder, STORE/<name>.
	Dir string
	// Size is the sum of the blob sizes (layer, config, manifest).
	Size int64
	// Files is the number of entries in the layer.
	Files int
	// Skipped lists what the layer left out (device files).
	Skipped []string
	// Took is how long making the image took.
	Took time.Duration
}

// String is "busybox sha256:… (1.2 MB, 40 files, 3s)".
func (m Made) String() string {
	return fmt.Sprintf("%s %s (%.1f MB, %d files, %s)", m.Name, m.Digest,
		float64(m.Size)/1e6, m.Files, m.Took.Round(time.Second))
}

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *platform         `json:"platform,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

type manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

type index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []descriptor `json:"manifests"`
}

type imageConfigJSON struct {
	Created      string       `json:"created"`
	Architecture string       `json:"architecture"`
	OS           string       `json:"os"`
	Config       runConfig    `json:"config"`
	RootFS       rootFS       `json:"rootfs"`
	History      []historyRow `json:"history"`
}

type runConfig struct {
	User       string            `json:"User,omitempty"`
	Env        []string          `json:"Env,omitempty"`
	Entrypoint []string          `json:"Entrypoint,omitempty"`
	Cmd        []string          `json:"Cmd,omitempty"`
	WorkingDir string            `json:"WorkingDir,omitempty"`
	Labels     map[string]string `json:"Labels,omitempty"` // encoding/json sorts map keys
}

type rootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

type historyRow struct {
	Created   string `json:"created"`
	CreatedBy string `json:"created_by,omitempty"`
	Comment   string `json:"comment,omitempty"`
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// WriteImage writes the folder rootfs as a one-layer linux/amd64 image to
// the OCI layout STORE/<name>/ (oci-layout, index.json naming the one
// manifest with the annotation org.opencontainers.image.ref.name=<name>,
// blobs/sha256/...), replacing what was there. The layer is
// [WriteLayer]'s; every time in it and in the config is epoch. The JSON
// documents are compact encoding/json of fixed structs, so the same
// rootfs, config and epoch give the same manifest digest.
func WriteImage(ctx context.Context, storeDir, name, rootfs string, cfg ImageConfig, epoch time.Time) (Made, error) {
	start := time.Now()
	made := Made{Name: name}
	if !nameRE.MatchString(name) {
		return made, fmt.Errorf("image name %q: use lower-case letters, digits, '.', '_', '-'", name)
	}
	if err := os.MkdirAll(storeDir, 0o755); err != nil {
		return made, err
	}
	tmp, err := os.MkdirTemp(storeDir, "."+name+".tmp-")
	if err != nil {
		return made, err
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return made, err
	}
	blobs := filepath.Join(tmp, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return made, err
	}

	// The layer, hashed twice: the tar (diff_id) and the blob.
	lf, err := os.CreateTemp(blobs, ".layer-")
	if err != nil {
		return made, err
	}
	defer os.Remove(lf.Name())
	blobHash := sha256.New()
	diffHash := sha256.New()
	bw := bufio.NewWriterSize(io.MultiWriter(lf, blobHash), 1<<20)
	var tarOut io.Writer
	var gz *gzip.Writer
	layerType := MediaTypeLayer
	if cfg.Gzip {
		layerType = MediaTypeLayerGzip
		gz, _ = gzip.NewWriterLevel(bw, gzip.BestCompression) // the Header stays zero: no name, no mtime
		tarOut = io.MultiWriter(gz, diffHash)
	} else {
		tarOut = io.MultiWriter(bw, diffHash)
	}
	stats, err := WriteLayer(ctx, tarOut, rootfs, epoch)
	if err == nil && gz != nil {
		err = gz.Close()
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = lf.Close()
	} else {
		lf.Close()
	}
	if err != nil {
		return made, fmt.Errorf("image %s: layer: %w", name, err)
	}
	made.Files, made.Skipped = stats.Entries, stats.Skipped
	layerDigest := digestOf(blobHash)
	fi, err := os.Stat(lf.Name())
	if err != nil {
		return made, err
	}
	layer := descriptor{MediaType: layerType, Digest: layerDigest, Size: fi.Size()}
	if err := os.Rename(lf.Name(), filepath.Join(blobs, hexOf(layerDigest))); err != nil {
		return made, err
	}

	created := epoch.UTC().Truncate(time.Second).Format(time.RFC3339)
	env := cfg.Env
	if env == nil {
		env = []string{DefaultPath}
	}
	wd := cfg.WorkingDir
	if wd == "" {
		wd = "/"
	}
	conf := imageConfigJSON{
		Created:      created,
		Architecture: "amd64",
		OS:           "linux",
		Config: runConfig{
			User: cfg.User, Env: env, Entrypoint: cfg.Entrypoint, Cmd: cfg.Cmd,
			WorkingDir: wd, Labels: cfg.Labels,
		},
		RootFS:  rootFS{Type: "layers", DiffIDs: []string{digestOf(diffHash)}},
		History: []historyRow{{Created: created, CreatedBy: cfg.CreatedBy, Comment: cfg.Comment}},
	}
	confDesc, err := writeJSONBlob(blobs, MediaTypeConfig, conf)
	if err != nil {
		return made, err
	}
	man := manifest{SchemaVersion: 2, MediaType: MediaTypeManifest, Config: confDesc, Layers: []descriptor{layer}}
	manDesc, err := writeJSONBlob(blobs, MediaTypeManifest, man)
	if err != nil {
		return made, err
	}
	manDesc.Annotations = map[string]string{AnnotationRefName: name}
	manDesc.Platform = &platform{Architecture: "amd64", OS: "linux"}
	idx := index{SchemaVersion: 2, MediaType: MediaTypeIndex, Manifests: []descriptor{manDesc}}
	if err := writeJSONFile(filepath.Join(tmp, "index.json"), idx); err != nil {
		return made, err
	}
	if err := os.WriteFile(filepath.Join(tmp, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return made, err
	}

	// Swap the new layout in.
	final := filepath.Join(storeDir, name)
	old := ""
	if _, err := os.Lstat(final); err == nil {
		old = tmp + ".old"
		if err := os.Rename(final, old); err != nil {
			return made, err
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		if old != "" {
			_ = os.Rename(old, final)
		}
		return made, err
	}
	if old != "" {
		if err := os.RemoveAll(old); err != nil {
			return made, err
		}
	}
	made.Digest = manDesc.Digest
	made.Dir = final
	made.Size = layer.Size + confDesc.Size + manDesc.Size
	made.Took = time.Since(start)
	return made, nil
}

func digestOf(h hash.Hash) string { return "sha256:" + hex.EncodeToString(h.Sum(nil)) }

func hexOf(digest string) string { return digest[len("sha256:"):] }

func writeJSONBlob(blobs, mediaType string, v any) (descriptor, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return descriptor{}, err
	}
	sum := sha256.Sum256(b)
	d := descriptor{MediaType: mediaType, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(b))}
	return d, os.WriteFile(filepath.Join(blobs, hexOf(d.Digest)), b, 0o644)
}

func writeJSONFile(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}

var digestRE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// Resolve finds the image name in the store and checks it: STORE/<name>
// is an OCI layout whose index.json names exactly one manifest, annotated
// with the name; when digest is not empty, that manifest's digest is
// digest; the manifest, config and layer blobs exist with the sizes and
// sha256 their descriptors give. It returns the layout folder, for
// BuildKit's oci-layout:// named contexts.
func Resolve(storeDir, name, digest string) (layoutDir string, err error) {
	layoutDir, _, err = resolve(storeDir, name, digest)
	return layoutDir, err
}

func readIndex(storeDir, name, digest string) (string, descriptor, error) {
	makeIt := fmt.Sprintf("make the image with 'pyrsia-build image make %s'", name)
	fail := func(format string, args ...any) (string, descriptor, error) {
		return "", descriptor{}, fmt.Errorf("image %s: "+format, append([]any{name}, args...)...)
	}
	if digest != "" && !digestRE.MatchString(digest) {
		return fail("the spec pins %q, not a sha256:<64 hex> digest: fix the spec", digest)
	}
	if !nameRE.MatchString(name) {
		return fail("not an image name (lower-case letters, digits, '.', '_', '-')")
	}
	dir := filepath.Join(storeDir, name)
	lb, err := os.ReadFile(filepath.Join(dir, "oci-layout"))
	if errors.Is(err, fs.ErrNotExist) {
		return fail("no OCI layout at %s: %s", dir, makeIt)
	}
	if err != nil {
		return fail("%v", err)
	}
	var layout struct {
		Version string `json:"imageLayoutVersion"`
	}
	if err := json.Unmarshal(lb, &layout); err != nil || layout.Version != "1.0.0" {
		return fail("%s/oci-layout is not an OCI image layout 1.0.0: %s", dir, makeIt)
	}
	ib, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		return fail("%v: %s", err, makeIt)
	}
	var idx index
	if err := json.Unmarshal(ib, &idx); err != nil {
		return fail("%s/index.json: %v: %s", dir, err, makeIt)
	}
	if len(idx.Manifests) != 1 {
		return fail("%s/index.json names %d manifests, want exactly 1: %s", dir, len(idx.Manifests), makeIt)
	}
	md := idx.Manifests[0]
	if ref := md.Annotations[AnnotationRefName]; ref != name {
		return fail("%s/index.json names the image %q, not %q: %s", dir, ref, name, makeIt)
	}
	if md.MediaType != MediaTypeManifest {
		return fail("%s/index.json names a %s, want an image manifest: %s", dir, md.MediaType, makeIt)
	}
	if digest != "" && md.Digest != digest {
		return fail("index.json names %s, the spec pins %s: %s or fix the spec", md.Digest, digest, makeIt)
	}
	return dir, md, nil
}

// StoredDigest returns the manifest digest of the image name in the store,
// after checking the layout's index (but not the blobs: see [Resolve]).
func StoredDigest(storeDir, name string) (string, error) {
	_, md, err := readIndex(storeDir, name, "")
	return md.Digest, err
}

// ResolveLayout is a light [Resolve]: it checks the layout and that its
// index names exactly the pinned digest, without hashing the blobs (BuildKit
// checks every blob's digest as it imports it).
func ResolveLayout(storeDir, name, digest string) (string, error) {
	dir, _, err := readIndex(storeDir, name, digest)
	return dir, err
}

func resolve(storeDir, name, digest string) (string, manifest, error) {
	var man manifest
	makeIt := fmt.Sprintf("make the image with 'pyrsia-build image make %s'", name)
	fail := func(format string, args ...any) (string, manifest, error) {
		return "", man, fmt.Errorf("image %s: "+format, append([]any{name}, args...)...)
	}
	dir, md, err := readIndex(storeDir, name, digest)
	if err != nil {
		return "", man, err
	}
	mb, err := readBlob(dir, md)
	if err != nil {
		return fail("manifest: %v: %s", err, makeIt)
	}
	if err := json.Unmarshal(mb, &man); err != nil {
		return fail("manifest %s: %v: %s", md.Digest, err, makeIt)
	}
	if err := checkBlob(dir, man.Config); err != nil {
		return fail("config: %v: %s", err, makeIt)
	}
	for i, l := range man.Layers {
		if err := checkBlob(dir, l); err != nil {
			return fail("layer %d: %v: %s", i, err, makeIt)
		}
	}
	return dir, man, nil
}

func blobPath(dir string, d descriptor) (string, error) {
	if !digestRE.MatchString(d.Digest) {
		return "", fmt.Errorf("bad digest %q", d.Digest)
	}
	return filepath.Join(dir, "blobs", "sha256", hexOf(d.Digest)), nil
}

func readBlob(dir string, d descriptor) ([]byte, error) {
	p, err := blobPath(dir, d)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("blob %s is missing", d.Digest)
	}
	if int64(len(b)) != d.Size {
		return nil, fmt.Errorf("blob %s has %d bytes, its descriptor says %d", d.Digest, len(b), d.Size)
	}
	sum := sha256.Sum256(b)
	if got := "sha256:" + hex.EncodeToString(sum[:]); got != d.Digest {
		return nil, fmt.Errorf("blob %s has digest %s", d.Digest, got)
	}
	return b, nil
}

func checkBlob(dir string, d descriptor) error {
	p, err := blobPath(dir, d)
	if err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return fmt.Errorf("blob %s is missing", d.Digest)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return err
	}
	if n != d.Size {
		return fmt.Errorf("blob %s has %d bytes, its descriptor says %d", d.Digest, n, d.Size)
	}
	if got := digestOf(h); got != d.Digest {
		return fmt.Errorf("blob %s has digest %s", d.Digest, got)
	}
	return nil
}

// UnpackImage resolves the image like [Resolve] and extracts its layers,
// in order, into dest (which must exist). It is for tests and for
// looking inside an image; whiteouts are not handled.
func UnpackImage(storeDir, name, digest, dest string) error {
	dir, man, err := resolve(storeDir, name, digest)
	if err != nil {
		return err
	}
	for _, l := range man.Layers {
		p, _ := blobPath(dir, l)
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		var r io.Reader = bufio.NewReaderSize(f, 1<<20)
		if l.MediaType == MediaTypeLayerGzip {
			zr, err := gzip.NewReader(r)
			if err != nil {
				f.Close()
				return err
			}
			r = zr
		} else if l.MediaType != MediaTypeLayer {
			f.Close()
			return fmt.Errorf("image %s: layer %s: unsupported media type %s", name, l.Digest, l.MediaType)
		}
		err = Unpack(r, dest)
		f.Close()
		if err != nil {
			return fmt.Errorf("image %s: layer %s: %w", name, l.Digest, err)
		}
	}
	return nil
}
