package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/term"
)

// passwordEnv is the variable cosign reads the key password from; we read
// the same one so that scripts work with both tools.
const passwordEnv = "COSIGN_PASSWORD"

// readPassword returns the key password from COSIGN_PASSWORD (which may be
// set and empty) or asks on the terminal, twice when confirm is set. When
// ctx is done (Ctrl-C) it gives up and puts the terminal back as it was.
func readPassword(ctx context.Context, prompt string, confirm bool, stderr io.Writer) ([]byte, error) {
	if pw, ok := os.LookupEnv(passwordEnv); ok {
		return []byte(pw), nil
	}
	tty, err := os.OpenFile("/dev/tty", os.O_RDWR, 0)
	if err != nil || !term.IsTerminal(int(tty.Fd())) {
		if tty != nil {
			tty.Close()
		}
		return nil, inputErr(errors.New("no password: COSIGN_PASSWORD is not set and there is no terminal to ask on"),
			"set COSIGN_PASSWORD to the key's password (it may be empty: COSIGN_PASSWORD=)")
	}
	defer tty.Close()
	state, err := term.GetState(int(tty.Fd()))
	if err != nil {
		return nil, fmt.Errorf("reading password: %w", err)
	}
	ask := func(p string) ([]byte, error) {
		fmt.Fprint(tty, p)
		type result struct {
			pw  []byte
			err error
		}
		ch := make(chan result, 1)
		go func() {
			pw, err := term.ReadPassword(int(tty.Fd()))
			ch <- result{pw, err}
		}()
		select {
		case <-ctx.Done():
			term.Restore(int(tty.Fd()), state)
			fmt.Fprintln(tty)
			return nil, fmt.Errorf("reading password: %w", ctx.Err())
		case r := <-ch:
			fmt.Fprintln(tty)
			if r.err != nil {
				return nil, fmt.Errorf("reading password: %w", r.err)
			}
			return r.pw, nil
		}
	}
	pw, err := ask(prompt)
	if err != nil || !confirm {
		return pw, err
	}
	again, err := ask("Enter password again: ")
	if err != nil {
		return nil, err
	}
	if string(pw) != string(again) {
		return nil, inputErr(errors.New("passwords do not match"))
	}
	return pw, nil
}
