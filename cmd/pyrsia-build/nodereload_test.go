package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSystemdReloadLogLevel(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tt := range []struct {
		name    string
		file    string
		flagSet bool
		want    slog.Level
		err     string
	}{
		{"debug", write("debug.yaml", "build: true\nlogLevel: debug\n"), false, slog.LevelDebug, ""},
		{"no field: the default", write("none.yaml", "build: true\n"), false, slog.LevelInfo, ""},
		{"bad level", write("bad.yaml", "logLevel: loud\n"), false, slog.LevelWarn, `bad.yaml:1: logLevel: "loud": want debug, info, warn or error`},
		{"unknown field", write("unknown.yaml", "logLevle: debug\n"), false, slog.LevelWarn, "logLevle"},
		{"flag wins", write("flag.yaml", "logLevel: debug\n"), true, slog.LevelWarn, "--log-level was given"},
		{"no file", "", false, slog.LevelWarn, "without a --config file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var level slog.LevelVar
			level.Set(slog.LevelWarn)
			err := reloadLogLevel(context.Background(), tt.file, tt.flagSet, &level)
			if tt.err == "" && err != nil || tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)) {
				t.Errorf("error: got %v, want %q", err, tt.err)
			}
			if got := level.Level(); got != tt.want {
				t.Errorf("level: got %s, want %s", got, tt.want)
			}
		})
	}
}

// TestSystemdReloadSignal sends this process SIGHUP, as systemctl reload
// does: the level changes, and the process lives on.
func TestSystemdReloadSignal(t *testing.T) {
	file := filepath.Join(t.TempDir(), "node.yaml")
	if err := os.WriteFile(file, []byte("logLevel: error\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var level slog.LevelVar
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stop := reloadOnHangup(ctx, file, false, &level, logger)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for level.Level() != slog.LevelError {
		select {
		case <-ctx.Done():
			stop()
			t.Fatalf("the level is still %s after SIGHUP; logs:\n%s", level.Level(), logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	stop()
	if !strings.Contains(logs.String(), "reloaded") || !strings.Contains(logs.String(), "log-level=ERROR") {
		t.Errorf("logs: %q, want the reload named with its level", logs.String())
	}
}

// TestRegularReloadSignal: a regular node's logger follows SIGHUP as a
// build node's does: its level comes from its settings, and a reload reads
// a regular node's --config file (no build: field) into it, so messages
// below the new level stop.
func TestRegularReloadSignal(t *testing.T) {
	file := filepath.Join(t.TempDir(), "regular.yaml")
	if err := os.WriteFile(file, []byte("data: d\npolicy: p.json\nlogUrl: http://127.0.0.1:1/log/\nlogLevel: error\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger, level, err := regularLogger(&logs, &regularSettings{logLevel: "debug", logFormat: "text"})
	if err != nil {
		t.Fatal(err)
	}
	logger.Debug("before the reload")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	stop := reloadOnHangup(ctx, file, false, level, logger)
	if err := syscall.Kill(os.Getpid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for level.Level() != slog.LevelError {
		select {
		case <-ctx.Done():
			stop()
			t.Fatalf("the level is still %s after SIGHUP; logs:\n%s", level.Level(), logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	stop()
	logger.Warn("after the reload")
	if s := logs.String(); !strings.Contains(s, "before the reload") || strings.Contains(s, "after the reload") {
		t.Errorf("logs %q: want the debug message before the reload and no warning after it (the reload itself logs at info, below error)", s)
	}
	if _, _, err := regularLogger(&logs, &regularSettings{logLevel: "debug", logFormat: "xml"}); err == nil || !strings.Contains(err.Error(), `--log-format "xml"`) {
		t.Errorf("bad format: got %v", err)
	}
}
