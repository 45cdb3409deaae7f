package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	clog "github.com/containerd/log"
	"github.com/pyrsia/pyrsia-build/builder"
	"github.com/urfave/cli/v2"
)

// defaultLockName is the lock file of a spec that names none.
const defaultLockName = "maven.lock.json"

func lockCommand() *cli.Command {
	return &cli.Command{
		Name:      "lock",
		Usage:     "resolve a Maven spec's plugins and dependencies into its dependency lock",
		UsageText: "pyrsia-build lock [--images DIR] [--buildkit-addr ADDR] SPEC",
		Description: `Runs the spec's Maven recipe once in its builder image, with a fresh local
repository and, as Maven's only repository, a mirror this command serves on
127.0.0.1 that forwards to the Maven repository of this machine's Maven
configuration (settings.xml mirrors, else Maven's central; or
$PYRSIA_MAVEN_REPOSITORY). Every artifact file Maven fetched (plugins,
extensions, dependencies, poms, parents) is written with its sha256 to the
lock file (recipe.maven.lock.path, else maven.lock.json beside the spec), and
the spec's recipe.maven.lock is set to the lock's path and sha256, so the lock
is part of the input digest. Review the change as you would a go.sum.

Builds of a locked spec run offline against exactly the lock's files, each
fetched and checked by the building node.

Examples:
   pyrsia-build lock --images ~/.cache/pyrsia-build/images testdata/maven-shared-utils/spec.yaml`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "images", Value: "images", Usage: "builder image store `DIR` (OCI layouts by name)"},
			&cli.StringFlag{Name: "buildkit-addr", EnvVars: []string{"BUILDKIT_HOST"}, Usage: "use the buildkitd at `ADDR` (it must allow the network.host entitlement) instead of starting one"},
			&cli.StringFlag{Name: "data-dir", Value: defaultDataDir(), Usage: "`DIR` for the private buildkitd's state"},
			&cli.StringFlag{Name: "progress", Value: "auto", Usage: "progress display: auto, plain, tty or quiet"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return inputErr(fmt.Errorf("lock takes one SPEC, got %d arguments", c.NArg()), "run 'pyrsia-build lock --help' for usage")
			}
			clog.SetLevel("error")
			specPath := c.Args().First()
			if err := checkFile(specPath, "build spec", maxSpecFileSize); err != nil {
				return err
			}
			data, err := os.ReadFile(specPath)
			if err != nil {
				return inputErr(err)
			}
			spec, err := builder.ParseSpec(data)
			if err != nil {
				return inputErr(fmt.Errorf("%s: %w", specPath, err), "build spec v1 is described in the README (\"Build spec\")")
			}
			if spec.Ecosystem != "maven" {
				return inputErr(fmt.Errorf("%s: ecosystem %s has no dependency lock", specPath, spec.Ecosystem), "lock is for maven specs")
			}
			lockRel := defaultLockName
			if l := spec.Recipe.Maven.Lock; l != nil {
				lockRel = l.Path
			}
			lockPath := filepath.Join(filepath.Dir(specPath), filepath.FromSlash(lockRel))
			bk, stop, err := connectBuildKit(c)
			if err != nil {
				return err
			}
			defer stop()
			lock, err := bk.Resolve(c.Context, spec, builder.ResolveOptions{
				SpecDir: filepath.Dir(specPath), Images: c.String("images"), Progress: c.App.ErrWriter,
			})
			var be *builder.BuildError
			if errors.As(err, &be) {
				return &cmdError{code: exitNotVerified, err: err, hints: []string{"the recipe failed while resolving: fix the source or the spec; the whole log is in " + be.LogPath}}
			}
			if err != nil {
				return inputErr(err)
			}
			out, err := lock.Marshal()
			if err != nil {
				return err
			}
			old, _ := os.ReadFile(lockPath)
			if err := writeFileAtomic(lockPath, out, 0o644); err != nil {
				return err
			}
			sum := sha256.Sum256(out)
			ref := builder.LockRef{Path: lockRel, SHA256: hex.EncodeToString(sum[:])}
			newSpec, err := builder.SetSpecLock(data, ref)
			if err != nil {
				return inputErr(fmt.Errorf("%s: %w", specPath, err))
			}
			if string(newSpec) != string(data) {
				if err := writeFileAtomic(specPath, newSpec, 0o644); err != nil {
					return err
				}
			}
			change := "unchanged"
			if string(old) != string(out) {
				change = "written"
			}
			fmt.Fprintf(c.App.Writer, "%s: %d files, %s; sha256 %s\n", lockPath, len(lock.Files), change, ref.SHA256)
			return nil
		},
	}
}

// connectBuildKit connects to --buildkit-addr or starts a private
// buildkitd under --data-dir; stop closes and stops what it started.
func connectBuildKit(c *cli.Context) (*builder.BuildKit, func(), error) {
	addr := c.String("buildkit-addr")
	var d *builder.Daemon
	if addr == "" {
		fmt.Fprintf(c.App.ErrWriter, "starting a private buildkitd in %s\n", filepath.Join(c.String("data-dir"), "buildkitd"))
		var err error
		d, err = builder.StartDaemon(c.Context, builder.DaemonOptions{Dir: filepath.Join(c.String("data-dir"), "buildkitd")})
		if errors.Is(err, builder.ErrNoBuildkitd) {
			return nil, nil, inputErr(err, "or point --buildkit-addr at a running buildkitd")
		}
		if err != nil {
			return nil, nil, err
		}
		addr = d.Addr
	}
	bk, err := builder.NewBuildKit(c.Context, addr)
	if err != nil {
		if d != nil {
			d.Stop()
		}
		return nil, nil, err
	}
	bk.ProgressMode = c.String("progress")
	return bk, func() {
		bk.Close()
		if d != nil {
			d.Stop()
		}
	}, nil
}

func compareCommand() *cli.Command {
	return &cli.Command{
		Name:      "compare",
		Usage:     "compare a Maven build with the official release",
		UsageText: "pyrsia-build compare --upstream [--coordinate G:A:V] OUT",
		Description: `With --upstream, fetches the official jar(s) and pom of the build's coordinate
from the Maven repository of this machine's Maven configuration (or
$PYRSIA_MAVEN_REPOSITORY) and compares them with the build output folder OUT:
"matches the official release", or the files inside each jar that differ, with
a unified diff for text (as 'pyrsia-build diff' shows). The coordinate is read
from OUT/result.json unless --coordinate gives it. Artifacts the repository
does not publish (a -tests.jar) are listed and not compared. With --json the
result is printed as JSON. Exit 0 when every compared file matches, 1 when
one differs.

Examples:
   pyrsia-build compare --upstream out/maven-shared-utils`,
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "upstream", Usage: "compare with the official release in the Maven repository"},
			&cli.StringFlag{Name: "coordinate", Usage: "`G:A:V` of the release (default: from OUT/result.json)"},
			&cli.BoolFlag{Name: "json", Usage: "print the comparison as JSON"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return inputErr(fmt.Errorf("compare takes one output folder, got %d arguments", c.NArg()), "run 'pyrsia-build compare --help' for usage")
			}
			if !c.Bool("upstream") {
				return inputErr(errors.New("compare needs --upstream (the only comparison so far); to compare two builds use 'pyrsia-build diff'"))
			}
			out := c.Args().First()
			coord := c.String("coordinate")
			if coord == "" {
				var err error
				if coord, err = resultCoordinate(out); err != nil {
					return inputErr(err, "give the release with --coordinate groupId:artifactId:version")
				}
			}
			res, err := builder.CompareUpstream(c.Context, out, coord, "")
			if err != nil {
				return inputErr(err)
			}
			if c.Bool("json") {
				b, _ := json.MarshalIndent(res, "", "  ")
				fmt.Fprintln(c.App.Writer, string(b))
			} else {
				res.Diff.Print(c.App.Writer)
				for _, n := range res.Unpublished {
					fmt.Fprintf(c.App.Writer, "%s: not published in the repository (not compared)\n", n)
				}
			}
			if !res.Same {
				return &cmdError{code: exitNotVerified, err: fmt.Errorf("%s: the build differs from the official release (A is the build, B the official files)", coord)}
			}
			fmt.Fprintf(c.App.Writer, "%s: matches the official release\n", coord)
			return nil
		},
	}
}

// resultCoordinate reads the coordinate from OUT/result.json.
func resultCoordinate(out string) (string, error) {
	name := path.Join(filepath.ToSlash(out), "result.json")
	b, err := readFile(context.Background(), filepath.FromSlash(name), "build result", 1<<20)
	if err != nil {
		return "", err
	}
	var r builder.Result
	if err := json.Unmarshal(b, &r); err != nil {
		return "", fmt.Errorf("%s: not a build result: %w", name, err)
	}
	if strings.Count(r.Coordinate, ":") != 2 {
		return "", fmt.Errorf("%s names no maven coordinate", name)
	}
	return r.Coordinate, nil
}
