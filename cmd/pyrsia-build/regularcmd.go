package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"

	"github.com/pyrsia/pyrsia-build/node"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/pyrsia/pyrsia-build/quorum"
	"github.com/urfave/cli/v2"
)

// withRegular makes `node` run a regular node when neither --build nor
// the --config file's build: true is given, and adds the serving flags.
func withRegular(cmd *cli.Command) *cli.Command {
	cmd.Usage = "run a build node or a regular node of a network, or make a build node's keys"
	cmd.UsageText += "\n   pyrsia-build node --data DIR --policy POLICY (--bootstrap MULTIADDR... | --log-url URL) [--http HOST:PORT] [--listen MULTIADDR...] [--store-max-bytes N]"
	cmd.Description += `

Without --build, the node is a regular node: the entry point of build tools.
It follows the log of the network in --policy (checkpoints and tiles from the
tlog-tiles mirror at --log-url, its --bootstrap peers and the policy's build
nodes over libp2p: the first that answers with what verifies),
takes only checkpoints that a majority of the build nodes cosigned and that
extend the one it verified last, indexes the published entries, and serves
them on --http (default ` + node.DefaultHTTP + `):

   /v2/        the OCI distribution API, pull side (docker, crane, skopeo)
   /maven2/    a Maven 2 repository (mvn, Gradle)
   /log/       the log as verified (checkpoint, tile/...), for other nodes
   /status     what it follows, its last checkpoint, a fork if it saw one
   /v1/...     publish (requests signed with 'pyrsia-build publish --key'
               are passed on to a build node), status and proof bundles

Content comes from the peers that provide it (a DHT of the network's own),
checked against its digest, kept in DATA/store (at most --store-max-bytes,
least recently used first out) and provided onward. A fork of the log stops
the following: both checkpoints are kept in DATA/follow/evidence and shown
in /status; what was verified before is still served, and the node does not
follow again until the evidence is moved away. DATA/keys/p2p.key is made at
the first start.

--config FILE works for a regular node too: a YAML file without build: true
(deploy/regular.example.yaml explains its fields: data, policy, listen,
bootstrap, http, logUrl, storeMaxBytes, logLevel, logFormat). A flag given
on the command line overrides the field; a build node's field (api,
images, ...) in it is an error naming the file, the line and the field.

A build node serves /v2/ and /maven2/ on its --api, from its store: the
published outputs it built are pinned there and provided to the network.

Examples (regular nodes):
   pyrsia-build node --data regular --policy policy.json \
       --bootstrap /ip4/127.0.0.1/tcp/4001/p2p/12D3Koo...
   pyrsia-build node --data regular --policy policy.json --log-url https://mirror.example/log/ --http 127.0.0.1:5000
   pyrsia-build node --config /etc/pyrsia-build/regular.yaml`
	cmd.Flags = append(cmd.Flags,
		&cli.StringFlag{Name: "http", Value: node.DefaultHTTP, Usage: "a regular node's HTTP `HOST:PORT` for build tools (empty: none)"},
		&cli.StringFlag{Name: "log-url", Usage: "a regular node reads the log from the tlog-tiles mirror at `URL` (before its peers)"},
		&cli.Int64Flag{Name: "store-max-bytes", Value: node.DefaultStoreBytes, Usage: "bound the node's blob store to `N` bytes"},
	)
	build := cmd.Action
	cmd.Action = func(c *cli.Context) error {
		if c.NArg() > 0 {
			return build(c) // its own check names the argument
		}
		cfg := &node.Config{}
		if f := c.String("config"); f != "" {
			var err error
			if cfg, err = node.LoadConfig(c.Context, f); err != nil {
				return inputErr(err, "deploy/regular.example.yaml (a regular node) and deploy/node.example.yaml (a build node) show and explain every field")
			}
		}
		isBuild := c.Bool("build")
		if !c.IsSet("build") && cfg.Build != nil {
			isBuild = *cfg.Build
		}
		if isBuild {
			if err := cfg.CheckKind(true); err != nil {
				return inputErr(err, "deploy/node.example.yaml shows the fields of a build node")
			}
			return build(c)
		}
		return regularRun(c, cfg)
	}
	return cmd
}

// flagOrField is the value of flag if it was given or the --config
// file's field is unset (""), else the field's.
func flagOrField(c *cli.Context, flag, field string) string {
	if c.IsSet(flag) || field == "" {
		return c.String(flag)
	}
	return field
}

// flagsOrField is flagOrField for a repeatable flag and a list field.
func flagsOrField(c *cli.Context, flag string, field []string) []string {
	if c.IsSet(flag) || field == nil {
		return c.StringSlice(flag)
	}
	return field
}

// regularSettings are a regular node's settings: the flags over the
// --config file over the flags' defaults.
type regularSettings struct {
	data, policy, http, logURL string
	listen, bootstrap          []string
	storeMaxBytes              int64
	logLevel, logFormat        string
}

func readRegularSettings(c *cli.Context, cfg *node.Config) (*regularSettings, error) {
	if err := cfg.CheckKind(false); err != nil {
		return nil, inputErr(err, "deploy/regular.example.yaml shows the fields of a regular node; add build: true for a build node")
	}
	str := func(flag, field string) string { return flagOrField(c, flag, field) }
	list := func(flag string, field []string) []string { return flagsOrField(c, flag, field) }
	s := &regularSettings{
		data: str("data", cfg.Data), policy: str("policy", cfg.Policy), logURL: str("log-url", cfg.LogURL),
		listen: list("listen", cfg.Listen), bootstrap: list("bootstrap", cfg.Bootstrap),
		logLevel: str("log-level", cfg.LogLevel), logFormat: str("log-format", cfg.LogFormat),
		http: c.String("http"), storeMaxBytes: c.Int64("store-max-bytes"),
	}
	if !c.IsSet("http") && cfg.HTTP != nil {
		s.http = *cfg.HTTP
	}
	if !c.IsSet("store-max-bytes") && cfg.StoreMaxBytes > 0 {
		s.storeMaxBytes = cfg.StoreMaxBytes
	}
	switch {
	case s.data == "" || s.policy == "":
		return nil, inputErr(errors.New("node needs --data and --policy (flags or --config fields data: and policy:; and --build for a build node)"), "run 'pyrsia-build node --help' for usage")
	case c.IsSet("api"):
		return nil, inputErr(errors.New("--api is a build node's: a regular node serves build tools and its API on --http"), "pass --build for a build node, or --http for a regular node")
	case s.storeMaxBytes <= 0:
		return nil, inputErr(fmt.Errorf("--store-max-bytes %d: want a positive number of bytes", s.storeMaxBytes))
	case s.logURL == "" && len(s.bootstrap) == 0:
		return nil, inputErr(errors.New("a regular node reads the log from its --bootstrap peers or from --log-url (fields bootstrap: and logUrl: of --config): give one"),
			"e.g. --bootstrap /ip4/127.0.0.1/tcp/4001/p2p/<a build node's peer id>, as a build node prints at its start")
	}
	return s, nil
}

// servingOptions are the serving options of a build node.
func servingOptions(c *cli.Context) node.ServingOptions {
	return node.ServingOptions{MaxStoreBytes: c.Int64("store-max-bytes"), AdmitPeers: true}
}

// regularLogger is the logger of a regular node's settings, with its
// level in a LevelVar that a SIGHUP reload sets (as a build node's).
func regularLogger(w io.Writer, s *regularSettings) (*slog.Logger, *slog.LevelVar, error) {
	l, err := node.ParseLogLevel(s.logLevel)
	if err != nil {
		return nil, nil, inputErr(fmt.Errorf("--log-level %w", err))
	}
	level := new(slog.LevelVar)
	level.Set(l)
	ho := &slog.HandlerOptions{Level: level}
	switch s.logFormat {
	case "text":
		return slog.New(slog.NewTextHandler(w, ho)), level, nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, ho)), level, nil
	}
	return nil, nil, inputErr(fmt.Errorf("--log-format %q: want text or json", s.logFormat))
}

func regularRun(c *cli.Context, cfg *node.Config) error {
	s, err := readRegularSettings(c, cfg)
	if err != nil {
		return err
	}
	logger, level, err := regularLogger(c.App.ErrWriter, s)
	if err != nil {
		return err
	}
	defer reloadOnHangup(c.Context, c.String("config"), c.IsSet("log-level"), level, logger)()
	p, err := policy.Load(s.policy)
	if err != nil {
		return inputErr(err)
	}
	boot, err := quorum.ParseBootstrap(s.bootstrap)
	if err != nil {
		return inputErr(err)
	}
	var ln net.Listener
	if a := s.http; a != "" {
		if ln, err = net.Listen("tcp", a); err != nil {
			return inputErr(fmt.Errorf("--http %s: %w", a, err), "choose another --http, or stop what listens there")
		}
	}
	r, err := node.NewRegular(c.Context, node.RegularOptions{
		Data: s.data, Policy: p, Listen: s.listen, Bootstrap: boot, LogURL: s.logURL, HTTP: ln,
		Serving: node.ServingOptions{MaxStoreBytes: s.storeMaxBytes}, Logger: logger,
	})
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return inputErr(err)
	}
	for _, a := range r.Host().Addrs() {
		fmt.Fprintf(c.App.ErrWriter, "regular node listening on %s/p2p/%s\n", a, r.Host().ID())
	}
	if ln != nil {
		fmt.Fprintf(c.App.ErrWriter, "regular node serving on http://%s (/v2/, /maven2/, /status)\n", ln.Addr())
	}
	return r.Run(c.Context)
}

// regularStatus prints raw, the /status of a node, if it is a regular
// node's; it reports whether it was.
func regularStatus(w io.Writer, raw []byte) bool {
	var st node.RegularStatus
	if json.Unmarshal(raw, &st) != nil || st.Kind != "regular" {
		return false
	}
	none := func(s []string) string {
		if len(s) == 0 {
			return "none"
		}
		return strings.Join(s, ", ")
	}
	fmt.Fprintf(w, "node      regular (peer %s)\n", st.PeerID)
	fmt.Fprintf(w, "policy    %s\n", st.Policy)
	for _, a := range st.Addrs {
		fmt.Fprintf(w, "listens   %s\n", a)
	}
	fmt.Fprintf(w, "peers     %d build nodes connected: %s; %d other peers\n", len(st.Peers), none(st.Peers), st.OtherPeers)
	fmt.Fprintf(w, "follows   %s\n", st.Source)
	if st.Checkpoint != "" {
		fmt.Fprintf(w, "verified  final checkpoint of %d entries, cosigned by %s\n", st.Final, none(st.Cosigners))
	} else {
		fmt.Fprintf(w, "verified  no checkpoint yet\n")
	}
	fmt.Fprintf(w, "indexed   %d entries\n", st.Indexed)
	if st.LastError != "" {
		fmt.Fprintf(w, "error     %s\n", st.LastError)
	}
	if st.Stopped != nil {
		kind := "a checkpoint the policy refuses"
		if st.Stopped.Fork {
			kind = "a FORK of the log"
		}
		fmt.Fprintf(w, "STOPPED   following, on %s: %s\n          evidence in %s\n", kind, st.Stopped.Reason, st.Stopped.Evidence)
	}
	for _, s := range st.Skipped {
		fmt.Fprintf(w, "skipped   entry %s\n", s)
	}
	max := "unbounded"
	if st.Store.MaxBytes > 0 {
		max = fmt.Sprintf("of %d", st.Store.MaxBytes)
	}
	fmt.Fprintf(w, "store     %d blobs, %d bytes %s, %d evicted\n", st.Store.Blobs, st.Store.Bytes, max, st.Store.Evictions)
	fmt.Fprintf(w, "exchange  %d bytes fetched from peers, %d served to them\n", st.Exchange.Fetched, st.Exchange.Served)
	return true
}
