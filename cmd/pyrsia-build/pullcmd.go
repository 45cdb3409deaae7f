package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/node"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/urfave/cli/v2"
)

func pullCommand() *cli.Command {
	return &cli.Command{
		Name:      "pull",
		Usage:     "write a published OCI image, verified, as an OCI layout with its proof bundle",
		UsageText: "pyrsia-build pull --node HOST:PORT --policy POLICY -o DIR NAME:TAG",
		Description: `Gets the image the build network published as NAME:TAG from the node at
--node (a regular node's --http address, or a build node's --api) and writes
it to -o DIR as an OCI image layout: oci-layout, index.json (the published
manifest digest, tagged TAG), blobs/sha256/..., and the proof bundle in
DIR/` + node.ProofFile + `.

It trusts the node for nothing: the proof bundle must hold under --policy (a
final checkpoint cosigned by a majority of the policy's build nodes, the
entry in its tree, the entry for NAME:TAG attested by a majority), the
manifest must have the published digest, and every blob the digest its
manifest names. Only then is DIR written, whole (it must not exist, or be
empty); on any failure nothing is left in it.

Exit codes: 0 verified and written, 1 not published or not verified, 2 usage
error or bad input (a node that cannot be reached).

Examples:
   pyrsia-build pull --node 127.0.0.1:7888 --policy policy.json -o hello hello:1.0
   skopeo copy oci:hello:1.0 docker-archive:hello.tar
   pyrsia-build verify --policy policy.json --bundle hello/` + node.ProofFile + ` hello/blobs/sha256/<manifest hex>`,
		Flags: pullFlags(),
		Action: func(c *cli.Context) error {
			return pullOrFetch(c, "pull", "NAME:TAG", func(c *cli.Context, what string, o node.PullOptions) (*node.Pulled, error) {
				return node.Pull(c.Context, what, o)
			})
		},
	}
}

func pullFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "node", Value: node.DefaultHTTP, Usage: "the node's HTTP `HOST:PORT` (or URL)"},
		&cli.StringFlag{Name: "policy", Usage: "the network's first policy `FILE`: everything is checked against it and the policy changes in the log (required)"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to the folder `DIR` (must not exist, or be empty; required)"},
	}
}

// pullOrFetch runs pull or fetch.
func pullOrFetch(c *cli.Context, cmd, what string, get func(*cli.Context, string, node.PullOptions) (*node.Pulled, error)) error {
	if c.NArg() != 1 {
		return inputErr(fmt.Errorf("%s takes one %s, got %d arguments", cmd, what, c.NArg()), "run 'pyrsia-build "+cmd+" --help' for usage")
	}
	if c.String("policy") == "" || c.String("output") == "" {
		return inputErr(fmt.Errorf("%s needs --policy and -o", cmd), "everything the node sends is checked against the network policy before -o is written")
	}
	base, err := nodeURL(c.String("node"))
	if err != nil {
		return err
	}
	p, err := policy.Load(c.String("policy"))
	if err != nil {
		return inputErr(err)
	}
	if _, err := p.Trust(); err != nil {
		return inputErr(err)
	}
	res, err := get(c, c.Args().First(), node.PullOptions{Node: base, Policy: p, Out: c.String("output")})
	if errors.Is(err, node.ErrNotVerified) || errors.Is(err, attest.ErrNotVerified) {
		return failed(err, "nothing was written to "+c.String("output"))
	}
	if err != nil {
		return inputErr(err)
	}
	printPulled(c.App.Writer, res, c.String("output"))
	return nil
}

func printPulled(w io.Writer, p *node.Pulled, out string) {
	fmt.Fprintf(w, "verified  %s: entry %d of the log, final checkpoint of size %d cosigned by %v\n", p.Coordinate, p.Index, p.TreeSize, p.Cosigners)
	for _, f := range p.Files {
		fmt.Fprintf(w, "          %s %s\n", f.Digest, f.Name)
	}
	fmt.Fprintf(w, "written   %s (proof bundle %s/%s)\n", out, out, node.ProofFile)
}
