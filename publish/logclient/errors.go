package logclient

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/transparency-dev/merkle/proof"
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
	msg := strings.TrimPrefix(e.Err.Error(), "logclient: ")
	if e.What == "" {
		return fmt.Sprintf("logclient: %s: %s", e.Source, msg)
	}
	return fmt.Sprintf("logclient: %s: %s: %s", e.Source, e.What, msg)
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

// tagged is an error with a message of its own that also is a sentinel.
type tagged struct{ sentinel, err error }

func (t tagged) Error() string   { return t.err.Error() }
func (t tagged) Unwrap() []error { return []error{t.sentinel, t.err} }

// tag returns the error of format and args (which may hold a %w) that is
// also sentinel for errors.Is.
func tag(sentinel error, format string, args ...any) error {
	return tagged{sentinel, fmt.Errorf(format, args...)}
}

// trimmed is err with the package prefix of its message cut off, for
// errors of packages witness and tlog inside ours.
type trimmed struct{ err error }

func (t trimmed) Error() string {
	msg := t.err.Error()
	for _, p := range []string{"witness: ", "tlog: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return msg
}
func (t trimmed) Unwrap() error { return t.err }

// unnamed is an *Error of source src with the package and source cut off
// its message, to wrap in another error that names the source.
type unnamed struct {
	err error
	src string
}

func (u unnamed) Error() string {
	return strings.TrimPrefix(u.err.Error(), "logclient: "+u.src+": ")
}
func (u unnamed) Unwrap() error { return u.err }

// merkleErr makes the proof errors of package merkle readable: its root
// mismatch prints the roots as lists of byte values.
func merkleErr(err error) error {
	var rm proof.RootMismatchError
	if errors.As(err, &rm) {
		return tagged{err, fmt.Errorf("the proof leads to root %s, not %s",
			base64.StdEncoding.EncodeToString(rm.CalculatedRoot), base64.StdEncoding.EncodeToString(rm.ExpectedRoot))}
	}
	return err
}

// hintOtherSource is the advice for answers that do not match their
// checkpoint.
const hintOtherSource = "the log's tiles or entries do not match its checkpoint: read it from another build node or mirror"
