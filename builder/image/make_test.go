package image

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// skipOrFail skips the test with reason, but fails it in CI (CI set),
// where everything a test needs must be there.
func skipOrFail(t *testing.T, reason string) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("CI is set, so not skipping: %s", reason)
	}
	t.Skip(reason)
}

// aptUsable says why apt-get cannot download busybox-static here, or "".
func aptUsable() string {
	for _, tool := range []string{"apt-get", "apt-cache", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			return tool + " not found (not a Debian machine)"
		}
	}
	out, err := exec.Command("apt-cache", "policy", "busybox-static").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Candidate:") || strings.Contains(string(out), "Candidate: (none)") {
		return "apt knows no busybox-static candidate (run apt-get update)"
	}
	return ""
}

func TestMakeBusybox(t *testing.T) {
	if why := aptUsable(); why != "" {
		skipOrFail(t, "apt-get is not usable: "+why)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var digests []string
	var stores []string
	for i := 0; i < 2; i++ {
		store := t.TempDir()
		m, err := MakeBusybox(ctx, store, testWriter{t})
		if err != nil {
			if strings.Contains(err.Error(), "apt-get download") {
				skipOrFail(t, "apt-get download failed (no network?): "+strings.SplitN(err.Error(), "\n", 2)[0])
			}
			t.Fatal(err)
		}
		t.Logf("make %d: %s", i+1, m)
		digests = append(digests, m.Digest)
		stores = append(stores, store)
	}
	if digests[0] != digests[1] {
		t.Fatalf("two makes, two digests: %s, %s", digests[0], digests[1])
	}
	if _, err := Resolve(stores[0], "busybox", digests[0]); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		t.Log("not root: not running the image")
		return
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Log("no unshare: not running the image")
		return
	}
	if err := Check(ctx, stores[0], "busybox", digests[0], testWriter{t}); err != nil {
		t.Fatal(err)
	}
}

// TestMakeMaven makes the maven image and checks that it is reproducible
// and that 'mvn -o package' of a sample project works in it. With
// PYRSIA_IMAGES set (as .ci/run does, after making the image there) it makes
// the image once more and compares the digests; with
// PYRSIA_TEST_MAVEN_IMAGE=1 it makes it twice. Otherwise it skips: a make
// takes a minute or two, root and a Debian mirror.
func TestMakeMaven(t *testing.T) {
	store := os.Getenv("PYRSIA_IMAGES")
	if store == "" && os.Getenv("PYRSIA_TEST_MAVEN_IMAGE") != "1" {
		skipOrFail(t, "set PYRSIA_IMAGES to a store made with 'pyrsia-build image make maven', or PYRSIA_TEST_MAVEN_IMAGE=1, to check the maven image (minutes, root, a Debian mirror)")
	}
	if os.Geteuid() != 0 {
		skipOrFail(t, "making the maven image needs root (debootstrap)")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	var digests []string
	if store != "" {
		d, err := StoredDigest(store, "maven")
		if err != nil {
			t.Fatalf("PYRSIA_IMAGES=%s: %v", store, err)
		}
		digests = append(digests, d)
	}
	var made Made
	for len(digests) < 2 {
		m, err := MakeMaven(ctx, t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("made %s", m)
		digests, made = append(digests, m.Digest), m
	}
	if digests[0] != digests[1] {
		t.Fatalf("two makes, two digests: %s, %s", digests[0], digests[1])
	}
	if err := Check(ctx, filepath.Dir(made.Dir), "maven", made.Digest, testWriter{t}); err != nil {
		t.Fatal(err)
	}
}

// testWriter writes progress to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
