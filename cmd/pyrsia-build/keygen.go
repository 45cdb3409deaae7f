package main

import (
	"fmt"
	"os"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/urfave/cli/v2"
)

func keygenCommand() *cli.Command {
	return &cli.Command{
		Name:      "keygen",
		Usage:     "make a cosign key pair for signing attestations",
		UsageText: "pyrsia-build keygen [--output-key-prefix PREFIX] [--force]",
		Description: `Writes PREFIX.key, an ECDSA P-256 private key encrypted with a password, and
PREFIX.pub, its public key, in cosign's own format: the cosign command uses
them as they are, and keys from 'cosign generate-key-pair' work here.

The password comes from COSIGN_PASSWORD (it may be empty) or is asked for twice
on the terminal. Existing files are never overwritten without --force.

Examples:
   pyrsia-build keygen
   COSIGN_PASSWORD=s3cret pyrsia-build keygen --output-key-prefix node-a
   cosign verify-blob-attestation --key node-a.pub ...`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "output-key-prefix", Value: "cosign", Usage: "write `PREFIX`.key and PREFIX.pub"},
			&cli.BoolFlag{Name: "force", Usage: "overwrite existing key files"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return inputErr(fmt.Errorf("keygen takes no arguments, got %q", c.Args().First()),
					"name the files with --output-key-prefix")
			}
			prefix := c.String("output-key-prefix")
			keyPath, pubPath := prefix+".key", prefix+".pub"
			if !c.Bool("force") {
				for _, p := range []string{keyPath, pubPath} {
					if _, err := os.Stat(p); err == nil {
						return inputErr(fmt.Errorf("%s already exists", p),
							"choose another --output-key-prefix, or pass --force to overwrite it")
					}
				}
			}
			pw, err := readPassword(c.Context, "Enter password for private key: ", true, c.App.ErrWriter)
			if err != nil {
				return err
			}
			kp, err := attest.GenerateKeyPair(pw)
			if err != nil {
				return err
			}
			if err := writeFileAtomic(keyPath, kp.Private, 0o600); err != nil {
				return err
			}
			if err := writeFileAtomic(pubPath, kp.Public, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(c.App.ErrWriter, "Private key written to %s\nPublic key written to %s\n", keyPath, pubPath)
			return nil
		},
	}
}
