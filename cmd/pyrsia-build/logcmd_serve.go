package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/pyrsia/pyrsia-build/internal/httpserver"
	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/index"
	"github.com/pyrsia/pyrsia-build/publish/tlog"
	"github.com/urfave/cli/v2"
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
among them. At start, and then every --publish-interval when the log has grown,
it signs a checkpoint with --key and has every --cosigner cosign it.

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
			&cli.DurationFlag{Name: "publish-interval", Value: time.Second, Usage: "how often to check for new entries and publish a checkpoint, as a `DURATION`"},
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
			idx, visit, flush, err := indexer(logger)
			if err != nil {
				return err
			}
			started := time.Now()
			l, err := tlog.Open(c.Context, tlog.Options{Dir: dir, Origin: origin, Signer: signer, Logger: logger, Visit: visit})
			if err != nil {
				return openLogErr(dir, err)
			}
			if err := flush(); err != nil {
				l.Close()
				return err
			}
			logger.InfoContext(c.Context, "log replayed and indexed", "entries", l.Size(), "indexed", idx.Len(), "took", time.Since(started).Round(time.Millisecond))
			defer l.Close()
			if err := checkLogKey(l, dir, verifier); err != nil {
				return err
			}
			ln, err := net.Listen("tcp", c.String("addr"))
			if err != nil {
				return inputErr(fmt.Errorf("listening on %s: %w", c.String("addr"), err),
					"choose another --addr, or stop what listens there")
			}
			err = serveLog(c.Context, ln, l, serveOptions{Cosigners: cosigners, Interval: interval, Logger: logger, Index: idx})
			if cerr := l.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("closing log: %w", cerr)
			}
			return err
		},
	}
}

// serveOptions configure serveLog.
type serveOptions struct {
	Cosigners []localCosigner
	// Interval is how often the log's size is checked.
	Interval time.Duration
	Logger   *slog.Logger
	// Index, if set, answers /lookup/ requests.
	Index *index.Index
}

// indexer returns an index and the tlog Visit function that fills it as
// the log is replayed at start, in batches; flush adds the last batch.
// Entries that are not publish entries (appended with --raw) are skipped.
func indexer(log *slog.Logger) (idx *index.Index, visit func(uint64, []byte) error, flush func() error, err error) {
	idx, err = index.New()
	if err != nil {
		return nil, nil, nil, err
	}
	var batch []index.Item
	flush = func() error {
		err := idx.AddBatch(batch)
		batch = batch[:0]
		return err
	}
	visit = func(i uint64, data []byte) error {
		e, err := publish.ParseEntry(data)
		if err != nil {
			log.Debug("not indexing a log entry that is not a publish entry", "index", i, "err", err)
			return nil
		}
		batch = append(batch, index.Item{LogIndex: i, Entry: e})
		if len(batch) == 4096 {
			return flush()
		}
		return nil
	}
	return idx, visit, flush, nil
}

// serveLog serves l on ln until ctx is done, then shuts the server down
// gracefully; it publishes a cosigned checkpoint at start and whenever the
// log has grown, checked every opts.Interval. The caller closes l.
func serveLog(ctx context.Context, ln net.Listener, l *tlog.Log, opts serveOptions) error {
	log := opts.Logger
	handler := l.Handler()
	if opts.Index != nil {
		mux := http.NewServeMux()
		mux.Handle("/", handler)
		mux.Handle("/lookup/", opts.Index.Handler())
		handler = mux
	}
	publish := func(ctx context.Context) {
		if cp := l.Checkpoint(); cp != nil && cp.Size == l.Size() {
			return
		}
		cp, err := l.Publish(ctx)
		if err != nil && ctx.Err() != nil {
			return // shutting down
		}
		if err != nil {
			log.ErrorContext(ctx, "publishing checkpoint", "err", err)
			return
		}
		names, err := cosignCheckpoint(ctx, l, cp, opts.Cosigners)
		log.InfoContext(ctx, "published checkpoint", "size", cp.Size, "cosigned_by", names, "cosigners", len(opts.Cosigners))
		if err != nil {
			log.ErrorContext(ctx, "checkpoint is not cosigned by every cosigner", "size", cp.Size, "err", err)
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		log.InfoContext(gctx, "serving log", "addr", ln.Addr().String(), "origin", l.Origin(), "size", l.Size())
		return httpserver.Serve(gctx, ln, handler, httpserver.Options{Logger: log})
	})
	g.Go(func() error {
		publish(gctx)
		t := time.NewTicker(opts.Interval)
		defer t.Stop()
		for {
			select {
			case <-gctx.Done():
				log.InfoContext(gctx, "shutting down")
				return nil
			case <-t.C:
				publish(gctx)
			}
		}
	})
	return g.Wait()
}
