package builder

import (
	"archive/tar"
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestNonPublic(t *testing.T) {
	tests := []struct{ addr, want string }{
		{"8.8.8.8", ""},
		{"93.184.216.34", ""},
		{"2606:4700:4700::1111", ""},
		{"::ffff:8.8.8.8", ""},
		{"64:ff9b::808:808", ""}, // NAT64 of 8.8.8.8
		{"127.0.0.1", "loopback"},
		{"127.255.255.254", "loopback"},
		{"::1", "loopback"},
		{"::ffff:127.0.0.1", "loopback"},
		{"::ffff:169.254.169.254", "link-local"},
		{"0.0.0.0", "unspecified"},
		{"::", "unspecified"},
		{"0.1.2.3", "this-network"},
		{"10.0.0.5", "private"},
		{"172.16.0.1", "private"},
		{"192.168.1.1", "private"},
		{"::ffff:10.0.0.5", "private"},
		{"fd00::1", "private"},
		{"169.254.169.254", "link-local"},
		{"fe80::1", "link-local"},
		{"fe80::1%eth0", "link-local"},
		{"224.0.0.1", "multicast"},
		{"ff02::1", "multicast"},
		{"100.64.0.1", "shared (CGNAT)"},
		{"100.127.255.255", "shared (CGNAT)"},
		{"192.0.0.8", "IETF protocol"},
		{"192.0.2.1", "documentation"},
		{"198.18.0.1", "benchmarking"},
		{"240.0.0.1", "reserved"},
		{"255.255.255.255", "reserved"},
		{"::127.0.0.1", "IPv4-compatible"},
		{"64:ff9b::7f00:1", "loopback (in NAT64)"},
		{"64:ff9b::a9fe:a9fe", "link-local (in NAT64)"},
		{"2002:7f00:1::1", "loopback (in 6to4)"},
		{"2002:a00:5::1", "private (in 6to4)"},
		{"2001::1", "IETF protocol"},
		{"2001:db8::1", "documentation"},
		{"fec0::1", "site-local"},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			if got := nonPublic(netip.MustParseAddr(tt.addr)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCheckRemoteHost(t *testing.T) {
	good := []string{
		"https://example.com/x.tar.gz",
		"https://example.com./x.tar.gz",
		"http://93.184.216.34:8080/x.tar",
		"https://[2606:4700:4700::1111]/x.zip",
		"https://1.2.3.4.example.com/x.tar",
		"https://x1/x.tar", // a name, not a number
	}
	for _, u := range good {
		if err := checkRemoteHost("f", u, nil); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
	bad := map[string]string{
		"http://localhost/x.tar":            "the node itself",
		"http://LOCALHOST./x.tar":           "the node itself",
		"http://admin.localhost/x.tar":      "the node itself",
		"http://127.0.0.1/x.tar":            "a loopback address",
		"http://127.1/x.tar":                "read as an IP address",
		"http://2130706433/x.tar":           "read as an IP address",
		"http://0x7f000001/x.tar":           "read as an IP address",
		"http://0x7f.1/x.tar":               "read as an IP address",
		"http://0177.0.0.1/x.tar":           "read as an IP address",
		"http://8.8.8.010/x.tar":            "read as an IP address",
		"http://example.123/x.tar":          "read as an IP address",
		"http://0.0.0.0/x.tar":              "unspecified",
		"http://[::]/x.tar":                 "unspecified",
		"http://[::ffff:127.0.0.1]/x.tar":   "a loopback address",
		"http://[::ffff:7f00:1]/x.tar":      "a loopback address",
		"http://[fe80::1%25eth0]/x.tar":     "link-local",
		"http://169.254.169.254/x.tar":      "link-local",
		"http://100.100.100.200/x.tar":      "CGNAT",
		"http://[fd12:3456::1]:8080/x.tar":  "private",
		"https://192.168.0.1/x.tar":         "private",
		"https://[64:ff9b::a00:5]/x.tar.gz": "private (in NAT64)",
	}
	for u, want := range bad {
		err := checkRemoteHost("source.archive.url", u, nil)
		var se *SpecError
		if !errors.As(err, &se) || se.Field != "source.archive.url" || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "not allowed in a spec from the network") {
			t.Errorf("%s: got %v, want it refused as %q", u, err, want)
		}
	}
}

// allowOnly makes the connection check of remote fetches let through the
// given servers' addresses (127.0.0.1 in tests) and judge every other
// address as it does for real.
func allowOnly(t *testing.T, servers ...*httptest.Server) {
	t.Helper()
	allowed := map[netip.AddrPort]bool{}
	for _, s := range servers {
		u, err := url.Parse(s.URL)
		if err != nil {
			t.Fatal(err)
		}
		allowed[netip.MustParseAddrPort(u.Host)] = true
	}
	old := remoteAddrCheck
	remoteAddrCheck = func(a netip.AddrPort) error {
		if allowed[a] {
			return nil
		}
		return old(a)
	}
	t.Cleanup(func() { remoteAddrCheck = old })
}

// TestRemoteArchiveConnectCheck: an archive URL of a remote spec is
// fetched only from public addresses, checked when the connection is
// made: a name that resolves to loopback and a redirect to another host
// are refused, redirects are bounded; a local build fetches the same URL.
func TestRemoteArchiveConnectCheck(t *testing.T) {
	data := tarBytes(t, &tar.Header{Name: "hello.txt", Typeflag: tar.TypeReg, Mode: 0o644})
	sum := sha256.Sum256(data)
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(data) }))
	defer other.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("/x.tar", func(w http.ResponseWriter, r *http.Request) { w.Write(data) })
	mux.HandleFunc("/away.tar", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+"/x.tar", http.StatusFound)
	})
	mux.HandleFunc("/loop.tar", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/loop.tar", http.StatusFound)
	})
	mux.HandleFunc("/twice.tar", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/once.tar", http.StatusFound)
	})
	mux.HandleFunc("/once.tar", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/x.tar", http.StatusFound)
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	fetch := func(u string, remote bool) error {
		a := &ArchiveSource{URL: u, SHA256: hex.EncodeToString(sum[:])}
		var guard *netGuard
		if remote {
			guard = &netGuard{}
		}
		_, err := fetchArchive(t.Context(), a, "", t.TempDir(), guard, io.Discard)
		return err
	}

	byName := "http://localhost:" + port + "/x.tar"
	if err := fetch(byName, false); err != nil {
		t.Fatalf("local build of %s: %v", byName, err)
	}
	err := fetch(byName, true)
	var ra *RefusedAddressError
	if !errors.As(err, &ra) || ra.Reason != "loopback" || !ra.Addr.Addr().IsLoopback() {
		t.Fatalf("remote build of %s: got %v, want the loopback address refused", byName, err)
	}
	if strings.Contains(err.Error(), "127.0.0.1") || strings.Contains(err.Error(), "[::1]") {
		t.Errorf("the error %q says what the name resolves to", err)
	}

	allowOnly(t, srv)
	if err := fetch(srv.URL+"/x.tar", true); err != nil {
		t.Fatalf("an allowed address: %v", err)
	}
	if err := fetch(srv.URL+"/twice.tar", true); err != nil {
		t.Fatalf("two redirects on an allowed address: %v", err)
	}
	if err := fetch(srv.URL+"/away.tar", true); !errors.As(err, &ra) || int(ra.Addr.Port()) != other.Listener.Addr().(*net.TCPAddr).Port {
		t.Errorf("a redirect to another local server: got %v, want it refused", err)
	}
	if err := fetch(srv.URL+"/loop.tar", true); err == nil || !strings.Contains(err.Error(), "more than 5 redirects") {
		t.Errorf("a redirect loop: got %v, want it stopped after 5", err)
	}
}

// TestRemoteArchiveDigestNotShown: a remote spec's local archive with
// another digest fails without the file's digest (a hash oracle for the
// node's files); a local build says it.
func TestRemoteArchiveDigestNotShown(t *testing.T) {
	specDir := t.TempDir()
	data := tarBytes(t, &tar.Header{Name: "hello.txt", Typeflag: tar.TypeReg, Mode: 0o644})
	if err := os.WriteFile(filepath.Join(specDir, "x.tar"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	actual := hex.EncodeToString(sum[:])
	a := &ArchiveSource{Path: "x.tar", SHA256: strings.Repeat("0", 64)}
	_, err := fetchArchive(t.Context(), a, specDir, t.TempDir(), nil, io.Discard)
	if err == nil || !strings.Contains(err.Error(), actual) {
		t.Fatalf("local build: got %v, want the actual digest named", err)
	}
	_, err = fetchArchive(t.Context(), a, specDir, t.TempDir(), &netGuard{}, io.Discard)
	if err == nil || strings.Contains(err.Error(), actual) || !strings.Contains(err.Error(), "does not have the sha256 the spec pins") {
		t.Fatalf("remote build: got %v, want a mismatch without the actual digest", err)
	}
	if strings.Contains(err.Error(), specDir) {
		t.Errorf("remote build: the error %q names the node's spec folder", err)
	}
	// With no spec folder a remote spec has no local files.
	_, err = fetchArchive(t.Context(), &ArchiveSource{Path: "x.tar", SHA256: actual}, "", t.TempDir(), &netGuard{}, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "this build has none") {
		t.Fatalf("remote build without a spec folder: got %v", err)
	}
}

// TestRemoteLockStaysInSpecDir: a remote spec's Maven lock is read only
// inside the spec folder, and a lock with another digest is refused
// without saying its digest.
func TestRemoteLockStaysInSpecDir(t *testing.T) {
	lockText := []byte(`{"version":1,"files":[]}`)
	outside := t.TempDir()
	if err := os.WriteFile(filepath.Join(outside, "maven.lock"), lockText, 0o644); err != nil {
		t.Fatal(err)
	}
	specDir := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(specDir, "locks")); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(lockText)
	actual := hex.EncodeToString(sum[:])
	through := &LockRef{Path: "locks/maven.lock", SHA256: actual}
	if _, err := loadRemoteLock(through, specDir); err == nil || !strings.Contains(err.Error(), "links out of the folder are not followed") {
		t.Errorf("remote: got %v, want the lock behind a symlink out of the folder refused", err)
	}
	// A local build may follow the link: the node's user set it up.
	if _, err := loadLock(through, specDir); err != nil && strings.Contains(err.Error(), "links out") {
		t.Errorf("local: %v", err)
	}

	if err := os.WriteFile(filepath.Join(specDir, "maven.lock"), lockText, 0o644); err != nil {
		t.Fatal(err)
	}
	wrong := &LockRef{Path: "maven.lock", SHA256: strings.Repeat("0", 64)}
	_, err := loadRemoteLock(wrong, specDir)
	if err == nil || strings.Contains(err.Error(), actual) || !strings.Contains(err.Error(), "does not have the sha256 the spec pins") {
		t.Errorf("remote: got %v, want a mismatch without the actual digest", err)
	}
	if _, err := loadLock(wrong, specDir); err == nil || !strings.Contains(err.Error(), actual) {
		t.Errorf("local: got %v, want the actual digest named", err)
	}
}

// gitServed makes a repository with one commit and serves it over git's
// dumb HTTP protocol (static files), returning its commit.
func gitServed(t *testing.T) (dir, commit string) {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git (apt-get install git)")
	}
	work := t.TempDir()
	run := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", append([]string{"-C", dir}, args...)...)
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull,
			"GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@example.com", "GIT_COMMITTER_NAME=a", "GIT_COMMITTER_EMAIL=a@example.com")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v %s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run(work, "init", "-q")
	if err := os.WriteFile(filepath.Join(work, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(work, "add", "f")
	run(work, "commit", "-qm", "x")
	commit = run(work, "rev-parse", "HEAD")
	dir = t.TempDir()
	run(dir, "clone", "-q", "--bare", work, "repo.git")
	run(filepath.Join(dir, "repo.git"), "update-server-info")
	return dir, commit
}

// TestRemoteGitConnectCheck: for a remote spec every connection git makes
// goes through the node's check, over http (forwarded) and https
// (CONNECT): a server on loopback is refused, and the same server, once
// allowed, is cloned, so git neither bypasses the proxy nor fails for
// another reason.
func TestRemoteGitConnectCheck(t *testing.T) {
	dir, commit := gitServed(t)
	files := http.FileServer(http.Dir(dir))
	plain := httptest.NewServer(files)
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(files)
	defer tlsSrv.Close()
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: tlsSrv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GIT_SSL_CAINFO", ca)
	// A proxy of the node's user is not used: git's connections are the
	// node's own, checked.
	t.Setenv("http_proxy", "http://127.0.0.1:9")
	t.Setenv("https_proxy", "http://127.0.0.1:9")

	for name, srv := range map[string]*httptest.Server{"http": plain, "https": tlsSrv} {
		t.Run(name, func(t *testing.T) {
			g := &GitSource{URL: srv.URL + "/repo.git", Commit: commit}
			_, err := fetchGit(t.Context(), g, "", filepath.Join(t.TempDir(), "src"), &netGuard{}, io.Discard)
			var ra *RefusedAddressError
			if !errors.As(err, &ra) || ra.Reason != "loopback" {
				t.Fatalf("got %v, want the loopback address refused", err)
			}
			allowOnly(t, srv)
			dst := filepath.Join(t.TempDir(), "src")
			got, err := fetchGit(t.Context(), g, "", dst, &netGuard{}, io.Discard)
			if err != nil {
				t.Fatalf("an allowed address: %v", err)
			}
			if got != "gitCommit:"+commit {
				t.Errorf("got %s, want gitCommit:%s", got, commit)
			}
			if b, err := os.ReadFile(filepath.Join(dst, "f")); err != nil || string(b) != "x" {
				t.Errorf("checked out f: %q, %v", b, err)
			}
		})
	}
}
