package witness_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pyrsia/pyrsia-build/publish/witness"
	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

var update = flag.Bool("update", false, "rewrite testdata/*.checkpoint")

// testdataCheckpoints are the seeds of FuzzParseCheckpoint, signed by the
// "log" test key (seed 1) for testOrigin.
func testdataCheckpoints(t testing.TB) map[string][]byte {
	t.Helper()
	a, _ := forkedTrees(4, 8)
	withExt := log.Checkpoint{Origin: testOrigin, Size: 8, Hash: a.HashAt(8)}
	ext, err := note.Sign(&note.Note{Text: string(withExt.Marshal()) + "extension line\n"}, logSigner(t))
	if err != nil {
		t.Fatal(err)
	}
	cosigned, err := witness.AddSignatures(signTree(t, a, 5), note.Signature{Name: "node-a", Hash: 1, Base64: base64.StdEncoding.EncodeToString([]byte("\x00\x00\x00\x01not a real signature"))})
	if err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{
		"size0.checkpoint":     signTree(t, a, 0),
		"size1.checkpoint":     signTree(t, a, 1),
		"size7.checkpoint":     signTree(t, a, 7),
		"extension.checkpoint": ext,
		"cosigned.checkpoint":  cosigned,
	}
}

func TestTestdata(t *testing.T) {
	for name, want := range testdataCheckpoints(t) {
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update to write testdata)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: got\n%s\nwant\n%s\n(run go test -update to rewrite testdata)", path, got, want)
		}
		if _, _, err := witness.ParseCheckpoint(got, testOrigin, logVerifier(t)); err != nil {
			t.Errorf("%s: got %v, want a valid checkpoint", path, err)
		}
	}
}

func TestSignParseCheckpoint(t *testing.T) {
	a, _ := forkedTrees(4, 8)
	cp := log.Checkpoint{Origin: testOrigin, Size: 6, Hash: a.HashAt(6)}
	signed, err := witness.SignCheckpoint(logSigner(t), cp)
	if err != nil {
		t.Fatal(err)
	}
	got, n, err := witness.ParseCheckpoint(signed, testOrigin, logVerifier(t))
	if err != nil {
		t.Fatal(err)
	}
	if got.Origin != cp.Origin || got.Size != cp.Size || !bytes.Equal(got.Hash, cp.Hash) {
		t.Errorf("got %+v, want %+v", got, cp)
	}
	if n.Text != string(cp.Marshal()) {
		t.Errorf("got text %q, want %q", n.Text, cp.Marshal())
	}
	if _, err := witness.SignCheckpoint(logSigner(t), log.Checkpoint{Origin: testOrigin, Size: 1, Hash: []byte("short")}); err == nil {
		t.Errorf("signing a checkpoint with a 5-byte root: got no error, want one")
	}
}

func TestParseCheckpointErrors(t *testing.T) {
	a, _ := forkedTrees(4, 8)
	good := signTree(t, a, 5)
	otherSkey, _ := testKey(t, "log", 2)
	otherSigner, err := note.NewSigner(otherSkey)
	if err != nil {
		t.Fatal(err)
	}
	sign := func(text string, s note.Signer) []byte {
		b, err := note.Sign(&note.Note{Text: text}, s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	root := base64.StdEncoding.EncodeToString(a.HashAt(5))
	tampered := bytes.Replace(good, []byte("\n5\n"), []byte("\n6\n"), 1)
	tests := []struct {
		name string
		note []byte
		want string
	}{
		{"empty", nil, "not a signed note"},
		{"not a note", []byte("hello\n"), "not a signed note"},
		{"too big", bytes.Repeat([]byte("a"), witness.MaxCheckpointSize+1), "over the 65536 byte limit"},
		{"no log signature", sign(string(good[:bytes.Index(good, []byte("\n\n"))+1]), otherSigner), "no signature by log key"},
		{"bad log signature", tampered, "does not verify"},
		{"wrong origin", sign("other.example/log\n5\n"+root+"\n", logSigner(t)), `is for log "other.example/log"`},
		{"bad size", sign(testOrigin+"\nfive\n"+root+"\n", logSigner(t)), `size "five" is not a decimal`},
		{"negative size", sign(testOrigin+"\n-5\n"+root+"\n", logSigner(t)), `size "-5"`},
		{"leading zero", sign(testOrigin+"\n05\n"+root+"\n", logSigner(t)), `size "05"`},
		{"bad base64 root", sign(testOrigin+"\n5\nnot base64!\n", logSigner(t)), "is not base64"},
		{"short root", sign(testOrigin+"\n5\nAAAA\n", logSigner(t)), "root hash is 3 bytes, want 32"},
		{"too few lines", sign(testOrigin+"\n5\n", logSigner(t)), "want at least 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := witness.ParseCheckpoint(tt.note, testOrigin, logVerifier(t))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one saying %q", err, tt.want)
			}
		})
	}
}

func TestAddSignatures(t *testing.T) {
	a, _ := forkedTrees(4, 8)
	signed := signTree(t, a, 5)
	nodeA, nodeB := testNode(t, "node-a", 10), testNode(t, "node-b", 11)
	sigA := cosign(t, nodeA, signed)
	sigB := cosign(t, nodeB, signed)
	sigA2 := cosign(t, nodeA, signTree(t, a, 6)) // same key, other checkpoint

	got, err := witness.AddSignatures(signed, sigB, sigA, sigB)
	if err != nil {
		t.Fatal(err)
	}
	got, err = witness.AddSignatures(got, sigA2)
	if err != nil {
		t.Fatal(err)
	}
	// sigB given twice is kept once; sigA2, another line of node-a's key
	// (not valid for this checkpoint), is kept: AddSignatures does not judge
	// lines, so it never drops one for another of the same key.
	want := string(signed) + "— node-b " + sigB.Base64 + "\n— node-a " + sigA.Base64 + "\n— node-a " + sigA2.Base64 + "\n"
	if string(got) != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if _, err := witness.AddSignatures([]byte("not a note"), sigA); err == nil {
		t.Errorf("adding to a non-note: got no error, want one")
	}
	if _, err := witness.AddSignatures(signed, note.Signature{Name: "bad name", Hash: 1, Base64: "AAAAAQ=="}); err == nil {
		t.Errorf("adding a malformed signature: got no error, want one")
	}
}

// cosign returns n's cosignature of signed, made directly with its signer.
func cosign(t testing.TB, n node, signed []byte) note.Signature {
	t.Helper()
	text := signed[:bytes.Index(signed, []byte("\n\n"))+1]
	b, err := note.Sign(&note.Note{Text: string(text)}, n.signer)
	if err != nil {
		t.Fatal(err)
	}
	line := b[bytes.LastIndex(b, []byte("— "))+len("— "):]
	name, b64, _ := strings.Cut(strings.TrimSpace(string(line)), " ")
	return note.Signature{Name: name, Hash: n.signer.KeyHash(), Base64: b64}
}

func FuzzParseCheckpoint(f *testing.F) {
	files, err := filepath.Glob("testdata/*.checkpoint")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata/*.checkpoint: %v", err)
	}
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
		f.Add(b[:bytes.Index(b, []byte("\n\n"))+1]) // the body alone
	}
	v := logVerifier(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		if cp, n, err := witness.ParseCheckpoint(b, testOrigin, v); err == nil {
			if cp.Origin != testOrigin || len(cp.Hash) != witness.HashSize {
				t.Errorf("accepted checkpoint %+v, want origin %q and a %d-byte root", cp, testOrigin, witness.HashSize)
			}
			if !strings.HasPrefix(n.Text, string(cp.Marshal())) {
				t.Errorf("note text %q does not start with the checkpoint %q", n.Text, cp.Marshal())
			}
		} else if errors.Is(err, witness.ErrFork) {
			t.Errorf("got a fork error from parsing: %v", err)
		}
		if cp, err := witness.ParseCheckpointText(b); err == nil {
			if !bytes.HasPrefix(b, cp.Marshal()) {
				t.Errorf("text %q does not start with its re-marshalled checkpoint %q", b, cp.Marshal())
			}
		}
		if out, err := witness.AddSignatures(b); err == nil {
			if again, err := witness.AddSignatures(out); err != nil || !bytes.Equal(again, out) {
				t.Errorf("AddSignatures is not idempotent on %q: got %q, %v", out, again, err)
			}
		}
	})
}
