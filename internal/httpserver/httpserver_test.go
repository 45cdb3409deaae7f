package httpserver

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// start serves a handler that answers "ok" on 127.0.0.1 and returns its
// address; the server stops when the test ends.
func start(t *testing.T, opts Options) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			io.WriteString(w, "ok")
		}), opts)
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// get fetches / from addr over a new connection from the local address
// from, and checks the answer.
func get(t *testing.T, addr, from string) {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}, Timeout: 30 * time.Second}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		t.Fatalf("GET from %s: %v", from, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || string(b) != "ok" {
		t.Fatalf("GET from %s: %s %q, want 200 ok", from, resp.Status, b)
	}
}

// TestIdleConnectionsDoNotLockOthersOut holds 2,000 idle keep-alive
// connections from one client, each having made a request, and checks
// that another client is still served.
func TestIdleConnectionsDoNotLockOthersOut(t *testing.T) {
	addr := start(t, Options{MaxConns: 256, MaxConnsPerClient: 64})
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	served := 0
	for range 2000 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		open = append(open, c)
		// One request on the connection, then idle (keep-alive).
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err == nil {
			resp.Body.Close()
			served++
		}
	}
	if served != 64 {
		t.Errorf("one client was served on %d connections at once, want the limit of 64", served)
	}
	get(t, addr, "127.0.0.2")
	// The hog's first connections are still open and usable.
	fmt.Fprintf(open[0], "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if _, err := http.ReadResponse(bufio.NewReader(open[0]), nil); err != nil {
		t.Errorf("a connection within the limit was dropped: %v", err)
	}
}

// TestTimeouts checks that a connection that sends half a header, or that
// stays idle, is closed by the server.
func TestTimeouts(t *testing.T) {
	addr := start(t, Options{ReadHeaderTimeout: 100 * time.Millisecond, IdleTimeout: 100 * time.Millisecond})
	for name, send := range map[string]string{
		"half a header":  "GET / HTTP/1.1\r\nHost: x\r\n",
		"idle keepalive": "GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"nothing":        "",
	} {
		t.Run(name, func(t *testing.T) {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			io.WriteString(c, send)
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			_, err = io.Copy(io.Discard, c)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("the server kept the connection open for 30s")
			}
		})
	}
}

func TestShutdown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, http.NotFoundHandler(), Options{MaxConns: 1}) }()
	// Hold the only slot idle: Serve still stops.
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Errorf("still accepting after shutdown")
	} else if !strings.Contains(err.Error(), "refused") {
		t.Logf("dial after shutdown: %v", err)
	}
}
