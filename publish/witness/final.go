package witness

import (
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
	// Invalid names those of Missing whose cosignature line is on the
	// checkpoint but does not verify (a forged or damaged line, or a
	// cosignature of other text).
	Invalid   []string
	Threshold int
}

func (e *NotFinalError) Error() string {
	bad := make(map[string]bool, len(e.Invalid))
	for _, n := range e.Invalid {
		bad[n] = true
	}
	var absent []string
	for _, n := range e.Missing {
		if !bad[n] {
			absent = append(absent, n)
		}
	}
	var why []string
	if len(absent) > 0 {
		why = append(why, "missing "+strings.Join(absent, ", "))
	}
	if len(e.Invalid) > 0 {
		why = append(why, "cosignature does not verify: "+strings.Join(e.Invalid, ", "))
	}
	return fmt.Sprintf("witness: checkpoint of %q at size %d is not final: cosigned by %d of %d cosigners, need %d; %s",
		e.Checkpoint.Origin, e.Checkpoint.Size, len(e.Signed), len(e.Signed)+len(e.Missing), e.Threshold,
		strings.Join(why, "; "))
}

// Unwrap returns [ErrNotFinal].
func (e *NotFinalError) Unwrap() error { return ErrNotFinal }

// Threshold returns the absolute majority of n: floor(n/2)+1.
func Threshold(n int) int { return n/2 + 1 }

// VerifyFinal checks that noteBytes is a checkpoint of origin signed by one
// of logVerifiers and cosigned (tlog-cosignature/v1, from
// [NewCosignatureVerifier]) by at least threshold distinct keys of
// cosigners. It returns the checkpoint and the names of the cosigners whose
// cosignature verified, in the order of cosigners.
//
// Cosigners are counted by public key (see [Distinct]), never by name: a
// cosignature/v1 signature does not cover the key's name, so one key listed
// under two names counts once, and threshold may be at most the number of
// distinct keys.
//
// Signatures by keys not in cosigners are ignored, and so are cosignatures
// that do not verify: a bad signature line, which anyone can append to a
// note, can make a checkpoint lack cosigners but never fail otherwise.
// With too few cosignatures the error is a [*NotFinalError], and the
// checkpoint and names are returned too.
func VerifyFinal(noteBytes []byte, origin string, logVerifiers []note.Verifier, cosigners []note.Verifier, threshold int) (*log.Checkpoint, []string, error) {
	distinct, _ := Distinct(cosigners)
	if threshold < 1 || threshold > len(distinct) {
		if len(distinct) < len(cosigners) {
			return nil, nil, fmt.Errorf("witness: threshold %d out of range 1 to %d cosigners (%d listed, some under two names with one key)", threshold, len(distinct), len(cosigners))
		}
		return nil, nil, fmt.Errorf("witness: threshold %d out of range 1 to %d cosigners", threshold, len(distinct))
	}

	// Open with the log verifiers alone, not with note.Open and every
	// cosigner: note.Open fails on any known key whose signature does not
	// verify, so one bad line would hide every good cosignature.
	cp, n, err := ParseCheckpoint(noteBytes, origin, logVerifiers...)
	if err != nil {
		return nil, nil, err
	}
	// A key counts once, under the first name that carries a valid
	// cosignature by it.
	byKey := make(map[string][]note.Verifier)
	for _, v := range cosigners {
		byKey[PublicKey(v)] = append(byKey[PublicKey(v)], v)
	}
	var signed, missing, invalid []string
	for _, first := range distinct {
		name, seen := "", false
		for _, v := range byKey[PublicKey(first)] {
			ok, present := verifies(n, v)
			if ok {
				name = v.Name()
				break
			}
			seen = seen || present
		}
		switch {
		case name != "":
			signed = append(signed, name)
		case seen:
			missing = append(missing, first.Name())
			invalid = append(invalid, first.Name())
		default:
			missing = append(missing, first.Name())
		}
	}
	if len(signed) < threshold {
		return cp, signed, &NotFinalError{Checkpoint: *cp, Signed: signed, Missing: missing, Invalid: invalid, Threshold: threshold}
	}
	return cp, signed, nil
}
