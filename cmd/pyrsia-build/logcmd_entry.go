package main

import (
	"encoding/json"
	"fmt"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/builder"
	"github.com/pyrsia/pyrsia-build/publish"
	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"github.com/urfave/cli/v2"
	"sigs.k8s.io/yaml"
)

func logMakeEntryCommand() *cli.Command {
	return &cli.Command{
		Name:      "make-entry",
		Usage:     "make a log entry from the build nodes' attestation bundles",
		UsageText: "pyrsia-build log make-entry --spec SPEC [--ecosystem E] [--coordinate C] [-o FILE] BUNDLE...",
		Description: `Makes the log entry that publishes an artifact: the build spec (its canonical
JSON's sha256 is the input digest), the subjects that every BUNDLE attests
(they must all agree, or the command fails), and the BUNDLEs' DSSE envelopes.
Writes the entry in its canonical form to FILE (default stdout), ready for
'pyrsia-build log append'. Signatures are checked by verifiers against the
network policy, not here.

--ecosystem and --coordinate default to the spec's "ecosystem" and
"coordinate" fields.

Examples:
   pyrsia-build log make-entry --spec hello.yaml -o entry.json node-a.sigstore.json node-b.sigstore.json
   pyrsia-build log make-entry --spec hello.yaml --ecosystem maven --coordinate org.example:hello:1.0 b1.json b2.json`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "spec", Required: true, Usage: "build spec `FILE` (YAML or JSON)"},
			&cli.StringFlag{Name: "ecosystem", Usage: "`oci` or `maven` (default: the spec's ecosystem)"},
			&cli.StringFlag{Name: "coordinate", Usage: "the artifact's `COORDINATE` (default: the spec's coordinate)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the entry to `FILE`"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return inputErr(fmt.Errorf("make-entry needs at least one BUNDLE"), "run 'pyrsia-build log make-entry --help' for usage")
			}
			raw, err := readFile(c.Context, c.String("spec"), "build spec", maxSpecFileSize)
			if err != nil {
				return err
			}
			specJSON, err := yaml.YAMLToJSON(raw)
			if err != nil {
				return inputErr(fmt.Errorf("%s: not YAML or JSON: %w", c.String("spec"), err))
			}
			var fields struct {
				Ecosystem  string `json:"ecosystem"`
				Coordinate string `json:"coordinate"`
			}
			json.Unmarshal(specJSON, &fields)
			// A build spec v1 is recorded in its canonical form (defaults
			// applied), so that the entry's input digest is the one the
			// build nodes computed.
			var buildSpec *builder.Spec
			if s, err := builder.ParseSpec(raw); err == nil {
				buildSpec = s
				if specJSON, err = s.CanonicalJSON(); err != nil {
					return inputErr(err)
				}
				fields.Ecosystem, fields.Coordinate = s.Ecosystem, s.Coordinate
			}
			eco, coord := c.String("ecosystem"), c.String("coordinate")
			if eco == "" {
				eco = fields.Ecosystem
			}
			if coord == "" {
				coord = fields.Coordinate
			}
			var envs []*dssepb.Envelope
			for _, p := range c.Args().Slice() {
				data, err := readBundleFile(c.Context, p)
				if err != nil {
					return err
				}
				b, err := attest.ParseBundle(data)
				if err != nil {
					return inputErr(fmt.Errorf("%s: %w", p, trimPkg(err)))
				}
				envs = append(envs, b.Envelope())
			}
			e, err := publish.NewEntry(eco, coord, specJSON, envs)
			if err != nil {
				return inputErr(err, "--ecosystem and --coordinate name the artifact when the spec does not")
			}
			if buildSpec != nil {
				if want, _ := buildSpec.InputDigest(); want != e.InputDigest {
					return fmt.Errorf("internal error: the entry's input digest %s differs from the build spec's %s", e.InputDigest, want)
				}
			}
			out, err := e.MarshalBinary()
			if err != nil {
				return err
			}
			if o := c.String("output"); o != "" {
				return writeFileAtomic(o, out, 0o644)
			}
			_, err = c.App.Writer.Write(append(out, '\n'))
			return err
		},
	}
}
