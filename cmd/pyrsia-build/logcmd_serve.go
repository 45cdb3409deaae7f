package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/pyrsia/pyrsia-build/internal/httpserver"
	"github.com/pyrsia/pyrsia-build/publish/logservice"
	"github.com/pyrsia/pyrsia-build/publish/tlog"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	"github.com/urfave/cli/v2"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/sync/errgroup"
)

func logServeCommand() *cli.Command {
	return &cli.Command{
		Name:      "serve",
		Usage:     "serve the log over HTTP (C2SP tlog-tiles) and publish cosigned checkpoints",
		UsageText: "pyrsia-build log serve --dir DIR --origin ORIGIN --key LOG.note.key [--addr HOST:PORT] [--cosigner KEYFILE:STATEDIR ...] [--publish-interval D]",
		Description: `Opens the log in DIR and serves it over HTTP:

   GET /checkpoint                        the latest checkpoint (C2SP tlog-checkpoint)
   GET /tile/<L>/<N>[.p/<W>]              hash tiles (C2SP tlog-tiles)
   GET /tile/entries/<N>[.p/<W>]          entry bundles (C2SP tlog-tiles)
   GET /proof/inclusion/<index>?size=<S>  an inclusion proof, as JSON
   GET /proof/consistency/<old>/<new>     a consistency proof, as JSON

Any tlog-tiles client reads it, 'pyrsia-build log checkpoint|entry|proof --url'
among them. At start it signs a checkpoint with --key and has every --cosigner
cosign it; only a checkpoint cosigned by a majority of the --cosigner keys is
served (final). One that is not (cosigners refused) is tried again after
--publish-interval, doubling up to 30s.

Entries will reach a served log from the build network. For now the server
serves what is in DIR, and it holds DIR while it runs: stop it (Ctrl-C or
SIGTERM: it finishes the requests in flight and closes the log) before
'pyrsia-build log append' on DIR, and start it again after.

Logs go to standard error.

Examples:
   pyrsia-build log serve --dir log --origin example.org/log --key log.note.key
   pyrsia-build log serve --dir log --origin example.org/log --key log.note.key \
       --addr 0.0.0.0:8080 --cosigner node-a.note.key:state/node-a
   curl http://127.0.0.1:8080/checkpoint`,
		Flags: append(logWriterFlags(),
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8080", Usage: "listen on `HOST:PORT`"},
			&cli.DurationFlag{Name: "publish-interval", Value: time.Second, Usage: "how long to wait before cosigning a checkpoint that is not final again, as a `DURATION`"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return inputErr(fmt.Errorf("log serve takes no arguments, got %q", c.Args().First()),
					"run 'pyrsia-build log serve --help' for usage")
			}
			interval := c.Duration("publish-interval")
			if interval <= 0 {
				return inputErr(fmt.Errorf("--publish-interval %s must be positive", interval))
			}
			signer, verifier, cosigners, err := writerKeys(c)
			if err != nil {
				return err
			}
			dir, origin := c.String("dir"), c.String("origin")
			logger := slog.New(slog.NewTextHandler(c.App.ErrWriter, nil))
			var cs []logservice.Cosigner
			var cvs []note.Verifier
			for _, lc := range cosigners {
				cs = append(cs, lc.Cosigner)
				cvs = append(cvs, lc.verifier)
			}
			svc, err := logservice.Open(c.Context, logservice.Options{
				Log:           tlog.Options{Dir: dir, Origin: origin, Signer: signer, Logger: logger},
				Cosigners:     cs,
				Final:         logservice.CosignedBy(origin, verifier, cvs, witness.Threshold(len(cvs))),
				RetryInterval: interval,
				Logger:        logger,
			})
			if err != nil {
				return openLogErr(dir, err)
			}
			defer svc.Close()
			if err := checkLogKey(svc.Log(), dir, verifier); err != nil {
				return err
			}
			ln, err := net.Listen("tcp", c.String("addr"))
			if err != nil {
				return inputErr(fmt.Errorf("listening on %s: %w", c.String("addr"), err),
					"choose another --addr, or stop what listens there")
			}
			err = serveLog(c.Context, ln, svc, logger)
			if cerr := svc.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("closing log: %w", cerr)
			}
			return err
		},
	}
}

// serveLog serves svc on ln and publishes its checkpoints until ctx is
// done, then shuts the server down gracefully. The caller closes svc.
func serveLog(ctx context.Context, ln net.Listener, svc *logservice.Service, log *slog.Logger) error {
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		log.InfoContext(gctx, "serving log", "addr", ln.Addr().String(), "origin", svc.Log().Origin(), "size", svc.Log().Size())
		return httpserver.Serve(gctx, ln, svc.Handler(), httpserver.Options{Logger: log})
	})
	g.Go(func() error {
		err := svc.Run(gctx)
		log.InfoContext(gctx, "shutting down")
		return err
	})
	return g.Wait()
}
