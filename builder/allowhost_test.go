package builder

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseAllowHost(t *testing.T) {
	good := map[string]allowEntry{
		"git.internal":       {name: "git.internal"},
		"Git.Internal.:8443": {name: "git.internal", port: 8443},
		"localhost:7880":     {name: "localhost", port: 7880},
		"mirror_1":           {name: "mirror_1"},
		"127.0.0.1:7880":     {addr: mustAddr("127.0.0.1"), port: 7880},
		"10.0.0.5":           {addr: mustAddr("10.0.0.5")},
		"::1":                {addr: mustAddr("::1")},
		"[fd00::1]":          {addr: mustAddr("fd00::1")},
		"[fd00::1]:443":      {addr: mustAddr("fd00::1"), port: 443},
		"[::ffff:10.0.0.5]":  {addr: mustAddr("10.0.0.5")},
	}
	for s, want := range good {
		got, err := parseAllowHost(s)
		if err != nil || got != want {
			t.Errorf("%q: got %+v, %v; want %+v", s, got, err, want)
		}
	}
	for _, s := range []string{"", ":80", "host:", "host:0", "host:65536", "host:http", "http://host",
		"host/path", "*.internal", "127.1", "0x7f000001", "[::1", "[::1]x", "a:b:c]", "fe80::1%eth0",
		"-host", "host-", "a..b", "ho st"} {
		_, err := parseAllowHost(s)
		if err == nil || !strings.Contains(err.Error(), "builder: allowed source host ") || !strings.Contains(err.Error(), "give HOST or HOST:PORT") {
			t.Errorf("%q: got %v, want an error naming the entry", s, err)
		}
	}
}

func FuzzParseAllowHost(f *testing.F) {
	for _, s := range []string{"git.internal", "127.0.0.1:7880", "[fd00::1]:443", "::1", "a:b", "[x]:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := parseAllowHost(s)
		if err != nil {
			return
		}
		if (e.name == "") == !e.addr.IsValid() {
			t.Fatalf("%q: %+v is neither a name nor an address", s, e)
		}
		// An entry allows the host it names.
		host := e.name
		if host == "" {
			host = e.addr.String()
		}
		if !(allowList{e}).permitsHost(host, e.port) {
			t.Fatalf("%q: %+v does not allow its own host", s, e)
		}
	})
}

// TestValidateRemoteWithAllowHosts: a URL whose host and port the
// operator allows is accepted at parse time; another port of that host,
// or no allowlist, is refused as before; a bad entry fails the parse.
func TestValidateRemoteWithAllowHosts(t *testing.T) {
	spec := func(u string) []byte {
		return []byte(edit(t, mavenSpec, "path: hello.tar.gz", "url: "+u))
	}
	cases := []struct {
		url   string
		allow []string
		ok    bool
	}{
		{"http://127.0.0.1:7880/x.tar", nil, false},
		{"http://127.0.0.1:7880/x.tar", []string{"127.0.0.1:7880"}, true},
		{"http://127.0.0.1:7880/x.tar", []string{"127.0.0.1"}, true},
		{"http://127.0.0.1:7880/x.tar", []string{"127.0.0.1:7881"}, false},
		{"http://127.0.0.1:7880/x.tar", []string{"localhost:7880"}, false},
		{"http://localhost:7880/x.tar", []string{"localhost:7880"}, true},
		{"http://LOCALHOST.:7880/x.tar", []string{"localhost:7880"}, true},
		{"http://localhost:7881/x.tar", []string{"localhost:7880"}, false},
		{"http://10.0.0.5/x.tar", []string{"10.0.0.5:80"}, true},
		{"https://10.0.0.5/x.tar", []string{"10.0.0.5:80"}, false},
		{"https://10.0.0.5/x.tar", []string{"10.0.0.5:443"}, true},
		{"http://[fd00::1]:8080/x.tar", []string{"[fd00::1]:8080"}, true},
		{"http://[fd00::1]:8080/x.tar", []string{"fd00::1"}, true},
		{"http://[fd00::2]:8080/x.tar", []string{"fd00::1"}, false},
		{"http://169.254.169.254/x.tar", []string{"127.0.0.1"}, false},
	}
	for _, c := range cases {
		_, err := ParseRemoteSpecWith(spec(c.url), RemoteOptions{AllowHosts: c.allow})
		if c.ok && err != nil {
			t.Errorf("%s allowing %q: %v", c.url, c.allow, err)
		}
		var se *SpecError
		if !c.ok && (!errors.As(err, &se) || se.Field != "source.archive.url") {
			t.Errorf("%s allowing %q: got %v, want source.archive.url refused", c.url, c.allow, err)
		}
	}
	// The old functions are the case without an allowlist.
	if _, err := ParseRemoteSpec(spec("http://127.0.0.1:7880/x.tar")); err == nil || !strings.Contains(err.Error(), "--allow-source-host") {
		t.Errorf("ParseRemoteSpec: got %v, want the loopback URL refused, with the way to allow it", err)
	}
	// A git URL is checked the same way.
	git := []byte(edit(t, ociSpec, "https://example.com/hello.git", "https://10.1.2.3:3000/hello.git"))
	if _, err := ParseRemoteSpec(git); err == nil {
		t.Error("ParseRemoteSpec accepted a private git host")
	}
	if _, err := ParseRemoteSpecWith(git, RemoteOptions{AllowHosts: []string{"10.1.2.3:3000"}}); err != nil {
		t.Errorf("an allowed git host: %v", err)
	}
	// Nothing else of the remote rules is relaxed.
	local := []byte(edit(t, mavenSpec, "path: hello.tar.gz", "path: /etc/hello.tar.gz"))
	if _, err := ParseRemoteSpecWith(local, RemoteOptions{AllowHosts: []string{"localhost"}}); err == nil {
		t.Error("an allowlist let an absolute path through")
	}
	_, err := ParseRemoteSpecWith(spec("https://example.com/x.tar"), RemoteOptions{AllowHosts: []string{"http://x"}})
	if err == nil || !strings.Contains(err.Error(), `"http://x"`) {
		t.Errorf("a bad entry: got %v, want it named", err)
	}
	// Build checks the spec with the same options before anything else.
	s, err := ParseSpec(spec("http://127.0.0.1:7880/x.tar"))
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out")
	_, err = new(BuildKit).Build(t.Context(), s, BuildOptions{OutDir: out, Remote: true, AllowHosts: []string{"127.0.0.1:7881"}})
	var se *SpecError
	if !errors.As(err, &se) || se.Field != "source.archive.url" {
		t.Errorf("Build allowing another port: got %v, want source.archive.url refused", err)
	}
}

// TestAllowHostsConnect: with an allowlist, the connect-time check lets
// through the allowed host and port, by address and by name, and still
// refuses another port of the same host, directly and by a redirect.
// Without an allowlist nothing changes. (Real loopback servers, the real
// check: remoteAddrCheck is not replaced.)
func TestAllowHostsConnect(t *testing.T) {
	data := tarBytes(t, &tar.Header{Name: "hello.txt", Typeflag: tar.TypeReg, Mode: 0o644})
	sum := sha256.Sum256(data)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(data) }))
	defer other.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("/x.tar", func(w http.ResponseWriter, r *http.Request) { w.Write(data) })
	mux.HandleFunc("/away.tar", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/x.tar", http.StatusFound)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	hostPort := func(s *httptest.Server) string { u, _ := url.Parse(s.URL); return u.Host }
	port := hostPort(srv)[strings.LastIndex(hostPort(srv), ":")+1:]
	otherPort := hostPort(other)[strings.LastIndex(hostPort(other), ":")+1:]
	fetch := func(u string, allow ...string) error {
		g, err := newNetGuard(RemoteOptions{AllowHosts: allow})
		if err != nil {
			t.Fatal(err)
		}
		_, err = fetchArchive(t.Context(), &ArchiveSource{URL: u, SHA256: hex.EncodeToString(sum[:])}, "", t.TempDir(), g, io.Discard)
		return err
	}
	refused := func(err error) bool {
		var ra *RefusedAddressError
		return errors.As(err, &ra) && ra.Reason == "loopback"
	}

	if err := fetch(srv.URL + "/x.tar"); !refused(err) {
		t.Fatalf("no allowlist: got %v, want the loopback address refused", err)
	}
	if err := fetch(srv.URL+"/x.tar", hostPort(srv)); err != nil {
		t.Errorf("the allowed address and port: %v", err)
	}
	if err := fetch("http://localhost:"+port+"/x.tar", "localhost:"+port); err != nil {
		t.Errorf("the allowed name and port: %v", err)
	}
	// An address entry holds whatever name leads to it.
	if err := fetch("http://localhost:"+port+"/x.tar", hostPort(srv)); err != nil {
		t.Errorf("a name that resolves to the allowed address and port: %v", err)
	}
	if err := fetch(other.URL+"/x.tar", hostPort(srv)); !refused(err) {
		t.Errorf("another port of the allowed address: got %v, want it refused", err)
	}
	if err := fetch("http://localhost:"+otherPort+"/x.tar", "localhost:"+port); !refused(err) {
		t.Errorf("another port of the allowed name: got %v, want it refused", err)
	}
	if err := fetch(srv.URL+"/away.tar", hostPort(srv)); !refused(err) {
		t.Errorf("a redirect from the allowed host to another port: got %v, want it refused", err)
	}
	if err := fetch("http://localhost:"+port+"/away.tar", "localhost:"+port); !refused(err) {
		t.Errorf("a redirect from the allowed name to another port: got %v, want it refused", err)
	}
	// A host entry without a port allows every port of it.
	if err := fetch(srv.URL+"/away.tar", "127.0.0.1"); err != nil {
		t.Errorf("a redirect within an allowed host: %v", err)
	}
}

// TestAllowHostsGit: git's connections, made by the node's proxy, follow
// the allowlist too: the allowed host:port is cloned, another port of the
// same host is refused.
func TestAllowHostsGit(t *testing.T) {
	dir, commit := gitServed(t)
	srv := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer srv.Close()
	other := httptest.NewServer(http.FileServer(http.Dir(dir)))
	defer other.Close()
	t.Setenv("http_proxy", "http://127.0.0.1:9")
	u, _ := url.Parse(srv.URL)
	g, err := newNetGuard(RemoteOptions{AllowHosts: []string{u.Host}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := fetchGit(t.Context(), &GitSource{URL: srv.URL + "/repo.git", Commit: commit}, "", filepath.Join(t.TempDir(), "src"), g, io.Discard)
	if err != nil || got != "gitCommit:"+commit {
		t.Fatalf("the allowed host:port: got %q, %v", got, err)
	}
	_, err = fetchGit(t.Context(), &GitSource{URL: other.URL + "/repo.git", Commit: commit}, "", filepath.Join(t.TempDir(), "src"), g, io.Discard)
	var ra *RefusedAddressError
	if !errors.As(err, &ra) || ra.Reason != "loopback" {
		t.Fatalf("another port of the allowed host: got %v, want the loopback address refused", err)
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
