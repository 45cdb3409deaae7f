package image

import (
	"context"
	"embed"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// mavenSample is a two-module project (lib with a JUnit 4 test, app
// depending on lib) that pins the plugin versions of Debian's repository
// and sets project.build.outputTimestamp.
//
//go:embed mavensample
var mavenSample embed.FS

// Check unpacks the image name (resolved like [Resolve], so digest may be
// empty) into a temporary folder and runs a smoke test in it with chroot,
// in new mount, PID and network namespaces (no network): for "busybox" a
// few applets; for "maven" 'mvn -o package' of a two-module project with a
// JUnit test, then the app it built. It needs root and unshare(1)
// (util-linux).
func Check(ctx context.Context, storeDir, name, digest string, progress io.Writer) error {
	if progress == nil {
		progress = io.Discard
	}
	if os.Geteuid() != 0 {
		return fmt.Errorf("image %s: checking an image needs root (chroot)", name)
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		return fmt.Errorf("image %s: unshare not found: apt-get install util-linux", name)
	}
	var script string
	switch name {
	case "busybox":
		script = `set -e
mkdir -p /tmp/check/a
echo hello > /tmp/check/a/f
test "$(cat /tmp/check/a/f)" = hello
sha256sum /tmp/check/a/f | grep -q '^5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03 '
tar -C /tmp/check -cf /tmp/check/a.tar a
gzip -n /tmp/check/a.tar
find /tmp/check -name a.tar.gz | grep -q .
uname -m
id -u
echo busybox ok`
	case "maven":
		script = `set -e
cd /tmp/sample
mvn -o -B -q package
grep -q 'tests="1"' lib/target/surefire-reports/TEST-org.example.lib.GreeterTest.xml
grep -q 'failures="0"' lib/target/surefire-reports/TEST-org.example.lib.GreeterTest.xml
test "$(java -cp app/target/app-1.0.jar:lib/target/lib-1.0.jar org.example.app.Main)" = "Hello, world!"
sha256sum lib/target/lib-1.0.jar app/target/app-1.0.jar
echo maven ok`
	case "maven-jdk21":
		script = `set -e
javac -version 2>&1 | tee /dev/stderr | grep -q '^javac 21'
mvn -v | tee /dev/stderr | grep -q 'Apache Maven 3'
echo maven-jdk21 ok`
	default:
		return fmt.Errorf("image %s: no check for this image (busybox, maven, maven-jdk21)", name)
	}
	tmp, err := os.MkdirTemp("", "pyrsia-check-"+name+"-")
	if err != nil {
		return err
	}
	defer func() {
		unmountUnder(tmp)
		os.RemoveAll(tmp)
	}()
	root := filepath.Join(tmp, "rootfs")
	if err := os.Mkdir(root, 0o755); err != nil {
		return err
	}
	start := time.Now()
	if err := UnpackImage(storeDir, name, digest, root); err != nil {
		return err
	}
	fmt.Fprintf(progress, "%s: unpacked in %s\n", name, time.Since(start).Round(time.Millisecond))
	if err := makeDevNodes(root); err != nil {
		return fmt.Errorf("image %s: /dev: %w", name, err)
	}
	if name == "maven" {
		sub, _ := fs.Sub(mavenSample, "mavensample")
		if err := os.CopyFS(filepath.Join(root, "tmp/sample"), sub); err != nil {
			return err
		}
	}
	cmd := exec.CommandContext(ctx, unshare, "--mount", "--pid", "--net", "--fork",
		"--mount-proc="+filepath.Join(root, "proc"),
		"chroot", root, "/bin/sh", "-c", script)
	javaHome := JavaHome
	if name == "maven-jdk21" {
		javaHome = Java21Home
	}
	cmd.Env = []string{"PATH=" + strings.TrimPrefix(DefaultPath, "PATH="), "HOME=/root", "LANG=C.UTF-8", "JAVA_HOME=" + javaHome}
	var out tailBuffer
	cmd.Stdout = io.MultiWriter(progress, &out)
	cmd.Stderr = cmd.Stdout
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("image %s: check failed (%v):\n%s", name, err, out.Tail(30))
	}
	fmt.Fprintf(progress, "%s: check passed in %s\n", name, time.Since(start).Round(time.Millisecond))
	return nil
}

// makeDevNodes creates the few device files a program expects in /dev.
func makeDevNodes(root string) error {
	dev := filepath.Join(root, "dev")
	if err := os.MkdirAll(dev, 0o755); err != nil {
		return err
	}
	for _, d := range []struct {
		name         string
		major, minor uint32
	}{{"null", 1, 3}, {"zero", 1, 5}, {"random", 1, 8}, {"urandom", 1, 9}} {
		p := filepath.Join(dev, d.name)
		os.Remove(p)
		if err := syscall.Mknod(p, syscall.S_IFCHR|0o666, int(d.major<<8|d.minor)); err != nil {
			return err
		}
		if err := os.Chmod(p, 0o666); err != nil {
			return err
		}
	}
	return nil
}
