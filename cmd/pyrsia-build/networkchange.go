package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/pyrsia/pyrsia-build/node"
	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/urfave/cli/v2"
)

func networkProposeCommand() *cli.Command {
	return &cli.Command{
		Name:      "propose",
		Usage:     "make a change of the network's policy, for its build nodes to approve",
		UsageText: "pyrsia-build network propose --policy CURRENT --new NEW -o CHANGE",
		Description: `Writes to CHANGE (which must not exist) the unapproved change from the policy
in force, --policy, to the policy --new (made with 'network init' or
'add-node', or edited by hand): the log entry of kind "policy" that
replaces one with the other, without approvals yet. It prints the digests
and what changes: nodes added or removed, keys rotated, peer ids, who may
request builds. The new policy keeps the network's name.

Each build node of the policy in force then approves it with 'pyrsia-build
network approve'; with a majority of approvals it can be appended to the
log, and every node applies it at the same log index.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "policy", Required: true, Usage: "the policy in force `FILE`"},
			&cli.StringFlag{Name: "new", Required: true, Usage: "the new policy `FILE`"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Required: true, Usage: "write the change to `CHANGE`"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return inputErr(fmt.Errorf("network propose takes no arguments, got %q", c.Args().First()))
			}
			cur, err := policy.Load(c.String("policy"))
			if err != nil {
				return inputErr(err)
			}
			next, err := policy.Load(c.String("new"))
			if err != nil {
				return inputErr(err)
			}
			out := c.String("output")
			if _, err := os.Lstat(out); err == nil {
				return inputErr(fmt.Errorf("%s already exists", out), "approve it with 'pyrsia-build network approve', or choose another -o")
			}
			ch := &policy.Change{Previous: cur.Digest(), New: next}
			if err := ch.Replaces(cur); err != nil {
				return inputErr(fmt.Errorf("%s to %s: %w", c.String("policy"), c.String("new"), err))
			}
			b, err := publish.MarshalPolicyChange(ch)
			if err != nil {
				return inputErr(fmt.Errorf("%s: %w", c.String("new"), trimPrefix(err, "publish: ")))
			}
			if err := writeFileAtomic(out, append(b, '\n'), 0o644); err != nil {
				return err
			}
			printChange(c.App.Writer, ch, cur, nil)
			fmt.Fprintf(c.App.ErrWriter, "change written to %s: each build node of the policy in force approves it with 'pyrsia-build network approve --policy %s --key DIR/keys/cosign.key %s'\n", out, c.String("policy"), out)
			return nil
		},
	}
}

func networkApproveCommand() *cli.Command {
	return &cli.Command{
		Name:      "approve",
		Usage:     "approve a change of the network's policy as one of its build nodes",
		UsageText: "pyrsia-build network approve --policy CURRENT --key NODE.key CHANGE",
		Description: `Checks CHANGE (from 'network propose'): it is well-formed, it replaces the
policy in force (--policy), and --key is the cosign key of one of that
policy's build nodes. It shows what the change does and who approved it
so far, before it reads the key and asks for its password (stop at the
prompt to sign nothing), then adds this node's approval (a signature over
the network's name and both policies' digests, payload type
` + policy.ChangePayloadType + `) and writes CHANGE back. The key's password is read from COSIGN_PASSWORD or
the terminal. It prints how many of the build nodes approved so far, and
how many are needed (an absolute majority of the policy in force).`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "policy", Required: true, Usage: "the policy in force `FILE`"},
			&cli.StringFlag{Name: "key", Required: true, Usage: "this build node's cosign private key `FILE` (DIR/keys/cosign.key)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return inputErr(fmt.Errorf("network approve takes one CHANGE file, got %d arguments", c.NArg()), "make one with 'pyrsia-build network propose'")
			}
			path := c.Args().First()
			cur, err := policy.Load(c.String("policy"))
			if err != nil {
				return inputErr(err)
			}
			ch, err := readChange(c, path)
			if err != nil {
				return err
			}
			if err := ch.Replaces(cur); err != nil {
				return inputErr(fmt.Errorf("%s: %w", path, err), "give the policy in force with --policy, or propose the change again against it")
			}
			// What the change does is shown before the key is read (and
			// its password asked for): the operator sees what they are
			// asked to sign, and may stop at the prompt.
			ev, _ := ch.Check(cur)
			printChange(c.App.Writer, ch, cur, ev)
			signer, err := loadSigner(c.Context, c.String("key"), c.App.ErrWriter)
			if err != nil {
				return err
			}
			name, err := ch.Approve(cur, signer)
			if err != nil {
				return inputErr(fmt.Errorf("%s: %w", c.String("key"), err), "only the build nodes of the policy in force approve changes: give a node's DIR/keys/cosign.key")
			}
			b, err := publish.MarshalPolicyChange(ch)
			if err != nil {
				return err
			}
			ev, _ = ch.Check(cur)
			printApprovals(c.App.Writer, cur, ev)
			if err := writeFileAtomic(path, append(b, '\n'), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "approved by %s: %s written\n", name, path)
			return nil
		},
	}
}

func networkSubmitCommand() *cli.Command {
	return &cli.Command{
		Name:      "submit",
		Usage:     "have an approved change of the network's policy appended to its log",
		UsageText: "pyrsia-build network submit --node HOST:PORT [--policy CURRENT] CHANGE",
		Description: `Sends CHANGE (from 'network propose', approved with 'network approve') to the
build node whose API is at --node (POST /v1/policy-changes). The node checks
it against the policy in force in its log: it must replace that policy
(its previous digest) and carry the approvals of an absolute majority of
that policy's build nodes. It then has it appended through Raft (a node
that does not lead forwards it to the leader), and every build node
checks it again and acts on the new policy from the next log index on:
who votes and requests, the majority, the peers admitted, the cosigners,
Raft's voters. It prints the change's log index.

With --policy, the change is first checked here against that policy, the
one in force, and what it does is shown; without, only the node checks.
Submitting a change already in the log prints its index again.

Examples:
   pyrsia-build network submit --node 127.0.0.1:7881 change.json
   pyrsia-build network submit change.json --node 127.0.0.1:7881 --policy policy.json`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "node", Required: true, Usage: "a build node's API `HOST:PORT` (or URL)"},
			&cli.StringFlag{Name: "policy", Usage: "the policy in force `FILE`, to check the change here first"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return inputErr(fmt.Errorf("network submit takes one CHANGE file, got %d arguments", c.NArg()), "make one with 'pyrsia-build network propose' and 'network approve'")
			}
			path := c.Args().First()
			base, err := nodeURL(c.String("node"))
			if err != nil {
				return err
			}
			ch, err := readChange(c, path)
			if err != nil {
				return err
			}
			if pf := c.String("policy"); pf != "" {
				cur, err := policy.Load(pf)
				if err != nil {
					return inputErr(err)
				}
				ev, err := ch.Check(cur)
				printChange(c.App.Writer, ch, cur, ev)
				if err != nil {
					return inputErr(fmt.Errorf("%s: %w", path, err), fmt.Sprintf("a change needs the approvals of %d of the %d build nodes of the policy in force: have more of them run 'pyrsia-build network approve'", cur.Threshold(), len(cur.Nodes)))
				}
			}
			b, err := publish.MarshalPolicyChange(ch)
			if err != nil {
				return inputErr(fmt.Errorf("%s: %w", path, trimPrefix(err, "publish: ")))
			}
			var res node.PolicyChangeResult
			hdr := http.Header{"Content-Type": {"application/json"}}
			if err := nodeCallHeader(c.Context, http.MethodPost, base+"/v1/policy-changes", hdr, bytes.NewReader(b), &res); err != nil {
				return err
			}
			if res.Policy != ch.New.Digest() {
				return failed(fmt.Errorf("the node at %s answered for policy %q, not the change's %s", base, res.Policy, ch.New.Digest()))
			}
			what := "appended"
			if res.Already {
				what = "already in the log"
			}
			approvers := strings.Join(res.Approvers, ", ")
			if approvers == "" {
				approvers = "checked by the node"
			}
			fmt.Fprintf(c.App.Writer, "policy change %s at log index %d: policy %s in force from index %d (approved by %s)\n", what, res.Index, res.Policy, res.Index+1, approvers)
			return nil
		},
	}
}

// readChange reads a CHANGE file: a policy change entry and a newline.
func readChange(c *cli.Context, path string) (*policy.Change, error) {
	b, err := readFile(c.Context, path, "policy change", publish.MaxEntrySize+1, "make one with 'pyrsia-build network propose'")
	if err != nil {
		return nil, err
	}
	ch, err := publish.ParsePolicyChange(bytes.TrimSuffix(b, []byte("\n")))
	if err != nil {
		return nil, inputErr(fmt.Errorf("%s: %w", path, trimPrefix(err, "publish: ")),
			"a CHANGE file is written by 'pyrsia-build network propose' and 'network approve'; do not edit it by hand")
	}
	return ch, nil
}

// printChange prints what a change does and, with ev, who approved it.
func printChange(w io.Writer, ch *policy.Change, cur *policy.Policy, ev *policy.ChangeEvidence) {
	b, _ := publish.MarshalPolicyChange(&policy.Change{Previous: ch.Previous, New: ch.New})
	sum := sha256.Sum256(b)
	fmt.Fprintf(w, "network   %s\n", ch.New.Name)
	fmt.Fprintf(w, "change    sha256:%s (the unapproved change)\n", hex.EncodeToString(sum[:]))
	fmt.Fprintf(w, "previous  %s\n", ch.Previous)
	fmt.Fprintf(w, "new       %s\n", ch.New.Digest())
	for _, d := range policy.Diff(cur, ch.New) {
		fmt.Fprintf(w, "  %s\n", d)
	}
	printApprovals(w, cur, ev)
}

// printApprovals prints who approved a change so far, and, with ev, the
// approvals that do not count.
func printApprovals(w io.Writer, cur *policy.Policy, ev *policy.ChangeEvidence) {
	approvers := "none"
	n := 0
	if ev != nil && len(ev.Approvers) > 0 {
		approvers, n = strings.Join(ev.Approvers, ", "), len(ev.Approvers)
	}
	fmt.Fprintf(w, "approved  %d of %d build nodes (%s), %d needed\n", n, len(cur.Nodes), approvers, cur.Threshold())
	if ev != nil {
		for _, ig := range ev.Ignored {
			fmt.Fprintf(w, "ignored   %s\n", ig)
		}
	}
}
