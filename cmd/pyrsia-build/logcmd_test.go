package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/logservice"
	"github.com/pyrsia/pyrsia-build/publish/tlog"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

const testOrigin = "example.org/log"

// testKeys writes a note key pair named name into dir and returns the paths
// of the private and the public key.
func testKeys(t *testing.T, dir, name string) (skeyPath, vkeyPath string) {
	t.Helper()
	skey, vkey, err := witness.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	skeyPath, vkeyPath = filepath.Join(dir, name+".note.key"), filepath.Join(dir, name+".note.pub")
	if err := os.WriteFile(skeyPath, []byte(skey+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(vkeyPath, []byte(vkey+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return skeyPath, vkeyPath
}

// get fetches url and returns the body of a 200 response.
func get(ctx context.Context, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return b, nil
}

// waitFinal polls base/checkpoint until it serves a final checkpoint of size
// want, and returns the note.
func waitFinal(t *testing.T, base string, want uint64, logV note.Verifier, cosigners []note.Verifier) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		b, err := get(ctx, base+"/checkpoint")
		if err == nil {
			c, _, err2 := witness.VerifyFinal(b, testOrigin, []note.Verifier{logV}, cosigners, len(cosigners))
			switch {
			case err2 != nil:
				err = err2
			case c.Size != want:
				err = fmt.Errorf("checkpoint size %d, want %d", c.Size, want)
			default:
				return b
			}
		}
		last = err
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no final checkpoint of size %d at %s: %v", want, base, last)
	return nil
}

// runCLI runs the command line in process and returns its exit code and
// output.
func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(append([]string{"pyrsia-build"}, args...), strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// TestServeLog serves a log with serveLog, reads it over HTTP (raw and with
// the log readers' --url), appends to it while it is served, and checks
// that it stops cleanly when its context is cancelled.
func TestServeLog(t *testing.T) {
	tmp := t.TempDir()
	logKey, logPub := testKeys(t, tmp, "log")
	nodeKey, nodePub := testKeys(t, tmp, "node-a")
	signer, logV, err := readLogSigner(logKey)
	if err != nil {
		t.Fatal(err)
	}
	cosV, err := readVerifiers([]string{nodePub}, "cosigner-key", true)
	if err != nil {
		t.Fatal(err)
	}
	cosigners, err := openCosigners([]string{nodeKey + ":" + filepath.Join(tmp, "state")}, testOrigin, logV)
	if err != nil {
		t.Fatal(err)
	}
	entry, err := os.ReadFile("../../publish/testdata/entry/valid-oci.json")
	if err != nil {
		t.Fatal(err)
	}

	logger := slog.New(slog.NewTextHandler(t.Output(), nil))
	dir := filepath.Join(tmp, "log")
	svc, err := logservice.Open(t.Context(), logservice.Options{
		Log:           tlog.Options{Dir: dir, Origin: testOrigin, Signer: signer, Logger: logger},
		Cosigners:     []logservice.Cosigner{cosigners[0].Cosigner},
		Final:         logservice.CosignedBy(testOrigin, logV, cosV, len(cosV)),
		RetryInterval: 10 * time.Millisecond,
		Logger:        logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	for i := range 3 {
		if _, err := svc.Append(t.Context(), fmt.Appendf(nil, "entry %d", i)); err != nil {
			t.Fatal(err)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- serveLog(ctx, ln, svc, logger)
	}()

	// The checkpoint published at start, cosigned.
	first := waitFinal(t, base, 3, logV, cosV)

	// Tiles, as any tlog-tiles client reads them.
	tile, err := get(ctx, base+"/tile/0/000.p/3")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(tile), 3*tlog.HashSize; got != want {
		t.Errorf("hash tile: got %d bytes, want %d", got, want)
	}
	if want := publish.LeafHash([]byte("entry 1")); !bytes.Equal(tile[32:64], want) {
		t.Errorf("hash tile: leaf 1 is %x, want %x", tile[32:64], want)
	}
	bundle, err := get(ctx, base+"/tile/entries/000.p/3")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(bundle, []byte("entry 2")) {
		t.Errorf("entry bundle %q does not hold entry 2", bundle)
	}

	// Appends while served are published and cosigned at once.
	if _, err := svc.Append(ctx, entry); err != nil {
		t.Fatal(err)
	}
	final := waitFinal(t, base, 4, logV, cosV)

	// The readers, over --url.
	code, stdout, stderr := runCLI("log", "checkpoint", "--url", base, "--log-key", logPub, "--cosigner-key", nodePub)
	if code != 0 || stdout != string(final) || !strings.Contains(stderr, "final: cosigned by node-a") {
		t.Errorf("log checkpoint --url: exit %d, stdout %q, stderr %q; want 0, the served note, final", code, stdout, stderr)
	}
	code, stdout, stderr = runCLI("log", "proof", "--url", base+"/", "--log-key", logPub, "3")
	if code != 0 {
		t.Fatalf("log proof --url: exit %d: %s", code, stderr)
	}
	pb, err := publish.ParseProofBundle([]byte(stdout))
	if err != nil {
		t.Fatalf("log proof --url wrote a bundle that does not parse: %v", err)
	}
	if pb.Index != 3 || pb.TreeSize != 4 || !bytes.Equal(pb.RawEntry, entry) || pb.Checkpoint != string(final) {
		t.Errorf("proof bundle: got index %d, size %d, entry %q, checkpoint %q; want 3, 4, the entry, the served checkpoint",
			pb.Index, pb.TreeSize, pb.RawEntry, pb.Checkpoint)
	}
	code, stdout, stderr = runCLI("log", "entry", "--url", base, "3")
	if code != 0 || !strings.Contains(stdout, `"coordinate": "hello:1.0"`) {
		t.Errorf("log entry --url: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, stderr = runCLI("log", "entry", "--url", base, "--raw", "1")
	if code != 0 || stdout != "entry 1" {
		t.Errorf("log entry --url --raw: exit %d, stdout %q, stderr %q; want 0, %q", code, stdout, stderr, "entry 1")
	}
	code, stdout, stderr = runCLI("log", "consistency", "--url", base, "3", "4")
	if code != 0 {
		t.Errorf("log consistency --url: exit %d: %s", code, stderr)
	}
	var hashes [][]byte
	for _, line := range strings.Fields(stdout) {
		h, err := base64.StdEncoding.DecodeString(line)
		if err != nil {
			t.Fatalf("log consistency --url: line %q: %v", line, err)
		}
		hashes = append(hashes, h)
	}
	cp3, _, _ := witness.ParseCheckpoint(first, testOrigin, logV)
	cp4, _, _ := witness.ParseCheckpoint(final, testOrigin, logV)
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, 3, 4, hashes, cp3.Hash, cp4.Hash); err != nil {
		t.Errorf("log consistency --url 3 4: the proof does not verify: %v", err)
	}
	code, _, stderr = runCLI("log", "entry", "--url", base, "4")
	if code != exitInput || !strings.Contains(stderr, "entry 4 is past the end of the log: its checkpoint has size 4") {
		t.Errorf("log entry --url past the end: exit %d, stderr %q", code, stderr)
	}

	// A reader opens the folder read-only while it is served.
	code, _, stderr = runCLI("log", "checkpoint", "--dir", dir)
	if code != 0 {
		t.Errorf("log checkpoint --dir on a served log: exit %d, stderr %q; want 0 (a read-only open)", code, stderr)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serveLog after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serveLog did not return within 10s of cancel")
	}
	if _, err := get(context.Background(), base+"/checkpoint"); err == nil {
		t.Error("the server still answers after shutdown")
	}
	if err := svc.Close(); err != nil {
		t.Fatal(err)
	}
	code, stdout, stderr = runCLI("log", "checkpoint", "--dir", dir)
	if code != 0 || stdout != string(final) {
		t.Errorf("log checkpoint --dir after shutdown: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// TestLogServeCommand runs `pyrsia-build log serve` as the command line does,
// with a context that is cancelled as SIGTERM would, and checks that it
// serves, exits 0 and releases the log folder.
func TestLogServeCommand(t *testing.T) {
	tmp := t.TempDir()
	logKey, logPub := testKeys(t, tmp, "log")
	dir := filepath.Join(tmp, "log")
	entryFile := filepath.Join(tmp, "e.txt")
	if err := os.WriteFile(entryFile, []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI("log", "append", "--dir", dir, "--origin", testOrigin, "--key", logKey, "--raw", entryFile); code != 0 {
		t.Fatalf("log append: exit %d: %s", code, stderr)
	}
	pubEntry, err := filepath.Abs("../../publish/testdata/entry/valid-oci.json")
	if err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runCLI("log", "append", "--dir", dir, "--origin", testOrigin, "--key", logKey, pubEntry); code != 0 {
		t.Fatalf("log append: exit %d: %s", code, stderr)
	}

	// A free port: listen, note it, close.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	var stdout, stderr syncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		app := newApp(strings.NewReader(""), &stdout, &stderr)
		done <- app.RunContext(ctx, []string{"pyrsia-build", "log", "serve", "--dir", dir, "--origin", testOrigin, "--key", logKey, "--addr", addr})
	}()

	_, logV, err := readLogSigner(logKey)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := get(ctx, "http://"+addr+"/checkpoint")
		if err == nil {
			cp, _, err := witness.ParseCheckpoint(b, testOrigin, logV)
			if err != nil {
				t.Fatal(err)
			}
			if cp.Size != 2 {
				t.Fatalf("served checkpoint size %d, want 2", cp.Size)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("log serve did not serve a checkpoint in 10s: %v; stderr:\n%s", err, stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := get(ctx, "http://"+addr+"/tile/entries/000.p/2"); err != nil {
		t.Error(err)
	}
	// The index was rebuilt from the log at start: the publish entry is
	// found by its coordinate; the raw one is not indexed.
	b, err := get(ctx, "http://"+addr+"/lookup/coordinate/oci/hello:1.0")
	if err != nil || !strings.Contains(string(b), `"LogIndex":1`) {
		t.Errorf("lookup by coordinate: got %s, %v; want log index 1", b, err)
	}
	if _, err := get(ctx, "http://"+addr+"/lookup/coordinate/oci/nothing:here"); err == nil {
		t.Error("lookup of an unknown coordinate succeeded")
	}

	// One client holding many keep-alive connections gets a bounded share
	// (internal/httpserver), and another client is still served.
	var held []net.Conn
	served := 0
	for range 500 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
		fmt.Fprintf(c, "GET /checkpoint HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
			resp.Body.Close()
			served++
		}
	}
	if served >= 500 {
		t.Errorf("one client holds %d connections open at once: no per-client limit", served)
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}
	other := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	if resp, err := other.Get("http://" + addr + "/checkpoint"); err != nil {
		t.Errorf("another client, while one holds %d connections: %v", served, err)
	} else {
		resp.Body.Close()
	}
	for _, c := range held {
		c.Close()
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("log serve after cancel: %v; stderr:\n%s", err, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("log serve did not return within 10s of cancel")
	}
	for _, want := range []string{`msg="serving log"`, `msg="shutting down"`} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("log serve's log lacks %s:\n%s", want, stderr.String())
		}
	}
	// The folder is free again.
	if code, _, stderr := runCLI("log", "checkpoint", "--dir", dir, "--log-key", logPub); code != 0 {
		t.Errorf("log checkpoint --dir after serve: exit %d: %s", code, stderr)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
