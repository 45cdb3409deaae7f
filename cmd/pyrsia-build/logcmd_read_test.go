package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pyrsia/pyrsia-build/publish/tlog"
	"github.com/pyrsia/pyrsia-build/publish/witness"
)

// lyingLog serves a real log of 300 entries, passing the responses for
// paths with prefix through change.
func lyingLog(t *testing.T, prefix string, change func([]byte) []byte) (url, logPub string) {
	t.Helper()
	ctx := context.Background()
	tmp := t.TempDir()
	skey, vkey, err := witness.GenerateKey(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	logPub = filepath.Join(tmp, "log.note.pub")
	if err := os.WriteFile(logPub, []byte(vkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	signer, err := witness.NewLogSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	l, err := tlog.Open(ctx, tlog.Options{Dir: filepath.Join(tmp, "log"), Origin: testOrigin, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	for i := range 300 {
		if _, err := l.Append(ctx, fmt.Appendf(nil, "entry %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	cp, err := l.Publish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(cp.Note); err != nil {
		t.Fatal(err)
	}
	h := l.Handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if change == nil || !strings.HasPrefix(r.URL.Path, prefix) {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		w.WriteHeader(rec.Code)
		w.Write(change(rec.Body.Bytes()))
	}))
	t.Cleanup(srv.Close)
	return srv.URL, logPub
}

func flip(i int) func([]byte) []byte {
	return func(b []byte) []byte { b = bytes.Clone(b); b[i] ^= 1; return b }
}

// TestLogReadersCheckTheSource runs the readers against a server whose
// tiles or entries do not match its checkpoint: exit 1, naming the URL and
// the entry; and against one that sends too much: exit 2.
func TestLogReadersCheckTheSource(t *testing.T) {
	for _, tc := range []struct {
		name   string
		prefix string
		change func([]byte) []byte
		args   []string
		code   int
		stderr string
	}{
		{"good", "", nil, []string{"entry", "--raw", "256"}, 0, ""},
		{"good consistency", "", nil, []string{"consistency", "10", "299"}, 0, ""},
		{"other entry", "/tile/entries/001", flip(4), []string{"entry", "--raw", "256"}, 1,
			"entry 256 is not in the tree of its checkpoint (size 300)"},
		// log proof first reads the log's policy changes (entries 0 to
		// 255, proven in the same tree), which the flipped hash already
		// breaks: either read may be the one that names it.
		{"other hash", "/tile/0/001", flip(40), []string{"proof", "256"}, 1,
			"not in the tree of"},
		{"other hash in a consistency proof", "/tile/0/000", flip(40), []string{"consistency", "3", "200"}, 1,
			"the tree of size 3 in the log's tiles is not consistent with its checkpoint (size 300): the proof leads to root "},
		{"truncated tile", "/tile/0/001", func(b []byte) []byte { return b[:len(b)-3] }, []string{"entry", "256"}, 2,
			"malformed response"},
		{"too many bytes", "/tile/entries/", func([]byte) []byte { return make([]byte, 20<<20) }, []string{"entry", "--raw", "1"}, 2,
			"byte limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			url, logPub := lyingLog(t, tc.prefix, tc.change)
			args := append([]string{"log", tc.args[0], "--url", url, "--log-key", logPub}, tc.args[1:]...)
			code, stdout, stderr := runCLI(args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr)
			}
			if tc.code == 0 {
				if tc.args[0] == "entry" && stdout != "entry 256" {
					t.Fatalf("stdout %q, want entry 256", stdout)
				}
				return
			}
			if !strings.Contains(stderr, tc.stderr) || !strings.Contains(stderr, "log at "+url) || stdout != "" {
				t.Fatalf("stderr %q: want %q naming the URL, and no output (got %q)", stderr, tc.stderr, stdout)
			}
			if !strings.Contains(stderr, "pyrsia-build: hint: ") && tc.code == 1 {
				t.Fatalf("stderr %q has no hint", stderr)
			}
		})
	}
}
