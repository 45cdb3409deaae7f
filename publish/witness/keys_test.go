package witness_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pyrsia/pyrsia-build/publish/witness"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

func TestGenerateKey(t *testing.T) {
	skey, vkey, err := witness.GenerateKey("node-a")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	spath, vpath := filepath.Join(dir, "node.key"), filepath.Join(dir, "node.vkey")
	if err := os.WriteFile(spath, []byte(skey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vpath, []byte("  "+vkey+"\r\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	gotS, err := witness.ReadSignerKeyFile(spath)
	if err != nil {
		t.Fatal(err)
	}
	gotV, err := witness.ReadVerifierKeyFile(vpath)
	if err != nil {
		t.Fatal(err)
	}
	if gotS != skey || gotV != vkey {
		t.Fatalf("read back keys %q, %q, want %q, %q", gotS, gotV, skey, vkey)
	}

	text := "pyrsia-build.example/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
	t.Run("plain note signature", func(t *testing.T) {
		s, err := witness.NewLogSigner(skey)
		if err != nil {
			t.Fatal(err)
		}
		v, err := witness.NewLogVerifier(vkey)
		if err != nil {
			t.Fatal(err)
		}
		signed, err := note.Sign(&note.Note{Text: text}, s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := note.Open(signed, note.VerifierList(v)); err != nil {
			t.Errorf("got %v, want a verified note", err)
		}
	})
	t.Run("cosignature/v1", func(t *testing.T) {
		s, err := witness.NewCosignatureSigner(skey)
		if err != nil {
			t.Fatal(err)
		}
		v, err := witness.NewCosignatureVerifier(vkey)
		if err != nil {
			t.Fatal(err)
		}
		signed, err := note.Sign(&note.Note{Text: text}, s)
		if err != nil {
			t.Fatal(err)
		}
		n, err := note.Open(signed, note.VerifierList(v))
		if err != nil {
			t.Fatalf("got %v, want a verified note", err)
		}
		if _, err := fnote.CoSigV1Timestamp(n.Sigs[0]); err != nil {
			t.Errorf("got %v, want a cosignature/v1 timestamp", err)
		}
		plain, _ := witness.NewLogVerifier(vkey)
		if plain.KeyHash() == v.KeyHash() {
			t.Errorf("got the same key hash for plain and cosignature verifiers, want different ones")
		}
	})
}

func TestGenerateKeyBadName(t *testing.T) {
	for _, name := range []string{"", "a b", "a+b"} {
		if _, _, err := witness.GenerateKey(name); err == nil {
			t.Errorf("GenerateKey(%q): got no error, want one", name)
		}
	}
}

func TestReadKeyFileErrors(t *testing.T) {
	skey, vkey := testKey(t, "node-a", 7)
	cosigVKey, err := fnote.VKeyToCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.SplitN(vkey, "+", 3)
	badHash := parts[0] + "+00000000+" + parts[2]
	tests := []struct {
		name    string
		content string
		signer  bool
		want    string
	}{
		{"private key as verifier", skey, false, "this is a signer (private) key"},
		{"public key as signer", vkey, true, "this is a verifier (public) key"},
		{"empty verifier", "\n", false, "empty key"},
		{"garbage signer", "hello", true, "not a note signer key"},
		{"garbage verifier", "hello", false, "not a note verifier key"},
		{"not base64", "node-a+01234567+!!!!", false, "not a note verifier key"},
		{"cosignature algorithm", cosigVKey, false, "algorithm 0x04, want Ed25519"},
		{"two lines", vkey + "\n" + vkey, false, "found several lines"},
		{"wrong key hash", badHash, false, "invalid key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "key.txt")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			read := witness.ReadVerifierKeyFile
			if tt.signer {
				read = witness.ReadSignerKeyFile
			}
			_, err := read(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), path) {
				t.Errorf("got error %v, want one naming %s and saying %q", err, path, tt.want)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "missing.key")
		_, err := witness.ReadSignerKeyFile(path)
		if err == nil || !strings.Contains(err.Error(), path) || !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("got error %v, want a not-exist error naming %s", err, path)
		}
	})
}

func TestVerifierKey(t *testing.T) {
	skey, vkey, err := witness.GenerateKey("node-a")
	if err != nil {
		t.Fatal(err)
	}
	got, err := witness.VerifierKey(skey)
	if err != nil || got != vkey {
		t.Fatalf("VerifierKey: got %q, %v; want %q", got, err, vkey)
	}
	for _, bad := range []string{"", "garbage", vkey, "PRIVATE+KEY+node-a+00000000+AQ=="} {
		if _, err := witness.VerifierKey(bad); err == nil {
			t.Errorf("witness.VerifierKey(%q) succeeded, want an error", bad)
		}
	}
	// A key whose hash was edited does not pass.
	parts := strings.SplitN(skey, "+", 5)
	parts[3] = "00000000"
	if _, err := witness.VerifierKey(strings.Join(parts, "+")); err == nil || !strings.Contains(err.Error(), "key hash") {
		t.Errorf("edited key hash: got %v, want a key hash error", err)
	}
}
