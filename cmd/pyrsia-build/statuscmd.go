package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/pyrsia/pyrsia-build/node"
	"github.com/urfave/cli/v2"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show what became of a publish request: its entry, or its verdict",
		UsageText: "pyrsia-build status --node HOST:PORT INPUT|COORDINATE",
		Description: `Asks the build node at --node about an input digest (sha256:...) or a
coordinate (name:tag, groupId:artifactId:version): the published entry (its
log index, subjects and dissenting nodes), or the last verdict of a request
that found no quorum.

Exit codes: 0 published, 1 no quorum (the verdict is printed) or still
pending, 2 unknown or usage error.

Examples:
   pyrsia-build status --node 127.0.0.1:7881 sha256:4f2c...
   pyrsia-build status --node 127.0.0.1:7881 org.example.hello:hello-app:1.0.0`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "node", Required: true, Usage: "the build node's API `HOST:PORT` (or URL)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return inputErr(fmt.Errorf("status takes one INPUT or COORDINATE, got %d arguments", c.NArg()), "run 'pyrsia-build status --help' for usage")
			}
			base, err := nodeURL(c.String("node"))
			if err != nil {
				return err
			}
			what := c.Args().First()
			var st node.RoundStatus
			if err := nodeCall(c.Context, http.MethodGet, base+"/v1/status/"+url.PathEscape(what), nil, &st); err != nil {
				return err
			}
			w := c.App.Writer
			if st.InputDigest != "" {
				fmt.Fprintf(w, "input     %s\n", st.InputDigest)
			}
			fmt.Fprintf(w, "state     %s\n", st.State)
			if st.Index != nil {
				fmt.Fprintf(w, "entry     %d (%s %s)\n", *st.Index, st.Ecosystem, st.Coordinate)
				for _, s := range st.Subjects {
					fmt.Fprintf(w, "subject   %s  %s\n", s.Digest, s.Name)
				}
			}
			if len(st.Votes) > 0 {
				fmt.Fprintf(w, "votes     %s\n", strings.Join(st.Votes, ", "))
			}
			for n, files := range st.Dissent {
				if len(files) > 0 {
					fmt.Fprintf(w, "dissent   %s differs in %s\n", n, strings.Join(files, ", "))
				} else {
					fmt.Fprintf(w, "dissent   %s built other bytes\n", n)
				}
			}
			switch st.State {
			case "final", "published":
				return nil
			case "no-quorum":
				return failed(errors.New(st.Verdict.Text))
			case "pending":
				return failed(fmt.Errorf("%s is still being voted on", what))
			}
			return inputErr(fmt.Errorf("the node knows nothing of %s", what), "give the input digest 'pyrsia-build publish' printed, or a published coordinate")
		},
	}
}
