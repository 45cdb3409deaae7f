package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/urfave/cli/v2"
)

func networkCommand() *cli.Command {
	return &cli.Command{
		Name:      "network",
		Usage:     "make and read a network policy: the build nodes that count",
		UsageText: "pyrsia-build network init|add-node|show|propose|approve ...",
		Description: `A network policy (Network policy v1, see the README) names the network, lists
its build nodes (name, cosign key, libp2p peer id, note key) and who may
request builds. An artifact is published when an absolute majority of the
listed build nodes, floor(n/2)+1, built the same digest, and a checkpoint is
final when a majority cosigned it. Its digest names the network. A verifier
needs the policy file and nothing else.

Examples:
   pyrsia-build node init --data a --name node-a > node-a.json
   pyrsia-build network init --name example.org/net --policy policy.json node-a.json node-b.json node-c.json
   pyrsia-build network show --policy policy.json
   pyrsia-build network propose --policy policy.json --new policy-2.json -o change.json
   pyrsia-build network approve --policy policy.json --key a/keys/cosign.key change.json
   pyrsia-build network submit --node 127.0.0.1:7881 change.json`,
		Subcommands: []*cli.Command{
			networkInitCommand(),
			networkAddNodeCommand(),
			networkShowCommand(),
			networkProposeCommand(),
			networkApproveCommand(),
			networkSubmitCommand(),
		},
	}
}

func networkInitCommand() *cli.Command {
	return &cli.Command{
		Name:      "init",
		Usage:     "write a new network policy",
		UsageText: "pyrsia-build network init --name NAME --policy FILE [--open] [--requester KEY.pub ...] NODE.json...",
		Description: `Writes a network policy to --policy (which must not exist) with the build nodes
of each NODE.json, the output of 'pyrsia-build node init'. --name is the
network's name and the origin line of its log's checkpoints. Requesters:
with --requester keys, only they (and no one else) may ask the network to
build; with --open, anyone may; with neither, only the build nodes.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "name", Required: true, Usage: "the network's `NAME` (also its log's origin)"},
			&cli.StringFlag{Name: "policy", Required: true, Usage: "write the policy to `FILE`"},
			&cli.BoolFlag{Name: "open", Usage: "let anyone request builds"},
			&cli.StringSliceFlag{Name: "requester", Usage: "a requester's cosign public key `FILE` (repeatable)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return inputErr(errors.New("network init needs at least one NODE.json"),
					"make one per build node with 'pyrsia-build node init --data DIR --name NAME > NODE.json'")
			}
			path := c.String("policy")
			if _, err := os.Lstat(path); err == nil {
				return inputErr(fmt.Errorf("%s already exists", path), "add nodes to it with 'pyrsia-build network add-node', or choose another --policy")
			}
			p := &policy.Policy{Version: policy.Version, Name: c.String("name"), Open: c.Bool("open")}
			for _, f := range c.StringSlice("requester") {
				b, err := attest.ReadFileLimited(f, 64<<10)
				if err != nil {
					return inputErr(fmt.Errorf("--requester: %w", err))
				}
				p.Requesters = append(p.Requesters, string(b))
			}
			nodes, err := readPolicyNodes(c.Args().Slice())
			if err != nil {
				return err
			}
			p.Nodes = nodes
			return writePolicy(c, path, p)
		},
	}
}

func networkAddNodeCommand() *cli.Command {
	return &cli.Command{
		Name:      "add-node",
		Usage:     "add build nodes to a network policy",
		UsageText: "pyrsia-build network add-node --policy FILE NODE.json...",
		Description: `Adds the build node of each NODE.json (the output of 'pyrsia-build node init')
to the policy in --policy and writes it back. The policy's digest changes:
every build node must be restarted with the new policy.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "policy", Required: true, Usage: "the policy `FILE`"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return inputErr(errors.New("network add-node needs at least one NODE.json"))
			}
			path := c.String("policy")
			p, err := policy.Load(path)
			if err != nil {
				return inputErr(err)
			}
			nodes, err := readPolicyNodes(c.Args().Slice())
			if err != nil {
				return err
			}
			p.Nodes = append(p.Nodes, nodes...)
			return writePolicy(c, path, p)
		},
	}
}

func networkShowCommand() *cli.Command {
	return &cli.Command{
		Name:      "show",
		Usage:     "print a network policy: its digest, rule and build nodes",
		UsageText: "pyrsia-build network show --policy FILE [--json]",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "policy", Required: true, Usage: "the policy `FILE`"},
			&cli.BoolFlag{Name: "json", Usage: "print the policy's canonical JSON instead"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return inputErr(fmt.Errorf("network show takes no arguments, got %q", c.Args().First()))
			}
			p, err := policy.Load(c.String("policy"))
			if err != nil {
				return inputErr(err)
			}
			if c.Bool("json") {
				b, err := p.Marshal()
				if err != nil {
					return err
				}
				c.App.Writer.Write(append(b, '\n'))
				return nil
			}
			printPolicy(c, p)
			return nil
		},
	}
}

func printPolicy(c *cli.Context, p *policy.Policy) {
	w := c.App.Writer
	fmt.Fprintf(w, "network   %s\n", p.Name)
	fmt.Fprintf(w, "digest    %s\n", p.Digest())
	fmt.Fprintf(w, "rule      %d of %d build nodes (absolute majority)\n", p.Threshold(), len(p.Nodes))
	switch {
	case p.Open:
		fmt.Fprintf(w, "requests  open to anyone\n")
	case len(p.Requesters) > 0:
		fmt.Fprintf(w, "requests  %d listed requester keys\n", len(p.Requesters))
	default:
		fmt.Fprintf(w, "requests  build nodes only\n")
	}
	for _, n := range p.Nodes {
		peer := n.PeerID
		if peer == "" {
			peer = "(no peer id)"
		}
		fmt.Fprintf(w, "node      %s  %s  %s\n", n.Name, peer, n.NoteKey)
	}
}

// readPolicyNodes reads NODE.json files, strictly.
func readPolicyNodes(files []string) ([]policy.Node, error) {
	var nodes []policy.Node
	for _, f := range files {
		b, err := attest.ReadFileLimited(f, 64<<10)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, inputErr(fmt.Errorf("%s does not exist", f), "make it with 'pyrsia-build node init --data DIR --name NAME > "+f+"'")
		}
		if err != nil {
			return nil, inputErr(err)
		}
		var n policy.Node
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&n); err != nil || dec.More() {
			if err == nil {
				err = errors.New("trailing data")
			}
			return nil, inputErr(fmt.Errorf("%s is not a node's policy entry: %w", f, err),
				"give the output of 'pyrsia-build node init', a JSON object with name, cosignKey, peerId and noteKey")
		}
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// writePolicy validates p and writes it to path as indented canonical JSON.
func writePolicy(c *cli.Context, path string, p *policy.Policy) error {
	if err := p.Validate(); err != nil {
		return inputErr(err)
	}
	b, err := p.Marshal()
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return err
	}
	out.WriteByte('\n')
	if err := writeFileAtomic(path, out.Bytes(), 0o644); err != nil {
		return err
	}
	names := make([]string, len(p.Nodes))
	for i, n := range p.Nodes {
		names[i] = n.Name
	}
	fmt.Fprintf(c.App.ErrWriter, "policy %s written to %s: %d build nodes (%s), rule %d of %d\n",
		p.Digest(), path, len(p.Nodes), strings.Join(names, ", "), p.Threshold(), len(p.Nodes))
	return nil
}
