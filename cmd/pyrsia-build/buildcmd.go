package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	clog "github.com/containerd/log"
	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/builder"
	"github.com/urfave/cli/v2"
)

func defaultDataDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "pyrsia-build")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "state", "pyrsia-build")
}

func buildCommand() *cli.Command {
	return &cli.Command{
		Name:      "build",
		Usage:     "build a spec hermetically with BuildKit and attest the artifacts",
		UsageText: "pyrsia-build build --key KEY [--out DIR] [--images DIR] [--buildkit-addr ADDR] SPEC",
		Description: `Reads the build spec, fetches the pinned source and checks its digest, builds
with the network off in the pinned builder image (an OCI layout in --images),
and writes to --out: the artifacts, the output manifest (every file inside
every artifact), the build log, and an attestation bundle signed with KEY
(attestation.sigstore.json: in-toto SLSA provenance v1 whose subjects are the
artifacts). Prints the input digest and each artifact's digest. Under
GitHub Actions or GitLab CI the provenance also records the run, as
'pyrsia-build attest --help' says.

Without --buildkit-addr it starts a private buildkitd (root and socket under
--data-dir) and stops it when done; buildkitd and runc must be installed
(scripts/install-buildkit.sh) and the command run as root.

Examples:
   pyrsia-build build --key node.key --images ./images --out out/hello testdata/build/hello-oci.yaml
   pyrsia-build build --key node.key --buildkit-addr unix:///run/buildkit/buildkitd.sock spec.yaml
   pyrsia-build diff out/a out/b`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "key", Required: true, Usage: "cosign private key `FILE` that signs the attestation"},
			&cli.StringFlag{Name: "out", Usage: "output `DIR` (must be empty; default: ./out/<input digest prefix>)"},
			&cli.StringFlag{Name: "images", Value: "images", Usage: "builder image store `DIR` (OCI layouts by name)"},
			&cli.StringFlag{Name: "buildkit-addr", EnvVars: []string{"BUILDKIT_HOST"}, Usage: "use the buildkitd at `ADDR` instead of starting one"},
			&cli.StringFlag{Name: "data-dir", Value: defaultDataDir(), Usage: "`DIR` for the private buildkitd's state"},
			&cli.StringFlag{Name: "builder-id", Usage: "`URI` of this builder in the provenance (default: urn:pyrsia-build:host:HOSTNAME)"},
			&cli.StringFlag{Name: "progress", Value: "auto", Usage: "progress display: auto, plain, tty or quiet"},
			&cli.BoolFlag{Name: "no-cache", Usage: "rebuild every step, ignoring the buildkitd's cache"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return inputErr(fmt.Errorf("build takes one SPEC, got %d arguments", c.NArg()), "run 'pyrsia-build build --help' for usage")
			}
			// containerd's content store warns about fsverity on every
			// open; that is noise to a person running a build.
			clog.SetLevel("error")
			specPath := c.Args().First()
			if err := checkFile(specPath, "build spec", maxSpecFileSize); err != nil {
				return err
			}
			spec, err := builder.ReadSpec(specPath)
			if err != nil {
				return inputErr(err, "build spec v1 is described in the README (\"Build spec\")")
			}
			input, err := spec.InputDigest()
			if err != nil {
				return inputErr(err)
			}
			run, err := ciRun(c)
			if err != nil {
				return err
			}
			decrypt, err := readSigner(c.Context, c.String("key"), c.App.ErrWriter)
			if err != nil {
				return err
			}
			// Decrypt the key (scrypt) while the build runs; a wrong
			// password stops the build at once.
			ctx, cancel := context.WithCancel(c.Context)
			defer cancel()
			type signerResult struct {
				s   *attest.Signer
				err error
			}
			signerCh := make(chan signerResult, 1)
			go func() {
				s, err := decrypt()
				if err != nil {
					cancel()
				}
				signerCh <- signerResult{s, err}
			}()
			out := c.String("out")
			if out == "" {
				out = filepath.Join("out", input[len("sha256:"):len("sha256:")+12])
			}
			addr := c.String("buildkit-addr")
			if addr == "" {
				fmt.Fprintf(c.App.ErrWriter, "starting a private buildkitd in %s\n", filepath.Join(c.String("data-dir"), "buildkitd"))
				d, err := builder.StartDaemon(c.Context, builder.DaemonOptions{Dir: filepath.Join(c.String("data-dir"), "buildkitd")})
				if errors.Is(err, builder.ErrNoBuildkitd) {
					return inputErr(err, "or point --buildkit-addr at a running buildkitd")
				}
				if err != nil {
					return err
				}
				defer d.Stop()
				addr = d.Addr
			}
			bk, err := builder.NewBuildKit(c.Context, addr)
			if err != nil {
				return err
			}
			defer bk.Close()
			bk.ProgressMode = c.String("progress")
			started := time.Now()
			res, err := bk.Build(ctx, spec, builder.BuildOptions{
				OutDir: out, SpecDir: filepath.Dir(specPath), Images: c.String("images"), Progress: c.App.ErrWriter,
				NoCache: c.Bool("no-cache"),
			})
			sr := <-signerCh
			if sr.err != nil {
				return sr.err
			}
			var be *builder.BuildError
			if errors.As(err, &be) {
				return &cmdError{code: exitNotVerified, err: err, hints: []string{"the recipe failed: fix the source or the spec; the whole log is in " + be.LogPath}}
			}
			if err != nil {
				return inputErr(err)
			}
			signer := sr.s
			builderID := c.String("builder-id")
			if builderID == "" {
				host, _ := os.Hostname()
				builderID = "urn:pyrsia-build:host:" + host
			}
			subjects, prov, err := builder.Provenance(spec, res, builderID, started, time.Now())
			if err != nil {
				return err
			}
			if err := applyCI(run, prov); err != nil {
				return err
			}
			data, err := signBundle(signer, subjects, prov)
			if err != nil {
				return err
			}
			if err := writeFileAtomic(filepath.Join(out, "attestation.sigstore.json"), data, 0o644); err != nil {
				return err
			}
			resJSON, _ := json.MarshalIndent(res, "", "  ")
			if err := writeFileAtomic(filepath.Join(out, "result.json"), append(resJSON, '\n'), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "input  %s\n", res.InputDigest)
			for _, a := range res.Artifacts {
				fmt.Fprintf(c.App.Writer, "%s  %s\n", a.Digest, a.Name)
			}
			fmt.Fprintf(c.App.ErrWriter, "output in %s (artifacts, manifest.json, build.log, attestation.sigstore.json)\n", out)
			return nil
		},
	}
}

func diffCommand() *cli.Command {
	return &cli.Command{
		Name:      "diff",
		Usage:     "explain how two builds of one spec differ",
		UsageText: "pyrsia-build diff OUT_A OUT_B",
		Description: `Compares the output manifests of two build output folders and prints, for each
artifact whose digest differs, the files added, removed and changed, with a
short unified diff for text files. Exit 0 when the builds are identical, 1
when they differ.

Examples:
   pyrsia-build diff out/node-a out/node-b`,
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return inputErr(fmt.Errorf("diff takes two output folders, got %d arguments", c.NArg()), "run 'pyrsia-build diff --help' for usage")
			}
			d, err := builder.Diff(c.Context, c.Args().Get(0), c.Args().Get(1))
			if err != nil {
				return inputErr(err)
			}
			d.Print(c.App.Writer)
			if !d.Same {
				return &cmdError{code: exitNotVerified, err: errors.New("the builds differ")}
			}
			return nil
		},
	}
}
