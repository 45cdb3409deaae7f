package image

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// MavenEpoch is the maven image's SOURCE_DATE_EPOCH: for debootstrap (and
// so for the maintainer scripts that read it, such as the /etc/shadow
// dates) and for every mtime of the layer and the config's created time.
// It is Debian 12.0's release day, 2023-06-10T00:00:00Z; a constant, so
// that the digest depends only on the package versions.
var MavenEpoch = time.Date(2023, 6, 10, 0, 0, 0, 0, time.UTC)

// MavenSuite is the Debian release the maven image is made of.
const MavenSuite = "bookworm"

// MavenPackages are installed on top of debootstrap's minbase. The plugin
// packages put into /usr/share/maven-repo the plugins a jar project's
// default lifecycle uses, in these versions (bookworm):
//
//	maven-clean-plugin      2.5, 3.2.0     libmaven-clean-plugin-java
//	maven-resources-plugin  2.6, 3.3.0     libmaven-resources-plugin-java
//	maven-compiler-plugin   3.1, 3.10.1    libmaven-compiler-plugin-java
//	maven-surefire-plugin   2.12.4, 2.22.3 libsurefire-java (+ surefire-junit4)
//	maven-jar-plugin        2.4, 3.3.0     libmaven-jar-plugin-java (3.2+: outputTimestamp)
//	maven-install-plugin    2.4, 3.1.0     libmaven-install-plugin-java
//	junit:junit             4.13.2         junit4
//
// The older versions are the ones Maven 3.8.7's super POM binds; a project
// that wants reproducible jars pins maven-jar-plugin 3.3.0 and sets
// project.build.outputTimestamp.
var MavenPackages = []string{
	"openjdk-17-jdk-headless",
	"maven",
	"libmaven-clean-plugin-java",
	"libmaven-resources-plugin-java",
	"libmaven-compiler-plugin-java",
	"libsurefire-java",
	"libmaven-jar-plugin-java",
	"libmaven-install-plugin-java",
	"junit4",
	// A C toolchain, so that the same Debian image also builds small
	// native programs (the OCI sample compiles a static C binary).
	"gcc",
	"libc6-dev",
}

// MavenSettings is /etc/maven/settings.xml in the maven image (Debian's
// /usr/share/maven/conf is a symlink to /etc/maven): Debian's offline
// repository is the local repository, as maven-debian-helper does with
// -Dmaven.repo.local=/usr/share/maven-repo, and Maven is offline, so a
// build finds its plugins and dependencies there or fails.
const MavenSettings = `<?xml version="1.0" encoding="UTF-8"?>
<!-- pyrsia-build maven builder image: Debian's offline Maven repository,
     no network. A project must use the plugin and dependency versions in
     /usr/share/maven-repo. -->
<settings xmlns="http://maven.apache.org/SETTINGS/1.0.0"
          xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
          xsi:schemaLocation="http://maven.apache.org/SETTINGS/1.0.0 https://maven.apache.org/xsd/settings-1.0.0.xsd">
  <localRepository>/usr/share/maven-repo</localRepository>
  <interactiveMode>false</interactiveMode>
  <offline>true</offline>
</settings>
`

// JavaHome is JAVA_HOME in the maven image.
const JavaHome = "/usr/lib/jvm/java-17-openjdk-amd64"

// DebCacheDir is where debootstrap keeps the .debs between makes
// (--cache-dir): $XDG_CACHE_HOME/pyrsia-build/debs, or
// ~/.cache/pyrsia-build/debs. It is a speed-up only: debootstrap checks
// every cached .deb against the mirror's Packages file. Two makes at the
// same time should not share it.
func DebCacheDir() (string, error) {
	c, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(c, "pyrsia-build", "debs"), nil
}

// MakeMaven makes the image "maven" in storeDir: 'debootstrap
// --variant=minbase --arch=amd64 --include=<MavenPackages> bookworm' from
// the mirror of the machine's apt sources ([DebianMirror]), with
// SOURCE_DATE_EPOCH=[MavenEpoch], then [NormaliseRootfs], then
// [MavenSettings], written by [WriteImage] with the epoch MavenEpoch. It
// needs root and debootstrap, and takes about a minute with a fast mirror
// (less with the .deb cache, [DebCacheDir]). The image is about 750 MB.
func MakeMaven(ctx context.Context, storeDir string, progress io.Writer) (Made, error) {
	return makeDebianMaven(ctx, storeDir, debianMaven{name: "maven", suite: MavenSuite, epoch: MavenEpoch, packages: MavenPackages, javaHome: JavaHome}, progress)
}

// Maven21Suite, Maven21Epoch (Debian 13.0's release day,
// 2025-08-09T00:00:00Z), Maven21Packages and Java21Home make the image
// "maven-jdk21": OpenJDK 21 and Maven 3.9 from Debian trixie, for releases
// built with JDK 21 (their jars say Build-Jdk-Spec: 21). It has no
// plugins of its own: it is for locked builds (recipe.maven.lock), which
// bring every plugin in the lock. Debian bookworm offers OpenJDK 17 only;
// trixie offers 21 and 25.
const (
	Maven21Suite = "trixie"
	Java21Home   = "/usr/lib/jvm/java-21-openjdk-amd64"
)

var (
	Maven21Epoch    = time.Date(2025, 8, 9, 0, 0, 0, 0, time.UTC)
	Maven21Packages = []string{"openjdk-21-jdk-headless", "maven"}
)

// MakeMavenJDK21 makes the image "maven-jdk21" as [MakeMaven] makes
// "maven", from Maven21Suite with Maven21Packages at Maven21Epoch.
func MakeMavenJDK21(ctx context.Context, storeDir string, progress io.Writer) (Made, error) {
	return makeDebianMaven(ctx, storeDir, debianMaven{name: "maven-jdk21", suite: Maven21Suite, epoch: Maven21Epoch, packages: Maven21Packages, javaHome: Java21Home}, progress)
}

// debianMaven is a Maven builder image made by debootstrap.
type debianMaven struct {
	name     string
	suite    string
	epoch    time.Time
	packages []string
	javaHome string
}

func makeDebianMaven(ctx context.Context, storeDir string, d debianMaven, progress io.Writer) (Made, error) {
	start := time.Now()
	if progress == nil {
		progress = io.Discard
	}
	debootstrap, err := exec.LookPath("debootstrap")
	if err != nil {
		if _, err2 := os.Stat("/usr/sbin/debootstrap"); err2 == nil {
			debootstrap = "/usr/sbin/debootstrap"
		} else {
			return Made{}, fmt.Errorf("image %s: debootstrap not found: apt-get install debootstrap", d.name)
		}
	}
	if os.Geteuid() != 0 {
		return Made{}, fmt.Errorf("image %s: debootstrap needs root: run 'pyrsia-build image make %s' as root", d.name, d.name)
	}
	mirror, err := DebianMirror()
	if err != nil {
		return Made{}, fmt.Errorf("image %s: %w", d.name, err)
	}
	if err := os.MkdirAll(storeDir, 0o755); err != nil {
		return Made{}, err
	}
	work, err := os.MkdirTemp(storeDir, ".maven-rootfs-")
	if err != nil {
		return Made{}, err
	}
	defer func() {
		unmountUnder(work)
		os.RemoveAll(work)
	}()
	root := filepath.Join(work, "rootfs")

	args := []string{
		"--variant=minbase", "--arch=amd64",
		"--include=" + strings.Join(d.packages, ","),
	}
	if cache, err := DebCacheDir(); err == nil && os.MkdirAll(cache, 0o755) == nil {
		args = append(args, "--cache-dir="+cache)
	} else {
		fmt.Fprintf(progress, "%s: no .deb cache (%v); downloading everything\n", d.name, err)
	}
	args = append(args, d.suite, root, mirror)
	fmt.Fprintf(progress, "%s: debootstrap %s\n", d.name, strings.Join(args, " "))
	// A umask of 022 and a fixed environment: files that maintainer
	// scripts make must not depend on the caller's umask, locale or zone.
	cmd := exec.CommandContext(ctx, "/bin/sh", append([]string{"-c", `umask 022 && exec "$0" "$@"`, debootstrap}, args...)...)
	cmd.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"SOURCE_DATE_EPOCH=" + strconv.FormatInt(d.epoch.Unix(), 10),
		"LC_ALL=C", "TZ=UTC", "HOME=/root", "DEBIAN_FRONTEND=noninteractive",
	}
	for _, k := range []string{"http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"} {
		if v, ok := os.LookupEnv(k); ok {
			cmd.Env = append(cmd.Env, k+"="+v)
		}
	}
	var out tailBuffer
	err = runDebootstrap(ctx, cmd, progress, &out, func() error {
		unmountUnder(work)
		return os.RemoveAll(root)
	})
	if err != nil {
		msg := fmt.Sprintf("image %s: debootstrap %s %s from %s failed (%v):\n%s", d.name, d.suite, strings.Join(d.packages, ","), mirror, err, out.Tail(15))
		if log, lerr := os.ReadFile(filepath.Join(root, "debootstrap", "debootstrap.log")); lerr == nil {
			msg += "\ndebootstrap.log ends:\n" + tail(log, 25)
		}
		return Made{}, fmt.Errorf("%s", msg)
	}
	fmt.Fprintf(progress, "%s: debootstrap took %s\n", d.name, time.Since(start).Round(time.Second))

	did, err := NormaliseRootfs(root, d.epoch)
	if err != nil {
		return Made{}, fmt.Errorf("image %s: normalise: %w", d.name, err)
	}
	for _, did1 := range did {
		fmt.Fprintln(progress, d.name+": normalise:", did1)
	}
	if err := writeFileMode(filepath.Join(root, "etc/maven/settings.xml"), []byte(MavenSettings), 0o644); err != nil {
		return Made{}, fmt.Errorf("image %s: settings.xml: %w", d.name, err)
	}
	if _, err := os.Stat(filepath.Join(root, d.javaHome, "bin/javac")); err != nil {
		return Made{}, fmt.Errorf("image %s: no javac in the rootfs: %w", d.name, err)
	}
	made, err := WriteImage(ctx, storeDir, d.name, root, ImageConfig{
		Env: []string{
			DefaultPath,
			"JAVA_HOME=" + d.javaHome,
			"LANG=C.UTF-8",
		},
		Cmd:       []string{"/bin/bash"},
		CreatedBy: "pyrsia-build image make " + d.name,
		Comment:   "Debian " + d.suite + " (debootstrap --variant=minbase) with " + strings.Join(d.packages, " "),
	}, d.epoch)
	made.Took = time.Since(start)
	return made, err
}

// NormaliseRootfs removes from a debootstrapped rootfs what differs
// between two debootstraps of the same packages, or tells of the machine
// that made it, and returns what it did:
//
//   - /var/cache/ldconfig/aux-cache (inode numbers and times);
//   - /etc/ssl/certs/java/cacerts (a keystore holding the time it was
//     made; builds are offline and need no CA certificates);
//   - the contents of /var/log (dpkg, alternatives and bootstrap logs, with
//     times), /var/cache/apt and /var/lib/apt/lists (mirror indexes);
//   - /var/cache/debconf/*-old and /var/lib/dpkg/*-old (backups);
//   - the contents of /dev (device nodes: container runtimes mount /dev);
//   - /etc/machine-id and /var/lib/dbus/machine-id, emptied if present;
//   - /etc/hostname and /etc/resolv.conf, copied from the machine by
//     debootstrap: "localhost" and empty (runtimes mount their own);
//   - /etc/apt/sources.list, which names the mirror: a comment instead;
//   - /etc/shadow and /etc/shadow-: the last-change date of every entry
//     set to epoch's day.
//
// Times of files do not matter: [WriteLayer] sets every mtime to the epoch.
func NormaliseRootfs(root string, epoch time.Time) ([]string, error) {
	var did []string
	in := func(p string) string { return filepath.Join(root, p) }
	remove := func(p string) error {
		if _, err := os.Lstat(in(p)); err != nil {
			return nil
		}
		did = append(did, "removed "+p)
		return os.RemoveAll(in(p))
	}
	emptyDir := func(p string) error {
		names, err := readDirNames(in(p))
		if os.IsNotExist(err) {
			return nil
		}
		if err != nil {
			return err
		}
		for _, n := range names {
			if err := os.RemoveAll(filepath.Join(in(p), n)); err != nil {
				return err
			}
		}
		if len(names) > 0 {
			did = append(did, fmt.Sprintf("emptied %s (%d entries)", p, len(names)))
		}
		return nil
	}
	write := func(p, data string, onlyIfExists bool) error {
		old, err := os.ReadFile(in(p))
		switch {
		case os.IsNotExist(err):
			if onlyIfExists {
				return nil
			}
		case err != nil:
			return err
		case string(old) == data:
			return nil
		}
		did = append(did, "rewrote "+p)
		os.Remove(in(p)) // it may be a symlink
		return writeFileMode(in(p), []byte(data), 0o644)
	}

	for _, p := range []string{"var/cache/ldconfig/aux-cache", "etc/ssl/certs/java/cacerts", "debootstrap"} {
		if err := remove(p); err != nil {
			return did, err
		}
	}
	for _, p := range []string{"var/log", "var/cache/apt", "var/lib/apt/lists", "dev"} {
		if err := emptyDir(p); err != nil {
			return did, err
		}
	}
	for _, g := range []string{"var/cache/debconf/*-old", "var/lib/dpkg/*-old"} {
		m, _ := filepath.Glob(in(g))
		sort.Strings(m)
		for _, p := range m {
			rel, _ := filepath.Rel(root, p)
			if err := remove(rel); err != nil {
				return did, err
			}
		}
	}
	for _, w := range []struct {
		path, data   string
		onlyIfExists bool
	}{
		{"etc/machine-id", "", true},
		{"var/lib/dbus/machine-id", "", true},
		{"etc/hostname", "localhost\n", false},
		{"etc/resolv.conf", "", false},
		{"etc/apt/sources.list", "# pyrsia-build builder image: builds run offline, there are no apt sources.\n", false},
	} {
		if err := write(w.path, w.data, w.onlyIfExists); err != nil {
			return did, err
		}
	}
	day := strconv.FormatInt(epoch.Unix()/86400, 10)
	for _, p := range []string{"etc/shadow", "etc/shadow-"} {
		changed, err := fixShadowDates(in(p), day)
		if err != nil {
			return did, err
		}
		if changed {
			did = append(did, fmt.Sprintf("set the last-change dates in %s to day %s", p, day))
		}
	}
	return did, nil
}

// fixShadowDates sets the third field of every line of a shadow file to day.
func fixShadowDates(path, day string) (bool, error) {
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Split(sc.Text(), ":")
		if len(f) >= 3 && f[2] != "" {
			f[2] = day
		}
		out.WriteString(strings.Join(f, ":"))
		out.WriteByte('\n')
	}
	if bytes.Equal(out.Bytes(), b) {
		return false, nil
	}
	fi, err := os.Stat(path)
	if err != nil {
		return false, err
	}
	return true, writeFileMode(path, out.Bytes(), fi.Mode().Perm())
}

// writeFileMode writes a file and sets its mode whatever the umask.
func writeFileMode(path string, data []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return err
	}
	return os.Chmod(path, mode)
}

// unmountUnder lazily unmounts every mount point under dir, deepest first
// (debootstrap mounts /proc and /sys in its target and leaves them when it
// fails).
func unmountUnder(dir string) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return
	}
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return
	}
	var points []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := unescapeMount(f[4])
		if strings.HasPrefix(mp, abs+"/") {
			points = append(points, mp)
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(points)))
	for _, p := range points {
		_ = syscall.Unmount(p, syscall.MNT_DETACH)
	}
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// debootstrapTries is how many times a debootstrap whose downloads failed
// runs: a mirror that drops connections under load fails a whole run
// ("Couldn't download packages"), and the .deb cache keeps what came, so
// another try fetches only the rest.
const debootstrapTries = 3

// debootstrapPause is the wait before the second try; the third waits
// twice as long.
var debootstrapPause = 5 * time.Second

// runDebootstrap runs cmd (a debootstrap) with its output to progress and
// out, and runs it again, after clean has removed the half-made rootfs,
// when it failed only on downloads; any other failure is returned at once.
func runDebootstrap(ctx context.Context, cmd *exec.Cmd, progress io.Writer, out *tailBuffer, clean func() error) error {
	for try := 1; ; try++ {
		out.b = out.b[:0]
		c := exec.CommandContext(ctx, cmd.Path, cmd.Args[1:]...)
		c.Env = cmd.Env
		c.Stdout = io.MultiWriter(progress, out)
		c.Stderr = c.Stdout
		err := c.Run()
		if err == nil || try == debootstrapTries || ctx.Err() != nil || !downloadFailed(out.b) {
			return err
		}
		fmt.Fprintf(progress, "debootstrap could not download some packages (try %d of %d): trying again in %s; what came is in the .deb cache\n", try, debootstrapTries, time.Duration(try)*debootstrapPause)
		if err := clean(); err != nil {
			return fmt.Errorf("removing the half-made rootfs before another try: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(try) * debootstrapPause):
		}
	}
}

// downloadFailed reports whether debootstrap's output says that its
// failure was a download.
func downloadFailed(out []byte) bool {
	return bytes.Contains(out, []byte("E: Couldn't download")) || bytes.Contains(out, []byte("E: Failed getting release file"))
}

// tailBuffer keeps the last 64 KiB written to it.
type tailBuffer struct{ b []byte }

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if over := len(t.b) - 64<<10; over > 0 {
		t.b = t.b[over:]
	}
	return len(p), nil
}

func (t *tailBuffer) Tail(n int) string { return tail(t.b, n) }
