package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/pyrsia/pyrsia-build/node"
)

// reloadOnHangup makes SIGHUP (systemctl reload) re-read the log level
// from the --config file configFile into level, until stop is called.
// Nothing else changes on a running node: every other setting takes
// effect at the next start, and the reload says so. Without a --config
// file, or with --log-level given (the flag wins, as at start), SIGHUP
// only logs that. A file that does not parse leaves the level as it was.
func reloadOnHangup(ctx context.Context, configFile string, flagSet bool, level *slog.LevelVar, logger *slog.Logger) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				before := level.Level()
				if err := reloadLogLevel(ctx, configFile, flagSet, level); err != nil {
					logger.ErrorContext(ctx, "reload: the log level stays "+before.String(), "err", err)
					continue
				}
				logger.InfoContext(ctx, "reloaded: only the log level changes on a running node; restart it for the other settings", "log-level", level.Level().String(), "was", before.String())
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		cancel()
		<-done
	}
}

// reloadLogLevel sets level from configFile's logLevel (the default, info,
// when the file has none); flagSet or no file leaves it as it is.
func reloadLogLevel(ctx context.Context, configFile string, flagSet bool, level *slog.LevelVar) error {
	switch {
	case flagSet:
		return fmt.Errorf("--log-level was given on the command line, which wins over the --config file")
	case configFile == "":
		return fmt.Errorf("the node runs without a --config file to read the log level from")
	}
	cfg, err := node.LoadConfig(ctx, configFile)
	if err != nil {
		return err
	}
	s := cfg.LogLevel
	if s == "" {
		s = "info"
	}
	l, err := node.ParseLogLevel(s)
	if err != nil {
		return fmt.Errorf("%s: logLevel %w", configFile, err)
	}
	level.Set(l)
	return nil
}
