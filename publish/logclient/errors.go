package logclient

import (
	"errors"
	"fmt"
)

// Error is the error of a read from a Source: it names the source, what
// was read (an entry index, a tree size), what went wrong, and what to do.
type Error struct {
	// Source names the log: "log at URL", "log folder DIR".
	Source string
	// What was being read or checked, such as "entry 12"; may be empty.
	What string
	Err  error
	// Hint says what to do; may be empty.
	Hint string
}

func (e *Error) Error() string {
	if e.What == "" {
		return fmt.Sprintf("logclient: %s: %v", e.Source, e.Err)
	}
	return fmt.Sprintf("logclient: %s: %s: %v", e.Source, e.What, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Hint returns the advice carried by the first *Error in err's chain, or "".
func Hint(err error) string {
	var e *Error
	for errors.As(err, &e) {
		if e.Hint != "" {
			return e.Hint
		}
		err = e.Err
	}
	return ""
}

var (
	// ErrOutOfRange is wrapped by the error for an index or a size past
	// the checkpoint's tree. Use errors.Is.
	ErrOutOfRange = errors.New("logclient: past the end of the log")
	// ErrProof is wrapped by the error for an entry or a proof that does
	// not lead to a checkpoint's root: the source's tiles or entries do
	// not match its checkpoint. Use errors.Is.
	ErrProof = errors.New("logclient: proof does not verify")
	// ErrCheckpoint is wrapped by the error for a checkpoint that is not
	// acceptable: not a checkpoint, another log's, not signed by a log
	// key, or not final. Use errors.Is (and witness.ErrNotFinal for the
	// last).
	ErrCheckpoint = errors.New("logclient: checkpoint not verified")
)

// hintOtherSource is the advice for answers that do not match their
// checkpoint.
const hintOtherSource = "the log's tiles or entries do not match its checkpoint: read it from another build node or mirror"
