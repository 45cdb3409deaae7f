// Command pyrsia-build builds, attests, publishes and verifies open-source
// artifacts on a network of independent build nodes.
//
// This package wires the other packages together; the logic lives in them.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/pyrsia/pyrsia-build/internal/cliargs"
	"github.com/urfave/cli/v2"
)

// Exit codes.
const (
	exitOK          = 0
	exitNotVerified = 1 // the evidence was read and does not hold
	exitInput       = 2 // usage error or bad input
)

// version is set with -ldflags "-X main.version=..." by release builds;
// otherwise it comes from the module's build info.
var version = ""

func main() { os.Exit(run(os.Args, os.Stdin, os.Stdout, os.Stderr)) }

// run is main without the exit, so tests can call it.
//
// SIGINT and SIGTERM cancel the context every command runs under: reads,
// verification and builds stop, servers shut down gracefully. A command
// stopped so exits 128+signal (130 for Ctrl-C); a second signal exits at
// once.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	var got atomic.Int32
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case s := <-sigs:
				n := int32(s.(syscall.Signal))
				if !got.CompareAndSwap(0, n) {
					fmt.Fprintf(stderr, "pyrsia-build: %s again: exiting now\n", sigName(n))
					os.Exit(128 + int(n))
				}
				cancel()
			}
		}
	}()
	app := newApp(stdin, stdout, stderr)
	err := runApp(ctx, app, args)
	if n := got.Load(); n != 0 && err != nil {
		fmt.Fprintf(stderr, "pyrsia-build: error: %s\npyrsia-build: hint: stopped by %s\n", err, sigName(n))
		return 128 + int(n)
	}
	if err == nil {
		return exitOK
	}
	return report(stderr, err)
}

func sigName(n int32) string {
	if syscall.Signal(n) == syscall.SIGTERM {
		return "SIGTERM"
	}
	return "SIGINT"
}

// runApp runs app on args, its flags moved before its operands: every
// command takes its flags before or after its operands.
func runApp(ctx context.Context, app *cli.App, args []string) error {
	if len(args) == 0 {
		return app.RunContext(ctx, args)
	}
	rest, err := cliargs.Reorder(app, args[1:])
	var me *cliargs.MissingValueError
	if errors.As(err, &me) {
		return inputErr(err, fmt.Sprintf("run '%s --help' for usage", strings.Join(append([]string{"pyrsia-build"}, me.Command...), " ")))
	}
	if err != nil {
		return inputErr(err)
	}
	return app.RunContext(ctx, append([]string{args[0]}, rest...))
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	app := &cli.App{
		Name:  "pyrsia-build",
		Usage: "trusted open-source artifacts, rebuilt and attested by independent build nodes",
		Description: `pyrsia-build signs in-toto attestations for build artifacts with cosign keys
and verifies them offline.

Quick start:
   pyrsia-build keygen                       # writes cosign.key and cosign.pub
   pyrsia-build attest --key cosign.key app.tar
   pyrsia-build verify --key cosign.pub app.tar

Exit codes: 0 ok, 1 verification failed, 2 usage error or bad input.`,
		Version:              buildVersion(),
		Reader:               stdin,
		Writer:               stdout,
		ErrWriter:            stderr,
		EnableBashCompletion: true,
		HideHelpCommand:      true,
		// App.Run must never exit the process by itself: run decides.
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError:   usageError,
		Commands: []*cli.Command{
			keygenCommand(),
			attestCommand(),
			verifyCommand(),
			logCommand(),
			buildCommand(),
			diffCommand(),
			imageCommand(),
			withRegular(nodeCommand()),
			networkCommand(),
			publishCommand(),
			statusCommand(),
			lockCommand(), compareCommand(),
			pullCommand(), fetchCommand(),
		},
	}
	for _, c := range app.Commands {
		c.OnUsageError = usageError
		c.HideHelpCommand = true
	}
	return app
}

func buildVersion() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			v += " " + s.Value
		}
	}
	return v + " " + bi.GoVersion
}

// cmdError is an error a person reads: a message, hints, an exit code.
type cmdError struct {
	code  int
	err   error
	hints []string
}

func (e *cmdError) Error() string { return e.err.Error() }
func (e *cmdError) Unwrap() error { return e.err }

// inputErr is bad input or usage: exit 2.
func inputErr(err error, hints ...string) error {
	return &cmdError{code: exitInput, err: err, hints: hints}
}

// failed is a verification that did not hold: exit 1.
func failed(err error, hints ...string) error {
	return &cmdError{code: exitNotVerified, err: err, hints: hints}
}

func usageError(c *cli.Context, err error, _ bool) error {
	// The command's path: its name and its parents' ("log append").
	var names []string
	for _, ctx := range c.Lineage() {
		if ctx.Command != nil && ctx.Command.Name != "" && ctx.Command.Name != c.App.Name {
			names = append([]string{ctx.Command.Name}, names...)
		}
	}
	return inputErr(err, fmt.Sprintf("run '%s --help' for usage", strings.Join(append([]string{"pyrsia-build"}, names...), " ")))
}

// report prints err the way a person should read it and returns the exit code.
func report(stderr io.Writer, err error) int {
	code := exitInput
	var hints []string
	var ce *cmdError
	if errors.As(err, &ce) {
		code, hints = ce.code, ce.hints
	} else if errors.Is(err, context.Canceled) {
		hints = []string{"interrupted"}
	}
	fmt.Fprintf(stderr, "pyrsia-build: error: %s\n", err)
	for _, h := range hints {
		fmt.Fprintf(stderr, "pyrsia-build: hint: %s\n", h)
	}
	return code
}
