package main

import (
	"context"
	"errors"
	"io/fs"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/internal/fileread"
	"github.com/pyrsia/pyrsia-build/internal/fsutil"
	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/tlog"
	"github.com/pyrsia/pyrsia-build/publish/witness"
)

// writeFileAtomic replaces path with data durably ([fsutil.WriteFileAtomic]),
// so that a crash or a full disk never leaves a half-written file where a
// good one stood. Errors are bad input (exit 2).
func writeFileAtomic(path string, data []byte, perm fs.FileMode) error {
	if err := fsutil.WriteFileAtomic(path, data, perm); err != nil {
		return inputErr(err)
	}
	return nil
}

// Size limits of the files the commands read, by kind.
const (
	maxKeyFileSize        = attest.MaxPublicKeySize // a PEM key, public or private
	maxNoteKeyFileSize    = witness.MaxKeyFileSize  // a note key
	maxSpecFileSize       = 1 << 20                 // a build spec (builder's limit)
	maxEntryFileSize      = tlog.MaxEntrySize       // a log entry
	maxCheckpointFileSize = witness.MaxCheckpointSize
)

// maxBundleFileSize bounds a bundle of either kind.
var maxBundleFileSize = int64(max(attest.MaxBundleSize, publish.MaxProofBundleSize))

// readFile reads a regular file of at most limit bytes, as every command
// reads its inputs: what names its kind in errors ("public key"). Errors
// are bad input (exit 2); hints tell how to make a missing file.
func readFile(ctx context.Context, path, what string, limit int64, hints ...string) ([]byte, error) {
	b, err := fileread.ReadFile(ctx, path, what, limit)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			hints = nil
		}
		return nil, inputErr(err, hints...)
	}
	return b, nil
}

// checkFile checks, before a library reads path by its name, that it is a
// regular file within limit.
func checkFile(path, what string, limit int64) error {
	if err := fileread.Check(path, what, limit); err != nil {
		return inputErr(err)
	}
	return nil
}

// readSignerKeyFile and readVerifierKeyFile read note keys, checked first.
func readSignerKeyFile(path string) (string, error) {
	if err := fileread.Check(path, "note key", maxNoteKeyFileSize); err != nil {
		return "", err
	}
	return witness.ReadSignerKeyFile(path)
}

func readVerifierKeyFile(path string) (string, error) {
	if err := fileread.Check(path, "note key", maxNoteKeyFileSize); err != nil {
		return "", err
	}
	return witness.ReadVerifierKeyFile(path)
}
