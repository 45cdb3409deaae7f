package exchange

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
)

// Both stream protocols of this package frame their messages the same
// way: a request is one message, and a response is a status byte and one
// message, where a message is its length (an unsigned varint) and that
// many bytes. One request and one response per stream.

// Response status bytes.
const (
	statusOK       byte = 0 // the bytes asked for follow
	statusNotFound byte = 1 // the peer has no such thing; a message follows
	statusBad      byte = 2 // the request is malformed or over a limit; a message follows
	statusError    byte = 3 // the peer failed to read it; a message follows
	statusBusy     byte = 4 // busy: ask later or elsewhere; a message follows
	statusPartial  byte = 5 // fetching the blob itself, without that part yet: the parts it holds follow
)

// maxHaveMessage bounds the message of a statusPartial response: a chunk
// size and a bitmap of up to 2^19 chunks.
const maxHaveMessage = binary.MaxVarintLen64 + 1<<16

// maxErrorMessage bounds the message of a response that is not OK.
const maxErrorMessage = 1024

// ErrTooLarge is wrapped by the error for a message over its size limit.
// Use errors.Is.
var ErrTooLarge = errors.New("exchange: message too large")

// ErrMalformed is wrapped by the error for a request or response that is
// not in the protocol's form. Use errors.Is.
var ErrMalformed = errors.New("exchange: malformed message")

// writeMessage writes b as a length-prefixed message.
func writeMessage(w io.Writer, b []byte) error {
	var n [binary.MaxVarintLen64]byte
	if _, err := w.Write(n[:binary.PutUvarint(n[:], uint64(len(b)))]); err != nil {
		return err
	}
	_, err := w.Write(b)
	return err
}

// readLength reads a message length and checks it against limit.
func readLength(r io.ByteReader, limit int64) (int64, error) {
	cr := &countingByteReader{r: r}
	n, err := binary.ReadUvarint(cr)
	if errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("%w: no length: %w", ErrMalformed, io.ErrUnexpectedEOF)
	}
	if err != nil {
		return 0, fmt.Errorf("%w: bad length: %w", ErrMalformed, noEOF(err))
	}
	var buf [binary.MaxVarintLen64]byte
	if binary.PutUvarint(buf[:], n) != cr.n {
		return 0, fmt.Errorf("%w: length %d in %d bytes, not in its shortest form", ErrMalformed, n, cr.n)
	}
	if n > uint64(limit) {
		return 0, fmt.Errorf("%w: %d bytes announced, over the %d byte limit", ErrTooLarge, n, limit)
	}
	return int64(n), nil
}

type countingByteReader struct {
	r io.ByteReader
	n int
}

func (c *countingByteReader) ReadByte() (byte, error) {
	b, err := c.r.ReadByte()
	if err == nil {
		c.n++
	}
	return b, err
}

// readMessage reads a length-prefixed message of at most limit bytes.
func readMessage(r *bufio.Reader, limit int64) ([]byte, error) {
	n, err := readLength(r, limit)
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if k, err := io.ReadFull(r, b); err != nil {
		return nil, fmt.Errorf("%w: %d of %d bytes: %w", ErrMalformed, k, n, noEOF(err))
	}
	return b, nil
}

// noEOF turns io.EOF into io.ErrUnexpectedEOF: inside a message, the end
// of the stream is always unexpected.
func noEOF(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// writeStatus writes a response that is not OK: the status and a message.
func writeStatus(w io.Writer, status byte, msg string) error {
	if len(msg) > maxErrorMessage {
		msg = msg[:maxErrorMessage]
	}
	if _, err := w.Write([]byte{status}); err != nil {
		return err
	}
	return writeMessage(w, []byte(msg))
}

// readStatus reads a response's status byte and, when it is not OK, its
// message: the returned error is the peer's, wrapping what the status
// means (fs.ErrNotExist for statusNotFound, see statusErr).
func readStatus(r *bufio.Reader) error {
	status, err := r.ReadByte()
	if err != nil {
		return fmt.Errorf("%w: no status: %w", ErrMalformed, noEOF(err))
	}
	if status == statusOK {
		return nil
	}
	if status > statusPartial {
		return fmt.Errorf("%w: unknown status %d", ErrMalformed, status)
	}
	if status == statusPartial {
		msg, err := readMessage(r, maxHaveMessage)
		if err != nil {
			return fmt.Errorf("status %d: %w", status, err)
		}
		chunk, k := binary.Uvarint(msg)
		if k <= 0 || chunk == 0 || chunk > MaxRequestLength {
			return fmt.Errorf("%w: status %d: bad chunk size", ErrMalformed, status)
		}
		return &PeerError{Status: statusBusy, Msg: "fetching it, and that part has not come yet", chunk: int64(chunk), have: msg[k:]}
	}
	msg, err := readMessage(r, maxErrorMessage)
	if err != nil {
		return fmt.Errorf("status %d: %w", status, err)
	}
	return &PeerError{Status: status, Msg: printable(string(msg))}
}

// PeerError is an answer of a peer that is not the bytes asked for: it
// does not have them, the request was refused, or it failed. Its Unwrap
// gives fs.ErrNotExist for a peer that does not have them.
type PeerError struct {
	Status byte
	// Msg is the peer's message, made printable.
	Msg string

	// chunk and have, for a peer fetching the blob itself: the parts of
	// chunk bytes it holds, a bit each (the first the lowest bit of
	// have[0]).
	chunk int64
	have  []byte
}

// has says whether a bitmap has bit c.
func has(bitmap []byte, c int64) bool {
	return c >= 0 && c/8 < int64(len(bitmap)) && bitmap[c/8]&(1<<(c%8)) != 0
}

func (e *PeerError) Error() string {
	switch e.Status {
	case statusNotFound:
		return "peer has no such thing: " + e.Msg
	case statusBad:
		return "peer refused the request: " + e.Msg
	case statusBusy:
		return "peer is busy: " + e.Msg
	default:
		return "peer failed: " + e.Msg
	}
}

func (e *PeerError) Unwrap() error {
	if e.Status == statusNotFound {
		return fs.ErrNotExist
	}
	return nil
}

// printable replaces what a terminal should not see in a peer's message.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '\uFFFD' {
			return '?'
		}
		return r
	}, s)
}
