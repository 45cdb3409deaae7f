package attest

import (
	"context"

	"github.com/pyrsia/pyrsia-build/internal/fileread"
)

// ErrTooLarge is wrapped by the error [ReadFileLimited] returns for a file
// over its limit. Use errors.Is.
var ErrTooLarge = fileread.ErrTooLarge

// ReadFileLimited reads the whole file at path, refusing what is not a
// regular file (a FIFO, a device, a directory: reading one could block
// forever or never end) and a file of more than max bytes. Errors name the
// file and, for a file too large, its size and the real limit.
//
// It is the module's one reader of input files (internal/fileread, which
// opens without blocking, checks the open file, not its name, and stops
// when a context is done), without a context: for callers outside this
// module and for those that have none.
func ReadFileLimited(path string, max int64) ([]byte, error) {
	return fileread.ReadFile(context.Background(), path, "", max)
}
