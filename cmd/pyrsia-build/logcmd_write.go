package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/tlog"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	"github.com/urfave/cli/v2"
	"golang.org/x/mod/sumdb/note"
)

// Flags shared by the writers.
func logWriterFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "dir", Required: true, Usage: "the log folder `DIR` (created if missing)"},
		&cli.StringFlag{Name: "origin", Required: true, Usage: "the log's `ORIGIN`, the first line of its checkpoints"},
		&cli.StringFlag{Name: "key", Required: true, Usage: "the log's private key `FILE` (PREFIX.note.key) that signs checkpoints"},
		&cli.StringSliceFlag{Name: "cosigner", Usage: "a local cosigner: its private key and state folder, `KEYFILE:STATEDIR`; repeat for several"},
	}
}

// writerKeys reads the log key and opens the cosigners the writer flags name.
func writerKeys(c *cli.Context) (note.Signer, note.Verifier, []localCosigner, error) {
	signer, verifier, err := readLogSigner(c.String("key"))
	if err != nil {
		return nil, nil, nil, err
	}
	cosigners, err := openCosigners(c.StringSlice("cosigner"), c.String("origin"), verifier)
	if err != nil {
		return nil, nil, nil, err
	}
	return signer, verifier, cosigners, nil
}

func logAppendCommand() *cli.Command {
	return &cli.Command{
		Name:      "append",
		Usage:     "append entries to the log and publish a cosigned checkpoint",
		UsageText: "pyrsia-build log append --dir DIR --origin ORIGIN --key LOG.note.key [--cosigner KEYFILE:STATEDIR ...] [--raw] FILE...",
		Description: `Appends the bytes of each FILE as one entry, in order, then signs a checkpoint of
the new tree with --key and asks each --cosigner to cosign it. A cosigner signs
only a checkpoint that extends the last one it cosigned (it keeps that in
STATEDIR, and checks the log's consistency proof); the cosigned checkpoint is
stored in DIR/checkpoint. Prints "index N  FILE" per entry, then the
checkpoint's size and cosigners.

Each FILE must be a log entry (pyrsia-build's publish entry, in its canonical
JSON form) unless --raw is given. One trailing newline, as editors and
here-documents add, is dropped before the entry is checked; the log stores the
entry without it. With --raw the bytes are stored exactly as they are. Every
FILE is checked before anything is appended.

The log folder can be held by one process only: stop 'pyrsia-build log serve'
on DIR before appending to it.

Exit codes: 0 appended and cosigned, 1 a cosigner refused the checkpoint as a
fork (the evidence is printed), 2 usage error or bad input (found before
anything is appended) or a cosigner that failed otherwise. After exit 1, or 2
from a cosigner, the entries are in the log and its checkpoint is signed, but
it lacks those cosignatures.

Examples:
   pyrsia-build log append --dir log --origin example.org/log --key log.note.key entry.json
   pyrsia-build log append --dir log --origin example.org/log --key log.note.key \
       --cosigner node-a.note.key:state/node-a --cosigner node-b.note.key:state/node-b \
       e1.json e2.json`,
		Flags: append(logWriterFlags(),
			&cli.BoolFlag{Name: "raw", Usage: "append the files' bytes as they are, without checking that they are log entries"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return inputErr(errors.New("log append needs at least one FILE"),
					"run 'pyrsia-build log append --help' for usage")
			}
			entries, err := readEntryFiles(c.Context, c.Args().Slice(), c.Bool("raw"))
			if err != nil {
				return err
			}
			signer, verifier, cosigners, err := writerKeys(c)
			if err != nil {
				return err
			}
			dir, origin := c.String("dir"), c.String("origin")
			if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
				fmt.Fprintf(c.App.ErrWriter, "pyrsia-build: starting a new log in %s\n", dir)
			}
			l, err := tlog.Open(c.Context, tlog.Options{Dir: dir, Origin: origin, Signer: signer, Logger: cliLogger(c.App.ErrWriter)})
			if err != nil {
				return openLogErr(dir, err)
			}
			defer l.Close()
			if err := checkLogKey(l, dir, verifier); err != nil {
				return err
			}
			for i, e := range entries {
				index, err := l.Append(c.Context, e)
				if err != nil {
					return fmt.Errorf("appending %s: %w", c.Args().Get(i), err)
				}
				fmt.Fprintf(c.App.Writer, "index %d  %s\n", index, c.Args().Get(i))
			}
			cp, err := l.Publish(c.Context)
			if err != nil {
				return fmt.Errorf("publishing checkpoint: %w", err)
			}
			signed, err := cosignCheckpoint(c.Context, l, cp, cosigners)
			fmt.Fprintf(c.App.Writer, "checkpoint size %d", cp.Size)
			if len(cosigners) > 0 {
				fmt.Fprintf(c.App.Writer, ", cosigned by %d of %d", len(signed), len(cosigners))
				if len(signed) > 0 {
					fmt.Fprintf(c.App.Writer, ": %s", strings.Join(signed, ", "))
				}
			}
			fmt.Fprintln(c.App.Writer)
			if err != nil {
				return cosignFailure(c.App.ErrWriter, err)
			}
			return l.Close()
		},
	}
}

// readEntryFiles reads and checks every entry file before anything is
// appended.
func readEntryFiles(ctx context.Context, paths []string, raw bool) ([][]byte, error) {
	var entries [][]byte
	for _, p := range paths {
		limit := int64(maxEntryFileSize)
		if !raw {
			limit++ // one trailing newline, dropped
		}
		b, err := readFile(ctx, p, "log entry", limit)
		if err != nil {
			return nil, err
		}
		if !raw {
			b = bytes.TrimSuffix(b, []byte("\n"))
			_, err := publish.ParseEntry(b)
			if errors.Is(err, publish.ErrNotPublish) && !errors.Is(err, publish.ErrUnknownKind) {
				_, err = publish.ParsePolicyChange(b) // from 'network propose' and 'approve'
			}
			if err != nil {
				return nil, inputErr(fmt.Errorf("%s: %w", p, trimPrefix(err, "publish: ")),
					"an entry is the canonical JSON of a publish entry or a policy change, as the build network writes it; pass --raw to append other bytes")
			}
		}
		if len(b) == 0 {
			return nil, inputErr(fmt.Errorf("%s: empty file: the log holds no empty entries", p))
		}
		if len(b) > tlog.MaxEntrySize {
			return nil, inputErr(fmt.Errorf("%s: %d bytes is over the log's entry limit of %d bytes", p, len(b), tlog.MaxEntrySize))
		}
		entries = append(entries, b)
	}
	return entries, nil
}

// checkLogKey refuses a key that did not sign the log's existing checkpoint:
// a typo in --key would otherwise go on with another key.
func checkLogKey(l *tlog.Log, dir string, v note.Verifier) error {
	cp := l.Checkpoint()
	if cp == nil {
		return nil
	}
	if _, _, err := witness.ParseCheckpoint(cp.Note, l.Origin(), v); err != nil {
		return inputErr(fmt.Errorf("%s/checkpoint: %w", dir, trimWitness(err)),
			fmt.Sprintf("--key must be the private key that signed this log's checkpoints; %q is not", v.Name()))
	}
	return nil
}

// localCosigner is a cosigner run in this process, from --cosigner.
type localCosigner struct {
	name string
	*witness.Cosigner
	verifier note.Verifier // checks its cosignatures
}

// openCosigners opens the cosigners given as KEYFILE:STATEDIR.
func openCosigners(specs []string, origin string, logVerifier note.Verifier) ([]localCosigner, error) {
	var cs []localCosigner
	hint := "--cosigner takes a cosigner's private key and its state folder, KEYFILE:STATEDIR"
	for _, s := range specs {
		keyFile, stateDir, ok := strings.Cut(s, ":")
		if !ok || keyFile == "" || stateDir == "" {
			return nil, inputErr(fmt.Errorf("--cosigner %q is not KEYFILE:STATEDIR", s), hint)
		}
		skey, err := readSignerKeyFile(keyFile)
		if err != nil {
			return nil, inputErr(fmt.Errorf("cosigner: %w", trimWitness(err)), hint)
		}
		signer, err := witness.NewCosignatureSigner(skey)
		if err != nil {
			return nil, inputErr(fmt.Errorf("cosigner %s: %w", keyFile, trimWitness(err)), hint)
		}
		for _, o := range cs {
			if o.name == signer.Name() {
				return nil, inputErr(fmt.Errorf("cosigner %q is given twice", o.name), hint)
			}
		}
		c, err := witness.NewCosigner(witness.CosignerOptions{Signer: signer, Origin: origin, LogVerifier: logVerifier, StateDir: stateDir})
		if err != nil {
			return nil, inputErr(fmt.Errorf("cosigner %q: %w", signer.Name(), trimPrefix(err, "witness: cosigner: ")))
		}
		vkey, err := witness.VerifierKey(skey)
		if err != nil {
			return nil, inputErr(fmt.Errorf("cosigner %s: %w", keyFile, trimWitness(err)), hint)
		}
		v, err := witness.NewCosignatureVerifier(vkey)
		if err != nil {
			return nil, inputErr(fmt.Errorf("cosigner %s: %w", keyFile, trimWitness(err)), hint)
		}
		cs = append(cs, localCosigner{name: signer.Name(), Cosigner: c, verifier: v})
	}
	// One key under two names would count twice towards the majority: a
	// cosignature does not cover the key's name (issue 7, defect 5).
	var vs []note.Verifier
	for _, c := range cs {
		vs = append(vs, c.verifier)
	}
	if _, dups := witness.Distinct(vs); len(dups) > 0 {
		var names []string
		for first, later := range dups {
			names = append(names, strings.Join(append([]string{first}, later...), " and "))
		}
		slices.Sort(names)
		return nil, inputErr(fmt.Errorf("cosigners %s are one key under two names", strings.Join(names, "; ")), "give each cosigner's key once")
	}
	return cs, nil
}

// cosignCheckpoint asks every cosigner, at once, to cosign cp, the log's
// candidate checkpoint, with the log as the source of consistency proofs
// ([witness.CosignAll]), and commits it with the cosignatures it gets when
// they are a majority of the cosigners (distinct keys: see
// openCosigners). It returns the names of the cosigners that signed, and
// the errors of those that did not, joined.
func cosignCheckpoint(ctx context.Context, l *tlog.Log, cp *tlog.Checkpoint, cosigners []localCosigner) ([]string, error) {
	clients := make([]witness.CosignerClient, len(cosigners))
	for i, c := range cosigners {
		clients[i] = c.Cosigner
	}
	signed, errs, err := witness.CosignAll(ctx, cp.Note, l, clients)
	if err != nil {
		return nil, err
	}
	var names []string
	var refused []error
	for i, err := range errs {
		if err != nil {
			refused = append(refused, fmt.Errorf("cosigner %q refused checkpoint size %d: %w", cosigners[i].name, cp.Size, trimWitness(err)))
			continue
		}
		names = append(names, cosigners[i].name)
	}
	// The log stores and serves the checkpoint only once a majority of the
	// cosigners signed it; otherwise the next publish retries.
	if len(cosigners) == 0 || len(names) >= witness.Threshold(len(cosigners)) {
		if err := l.Commit(signed); err != nil {
			return nil, fmt.Errorf("storing cosigned checkpoint: %w", err)
		}
	}
	return names, errors.Join(refused...)
}

// cosignFailure prints the evidence of every fork in err and returns the
// error to report: exit 1 for a fork, 2 otherwise.
func cosignFailure(w io.Writer, err error) error {
	hint := "the entries are in the log and its checkpoint is signed, but it is not final without the missing cosignatures"
	if !errors.Is(err, witness.ErrFork) {
		return inputErr(err, hint)
	}
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	for _, e := range errs {
		var fe *witness.ForkError
		if !errors.As(e, &fe) {
			continue
		}
		fmt.Fprintf(w, "fork evidence: the checkpoint last cosigned (size %d):\n%s", fe.OldCheckpoint.Size, indent(fe.Old))
		fmt.Fprintf(w, "fork evidence: the checkpoint refused (size %d):\n%s", fe.NewCheckpoint.Size, indent(fe.New))
	}
	return failed(err, hint,
		"two checkpoints signed by the log key that do not extend one another: the log forked or was rewritten; keep both notes above as evidence",
		"if this log is a test that was recreated on purpose, give its cosigners a new STATEDIR")
}

// indent prefixes each line of a note with four spaces.
func indent(b []byte) string {
	var sb strings.Builder
	for _, line := range strings.SplitAfter(string(b), "\n") {
		switch line {
		case "":
		case "\n":
			sb.WriteString(line)
		default:
			sb.WriteString("    " + line)
		}
	}
	if !strings.HasSuffix(sb.String(), "\n") {
		sb.WriteString("\n")
	}
	return sb.String()
}
