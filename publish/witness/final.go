package witness

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// ErrNotFinal is returned by [VerifyFinal] for a checkpoint with too few
// cosignatures. Use errors.Is; errors.As with a [*NotFinalError] gives the
// details.
var ErrNotFinal = errors.New("witness: checkpoint is not final")

// NotFinalError says which cosigners are missing from a checkpoint.
type NotFinalError struct {
	Checkpoint log.Checkpoint
	Signed     []string // names of the cosigners whose cosignature verified
	Missing    []string // names of the others
	Threshold  int
}

func (e *NotFinalError) Error() string {
	return fmt.Sprintf("witness: checkpoint of %q at size %d is not final: cosigned by %d of %d cosigners, need %d; missing %s",
		e.Checkpoint.Origin, e.Checkpoint.Size, len(e.Signed), len(e.Signed)+len(e.Missing), e.Threshold,
		strings.Join(e.Missing, ", "))
}

// Unwrap returns [ErrNotFinal].
func (e *NotFinalError) Unwrap() error { return ErrNotFinal }

// Threshold returns the absolute majority of n: floor(n/2)+1.
func Threshold(n int) int { return n/2 + 1 }

// VerifyFinal checks that noteBytes is a checkpoint of origin signed by the
// log and cosigned (tlog-cosignature/v1, from [NewCosignatureVerifier]) by at
// least threshold of cosigners. It returns the checkpoint and the names of the
// cosigners whose cosignature verified, in the order of cosigners.
//
// Signatures by keys not in cosigners are ignored, and so are cosignatures
// that do not verify: a bad signature line, which anyone can append to a
// note, can make a checkpoint lack cosigners but never fail otherwise.
// With too few cosignatures the error is a [*NotFinalError], and the
// checkpoint and names are returned too.
func VerifyFinal(noteBytes []byte, origin string, logVerifier note.Verifier, cosigners []note.Verifier, threshold int) (*log.Checkpoint, []string, error) {
	if threshold < 1 || threshold > len(cosigners) {
		return nil, nil, fmt.Errorf("witness: threshold %d out of range 1 to %d cosigners", threshold, len(cosigners))
	}
	type key struct {
		name string
		hash uint32
	}
	listed := make(map[key]bool)
	for _, v := range cosigners {
		k := key{v.Name(), v.KeyHash()}
		if listed[k] {
			return nil, nil, fmt.Errorf("witness: cosigner %q listed twice", v.Name())
		}
		listed[k] = true
	}

	// Open with the log verifier alone, not with note.Open and every
	// cosigner: note.Open fails on any known key whose signature does not
	// verify, so one bad line would hide every good cosignature.
	cp, n, err := ParseCheckpoint(noteBytes, origin, logVerifier)
	if err != nil {
		return nil, nil, err
	}
	var signed, missing []string
	for _, v := range cosigners {
		if hasValidSig(n, v) {
			signed = append(signed, v.Name())
		} else {
			missing = append(missing, v.Name())
		}
	}
	if len(signed) < threshold {
		return cp, signed, &NotFinalError{Checkpoint: *cp, Signed: signed, Missing: missing, Threshold: threshold}
	}
	return cp, signed, nil
}

// hasValidSig reports whether n has a signature by v that verifies.
func hasValidSig(n *note.Note, v note.Verifier) bool {
	for _, s := range n.UnverifiedSigs {
		if s.Name != v.Name() || s.Hash != v.KeyHash() {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(s.Base64)
		if err != nil || len(raw) < 4 {
			continue
		}
		if v.Verify([]byte(n.Text), raw[4:]) {
			return true
		}
	}
	return false
}
