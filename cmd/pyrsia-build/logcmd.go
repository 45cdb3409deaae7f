package main

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/pyrsia/pyrsia-build/publish/tlog"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	"github.com/urfave/cli/v2"
	"golang.org/x/mod/sumdb/note"
)

// logCommand is `pyrsia-build log`: the transparency log's keys, writers
// (append, serve) and readers (checkpoint, entry, proof, consistency).
func logCommand() *cli.Command {
	cmd := &cli.Command{
		Name:      "log",
		Usage:     "run, append to and read the transparency log",
		UsageText: "pyrsia-build log COMMAND [options] [arguments...]",
		Description: `The transparency log records every published artifact as an entry in an RFC 6962
Merkle tree, stored and served as C2SP tlog-tiles. Its checkpoints are signed
notes (C2SP tlog-checkpoint) signed by the log's key and cosigned by the build
nodes (C2SP tlog-cosignature); a checkpoint is final once a majority cosigned.

Writers work on the log folder (--dir); only one process may hold it at a time.
Readers take the folder (--dir, with the log stopped) or the URL of any
tlog-tiles server or static mirror (--url).

Examples:
   pyrsia-build log keygen --name example.org/log
   pyrsia-build log append --dir log --origin example.org/log --key example.org-log.note.key entry.json
   pyrsia-build log serve --dir log --origin example.org/log --key example.org-log.note.key
   pyrsia-build log checkpoint --url http://127.0.0.1:8080 --log-key example.org-log.note.pub
   pyrsia-build log proof --url http://127.0.0.1:8080 -o proof.json 0`,
		Subcommands: []*cli.Command{
			logKeygenCommand(),
			logMakeEntryCommand(),
			logAppendCommand(),
			logServeCommand(),
			logCheckpointCommand(),
			logEntryCommand(),
			logProofCommand(),
			logConsistencyCommand(),
		},
	}
	for _, c := range cmd.Subcommands {
		c.OnUsageError = usageError
		c.HideHelpCommand = true
	}
	return cmd
}

func logKeygenCommand() *cli.Command {
	return &cli.Command{
		Name:      "keygen",
		Usage:     "make an Ed25519 note key pair for signing or cosigning checkpoints",
		UsageText: "pyrsia-build log keygen --name NAME [--output-prefix PREFIX] [--force]",
		Description: `Writes PREFIX.note.key, the private signer key (mode 0600), and PREFIX.note.pub,
the public verifier key, each one line of text in the golang.org/x/mod/sumdb/note
format. One pair serves either role: the log's key signs checkpoints
('log append --key', 'log serve --key'), and a build node's key cosigns them
('--cosigner KEYFILE:STATEDIR'). Readers check checkpoints with the .pub files
('log checkpoint --log-key, --cosigner-key').

NAME is the key's name, written into every signature: by convention the log's
origin for a log key, and the node's name for a cosigner key. PREFIX defaults to
NAME with every '/' replaced by '-'. Existing files are never overwritten
without --force.

Examples:
   pyrsia-build log keygen --name example.org/log
   pyrsia-build log keygen --name node-a --output-prefix keys/node-a`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "name", Required: true, Usage: "the key's `NAME` (no spaces, no '+')"},
			&cli.StringFlag{Name: "output-prefix", Usage: "write `PREFIX`.note.key and PREFIX.note.pub (default: NAME)"},
			&cli.BoolFlag{Name: "force", Usage: "overwrite existing key files"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return inputErr(fmt.Errorf("log keygen takes no arguments, got %q", c.Args().First()),
					"name the key with --name and the files with --output-prefix")
			}
			name := c.String("name")
			prefix := c.String("output-prefix")
			if prefix == "" {
				prefix = strings.ReplaceAll(name, "/", "-")
			}
			keyPath, pubPath := prefix+".note.key", prefix+".note.pub"
			if !c.Bool("force") {
				for _, p := range []string{keyPath, pubPath} {
					if _, err := os.Stat(p); err == nil {
						return inputErr(fmt.Errorf("%s already exists", p),
							"choose another --output-prefix, or pass --force to overwrite it")
					}
				}
			}
			skey, vkey, err := witness.GenerateKey(name)
			if err != nil {
				return inputErr(trimWitness(err))
			}
			if err := writeFileAtomic(keyPath, []byte(skey+"\n"), 0o600); err != nil {
				return err
			}
			if err := writeFileAtomic(pubPath, []byte(vkey+"\n"), 0o644); err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "Private key written to %s\nPublic key written to %s\n", keyPath, pubPath)
			return nil
		},
	}
}

// readLogSigner reads the log's private key from --key: the signer of
// checkpoints and the verifier that checks them.
func readLogSigner(path string) (note.Signer, note.Verifier, error) {
	hint := "--key takes the log's private key (PREFIX.note.key), made with 'pyrsia-build log keygen'"
	skey, err := readSignerKeyFile(path)
	if err != nil {
		return nil, nil, inputErr(trimWitness(err), hint)
	}
	s, err := witness.NewLogSigner(skey)
	if err != nil {
		return nil, nil, inputErr(fmt.Errorf("%s: %w", path, trimWitness(err)), hint)
	}
	vkey, err := witness.VerifierKey(skey)
	if err != nil {
		return nil, nil, inputErr(fmt.Errorf("%s: %w", path, err), hint)
	}
	v, err := witness.NewLogVerifier(vkey)
	if err != nil {
		return nil, nil, inputErr(fmt.Errorf("%s: %w", path, trimWitness(err)), hint)
	}
	return s, v, nil
}

// readVerifiers reads public note keys, for the log's signature
// (cosignature false) or for cosignatures (cosignature true).
func readVerifiers(paths []string, flag string, cosignature bool) ([]note.Verifier, error) {
	hint := fmt.Sprintf("--%s takes a public key (PREFIX.note.pub), made with 'pyrsia-build log keygen'", flag)
	var vs []note.Verifier
	for _, p := range paths {
		vkey, err := readVerifierKeyFile(p)
		if err != nil {
			return nil, inputErr(trimWitness(err), hint)
		}
		var v note.Verifier
		if cosignature {
			v, err = witness.NewCosignatureVerifier(vkey)
		} else {
			v, err = witness.NewLogVerifier(vkey)
		}
		if err != nil {
			return nil, inputErr(fmt.Errorf("%s: %w", p, trimWitness(err)), hint)
		}
		vs = append(vs, v)
	}
	return vs, nil
}

// openLogErr turns an error of tlog.Open into one a person can act on.
func openLogErr(dir string, err error) error {
	var ce *tlog.CorruptError
	switch {
	case errors.As(err, &ce):
		return inputErr(fmt.Errorf("log folder %s: %w", dir, trimTlog(err)))
	case errors.Is(err, tlog.ErrLocked):
		return inputErr(trimTlog(err),
			"'pyrsia-build log serve' holds the folder while it runs: stop it first, or read the log with --url")
	}
	return inputErr(fmt.Errorf("opening log folder %s: %w", dir, trimTlog(err)))
}

// cliLogger returns a logger for the log library's recovery messages:
// warnings and errors only, so that a normal run prints nothing.
func cliLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func trimWitness(err error) error { return trimPrefix(err, "witness: ") }
func trimTlog(err error) error    { return trimPrefix(err, "tlog: ") }

func trimPrefix(err error, prefix string) error {
	if m, ok := strings.CutPrefix(err.Error(), prefix); ok {
		return trimmed{m, err}
	}
	return err
}
