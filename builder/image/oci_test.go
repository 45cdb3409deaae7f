package image

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func writeTestImage(t *testing.T, store, name string, cfg ImageConfig) Made {
	t.Helper()
	root := t.TempDir()
	makeTree(t, root, false)
	m, err := WriteImage(context.Background(), store, name, root, cfg, testEpoch)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestWriteImageReproducible(t *testing.T) {
	cfg := ImageConfig{CreatedBy: "test", Labels: map[string]string{"b": "2", "a": "1"}}
	s1, s2 := t.TempDir(), t.TempDir()
	m1 := writeTestImage(t, s1, "tiny", cfg)
	m2 := writeTestImage(t, s2, "tiny", cfg)
	if m1.Digest != m2.Digest || !digestRE.MatchString(m1.Digest) {
		t.Fatalf("digests %s, %s", m1.Digest, m2.Digest)
	}
	if m1.Dir != filepath.Join(s1, "tiny") || m1.Size == 0 || m1.Files == 0 {
		t.Fatalf("made %+v", m1)
	}
	if s := m1.String(); !strings.HasPrefix(s, "tiny sha256:") {
		t.Errorf("String() = %q", s)
	}
	// Remaking in place replaces the layout, with no leftovers.
	m3 := writeTestImage(t, s1, "tiny", cfg)
	if m3.Digest != m1.Digest {
		t.Fatalf("remade: %s != %s", m3.Digest, m1.Digest)
	}
	ents, _ := os.ReadDir(s1)
	if len(ents) != 1 {
		t.Fatalf("store holds %d entries after a remake", len(ents))
	}
	blobs, _ := os.ReadDir(filepath.Join(s1, "tiny", "blobs", "sha256"))
	if len(blobs) != 3 {
		t.Fatalf("%d blobs, want 3", len(blobs))
	}

	// The layout is what OCI tools expect.
	var idx index
	b, err := os.ReadFile(filepath.Join(m1.Dir, "index.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 1 || idx.Manifests[0].Annotations[AnnotationRefName] != "tiny" || idx.Manifests[0].Digest != m1.Digest {
		t.Fatalf("index %s", b)
	}
	dir, man, err := resolve(s1, "tiny", m1.Digest)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := readBlob(dir, man.Config)
	if err != nil {
		t.Fatal(err)
	}
	var conf imageConfigJSON
	if err := json.Unmarshal(cb, &conf); err != nil {
		t.Fatal(err)
	}
	if conf.Architecture != "amd64" || conf.OS != "linux" || conf.Created != "2024-01-02T03:04:05Z" ||
		conf.Config.WorkingDir != "/" || len(conf.Config.Env) != 1 || conf.Config.Env[0] != DefaultPath ||
		len(conf.RootFS.DiffIDs) != 1 || conf.RootFS.DiffIDs[0] != man.Layers[0].Digest ||
		len(conf.History) != 1 || conf.History[0].Created != conf.Created {
		t.Fatalf("config %s", cb)
	}

	// Gzip: reproducible too, the same diff_id, another digest.
	g1 := writeTestImage(t, t.TempDir(), "tiny", ImageConfig{CreatedBy: "test", Gzip: true})
	g2 := writeTestImage(t, t.TempDir(), "tiny", ImageConfig{CreatedBy: "test", Gzip: true})
	if g1.Digest != g2.Digest {
		t.Fatalf("gzip digests %s, %s", g1.Digest, g2.Digest)
	}
	if g1.Digest == m1.Digest || g1.Size >= m1.Size {
		t.Fatalf("gzip %+v vs tar %+v", g1, m1)
	}
	out := t.TempDir()
	if err := UnpackImage(filepath.Dir(g1.Dir), "tiny", g1.Digest, out); err != nil {
		t.Fatal(err)
	}
	if d, _, _ := layerDigest(t, out); "sha256:"+d != conf.RootFS.DiffIDs[0] {
		t.Fatalf("gzip layer unpacked: diff_id %s, want %s", d, conf.RootFS.DiffIDs[0])
	}
}

func TestWriteImageBadName(t *testing.T) {
	for _, n := range []string{"", "Busybox", "../x", "a/b", ".hidden"} {
		if _, err := WriteImage(context.Background(), t.TempDir(), n, t.TempDir(), ImageConfig{}, testEpoch); err == nil {
			t.Errorf("name %q: no error", n)
		}
	}
}

func TestResolveErrors(t *testing.T) {
	store := t.TempDir()
	m := writeTestImage(t, store, "busybox", ImageConfig{})
	if dir, err := Resolve(store, "busybox", m.Digest); err != nil || dir != m.Dir {
		t.Fatalf("Resolve = %q, %v", dir, err)
	}
	if _, err := Resolve(store, "busybox", ""); err != nil {
		t.Fatalf("Resolve without a pin: %v", err)
	}
	other := "sha256:" + strings.Repeat("b", 64)
	mustFail := func(t *testing.T, store, name, digest string, want ...string) {
		t.Helper()
		_, err := Resolve(store, name, digest)
		if err == nil {
			t.Fatalf("Resolve(%q, %q): no error", name, digest)
		}
		for _, w := range want {
			if !strings.Contains(err.Error(), w) {
				t.Fatalf("error %q\nlacks %q", err, w)
			}
		}
	}

	t.Run("pin differs", func(t *testing.T) {
		_, err := Resolve(store, "busybox", other)
		want := "image busybox: index.json names " + m.Digest + ", the spec pins " + other +
			": make the image with 'pyrsia-build image make busybox' or fix the spec"
		if err == nil || err.Error() != want {
			t.Fatalf("error %v\nwant  %s", err, want)
		}
	})
	t.Run("no layout", func(t *testing.T) {
		mustFail(t, store, "maven", "", "image maven: no OCI layout at "+filepath.Join(store, "maven"), "pyrsia-build image make maven")
	})
	t.Run("bad pin", func(t *testing.T) {
		mustFail(t, store, "busybox", "sha256:abc", "not a sha256:<64 hex> digest")
	})
	t.Run("bad name", func(t *testing.T) {
		mustFail(t, store, "../busybox", "", "not an image name")
	})

	// Each of the following breaks a copy of the layout.
	broken := func(t *testing.T, edit func(dir string)) string {
		t.Helper()
		s := t.TempDir()
		if err := os.CopyFS(filepath.Join(s, "busybox"), os.DirFS(m.Dir)); err != nil {
			t.Fatal(err)
		}
		edit(filepath.Join(s, "busybox"))
		return s
	}
	dir, man, err := resolve(store, "busybox", m.Digest)
	if err != nil {
		t.Fatal(err)
	}
	layer := filepath.Join("blobs", "sha256", hexOf(man.Layers[0].Digest))
	_ = dir
	t.Run("layer changed", func(t *testing.T) {
		s := broken(t, func(d string) {
			p := filepath.Join(d, layer)
			b, _ := os.ReadFile(p)
			b[600] ^= 1
			os.Chmod(p, 0o644)
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		})
		mustFail(t, s, "busybox", m.Digest, "layer 0: blob "+man.Layers[0].Digest+" has digest sha256:")
	})
	t.Run("layer missing", func(t *testing.T) {
		s := broken(t, func(d string) { os.Remove(filepath.Join(d, layer)) })
		mustFail(t, s, "busybox", m.Digest, "layer 0: blob "+man.Layers[0].Digest+" is missing")
	})
	t.Run("config missing", func(t *testing.T) {
		s := broken(t, func(d string) { os.Remove(filepath.Join(d, "blobs", "sha256", hexOf(man.Config.Digest))) })
		mustFail(t, s, "busybox", "", "config: blob "+man.Config.Digest+" is missing")
	})
	t.Run("manifest missing", func(t *testing.T) {
		s := broken(t, func(d string) { os.Remove(filepath.Join(d, "blobs", "sha256", hexOf(m.Digest))) })
		mustFail(t, s, "busybox", m.Digest, "manifest: blob "+m.Digest+" is missing")
	})
	t.Run("two manifests", func(t *testing.T) {
		s := broken(t, func(d string) {
			p := filepath.Join(d, "index.json")
			b, _ := os.ReadFile(p)
			var idx index
			json.Unmarshal(b, &idx)
			idx.Manifests = append(idx.Manifests, idx.Manifests[0])
			b, _ = json.Marshal(idx)
			os.WriteFile(p, b, 0o644)
		})
		mustFail(t, s, "busybox", m.Digest, "names 2 manifests, want exactly 1")
	})
	t.Run("other ref name", func(t *testing.T) {
		s := broken(t, func(d string) {
			p := filepath.Join(d, "index.json")
			b, _ := os.ReadFile(p)
			os.WriteFile(p, []byte(strings.Replace(string(b), `"busybox"`, `"other"`, 1)), 0o644)
		})
		mustFail(t, s, "busybox", m.Digest, `names the image "other", not "busybox"`)
	})
	t.Run("no oci-layout", func(t *testing.T) {
		s := broken(t, func(d string) { os.Remove(filepath.Join(d, "oci-layout")) })
		mustFail(t, s, "busybox", m.Digest, "no OCI layout")
	})
}
