package builder

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// zipFile describes an entry of a test zip.
type zipFile struct {
	name string
	mode os.FileMode
	body string
}

func writeZip(t *testing.T, path string, files []zipFile) {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		h := &zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: time.Unix(1700000000, 0).UTC()}
		h.SetMode(f.mode)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(f.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestManifestFileZip(t *testing.T) {
	p := filepath.Join(t.TempDir(), "hello.jar")
	writeZip(t, p, []zipFile{
		{"META-INF/", os.ModeDir | 0o755, ""},
		{"META-INF/MANIFEST.MF", 0o644, "Manifest-Version: 1.0\n"},
		{"bin/run", 0o755 | os.ModeSetuid, "#!/bin/sh\n"},
		{"lib/link", os.ModeSymlink | 0o777, "../bin/run"},
	})
	data, _ := os.ReadFile(p)
	got, err := ManifestFile(context.Background(), "hello.jar", p)
	if err != nil {
		t.Fatal(err)
	}
	want := ArtifactManifest{
		Name: "hello.jar", Digest: "sha256:" + sha(data), Type: ArtifactZip,
		Files: []FileEntry{
			{Path: "META-INF", Mode: "0755", Type: FileDir},
			{Path: "META-INF/MANIFEST.MF", Size: 22, SHA256: sha([]byte("Manifest-Version: 1.0\n")), Mode: "0644", Type: FileRegular},
			{Path: "bin/run", Size: 10, SHA256: sha([]byte("#!/bin/sh\n")), Mode: "4755", Type: FileRegular},
			{Path: "lib/link", Mode: "0777", Type: FileSymlink, Link: "../bin/run"},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}
}

func TestManifestFilePlain(t *testing.T) {
	p := filepath.Join(t.TempDir(), "hello-1.0.pom")
	body := []byte("<project/>\n")
	if err := os.WriteFile(p, body, 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := ManifestFile(context.Background(), "hello-1.0.pom", p)
	if err != nil {
		t.Fatal(err)
	}
	want := ArtifactManifest{Name: "hello-1.0.pom", Digest: "sha256:" + sha(body), Type: ArtifactFile,
		Files: []FileEntry{{Path: "hello-1.0.pom", Size: int64(len(body)), SHA256: sha(body), Type: FileRegular}}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestManifestFileErrors(t *testing.T) {
	dir := t.TempDir()
	notZip := filepath.Join(dir, "bad.jar")
	if err := os.WriteFile(notZip, []byte("not a zip"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ManifestFile(context.Background(), "bad.jar", notZip); err == nil || !strings.Contains(err.Error(), "not a valid zip") {
		t.Errorf("got %v, want not a valid zip", err)
	}
	if _, err := ManifestFile(context.Background(), "x", filepath.Join(dir, "missing.jar")); err == nil {
		t.Errorf("got no error for a missing file")
	}
	if _, err := ManifestFile(context.Background(), "x", dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("got %v, want not a regular file", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := ManifestFile(ctx, "bad.jar", notZip); err == nil {
		t.Errorf("got no error with a cancelled context")
	}
}

// tarEntry describes an entry of a test layer.
type tarEntry struct {
	name     string
	typ      byte
	mode     int64
	body     string
	linkname string
}

func makeTar(t *testing.T, entries []tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.linkname, ModTime: time.Unix(1700000000, 0), Format: tar.FormatPAX}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func gzipBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func zstdBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(b, nil)
}

// testLayout writes OCI image layouts in tests.
type testLayout struct {
	t   *testing.T
	dir string
}

func newTestLayout(t *testing.T, dir string) *testLayout {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, ocispec.ImageLayoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	return &testLayout{t, dir}
}

func (l *testLayout) blob(mediaType string, data []byte) ocispec.Descriptor {
	l.t.Helper()
	d := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	if err := os.WriteFile(filepath.Join(l.dir, "blobs", "sha256", d.Digest.Encoded()), data, 0o644); err != nil {
		l.t.Fatal(err)
	}
	return d
}

func (l *testLayout) jsonBlob(mediaType string, v any) ocispec.Descriptor {
	l.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		l.t.Fatal(err)
	}
	return l.blob(mediaType, b)
}

// image writes a config and a manifest for the layers and returns the
// manifest's descriptor.
func (l *testLayout) image(config string, layers ...ocispec.Descriptor) ocispec.Descriptor {
	l.t.Helper()
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    l.blob(ocispec.MediaTypeImageConfig, []byte(config)),
		Layers:    layers,
	}
	m.SchemaVersion = 2
	return l.jsonBlob(ocispec.MediaTypeImageManifest, m)
}

func (l *testLayout) index(manifests ...ocispec.Descriptor) {
	l.t.Helper()
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: manifests}
	idx.SchemaVersion = 2
	b, err := json.Marshal(idx)
	if err != nil {
		l.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(l.dir, "index.json"), b, 0o644); err != nil {
		l.t.Fatal(err)
	}
}

// helloLayout writes a three-layer image (tar+gzip, plain tar, tar+zstd)
// into dir and returns the manifest's digest and the layer tars.
func helloLayout(t *testing.T, dir string, etcHello string) (string, [][]byte) {
	t.Helper()
	l := newTestLayout(t, dir)
	tars := [][]byte{
		makeTar(t, []tarEntry{
			{"./", tar.TypeDir, 0o755, "", ""},
			{"bin/", tar.TypeDir, 0o755, "", ""},
			{"bin/busybox", tar.TypeReg, 0o4755, "\x7fELF\x00binary", ""},
			{"bin/sh", tar.TypeSymlink, 0o777, "", "busybox"},
			{"bin/ls", tar.TypeLink, 0o755, "", "./bin/busybox"},
			{"etc/passwd", tar.TypeReg, 0o644, "root:x:0:0::/root:/bin/sh\n", ""},
			{"dev/null", tar.TypeChar, 0o666, "", ""},
		}),
		makeTar(t, []tarEntry{
			{"etc/.wh.passwd", tar.TypeReg, 0o644, "", ""},
			{"var/.wh..wh..opq", tar.TypeReg, 0o644, "", ""},
			{"etc/hello", tar.TypeReg, 0o644, etcHello, ""},
		}),
		makeTar(t, []tarEntry{
			{"etc/hello", tar.TypeReg, 0o600, "shadowed\n", ""},
		}),
	}
	m := l.image(`{"architecture":"amd64","os":"linux"}`,
		l.blob(ocispec.MediaTypeImageLayerGzip, gzipBytes(t, tars[0])),
		l.blob(ocispec.MediaTypeImageLayer, tars[1]),
		l.blob(ocispec.MediaTypeImageLayerZstd, zstdBytes(t, tars[2])),
	)
	l.index(m)
	return string(m.Digest), tars
}

func TestManifestOCILayout(t *testing.T) {
	dir := t.TempDir()
	mdigest, _ := helloLayout(t, dir, "hello\n")
	got, err := ManifestOCILayout(context.Background(), "hello:1.0", dir)
	if err != nil {
		t.Fatal(err)
	}
	config := `{"architecture":"amd64","os":"linux"}`
	want := ArtifactManifest{
		Name: "hello:1.0", Digest: mdigest, Type: ArtifactOCILayout,
		Files: []FileEntry{
			{Path: ".", Mode: "0755", Type: FileDir},
			{Path: ConfigPath, Size: int64(len(config)), SHA256: sha([]byte(config)), Type: FileRegular},
			{Path: "bin", Mode: "0755", Type: FileDir},
			{Path: "bin/busybox", Size: 11, SHA256: sha([]byte("\x7fELF\x00binary")), Mode: "4755", Type: FileRegular},
			{Path: "bin/ls", Mode: "0755", Type: FileHardlink, Link: "bin/busybox"},
			{Path: "bin/sh", Mode: "0777", Type: FileSymlink, Link: "busybox"},
			{Path: "dev/null", Mode: "0666", Type: FileOther},
			{Path: "etc/.wh.passwd", Mode: "0644", Type: FileWhiteout, Layer: 1},
			{Path: "etc/hello", Size: 6, SHA256: sha([]byte("hello\n")), Mode: "0644", Type: FileRegular, Layer: 1},
			{Path: "etc/hello", Size: 9, SHA256: sha([]byte("shadowed\n")), Mode: "0600", Type: FileRegular, Layer: 2},
			{Path: "etc/passwd", Size: 26, SHA256: sha([]byte("root:x:0:0::/root:/bin/sh\n")), Mode: "0644", Type: FileRegular},
			{Path: "var/.wh..wh..opq", Mode: "0644", Type: FileWhiteout, Layer: 1},
		},
	}
	if !reflect.DeepEqual(got, want) {
		gj, _ := json.MarshalIndent(got, "", " ")
		wj, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("got\n%s\nwant\n%s", gj, wj)
	}
}

func TestManifestOCILayoutErrors(t *testing.T) {
	ctx := context.Background()
	t.Run("layer digest mismatch", func(t *testing.T) {
		dir := t.TempDir()
		helloLayout(t, dir, "hello\n")
		// Change one byte of the plain tar layer, keeping its size.
		l, err := openOCILayout(dir, "")
		if err != nil {
			t.Fatal(err)
		}
		p, _ := blobPath(dir, l.manifest.Layers[1])
		b, _ := os.ReadFile(p)
		b[bytes.Index(b, []byte("hello\n"))] = 'j'
		os.WriteFile(p, b, 0o644)
		_, err = ManifestOCILayout(ctx, "hello:1.0", dir)
		if err == nil || !strings.Contains(err.Error(), "layer 1") || !strings.Contains(err.Error(), "corrupt") {
			t.Errorf("got %v, want a digest mismatch in layer 1", err)
		}
	})
	t.Run("truncated gzip layer", func(t *testing.T) {
		dir := t.TempDir()
		helloLayout(t, dir, "hello\n")
		l, _ := openOCILayout(dir, "")
		p, _ := blobPath(dir, l.manifest.Layers[0])
		b, _ := os.ReadFile(p)
		os.WriteFile(p, b[:len(b)-10], 0o644)
		if _, err := ManifestOCILayout(ctx, "hello:1.0", dir); err == nil || !strings.Contains(err.Error(), "layer 0") {
			t.Errorf("got %v, want an error in layer 0", err)
		}
	})
	t.Run("manifest digest mismatch", func(t *testing.T) {
		dir := t.TempDir()
		mdigest, _ := helloLayout(t, dir, "hello\n")
		p := filepath.Join(dir, "blobs", "sha256", strings.TrimPrefix(mdigest, "sha256:"))
		b, _ := os.ReadFile(p)
		os.WriteFile(p, bytes.Replace(b, []byte(`"schemaVersion":2`), []byte(`"schemaVersion":3`), 1), 0o644)
		_, err := ManifestOCILayout(ctx, "hello:1.0", dir)
		if err == nil || !strings.Contains(err.Error(), mdigest) || !strings.Contains(err.Error(), "corrupt") {
			t.Errorf("got %v, want a digest mismatch naming %s", err, mdigest)
		}
	})
	t.Run("index of two manifests", func(t *testing.T) {
		dir := t.TempDir()
		l := newTestLayout(t, dir)
		layer := l.blob(ocispec.MediaTypeImageLayer, makeTar(t, nil))
		a := l.image(`{"architecture":"amd64","os":"linux"}`, layer)
		b := l.image(`{"architecture":"arm64","os":"linux"}`, layer)
		l.index(a, b)
		_, err := ManifestOCILayout(ctx, "hello:1.0", dir)
		if err == nil || !strings.Contains(err.Error(), "lists 2 manifests") || !strings.Contains(err.Error(), string(a.Digest)) || !strings.Contains(err.Error(), string(b.Digest)) {
			t.Errorf("got %v, want an error naming both manifests", err)
		}
	})
	t.Run("index of an index", func(t *testing.T) {
		dir := t.TempDir()
		l := newTestLayout(t, dir)
		layer := l.blob(ocispec.MediaTypeImageLayer, makeTar(t, nil))
		a := l.image(`{}`, layer)
		inner := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{a}}
		inner.SchemaVersion = 2
		l.index(l.jsonBlob(ocispec.MediaTypeImageIndex, inner))
		_, err := ManifestOCILayout(ctx, "hello:1.0", dir)
		if err == nil || !strings.Contains(err.Error(), "image index") {
			t.Errorf("got %v, want an image index error", err)
		}
	})
	t.Run("unsupported layer type", func(t *testing.T) {
		dir := t.TempDir()
		l := newTestLayout(t, dir)
		l.index(l.image(`{}`, l.blob("application/x-foo", []byte("x"))))
		_, err := ManifestOCILayout(ctx, "hello:1.0", dir)
		if err == nil || !strings.Contains(err.Error(), `unsupported media type "application/x-foo"`) {
			t.Errorf("got %v, want unsupported media type", err)
		}
	})
	t.Run("bad blob digest", func(t *testing.T) {
		dir := t.TempDir()
		l := newTestLayout(t, dir)
		l.index(ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: "sha256:../../etc/passwd", Size: 10})
		_, err := ManifestOCILayout(ctx, "hello:1.0", dir)
		if err == nil || !strings.Contains(err.Error(), "is not sha256:<64 hex>") {
			t.Errorf("got %v, want a bad digest error", err)
		}
	})
	t.Run("not a layout", func(t *testing.T) {
		_, err := ManifestOCILayout(ctx, "hello:1.0", t.TempDir())
		if err == nil || !strings.Contains(err.Error(), "not an OCI image layout") {
			t.Errorf("got %v, want not an OCI image layout", err)
		}
	})
}

func TestWriteReadManifest(t *testing.T) {
	dir := t.TempDir()
	f := func(p string, layer int) FileEntry {
		return FileEntry{Path: p, Size: 1, SHA256: sha([]byte(p)), Mode: "0644", Type: FileRegular, Layer: layer}
	}
	d := "sha256:" + sha([]byte("x"))
	m := &OutputManifest{Artifacts: []ArtifactManifest{
		{Name: "b.jar", Digest: d, Type: ArtifactZip, Files: []FileEntry{f("z", 0), f("a", 0)}},
		{Name: "a:1", Digest: d, Type: ArtifactOCILayout, Path: "artifacts/a", Files: []FileEntry{f("x", 2), f("x", 1), f("<config>", 0)}},
	}}
	p1, p2 := filepath.Join(dir, "m1.json"), filepath.Join(dir, "m2.json")
	if err := WriteManifest(p1, m); err != nil {
		t.Fatal(err)
	}
	// The same content in another order gives the same bytes.
	m2 := &OutputManifest{Version: 1, Artifacts: []ArtifactManifest{m.Artifacts[1], m.Artifacts[0]}}
	m2.Artifacts[0].Files = []FileEntry{f("x", 1), f("<config>", 0), f("x", 2)}
	if err := WriteManifest(p2, m2); err != nil {
		t.Fatal(err)
	}
	b1, _ := os.ReadFile(p1)
	b2, _ := os.ReadFile(p2)
	if !bytes.Equal(b1, b2) {
		t.Errorf("got different bytes for the same manifest:\n%s\n%s", b1, b2)
	}
	if m.Artifacts[0].Name != "b.jar" || m.Artifacts[0].Files[0].Path != "z" {
		t.Errorf("WriteManifest changed its argument")
	}
	got, err := ReadManifest(p1)
	if err != nil {
		t.Fatal(err)
	}
	if got.Version != 1 || got.Artifacts[0].Name != "a:1" || got.Artifacts[0].Files[0].Path != "<config>" || got.Artifacts[0].Files[2].Layer != 2 {
		t.Errorf("got %+v, want sorted artifacts and files", got)
	}
	if !strings.Contains(string(b1), "\n  \"artifacts\": [\n") {
		t.Errorf("got %s, want indented JSON", b1)
	}

	bad := map[string]string{
		"unknown field":   strings.Replace(string(b1), `"version": 1`, `"version": 1, "extra": true`, 1),
		"version 2":       strings.Replace(string(b1), `"version": 1`, `"version": 2`, 1),
		"trailing data":   string(b1) + "{}",
		"bad digest":      strings.Replace(string(b1), d, "sha256:abc", 1),
		"bad file type":   strings.Replace(string(b1), `"type": "file"`, `"type": "fifo"`, 1),
		"escaping path":   strings.Replace(string(b1), `"artifacts/a"`, `"../a"`, 1),
		"not an object":   "[]",
		"duplicate names": strings.Replace(string(b1), `"b.jar"`, `"a:1"`, 1),
	}
	for name, text := range bad {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(dir, "bad.json")
			os.WriteFile(p, []byte(text), 0o644)
			if _, err := ReadManifest(p); err == nil || !strings.Contains(err.Error(), "bad.json") {
				t.Errorf("got %v, want an error naming bad.json", err)
			}
		})
	}
}
