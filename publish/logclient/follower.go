package logclient

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pyrsia/pyrsia-build/internal/fileread"
	"github.com/pyrsia/pyrsia-build/internal/fsutil"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/pyrsia/pyrsia-build/publish/witness"
)

// Files in a Follower's state directory.
const (
	// StateFile holds the last checkpoint the follower verified.
	StateFile = "checkpoint"
	// EvidenceDir holds, once the follower stopped, the evidence:
	// "verified.checkpoint" (the last checkpoint verified), "offered.checkpoint"
	// (the one refused), "proof" (the consistency proof between them, one
	// base64 hash a line, when one was read) and "reason".
	EvidenceDir = "evidence"
)

// ErrFork is wrapped by the StopError for two checkpoints that cannot both
// be true: the same size with two roots, or sizes that no consistency
// proof from the source ties together. Use errors.Is.
var ErrFork = errors.New("logclient: the log forked")

// ErrStale is wrapped by the error for a source whose checkpoint is behind
// the one last verified (consistent with it): a mirror lagging behind.
// Nothing is wrong with the log. Use errors.Is.
var ErrStale = errors.New("logclient: the source is behind the checkpoint last verified")

// StopError stops a Follower: the source offered a checkpoint that the
// Trust refuses (not signed by a log key, not final) or that does not
// extend the last one verified. Both checkpoints are kept, as evidence,
// in the state directory's EvidenceDir.
type StopError struct {
	Source string
	// Verified is the last checkpoint verified (nil if none was yet),
	// Offered the one refused.
	Verified, Offered []byte
	// Proof is the consistency proof read between them, if any.
	Proof [][]byte
	// Dir is the folder the evidence is stored in.
	Dir string
	// Err says what is wrong: wraps ErrFork or ErrCheckpoint.
	Err error
}

func (e *StopError) Error() string {
	return fmt.Sprintf("logclient: %s: stopped following: %s (evidence in %s)", e.Source, strings.TrimPrefix(e.Err.Error(), "logclient: "), e.Dir)
}

func (e *StopError) Unwrap() error { return e.Err }

// FollowerOptions configure a Follower.
type FollowerOptions struct {
	// Source is the log to follow.
	Source Source
	// Trust must have cosigners: only final checkpoints are followed.
	Trust *policy.Trust
	// StateDir keeps the last checkpoint verified (StateFile) and, once
	// stopped, the evidence (EvidenceDir). It is created if missing.
	StateDir string
	// Next is the index of the first entry to hand to Visit. By default 0:
	// after a restart every entry is visited again (the entries of the
	// stored checkpoint are checked against it), as an index in memory
	// needs.
	Next uint64
	// Visit, if set, is called for every entry from Next on, in order,
	// once it is proven included in a verified checkpoint. An error stops
	// the poll; the entry is visited again by the next one.
	Visit func(ctx context.Context, index uint64, entry []byte) error
	// Interval is the time between two polls of Run (default 10s).
	Interval time.Duration
	// Logger receives what Run does (default slog.Default()).
	Logger *slog.Logger
}

// Follower follows a log: it polls a Source for checkpoints, accepts each
// new one only if it is final under the Trust and consistent with the last
// one verified, stores it, and hands the new entries to Visit. A refused
// checkpoint stops it with a *StopError and keeps the evidence; it is never
// accepted silently, and a Follower whose state directory holds evidence
// does not start again until someone has looked at it and moved it away.
type Follower struct {
	opts   FollowerOptions
	client *Client
	logger *slog.Logger

	poll sync.Mutex // one Poll at a time

	mu      sync.Mutex
	last    *Checkpoint
	next    uint64
	lastErr error
	stopped *StopError
}

// FollowerStatus is a snapshot of a Follower, for a status page.
type FollowerStatus struct {
	// Checkpoint is the last checkpoint verified, nil if none was.
	Checkpoint *Checkpoint
	// Next is the index of the next entry to visit.
	Next uint64
	// LastError is the error of the last poll, nil if it succeeded.
	LastError error
	// Stopped is set once the follower stopped.
	Stopped *StopError
}

// NewFollower returns a Follower that resumes from the checkpoint in
// opts.StateDir, if there is one; it checks that checkpoint against the
// Trust again. A state directory holding evidence is a *StopError.
func NewFollower(ctx context.Context, opts FollowerOptions) (*Follower, error) {
	switch {
	case opts.Source == nil:
		return nil, errors.New("logclient: follower: no source")
	case opts.Trust == nil || len(opts.Trust.Cosigners) == 0 || opts.Trust.CosignThreshold < 1:
		return nil, errors.New("logclient: follower: the trust has no cosigners: only final checkpoints may be followed")
	case opts.Trust.Origin == "":
		return nil, errors.New("logclient: follower: the trust names no origin")
	case opts.StateDir == "":
		return nil, errors.New("logclient: follower: no state directory")
	}
	if opts.Interval <= 0 {
		opts.Interval = 10 * time.Second
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	f := &Follower{opts: opts, client: New(opts.Source, Options{Trust: opts.Trust}), logger: logger, next: opts.Next}
	if err := os.MkdirAll(opts.StateDir, 0o755); err != nil {
		return nil, fmt.Errorf("logclient: follower: %w", err)
	}
	evidence := filepath.Join(opts.StateDir, EvidenceDir)
	if _, err := os.Stat(evidence); err == nil {
		se := readEvidence(ctx, evidence)
		se.Source = opts.Source.String()
		return nil, se
	}
	path := filepath.Join(opts.StateDir, StateFile)
	b, err := fileread.ReadFile(ctx, path, "checkpoint", witness.MaxCheckpointSize)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return f, nil
	case err != nil:
		return nil, fmt.Errorf("logclient: follower: %w", err)
	}
	cp, err := f.client.VerifyCheckpoint(b)
	if err != nil {
		return nil, fmt.Errorf("logclient: follower: %s does not verify under the trust: %w; if the policy changed on purpose, move the file away to follow from the log's current checkpoint", path, err)
	}
	f.last = cp
	return f, nil
}

// readEvidence reads back what stop wrote.
func readEvidence(ctx context.Context, dir string) *StopError {
	se := &StopError{Dir: dir}
	se.Verified, _ = fileread.ReadFile(ctx, filepath.Join(dir, "verified.checkpoint"), "checkpoint", witness.MaxCheckpointSize)
	se.Offered, _ = fileread.ReadFile(ctx, filepath.Join(dir, "offered.checkpoint"), "checkpoint", witness.MaxCheckpointSize)
	reason, _ := fileread.ReadFile(ctx, filepath.Join(dir, "reason"), "reason", 64<<10)
	se.Err = fmt.Errorf("%w: stopped before: %s; move %s away once it is understood, to follow again", ErrCheckpoint, strings.TrimSpace(string(reason)), dir)
	if strings.Contains(string(reason), ErrFork.Error()) {
		se.Err = fmt.Errorf("%w: stopped before: %s; move %s away once it is understood, to follow again", ErrFork, strings.TrimSpace(string(reason)), dir)
	}
	return se
}

// Status returns the follower's state.
func (f *Follower) Status() FollowerStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return FollowerStatus{Checkpoint: f.last, Next: f.next, LastError: f.lastErr, Stopped: f.stopped}
}

// Run polls the source every Interval until ctx is done (it then returns
// ctx.Err()) or the follower stops (it returns the *StopError). Other
// errors (a source away, a tile that does not verify) are logged and the
// next poll tries again.
func (f *Follower) Run(ctx context.Context) error {
	t := time.NewTicker(f.opts.Interval)
	defer t.Stop()
	for {
		err := f.Poll(ctx)
		var se *StopError
		switch {
		case errors.As(err, &se):
			f.logger.ErrorContext(ctx, "stopped following the log", "source", f.opts.Source.String(), "err", err, "evidence", se.Dir)
			return err
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			f.logger.WarnContext(ctx, "following the log", "source", f.opts.Source.String(), "err", err, "hint", Hint(err))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Poll reads the source's checkpoint once, accepts it if it is new, final
// and consistent with the last one verified, and visits the entries not
// yet visited. It returns a *StopError for a checkpoint that must not be
// accepted (and every later call returns it too).
func (f *Follower) Poll(ctx context.Context) error {
	f.poll.Lock()
	defer f.poll.Unlock()
	err := f.pollOnce(ctx)
	f.mu.Lock()
	f.lastErr = err
	f.mu.Unlock()
	return err
}

func (f *Follower) pollOnce(ctx context.Context) error {
	f.mu.Lock()
	last, stopped := f.last, f.stopped
	f.mu.Unlock()
	if stopped != nil {
		return stopped
	}
	b, err := f.opts.Source.ReadCheckpoint(ctx)
	if err != nil {
		return f.client.fail("reading checkpoint", err, "")
	}
	if last == nil || !bytes.Equal(b, last.Note) {
		cp, err := f.check(ctx, last, b)
		if err != nil {
			return err
		}
		if cp != nil {
			last = cp
		}
	}
	if last == nil {
		return nil
	}
	f.mu.Lock()
	next := f.next
	f.mu.Unlock()
	if next >= last.Size || f.opts.Visit == nil {
		return nil
	}
	return f.client.Entries(ctx, last, next, last.Size, func(index uint64, entry []byte) error {
		if err := f.opts.Visit(ctx, index, entry); err != nil {
			return fmt.Errorf("logclient: visiting entry %d: %w", index, err)
		}
		f.mu.Lock()
		f.next = index + 1
		f.mu.Unlock()
		return nil
	})
}

// check judges a checkpoint note that differs from the last one verified.
// It returns the checkpoint once it is accepted and stored, nil for one
// that adds nothing, or an error.
func (f *Follower) check(ctx context.Context, last *Checkpoint, b []byte) (*Checkpoint, error) {
	body, err := parseUnverified(b)
	if err != nil || body.Origin != f.opts.Trust.Origin {
		// Not a checkpoint of this log at all: nothing to keep as evidence.
		if err == nil {
			err = fmt.Errorf("it is for log %q, want %q", body.Origin, f.opts.Trust.Origin)
		}
		return nil, f.client.fail("", tag(ErrCheckpoint, "checkpoint: %w", trimmed{err}), "check that the source serves this network's log")
	}
	cp, err := f.client.VerifyCheckpoint(b)
	if err != nil {
		return nil, f.stop(ctx, last, b, nil, err)
	}
	if last != nil {
		switch {
		case cp.Size == last.Size && !bytes.Equal(cp.Hash, last.Hash):
			return nil, f.stop(ctx, last, b, nil, fmt.Errorf("%w: two final checkpoints of size %d with different roots", ErrFork, cp.Size))
		case cp.Size == last.Size:
			return nil, nil // the same tree, other cosignatures
		case cp.Size < last.Size:
			// A source behind us can rarely prove that its tree is a
			// prefix of ours (it lacks our tiles); if it does not, the
			// checkpoint is not accepted, and a fork shows once it grows.
			_, err := f.client.Consistency(ctx, cp, last)
			if errors.Is(err, ErrProof) {
				return nil, f.stop(ctx, last, b, nil, fmt.Errorf("%w: the source's checkpoint of size %d is not a prefix of the one verified (size %d): %w", ErrFork, cp.Size, last.Size, err))
			}
			return nil, f.client.fail("", tag(ErrStale, "its checkpoint has size %d, behind the one verified (size %d)", cp.Size, last.Size),
				"the source lags behind: wait, or follow another build node or mirror")
		}
		p, err := f.client.Consistency(ctx, last, cp)
		if errors.Is(err, ErrProof) {
			return nil, f.stop(ctx, last, b, p, fmt.Errorf("%w: the checkpoint of size %d does not extend the one verified (size %d): %w", ErrFork, cp.Size, last.Size, err))
		}
		if err != nil {
			return nil, err
		}
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(f.opts.StateDir, StateFile), b, 0o644); err != nil {
		return nil, fmt.Errorf("logclient: follower: storing the checkpoint: %w", err)
	}
	f.mu.Lock()
	f.last = cp
	f.mu.Unlock()
	f.logger.InfoContext(ctx, "new checkpoint", "source", f.opts.Source.String(), "size", cp.Size, "cosigners", cp.Cosigners)
	return cp, nil
}

// stop keeps the evidence and stops the follower.
func (f *Follower) stop(ctx context.Context, last *Checkpoint, offered []byte, p [][]byte, reason error) error {
	dir := filepath.Join(f.opts.StateDir, EvidenceDir)
	se := &StopError{Source: f.opts.Source.String(), Offered: offered, Proof: p, Dir: dir, Err: reason}
	if last != nil {
		se.Verified = last.Note
	}
	err := f.writeEvidence(se)
	if err != nil {
		f.logger.ErrorContext(ctx, "keeping the evidence", "dir", dir, "err", err)
	}
	f.mu.Lock()
	f.stopped = se
	f.mu.Unlock()
	return se
}

func (f *Follower) writeEvidence(se *StopError) error {
	// Write into a temporary folder and rename it, so that a folder named
	// EvidenceDir is always complete.
	tmp, err := os.MkdirTemp(f.opts.StateDir, ".evidence-*")
	if err != nil {
		return err
	}
	var proof strings.Builder
	for _, h := range se.Proof {
		proof.WriteString(base64.StdEncoding.EncodeToString(h) + "\n")
	}
	files := []struct {
		name string
		data []byte
	}{
		{"verified.checkpoint", se.Verified},
		{"offered.checkpoint", se.Offered},
		{"proof", []byte(proof.String())},
		{"reason", []byte(se.Err.Error() + "\n")},
	}
	for _, file := range files {
		if file.data == nil {
			continue
		}
		if err := fsutil.WriteFileAtomic(filepath.Join(tmp, file.name), file.data, 0o644); err != nil {
			os.RemoveAll(tmp)
			return err
		}
	}
	if err := os.Rename(tmp, se.Dir); err != nil {
		os.RemoveAll(tmp)
		return err
	}
	return nil
}
