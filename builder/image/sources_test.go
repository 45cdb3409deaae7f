package image

import (
	"os"
	"path/filepath"
	"testing"
)

func withAptRoot(t *testing.T, files map[string]string) {
	t.Helper()
	root := t.TempDir()
	for name, data := range files {
		p := filepath.Join(root, "etc/apt", name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	old := aptSourcesRoot
	aptSourcesRoot = root
	t.Cleanup(func() { aptSourcesRoot = old })
	t.Setenv("PYRSIA_DEBIAN_MIRROR", "")
}

func TestDebianMirror(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"deb822", map[string]string{"sources.list.d/debian.sources": `Types: deb
# http://snapshot.example/archive/debian/20250520T000000Z
URIs: http://security.example/debian-security
Suites: bookworm-security
Components: main

Types: deb deb-src
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
`}, "http://mirror.example/debian"},
		{"disabled stanza", map[string]string{"sources.list.d/a.sources": `Enabled: no
Types: deb
URIs: http://off.example/debian
Suites: bookworm

Types: deb
URIs: https://on.example/debian
Suites: bookworm
`}, "https://on.example/debian"},
		{"one-line with options", map[string]string{"sources.list": `# comment
deb-src http://src.example/debian bookworm main
deb [arch=amd64 signed-by=/k.gpg] http://one.example/debian bookworm main # trailing
`}, "http://one.example/debian"},
		{"another release", map[string]string{"sources.list": `deb http://sec.example/debian-security trixie-security main
deb http://plain.example/debian trixie main
`}, "http://plain.example/debian"},
		{"list before sources, sorted", map[string]string{
			"sources.list.d/b.list":    "deb http://b.example/debian bookworm main\n",
			"sources.list.d/a.sources": "Types: deb\nURIs: http://a.example/debian\nSuites: bookworm\n",
		}, "http://a.example/debian"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			withAptRoot(t, tc.files)
			got, err := DebianMirror()
			if err != nil || got != tc.want {
				t.Fatalf("DebianMirror() = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
	t.Run("none", func(t *testing.T) {
		withAptRoot(t, map[string]string{"sources.list": "deb-src http://x.example/debian bookworm main\n"})
		if got, err := DebianMirror(); err == nil {
			t.Fatalf("DebianMirror() = %q, want an error", got)
		}
	})
	t.Run("override", func(t *testing.T) {
		withAptRoot(t, nil)
		t.Setenv("PYRSIA_DEBIAN_MIRROR", "http://override.example/debian")
		if got, err := DebianMirror(); err != nil || got != "http://override.example/debian" {
			t.Fatalf("DebianMirror() = %q, %v", got, err)
		}
	})
}
