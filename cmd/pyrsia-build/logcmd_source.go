package main

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/pyrsia/pyrsia-build/publish/logclient"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	"github.com/urfave/cli/v2"
	"golang.org/x/mod/sumdb/note"
)

// logReaderFlags are the flags every reader takes.
func logReaderFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "dir", Usage: "read the log in folder `DIR` (the log must not be served meanwhile)"},
		&cli.StringFlag{Name: "url", Usage: "read the log served at `URL` by any tlog-tiles server or static mirror"},
		&cli.StringFlag{Name: "origin", Usage: "require the log's checkpoints to carry this `ORIGIN` (default: the checkpoint's own)"},
		&cli.StringSliceFlag{Name: "log-key", Usage: "check the checkpoint's signature with the log's public key `FILE` (PREFIX.note.pub); repeat to accept any of several"},
	}
}

// openSource opens the log named by --dir or --url (package logclient).
func openSource(c *cli.Context) (logclient.Source, error) {
	dir, rawURL := c.String("dir"), c.String("url")
	switch {
	case dir != "" && rawURL != "":
		return nil, inputErr(errors.New("give either --dir or --url, not both"))
	case dir != "":
		src, err := logclient.OpenDir(c.Context, dir, logclient.DirOptions{Origin: c.String("origin"), Logger: cliLogger(c.App.ErrWriter)})
		if err != nil {
			return nil, clientErr(err, "check --dir")
		}
		return src, nil
	case rawURL != "":
		src, err := logclient.OpenURL(rawURL, logclient.URLOptions{})
		if err != nil {
			return nil, inputErr(fmt.Errorf("--url %q is not an http:// or https:// URL", rawURL), logclient.Hint(err))
		}
		return src, nil
	}
	return nil, inputErr(errors.New("no log given"),
		"name the log's folder with --dir DIR, or its server with --url URL")
}

// clientErr turns an error of package logclient into one for a person:
// exit 1 for what does not verify, 2 for the rest, with the package's hint
// (or hint, when it has none).
func clientErr(err error, hint string) error {
	if h := logclient.Hint(err); h != "" {
		hint = h
	}
	var hints []string
	if hint != "" {
		hints = []string{hint}
	}
	err = trimPrefix(err, "logclient: ")
	if errors.Is(err, logclient.ErrProof) || errors.Is(err, logclient.ErrCheckpoint) {
		return failed(err, hints...)
	}
	return inputErr(err, hints...)
}

// readCheckpoint reads the source's checkpoint and checks it: its origin
// against --origin, and its signature against --log-key when given. It
// returns the client to read the log with (its entries are checked
// against the checkpoint), and the checkpoint, whose LogKey is empty
// without --log-key.
func readCheckpoint(c *cli.Context, src logclient.Source) (*logclient.Client, *logclient.Checkpoint, error) {
	logKeys, err := readVerifiers(c.StringSlice("log-key"), "log-key", false)
	if err != nil {
		return nil, nil, err
	}
	cp, err := logclient.New(src, logclient.Options{Origin: c.String("origin")}).Checkpoint(c.Context)
	if err != nil {
		if errors.Is(err, logclient.ErrCheckpoint) {
			return nil, nil, clientErr(err, "check --origin, or that --url/--dir is the log you mean")
		}
		hint := "check --dir"
		if strings.HasPrefix(src.String(), "log at ") {
			hint = "check --url: it names the folder that holds 'checkpoint' and 'tile/', and a log must be served there"
			if errors.Is(err, fs.ErrNotExist) {
				hint = "the server has no checkpoint there: check --url, or wait until the log publishes one"
			}
		}
		return nil, nil, inputErr(trimPrefix(err, "logclient: "), hint)
	}
	if len(logKeys) == 0 {
		return logclient.New(src, logclient.Options{Origin: cp.Origin}), cp, nil
	}
	client := logclient.New(src, logclient.Options{Trust: &policy.Trust{Origin: cp.Origin, LogVerifiers: logKeys}})
	if cp, err = client.VerifyCheckpoint(cp.Note); err != nil {
		return nil, nil, clientErr(err, "--log-key takes the public key of the log (PREFIX.note.pub of the key given to 'log append --key')")
	}
	return client, cp, nil
}

// verifyFinal checks that cp, signed by its log key, is cosigned by
// threshold of cosigners.
func verifyFinal(src logclient.Source, cp *logclient.Checkpoint, logKeys, cosigners []note.Verifier, threshold int) (*logclient.Checkpoint, error) {
	trust := &policy.Trust{Origin: cp.Origin, LogVerifiers: logKeys, Cosigners: cosigners, CosignThreshold: threshold}
	final, err := logclient.New(src, logclient.Options{Trust: trust}).VerifyCheckpoint(cp.Note)
	switch {
	case errors.Is(err, witness.ErrNotFinal):
		return nil, failed(trimPrefix(err, "logclient: "),
			"the build nodes have not cosigned this checkpoint yet (wait and read it again), or a listed --cosigner-key is not one of theirs")
	case err != nil:
		return nil, inputErr(trimPrefix(err, "logclient: "))
	}
	return final, nil
}
