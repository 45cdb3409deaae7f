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
