package witness

import (
	"context"
	"sync"

	"golang.org/x/mod/sumdb/note"
)

// CosignAll asks every cosigner, at once, to cosign checkpointNote (a
// checkpoint signed by the log), with consistency proofs from src, and
// returns the note with the cosignatures it got added ([AddSignatures]).
// errs holds, in the order of cosigners, each one's error: nil for those
// that cosigned. err is for a note that cosignatures cannot be added to.
// CosignAll returns when every cosigner has answered; each returns when
// ctx is done.
//
// Whether the cosigned note is final is the caller's rule: [VerifyFinal],
// or policy.Trust.VerifyCheckpoint.
func CosignAll(ctx context.Context, checkpointNote []byte, src ProofSource, cosigners []CosignerClient) (signed []byte, errs []error, err error) {
	sigs := make([]note.Signature, len(cosigners))
	errs = make([]error, len(cosigners))
	var wg sync.WaitGroup
	for i, c := range cosigners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sigs[i], errs[i] = c.Cosign(ctx, checkpointNote, src)
		}()
	}
	wg.Wait()
	var got []note.Signature
	for i, s := range sigs {
		if errs[i] == nil {
			got = append(got, s)
		}
	}
	if len(got) == 0 {
		return checkpointNote, errs, nil
	}
	signed, err = AddSignatures(checkpointNote, got...)
	if err != nil {
		return nil, errs, err
	}
	return signed, errs, nil
}
