package builder

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/containerd/containerd/v2/core/content"
	"github.com/containerd/platforms"
	"github.com/moby/buildkit/client"
	"github.com/moby/buildkit/client/llb"
	"github.com/tonistiigi/fsutil"
)

// mavenScript runs the build offline and collects what to publish: the
// recipe's artifact patterns, or else each module's jar(s) with the
// module's pom named after its jar. With PYRSIA_M2 set, the local
// repository is that folder (the lock's files) instead of the image's, and
// with PYRSIA_MIRROR set too (the resolve phase) Maven is online with that
// mirror as its only repository, and nothing is collected. With
// PYRSIA_M2_SUMS set, the repository is checked against it first (see
// mavenRepoCheck).
const mavenScript = `set -eu
` + mavenRepoCheck + `umask "${PYRSIA_UMASK:-022}"
if [ -n "${PYRSIA_JDK:-}" ]; then
  JAVA_HOME=/usr/lib/jvm/java-$PYRSIA_JDK-openjdk-$PYRSIA_ARCH
  if [ ! -x "$JAVA_HOME/bin/javac" ]; then
    echo "pyrsia-build: the builder image has no JDK $PYRSIA_JDK (no $JAVA_HOME/bin/javac): use a builder image with JDK $PYRSIA_JDK, or change recipe.maven.jdk" >&2
    exit 1
  fi
  export JAVA_HOME
  PATH=$JAVA_HOME/bin:$PATH
fi
mode=-o
if [ -n "${PYRSIA_M2:-}" ]; then
  offline=true mirrors=
  if [ -n "${PYRSIA_MIRROR:-}" ]; then
    mode= offline=false
    mirrors="<mirror><id>pyrsia-resolve</id><mirrorOf>*</mirrorOf><url>$PYRSIA_MIRROR</url></mirror>"
  fi
  printf '<settings><localRepository>%s</localRepository><interactiveMode>false</interactiveMode><offline>%s</offline><mirrors>%s</mirrors></settings>\n' \
    "$PYRSIA_M2" "$offline" "$mirrors" > /tmp/pyrsia-settings.xml
  set -- -gs /tmp/pyrsia-settings.xml -s /tmp/pyrsia-settings.xml "$@"
fi
mvn $mode -B -Dproject.build.outputTimestamp="$PYRSIA_OUTPUT_TIMESTAMP" "$@"
[ -z "${PYRSIA_MIRROR:-}" ] || exit 0
mkdir -p /out
if [ -n "${PYRSIA_ARTIFACTS:-}" ]; then
  # The recipe names the files to publish (globs from the source root).
  for pattern in $PYRSIA_ARTIFACTS; do
    found=0
    for f in $pattern; do [ -f "$f" ] && [ ! -L "$f" ] && cp "$f" /out/ && found=1; done
    [ "$found" = 1 ] || { echo "no file matches the recipe's artifact pattern $pattern" >&2; exit 1; }
  done
  exit 0
fi
for jar in $(find . -path '*/target/*.jar' ! -path '*/target/*/*' | sort); do
  module=$(dirname "$(dirname "$jar")")
  # Only a module's own target/: not a jar among test resources.
  [ -f "$module/pom.xml" ] || continue
  cp "$jar" /out/
  case "$jar" in *-sources.jar|*-javadoc.jar|*-tests.jar) continue ;; esac
  cp "$module/pom.xml" "/out/$(basename "$jar" .jar).pom"
done
`

// javaLineSeparatorOpt is the JDK_JAVA_OPTIONS that gives every JVM of
// the build (Maven's, and any it forks) the line separator sep.
func javaLineSeparatorOpt(sep string) string {
	return `-Dline.separator="` + sep + `"`
}

// mavenRepoDir is where the lock's files are in the build container.
const mavenRepoDir = "/pyrsia-m2"

// mavenRun says how solveMaven runs Maven beyond the recipe.
type mavenRun struct {
	// mirror, when set, is the resolve phase: Maven online with this URL
	// as its only repository, a fresh local repository, the host's
	// network, nothing exported.
	mirror string
	// repo, when set, holds the lock's files: the build's local
	// repository (offline, network off).
	repo fsutil.FS
	// repoKey, when set, is the key BuildKit keeps the repository under
	// between builds (see repoKeep), and repoSums the list of its files
	// and their sha256 that the container checks the kept copy against
	// before Maven runs. Without it, the repository is synced afresh.
	repoKey  string
	repoSums []byte
}

// mavenKeptDir is where a kept copy of the lock's files is mounted
// (read-only) for mavenRepoCheck.
const mavenKeptDir = "/pyrsia-m2-kept"

// mavenSumsDir is where the container finds the list of the lock's files
// and their sha256 (a file "sha256" there).
const mavenSumsDir = "/pyrsia-lock"

func (b *BuildKit) solveMaven(ctx context.Context, spec *Spec, iso isolation, srcDir string, store content.Store, out string, mo mavenRun, ch chan *client.SolveStatus) error {
	// client.Solve closes ch; an error before it is called must close ch
	// too, or the progress displays would wait for it forever.
	solving := false
	defer func() {
		if !solving {
			close(ch)
		}
	}()
	r := spec.Recipe.Maven
	p, err := platforms.Parse(spec.Platform)
	if err != nil {
		return fmt.Errorf("platform %q: %w", spec.Platform, err)
	}
	platform := llb.Platform(p)
	// The reference names the image for the solver; the store ID finds it.
	img := llb.OCILayout("pyrsia/"+spec.BuilderImage.Name+"@"+spec.BuilderImage.Digest, llb.OCIStore("", builderImageStore), platform)
	// The source is synced under a key of this build's own (see
	// isolation); the lock's repository under its lock's key, if kept.
	src := llb.Local("source", llb.SharedKeyHint("source-"+iso.ns))
	args := []string{"/bin/sh", "-c", mavenScript, "mvn"}
	if len(r.Modules) > 0 {
		args = append(args, "-pl", strings.Join(r.Modules, ","), "-am")
	}
	args = append(args, r.Args...)
	args = append(args, r.Goals...)
	epoch := time.Unix(spec.SourceDateEpoch, 0).UTC().Format(time.RFC3339)
	name := "mvn -o " + strings.Join(args[4:], " ")
	network := llb.NetModeNone
	if mo.mirror != "" {
		name = "resolve: mvn " + strings.Join(args[4:], " ")
		network = llb.NetModeHost
	}
	runOpts := []llb.RunOption{llb.Args(args), llb.Dir("/src"), llb.Network(network),
		llb.AddEnv("PYRSIA_OUTPUT_TIMESTAMP", epoch),
		llb.AddEnv("SOURCE_DATE_EPOCH", epochString(spec)),
		llb.AddEnv("TZ", "UTC"), llb.AddEnv("LC_ALL", "C.UTF-8"),
		llb.AddEnv("PYRSIA_ARTIFACTS", strings.Join(r.Artifacts, " ")),
		llb.WithCustomName(name),
		llb.IgnoreCache} // see isolation
	if r.JDK != 0 {
		runOpts = append(runOpts, llb.AddEnv("PYRSIA_JDK", fmt.Sprint(r.JDK)), llb.AddEnv("PYRSIA_ARCH", p.Architecture))
	}
	if r.Umask != "" {
		runOpts = append(runOpts, llb.AddEnv("PYRSIA_UMASK", r.Umask))
	}
	if sep := newlines[r.Newline]; sep != "" {
		// MAVEN_OPTS is split at white space by bin/mvn, so a CR LF
		// cannot pass through it; the java launcher reads
		// JDK_JAVA_OPTIONS itself, quotes included (JDK 9 and later).
		runOpts = append(runOpts, llb.AddEnv("JDK_JAVA_OPTIONS", javaLineSeparatorOpt(sep)))
	}
	base := img.File(llb.Copy(src, "/", "/src", &llb.CopyInfo{CopyDirContentsOnly: true, CreateDestPath: true}), llb.IgnoreCache)
	mounts := map[string]fsutil.FS{}
	var entitlements []string
	switch {
	case mo.mirror != "":
		runOpts = append(runOpts, llb.AddEnv("PYRSIA_M2", "/tmp/pyrsia-resolve-m2"), llb.AddEnv("PYRSIA_MIRROR", mo.mirror))
		entitlements = append(entitlements, "network.host")
	case mo.repo != nil:
		mounts["mavenrepo"] = mo.repo
		if mo.repoKey != "" {
			// Kept by BuildKit between builds of the lock: mounted
			// read-only and checked (see mavenRepoCheck). The list comes
			// with the definition, not with the kept copy.
			repo := llb.Local("mavenrepo", llb.SharedKeyHint(mo.repoKey))
			sums := llb.Scratch().File(llb.Mkfile("/sha256", 0o444, mo.repoSums), llb.WithCustomName("the lock's files and their sha256"))
			runOpts = append(runOpts,
				llb.AddMount(mavenKeptDir, repo, llb.Readonly), llb.AddEnv("PYRSIA_M2_KEPT", mavenKeptDir),
				llb.AddMount(mavenSumsDir, sums, llb.Readonly), llb.AddEnv("PYRSIA_M2_SUMS", mavenSumsDir+"/sha256"),
				llb.AddMount(mavenRepoDir, llb.Scratch(), llb.Tmpfs()), llb.AddEnv("PYRSIA_M2", mavenRepoDir))
			break
		}
		repo := llb.Local("mavenrepo", llb.SharedKeyHint("mavenrepo-"+iso.ns))
		// Mounted, not copied into a layer: what Maven writes to its
		// local repository lands in the mount's own writable layer, which
		// is dropped with the mount; the exported /out is in the root.
		runOpts = append(runOpts, llb.AddMount(mavenRepoDir, repo), llb.AddEnv("PYRSIA_M2", mavenRepoDir))
	}
	run := base.Run(runOpts...)
	var def *llb.Definition
	if mo.mirror != "" {
		// Nothing to export, but the run must be solved.
		def, err = run.Root().Marshal(ctx, platform)
	} else {
		def, err = llb.Scratch().File(llb.Copy(run.Root(), "/out/", "/", &llb.CopyInfo{CopyDirContentsOnly: true}), llb.IgnoreCache).Marshal(ctx, platform)
	}
	if err != nil {
		return err
	}
	srcFS, err := fsutil.NewFS(srcDir)
	if err != nil {
		return err
	}
	mounts["source"] = srcFS
	var exports []client.ExportEntry
	if out != "" {
		exports = []client.ExportEntry{{Type: client.ExporterLocal, OutputDir: out}}
	}
	solving = true
	_, err = b.c.Solve(ctx, def, client.SolveOpt{
		SharedKey:           "pyrsia",
		LocalMounts:         mounts,
		OCIStores:           map[string]content.Store{builderImageStore: store},
		SourcePolicy:        sourcePolicy(spec.BuilderImage.Digest),
		Exports:             exports,
		AllowedEntitlements: entitlements,
	}, ch)
	return err
}
