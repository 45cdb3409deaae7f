package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	slsa "github.com/in-toto/attestation/go/predicates/provenance/v1"
	intoto "github.com/in-toto/attestation/go/v1"
	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/urfave/cli/v2"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"
)

// BuildTypeAttest names provenance written by 'pyrsia-build attest' for
// artifacts built elsewhere: externalParameters hold the spec, if any, and
// the artifact names.
const buildTypeAttest = "https://pyrsia.io/pyrsia-build/attest/v1"

func attestCommand() *cli.Command {
	return &cli.Command{
		Name:      "attest",
		Usage:     "sign an in-toto SLSA provenance attestation for artifacts",
		UsageText: "pyrsia-build attest --key KEY [--spec SPEC] [--bundle FILE] ARTIFACT...",
		Description: `Hashes each ARTIFACT, makes one in-toto Statement v1 with the artifacts as
subjects and a SLSA provenance v1 predicate, signs it as a DSSE envelope with
the cosign private key, and writes a Sigstore bundle (v0.3) next to each
artifact as ARTIFACT.sigstore.json (or to --bundle).

Under GitHub Actions (GITHUB_ACTIONS=true) the provenance records the
workflow run as SLSA does for GitHub workflows (buildType
https://actions.github.io/buildtypes/workflow/v1, the repository and commit,
the workflow as builder.id unless --builder-id is given, the run as
invocationId); under GitLab CI what its CI_* variables offer.

The password comes from COSIGN_PASSWORD or is asked for on the terminal.
The bundle verifies with 'pyrsia-build verify' and with
'cosign verify-blob-attestation --new-bundle-format'.

Examples:
   pyrsia-build attest --key cosign.key app.tar
   pyrsia-build attest --key node.key --spec hello.yaml --builder-id urn:pyrsia:node-a hello.jar hello.pom
   pyrsia-build attest --key cosign.key --bundle out/app.json app.tar`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "key", Required: true, Usage: "cosign private key `FILE`"},
			&cli.StringFlag{Name: "spec", Usage: "build spec `FILE` (YAML or JSON), recorded as the provenance's externalParameters"},
			&cli.StringFlag{Name: "bundle", Usage: "write the bundle to `FILE` instead of next to each artifact"},
			&cli.StringFlag{Name: "builder-id", Usage: "`URI` of the builder, recorded in the provenance (default: urn:pyrsia-build:host:HOSTNAME)"},
		},
		Action: func(c *cli.Context) error {
			paths := c.Args().Slice()
			if len(paths) == 0 {
				return inputErr(fmt.Errorf("attest needs at least one ARTIFACT"), "run 'pyrsia-build attest --help' for usage")
			}
			for _, p := range paths {
				if fi, err := os.Stat(p); err != nil {
					return inputErr(fmt.Errorf("artifact: %w", err))
				} else if !fi.Mode().IsRegular() {
					return inputErr(fmt.Errorf("artifact %s is not a regular file", p))
				}
			}
			run, err := ciRun(c)
			if err != nil {
				return err
			}
			signer, err := loadSigner(c.Context, c.String("key"), c.App.ErrWriter)
			if err != nil {
				return err
			}
			started := time.Now()
			var subjects []*intoto.ResourceDescriptor
			names := make([]any, 0, len(paths))
			for _, p := range paths {
				s, err := attest.FileSubject(c.Context, p)
				if err != nil {
					return inputErr(fmt.Errorf("artifact: %w", err))
				}
				subjects = append(subjects, s)
				names = append(names, s.GetName())
			}
			params := map[string]any{"artifacts": names}
			if sp := c.String("spec"); sp != "" {
				spec, err := readSpec(c.Context, sp)
				if err != nil {
					return err
				}
				params["spec"] = spec
			}
			builderID := c.String("builder-id")
			if builderID == "" {
				host, _ := os.Hostname()
				builderID = "urn:pyrsia-build:host:" + host
			}
			prov, err := attest.NewProvenance(attest.ProvenanceOptions{
				BuildType:          buildTypeAttest,
				ExternalParameters: params,
				BuilderID:          builderID,
				BuilderVersion:     map[string]string{"pyrsia-build": buildVersion()},
				StartedOn:          started.UTC(),
				FinishedOn:         time.Now().UTC(),
			})
			if err != nil {
				return inputErr(err)
			}
			if err := applyCI(run, prov); err != nil {
				return err
			}
			data, err := signBundle(signer, subjects, prov)
			if err != nil {
				return err
			}
			outs := []string{c.String("bundle")}
			if outs[0] == "" {
				outs = outs[:0]
				for _, p := range paths {
					outs = append(outs, p+".sigstore.json")
				}
			}
			for _, o := range outs {
				if err := writeFileAtomic(o, data, 0o644); err != nil {
					return err
				}
			}
			for i, s := range subjects {
				fmt.Fprintf(c.App.Writer, "sha256:%s  %s\n", s.GetDigest()["sha256"], paths[i])
			}
			for _, o := range outs {
				fmt.Fprintf(c.App.ErrWriter, "Attestation bundle written to %s\n", o)
			}
			return nil
		},
	}
}

// ciRun reads the CI run the command runs in from the environment
// (attest.CIRunFromEnv): nil outside CI. With --builder-id the flag's
// builder id is kept.
func ciRun(c *cli.Context) (*attest.CIRun, error) {
	run, err := attest.CIRunFromEnv(os.Getenv)
	if err != nil {
		return nil, inputErr(err, "the provenance records the CI run from its variables; unset GITHUB_ACTIONS (or GITLAB_CI) to attest without them")
	}
	if run != nil && c.IsSet("builder-id") {
		run.BuilderID = ""
	}
	return run, nil
}

// applyCI records run, if any, in the provenance predicate.
func applyCI(run *attest.CIRun, prov *slsa.Provenance) error {
	if run == nil {
		return nil
	}
	return run.Apply(prov)
}

// readSpec reads a YAML or JSON file as JSON-compatible values.
func readSpec(ctx context.Context, path string) (any, error) {
	data, err := readFile(ctx, path, "build spec", maxSpecFileSize)
	if err != nil {
		return nil, err
	}
	var v map[string]any
	if err := yaml.Unmarshal(data, &v); err != nil {
		return nil, inputErr(fmt.Errorf("%s: not a YAML or JSON mapping: %w", path, err))
	}
	if len(v) == 0 {
		return nil, inputErr(fmt.Errorf("%s: spec is empty", path))
	}
	return v, nil
}

// signBundle signs a SLSA provenance statement about subjects and returns
// the Sigstore bundle's JSON, newline-terminated.
func signBundle(signer *attest.Signer, subjects []*intoto.ResourceDescriptor, prov proto.Message) ([]byte, error) {
	b, err := attest.Attest(signer, subjects, attest.PredicateSLSAProvenanceV1, prov)
	if err != nil {
		return nil, err
	}
	data, err := json.Marshal(b)
	if err != nil {
		return nil, err
	}
	return append(data, '\n'), nil
}
