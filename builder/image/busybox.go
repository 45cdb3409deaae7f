package image

import (
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// BusyboxApplets are the commands the busybox image has in /bin, each a
// symlink to /bin/busybox.
var BusyboxApplets = []string{
	"cat", "chmod", "cp", "date", "echo", "env", "false", "find", "grep",
	"gzip", "head", "id", "ls", "mkdir", "mv", "printf", "rm", "sed", "sh",
	"sha256sum", "sleep", "tail", "tar", "test", "true", "uname", "wc",
}

// MakeBusybox makes the image "busybox" in storeDir: Debian's
// busybox-static, fetched with 'apt-get download' (so it needs the apt
// lists: 'apt-get update') and unpacked with 'dpkg-deb -x', so that nothing
// else on the machine goes in. The rootfs holds /bin/busybox, the
// [BusyboxApplets] as symlinks, /etc/passwd and /etc/group with root,
// /tmp (1777), /root (0700), empty /proc, /sys and /dev, and the package's
// copyright file. The epoch (every mtime and the config's created time) is
// the date of the package's latest changelog entry (the binNMU entry when
// there is one), as dpkg-buildpackage sets SOURCE_DATE_EPOCH: the same
// package version gives the same digest on any machine.
func MakeBusybox(ctx context.Context, storeDir string, progress io.Writer) (Made, error) {
	start := time.Now()
	if progress == nil {
		progress = io.Discard
	}
	for _, tool := range []string{"apt-get", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			return Made{}, fmt.Errorf("image busybox: %s not found: the busybox image is made from Debian's busybox-static package and needs apt and dpkg (a Debian or Ubuntu machine)", tool)
		}
	}
	tmp, err := os.MkdirTemp("", "pyrsia-busybox-")
	if err != nil {
		return Made{}, err
	}
	defer os.RemoveAll(tmp)
	dl := filepath.Join(tmp, "deb")
	if err := os.Mkdir(dl, 0o755); err != nil {
		return Made{}, err
	}
	args := []string{"download", "busybox-static"}
	if os.Geteuid() == 0 {
		// As root apt drops to the user _apt to download, who cannot
		// write into our temporary folder.
		args = append([]string{"-o", "APT::Sandbox::User=root"}, args...)
	}
	fmt.Fprintln(progress, "busybox: apt-get", strings.Join(args, " "))
	if out, err := runIn(ctx, dl, nil, "apt-get", args...); err != nil {
		return Made{}, fmt.Errorf("image busybox: apt-get download busybox-static: %v\n%s\n(are the apt lists there? run 'apt-get update')", err, tail(out, 10))
	}
	debs, _ := filepath.Glob(filepath.Join(dl, "*.deb"))
	if len(debs) != 1 {
		return Made{}, fmt.Errorf("image busybox: apt-get download busybox-static left %d .deb files, want 1", len(debs))
	}
	version, err := runIn(ctx, tmp, nil, "dpkg-deb", "-f", debs[0], "Version")
	if err != nil {
		return Made{}, fmt.Errorf("image busybox: dpkg-deb -f: %v: %s", err, tail(version, 5))
	}
	ver := strings.TrimSpace(string(version))
	x := filepath.Join(tmp, "x")
	if out, err := runIn(ctx, tmp, nil, "dpkg-deb", "-x", debs[0], x); err != nil {
		return Made{}, fmt.Errorf("image busybox: dpkg-deb -x: %v: %s", err, tail(out, 5))
	}
	fmt.Fprintln(progress, "busybox: busybox-static", ver)
	doc := filepath.Join(x, "usr/share/doc/busybox-static")
	epoch, err := changelogDate(doc, "amd64")
	if err != nil {
		return Made{}, fmt.Errorf("image busybox: %w", err)
	}
	bin := filepath.Join(x, "bin/busybox")
	list, err := runIn(ctx, tmp, nil, bin, "--list")
	if err != nil {
		return Made{}, fmt.Errorf("image busybox: %s --list: %v", bin, err)
	}
	have := map[string]bool{}
	for _, a := range strings.Fields(string(list)) {
		have[a] = true
	}
	for _, a := range BusyboxApplets {
		if !have[a] {
			return Made{}, fmt.Errorf("image busybox: busybox-static %s has no applet %q", ver, a)
		}
	}

	root := filepath.Join(tmp, "rootfs")
	dirs := []struct {
		path string
		mode os.FileMode
	}{
		{"", 0o755}, {"bin", 0o755}, {"dev", 0o755}, {"etc", 0o755}, {"proc", 0o555},
		{"root", 0o700}, {"sys", 0o555}, {"tmp", 0o777 | os.ModeSticky},
		{"usr", 0o755}, {"usr/share", 0o755}, {"usr/share/doc", 0o755}, {"usr/share/doc/busybox-static", 0o755},
	}
	for _, d := range dirs {
		p := filepath.Join(root, d.path)
		if err := os.Mkdir(p, 0o700); err != nil {
			return Made{}, err
		}
		defer os.Chmod(p, 0o755) // so that RemoveAll can clear it
	}
	files := []struct {
		path string
		from string
		data string
		mode os.FileMode
	}{
		{path: "bin/busybox", from: bin, mode: 0o755},
		{path: "etc/passwd", data: "root:x:0:0:root:/root:/bin/sh\n", mode: 0o644},
		{path: "etc/group", data: "root:x:0:\n", mode: 0o644},
		{path: "usr/share/doc/busybox-static/copyright", from: filepath.Join(doc, "copyright"), mode: 0o644},
	}
	for _, f := range files {
		data := []byte(f.data)
		if f.from != "" {
			if data, err = os.ReadFile(f.from); err != nil {
				return Made{}, err
			}
		}
		p := filepath.Join(root, f.path)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			return Made{}, err
		}
		if err := os.Chmod(p, f.mode); err != nil {
			return Made{}, err
		}
	}
	for _, a := range BusyboxApplets {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			return Made{}, err
		}
	}
	// Modes last: chmod is not subject to the umask, Mkdir is.
	for _, d := range dirs {
		if err := os.Chmod(filepath.Join(root, d.path), d.mode); err != nil {
			return Made{}, err
		}
	}
	made, err := WriteImage(ctx, storeDir, "busybox", root, ImageConfig{
		Cmd:       []string{"/bin/sh"},
		CreatedBy: "pyrsia-build image make busybox",
		Comment:   "Debian busybox-static " + ver,
	}, epoch)
	made.Took = time.Since(start)
	return made, err
}

// changelogDate is the date of the latest entry of the Debian changelog in
// the doc folder: changelog.Debian.<arch>.gz (a binNMU's) if there is one,
// else changelog.Debian.gz.
func changelogDate(doc, arch string) (time.Time, error) {
	var f *os.File
	var err error
	for _, n := range []string{"changelog.Debian." + arch + ".gz", "changelog.Debian.gz"} {
		if f, err = os.Open(filepath.Join(doc, n)); err == nil {
			break
		}
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("no Debian changelog in %s: %w", doc, err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s: %w", f.Name(), err)
	}
	sc := bufio.NewScanner(zr)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, " -- ") {
			continue
		}
		i := strings.Index(line, ">  ")
		if i < 0 {
			break
		}
		t, err := time.Parse(time.RFC1123Z, strings.TrimSpace(line[i+3:]))
		if err != nil {
			return time.Time{}, fmt.Errorf("%s: trailer date: %w", f.Name(), err)
		}
		return t.UTC(), nil
	}
	return time.Time{}, fmt.Errorf("%s: no trailer line with a date", f.Name())
}

// runIn runs a command in dir with the extra environment env and returns
// its combined output.
func runIn(ctx context.Context, dir string, env []string, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil && ctx.Err() != nil {
		err = errors.Join(err, ctx.Err())
	}
	return out, err
}

// tail is the last n lines of out.
func tail(out []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
