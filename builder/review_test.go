package builder

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Review finding: a spec from the network may name any http(s) or git host,
// the node's loopback, link-local (cloud metadata) and private addresses
// included: the node fetches them with its own network position (archive
// URLs through http.DefaultClient, which follows redirects to any host),
// and git's output tail comes back in the error. ValidateRemote refuses
// file paths and file URLs, but not these.
func TestValidateRemoteRefusesInternalHosts(t *testing.T) {
	for name, text := range map[string]string{
		"loopback archive":   edit(t, mavenSpec, "path: hello.tar.gz", "url: http://127.0.0.1:2379/v2/keys.tar.gz"),
		"metadata archive":   edit(t, mavenSpec, "path: hello.tar.gz", "url: http://169.254.169.254/latest/x.tar.gz"),
		"localhost git":      edit(t, ociSpec, "https://example.com/hello.git", "http://localhost:3000/admin/secret.git"),
		"private git":        edit(t, ociSpec, "https://example.com/hello.git", "git://10.0.0.5/internal.git"),
		"IPv6 loopback git":  edit(t, ociSpec, "https://example.com/hello.git", "http://[::1]:8080/x.git"),
		"decimal IP archive": edit(t, mavenSpec, "path: hello.tar.gz", "url: http://2130706433/x.tar.gz"),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseRemoteSpec([]byte(text)); err == nil {
				t.Errorf("ParseRemoteSpec accepted a spec that makes the node fetch an internal address")
			}
		})
	}
}

// Review finding: for a spec from the network, ValidateRemote allows only a
// relative source.archive.path "that stays inside" the spec's folder, but
// fetchArchive opens filepath.Join(specDir, path) with os.Open, which
// follows symlinks: a symlink in the folder (or one the node's user made)
// leads the read out of it. fetchArchive is not even told the spec is
// remote. Open it through os.OpenRoot(specDir) for remote specs.
func TestRemoteArchivePathStaysInSpecDir(t *testing.T) {
	outside := t.TempDir()
	data := tarBytes(t, &tar.Header{Name: "secret.txt", Typeflag: tar.TypeReg, Mode: 0o644})
	if err := os.WriteFile(filepath.Join(outside, "node-private.tar"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	specDir := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(specDir, "src")); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	text := edit(t, mavenSpec, "path: hello.tar.gz", "path: src/node-private.tar")
	text = strings.Replace(text, testSHA, hex.EncodeToString(sum[:]), 1)
	s, err := ParseRemoteSpec([]byte(text))
	if err != nil {
		t.Fatalf("ParseRemoteSpec: %v", err)
	}
	dst := t.TempDir()
	if _, err := fetchSource(context.Background(), s, specDir, dst, true, mavenRepoOpts{}, io.Discard); err == nil {
		t.Errorf("a remote spec read %s through the symlink %s", filepath.Join(outside, "node-private.tar"), filepath.Join(specDir, "src"))
	}
}

// Review finding: ParseSpec accepted specs up to 1 MiB, but a log entry
// holds at most 65535 bytes (publish.MaxEntrySize): the canonical spec
// once, plus each voter's envelope, whose base64 payload holds the spec
// again. A spec of ~5 KB cannot be published by the 8 voters of a 15-node
// network, and one of 64 KB by nobody; every node still built it and
// signed. ParseSpec now refuses a spec over MaxSpecSize (see
// TestMaxSpecSizeFitsAnEntry for how the bound was measured).
func TestParseSpecRefusesSpecThatCannotBeLogged(t *testing.T) {
	for _, n := range []int{70000, 5000} {
		big := strings.Repeat("x", n)
		_, err := ParseSpec([]byte(edit(t, ociSpec, "oci: {}", "oci: {buildArgs: {BIG: "+big+"}}")))
		var se *SpecError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), "is over the limit of 2048") || !strings.Contains(err.Error(), "a log entry could not hold") {
			t.Errorf("a %d-byte build arg: got %v, want the spec refused as too large to log", n, err)
		}
		if _, err := ParseRemoteSpec([]byte(edit(t, ociSpec, "oci: {}", "oci: {buildArgs: {BIG: "+big+"}}"))); err == nil {
			t.Errorf("ParseRemoteSpec accepted a %d-byte build arg", n)
		}
	}
}
