package witness

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/internal/fsutil"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// StateFile is the name of the file, in a [Cosigner]'s state directory, that
// holds the last checkpoint it cosigned.
const StateFile = "cosigned-checkpoint"

// ErrFork is wrapped by a [*ForkError]: the proof that the log forked, two
// checkpoints both signed by the log key that cannot both be true. Use
// errors.Is.
var ErrFork = errors.New("witness: the log forked")

// ErrConflict is wrapped by a [*ConflictError]: the checkpoint offered is
// behind the one last cosigned (the submitter is stale, or lying). Nothing
// is proven about the log. It is C2SP tlog-witness's "409 Conflict". Use
// errors.Is.
var ErrConflict = errors.New("witness: checkpoint is behind the one last cosigned")

// ErrBadProof is wrapped by a [*BadProofError]: the consistency proof given
// for a checkpoint does not verify. As the proof source need not be
// trusted, this proves nothing about the log either. It is C2SP
// tlog-witness's "422 Unprocessable Entity". Use errors.Is.
var ErrBadProof = errors.New("witness: consistency proof does not verify")

// ForkError is the evidence that the log signed two checkpoints that cannot
// both be true: the same tree size with different roots. Old and New are
// both signed by the log key, so anyone can check the evidence.
type ForkError struct {
	// Old is the signed note of the checkpoint last cosigned, and OldCheckpoint its body.
	Old           []byte
	OldCheckpoint log.Checkpoint
	// New is the signed note of the refused checkpoint, and NewCheckpoint its body.
	New           []byte
	NewCheckpoint log.Checkpoint
	// OldSigner and NewSigner name the log keys that signed Old and New.
	// When they differ (in a network, every build node's key signs
	// checkpoints), the evidence shows that two nodes disagree, not that
	// the log forked: one of them signed a tree the other does not hold.
	OldSigner, NewSigner string
	// Reason says what is wrong.
	Reason string
}

// SameSigner reports whether one log key signed both checkpoints: only
// then is the evidence proof that the log forked.
func (e *ForkError) SameSigner() bool { return e.OldSigner == e.NewSigner }

func (e *ForkError) Error() string {
	if !e.SameSigner() {
		return fmt.Sprintf("witness: checkpoints of %q by two log keys disagree (%s): %q signed size %d root %s, %q signed size %d root %s; "+
			"one of these nodes signed a tree the other does not hold, which proves no fork of the log",
			truncate(e.NewCheckpoint.Origin), e.Reason,
			truncate(e.OldSigner), e.OldCheckpoint.Size, base64.StdEncoding.EncodeToString(e.OldCheckpoint.Hash),
			truncate(e.NewSigner), e.NewCheckpoint.Size, base64.StdEncoding.EncodeToString(e.NewCheckpoint.Hash))
	}
	return fmt.Sprintf("witness: the log %q forked: %s: cosigned size %d root %s, offered size %d root %s",
		truncate(e.NewCheckpoint.Origin), e.Reason,
		e.OldCheckpoint.Size, base64.StdEncoding.EncodeToString(e.OldCheckpoint.Hash),
		e.NewCheckpoint.Size, base64.StdEncoding.EncodeToString(e.NewCheckpoint.Hash))
}

// Unwrap returns [ErrFork] when one log key signed both checkpoints, and
// [ErrDisagree] when two did.
func (e *ForkError) Unwrap() error {
	if !e.SameSigner() {
		return ErrDisagree
	}
	return ErrFork
}

// ErrDisagree is wrapped by a [*ForkError] whose two checkpoints were
// signed by different log keys: two build nodes disagree on the tree at a
// size. Use errors.Is.
var ErrDisagree = errors.New("witness: checkpoints by two log keys disagree")

// ErrNotReplica is wrapped by a [*ReplicaError]: the checkpoint offered is
// not the cosigning node's own replica's tree at that size, or the replica
// does not hold that size yet. Use errors.Is.
var ErrNotReplica = errors.New("witness: checkpoint is not this node's replica")

// ReplicaError says that a checkpoint offered to a [Cosigner] with a
// [Replica] is not the replica's: its root differs from the replica's root
// at its size (Root is then set), or the replica could not give that root
// (Err: it is behind, say).
type ReplicaError struct {
	Checkpoint log.Checkpoint
	Signer     string // the log key that signed the offered checkpoint
	Root       []byte // the replica's root at the checkpoint's size, if known
	Err        error
}

func (e *ReplicaError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("witness: cosigner: checkpoint of %q at size %d, signed by %q: no root of this node's replica at that size to compare with: %v",
			truncate(e.Checkpoint.Origin), e.Checkpoint.Size, truncate(e.Signer), e.Err)
	}
	return fmt.Sprintf("witness: cosigner: checkpoint of %q at size %d, signed by %q, has root %s, this node's replica %s: not cosigned (%q signed a tree this node does not hold)",
		truncate(e.Checkpoint.Origin), e.Checkpoint.Size, truncate(e.Signer), base64.StdEncoding.EncodeToString(e.Checkpoint.Hash),
		base64.StdEncoding.EncodeToString(e.Root), truncate(e.Signer))
}

// Unwrap returns [ErrNotReplica] and the replica's error, if any.
func (e *ReplicaError) Unwrap() []error { return []error{ErrNotReplica, e.Err} }

// Replica is the cosigning node's own copy of the log. Its contract:
// RootAt returns the RFC 6962 root hash of the replica's tree at size, or
// an error if the replica does not hold size entries (yet); the roots it
// returns are those of one append-only tree. It returns when ctx is done.
type Replica interface {
	RootAt(ctx context.Context, size uint64) ([]byte, error)
}

// ReplicaFunc adapts a function to a [Replica].
type ReplicaFunc func(ctx context.Context, size uint64) ([]byte, error)

// RootAt calls f.
func (f ReplicaFunc) RootAt(ctx context.Context, size uint64) ([]byte, error) { return f(ctx, size) }

// ConflictError says that the checkpoint offered is smaller than the one
// last cosigned, or (from [Cosigner.AddCheckpoint]) that the old size given
// is not the size of the one last cosigned. Latest is the size to extend
// from, what a C2SP tlog-witness sends back with "409 Conflict".
type ConflictError struct {
	Origin  string
	Latest  uint64 // size of the checkpoint last cosigned
	Offered uint64 // size of the checkpoint offered
	OldSize uint64 // the old size the submitter gave, for AddCheckpoint
}

func (e *ConflictError) Error() string {
	if e.Offered >= e.Latest {
		return fmt.Sprintf("witness: checkpoint of %q: old size %d is not the size last cosigned, %d (send a consistency proof from size %d)",
			truncate(e.Origin), e.OldSize, e.Latest, e.Latest)
	}
	return fmt.Sprintf("witness: checkpoint of %q at size %d is behind the one last cosigned at size %d (the submitter is stale: send a checkpoint of at least size %d)",
		truncate(e.Origin), e.Offered, e.Latest, e.Latest)
}

// Unwrap returns [ErrConflict].
func (e *ConflictError) Unwrap() error { return ErrConflict }

// BadProofError says that the consistency proof from OldSize to NewSize
// did not verify.
type BadProofError struct {
	Origin           string
	OldSize, NewSize uint64
	Err              error
}

func (e *BadProofError) Error() string {
	return fmt.Sprintf("witness: consistency proof of %q from size %d to %d does not verify (a bad proof source, or a forked log: nothing is proven): %v",
		truncate(e.Origin), e.OldSize, e.NewSize, e.Err)
}

// Unwrap returns [ErrBadProof] and the proof error.
func (e *BadProofError) Unwrap() []error { return []error{ErrBadProof, e.Err} }

// CosignerClient asks a cosigner (a build node's witness) for its
// cosignature on a checkpoint. Cosign returns a tlog-cosignature/v1
// signature on checkpointNote, which must be signed by the log, once the
// cosigner has checked that it extends the last checkpoint it cosigned,
// with consistency proofs from src. It returns a [*ForkError] for proof
// that the log forked, a [*ConflictError] for a checkpoint behind the
// cosigner's, a [*BadProofError] for a proof that does not verify, and
// other errors for anything else. It returns when ctx is done.
//
// [*Cosigner] is the local implementation; a remote one speaks C2SP
// tlog-witness.
type CosignerClient interface {
	Cosign(ctx context.Context, checkpointNote []byte, src ProofSource) (note.Signature, error)
}

var _ CosignerClient = (*Cosigner)(nil)

// ProofSource gives consistency proofs of the log between two tree sizes,
// as lists of RFC 6962 hashes. It is expected to retry transient errors and to
// return when ctx is done. Its answers are checked: it need not be trusted.
type ProofSource interface {
	ConsistencyProof(ctx context.Context, oldSize, newSize uint64) ([][]byte, error)
}

// ProofSourceFunc adapts a function to a [ProofSource].
type ProofSourceFunc func(ctx context.Context, oldSize, newSize uint64) ([][]byte, error)

// ConsistencyProof calls f.
func (f ProofSourceFunc) ConsistencyProof(ctx context.Context, oldSize, newSize uint64) ([][]byte, error) {
	return f(ctx, oldSize, newSize)
}

// CosignerOptions configures a [Cosigner].
type CosignerOptions struct {
	// Signer makes the cosignatures: a tlog-cosignature/v1 signer, from
	// [NewCosignatureSigner].
	Signer note.Signer
	// Origin is the origin line of the log's checkpoints.
	Origin string
	// LogVerifier checks the log's signature on checkpoints.
	LogVerifier note.Verifier
	// LogVerifiers are more keys that may sign the log's checkpoints (in
	// a network, every build node's): a checkpoint signed by any of
	// LogVerifier and LogVerifiers is accepted. LogVerifier may then be nil.
	LogVerifiers []note.Verifier
	// StateDir holds the last cosigned checkpoint, in the file [StateFile].
	// It is created if missing.
	StateDir string
	// Replica is this node's own copy of the log. With it, the Cosigner
	// cosigns a checkpoint only if its root is the replica's root at its
	// size, and judges consistency with the last cosigned checkpoint from
	// the replica (both roots must be the replica's), never from the
	// submitter's proofs. It is required with more than one log key: any
	// of them could otherwise sign a tree that extends the last one
	// cosigned with entries of its choosing, and have the cosigner refuse
	// the real log's next checkpoint as a fork.
	Replica Replica
}

// Cosigner cosigns the checkpoints of one log, each only if it extends the
// last one it cosigned. It is safe for concurrent use; calls to Cosign run one
// at a time.
type Cosigner struct {
	opts CosignerOptions
	logs []note.Verifier // LogVerifier and LogVerifiers

	mu         sync.Mutex
	last       []byte          // signed note of the last cosigned checkpoint, nil if none
	lastCP     *log.Checkpoint // its body
	lastSigner string          // the log key that signed it
	statePath  string
}

// NewCosigner returns a Cosigner that resumes from the state in
// opts.StateDir. With no state file it trusts the first checkpoint it is
// given. A state file that cannot be read or parsed is an error: remove it
// by hand only if you know why it is broken, since that resets what this
// node vouched for.
func NewCosigner(opts CosignerOptions) (*Cosigner, error) {
	switch {
	case opts.Signer == nil:
		return nil, errors.New("witness: cosigner: no signer given")
	case opts.Origin == "":
		return nil, errors.New("witness: cosigner: no log origin given")
	case opts.LogVerifier == nil && len(opts.LogVerifiers) == 0:
		return nil, errors.New("witness: cosigner: no log verifier given")
	case opts.StateDir == "":
		return nil, errors.New("witness: cosigner: no state directory given")
	}
	if err := os.MkdirAll(opts.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("witness: cosigner: creating state directory: %w", err)
	}
	c := &Cosigner{opts: opts, statePath: filepath.Join(opts.StateDir, StateFile)}
	if opts.LogVerifier != nil {
		c.logs = append(c.logs, opts.LogVerifier)
	}
	for _, v := range opts.LogVerifiers {
		if v == nil {
			return nil, errors.New("witness: cosigner: nil log verifier")
		}
		c.logs = append(c.logs, v)
	}
	if distinct, _ := Distinct(c.logs); len(distinct) > 1 && opts.Replica == nil {
		return nil, fmt.Errorf("witness: cosigner: %d log keys and no replica: with several log keys (a network's nodes), the cosigner must compare each checkpoint with this node's own replica of the log (set CosignerOptions.Replica)", len(distinct))
	}
	b, err := attest.ReadFileLimited(c.statePath, MaxCheckpointSize)
	if errors.Is(err, fs.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("witness: cosigner: reading state: %w", err)
	}
	cp, n, err := ParseCheckpoint(b, opts.Origin, c.logs...)
	if err != nil {
		return nil, fmt.Errorf("witness: cosigner: state file %s is corrupt or for another log (it is not reset automatically): %w", c.statePath, err)
	}
	c.last, c.lastCP, c.lastSigner = b, cp, signerOf(n)
	return c, nil
}

// signerOf names the log key whose signature ParseCheckpoint verified.
func signerOf(n *note.Note) string {
	if len(n.Sigs) == 0 {
		return ""
	}
	return fmt.Sprintf("%s+%08x", n.Sigs[0].Name, n.Sigs[0].Hash)
}

// checkReplica checks cp, signed by signer, against c's replica, if any.
func (c *Cosigner) checkReplica(ctx context.Context, cp *log.Checkpoint, signer string) error {
	if c.opts.Replica == nil {
		return nil
	}
	root, err := c.opts.Replica.RootAt(ctx, cp.Size)
	if err != nil {
		return &ReplicaError{Checkpoint: *cp, Signer: signer, Err: err}
	}
	if !bytes.Equal(root, cp.Hash) {
		return &ReplicaError{Checkpoint: *cp, Signer: signer, Root: root}
	}
	return nil
}

// Last returns the signed note of the last checkpoint cosigned, or nil.
func (c *Cosigner) Last() []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	return bytes.Clone(c.last)
}

// Cosign checks checkpointNote and returns this node's cosignature on it.
//
// The note must be signed by the log and carry the configured origin. If a
// checkpoint was cosigned before, the new one must have the same size and
// root (cosigning it again is allowed), or a larger size and a consistency
// proof from src that verifies. Otherwise Cosign returns a [*ForkError]
// for the same size with another root (the proof of a fork), a
// [*ConflictError] for a smaller size, a [*BadProofError] for a proof that
// does not verify.
// src is only called when a proof is needed. With a [CosignerOptions.Replica],
// the checkpoint's root must be the replica's at its size (else a
// [*ReplicaError]), consistency is judged from the replica and src is
// never called. A [*ForkError] names the log keys that signed both
// checkpoints; for two different keys it wraps [ErrDisagree], not
// [ErrFork]. The checkpoint is stored durably before the cosignature is
// returned.
func (c *Cosigner) Cosign(ctx context.Context, checkpointNote []byte, src ProofSource) (note.Signature, error) {
	cp, n, err := ParseCheckpoint(checkpointNote, c.opts.Origin, c.logs...)
	if err != nil {
		return note.Signature{}, err
	}
	signer := signerOf(n)
	if err := c.checkReplica(ctx, cp, signer); err != nil {
		return note.Signature{}, err
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.checkExtends(ctx, checkpointNote, cp, signer, src); err != nil {
		return note.Signature{}, err
	}

	return c.cosignLocked(n, cp)
}

// AddCheckpoint is C2SP tlog-witness's add-checkpoint: checkpointNote must
// be signed by the log, oldSize must be the size of the checkpoint last
// cosigned (0 if none), and consistency the RFC 6962 proof from oldSize to
// the checkpoint's size (empty from 0). It returns the cosignature once the
// checkpoint is stored. Errors map to the protocol's answers: a
// [*ConflictError] for an oldSize that is not the latest size (409, with
// the size to use), a [*ForkError] for the same size with another root
// (409, and the proof of a fork), a [*BadProofError] for a proof that does
// not verify (422), [ErrOldSizeTooLarge] for an oldSize beyond the
// checkpoint (400); a note the log did not sign is an error of
// [ParseCheckpoint] (403).
func (c *Cosigner) AddCheckpoint(ctx context.Context, oldSize uint64, consistency [][]byte, checkpointNote []byte) (note.Signature, error) {
	cp, n, err := ParseCheckpoint(checkpointNote, c.opts.Origin, c.logs...)
	if err != nil {
		return note.Signature{}, err
	}
	if oldSize > cp.Size {
		return note.Signature{}, fmt.Errorf("%w: old size %d, checkpoint size %d", ErrOldSizeTooLarge, oldSize, cp.Size)
	}
	if len(consistency) > 63 {
		return note.Signature{}, &BadProofError{Origin: cp.Origin, OldSize: oldSize, NewSize: cp.Size, Err: fmt.Errorf("%d proof hashes, more than 63", len(consistency))}
	}
	if err := ctx.Err(); err != nil {
		return note.Signature{}, err
	}
	signer := signerOf(n)
	if err := c.checkReplica(ctx, cp, signer); err != nil {
		return note.Signature{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var latest uint64
	if c.lastCP != nil {
		latest = c.lastCP.Size
	}
	if oldSize != latest {
		return note.Signature{}, &ConflictError{Origin: cp.Origin, Latest: latest, Offered: cp.Size, OldSize: oldSize}
	}
	switch old := c.lastCP; {
	case old == nil || oldSize == 0:
		if len(consistency) != 0 {
			return note.Signature{}, &BadProofError{Origin: cp.Origin, OldSize: 0, NewSize: cp.Size, Err: errors.New("a proof from size 0 must be empty")}
		}
	case cp.Size == old.Size:
		if !bytes.Equal(cp.Hash, old.Hash) {
			return note.Signature{}, &ForkError{
				Old: bytes.Clone(c.last), OldCheckpoint: *old, OldSigner: c.lastSigner,
				New: bytes.Clone(checkpointNote), NewCheckpoint: *cp, NewSigner: signer,
				Reason: "same tree size, different root",
			}
		}
	default:
		if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old.Size, cp.Size, consistency, old.Hash, cp.Hash); err != nil {
			return note.Signature{}, &BadProofError{Origin: cp.Origin, OldSize: old.Size, NewSize: cp.Size, Err: err}
		}
	}
	return c.cosignLocked(n, cp)
}

// ErrOldSizeTooLarge is returned (wrapped) by [Cosigner.AddCheckpoint] for
// an old size beyond the checkpoint's size: a bad request. Use errors.Is.
var ErrOldSizeTooLarge = errors.New("witness: old size is larger than the checkpoint's size")

// cosignLocked cosigns n (whose body is cp), stores it and returns the
// cosignature. c.mu must be held.
func (c *Cosigner) cosignLocked(n *note.Note, cp *log.Checkpoint) (note.Signature, error) {
	// Keep the note with the log signature and this cosignature as the
	// state: the record of what this node vouched for.
	raw, err := c.opts.Signer.Sign([]byte(n.Text))
	if err != nil {
		return note.Signature{}, fmt.Errorf("witness: cosigning: %w", err)
	}
	hash := c.opts.Signer.KeyHash()
	sig := note.Signature{
		Name:   c.opts.Signer.Name(),
		Hash:   hash,
		Base64: base64.StdEncoding.EncodeToString(append(binary.BigEndian.AppendUint32(nil, hash), raw...)),
	}
	if old := c.lastCP; old != nil && old.Origin == cp.Origin && old.Size == cp.Size && bytes.Equal(old.Hash, cp.Hash) {
		// The state already holds this checkpoint (every build node asks
		// for its own note of the same body): nothing new to store, and no
		// fsync to wait for.
		return sig, nil
	}
	signed, err := note.Sign(&note.Note{Text: n.Text, Sigs: append(n.Sigs, sig)})
	if err != nil {
		return note.Signature{}, fmt.Errorf("witness: cosigning: %w", err)
	}
	if err := fsutil.WriteFileAtomic(c.statePath, signed, 0o600); err != nil {
		return note.Signature{}, fmt.Errorf("witness: cosigner: saving state: %w", err)
	}
	c.last, c.lastCP, c.lastSigner = signed, cp, signerOf(n)
	return sig, nil
}

// checkExtends checks that cp, signed by signer, extends c.lastCP: with
// a replica, by the replica's root at the old size; otherwise by a
// consistency proof from src. c.mu must be held.
func (c *Cosigner) checkExtends(ctx context.Context, newNote []byte, cp *log.Checkpoint, signer string, src ProofSource) error {
	old := c.lastCP
	if old == nil {
		return nil // Trust on first use.
	}
	switch {
	case cp.Size < old.Size:
		// Both may well be true: a stale submitter, not a fork.
		return &ConflictError{Origin: cp.Origin, Latest: old.Size, Offered: cp.Size}
	case cp.Size == old.Size:
		if !bytes.Equal(cp.Hash, old.Hash) {
			// Both notes carry a verified log signature: proof of a fork.
			return &ForkError{
				Old: bytes.Clone(c.last), OldCheckpoint: *old, OldSigner: c.lastSigner,
				New: bytes.Clone(newNote), NewCheckpoint: *cp, NewSigner: signer,
				Reason: "same tree size, different root",
			}
		}
		return nil
	}
	if c.opts.Replica != nil {
		// cp's root is the replica's (checkReplica); the old one must be
		// too, or this node once cosigned a tree its replica does not hold.
		root, err := c.opts.Replica.RootAt(ctx, old.Size)
		if err != nil {
			return &ReplicaError{Checkpoint: *old, Signer: c.lastSigner, Err: err}
		}
		if !bytes.Equal(root, old.Hash) {
			return &ForkError{
				Old: bytes.Clone(c.last), OldCheckpoint: *old, OldSigner: c.lastSigner,
				New: bytes.Clone(newNote), NewCheckpoint: *cp, NewSigner: signer,
				Reason: fmt.Sprintf("the checkpoint last cosigned, of size %d, is not this node's replica's tree at that size (root %s)", old.Size, base64.StdEncoding.EncodeToString(root)),
			}
		}
		return nil
	}
	var p [][]byte
	if old.Size > 0 {
		if src == nil {
			return fmt.Errorf("witness: cosigner: need a consistency proof from size %d to %d but no proof source given", old.Size, cp.Size)
		}
		var err error
		p, err = src.ConsistencyProof(ctx, old.Size, cp.Size)
		if err != nil {
			return fmt.Errorf("witness: cosigner: getting consistency proof from size %d to %d: %w", old.Size, cp.Size, err)
		}
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old.Size, cp.Size, p, old.Hash, cp.Hash); err != nil {
		return &BadProofError{Origin: cp.Origin, OldSize: old.Size, NewSize: cp.Size, Err: err}
	}
	return nil
}
