package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"regexp"
	"time"

	clog "github.com/containerd/log"
	"github.com/pyrsia/pyrsia-build/builder"
	"github.com/pyrsia/pyrsia-build/node"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/pyrsia/pyrsia-build/quorum"
	"github.com/urfave/cli/v2"
)

var nodeNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9.-]{0,62}$`)

func nodeCommand() *cli.Command {
	return &cli.Command{
		Name:      "node",
		Usage:     "run a build node of a network, or make its keys",
		UsageText: "pyrsia-build node init --data DIR --name NAME\n   pyrsia-build node --build --data DIR --policy POLICY [--first-policy POLICY] [--listen MULTIADDR...] [--api HOST:PORT] [--bootstrap MULTIADDR...] [--buildkit-addr ADDR] [--images DIR] [--max-builds N] [--deadline D] [--allow-source-host HOST[:PORT]...] [--log-level LEVEL] [--log-format text|json]\n   pyrsia-build node --config FILE [FLAGS...]\n   pyrsia-build node status --node HOST:PORT [--json]",
		Description: `Runs a build node of the network in --policy, with its keys and state in
--data (made by 'pyrsia-build node init'):

   DATA/keys/      the node's keys
   DATA/log/       its replica of the network's log (C2SP tlog-tiles)
   DATA/raft/      Raft's log and snapshots (the order of appends)
   DATA/cosigner/  the last checkpoint it cosigned
   DATA/builds/    its builds, by input digest (reused: a built input is not rebuilt)
   DATA/verdicts/  the verdicts of requests without a quorum
   DATA/buildkit/  its private buildkitd, when --buildkit-addr is not given

The node talks only to the policy's build nodes (libp2p, TCP and QUIC, Noise):
it builds every request it sees with its own buildkitd and gossips a signed
vote; once a majority agrees, the Raft leader appends the entry, every node
checks it against the policy and applies it to its own log, and the nodes
cosign the checkpoint. The local HTTP API (--api) takes requests from
'pyrsia-build publish' and 'pyrsia-build status' and serves /healthz,
/status, /metrics (Prometheus), /v1/... and the log under /log/.

A spec from the network may fetch its source only from the public internet:
its URLs may not name localhost or an address that is not public, and every
connection is checked again after the name is resolved. --allow-source-host
lets an internal git server or a local mirror through: HOST:PORT allows that
host at that port only (a name whatever it resolves to, an address whatever
name leads to it); HOST allows every port of it. Nothing else is relaxed.

--config FILE reads every setting from a YAML file (data, policy, listen,
bootstrap, api, buildkitAddr, images, maxBuilds, deadline, allowSourceHosts,
logLevel, logFormat, build; relative paths are relative to the file); a flag
given on the command line overrides its field. Unknown fields are errors.

The cosign key's password comes from COSIGN_PASSWORD. SIGINT or SIGTERM stops
the node cleanly (builds are cancelled, Raft leadership is handed over, the
log is closed). SIGHUP re-reads the log level from the --config file; the
other settings take effect at the next start. Logs go to standard error.
deploy/ runs a build node as a systemd service (README: "Running a build
node as a service").

Examples:
   pyrsia-build node --build --data nodes/a --policy policy.json --api 127.0.0.1:7881 \
       --listen /ip4/127.0.0.1/tcp/4001 --images ~/.cache/pyrsia-build/images
   pyrsia-build node --build --data nodes/b --policy policy.json --api 127.0.0.1:7882 \
       --listen /ip4/127.0.0.1/tcp/4002 --bootstrap /ip4/127.0.0.1/tcp/4001/p2p/12D3Koo...
   pyrsia-build node --config /etc/pyrsia-build/node.yaml --log-level debug`,
		Subcommands: []*cli.Command{
			nodeInitCommand(),
			nodeStatusCommand(),
		},
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "build", Usage: "run as a build node (without it: a regular node)"},
			&cli.StringFlag{Name: "data", Usage: "the node's data `DIR`"},
			&cli.StringFlag{Name: "policy", Usage: "the network policy `FILE`"},
			&cli.StringFlag{Name: "first-policy", Usage: "the network's first policy `FILE`, for a node a policy change added (default: --policy)"},
			&cli.StringSliceFlag{Name: "listen", Usage: "libp2p listen `MULTIADDR` (repeatable; default TCP and QUIC on 127.0.0.1, any port)"},
			&cli.StringFlag{Name: "api", Value: "127.0.0.1:7888", Usage: "the local HTTP API's `HOST:PORT` (empty: none)"},
			&cli.StringSliceFlag{Name: "bootstrap", Usage: "a peer to connect to, `MULTIADDR` ending in /p2p/<peer id> (repeatable)"},
			&cli.StringFlag{Name: "buildkit-addr", EnvVars: []string{"BUILDKIT_HOST"}, Usage: "use the buildkitd at `ADDR` instead of starting one"},
			&cli.StringFlag{Name: "images", Value: "images", Usage: "builder image store `DIR` (OCI layouts by name)"},
			&cli.DurationFlag{Name: "deadline", Value: 10 * time.Minute, Usage: "how long a request waits for a quorum before its verdict, as a `DURATION`"},
			&cli.StringSliceFlag{Name: "allow-source-host", Usage: "let specs fetch their source from `HOST[:PORT]` although it is not a public host: an internal git server, a local mirror (repeatable; HOST alone allows every port)"},
			&cli.IntFlag{Name: "max-builds", Value: 2, Usage: "how many builds run at once, `N`"},
			&cli.StringFlag{Name: "log-level", Value: "info", Usage: "`LEVEL` of the logs: debug, info, warn or error"},
			&cli.StringFlag{Name: "log-format", Value: "text", Usage: "`FORMAT` of the logs on standard error: text or json"},
			&cli.StringFlag{Name: "config", Usage: "read the settings from the YAML `FILE` (deploy/node.example.yaml explains a build node's fields, deploy/regular.example.yaml a regular node's); flags override it"},
		},
		Action: nodeRun,
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

// nodeSettings are the settings of `node`: the flags over the --config
// file over the flags' defaults.
type nodeSettings struct {
	build                    bool
	data, policy, api        string
	firstPolicy              string
	listen, bootstrap, allow []string
	buildkitAddr, images     string
	maxBuilds                int
	deadline                 time.Duration
	logLevel                 slog.Level
	logFormat                string
	level                    *slog.LevelVar // the logger's level: logLevel, then what a reload reads
}

func readNodeSettings(c *cli.Context) (*nodeSettings, error) {
	cfg := &node.Config{}
	if f := c.String("config"); f != "" {
		var err error
		if cfg, err = node.LoadConfig(c.Context, f); err != nil {
			return nil, inputErr(err, "deploy/node.example.yaml shows and explains every field")
		}
	}
	str := func(flag, field string) string { return flagOrField(c, flag, field) }
	list := func(flag string, field []string) []string { return flagsOrField(c, flag, field) }
	s := &nodeSettings{
		build: c.Bool("build"), data: str("data", cfg.Data), policy: str("policy", cfg.Policy), firstPolicy: str("first-policy", cfg.FirstPolicy),
		listen: list("listen", cfg.Listen), bootstrap: list("bootstrap", cfg.Bootstrap), allow: list("allow-source-host", cfg.AllowSourceHosts),
		buildkitAddr: str("buildkit-addr", cfg.BuildkitAddr), images: str("images", cfg.Images),
		maxBuilds: c.Int("max-builds"), deadline: c.Duration("deadline"), logFormat: str("log-format", cfg.LogFormat),
	}
	if !c.IsSet("build") && cfg.Build != nil {
		s.build = *cfg.Build
	}
	s.api = c.String("api")
	if !c.IsSet("api") && cfg.API != nil {
		s.api = *cfg.API
	}
	if !c.IsSet("max-builds") && cfg.MaxBuilds > 0 {
		s.maxBuilds = cfg.MaxBuilds
	}
	if !c.IsSet("deadline") && cfg.Deadline > 0 {
		s.deadline = cfg.Deadline
	}
	var err error
	if s.logLevel, err = node.ParseLogLevel(str("log-level", cfg.LogLevel)); err != nil {
		return nil, inputErr(fmt.Errorf("--log-level %w", err))
	}
	switch {
	case s.logFormat != "text" && s.logFormat != "json":
		return nil, inputErr(fmt.Errorf("--log-format %q: want text or json", s.logFormat))
	case s.maxBuilds <= 0:
		return nil, inputErr(fmt.Errorf("--max-builds %d: want at least 1", s.maxBuilds))
	case s.deadline <= 0:
		return nil, inputErr(fmt.Errorf("--deadline %s: want a positive duration", s.deadline))
	case !s.build:
		return nil, inputErr(errors.New("only build nodes can run yet: pass --build (or build: true in the --config file)"), "run 'pyrsia-build node --help' for usage")
	case s.data == "" || s.policy == "":
		return nil, inputErr(errors.New("node --build needs --data and --policy (flags or --config fields data: and policy:)"), "run 'pyrsia-build node --help' for usage")
	}
	if err := (builder.RemoteOptions{AllowHosts: s.allow}).Validate(); err != nil {
		return nil, inputErr(fmt.Errorf("--allow-source-host: %w", err))
	}
	return s, nil
}

func (s *nodeSettings) logger(w io.Writer) *slog.Logger {
	s.level = new(slog.LevelVar)
	s.level.Set(s.logLevel)
	o := &slog.HandlerOptions{Level: s.level}
	if s.logFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, o))
	}
	return slog.New(slog.NewTextHandler(w, o))
}

func nodeRun(c *cli.Context) error {
	if c.NArg() > 0 {
		return inputErr(fmt.Errorf("node takes no arguments, got %q", c.Args().First()), "run 'pyrsia-build node --help' for usage")
	}
	s, err := readNodeSettings(c)
	if err != nil {
		return err
	}
	allow := s.allow
	clog.SetLevel("error")
	data := s.data
	p, err := policy.Load(s.policy)
	if err != nil {
		return inputErr(err)
	}
	var first *policy.Policy
	if s.firstPolicy != "" {
		if first, err = policy.Load(s.firstPolicy); err != nil {
			return inputErr(err)
		}
	}
	pw, err := readPassword(c.Context, "Enter password for the node's cosign key: ", false, c.App.ErrWriter)
	if err != nil {
		return err
	}
	keys, err := node.LoadKeys(data, pw)
	if err != nil {
		return inputErr(err)
	}
	boot, err := quorum.ParseBootstrap(s.bootstrap)
	if err != nil {
		return inputErr(err)
	}
	logger := s.logger(c.App.ErrWriter).With("node", keys.Name)
	defer reloadOnHangup(c.Context, c.String("config"), c.IsSet("log-level"), s.level, logger)()
	if len(allow) > 0 {
		logger.Info("specs may fetch their source from these hosts that are not public", "allow-source-host", allow)
	}
	addr := s.buildkitAddr
	if addr == "" {
		d, err := builder.StartDaemon(c.Context, builder.DaemonOptions{Dir: filepath.Join(data, "buildkit")})
		if errors.Is(err, builder.ErrNoBuildkitd) {
			return inputErr(err, "or point --buildkit-addr at a running buildkitd")
		}
		if err != nil {
			return err
		}
		defer d.Stop()
		addr = d.Addr
		logger.Info("started a private buildkitd", "addr", addr)
	}
	bk, err := builder.NewBuildKit(c.Context, addr)
	if err != nil {
		return err
	}
	defer bk.Close()
	bk.ProgressMode = "quiet"
	var api net.Listener
	if a := s.api; a != "" {
		if api, err = net.Listen("tcp", a); err != nil {
			return inputErr(fmt.Errorf("--api %s: %w", a, err), "choose another --api, or stop what listens there")
		}
		if ta, ok := api.Addr().(*net.TCPAddr); ok && !ta.IP.IsLoopback() {
			logger.Warn("the API listens on a non-loopback address: anyone who can reach it sees the node's status and log, and anyone with its token (DATA/"+node.APITokenFile+") can request builds under this node's key", "api", api.Addr().String())
		}
	}
	n, err := node.New(c.Context, node.Options{
		Data: data, Policy: p, FirstPolicy: first, Keys: keys, Listen: s.listen, Bootstrap: boot, API: api,
		Builder:          &node.BuildKitBuilder{BuildKit: bk, Images: s.images, AllowHosts: allow},
		AllowSourceHosts: allow, Deadline: s.deadline, MaxBuilds: s.maxBuilds, Logger: logger,
		Serving: servingOptions(c),
	})
	if err != nil {
		if api != nil {
			api.Close()
		}
		return inputErr(err)
	}
	for _, a := range n.Host().Addrs() {
		fmt.Fprintf(c.App.ErrWriter, "%s listening on %s/p2p/%s\n", keys.Name, a, n.Host().ID())
	}
	if api != nil {
		fmt.Fprintf(c.App.ErrWriter, "%s API on http://%s\n", keys.Name, api.Addr())
	}
	return n.Run(c.Context)
}
