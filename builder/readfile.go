package builder

import "github.com/pyrsia/pyrsia-build/attest"

// readLimited reads the regular file name whole, refusing what is not a
// regular file (a FIFO would block, /dev/zero would never end) and what is
// larger than limit bytes: [attest.ReadFileLimited], the one reader of
// input files.
func readLimited(name string, limit int64) ([]byte, error) {
	return attest.ReadFileLimited(name, limit)
}
