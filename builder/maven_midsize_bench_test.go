package builder

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// midSizeCoordinate is the benchmark's library: commons-lang3, which
// publishes no -source-release.zip, so its source is put together from
// what it publishes: the -sources.jar (its main Java sources) as
// src/main/java and its pom as pom.xml.
const midSizeCoordinate = "org.apache.commons:commons-lang3:3.17.0"

// midSizeArgs skip what needs files the -sources.jar lacks (the license
// headers check, the API comparison with the previous release) or does
// not make the jar (tests, reports, SBOMs).
var midSizeArgs = []string{"-DskipTests", "-Drat.skip=true", "-Djapicmp.skip=true", "-Danimal.sniffer.skip=true",
	"-Djacoco.skip=true", "-Dcyclonedx.skip=true", "-Dspdx.skip=true", "-Dmaven.javadoc.skip=true", "-Dmoditect.skip=true"}

// BenchmarkMavenMidSize measures a mid-size library (commons-lang3 3.17.0:
// 249 source files, a 660 KB jar) end to end: resolve (lock), a locked
// build with the lock's files fetched from the repository (cold) and from
// the cache, and, as the baseline, a plain 'mvn -o package' of the same
// source and arguments on the host with a warm local repository holding
// the same files (the host's Maven and JDK: Debian's, as in the maven
// image). Needs root, buildkitd and runc on PATH, PYRSIA_IMAGES with the
// maven image, mvn, and the Maven repository of the machine's Maven
// configuration. Run it with -benchtime 1x: each step once.
func BenchmarkMavenMidSize(b *testing.B) {
	images := os.Getenv("PYRSIA_IMAGES")
	if os.Getuid() != 0 || images == "" {
		b.Skip("needs root and PYRSIA_IMAGES (an image store with the maven image)")
	}
	for _, bin := range []string{"buildkitd", "runc", "mvn"} {
		if _, err := exec.LookPath(bin); err != nil {
			b.Skip(bin + " is not on PATH")
		}
	}
	ctx := context.Background()
	work := b.TempDir()
	tarPath := filepath.Join(work, "commons-lang3-src.tar")
	epoch, err := midSizeSource(ctx, tarPath)
	if err != nil {
		b.Fatal(err)
	}
	tarData, err := os.ReadFile(tarPath)
	if err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256(tarData)
	img, err := os.ReadFile(filepath.Join(images, "maven", "index.json"))
	if err != nil {
		b.Fatal(err)
	}
	digest := regexp.MustCompile(`sha256:[0-9a-f]{64}`).Find(img)
	specText := fmt.Sprintf(`version: 1
ecosystem: maven
coordinate: %s
source:
  archive: {path: commons-lang3-src.tar, sha256: %s}
recipe:
  maven:
    goals: [package]
    args: [%s]
    jdk: 17
builderImage: {name: maven, digest: "%s"}
sourceDateEpoch: %d
`, midSizeCoordinate, hex.EncodeToString(sum[:]), strings.Join(midSizeArgs, ", "), digest, epoch)
	s, err := ParseSpec([]byte(specText))
	if err != nil {
		b.Fatal(err)
	}

	d, err := StartDaemon(ctx, DaemonOptions{Dir: filepath.Join(work, "buildkitd")})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Stop()
	bk, err := NewBuildKit(ctx, d.Addr)
	if err != nil {
		b.Fatal(err)
	}
	defer bk.Close()
	bk.ProgressMode = "quiet"
	cache := filepath.Join(work, "cache")
	load := func(b *testing.B) {
		if l, err := os.ReadFile("/proc/loadavg"); err == nil {
			b.Logf("load average before: %s", bytes.TrimSpace(l))
		}
	}

	// The lock is needed by every other step: resolve runs even when -bench
	// does not select it (then untimed).
	var locked *Spec
	resolve := func(b *testing.B) {
		lock, err := bk.Resolve(ctx, s, ResolveOptions{SpecDir: work, Images: images, Cache: cache})
		if err != nil {
			b.Fatal(err)
		}
		data, err := lock.Marshal()
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(work, "maven.lock.json"), data, 0o644); err != nil {
			b.Fatal(err)
		}
		ls := sha256.Sum256(data)
		withLock, err := SetSpecLock([]byte(specText), LockRef{Path: "maven.lock.json", SHA256: hex.EncodeToString(ls[:])})
		if err != nil {
			b.Fatal(err)
		}
		if locked, err = ParseSpec(withLock); err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(len(lock.Files)), "files")
	}
	b.Run("resolve", func(b *testing.B) {
		load(b)
		for i := 0; i < b.N; i++ {
			resolve(b)
		}
	})
	if locked == nil {
		resolve(b)
	}
	// buildOnce builds once and returns its wall and CPU seconds (this
	// process, buildkitd and everything it ran, the container included).
	buildOnce := func(b *testing.B, cache string) (wall, cpu float64) {
		out := filepath.Join(b.TempDir(), "out")
		c0, t0 := daemonCPU(b, d), time.Now()
		if _, err := bk.Build(ctx, locked, BuildOptions{OutDir: out, SpecDir: work, Images: images, MavenCache: cache}); err != nil {
			b.Fatal(err)
		}
		wall, cpu = time.Since(t0).Seconds(), daemonCPU(b, d)-c0
		logPhases(b, filepath.Join(out, "build.log"))
		b.Logf("wall %.2f s, cpu %.2f s", wall, cpu)
		return wall, cpu
	}
	build := func(b *testing.B, cache string) {
		load(b)
		var cpu float64
		for i := 0; i < b.N; i++ {
			_, c := buildOnce(b, cache)
			cpu += c
		}
		b.ReportMetric(cpu/float64(b.N), "cpu-s/op")
	}
	b.Run("locked-build-cold", func(b *testing.B) { build(b, "-") })
	b.Run("locked-build-cached", func(b *testing.B) { build(b, cache) })

	// The baseline: the same source, arguments and files on the host.
	src, repo := filepath.Join(work, "host-src"), filepath.Join(work, "host-m2")
	os.MkdirAll(src, 0o755)
	f, err := os.Open(tarPath)
	if err != nil {
		b.Fatal(err)
	}
	err = unpack(f, int64(len(tarData)), src)
	f.Close()
	if err != nil {
		b.Fatal(err)
	}
	l, err := loadLock(locked.Recipe.Maven.Lock, work)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := lockRepo(ctx, l, nil, cache, repo, io.Discard); err != nil {
		b.Fatal(err)
	}
	hostOnce := func(b *testing.B) (wall, cpu float64) {
		os.RemoveAll(filepath.Join(src, "target"))
		args := append([]string{"-o", "-B", "-q", "-Dmaven.repo.local=" + repo,
			"-Dproject.build.outputTimestamp=" + time.Unix(epoch, 0).UTC().Format(time.RFC3339)}, midSizeArgs...)
		cmd := exec.Command("mvn", append(args, "package")...)
		cmd.Dir = src
		t0 := time.Now()
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("mvn: %v\n%s", err, out)
		}
		wall = time.Since(t0).Seconds()
		cpu = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
		b.Logf("wall %.2f s, cpu %.2f s", wall, cpu)
		return wall, cpu
	}
	b.Run("host-mvn-warm", func(b *testing.B) {
		load(b)
		var cpu float64
		for i := 0; i < b.N; i++ {
			_, c := hostOnce(b)
			cpu += c
		}
		b.ReportMetric(cpu/float64(b.N), "cpu-s/op")
	})

	// Rounds of a cached build whose repository is sent afresh (as before
	// BuildKit kept it), one whose repository BuildKit kept from the
	// last build of the lock, and the host's mvn, one after the other:
	// their ratios under the same load. -benchtime Nx runs N rounds.
	b.Run("interleaved", func(b *testing.B) {
		load(b)
		buildOnce(b, cache) // BuildKit keeps the repository from here on
		var fresh, kept, host [2][]float64
		add := func(to *[2][]float64, wall, cpu float64) {
			to[0], to[1] = append(to[0], wall), append(to[1], cpu)
		}
		for i := 0; i < b.N; i++ {
			load(b)
			keepLockRepos = false
			w, c := buildOnce(b, cache)
			keepLockRepos = true
			add(&fresh, w, c)
			w, c = buildOnce(b, cache)
			add(&kept, w, c)
			w, c = hostOnce(b)
			add(&host, w, c)
			b.Logf("round %d: fresh %.2f s (%.2f cpu-s), kept %.2f s (%.2f cpu-s), host %.2f s (%.2f cpu-s): kept/host %.3f, fresh/host %.3f",
				i+1, fresh[0][i], fresh[1][i], kept[0][i], kept[1][i], host[0][i], host[1][i], kept[0][i]/host[0][i], fresh[0][i]/host[0][i])
		}
		for _, m := range []struct {
			name string
			v    [2][]float64
		}{{"fresh", fresh}, {"kept", kept}, {"host", host}} {
			b.ReportMetric(median(m.v[0]), m.name+"-s")
			b.ReportMetric(median(m.v[1]), m.name+"-cpu-s")
		}
	})
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// daemonCPU is the CPU seconds of this process and of d's buildkitd with
// its waited-for children (runc, and the containers runc waited for).
func daemonCPU(b *testing.B, d *Daemon) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", d.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	// The fields after the command's closing parenthesis: utime is the
	// 14th field of the line, cstime the 17th.
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	var ticks float64
	for _, x := range f[11:15] {
		var n float64
		fmt.Sscan(x, &n)
		ticks += n
	}
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	self := time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	return ticks/100 + self // USER_HZ is 100 on Linux
}

// logPhases logs where a build spent its time: the build's own phases
// and BuildKit's steps (their names and how long each took).
func logPhases(b *testing.B, logPath string) {
	data, err := os.ReadFile(logPath)
	if err != nil {
		b.Fatal(err)
	}
	step := regexp.MustCompile(`^#[0-9]+ (DONE|transferring|exporting|copying)`)
	first := regexp.MustCompile(`^#([0-9]+) `)
	named := map[string]bool{}
	var lines []string
	for _, l := range strings.Split(string(data), "\n") {
		m := first.FindStringSubmatch(l)
		if strings.HasPrefix(l, "pyrsia-build: phase ") || step.MatchString(l) || m != nil && !named[m[1]] {
			if m != nil {
				named[m[1]] = true
			}
			if len(l) > 120 {
				l = l[:120]
			}
			lines = append(lines, l)
		}
	}
	b.Logf("phases:\n%s", strings.Join(lines, "\n"))
}

// midSizeSource writes the benchmark library's source as a reproducible
// tar (src/main/java from the -sources.jar, pom.xml from the pom) and
// returns the pom's project.build.outputTimestamp as seconds.
func midSizeSource(ctx context.Context, tarPath string) (int64, error) {
	repo, _, err := mavenRepoOpts{cache: "-"}.resolve()
	if err != nil {
		return 0, err
	}
	c := repo.client()
	g, a, v := splitCoordinate(midSizeCoordinate)
	dir := strings.ReplaceAll(g, ".", "/") + "/" + a + "/" + v + "/"
	var pom, jar bytes.Buffer
	if _, _, err := c.get(ctx, dir+a+"-"+v+".pom", &pom); err != nil {
		return 0, err
	}
	if _, _, err := c.get(ctx, dir+a+"-"+v+"-sources.jar", &jar); err != nil {
		return 0, err
	}
	m := regexp.MustCompile(`<project.build.outputTimestamp>([^<]+)<`).FindSubmatch(pom.Bytes())
	if m == nil {
		return 0, fmt.Errorf("%s's pom has no project.build.outputTimestamp", midSizeCoordinate)
	}
	ts, err := time.Parse(time.RFC3339, string(m[1]))
	if err != nil {
		return 0, err
	}
	zr, err := zip.NewReader(bytes.NewReader(jar.Bytes()), int64(jar.Len()))
	if err != nil {
		return 0, err
	}
	files := map[string][]byte{"pom.xml": pom.Bytes()}
	for _, f := range zr.File {
		if f.FileInfo().IsDir() || strings.HasPrefix(f.Name, "META-INF/") {
			continue
		}
		r, err := f.Open()
		if err != nil {
			return 0, err
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			return 0, err
		}
		files["src/main/java/"+f.Name] = b
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	out, err := os.Create(tarPath)
	if err != nil {
		return 0, err
	}
	tw := tar.NewWriter(out)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}); err != nil {
			return 0, err
		}
		tw.Write(files[n])
	}
	if err := tw.Close(); err != nil {
		return 0, err
	}
	return ts.Unix(), out.Close()
}
