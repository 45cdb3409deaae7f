package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/logclient"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	"github.com/urfave/cli/v2"
)

const readerSourceHelp = `The log is read from its folder (--dir DIR; stop 'pyrsia-build log serve' on it
first: one process at a time) or from any tlog-tiles server or static mirror
(--url URL, the folder that holds 'checkpoint' and 'tile/').`

func logCheckpointCommand() *cli.Command {
	return &cli.Command{
		Name:      "checkpoint",
		Usage:     "print the log's latest checkpoint and check its signatures",
		UsageText: "pyrsia-build log checkpoint (--dir DIR | --url URL) [--origin ORIGIN] [--log-key PUB ...] [--cosigner-key PUB ... [--threshold N]]",
		Description: `Prints the latest checkpoint, a signed note (C2SP tlog-checkpoint) with the
cosignatures it carries, on standard output.

With --log-key, checks that the log signed it; with --cosigner-key too, checks
that it is final: cosigned (C2SP tlog-cosignature) by at least --threshold of
the listed cosigners, by default an absolute majority, floor(n/2)+1. The verdict
goes to standard error, so that standard output stays the note.

` + readerSourceHelp + `

Exit codes: 0 printed (and verified, and final, when keys are given), 1 the log
signature does not verify or the checkpoint is not final, 2 usage error or bad
input (an unreadable key, an unreachable log).

Examples:
   pyrsia-build log checkpoint --dir log
   pyrsia-build log checkpoint --url http://127.0.0.1:8080 --log-key log.note.pub
   pyrsia-build log checkpoint --url http://127.0.0.1:8080 --log-key log.note.pub \
       --cosigner-key node-a.note.pub --cosigner-key node-b.note.pub --cosigner-key node-c.note.pub`,
		Flags: append(logReaderFlags(),
			&cli.StringSliceFlag{Name: "cosigner-key", Usage: "a cosigner's public key `FILE` (PREFIX.note.pub); repeat for each build node"},
			&cli.IntFlag{Name: "threshold", Usage: "cosignatures needed for the checkpoint to be final, `N` (default: a majority of --cosigner-key)"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return inputErr(fmt.Errorf("log checkpoint takes no arguments, got %q", c.Args().First()),
					"run 'pyrsia-build log checkpoint --help' for usage")
			}
			cosigners, err := readVerifiers(c.StringSlice("cosigner-key"), "cosigner-key", true)
			if err != nil {
				return err
			}
			threshold := c.Int("threshold")
			switch {
			case len(cosigners) > 0 && len(c.StringSlice("log-key")) == 0:
				return inputErr(errors.New("--cosigner-key needs --log-key: a checkpoint is final only if the log signed it"))
			case c.IsSet("threshold") && len(cosigners) == 0:
				return inputErr(errors.New("--threshold needs --cosigner-key"))
			case c.IsSet("threshold") && (threshold < 1 || threshold > len(cosigners)):
				return inputErr(fmt.Errorf("--threshold %d is out of range: give 1 to %d for %d cosigner keys", threshold, len(cosigners), len(cosigners)))
			case !c.IsSet("threshold"):
				threshold = witness.Threshold(len(cosigners))
			}
			logKeys, err := readVerifiers(c.StringSlice("log-key"), "log-key", false)
			if err != nil {
				return err
			}
			src, err := openSource(c)
			if err != nil {
				return err
			}
			defer src.Close()
			_, cp, err := readCheckpoint(c, src)
			if err != nil {
				return err
			}
			c.App.Writer.Write(cp.Note)
			if cp.LogKey == "" {
				return nil
			}
			fmt.Fprintf(c.App.ErrWriter, "checkpoint of %q at size %d: signed by log key %q\n", cp.Origin, cp.Size, cp.LogKey)
			if len(cosigners) == 0 {
				return nil
			}
			final, err := verifyFinal(src, cp, logKeys, cosigners, threshold)
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "final: cosigned by %s (%d of %d cosigners, threshold %d)\n",
				strings.Join(final.Cosigners, ", "), len(final.Cosigners), len(cosigners), threshold)
			return nil
		},
	}
}

func logEntryCommand() *cli.Command {
	return &cli.Command{
		Name:      "entry",
		Usage:     "print an entry of the log",
		UsageText: "pyrsia-build log entry (--dir DIR | --url URL) [--origin ORIGIN] [--log-key PUB ...] [--raw] INDEX",
		Description: `Prints the entry at INDEX (from 0) of the log's latest checkpoint as indented
JSON, after checking that it is a publish entry and that its inclusion proof
leads to the checkpoint's root. --raw writes the entry's bytes as the log
stores them, with no newline, whatever they hold.

` + readerSourceHelp + `

Exit codes: 0 printed, 1 the checkpoint or the entry's inclusion proof does not
verify, 2 usage error or bad input (an index past the end, an entry that is not
a publish entry without --raw, an unreachable log).

Examples:
   pyrsia-build log entry --dir log 0
   pyrsia-build log entry --url http://127.0.0.1:8080 --log-key log.note.pub 12
   pyrsia-build log entry --url http://127.0.0.1:8080 --raw 12 > entry.json`,
		Flags: append(logReaderFlags(),
			&cli.BoolFlag{Name: "raw", Usage: "write the entry's bytes as they are"},
		),
		Action: func(c *cli.Context) error {
			src, client, cp, index, err := openAtIndex(c, "entry")
			if err != nil {
				return err
			}
			defer src.Close()
			entry, _, err := client.Entry(c.Context, cp, index)
			if err != nil {
				return clientErr(err, "")
			}
			if c.Bool("raw") {
				_, err := c.App.Writer.Write(entry)
				return err
			}
			what := "a publish entry"
			_, err = publish.ParseEntry(entry)
			if errors.Is(err, publish.ErrNotPublish) && !errors.Is(err, publish.ErrUnknownKind) {
				what = "a policy change"
				_, err = publish.ParsePolicyChange(entry)
			}
			if err != nil {
				return inputErr(fmt.Errorf("%s: entry %d is not %s: %w", src, index, what, trimPrefix(err, "publish: entry: ")),
					"--raw writes the entry's bytes whatever they hold")
			}
			var out bytes.Buffer
			if err := json.Indent(&out, entry, "", "  "); err != nil {
				return fmt.Errorf("%s: entry %d: %w", src, index, err)
			}
			out.WriteByte('\n')
			_, err = c.App.Writer.Write(out.Bytes())
			return err
		},
	}
}

func logProofCommand() *cli.Command {
	return &cli.Command{
		Name:      "proof",
		Usage:     "write the proof bundle of an entry: entry, inclusion proof, cosigned checkpoint",
		UsageText: "pyrsia-build log proof (--dir DIR | --url URL) [--origin ORIGIN] [--log-key PUB ...] [-o FILE] INDEX",
		Description: `Writes the proof bundle (media type ` + publish.ProofBundleMediaType + `)
of the entry at INDEX (from 0): the entry's bytes, its index, the size of the
log's latest checkpoint, the RFC 6962 inclusion proof into that tree, and the
checkpoint note with its cosignatures. It is what a verifier needs offline.

The inclusion proof is checked against the checkpoint's root before anything is
written. The checkpoint's signatures are checked only with --log-key (see also
'log checkpoint'); a verifier checks them again.

` + readerSourceHelp + `

Exit codes: 0 written, 1 the checkpoint or the inclusion proof does not verify,
2 usage error or bad input (an index past the end, an unreachable log).

Examples:
   pyrsia-build log proof --dir log -o proof.json 0
   pyrsia-build log proof --url http://127.0.0.1:8080 --log-key log.note.pub 12 > proof.json`,
		Flags: append(logReaderFlags(),
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the bundle to `FILE` (default: standard output)"},
		),
		Action: func(c *cli.Context) error {
			src, client, cp, index, err := openAtIndex(c, "proof")
			if err != nil {
				return err
			}
			defer src.Close()
			// The policy changes in the tree go with the proof, for a
			// verifier that knows the network's first policy.
			changes, err := client.PolicyChanges(c.Context, cp)
			if err != nil {
				return clientErr(err, "")
			}
			pb, err := client.ProofBundleChain(c.Context, cp, index, changes)
			if err != nil {
				return clientErr(err, "")
			}
			b, err := pb.MarshalJSON()
			if err != nil {
				return inputErr(fmt.Errorf("%s: entry %d: %w", src, index, trimPrefix(err, "publish: ")))
			}
			b = append(b, '\n')
			out := c.String("output")
			if out == "" || out == "-" {
				_, err := c.App.Writer.Write(b)
				return err
			}
			if err := writeFileAtomic(out, b, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "Proof of entry %d in the tree of size %d written to %s\n", index, cp.Size, out)
			return nil
		},
	}
}

func logConsistencyCommand() *cli.Command {
	return &cli.Command{
		Name:      "consistency",
		Usage:     "print the consistency proof between two sizes of the log",
		UsageText: "pyrsia-build log consistency (--dir DIR | --url URL) [--origin ORIGIN] [--log-key PUB ...] OLD NEW",
		Description: `Prints the RFC 6962 consistency proof from the tree of OLD entries to the tree
of NEW entries (NEW at most the latest checkpoint's size), one base64 hash per
line. The proof is checked before it is printed: the roots of both trees are
computed from the log's tiles, and each is proven consistent with the latest
checkpoint's root (signed by the log with --log-key). A cosigner checks it
against the checkpoint it last cosigned.

` + readerSourceHelp + `

Exit codes: 0 printed, 1 the checkpoint does not verify with --log-key or the
proof does not verify, 2 usage error or bad input (sizes out of range, an
unreachable log).

Examples:
   pyrsia-build log consistency --dir log 3 10
   pyrsia-build log consistency --url http://127.0.0.1:8080 1000 1234`,
		Flags: logReaderFlags(),
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return inputErr(fmt.Errorf("log consistency takes two sizes, OLD and NEW, got %d arguments", c.NArg()),
					"run 'pyrsia-build log consistency --help' for usage")
			}
			var sizes [2]uint64
			for i := range sizes {
				n, err := strconv.ParseUint(c.Args().Get(i), 10, 64)
				if err != nil {
					return inputErr(fmt.Errorf("tree size %q is not a number", c.Args().Get(i)))
				}
				sizes[i] = n
			}
			oldSize, newSize := sizes[0], sizes[1]
			if oldSize > newSize {
				return inputErr(fmt.Errorf("OLD size %d is larger than NEW size %d", oldSize, newSize))
			}
			src, err := openSource(c)
			if err != nil {
				return err
			}
			defer src.Close()
			client, cp, err := readCheckpoint(c, src)
			if err != nil {
				return err
			}
			if newSize > cp.Size {
				return inputErr(fmt.Errorf("NEW size %d is past the end of the log: its checkpoint has size %d", newSize, cp.Size))
			}
			hashes, err := client.ConsistencyProof(c.Context, cp, oldSize, newSize)
			if err != nil {
				return clientErr(err, "")
			}
			for _, h := range hashes {
				fmt.Fprintln(c.App.Writer, base64.StdEncoding.EncodeToString(h))
			}
			return nil
		},
	}
}

// openAtIndex reads the INDEX argument, opens the log source and reads its
// checkpoint (see readCheckpoint). The caller closes the source.
func openAtIndex(c *cli.Context, cmd string) (logclient.Source, *logclient.Client, *logclient.Checkpoint, uint64, error) {
	index, err := indexArg(c, cmd)
	if err != nil {
		return nil, nil, nil, 0, err
	}
	src, err := openSource(c)
	if err != nil {
		return nil, nil, nil, 0, err
	}
	client, cp, err := readCheckpoint(c, src)
	if err != nil {
		src.Close()
		return nil, nil, nil, 0, err
	}
	return src, client, cp, index, nil
}

// indexArg reads the one INDEX argument.
func indexArg(c *cli.Context, cmd string) (uint64, error) {
	if c.NArg() != 1 {
		return 0, inputErr(fmt.Errorf("log %s takes one INDEX, got %d arguments", cmd, c.NArg()),
			fmt.Sprintf("run 'pyrsia-build log %s --help' for usage", cmd))
	}
	index, err := strconv.ParseUint(c.Args().First(), 10, 64)
	if err != nil {
		return 0, inputErr(fmt.Errorf("INDEX %q is not an entry index (0, 1, 2...)", c.Args().First()))
	}
	return index, nil
}
