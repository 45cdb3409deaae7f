package witness

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// MaxCheckpointSize is the largest signed checkpoint note accepted, in
// bytes, with all its signatures: the one limit for checkpoints everywhere
// (a note with a hundred signature lines is under 16 KiB).
const MaxCheckpointSize = 64 << 10

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

// ParseCheckpoint opens a signed checkpoint note, checks that one of
// logVerifiers has signed it and that its origin is origin, and parses its
// body. Every other signature (cosignatures, say) is left in the note's
// UnverifiedSigs, and so are signatures of logVerifiers that do not verify:
// a bad signature line, which anyone can append to a note, never hides a
// good one.
func ParseCheckpoint(noteBytes []byte, origin string, logVerifiers ...note.Verifier) (*log.Checkpoint, *note.Note, error) {
	if len(logVerifiers) == 0 || slices.Contains(logVerifiers, nil) {
		return nil, nil, errors.New("witness: no log verifier given")
	}
	n, err := OpenUnverified(noteBytes)
	if err != nil {
		return nil, nil, err
	}
	var signer note.Verifier
	var bad []string
	for _, v := range logVerifiers {
		ok, present := verifies(n, v)
		if ok {
			signer = v
			break
		}
		if present {
			bad = append(bad, v.Name())
		}
	}
	if signer == nil {
		names := make([]string, len(logVerifiers))
		for i, v := range logVerifiers {
			names[i] = v.Name()
		}
		if len(bad) > 0 {
			return nil, nil, fmt.Errorf("witness: checkpoint signature by log key %q does not verify", strings.Join(bad, `", "`))
		}
		return nil, nil, fmt.Errorf("witness: checkpoint has no signature by log key %q", strings.Join(names, `" or "`))
	}
	cp, err := ParseCheckpointText([]byte(n.Text))
	if err != nil {
		return nil, nil, err
	}
	if cp.Origin != origin {
		return nil, nil, fmt.Errorf("witness: checkpoint is for log %q, want %q", truncate(cp.Origin), truncate(origin))
	}
	// Move the log signature to the verified ones, as note.Open does.
	var rest []note.Signature
	for _, s := range n.UnverifiedSigs {
		if len(n.Sigs) == 0 && s.Name == signer.Name() && s.Hash == signer.KeyHash() && sigVerifies(n.Text, s, signer) {
			n.Sigs = append(n.Sigs, s)
			continue
		}
		rest = append(rest, s)
	}
	n.UnverifiedSigs = rest
	return cp, n, nil
}

// OpenUnverified decodes a signed note of at most [MaxCheckpointSize]
// bytes without verifying any signature: all of them are in the result's
// UnverifiedSigs. It is the one place a checkpoint note from outside is
// decoded, for [ParseCheckpoint] and for readers that must look at a
// checkpoint before they know its keys.
func OpenUnverified(noteBytes []byte) (*note.Note, error) {
	_, err := openNote(noteBytes, nil)
	var unverified *note.UnverifiedNoteError
	if errors.As(err, &unverified) {
		return unverified.Note, nil
	}
	if err == nil {
		// Unreachable: no verifier means no verified signature.
		err = errors.New("witness: note unexpectedly verified")
	}
	return nil, err
}

// verifies reports whether n has a signature line by v (present) and
// whether one of them verifies (ok).
func verifies(n *note.Note, v note.Verifier) (ok, present bool) {
	for _, s := range n.UnverifiedSigs {
		if s.Name != v.Name() || s.Hash != v.KeyHash() {
			continue
		}
		present = true
		if sigVerifies(n.Text, s, v) {
			return true, true
		}
	}
	return false, present
}

func sigVerifies(text string, s note.Signature, v note.Verifier) bool {
	raw, err := base64.StdEncoding.DecodeString(s.Base64)
	if err != nil || len(raw) < 4 {
		return false
	}
	return v.Verify([]byte(text), raw[4:])
}

// truncate shortens s for an error message.
func truncate(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// openNote is note.Open with a size limit and a clearer error for input that
// is not a note at all.
func openNote(noteBytes []byte, known note.Verifiers) (*note.Note, error) {
	if len(noteBytes) > MaxCheckpointSize {
		return nil, fmt.Errorf("witness: checkpoint note is %d bytes, over the %d byte limit", len(noteBytes), MaxCheckpointSize)
	}
	n, err := note.Open(noteBytes, known)
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		if errors.As(err, &unverified) || errors.As(err, &invalid) {
			return nil, err
		}
		return nil, fmt.Errorf("witness: not a signed note: %s", explainNote(noteBytes, err))
	}
	return n, nil
}

// explainNote says why note.Open found a note malformed, which it does not.
func explainNote(b []byte, err error) string {
	s := string(b)
	text, sigs, ok := strings.Cut(s, "\n\n")
	switch {
	case !strings.HasSuffix(s, "\n"):
		return "does not end with a newline"
	case !ok:
		return "no blank line between the text and the signature lines"
	case sigs == "" || strings.HasPrefix(sigs, "\n"):
		return "no signature lines after the blank line"
	case strings.Contains(text, "\n\n"):
		return "an empty line in the text"
	}
	for i, line := range strings.Split(strings.TrimSuffix(sigs, "\n"), "\n") {
		name, b64, ok := strings.Cut(strings.TrimPrefix(line, "— "), " ")
		raw, derr := base64.StdEncoding.DecodeString(b64)
		if !strings.HasPrefix(line, "— ") || !ok || name == "" || derr != nil || len(raw) < 5 {
			return fmt.Sprintf("signature line %d is not \"— <name> <base64 key hash and signature>\"", i+1)
		}
	}
	return err.Error()
}

// ParseCheckpointText parses the text of a checkpoint note: the origin, the
// decimal tree size and the base64 SHA-256 root hash, each on a line ending
// in a newline, then optional non-empty extension lines. It is strict: no
// leading zeros in the size, and a root of exactly [HashSize] bytes.
func ParseCheckpointText(text []byte) (*log.Checkpoint, error) {
	if len(text) > MaxCheckpointSize {
		return nil, fmt.Errorf("witness: checkpoint is %d bytes, over the %d byte limit", len(text), MaxCheckpointSize)
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
// Signatures are not verified, so none is dropped for another of the same
// key (name and key hash): a junk line for a key, which anyone can append
// to a note on its way, must not hide that key's genuine signature added
// after it. Verifiers ([VerifyFinal]) try every line of a key. Only a line
// that is already there, byte for byte, is dropped. The order is that of
// the note, then that of sigs.
func AddSignatures(noteBytes []byte, sigs ...note.Signature) ([]byte, error) {
	n, err := OpenUnverified(noteBytes)
	if err != nil {
		return nil, err
	}
	seen := make(map[note.Signature]bool)
	var all []note.Signature
	for _, list := range [][]note.Signature{n.UnverifiedSigs, sigs} {
		for _, s := range list {
			if seen[s] {
				continue
			}
			seen[s] = true
			all = append(all, s)
		}
	}
	b, err := note.Sign(&note.Note{Text: n.Text, Sigs: all})
	if err != nil {
		return nil, fmt.Errorf("witness: adding signatures: %w", err)
	}
	return b, nil
}
