package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/pyrsia/pyrsia-build/node"
	"github.com/urfave/cli/v2"
)

func nodeStatusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show a build node's state: peers, Raft, log, builds, dropped messages, verdicts",
		UsageText: "pyrsia-build node status --node HOST:PORT [--json]",
		Description: `Reads GET /status of the build node at --node and shows it for a person:
its peers, its Raft role and term and the leader, its log's size and final
checkpoint, the builds in flight, the gossip messages it dropped by reason,
the peers and specs it refused, and its recent verdicts. --json prints the
node's answer as it is (the /status JSON the README documents).

Examples:
   pyrsia-build node status --node 127.0.0.1:7881
   pyrsia-build node status --node 127.0.0.1:7881 --json | jq .dropped`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "node", Required: true, Usage: "the build node's API `HOST:PORT` (or URL)"},
			&cli.BoolFlag{Name: "json", Usage: "print the /status JSON as the node sent it"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return inputErr(fmt.Errorf("node status takes no arguments, got %q", c.Args().First()), "run 'pyrsia-build node status --help' for usage")
			}
			base, err := nodeURL(c.String("node"))
			if err != nil {
				return err
			}
			var raw json.RawMessage
			if err := nodeCall(c.Context, http.MethodGet, base+"/status", nil, &raw); err != nil {
				return err
			}
			if c.Bool("json") {
				_, err := c.App.Writer.Write(append(raw, '\n'))
				return err
			}
			if regularStatus(c.App.Writer, raw) { // see regularcmd.go
				return nil
			}
			var st node.Status
			if err := json.Unmarshal(raw, &st); err != nil {
				return failed(fmt.Errorf("the node at %s answered /status with something else than a node status: %w", base, err))
			}
			printNodeStatus(c.App.Writer, &st)
			return nil
		},
	}
}

func printNodeStatus(w io.Writer, st *node.Status) {
	none := func(s []string) string {
		if len(s) == 0 {
			return "none"
		}
		return strings.Join(s, ", ")
	}
	fmt.Fprintf(w, "node      %s (peer %s)\n", st.Name, st.PeerID)
	fmt.Fprintf(w, "policy    %s\n", st.Policy)
	for _, a := range st.Addrs {
		fmt.Fprintf(w, "listens   %s\n", a)
	}
	fmt.Fprintf(w, "peers     %d connected: %s\n", len(st.Peers), none(st.Peers))
	leader := st.Raft.Leader
	if leader == "" {
		leader = "none"
	}
	fmt.Fprintf(w, "raft      %s, term %s, leader %s\n", strings.ToLower(st.Raft.State), st.Raft.Term, leader)
	fmt.Fprintf(w, "log       %d entries\n", st.LogSize)
	if st.FinalRoot != "" {
		fmt.Fprintf(w, "final     checkpoint of %d entries, root %s\n", st.Final, st.FinalRoot)
	} else {
		fmt.Fprintf(w, "final     no final checkpoint yet\n")
	}
	fmt.Fprintf(w, "building  %s\n", none(st.Building))
	var total uint64
	reasons := make([]string, 0, len(st.Dropped))
	for r, n := range st.Dropped {
		total += n
		reasons = append(reasons, r)
	}
	slices.Sort(reasons)
	fmt.Fprintf(w, "dropped   %d gossip messages\n", total)
	for _, r := range reasons {
		fmt.Fprintf(w, "          %6d  %s\n", st.Dropped[r], r)
	}
	fmt.Fprintf(w, "refused   %d peers outside the policy, %d specs\n", st.RefusedPeers, st.Refused)
	if len(st.Verdicts) == 0 {
		fmt.Fprintf(w, "verdicts  none recent\n")
	}
	for _, v := range st.Verdicts {
		fmt.Fprintf(w, "verdict   %s\n", v)
	}
}
