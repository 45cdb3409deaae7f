package main

import (
	"github.com/pyrsia/pyrsia-build/node"
	"github.com/urfave/cli/v2"
)

func fetchCommand() *cli.Command {
	return &cli.Command{
		Name:      "fetch",
		Usage:     "write a published Maven coordinate's files, verified, with their proof bundle",
		UsageText: "pyrsia-build fetch --node HOST:PORT --policy POLICY -o DIR GROUP:ARTIFACT:VERSION",
		Description: `Gets the files (jars, poms) the build network published as
GROUP:ARTIFACT:VERSION from the node at --node (its /maven2/ repository) and
writes them to -o DIR, with the proof bundle in DIR/` + node.ProofFile + `.

As for pull, the node is trusted for nothing: the proof bundle must hold
under --policy (a final checkpoint cosigned by a majority, the entry in its
tree, the entry for this coordinate attested by a majority) and every file
must have the digest the entry names. Only then is DIR written, whole (it
must not exist, or be empty); on any failure nothing is left in it.

Exit codes: 0 verified and written, 1 not published or not verified, 2 usage
error or bad input.

Examples:
   pyrsia-build fetch --node 127.0.0.1:7888 --policy policy.json -o lib org.example.hello:hello-lib:1.0.0
   pyrsia-build verify --policy policy.json --bundle lib/` + node.ProofFile + ` lib/hello-lib-1.0.0.jar`,
		Flags: pullFlags(),
		Action: func(c *cli.Context) error {
			return pullOrFetch(c, "fetch", "GROUP:ARTIFACT:VERSION", func(c *cli.Context, what string, o node.PullOptions) (*node.Pulled, error) {
				return node.Fetch(c.Context, what, o)
			})
		},
	}
}
