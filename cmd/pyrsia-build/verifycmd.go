package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/urfave/cli/v2"
)

// predicateAliases are cosign's --type shorthands that apply here.
var predicateAliases = map[string]string{
	"slsaprovenance1":  attest.PredicateSLSAProvenanceV1,
	"slsaprovenance02": "https://slsa.dev/provenance/v0.2",
	"slsaprovenance":   "https://slsa.dev/provenance/v0.2",
}

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "verify an artifact against its attestation bundle, offline",
		UsageText: "pyrsia-build verify --key PUB [--bundle FILE] [--type TYPE] [--json] ARTIFACT",
		Description: `Reads ARTIFACT once through SHA-256 and checks, in order: that the bundle's DSSE
envelope is signed by the public key, that its payload is an in-toto statement
(of --type, if given), and that a subject of the statement has the artifact's
digest. Prints who signed, which subject, and the predicate type.

The bundle defaults to ARTIFACT.sigstore.json. Bundles written by
'cosign attest-blob --new-bundle-format --key' verify too.

Exit codes: 0 verified, 1 not verified (the reason is printed),
2 usage error or unreadable input.

Examples:
   pyrsia-build verify --key cosign.pub app.tar
   pyrsia-build verify --key node-a.pub --bundle app.tar.sigstore.json --type slsaprovenance1 app.tar
   pyrsia-build verify --key cosign.pub --json app.tar | jq .subject`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "key", Required: true, Usage: "public key `FILE` that may have signed; repeat for several"},
			&cli.StringFlag{Name: "bundle", Usage: "Sigstore bundle `FILE` (default: ARTIFACT.sigstore.json)"},
			&cli.StringFlag{Name: "type", Usage: "require this predicate `TYPE`: a URI, or slsaprovenance1"},
			&cli.BoolFlag{Name: "json", Usage: "print the verdict as JSON"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return inputErr(fmt.Errorf("verify takes one ARTIFACT, got %d arguments", c.NArg()),
					"run 'pyrsia-build verify --help' for usage")
			}
			artifact := c.Args().First()
			if fi, err := os.Stat(artifact); err != nil {
				return inputErr(fmt.Errorf("artifact: %w", err))
			} else if !fi.Mode().IsRegular() {
				return inputErr(fmt.Errorf("artifact %s is not a regular file", artifact))
			}
			bundlePath := c.String("bundle")
			if bundlePath == "" {
				bundlePath = artifact + ".sigstore.json"
			}
			keys, err := loadPublicKeys(c.StringSlice("key"))
			if err != nil {
				return err
			}
			b, err := readBundle(bundlePath)
			if err != nil {
				return err
			}
			ptype := c.String("type")
			if full, ok := predicateAliases[ptype]; ok {
				ptype = full
			}
			v, err := attest.NewVerifier(attest.VerifierOptions{Keys: keys, PredicateType: ptype})
			if err != nil {
				return inputErr(err)
			}
			ev, err := v.Verify(c.Context, attest.FileArtifact(artifact), b)
			if errors.Is(err, attest.ErrNotVerified) {
				return failed(fmt.Errorf("%s: not verified: %w", artifact, err), verifyHint(err))
			}
			if err != nil {
				return inputErr(err)
			}
			if c.Bool("json") {
				return printVerdictJSON(c.App.Writer, artifact, bundlePath, ev)
			}
			printVerdict(c.App.Writer, artifact, ev)
			return nil
		},
	}
}

// readBundle reads and parses a bundle file, naming it in errors.
func readBundle(path string) (*attest.Bundle, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, inputErr(fmt.Errorf("reading bundle: %w", err),
			"make one with 'pyrsia-build attest', or name it with --bundle")
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, attest.MaxBundleSize+1))
	if err != nil {
		return nil, inputErr(fmt.Errorf("reading bundle %s: %w", path, err))
	}
	b, err := attest.ParseBundle(data)
	if err != nil {
		return nil, inputErr(fmt.Errorf("%s: %w", path, trimPkg(err)))
	}
	return b, nil
}

func verifyHint(err error) string {
	var ve *attest.VerificationError
	if !errors.As(err, &ve) {
		return ""
	}
	switch ve.Step {
	case "signature":
		return "check that --key is the public key of the signer; a bundle that was edited after signing never verifies"
	case "subject":
		return "the file is not the one that was attested: download it again, or use the bundle that belongs to it"
	case "statement":
		return "the bundle is signed but does not hold the attestation expected"
	}
	return ""
}

func signerNames(ev *attest.Evidence) []string {
	var names []string
	for _, k := range ev.Signers {
		names = append(names, fmt.Sprintf("%s (key %s)", k.Name, k.ID[:16]))
	}
	return names
}

func printVerdict(w io.Writer, artifact string, ev *attest.Evidence) {
	fmt.Fprintf(w, "verified: %s\n", artifact)
	fmt.Fprintf(w, "  subject:   %s sha256:%s\n", ev.Subject.GetName(), ev.Subject.GetDigest()["sha256"])
	fmt.Fprintf(w, "  signed by: %s\n", strings.Join(signerNames(ev), ", "))
	fmt.Fprintf(w, "  predicate: %s\n", ev.Statement.GetPredicateType())
	if id := builderID(ev); id != "" {
		fmt.Fprintf(w, "  builder:   %s\n", id)
	}
}

type verdictJSON struct {
	Verified      bool     `json:"verified"`
	Artifact      string   `json:"artifact"`
	Bundle        string   `json:"bundle"`
	Digest        string   `json:"digest"`
	Size          int64    `json:"size"`
	Subject       string   `json:"subject"`
	Signers       []string `json:"signers"`
	PredicateType string   `json:"predicateType"`
	Builder       string   `json:"builder,omitempty"`
}

func printVerdictJSON(w io.Writer, artifact, bundle string, ev *attest.Evidence) error {
	v := verdictJSON{
		Verified: true, Artifact: artifact, Bundle: bundle,
		Digest: ev.DigestHex(), Size: ev.Size, Subject: ev.Subject.GetName(),
		PredicateType: ev.Statement.GetPredicateType(), Builder: builderID(ev),
	}
	for _, k := range ev.Signers {
		v.Signers = append(v.Signers, k.Name)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// builderID reads runDetails.builder.id from a SLSA v1 predicate, if any.
func builderID(ev *attest.Evidence) string {
	if ev.Statement.GetPredicateType() != attest.PredicateSLSAProvenanceV1 {
		return ""
	}
	rd := ev.Statement.GetPredicate().GetFields()["runDetails"].GetStructValue()
	return rd.GetFields()["builder"].GetStructValue().GetFields()["id"].GetStringValue()
}
