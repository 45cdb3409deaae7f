package builder

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// authRepo is a Maven repository on loopback that answers only requests
// with the basic-auth user and password, serving files from next.
func authRepo(t *testing.T, user, pass string, next http.Handler) (url string, denied *int) {
	t.Helper()
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != user || p != pass {
			n++
			w.Header().Set("WWW-Authenticate", `Basic realm="maven"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &n
}

// userSettings makes a home folder whose ~/.m2/settings.xml holds xml,
// and points the lookup of the Maven configuration at it (HOME, as
// os.UserHomeDir reads it; no global settings).
func userSettings(t *testing.T, xml string) {
	t.Helper()
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, ".m2"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(home, ".m2", "settings.xml"), []byte(xml), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("HOME", home)
	t.Setenv(MavenRepoEnv, "")
	t.Setenv("MAVEN_HOME", t.TempDir()) // no conf/settings.xml there
}

func mirrorSettings(url, password string) string {
	return `<settings>
  <servers>
    <server><id>other</id><username>nobody</username><password>nothing</password></server>
    <server><id>secure-mirror</id><username>builder</username><password>` + password + `</password></server>
  </servers>
  <mirrors>
    <mirror><id>secure-mirror</id><mirrorOf>*</mirrorOf><url>` + url + `</url></mirror>
  </mirrors>
</settings>`
}

// TestMavenMirrorCredentials: the settings' <server> of the mirror's id
// gives resolve, the locked files' fetches, source releases and the
// official release's fetch their basic auth; a wrong password fails
// naming the server, never the password.
func TestMavenMirrorCredentials(t *testing.T) {
	const secret = "s3cr3t-pass-phrase"
	jar, pom := []byte("jar bytes"), []byte("<project/>")
	zipPath := filepath.Join(t.TempDir(), "lib-1.0-source-release.zip")
	writeZip(t, zipPath, []zipFile{{name: "lib-1.0/pom.xml", body: "<project/>"}})
	zipData, err := os.ReadFile(zipPath)
	if err != nil {
		t.Fatal(err)
	}
	files := &repoServer{files: map[string][]byte{
		"org/x/lib/1.0/lib-1.0.jar":                jar,
		"org/x/lib/1.0/lib-1.0.pom":                pom,
		"org/x/lib/1.0/lib-1.0-source-release.zip": zipData,
	}}
	url, denied := authRepo(t, "builder", secret, files)
	lock := &Lock{Version: 1, Files: []LockFile{
		{Coordinate: "org.x:lib:1.0", File: "lib-1.0.jar", SHA256: sha(jar)},
		{Coordinate: "org.x:lib:1.0", File: "lib-1.0.pom", SHA256: sha(pom)},
	}}
	ctx := context.Background()

	t.Run("settings give the credentials", func(t *testing.T) {
		t.Setenv("PYRSIA_TEST_MIRROR_PASSWORD", secret)
		userSettings(t, mirrorSettings(url+"/", "${env.PYRSIA_TEST_MIRROR_PASSWORD}"))
		got, err := MavenRepository()
		if err != nil || got != url {
			t.Fatalf("MavenRepository: %q, %v; want %q", got, err, url)
		}
		*denied = 0

		// The locked files (the build phase's fetches).
		dir := t.TempDir()
		var progress bytes.Buffer
		if _, err := lockRepo(ctx, lock, mustRepo(t).client(), "", dir, &progress); err != nil {
			t.Fatal(err)
		}
		if b, err := os.ReadFile(filepath.Join(dir, "org/x/lib/1.0/lib-1.0.jar")); err != nil || !bytes.Equal(b, jar) {
			t.Fatalf("the jar in the lock's repository: %q, %v", b, err)
		}
		// A source release.
		if _, err := fetchMavenSource(ctx, &MavenSource{Coordinate: "org.x:lib:1.0", SHA256: sha(zipData)}, mavenRepoOpts{cache: "-"}, t.TempDir(), nil); err != nil {
			t.Fatal(err)
		}
		// The resolve phase's recording mirror forwards with them.
		repo, _, err := mavenRepoOpts{cache: "-"}.resolve()
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{client: repo.client(), files: map[string]string{}}
		srv := httptest.NewServer(rec)
		defer srv.Close()
		resp, err := http.Get(srv.URL + "/org/x/lib/1.0/lib-1.0.pom")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 || rec.files["org/x/lib/1.0/lib-1.0.pom"] != sha(pom) {
			t.Fatalf("resolve through the mirror: HTTP %d, recorded %v", resp.StatusCode, rec.files)
		}
		if *denied != 0 {
			t.Fatalf("%d requests were refused", *denied)
		}
		if strings.Contains(progress.String(), secret) {
			t.Fatal("the progress shows the password")
		}
	})

	t.Run("wrong password", func(t *testing.T) {
		userSettings(t, mirrorSettings(url, "not-the-"+secret))
		var logs bytes.Buffer
		old := slog.Default()
		slog.SetDefault(slog.New(slog.NewTextHandler(&logs, nil)))
		defer slog.SetDefault(old)

		_, err := lockRepo(ctx, lock, mustRepo(t).client(), "", t.TempDir(), io.Discard)
		var fe *FetchError
		if !errors.As(err, &fe) || fe.Status != http.StatusUnauthorized {
			t.Fatalf("got %v, want an HTTP 401 FetchError", err)
		}
		if msg := err.Error(); !strings.Contains(msg, `server "secure-mirror"`) || !strings.Contains(msg, "check its username and password") || strings.Contains(msg, secret) {
			t.Fatalf("error %q: want it to name the server and what to do, and not the password", msg)
		}
		// Resolve's mirror answers Maven with the status; the log and the
		// answer hold no password either.
		repo, _, _ := mavenRepoOpts{cache: "-"}.resolve()
		srv := httptest.NewServer(&recorder{client: repo.client(), files: map[string]string{}})
		defer srv.Close()
		resp, err := http.Get(srv.URL + "/org/x/lib/1.0/lib-1.0.pom")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || strings.Contains(string(body), secret) || strings.Contains(logs.String(), secret) {
			t.Fatalf("resolve's mirror: HTTP %d %q, log %q", resp.StatusCode, body, logs.String())
		}
	})

	t.Run("no credentials", func(t *testing.T) {
		userSettings(t, `<settings><mirrors><mirror><id>open</id><mirrorOf>central</mirrorOf><url>`+url+`</url></mirror></mirrors></settings>`)
		_, err := lockRepo(ctx, lock, mustRepo(t).client(), "", t.TempDir(), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "no credentials were sent") || !strings.Contains(err.Error(), "<server>") {
			t.Fatalf("got %v, want an error saying to give credentials in a <server>", err)
		}
	})

	for _, tc := range []struct{ name, password, want string }{
		{"encrypted password", "{COQLCE6DU6GtcS5P=}", "encrypted (settings-security.xml)"},
		{"unset variable", "${env.PYRSIA_TEST_UNSET_VARIABLE}", "PYRSIA_TEST_UNSET_VARIABLE, which is not set"},
		{"other expression", "${settings.secret}", "other than ${env.NAME}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			userSettings(t, mirrorSettings(url, tc.password))
			_, err := MavenRepository()
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), `server "secure-mirror"`) || strings.Contains(err.Error(), tc.password) {
				t.Fatalf("got %v, want an error naming the server and holding %q, not the password", err, tc.want)
			}
		})
	}

	t.Run("user and password in the variable", func(t *testing.T) {
		userSettings(t, "<settings/>")
		t.Setenv(MavenRepoEnv, strings.Replace(url, "http://", "http://builder:"+secret+"@", 1))
		got, err := MavenRepository()
		if err != nil || got != url {
			t.Fatalf("MavenRepository: %q, %v; want %q without the credentials", got, err, url)
		}
		if _, err := lockRepo(ctx, lock, mustRepo(t).client(), "", t.TempDir(), io.Discard); err != nil {
			t.Fatal(err)
		}
		t.Setenv(MavenRepoEnv, "ftp://builder:"+secret+"@repo.example/")
		if _, err := MavenRepository(); err == nil || strings.Contains(err.Error(), secret) {
			t.Fatalf("got %v, want a refusal that does not show the password", err)
		}
	})
}

func mustRepo(t *testing.T) repoConfig {
	t.Helper()
	c, err := mavenRepoConfig()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestMavenCredentialsStayWithTheMirror: a mirror that redirects (to
// another port of its host, where net/http would still send the
// Authorization header it was given) has its file fetched, checked
// against the lock, without the credentials going along.
func TestMavenCredentialsStayWithTheMirror(t *testing.T) {
	const secret = "s3cr3t-pass-phrase"
	jar := []byte("jar bytes")
	var leaked []string
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if h := r.Header.Get("Authorization"); h != "" {
			leaked = append(leaked, r.URL.Path)
		}
		w.Write(jar)
	}))
	defer other.Close()
	url, _ := authRepo(t, "builder", secret, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, other.URL+r.URL.Path, http.StatusFound)
	}))
	userSettings(t, mirrorSettings(url, secret))
	lock := &Lock{Version: 1, Files: []LockFile{{Coordinate: "org.x:lib:1.0", File: "lib-1.0.jar", SHA256: sha(jar)}}}
	dir := t.TempDir()
	if _, err := lockRepo(context.Background(), lock, mustRepo(t).client(), "", dir, io.Discard); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "org/x/lib/1.0/lib-1.0.jar")); err != nil || !bytes.Equal(b, jar) {
		t.Fatalf("the redirected jar: %q, %v", b, err)
	}
	if len(leaked) > 0 {
		t.Fatalf("the mirror's credentials went to %s after a redirect to another port (%v)", other.URL, leaked)
	}
}
