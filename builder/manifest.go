package builder

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"cmp"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/klauspost/compress/zstd"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/internal/fsutil"
)

// Output manifest v1
//
// OUT/manifest.json lists every file inside every artifact, so that two
// builds that disagree can say which files differ ([Diff]). It is an
// [OutputManifest] written by [WriteManifest]: indented JSON, artifacts
// sorted by name, files by path, then layer.

// ManifestVersion is the output manifest format version.
const ManifestVersion = 1

// OutputManifest is the content of OUT/manifest.json.
type OutputManifest struct {
	Version   int                `json:"version"` // 1
	Artifacts []ArtifactManifest `json:"artifacts"`
}

// Artifact manifest types.
const (
	ArtifactOCILayout = "oci-layout" // an OCI image layout folder
	ArtifactZip       = "zip"        // a jar, war, ear, aar or zip file
	ArtifactFile      = "file"       // any other file
)

// ArtifactManifest lists the files inside one artifact.
type ArtifactManifest struct {
	// Name is the artifact's name, as in [Artifact].Name.
	Name string `json:"name"`
	// Digest is the artifact's digest, as in [Artifact].Digest.
	Digest string `json:"digest"`
	// Type is ArtifactOCILayout, ArtifactZip or ArtifactFile.
	Type string `json:"type"`
	// Path is where the artifact is, relative to the output folder, as in
	// [Artifact].Path. [ManifestFile] and [ManifestOCILayout] leave it
	// empty: the caller, which knows the output folder, sets it.
	Path  string      `json:"path,omitempty"`
	Files []FileEntry `json:"files"`
}

// File entry types.
const (
	FileRegular  = "file"
	FileDir      = "dir"
	FileSymlink  = "symlink"
	FileHardlink = "hardlink"
	// FileWhiteout is an OCI layer's whiteout file (".wh.<name>", or the
	// opaque marker ".wh..wh..opq"), recorded under its own path.
	FileWhiteout = "whiteout"
	FileOther    = "other" // devices, fifos
)

// ConfigPath is the Path of the entry for an OCI image's config blob.
const ConfigPath = "<config>"

// FileEntry is one file inside an artifact.
type FileEntry struct {
	// Path is the slash-separated path inside the zip or the layer,
	// without a leading "/" or "./" or a trailing "/"; ConfigPath for an
	// image config; the file's base name for a plain file artifact.
	Path string `json:"path"`
	// Size is the content's size; 0 for anything but regular files.
	Size int64 `json:"size"`
	// SHA256 is the content's digest, lowercase hex without a prefix;
	// empty for anything but regular files.
	SHA256 string `json:"sha256,omitempty"`
	// Mode is the permission bits with setuid, setgid and sticky as four
	// octal digits ("0755", "4755"); empty where the format has none (a
	// plain file artifact, an image config).
	Mode string `json:"mode,omitempty"`
	// Type is one of FileRegular, FileDir, FileSymlink, FileHardlink,
	// FileWhiteout, FileOther.
	Type string `json:"type"`
	// Link is a symlink's target, or the path a hard link points to.
	Link string `json:"link,omitempty"`
	// Layer is the 0-based index of the OCI layer the file is in. Every
	// layer's files are listed; a later layer's file shadows an earlier
	// one's, and whiteouts are listed, not applied.
	Layer int `json:"layer,omitempty"`
}

// zipExts are the file name endings that ManifestFile opens as zips.
var zipExts = []string{".jar", ".war", ".ear", ".aar", ".zip"}

func isZipName(name string) bool {
	name = strings.ToLower(name)
	return slices.ContainsFunc(zipExts, func(ext string) bool { return strings.HasSuffix(name, ext) })
}

// ManifestFile lists the file at path as the artifact name: a jar, war,
// ear, aar or zip file gets one entry per zip entry, any other file one
// entry for itself. Digest is the file's SHA-256.
func ManifestFile(ctx context.Context, name, path string) (ArtifactManifest, error) {
	am := ArtifactManifest{Name: name}
	f, err := os.Open(path)
	if err != nil {
		return am, fmt.Errorf("manifest: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return am, fmt.Errorf("manifest: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return am, fmt.Errorf("manifest: %s is not a regular file", path)
	}
	digest, _, err := attest.SHA256(ctx, f)
	if err != nil {
		return am, fmt.Errorf("manifest: reading %s: %w", path, err)
	}
	sum := hex.EncodeToString(digest[:])
	am.Digest = "sha256:" + sum
	if !isZipName(path) {
		am.Type = ArtifactFile
		am.Files = []FileEntry{{Path: filepath.Base(path), Size: fi.Size(), SHA256: sum, Type: FileRegular}}
		return am, nil
	}
	am.Type = ArtifactZip
	zr, err := zip.NewReader(f, fi.Size())
	if err != nil {
		return am, fmt.Errorf("manifest: %s is not a valid zip: %w", path, err)
	}
	for _, zf := range zr.File {
		if err := ctx.Err(); err != nil {
			return am, err
		}
		e, err := zipEntry(zf)
		if err != nil {
			return am, fmt.Errorf("manifest: %s: entry %q: %w", path, zf.Name, err)
		}
		am.Files = append(am.Files, e)
	}
	sortFiles(am.Files)
	return am, nil
}

func zipEntry(zf *zip.File) (FileEntry, error) {
	mode := zf.Mode()
	e := FileEntry{Path: cleanEntryPath(zf.Name), Mode: octalMode(mode.Perm(), mode&os.ModeSetuid != 0, mode&os.ModeSetgid != 0, mode&os.ModeSticky != 0)}
	switch {
	case mode.IsDir() || strings.HasSuffix(zf.Name, "/"):
		e.Type = FileDir
		return e, nil
	case mode&os.ModeSymlink != 0:
		e.Type = FileSymlink
		rc, err := zf.Open()
		if err != nil {
			return e, err
		}
		defer rc.Close()
		target, err := io.ReadAll(io.LimitReader(rc, 4096))
		if err != nil {
			return e, err
		}
		e.Link = string(target)
		return e, nil
	case !mode.IsRegular():
		e.Type = FileOther
		return e, nil
	}
	e.Type = FileRegular
	rc, err := zf.Open()
	if err != nil {
		return e, err
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc) // the zip reader checks the CRC-32 and size at EOF
	if err != nil {
		return e, err
	}
	e.Size = n
	e.SHA256 = hex.EncodeToString(h.Sum(nil))
	return e, nil
}

// cleanEntryPath makes a zip or tar entry name a clean relative path; the
// root is ".".
func cleanEntryPath(name string) string {
	p := path.Clean("/" + strings.TrimSuffix(name, "/"))
	if p == "/" {
		return "."
	}
	return p[1:]
}

func octalMode(perm os.FileMode, setuid, setgid, sticky bool) string {
	m := uint32(perm & 0o777)
	if setuid {
		m |= 0o4000
	}
	if setgid {
		m |= 0o2000
	}
	if sticky {
		m |= 0o1000
	}
	return fmt.Sprintf("%04o", m)
}

// maxJSONBlob bounds the index, manifest and config blobs read into memory.
const maxJSONBlob = 4 << 20

// ociLayout is an OCI image layout folder with a single image manifest.
type ociLayout struct {
	dir      string
	desc     ocispec.Descriptor // the image manifest's descriptor
	manifest ocispec.Manifest
}

// Media types of Docker's image format, which BuildKit can also export.
const (
	dockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
	dockerConfig       = "application/vnd.docker.container.image.v1+json"
	dockerLayer        = "application/vnd.docker.image.rootfs.diff.tar"
	dockerLayerGzip    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	// The OCI spec deprecated non-distributable layers (image-spec#965),
	// but layouts still hold them; their contents read like any layer's.
	ociLayerNonDistributable     = "application/vnd.oci.image.layer.nondistributable.v1.tar"
	ociLayerNonDistributableGzip = ociLayerNonDistributable + "+gzip"
	ociLayerNonDistributableZstd = ociLayerNonDistributable + "+zstd"
)

// openOCILayout reads the layout's index.json and its single image
// manifest. manifestDigest, if not empty, is the manifest to pick.
func openOCILayout(dir, manifestDigest string) (*ociLayout, error) {
	lb, err := readLimited(filepath.Join(dir, ocispec.ImageLayoutFile), 4096)
	if err != nil {
		return nil, fmt.Errorf("%s is not an OCI image layout: %w", dir, err)
	}
	var lay ocispec.ImageLayout
	if err := json.Unmarshal(lb, &lay); err != nil || lay.Version != ocispec.ImageLayoutVersion {
		return nil, fmt.Errorf("%s: oci-layout: want imageLayoutVersion %q, got %q", dir, ocispec.ImageLayoutVersion, lb)
	}
	ib, err := readLimited(filepath.Join(dir, "index.json"), maxJSONBlob)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	var idx ocispec.Index
	if err := json.Unmarshal(ib, &idx); err != nil {
		return nil, fmt.Errorf("%s: index.json: %w", dir, err)
	}
	var desc ocispec.Descriptor
	switch {
	case manifestDigest != "":
		i := slices.IndexFunc(idx.Manifests, func(d ocispec.Descriptor) bool { return string(d.Digest) == manifestDigest })
		if i < 0 {
			return nil, fmt.Errorf("%s: index.json does not list %s", dir, manifestDigest)
		}
		desc = idx.Manifests[i]
	case len(idx.Manifests) == 0:
		return nil, fmt.Errorf("%s: index.json lists no manifest", dir)
	case len(idx.Manifests) > 1:
		var ds []string
		for _, d := range idx.Manifests {
			ds = append(ds, fmt.Sprintf("%s (%s)", d.Digest, d.MediaType))
		}
		return nil, fmt.Errorf("%s: index.json lists %d manifests, want a single image manifest: %s", dir, len(idx.Manifests), strings.Join(ds, ", "))
	default:
		desc = idx.Manifests[0]
	}
	if desc.MediaType == ocispec.MediaTypeImageIndex || desc.MediaType == dockerManifestList {
		return nil, fmt.Errorf("%s: index.json lists an image index (%s), not an image manifest; export a single platform", dir, desc.Digest)
	}
	mb, err := readBlobBytes(dir, desc)
	if err != nil {
		return nil, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(mb, &m); err != nil {
		return nil, fmt.Errorf("%s: manifest %s: %w", dir, desc.Digest, err)
	}
	mt := cmp.Or(m.MediaType, desc.MediaType)
	switch mt {
	case ocispec.MediaTypeImageManifest, dockerManifest:
	case ocispec.MediaTypeImageIndex, dockerManifestList:
		return nil, fmt.Errorf("%s: %s is an image index, not an image manifest; export a single platform", dir, desc.Digest)
	default:
		if m.Config.Digest == "" {
			return nil, fmt.Errorf("%s: %s has media type %q and no config: not an image manifest", dir, desc.Digest, mt)
		}
	}
	return &ociLayout{dir: dir, desc: desc, manifest: m}, nil
}

// blobPath returns the file of a sha256 blob, refusing other algorithms and
// malformed digests (which could name a path outside the layout).
func blobPath(dir string, d ocispec.Descriptor) (string, error) {
	hexPart, ok := strings.CutPrefix(string(d.Digest), "sha256:")
	if !ok || !isHex(hexPart, 64) {
		return "", fmt.Errorf("%s: blob digest %q is not sha256:<64 hex>", dir, d.Digest)
	}
	return filepath.Join(dir, "blobs", "sha256", hexPart), nil
}

// blobReader streams a blob and checks its size and digest when fully read.
type blobReader struct {
	f    *os.File
	desc ocispec.Descriptor
	h    hash.Hash
	n    int64
	err  error
}

func openBlob(dir string, d ocispec.Descriptor) (*blobReader, error) {
	p, err := blobPath(dir, d)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fmt.Errorf("blob %s: %w", d.Digest, err)
	}
	return &blobReader{f: f, desc: d, h: sha256.New()}, nil
}

func (b *blobReader) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.f.Read(p)
	b.h.Write(p[:n])
	b.n += int64(n)
	if b.n > b.desc.Size {
		b.err = fmt.Errorf("blob %s: larger than its descriptor's size %d", b.desc.Digest, b.desc.Size)
		return n, b.err
	}
	if err == io.EOF {
		if vErr := b.check(); vErr != nil {
			b.err = vErr
			return n, vErr
		}
	}
	return n, err
}

func (b *blobReader) check() error {
	if b.n != b.desc.Size {
		return fmt.Errorf("blob %s: size %d does not match its descriptor's %d", b.desc.Digest, b.n, b.desc.Size)
	}
	if got := "sha256:" + hex.EncodeToString(b.h.Sum(nil)); got != string(b.desc.Digest) {
		return fmt.Errorf("blob %s: content has digest %s: the layout is corrupt", b.desc.Digest, got)
	}
	return nil
}

// finish reads the rest of the blob and checks it.
func (b *blobReader) finish() error {
	if _, err := io.Copy(io.Discard, b); err != nil {
		return err
	}
	return nil
}

func (b *blobReader) Close() error { return b.f.Close() }

func readBlobBytes(dir string, d ocispec.Descriptor) ([]byte, error) {
	if d.Size < 0 || d.Size > maxJSONBlob {
		return nil, fmt.Errorf("%s: blob %s: size %d is out of range (at most %d)", dir, d.Digest, d.Size, maxJSONBlob)
	}
	b, err := openBlob(dir, d)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	defer b.Close()
	data, err := io.ReadAll(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", dir, err)
	}
	return data, nil
}

// layerTar opens layer i's blob and returns a reader of its uncompressed
// tar, and a function that reads the rest of the blob, checks its digest and
// closes it.
func (l *ociLayout) layerTar(i int) (io.Reader, func() error, error) {
	d := l.manifest.Layers[i]
	b, err := openBlob(l.dir, d)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: layer %d: %w", l.dir, i, err)
	}
	var r io.Reader
	var closeDec func()
	switch d.MediaType {
	case ocispec.MediaTypeImageLayer, ociLayerNonDistributable, dockerLayer:
		r = b
	case ocispec.MediaTypeImageLayerGzip, ociLayerNonDistributableGzip, dockerLayerGzip:
		zr, err := gzip.NewReader(b)
		if err != nil {
			b.Close()
			return nil, nil, fmt.Errorf("%s: layer %d (%s): %w", l.dir, i, d.Digest, err)
		}
		zr.Multistream(true)
		r = zr
	case ocispec.MediaTypeImageLayerZstd, ociLayerNonDistributableZstd:
		zr, err := zstd.NewReader(b, zstd.WithDecoderConcurrency(1))
		if err != nil {
			b.Close()
			return nil, nil, fmt.Errorf("%s: layer %d (%s): %w", l.dir, i, d.Digest, err)
		}
		r, closeDec = zr, zr.Close
	default:
		b.Close()
		return nil, nil, fmt.Errorf("%s: layer %d (%s): unsupported media type %q", l.dir, i, d.Digest, d.MediaType)
	}
	finish := func() error {
		defer b.Close()
		if closeDec != nil {
			defer closeDec()
		}
		// Read the decompressed stream to its end (gzip checks its CRC
		// there), then whatever follows in the blob.
		if _, err := io.Copy(io.Discard, r); err != nil {
			return fmt.Errorf("%s: layer %d: %w", l.dir, i, err)
		}
		if err := b.finish(); err != nil {
			return fmt.Errorf("%s: layer %d: %w", l.dir, i, err)
		}
		return nil
	}
	return r, finish, nil
}

// ManifestOCILayout lists the image in the OCI image layout folder
// layoutDir as the artifact name. The layout's index.json must list a
// single image manifest, whose digest is the artifact's. Files are the
// config blob (Path ConfigPath) and every file of every layer, with Layer
// set. Every blob read is checked against its digest.
func ManifestOCILayout(ctx context.Context, name, layoutDir string) (ArtifactManifest, error) {
	am := ArtifactManifest{Name: name, Type: ArtifactOCILayout}
	l, err := openOCILayout(layoutDir, "")
	if err != nil {
		return am, fmt.Errorf("manifest: %w", err)
	}
	am.Digest = string(l.desc.Digest)
	if _, err := readBlobBytes(layoutDir, l.manifest.Config); err != nil {
		return am, fmt.Errorf("manifest: config: %w", err)
	}
	am.Files = append(am.Files, FileEntry{
		Path: ConfigPath, Size: l.manifest.Config.Size, Type: FileRegular,
		SHA256: strings.TrimPrefix(string(l.manifest.Config.Digest), "sha256:"),
	})
	for i := range l.manifest.Layers {
		files, err := l.layerFiles(ctx, i)
		if err != nil {
			return am, fmt.Errorf("manifest: %w", err)
		}
		am.Files = append(am.Files, files...)
	}
	sortFiles(am.Files)
	return am, nil
}

func (l *ociLayout) layerFiles(ctx context.Context, i int) (files []FileEntry, err error) {
	r, finish, err := l.layerTar(i)
	if err != nil {
		return nil, err
	}
	defer func() {
		if fErr := finish(); err == nil {
			err = fErr
		}
	}()
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, fmt.Errorf("%s: layer %d (%s): reading tar: %w", l.dir, i, l.manifest.Layers[i].Digest, err)
		}
		e := FileEntry{
			Path:  cleanEntryPath(hdr.Name),
			Mode:  octalMode(os.FileMode(hdr.Mode)&0o777, hdr.Mode&0o4000 != 0, hdr.Mode&0o2000 != 0, hdr.Mode&0o1000 != 0),
			Layer: i,
		}
		switch {
		case strings.HasPrefix(path.Base(e.Path), ".wh."):
			e.Type = FileWhiteout
		case hdr.Typeflag == tar.TypeReg: // archive/tar reads the old TypeRegA as TypeReg
			e.Type = FileRegular
			h := sha256.New()
			n, err := io.Copy(h, tr)
			if err != nil {
				return nil, fmt.Errorf("%s: layer %d: %s: %w", l.dir, i, hdr.Name, err)
			}
			e.Size, e.SHA256 = n, hex.EncodeToString(h.Sum(nil))
		case hdr.Typeflag == tar.TypeDir:
			e.Type = FileDir
		case hdr.Typeflag == tar.TypeSymlink:
			e.Type, e.Link = FileSymlink, hdr.Linkname
		case hdr.Typeflag == tar.TypeLink:
			e.Type, e.Link = FileHardlink, cleanEntryPath(hdr.Linkname)
		default:
			e.Type = FileOther
		}
		files = append(files, e)
	}
}

// sortFiles sorts by path, then layer, then the rest, so that the order is
// fully determined even with duplicate paths.
func sortFiles(fs []FileEntry) {
	slices.SortStableFunc(fs, func(a, b FileEntry) int {
		return cmp.Or(
			strings.Compare(a.Path, b.Path),
			cmp.Compare(a.Layer, b.Layer),
			strings.Compare(a.Type, b.Type),
			strings.Compare(a.SHA256, b.SHA256),
			cmp.Compare(a.Size, b.Size),
			strings.Compare(a.Mode, b.Mode),
			strings.Compare(a.Link, b.Link),
		)
	})
}

// sortedManifest returns a copy of m with version 1, artifacts sorted by
// name and files sorted.
func sortedManifest(m *OutputManifest) *OutputManifest {
	c := &OutputManifest{Version: ManifestVersion, Artifacts: slices.Clone(m.Artifacts)}
	if c.Artifacts == nil {
		c.Artifacts = []ArtifactManifest{}
	}
	for i := range c.Artifacts {
		c.Artifacts[i].Files = slices.Clone(c.Artifacts[i].Files)
		if c.Artifacts[i].Files == nil {
			c.Artifacts[i].Files = []FileEntry{}
		}
		sortFiles(c.Artifacts[i].Files)
	}
	slices.SortStableFunc(c.Artifacts, func(a, b ArtifactManifest) int {
		return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Digest, b.Digest))
	})
	return c
}

// MarshalManifest returns m as deterministic JSON: indented, artifacts
// sorted by name, files by path and layer. m is not changed.
func MarshalManifest(m *OutputManifest) ([]byte, error) {
	if m.Version != 0 && m.Version != ManifestVersion {
		return nil, fmt.Errorf("manifest: version %d is not supported (want %d)", m.Version, ManifestVersion)
	}
	c := sortedManifest(m)
	if err := c.validate(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(c); err != nil {
		return nil, fmt.Errorf("manifest: encoding: %w", err)
	}
	return buf.Bytes(), nil
}

// WriteManifest writes m to path as deterministic JSON (see
// [MarshalManifest]), replacing the file atomically and durably
// ([fsutil.WriteFileAtomic]).
func WriteManifest(path string, m *OutputManifest) error {
	data, err := MarshalManifest(m)
	if err != nil {
		return err
	}
	if err := fsutil.WriteFileAtomic(path, data, 0o644); err != nil {
		return fmt.Errorf("writing manifest: %w", err)
	}
	return nil
}

// maxManifestSize bounds an output manifest file: about 300,000 file
// entries.
const maxManifestSize = 64 << 20

// ParseManifest parses an output manifest strictly: unknown fields,
// trailing data, another version and malformed entries are errors.
func ParseManifest(data []byte) (*OutputManifest, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	m := new(OutputManifest)
	if err := d.Decode(m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, errors.New("manifest: data after the JSON object")
	}
	if m.Version != ManifestVersion {
		return nil, fmt.Errorf("manifest: version %d is not supported (want %d)", m.Version, ManifestVersion)
	}
	if err := m.validate(); err != nil {
		return nil, err
	}
	return m, nil
}

// ReadManifest reads the output manifest at path (see [ParseManifest]).
// The file must be a regular file of at most 64 MiB.
func ReadManifest(path string) (*OutputManifest, error) {
	data, err := readLimited(path, maxManifestSize)
	if err != nil {
		return nil, fmt.Errorf("reading manifest: %w", err)
	}
	m, err := ParseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

func (m *OutputManifest) validate() error {
	seen := make(map[string]bool)
	for i, a := range m.Artifacts {
		where := fmt.Sprintf("manifest: artifacts[%d] (%q)", i, a.Name)
		switch {
		case a.Name == "":
			return fmt.Errorf("%s: name missing", where)
		case seen[a.Name]:
			return fmt.Errorf("%s: name listed twice", where)
		case checkDigest("digest", a.Digest) != nil:
			return fmt.Errorf("%s: digest %q is not sha256:<64 hex>", where, a.Digest)
		}
		seen[a.Name] = true
		switch a.Type {
		case ArtifactOCILayout, ArtifactZip, ArtifactFile:
		default:
			return fmt.Errorf("%s: type %q is not %s, %s or %s", where, a.Type, ArtifactOCILayout, ArtifactZip, ArtifactFile)
		}
		if a.Path != "" {
			if err := checkRelPath("path", a.Path); err != nil {
				return fmt.Errorf("%s: path %q must be relative to the output folder and stay inside it", where, a.Path)
			}
		}
		for j, f := range a.Files {
			fw := fmt.Sprintf("%s: files[%d] (%q)", where, j, f.Path)
			switch f.Type {
			case FileRegular:
				if !isHex(f.SHA256, 64) || f.Size < 0 {
					return fmt.Errorf("%s: a file needs a size and 64 hex digits of sha256", fw)
				}
			case FileDir, FileSymlink, FileHardlink, FileWhiteout, FileOther:
				if f.SHA256 != "" {
					return fmt.Errorf("%s: a %s has no sha256", fw, f.Type)
				}
			default:
				return fmt.Errorf("%s: type %q is unknown", fw, f.Type)
			}
			if f.Path == "" || f.Layer < 0 {
				return fmt.Errorf("%s: path missing or layer negative", fw)
			}
		}
	}
	return nil
}
