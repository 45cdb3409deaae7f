package main

import (
	"fmt"
	"regexp"

	"github.com/pyrsia/pyrsia-build/node"
	"github.com/urfave/cli/v2"
)

var nodeNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,62}$`)

func nodeCommand() *cli.Command {
	return &cli.Command{
		Name:      "node",
		Usage:     "run a build node of a network, or make its keys",
		UsageText: "pyrsia-build node init --data DIR --name NAME",
		Subcommands: []*cli.Command{
			nodeInitCommand(),
		},
	}
}

func nodeInitCommand() *cli.Command {
	return &cli.Command{
		Name:      "init",
		Usage:     "make a build node's keys and print its policy entry",
		UsageText: "pyrsia-build node init --data DIR --name NAME",
		Description: `Makes the keys of a new build node in DIR/keys:

   cosign.key, cosign.pub   ECDSA P-256 (cosign's format): signs the node's votes
   note.key, note.pub       Ed25519 note key: signs and cosigns log checkpoints
   p2p.key                  libp2p identity: its peer id is the node's address

The cosign key is encrypted with the password in COSIGN_PASSWORD (it may be
empty), which 'pyrsia-build node' needs again to start. Prints the node's
entry for the network policy, as JSON, on standard output: give it to
'pyrsia-build network add-node'. Existing keys are never overwritten.

Examples:
   COSIGN_PASSWORD= pyrsia-build node init --data nodes/a --name node-a > node-a.json
   pyrsia-build network add-node --policy policy.json node-a.json`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", Required: true, Usage: "the node's data `DIR`"},
			&cli.StringFlag{Name: "name", Required: true, Usage: "the node's `NAME` in the policy ([a-z0-9][a-z0-9.-]*)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return inputErr(fmt.Errorf("node init takes no arguments, got %q", c.Args().First()),
					"run 'pyrsia-build node init --help' for usage")
			}
			name := c.String("name")
			if !nodeNameRE.MatchString(name) {
				return inputErr(fmt.Errorf("--name %q is not a node name", name),
					"a node name is lowercase letters, digits, dots and dashes, starting with a letter or digit, at most 63 characters")
			}
			pw, err := readPassword(c.Context, "Enter password for the node's cosign key: ", true, c.App.ErrWriter)
			if err != nil {
				return err
			}
			k, err := node.InitKeys(c.String("data"), name, pw)
			if err != nil {
				return inputErr(err)
			}
			c.App.Writer.Write(k.MarshalPolicyNode())
			fmt.Fprintf(c.App.ErrWriter, "keys of %s written to %s/keys (peer id %s)\n", name, c.String("data"), k.PeerID)
			return nil
		},
	}
}
