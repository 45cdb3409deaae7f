package witness

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// MaxCheckpointSize is the largest signed checkpoint note accepted, in bytes.
const MaxCheckpointSize = 1 << 20

// HashSize is the size of an RFC 6962 SHA-256 root hash.
const HashSize = 32

// SignCheckpoint returns cp as a signed note: the C2SP tlog-checkpoint body
// followed by the signature of s.
func SignCheckpoint(s note.Signer, cp log.Checkpoint) ([]byte, error) {
	if _, err := ParseCheckpointText(cp.Marshal()); err != nil {
		return nil, err
	}
	b, err := note.Sign(&note.Note{Text: string(cp.Marshal())}, s)
	if err != nil {
		return nil, fmt.Errorf("witness: signing checkpoint: %w", err)
	}
	return b, nil
}

// ParseCheckpoint opens a signed checkpoint note, checks that logVerifier has
// signed it and that its origin is origin, and parses its body. Other
// signatures (cosignatures, say) are left in the note's UnverifiedSigs.
func ParseCheckpoint(noteBytes []byte, origin string, logVerifier note.Verifier) (*log.Checkpoint, *note.Note, error) {
	if logVerifier == nil {
		return nil, nil, errors.New("witness: no log verifier given")
	}
	n, err := openNote(noteBytes, note.VerifierList(logVerifier))
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		switch {
		case errors.As(err, &unverified):
			return nil, nil, fmt.Errorf("witness: checkpoint has no signature by log key %q", logVerifier.Name())
		case errors.As(err, &invalid):
			return nil, nil, fmt.Errorf("witness: checkpoint signature by log key %q does not verify: %w", logVerifier.Name(), err)
		}
		return nil, nil, err
	}
	cp, err := ParseCheckpointText([]byte(n.Text))
	if err != nil {
		return nil, nil, err
	}
	if cp.Origin != origin {
		return nil, nil, fmt.Errorf("witness: checkpoint is for log %q, want %q", cp.Origin, origin)
	}
	return cp, n, nil
}

// openNote is note.Open with a size limit and a clearer error for input that
// is not a note at all.
func openNote(noteBytes []byte, known note.Verifiers) (*note.Note, error) {
	if len(noteBytes) > MaxCheckpointSize {
		return nil, fmt.Errorf("witness: checkpoint note is %d bytes, more than the limit of %d", len(noteBytes), MaxCheckpointSize)
	}
	n, err := note.Open(noteBytes, known)
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		if errors.As(err, &unverified) || errors.As(err, &invalid) {
			return nil, err
		}
		return nil, fmt.Errorf("witness: not a signed note: %w", err)
	}
	return n, nil
}

// ParseCheckpointText parses the text of a checkpoint note: the origin, the
// decimal tree size and the base64 SHA-256 root hash, each on a line ending
// in a newline, then optional non-empty extension lines. It is strict: no
// leading zeros in the size, and a root of exactly [HashSize] bytes.
func ParseCheckpointText(text []byte) (*log.Checkpoint, error) {
	if len(text) > MaxCheckpointSize {
		return nil, fmt.Errorf("witness: checkpoint is %d bytes, more than the limit of %d", len(text), MaxCheckpointSize)
	}
	if !bytes.HasSuffix(text, []byte("\n")) {
		return nil, errors.New("witness: malformed checkpoint: does not end with a newline")
	}
	lines := strings.Split(string(text[:len(text)-1]), "\n")
	if len(lines) < 3 {
		return nil, fmt.Errorf("witness: malformed checkpoint: %d lines, want at least 3 (origin, size, root hash)", len(lines))
	}
	for i, l := range lines {
		if l == "" {
			return nil, fmt.Errorf("witness: malformed checkpoint: line %d is empty", i+1)
		}
	}
	origin, sizeText, rootText := lines[0], lines[1], lines[2]
	size, err := strconv.ParseUint(sizeText, 10, 64)
	if err != nil || (len(sizeText) > 1 && sizeText[0] == '0') {
		return nil, fmt.Errorf("witness: malformed checkpoint: size %q is not a decimal number", sizeText)
	}
	root, err := base64.StdEncoding.Strict().DecodeString(rootText)
	if err != nil {
		return nil, fmt.Errorf("witness: malformed checkpoint: root hash %q is not base64", rootText)
	}
	if len(root) != HashSize {
		return nil, fmt.Errorf("witness: malformed checkpoint: root hash is %d bytes, want %d", len(root), HashSize)
	}
	return &log.Checkpoint{Origin: origin, Size: size, Hash: root}, nil
}

// AddSignatures returns noteBytes with sigs appended to its signatures.
// Signatures are not verified. A signature whose key (name and key hash) is
// already in the note, or earlier in sigs, is dropped: the first one stays.
// The order is that of the note, then that of sigs.
func AddSignatures(noteBytes []byte, sigs ...note.Signature) ([]byte, error) {
	n, err := openNote(noteBytes, nil)
	var unverified *note.UnverifiedNoteError
	if !errors.As(err, &unverified) {
		if err == nil {
			// Unreachable: no verifier means no verified signature.
			err = errors.New("witness: note unexpectedly verified")
		}
		return nil, err
	}
	n = unverified.Note
	type key struct {
		name string
		hash uint32
	}
	seen := make(map[key]bool)
	var all []note.Signature
	for _, list := range [][]note.Signature{n.UnverifiedSigs, sigs} {
		for _, s := range list {
			if seen[key{s.Name, s.Hash}] {
				continue
			}
			seen[key{s.Name, s.Hash}] = true
			all = append(all, s)
		}
	}
	b, err := note.Sign(&note.Note{Text: n.Text, Sigs: all})
	if err != nil {
		return nil, fmt.Errorf("witness: adding signatures: %w", err)
	}
	return b, nil
}
