package logclient

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pyrsia/pyrsia-build/publish/witness"
	"github.com/transparency-dev/formats/log"
)

// Review finding: a source (a mirror, anyone on the path to an http URL, a
// bit flip in a --dir log) that serves one well-formed but wrong hash tile
// stops the Follower for good with ErrFork, "the log forked", though both
// checkpoints are genuine and consistent: the consistency proof it builds
// from the source's tiles does not verify, and Follower.check takes
// ErrProof for a fork. A proof from an untrusted source that does not
// verify proves nothing (issue 7, defect 8, in the new package).
func TestReviewFollowerBadHashTileIsNotAFork(t *testing.T) {
	ctx := context.Background()
	net := newNetwork(t, 1)
	tl := newTestLog(t, net, "a")
	tl.append(5, "a")
	tl.publish(1)
	sw := &switchable{}
	sw.set(tl.log.Handler())
	srv := httptest.NewServer(sw)
	defer srv.Close()
	v := &visits{}
	f := newFollower(t, net, openURL(t, srv.URL), t.TempDir(), v, 0)
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	tl.append(6, "a")
	tl.publish(1)
	// Flip one bit of every level-0 hash tile: right length, wrong hashes.
	sw.set(corrupt("/tile/0/", func(b []byte) []byte {
		b = bytes.Clone(b)
		if len(b) > 0 {
			b[0] ^= 1
		}
		return b
	})(tl.log.Handler()))
	err := f.Poll(ctx)
	var se *StopError
	if errors.As(err, &se) {
		t.Fatalf("got a stop (%v): a bad tile from the source is not evidence of a fork", err)
	}
	sw.set(tl.log.Handler())
	if err := f.Poll(ctx); err != nil {
		t.Fatalf("after the source is good again: %v", err)
	}
	v.check(t, "a", 11)
}

// Review finding: a checkpoint that no log key signed (anyone can write one)
// stops the Follower for good and is stored as "evidence", though it proves
// nothing about the log: one forged answer from a mirror, or from anyone on
// the path to an http URL, takes every follower of it (the index) down
// until a human moves the evidence away.
func TestReviewFollowerForgedCheckpointIsNotEvidence(t *testing.T) {
	ctx := context.Background()
	net := newNetwork(t, 1)
	tl := newTestLog(t, net, "a")
	tl.append(4, "a")
	tl.publish(1)
	stranger := newNetwork(t, 1) // another key, same origin
	forged, err := witness.SignCheckpoint(stranger.logSigner, log.Checkpoint{Origin: testOrigin, Size: 100, Hash: make([]byte, 32)})
	if err != nil {
		t.Fatal(err)
	}
	sw := &switchable{}
	sw.set(tl.log.Handler())
	srv := httptest.NewServer(sw)
	defer srv.Close()
	state := t.TempDir()
	f := newFollower(t, net, openURL(t, srv.URL), state, &visits{}, 0)
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	sw.set(corrupt("/checkpoint", func([]byte) []byte { return forged })(tl.log.Handler()))
	err = f.Poll(ctx)
	var se *StopError
	if errors.As(err, &se) {
		t.Fatalf("got a stop (%v) for a checkpoint no log key signed", err)
	}
	sw.set(tl.log.Handler())
	if err := f.Poll(ctx); err != nil {
		t.Fatalf("after the source is good again: %v", err)
	}
}

// Review finding: a log server's status line reaches the user's terminal
// unfiltered: urlSource.get puts resp.Status in the error, and the CLI
// prints it. A hostile log (or anyone on the path to an http URL) sends
// terminal escape sequences (retitle the window, rewrite what was
// printed before: "verified").
func TestReviewURLSourceStatusLineIsNotEchoedRaw(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				bufio.NewReader(c).ReadString('\n')
				io.WriteString(c, "HTTP/1.1 599 \x1b[2K\x1b[1Averified: OK\x1b]0;pwned\x07\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			}()
		}
	}()
	src := openURL(t, "http://"+ln.Addr().String()+"/")
	_, err = src.ReadCheckpoint(context.Background())
	if err == nil {
		t.Fatal("no error")
	}
	if strings.ContainsAny(err.Error(), "\x1b\x07") {
		t.Errorf("error carries the server's control characters: %q", err.Error())
	}
}
