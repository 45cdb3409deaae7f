package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/pyrsia/pyrsia-build/attest"
)

// loadSigner reads and decrypts the private key at path.
func loadSigner(ctx context.Context, path string, stderr io.Writer) (*attest.Signer, error) {
	decrypt, err := readSigner(ctx, path, stderr)
	if err != nil {
		return nil, err
	}
	return decrypt()
}

// readSigner reads the private key and its password (which may mean asking
// on the terminal) and returns the decryption, which takes a while (scrypt):
// a caller may run it alongside other work.
func readSigner(ctx context.Context, path string, stderr io.Writer) (func() (*attest.Signer, error), error) {
	data, err := readFile(ctx, path, "private key", maxKeyFileSize,
		"make a key pair with 'pyrsia-build keygen' or 'cosign generate-key-pair'")
	if err != nil {
		return nil, err
	}
	pw, err := readPassword(ctx, "Enter password for private key: ", false, stderr)
	if err != nil {
		return nil, err
	}
	return func() (*attest.Signer, error) { return decryptSigner(path, data, pw) }, nil
}

func decryptSigner(path string, data, pw []byte) (*attest.Signer, error) {
	s, err := attest.LoadSigner(data, pw)
	if errors.Is(err, attest.ErrWrongPassword) {
		return nil, inputErr(fmt.Errorf("%s: wrong password (or the key file is damaged)", path),
			"set COSIGN_PASSWORD to the password the key was made with")
	}
	if err != nil {
		return nil, inputErr(fmt.Errorf("%s: %w", path, trimPkg(err)),
			"--key takes the private key (cosign.key); the .pub file is for verify")
	}
	return s, nil
}

// loadPublicKeys reads public key files, named by their base names.
func loadPublicKeys(ctx context.Context, paths []string) ([]*attest.PublicKey, error) {
	var keys []*attest.PublicKey
	for _, p := range paths {
		data, err := readFile(ctx, p, "public key", maxKeyFileSize)
		if err != nil {
			return nil, err
		}
		name := strings.TrimSuffix(filepath.Base(p), filepath.Ext(p))
		k, err := attest.ParsePublicKey(name, data)
		if err != nil {
			return nil, inputErr(fmt.Errorf("%s: %w", p, trimPkg(err)),
				"--key takes a PEM public key such as cosign.pub")
		}
		keys = append(keys, k)
	}
	return keys, nil
}

// trimPkg drops a leading "attest: " from a library error: the CLI names
// the file instead.
type trimmed struct {
	msg string
	err error
}

func (t trimmed) Error() string { return t.msg }
func (t trimmed) Unwrap() error { return t.err }

func trimPkg(err error) error {
	msg := err.Error()
	if m, ok := strings.CutPrefix(msg, "attest: "); ok {
		return trimmed{m, err}
	}
	return err
}
