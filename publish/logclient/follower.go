package logclient

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
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
	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	fmtlog "github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// Files in a Follower's state directory.
const (
	// StateFile holds the last checkpoint the follower verified.
	StateFile = "checkpoint"
	// ChangesFile holds, for a follower of a policy chain, the policy
	// change entries of the log it verified, a JSON line each
	// ({"index":N,"entry":BASE64}), so that it judges StateFile again at
	// a restart without reading the log. It is only a cache: the first
	// poll after a restart checks it against the stored checkpoint's
	// entries before visiting any.
	ChangesFile = "changes"
	// EvidenceDir holds, once the follower stopped, the evidence:
	// "verified.checkpoint" (the last checkpoint verified), "offered.checkpoint"
	// (the one refused), "proof" (for a fork of two sizes, the consistency
	// proof, one base64 hash a line, that ties the larger checkpoint to the
	// root its tree has at the smaller size), "reason", and "kind" ("fork",
	// or "checkpoint" for one the Trust refuses).
	EvidenceDir = "evidence"
)

// ErrFork is wrapped by the StopError for two final checkpoints that
// cannot both be true: the same size with two roots, or a larger tree
// (proven by the source's tiles) whose prefix at the smaller size has
// another root. A consistency proof that merely does not verify is no
// fork: the source's tiles may be wrong (an error wrapping ErrProof, and
// the follower tries again). Use errors.Is.
var ErrFork = errors.New("logclient: the log forked")

// ErrStale is wrapped by the error for a source whose checkpoint is behind
// the one last verified (consistent with it): a mirror lagging behind.
// Nothing is wrong with the log. Use errors.Is.
var ErrStale = errors.New("logclient: the source is behind the checkpoint last verified")

// StopError stops a Follower: the source offered a checkpoint of the log
// that the Trust refuses (not signed by a log key, not final), or a final
// one that proves a fork with the last one verified (see ErrFork). Both
// checkpoints are kept, as evidence, in the state directory's EvidenceDir.
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
	// With a Chain it may be nil (it is then the chain's first policy's,
	// for the origin).
	Trust *policy.Trust
	// Chain, if set, is the network's policy chain from its first policy
	// (the follower applies the changes; its owner only reads it): a
	// checkpoint of size N is judged by the policy in force at N
	// ([policy.Chain.ForCheckpoint]) instead of Trust. Before judging a
	// new checkpoint the follower reads the entries its tree adds, each
	// proven included in it, and judges each policy change among them by
	// the policy in force at its index; once the checkpoint verifies
	// under the policy they put in force, it applies them to Chain, in
	// log order, before visiting any entry of the tree (so Visit can
	// judge entry i by Chain.At(i)); the entries read to judge it are
	// visited from memory (up to 64 MiB of them a checkpoint), not read
	// again. At a restart the stored checkpoint
	// is judged by the changes of ChangesFile, which the first poll then
	// checks against the entries of its tree before visiting any (or, with
	// no usable file, it is judged so at the first poll).
	Chain *policy.Chain
	// OnChange, if set, is called for each policy change applied to
	// Chain, in log order.
	OnChange func(index uint64, c *policy.Change)
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
	// MaxUnverified bounds, for a follower of a Chain, the entries one
	// poll reads from each source of the tree of a checkpoint it cannot
	// judge yet (each source its own bound, so that a lying source does
	// not use up an honest one's): a
	// checkpoint signed by a key of the policy the follower holds but
	// not final under it (the policy changes its tree adds may make it
	// final). Past the bound the poll fails over to the next source, and
	// the next poll reads on where it stopped (default
	// DefaultMaxUnverified; a negative value reads none). A checkpoint that
	// no key of that policy signed or cosigned is refused before any of
	// its entries is read.
	MaxUnverified int
	// ReadTimeout bounds each read from a source (default
	// DefaultReadTimeout): a source that stalls fails that read, and the
	// poll goes on with the next source.
	ReadTimeout time.Duration
	// PollTimeout bounds the time one poll spends on one source (default
	// DefaultPollTimeout): a source that answers every read within
	// ReadTimeout, but slowly (a mirror that replays the log at a
	// trickle), is left for the next source once it is spent, with an
	// error wrapping ErrPollTimeout. What the poll verified stays: the
	// entries visited, and the entries read so far of a checkpoint being
	// judged (the next poll that is offered the same checkpoint, by any
	// source, reads on from there).
	PollTimeout time.Duration
	// Logger receives what Run does (default slog.Default()).
	Logger *slog.Logger
}

// Defaults of FollowerOptions.
const (
	// DefaultMaxUnverified is the default of FollowerOptions.MaxUnverified:
	// 16 entry bundles.
	DefaultMaxUnverified = 4096
	// DefaultReadTimeout is the default of FollowerOptions.ReadTimeout.
	DefaultReadTimeout = 30 * time.Second
	// DefaultPollTimeout is the default of FollowerOptions.PollTimeout:
	// time to read some 100,000 entries from a build node or a mirror
	// nearby.
	DefaultPollTimeout = 2 * time.Minute
)

// ErrUnverifiedLimit is wrapped by the error of a poll that stopped
// reading the tree of a checkpoint it could not judge yet at
// FollowerOptions.MaxUnverified entries. Use errors.Is.
var ErrUnverifiedLimit = errors.New("logclient: too many entries read of a checkpoint not yet judged")

// ErrPollTimeout is wrapped by the error of a poll of one source that
// did not end within FollowerOptions.PollTimeout. Use errors.Is.
var ErrPollTimeout = errors.New("logclient: the poll of the source took too long")

// Follower follows a log: it polls a Source for checkpoints, accepts each
// new one only if it is final under the Trust and consistent with the last
// one verified, stores it, and hands the new entries to Visit. A proven
// fork stops it with a *StopError and keeps the evidence, and a Follower
// whose state directory holds evidence does not start again until someone
// has looked at it and moved it away. A checkpoint that is not signed by a
// log key or not final, a stale source, or tiles that prove nothing are
// errors of one poll: anyone on the path can forge those, so they prove
// nothing and must not stop the follower for good. Nothing is accepted
// silently.
//
// A Source made by [Failover] is read one member at a time: a poll that
// fails on one source (away, stalled, behind, or answering what does
// not verify) goes on with the next, and the error names each.
type Follower struct {
	opts   FollowerOptions
	client *Client // of the first source
	logger *slog.Logger

	// clients read each source (a Failover's members); good is the one
	// that answered last. Held by poll.
	clients []*Client
	good    int
	// pending is, per source, a checkpoint whose tree a poll stopped
	// reading at opts.MaxUnverified: one per source, so that a source
	// that lies does not take the place of an honest one's judgement in
	// progress. Held by poll.
	pending map[*Client]*pendingJudge
	// probed is the source probed last (see probe). Held by poll.
	probed int
	// held are the entries a poll read, proven included in a checkpoint
	// it accepted, while it judged that checkpoint: visited from memory,
	// not read again. Held by poll.
	held    []*heldEntries
	maxHeld int // bytes a judgement holds (defaultMaxHeld; tests lower it)

	poll sync.Mutex // one Poll at a time

	// applied are the changes applied to opts.Chain, in log order; resume
	// is a stored checkpoint that a Chain follower judges at its first
	// poll. Both are held by poll.
	applied []appliedChange
	resume  []byte
	// confirm is set when the changes applied at a restart came from
	// ChangesFile: a cache, which the first poll checks against the
	// entries of the stored checkpoint's tree before anything is visited.
	confirm bool

	mu      sync.Mutex
	added   []Source // by AddSources, taken into clients by the next poll
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
	if opts.Chain != nil && opts.Trust == nil {
		_, opts.Trust = opts.Chain.At(0)
	}
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
	switch {
	case opts.MaxUnverified == 0:
		opts.MaxUnverified = DefaultMaxUnverified
	case opts.MaxUnverified < 0:
		opts.MaxUnverified = 0
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = DefaultReadTimeout
	}
	if opts.PollTimeout <= 0 {
		opts.PollTimeout = DefaultPollTimeout
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.Default()
	}
	f := &Follower{opts: opts, logger: logger, next: opts.Next, pending: make(map[*Client]*pendingJudge), maxHeld: defaultMaxHeld}
	srcs := []Source{opts.Source}
	if fo, ok := opts.Source.(*failover); ok && len(fo.srcs) > 0 {
		srcs = fo.srcs
	}
	for _, s := range srcs {
		f.clients = append(f.clients, New(timed{s, opts.ReadTimeout}, Options{Trust: opts.Trust}))
	}
	f.client = f.clients[0]
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
	if opts.Chain != nil {
		cp, err := f.resumeChain(ctx, b)
		if err != nil {
			f.logger.WarnContext(ctx, "the stored checkpoint is judged at the first read of the log, with the policy changes of its tree", "checkpoint", path, "err", err)
			f.resume = b
		} else {
			f.last, f.confirm = cp, true
		}
		return f, nil
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
	kind, _ := fileread.ReadFile(ctx, filepath.Join(dir, "kind"), "kind", 64)
	sentinel := ErrCheckpoint
	if strings.TrimSpace(string(kind)) == "fork" {
		sentinel = ErrFork
	}
	se.Err = tag(sentinel, "stopped before: %s; move %s away once it is understood, to follow again", strings.TrimSpace(string(reason)), dir)
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
	f.takeAdded()
	err := f.pollOnce(ctx)
	f.mu.Lock()
	f.lastErr = err
	f.mu.Unlock()
	return err
}

// AddSources adds sources to read the log from, after those it has (the
// members of a [Failover], each on its own); the next poll reads them in
// turn like the others. A node calls it when a policy change brings build
// nodes its sources do not name: a follower that kept only the build
// nodes of the first policy would stop following once they were all
// replaced. It is safe to call at any time, from OnChange and Visit too.
func (f *Follower) AddSources(srcs ...Source) {
	var flat []Source
	for _, s := range srcs {
		if fo, ok := s.(*failover); ok {
			flat = append(flat, fo.srcs...)
		} else if s != nil {
			flat = append(flat, s)
		}
	}
	f.mu.Lock()
	f.added = append(f.added, flat...)
	f.mu.Unlock()
}

// takeAdded makes a client of each source added since the last poll.
// Held by poll.
func (f *Follower) takeAdded() {
	f.mu.Lock()
	added := f.added
	f.added = nil
	f.mu.Unlock()
	for _, s := range added {
		f.clients = append(f.clients, New(timed{s, f.opts.ReadTimeout}, Options{Trust: f.opts.Trust}))
	}
}

// pollOnce polls the sources in turn, from the one that answered last,
// until one poll succeeds. A stop, an error of Visit and the end of ctx
// end it at once; any other error is the source's, and the next source
// is tried.
func (f *Follower) pollOnce(ctx context.Context) error {
	f.mu.Lock()
	stopped := f.stopped
	f.mu.Unlock()
	if stopped != nil {
		return stopped
	}
	var errs []error
	for k := range f.clients {
		i := (f.good + k) % len(f.clients)
		c := f.clients[i]
		before := f.Status().Checkpoint
		err := f.pollFrom(ctx, c)
		var se *StopError
		var ve *visitError
		switch {
		case err == nil:
			f.good = i
			if f.Status().Checkpoint == before {
				return f.probe(ctx)
			}
			return nil
		case errors.As(err, &se), errors.As(err, &ve), ctx.Err() != nil:
			return err
		}
		errs = append(errs, err)
		if len(f.clients) > 1 {
			f.logger.WarnContext(ctx, "a log source failed: trying the next", "source", c.src.String(), "err", err)
		}
	}
	return errors.Join(errs...)
}

// probe polls one other source than the good one, in turn, after the
// good one had nothing new: a source that lags behind at the checkpoint
// last verified answers without error, and the follower must not stay
// behind with it. The probed source becomes the good one if it gave a
// new checkpoint; its other errors are the probe's alone (the poll
// succeeded), but a stop or an error of Visit is the poll's.
func (f *Follower) probe(ctx context.Context) error {
	if len(f.clients) < 2 {
		return nil
	}
	f.probed = (f.probed + 1) % len(f.clients)
	if f.probed == f.good {
		f.probed = (f.probed + 1) % len(f.clients)
	}
	before := f.Status().Checkpoint
	c := f.clients[f.probed]
	// A probe must not hold the poll up for long (a source that stalls):
	// what it started, the next poll finishes (the lagging source is
	// then behind the new checkpoint, an error, and the next is tried).
	pctx, cancel := context.WithTimeout(ctx, max(f.opts.Interval, time.Second))
	defer cancel()
	err := f.pollFrom(pctx, c)
	var se *StopError
	var ve *visitError
	switch {
	case errors.As(err, &se), errors.As(err, &ve):
		return err
	case err != nil:
		f.logger.DebugContext(ctx, "probing another log source", "source", c.src.String(), "err", err)
	case f.Status().Checkpoint != before:
		f.good = f.probed
	}
	return nil
}

// visitError is an error of FollowerOptions.Visit: not the source's.
type visitError struct{ err error }

func (e *visitError) Error() string { return e.err.Error() }
func (e *visitError) Unwrap() error { return e.err }

// timed is a Source each read of which ends after d.
type timed struct {
	Source
	d time.Duration
}

func (t timed) read(parent context.Context, what string, read func(context.Context) ([]byte, error)) ([]byte, error) {
	ctx, cancel := context.WithTimeout(parent, t.d)
	defer cancel()
	b, err := read(ctx)
	if err != nil && parent.Err() == nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return nil, fmt.Errorf("%s: no answer within %s (FollowerOptions.ReadTimeout): %w", what, t.d, err)
	}
	return b, err
}

func (t timed) ReadCheckpoint(ctx context.Context) ([]byte, error) {
	return t.read(ctx, "checkpoint", t.Source.ReadCheckpoint)
}

func (t timed) ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
	return t.read(ctx, fmt.Sprintf("tile %d/%d", level, index), func(ctx context.Context) ([]byte, error) { return t.Source.ReadTile(ctx, level, index, p) })
}

func (t timed) ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error) {
	return t.read(ctx, fmt.Sprintf("entry bundle %d", index), func(ctx context.Context) ([]byte, error) { return t.Source.ReadEntryBundle(ctx, index, p) })
}

// pollFrom is one poll of the source c reads, its reads bounded by
// PollTimeout. Visit is called with ctx.
func (f *Follower) pollFrom(ctx context.Context, c *Client) error {
	rctx, cancel := context.WithTimeout(ctx, f.opts.PollTimeout)
	defer cancel()
	err := f.pollReads(ctx, rctx, c)
	var ve *visitError
	if err == nil || ctx.Err() != nil || rctx.Err() == nil || errors.As(err, &ve) {
		return err
	}
	f.mu.Lock()
	next := f.next
	f.mu.Unlock()
	return &Error{Source: c.src.String(), Err: tag(ErrPollTimeout, "the poll took longer than %s (FollowerOptions.PollTimeout), the next entry to visit is %d: %w", f.opts.PollTimeout, next, unnamed{err, c.src.String()}),
		Hint: "the source is slow: the poll goes on with the next source, if any, and the next poll reads on where this one stopped; follow a faster build node or mirror"}
}

// pollReads is pollFrom with the reads done with rctx.
func (f *Follower) pollReads(ctx, rctx context.Context, c *Client) error {
	f.held = nil
	defer func() { f.held = nil }()
	f.mu.Lock()
	last := f.last
	f.mu.Unlock()
	if f.resume != nil {
		cp, found, held, err := f.verifyChainFrom(rctx, c, f.resume, f.applied, f.last, true)
		if err != nil {
			return fmt.Errorf("logclient: follower: the stored checkpoint (%s) does not verify under the policy chain: %w; if the policy changed on purpose, move the file away to follow from the log's current checkpoint",
				filepath.Join(f.opts.StateDir, StateFile), err)
		}
		if err := f.storeChanges(found); err != nil {
			return err
		}
		f.applyChanges(found)
		f.resume = nil
		f.held = append(f.held, held)
		f.mu.Lock()
		f.last, last = cp, cp
		f.mu.Unlock()
	}
	if f.confirm {
		if err := f.confirmChanges(rctx, c, last); err != nil {
			return err
		}
		f.confirm = false
	}
	b, err := c.src.ReadCheckpoint(rctx)
	if err != nil {
		return c.fail("reading checkpoint", err, "the source is away or serves no log: the next poll tries again; check it, or follow another build node or mirror")
	}
	if last == nil || !bytes.Equal(b, last.Note) {
		cp, err := f.check(rctx, c, last, b)
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
	visit := func(index uint64, entry []byte) error {
		if err := f.opts.Visit(ctx, index, entry); err != nil {
			return &visitError{fmt.Errorf("logclient: visiting entry %d: %w", index, err)}
		}
		f.mu.Lock()
		f.next = index + 1
		f.mu.Unlock()
		return nil
	}
	// The entries held (read while judging last, or the checkpoint it
	// extends) are visited from memory; the source is read for the rest.
	for next < last.Size {
		end := last.Size
		var from *heldEntries
		for _, h := range f.held {
			switch {
			case h.first <= next && next < min(h.end(), last.Size):
				from = h
			case h.first > next && h.first < end:
				end = h.first
			}
		}
		if from != nil {
			end = min(from.end(), last.Size)
			for i := next; i < end; i++ {
				if err := ctx.Err(); err != nil {
					return err
				}
				if err := visit(i, from.entries[i-from.first]); err != nil {
					return err
				}
			}
		} else if err := c.Entries(rctx, last, next, end, visit); err != nil {
			return err
		}
		next = end
	}
	return nil
}

// check judges a checkpoint note that differs from the last one verified.
// It returns the checkpoint once it is accepted and stored, nil for one
// that adds nothing, or an error.
func (f *Follower) check(ctx context.Context, c *Client, last *Checkpoint, b []byte) (*Checkpoint, error) {
	body, err := parseUnverified(b)
	if err != nil || body.Origin != f.opts.Trust.Origin {
		// Not a checkpoint of this log at all: nothing to keep as evidence.
		if err == nil {
			err = fmt.Errorf("it is for log %q, want %q", body.Origin, f.opts.Trust.Origin)
		}
		return nil, c.fail("", tag(ErrCheckpoint, "checkpoint: %w", trimmed{err}), "check that the source serves this network's log")
	}
	var found []appliedChange
	var cp *Checkpoint
	var held *heldEntries
	if f.opts.Chain != nil {
		cp, found, held, err = f.verifyChainFrom(ctx, c, b, f.applied, last, false)
	} else {
		cp, err = c.VerifyCheckpoint(b)
	}
	if err != nil {
		// Anyone can write a checkpoint that no log key signed, or strip
		// cosignatures from a genuine one: that proves nothing about the
		// log, so it fails this poll and the next one tries again.
		return nil, err
	}
	if last != nil {
		switch {
		case cp.Size == last.Size && !bytes.Equal(cp.Hash, last.Hash):
			return nil, f.stop(ctx, c, last, b, nil, tag(ErrFork, "two final checkpoints of size %d with different roots", cp.Size))
		case cp.Size == last.Size:
			return nil, nil // the same tree, other cosignatures
		case cp.Size < last.Size:
			return nil, f.behind(ctx, c, last, cp)
		}
		if _, err := c.Consistency(ctx, last, cp); err != nil {
			return nil, f.notExtending(ctx, c, last, cp, err)
		}
	}
	if err := f.storeChanges(found); err != nil {
		return nil, err
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(f.opts.StateDir, StateFile), b, 0o644); err != nil {
		return nil, fmt.Errorf("logclient: follower: storing the checkpoint: %w", err)
	}
	f.applyChanges(found)
	clear(f.pending)
	if held != nil {
		f.held = append(f.held, held)
	}
	f.mu.Lock()
	f.last = cp
	f.mu.Unlock()
	f.logger.InfoContext(ctx, "new checkpoint", "source", c.src.String(), "size", cp.Size, "cosigners", cp.Cosigners)
	return cp, nil
}

// notExtending judges a checkpoint larger than the last one verified for
// which the source gave no consistency proof that verifies (err). That
// alone proves nothing: the source's tiles may be wrong (C2SP
// tlog-witness's 422). It is a fork only if the tiles do prove the new
// checkpoint's tree, and the prefix of that tree at the old size has
// another root than the old checkpoint: then the log signed two trees
// that cannot both be true.
func (f *Follower) notExtending(ctx context.Context, c *Client, last, cp *Checkpoint, err error) error {
	if !errors.Is(err, ErrProof) {
		return err
	}
	root, p, rerr := c.rootAndProof(ctx, cp, last.Size)
	if rerr != nil || bytes.Equal(root, last.Hash) {
		return c.fail("", tag(ErrProof, "its tiles do not prove that the checkpoint of size %d extends the one verified (size %d): %w", cp.Size, last.Size, err),
			"the source's tiles are wrong, or the log forked: follow another build node or mirror; if every one fails so, the log forked")
	}
	return f.stop(ctx, c, last, cp.Note, p, tag(ErrFork, "the checkpoint of size %d does not extend the one verified (size %d): its tree of size %d has root %s, the verified one %s",
		cp.Size, last.Size, last.Size, b64(root), b64(last.Hash)))
}

// behind judges a checkpoint smaller than the last one verified: a stale
// source, unless the source's tiles of the verified tree prove that its
// prefix at the smaller size has another root (a fork).
func (f *Follower) behind(ctx context.Context, c *Client, last, cp *Checkpoint) error {
	root, p, err := c.rootAndProof(ctx, last, cp.Size)
	if err == nil && !bytes.Equal(root, cp.Hash) {
		return f.stop(ctx, c, last, cp.Note, p, tag(ErrFork, "the source's checkpoint of size %d is not a prefix of the one verified (size %d): the verified tree of size %d has root %s, the source's %s",
			cp.Size, last.Size, cp.Size, b64(root), b64(cp.Hash)))
	}
	// The source may lack the verified tree's tiles: then nothing is
	// proven, and a fork shows once it grows past the verified size.
	return c.fail("", tag(ErrStale, "its checkpoint has size %d, behind the one verified (size %d)", cp.Size, last.Size),
		"the source lags behind: wait, or follow another build node or mirror")
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// stop keeps the evidence and stops the follower.
func (f *Follower) stop(ctx context.Context, c *Client, last *Checkpoint, offered []byte, p [][]byte, reason error) error {
	dir := filepath.Join(f.opts.StateDir, EvidenceDir)
	se := &StopError{Source: c.src.String(), Offered: offered, Proof: p, Dir: dir, Err: reason}
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
	kind := "checkpoint"
	if errors.Is(se.Err, ErrFork) {
		kind = "fork"
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
		{"reason", []byte(strings.TrimPrefix(se.Err.Error(), "logclient: ") + "\n")},
		{"kind", []byte(kind + "\n")},
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

// appliedChange is a policy change of the log, at its index.
type appliedChange struct {
	index  uint64
	change *policy.Change
}

// pendingJudge is a checkpoint whose tree a poll stopped reading at the
// budget (FollowerOptions.MaxUnverified): the next poll offered the same
// checkpoint, with the same one verified before it, reads on from next.
type pendingJudge struct {
	text  string      // the checkpoint's body
	base  *Checkpoint // the last one verified when it started
	trial *policy.Chain
	found []appliedChange
	held  *heldEntries
	next  uint64
}

// defaultMaxHeld bounds the bytes of entries that one judgement of a
// checkpoint holds to be visited (heldEntries); the entries past it are
// read again when they are visited.
const defaultMaxHeld = 64 << 20

// heldEntries are entries read while a checkpoint was judged, each proven
// included in it, from index first on and in order, up to max bytes:
// once it is accepted, they are visited without being read again.
type heldEntries struct {
	first   uint64
	entries [][]byte
	size    int
	max     int  // bytes at most
	full    bool // an entry did not fit: no more are held
}

func (h *heldEntries) end() uint64 { return h.first + uint64(len(h.entries)) }

// add holds the entry at index i, if it is the next one and fits.
func (h *heldEntries) add(i uint64, e []byte) {
	switch {
	case i < h.first || h.full:
	case i != h.end() || h.size+len(e) > h.max:
		h.full = true
	default:
		h.entries = append(h.entries, e)
		h.size += len(e)
	}
}

// verifyChainFrom judges the checkpoint note b by the policy in force at
// its size: it reads the entries b's tree holds past the changes applied
// (applied) and the last checkpoint verified (last), each proven
// included in b's tree, judges the policy changes among them in log order
// on a copy of the chain, and verifies b under the policy in force at its
// size. It returns the checkpoint and the changes to apply; it applies
// none.
//
// Unless b is the follower's own (stored, judged before), nothing of a
// source's claim is read before a key vouches for it: b must carry a
// signature or a cosignature by a key of the policy in force where the
// reading starts, else it is refused unread; and when it is not final
// under that policy, at most MaxUnverified of its entries is read
// (past it, the error wraps ErrUnverifiedLimit and the next poll offered
// b by the same source reads on).
func (f *Follower) verifyChainFrom(ctx context.Context, c *Client, b []byte, applied []appliedChange, last *Checkpoint, own bool) (*Checkpoint, []appliedChange, *heldEntries, error) {
	n, err := witness.OpenUnverified(b)
	var body *fmtlog.Checkpoint
	if err == nil {
		body, err = witness.ParseCheckpointText([]byte(n.Text))
	}
	if err != nil {
		return nil, nil, nil, c.fail("", tag(ErrCheckpoint, "checkpoint: %w", trimmed{err}), "check that the source serves this network's log")
	}
	claimed := &Checkpoint{Checkpoint: *body, Note: b}
	var trial *policy.Chain
	var found []appliedChange
	var held *heldEntries
	from := uint64(0)
	var pj *pendingJudge
	if !own {
		pj = f.pendingFor(c, n.Text, last)
	}
	if pj != nil {
		trial, found, held, from = pj.trial, pj.found, pj.held, pj.next
	} else {
		first, _ := f.opts.Chain.At(0)
		if trial, err = policy.NewChain(first); err != nil {
			return nil, nil, nil, err
		}
		for _, a := range applied {
			if a.index >= body.Size {
				break
			}
			if _, err := trial.Apply(a.index, a.change); err != nil {
				return nil, nil, nil, err // applied before: cannot fail
			}
			from = a.index + 1
		}
		if last != nil && last.Size > from && last.Size <= body.Size {
			from = last.Size // the entries below were read when it was accepted
		}
	}
	if held == nil {
		f.mu.Lock()
		held = &heldEntries{first: max(from, f.next), max: f.maxHeld}
		f.mu.Unlock()
	}
	to := body.Size
	if !own && from < to {
		p, known := trial.At(from)
		signer := knownSigner(b, known)
		if signer == "" {
			return nil, nil, nil, c.fail("", tag(ErrCheckpoint, "its checkpoint of size %d carries no signature or cosignature by a key of the policy in force at index %d (%s): none of its entries was read", body.Size, from, p.Digest()),
				"the source is not this network's build node or mirror, or the policy changed in a way this node cannot follow: follow another build node or mirror")
		}
		if _, _, err := known.VerifyCheckpoint(b); err != nil {
			// Vouched for by a key, not by a majority: read a bounded
			// part of what it claims.
			if budget := uint64(f.opts.MaxUnverified); to-from > budget {
				to = from + budget
			}
		}
	}
	read := from // the entries read, each proven included in b's tree
	refused := false
	err = c.Entries(ctx, claimed, from, to, func(i uint64, e []byte) error {
		read = i + 1
		held.add(i, e)
		if k, err := publish.EntryKind(e); err != nil || k != publish.KindPolicy {
			return nil // judged by Visit
		}
		ch, err := publish.ParsePolicyChange(e)
		if err == nil {
			_, err = trial.Apply(i, ch)
		}
		if err != nil {
			refused = true
			return tag(ErrCheckpoint, "the policy change at index %d of its tree does not hold under the policy in force there: %w", i, err)
		}
		found = append(found, appliedChange{i, ch})
		return nil
	})
	if err != nil && !own && !refused && read > from {
		// A read failed or the poll ran out of time (PollTimeout): what
		// was read and proven included in b's tree stays, for the next
		// poll offered b (by any source) to read on.
		f.pending[c] = &pendingJudge{text: n.Text, base: last, trial: trial, found: found, held: held, next: read}
		return nil, nil, nil, err
	}
	if err != nil {
		delete(f.pending, c)
		return nil, nil, nil, err
	}
	if to < body.Size {
		f.pending[c] = &pendingJudge{text: n.Text, base: last, trial: trial, found: found, held: held, next: to}
		return nil, nil, nil, c.fail("", tag(ErrUnverifiedLimit, "its checkpoint of size %d is not final under the policy in force at index %d: this poll read its entries below index %d, at most %d a poll before a checkpoint is judged (FollowerOptions.MaxUnverified); the next poll reads on", body.Size, from, to, f.opts.MaxUnverified),
			"a policy change among its entries may make it final; if none does, the source lies: follow another build node or mirror")
	}
	delete(f.pending, c)
	p, trust := trial.ForCheckpoint(body.Size)
	cp, err := New(c.src, Options{Trust: trust}).VerifyCheckpoint(b)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("under the policy in force at size %d (%s): %w", body.Size, p.Digest(), err)
	}
	return cp, found, held, nil
}

// pendingFor returns the judgement in progress of the checkpoint of body
// text, begun with last the last one verified: c's own, or one another
// source began (the entries are proven included in the checkpoint, and
// the same text is the same tree whoever serves it), which c takes over.
func (f *Follower) pendingFor(c *Client, text string, last *Checkpoint) *pendingJudge {
	if p := f.pending[c]; p != nil && p.text == text && p.base == last {
		return p
	}
	for o, p := range f.pending {
		if p.text == text && p.base == last {
			delete(f.pending, o) // its trial chain goes on with c
			f.pending[c] = p
			return p
		}
	}
	return nil
}

// knownSigner returns the name of a key of t whose signature (as the log)
// or cosignature on the checkpoint note b verifies, "" if none does.
func knownSigner(b []byte, t *policy.Trust) string {
	for _, vs := range [][]note.Verifier{t.LogVerifiers, t.Cosigners} {
		for _, v := range vs {
			if _, err := note.Open(b, note.VerifierList(v)); err == nil {
				return v.Name()
			}
		}
	}
	return ""
}

// applyChanges applies found, verified, to the chain.
func (f *Follower) applyChanges(found []appliedChange) {
	for _, a := range found {
		if n := len(f.applied); n > 0 && f.applied[n-1].index >= a.index {
			continue
		}
		if _, err := f.opts.Chain.Apply(a.index, a.change); err != nil {
			// The chain's owner applied something else: say so, keep going.
			f.logger.Error("applying a verified policy change to the chain", "index", a.index, "err", err)
			continue
		}
		f.applied = append(f.applied, a)
		f.logger.Info("a policy change in force", "index", a.index, "policy", a.change.New.Digest())
		if f.opts.OnChange != nil {
			f.opts.OnChange(a.index, a.change)
		}
	}
}

type wireChange struct {
	Index uint64 `json:"index"`
	Entry []byte `json:"entry"`
}

// storeChanges writes ChangesFile: the changes applied and found (the
// changes of the checkpoint about to be stored).
func (f *Follower) storeChanges(found []appliedChange) error {
	if f.opts.Chain == nil {
		return nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	var last uint64
	some := false
	for _, list := range [][]appliedChange{f.applied, found} {
		for _, a := range list {
			if some && a.index <= last {
				continue
			}
			b, err := publish.MarshalPolicyChange(a.change)
			if err != nil {
				return fmt.Errorf("logclient: follower: storing the policy changes: %w", err)
			}
			enc.Encode(wireChange{a.index, b})
			last, some = a.index, true
		}
	}
	if err := fsutil.WriteFileAtomic(filepath.Join(f.opts.StateDir, ChangesFile), buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("logclient: follower: storing the policy changes: %w", err)
	}
	return nil
}

// confirmChanges checks the changes applied from ChangesFile at a
// restart against the log: it reads every entry of the stored checkpoint
// cp's tree (each proven included in it) and judges the policy changes
// among them from the first policy on. The file is only a cache: a
// change it lacks at its end (a disk that lost its tail, or someone who
// removed it) is applied now, from the log; a file that says anything
// else than the log (a change at another index, or one the log does not
// hold there) is an error of every poll until it is moved away, and
// nothing is visited meanwhile.
func (f *Follower) confirmChanges(ctx context.Context, c *Client, cp *Checkpoint) error {
	path := filepath.Join(f.opts.StateDir, ChangesFile)
	_, found, held, err := f.verifyChainFrom(ctx, c, cp.Note, nil, nil, true)
	if err != nil {
		return fmt.Errorf("logclient: follower: checking %s against the log: %w", path, err)
	}
	for k, a := range f.applied {
		if k >= len(found) || found[k].index != a.index || !sameChange(found[k].change, a.change) {
			return fmt.Errorf("logclient: follower: %s does not match the log: it holds a policy change at index %d that the log's tree of size %d does not hold there; the chain applied at the restart is wrong: stop the node, move %s away and start it again, to read the changes from the log",
				path, a.index, cp.Size, path)
		}
	}
	if len(found) > len(f.applied) {
		f.logger.WarnContext(ctx, "the policy changes file lacks changes of the log: applying them from the log", "file", path, "from", found[len(f.applied)].index)
		if err := f.storeChanges(found); err != nil {
			return err
		}
		f.applyChanges(found)
	}
	f.held = append(f.held, held)
	return nil
}

func sameChange(a, b *policy.Change) bool {
	x, err1 := publish.MarshalPolicyChange(a)
	y, err2 := publish.MarshalPolicyChange(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// maxChangesFile bounds ChangesFile.
const maxChangesFile = 64 << 20

// resumeChain judges the stored checkpoint b by the chain of the changes
// in ChangesFile (each judged again by the policy in force at its index)
// and, if it verifies, applies them.
func (f *Follower) resumeChain(ctx context.Context, b []byte) (*Checkpoint, error) {
	path := filepath.Join(f.opts.StateDir, ChangesFile)
	raw, err := fileread.ReadFile(ctx, path, "policy changes", maxChangesFile)
	if err != nil {
		return nil, err
	}
	body, err := parseUnverified(b)
	if err != nil {
		return nil, err
	}
	first, _ := f.opts.Chain.At(0)
	trial, err := policy.NewChain(first)
	if err != nil {
		return nil, err
	}
	var found []appliedChange
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	for dec.More() {
		var w wireChange
		if err := dec.Decode(&w); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if w.Index >= body.Size {
			break // stored before a checkpoint that was not
		}
		c, err := publish.ParsePolicyChange(w.Entry)
		if err == nil {
			_, err = trial.Apply(w.Index, c)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: the change at index %d: %w", path, w.Index, err)
		}
		found = append(found, appliedChange{w.Index, c})
	}
	_, trust := trial.ForCheckpoint(body.Size)
	cp, err := New(f.opts.Source, Options{Trust: trust}).VerifyCheckpoint(b)
	if err != nil {
		return nil, err
	}
	f.applyChanges(found)
	return cp, nil
}
