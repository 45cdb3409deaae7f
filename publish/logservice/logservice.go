// Package logservice runs the transparency log as a service that a daemon
// embeds: the log ([tlog.Log]), an index of its entries that follows every
// append ([index.Index]), the cosigners that make its checkpoints final, and
// the finality rule of the trust policy.
//
// # Flow
//
// [Service.Append] writes an entry to the log, indexes it, and wakes
// [Service.Run]. Run then signs a candidate checkpoint at the log's size,
// asks every [Cosigner] for its cosignature at once, and commits the
// checkpoint as soon as [Options.Final] accepts the note with the
// cosignatures received so far: a majority's, under a policy's rule, so
// the slowest cosigners are not waited for. Appends that
// arrive while a checkpoint is being cosigned are covered by the next one:
// checkpoints follow appends, one at a time, with no publish interval. A
// checkpoint that does not become final (a cosigner is away, behind, or
// refuses) is tried again after [Options.RetryInterval], and on the next
// append.
//
// # Serving
//
// [Service.Handler] serves the log as C2SP tlog-tiles, the proofs of
// [tlog.Log.Handler], the index lookups of [index.Index.Handler], and the
// latest final checkpoint: a checkpoint that is not final is never served.
package logservice

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/index"
	"github.com/pyrsia/pyrsia-build/publish/tlog"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// Cosigner gives its cosignature (tlog-cosignature/v1) on a checkpoint
// note signed by the log, once it has checked that the checkpoint extends
// the last one it cosigned, with consistency proofs from src. Cosign
// returns when ctx is done. The local [*witness.Cosigner] is one; the build
// node's peer cosigners, which ask another node over the network, are
// others. It is the same contract as witness.CosignerClient.
//
// A cosigner that refuses because it has already cosigned a larger
// checkpoint (a peer whose replica is ahead of this one) should return an
// error with a method CosignedSize() uint64 giving that size: the service
// then waits until its own log reaches that size and asks again there,
// rather than asking again for sizes the cosigner will refuse.
type Cosigner interface {
	Cosign(ctx context.Context, checkpointNote []byte, src witness.ProofSource) (note.Signature, error)
}

// Options configure [Open].
type Options struct {
	// Log is how the log is opened; its Visit, if set, is called as well
	// as the index's.
	Log tlog.Options
	// Cosigners are asked for cosignatures on every checkpoint.
	Cosigners []Cosigner
	// CosignersFor, when set, returns the cosigners of a checkpoint of
	// size entries instead of Cosigners: a network whose policy changes
	// asks the nodes of the policy in force at that size.
	CosignersFor func(size uint64) []Cosigner
	// Final decides whether a cosigned checkpoint note may be served, and
	// returns the names of its cosigners: policy.Trust.VerifyCheckpoint,
	// or [AllCosigned]. Required.
	Final func(note []byte) (cosigners []string, err error)
	// CosignTimeout bounds one round of cosigning (default 10s).
	CosignTimeout time.Duration
	// RetryInterval is how long a checkpoint that did not become final
	// waits before it is tried again (default 1s; it doubles while the
	// attempts fail, up to 30s).
	RetryInterval time.Duration
	// Logger receives the service's messages (default slog.Default()).
	Logger *slog.Logger
	// KnownEntries makes Open refuse a log that holds an entry this build
	// cannot read: a publish entry that publish.ParseEntry refuses, a
	// policy change that publish.ParsePolicyChange refuses, an entry of
	// another kind, or one that is no entry at all. A build node's log
	// holds only those two kinds (its state machine refuses others), so
	// such an entry is damage, or a newer version's: Open's error names
	// the log, the index and the problem, where it would otherwise serve
	// a log whose index and policy chain silently lack that entry. Unset,
	// such entries are kept but not indexed (a log of other entries).
	KnownEntries bool
}

// Service is an open log with its index and cosigners. Its methods are
// safe for concurrent use.
type Service struct {
	log   *tlog.Log
	idx   *index.Index
	opts  Options
	lg    *slog.Logger
	wake  chan struct{}
	mu    sync.Mutex
	final *tlog.Checkpoint // the latest final checkpoint, nil if none
	grown chan struct{}    // closed and replaced when final changes
	added chan struct{}    // closed and replaced after each append
	cand  *tlog.Checkpoint // the latest checkpoint signed by Run
	cands chan struct{}    // closed and replaced when cand changes
	// changes are the indexes of the log's policy change entries, in
	// order: every proof bundle carries those below its tree size.
	changes []uint64
}

// notePolicyChange records the index of an entry of kind policy. The
// kind is the one a build node's check judges it by
// ([publish.LogEntryKind]): bytes that start as a publish entry are no
// policy change, whatever follows.
func (s *Service) notePolicyChange(i uint64, entry []byte) {
	if k, err := publish.LogEntryKind(entry); err != nil || k != publish.KindPolicy {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if n := len(s.changes); n == 0 || s.changes[n-1] < i {
		s.changes = append(s.changes, i)
	}
}

// PolicyChanges returns the indexes of the policy change entries below
// size, in log order.
func (s *Service) PolicyChanges(size uint64) []uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []uint64
	for _, i := range s.changes {
		if i < size {
			out = append(out, i)
		}
	}
	return out
}

// Open opens the log, indexes its entries, and loads its checkpoint as the
// final one if Final accepts it. Run must be called for checkpoints to be
// published.
func Open(ctx context.Context, o Options) (*Service, error) {
	if o.Final == nil {
		return nil, errors.New("logservice: no finality rule (Options.Final) given")
	}
	if o.CosignTimeout <= 0 {
		o.CosignTimeout = 10 * time.Second
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Log.Logger == nil {
		o.Log.Logger = o.Logger
	}
	idx, err := index.New()
	if err != nil {
		return nil, fmt.Errorf("logservice: %w", err)
	}
	var batch []index.Item
	var changes []uint64
	flush := func() error {
		err := idx.AddBatch(batch)
		batch = batch[:0]
		return err
	}
	userVisit := o.Log.Visit
	o.Log.Visit = func(i uint64, data []byte) error {
		if userVisit != nil {
			if err := userVisit(i, data); err != nil {
				return err
			}
		}
		e, err := publish.ParseEntry(data)
		if err != nil {
			// LogEntryKind, as notePolicyChange on append and a build
			// node's check: bytes that start as a publish entry are no
			// policy change, whatever a later "kind" says.
			kind, kerr := publish.LogEntryKind(data)
			if o.KnownEntries {
				if bad := unreadable(data, kind, kerr, err); bad != nil {
					return fmt.Errorf("logservice: log %s (origin %q): entry %d cannot be read by this build: %w; the log is damaged, or a newer pyrsia-build wrote it: restore the data folder from a replica, or upgrade",
						o.Log.Dir, o.Log.Origin, i, bad)
				}
			}
			if kerr == nil && kind == publish.KindPolicy {
				changes = append(changes, i)
			}
			o.Logger.DebugContext(ctx, "not indexing a log entry that is not a publish entry", "index", i, "err", err)
			return nil
		}
		batch = append(batch, index.Item{LogIndex: i, Entry: e})
		if len(batch) == 4096 {
			return flush()
		}
		return nil
	}
	started := time.Now()
	l, err := tlog.Open(ctx, o.Log)
	if err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		l.Close()
		return nil, fmt.Errorf("logservice: indexing the log: %w", err)
	}
	s := &Service{log: l, idx: idx, opts: o, lg: o.Logger, wake: make(chan struct{}, 1), grown: make(chan struct{}), added: make(chan struct{}), cands: make(chan struct{}), changes: changes}
	if cp := l.Checkpoint(); cp != nil {
		if _, err := o.Final(cp.Note); err == nil {
			s.final = cp
		} else {
			o.Logger.InfoContext(ctx, "stored checkpoint is not final yet; it will be cosigned again", "size", cp.Size, "err", err)
		}
	}
	o.Logger.InfoContext(ctx, "log opened and indexed", "entries", l.Size(), "indexed", idx.Len(), "took", time.Since(started).Round(time.Millisecond))
	return s, nil
}

// unreadable returns why an entry that publish.ParseEntry refused
// (perr) is not one a build node's log may hold, or nil for a policy
// change that parses. kind and kerr are publish.LogEntryKind's answer.
func unreadable(data []byte, kind string, kerr, perr error) error {
	switch {
	case kerr != nil:
		return kerr
	case kind == publish.KindPolicy:
		_, err := publish.ParsePolicyChange(data)
		return err
	}
	return perr // a publish entry that does not parse, or another kind
}

// Log returns the underlying log, for reads (entries, tiles, proofs).
func (s *Service) Log() *tlog.Log { return s.log }

// Index returns the index of the log's entries.
func (s *Service) Index() *index.Index { return s.idx }

// Size returns the number of entries durably in the log.
func (s *Service) Size() uint64 { return s.log.Size() }

// EntryAt returns the entry at index. An entry that is durable but not yet
// under a signed checkpoint (appended just before a restart) is read after
// signing a candidate checkpoint at the log's size, as Run would.
func (s *Service) EntryAt(ctx context.Context, index uint64) ([]byte, error) {
	e, err := s.log.Entry(ctx, index)
	if errors.Is(err, tlog.ErrNotPublished) && index < s.log.Size() {
		if _, perr := s.log.Publish(ctx); perr != nil {
			return nil, fmt.Errorf("logservice: reading entry %d: %w (signing a candidate checkpoint: %w)", index, err, perr)
		}
		e, err = s.log.Entry(ctx, index)
	}
	return e, err
}

// Close closes the log. Call it after Run has returned.
func (s *Service) Close() error { return s.log.Close() }

// Append writes entry to the log and returns its index once it is durable.
// A publish entry is indexed before Append returns; other entries are
// stored but not indexed. A checkpoint covering it follows (see Run).
func (s *Service) Append(ctx context.Context, entry []byte) (uint64, error) {
	e, perr := publish.ParseEntry(entry)
	i, err := s.log.Append(ctx, entry)
	if err != nil {
		return 0, err
	}
	s.notePolicyChange(i, entry)
	if perr == nil {
		if err := s.idx.Add(i, e); err != nil {
			// The entry is durable; the index is a cache of the log.
			s.lg.ErrorContext(ctx, "indexing an appended entry", "index", i, "err", err)
		}
	}
	s.mu.Lock()
	close(s.added)
	s.added = make(chan struct{})
	s.mu.Unlock()
	s.Notify()
	return i, nil
}

// AppendBatch writes entries to the log in their order, with one fsync,
// and returns the index of the first once all are durable
// ([tlog.Log.AppendBatch]). The publish entries among them are indexed
// before it returns; one checkpoint follows for the whole batch.
func (s *Service) AppendBatch(ctx context.Context, entries [][]byte) (uint64, error) {
	return s.AppendParsedBatch(ctx, entries, nil)
}

// AppendParsedBatch is [Service.AppendBatch] with the entries' parses:
// parsed[k], when not nil, must be publish.ParseEntry's entry of
// entries[k] (a build node's state machine parsed it to check it), and is
// indexed as it is instead of parsing entries[k] again; a nil parsed[k],
// or a parsed shorter than entries, has the entry parsed here. The parsed
// entries are the service's to keep.
func (s *Service) AppendParsedBatch(ctx context.Context, entries [][]byte, parsed []*publish.Entry) (uint64, error) {
	first, err := s.log.AppendBatch(ctx, entries)
	if err != nil {
		return 0, err
	}
	items := make([]index.Item, 0, len(entries))
	for k, b := range entries {
		i := first + uint64(k)
		if k < len(parsed) && parsed[k] != nil {
			// A publish entry: no policy change to note.
			items = append(items, index.Item{LogIndex: i, Entry: parsed[k]})
			continue
		}
		s.notePolicyChange(i, b)
		if e, perr := publish.ParseEntry(b); perr == nil {
			items = append(items, index.Item{LogIndex: i, Entry: e})
		}
	}
	if len(items) > 0 {
		if err := s.idx.AddBatch(items); err != nil {
			// One at a time, so that one bad item does not leave the
			// others out. The entries are durable; the index is a cache
			// of the log.
			for _, it := range items {
				if err := s.idx.Add(it.LogIndex, it.Entry); err != nil {
					s.lg.ErrorContext(ctx, "indexing an appended entry", "index", it.LogIndex, "err", err)
				}
			}
		}
	}
	s.mu.Lock()
	close(s.added)
	s.added = make(chan struct{})
	s.mu.Unlock()
	s.Notify()
	return first, nil
}

// WaitSize waits until the log holds at least size entries, or ctx is
// done.
func (s *Service) WaitSize(ctx context.Context, size uint64) error {
	for {
		s.mu.Lock()
		added := s.added
		s.mu.Unlock()
		if s.log.Size() >= size {
			return nil
		}
		select {
		case <-added:
		case <-ctx.Done():
			return fmt.Errorf("logservice: waiting for the log to reach size %d (it has %d): %w", size, s.log.Size(), ctx.Err())
		}
	}
}

// Notify wakes Run to publish a checkpoint at the log's current size.
func (s *Service) Notify() {
	select {
	case s.wake <- struct{}{}:
	default: // a wake-up is pending; it will see this size too
	}
}

// Final returns the latest final checkpoint, or nil.
func (s *Service) Final() *tlog.Checkpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.final
}

// WaitFinal returns the first final checkpoint of at least size entries,
// waiting for it until ctx is done.
func (s *Service) WaitFinal(ctx context.Context, size uint64) (*tlog.Checkpoint, error) {
	for {
		s.mu.Lock()
		cp, grown := s.final, s.grown
		s.mu.Unlock()
		if cp != nil && cp.Size >= size {
			return cp, nil
		}
		select {
		case <-grown:
		case <-ctx.Done():
			return nil, fmt.Errorf("logservice: waiting for a final checkpoint of size %d: %w", size, ctx.Err())
		}
	}
}

// WaitSigned returns the latest checkpoint that Run has signed (final or
// not) once it has at least size entries, waiting until ctx is done. A
// peer cosigner compares what it is asked to cosign with it.
func (s *Service) WaitSigned(ctx context.Context, size uint64) (*tlog.Checkpoint, error) {
	for {
		s.mu.Lock()
		cp, ch := s.cand, s.cands
		s.mu.Unlock()
		if cp != nil && cp.Size >= size {
			return cp, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("logservice: waiting for a checkpoint of size %d (the log has %d entries): %w", size, s.log.Size(), ctx.Err())
		}
	}
}

// Run publishes checkpoints as entries are appended, until ctx is done.
// It returns nil then.
func (s *Service) Run(ctx context.Context) error {
	retry := time.NewTimer(0) // a first attempt at start
	defer retry.Stop()
	backoff := s.opts.RetryInterval
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-retry.C:
		}
		err := s.publish(ctx)
		if ctx.Err() != nil {
			return nil
		}
		var ahead *aheadError
		if errors.As(err, &ahead) {
			// Cosigners refuse anything below their latest: wait until this
			// replica has it (bounded: a cosigner may be wrong about it).
			s.lg.InfoContext(ctx, "cosigners have cosigned a larger checkpoint; waiting for this replica to reach it", "size", ahead.size, "log_size", s.log.Size())
			wctx, cancel := context.WithTimeout(ctx, max(backoff, 30*time.Second))
			werr := s.WaitSize(wctx, ahead.size)
			cancel()
			if ctx.Err() != nil {
				return nil
			}
			if werr == nil {
				backoff = s.opts.RetryInterval
				if !retry.Stop() {
					select {
					case <-retry.C:
					default:
					}
				}
				retry.Reset(0)
				continue
			}
			err = errors.Join(err, werr)
		}
		if !retry.Stop() {
			select {
			case <-retry.C:
			default:
			}
		}
		if err == nil {
			backoff = s.opts.RetryInterval
			continue
		}
		s.lg.WarnContext(ctx, "checkpoint is not final yet; trying again", "retry_in", backoff, "err", err)
		retry.Reset(backoff)
		backoff = min(2*backoff, 30*time.Second)
	}
}

// publish makes the log's current size final, if it is not yet.
func (s *Service) publish(ctx context.Context) error {
	if cur := s.Final(); s.log.Size() == 0 || cur != nil && cur.Size == s.log.Size() {
		return nil // nothing new to vouch for
	}
	started := time.Now()
	cp, err := s.log.Publish(ctx)
	if err != nil {
		return fmt.Errorf("signing a checkpoint: %w", err)
	}
	s.mu.Lock()
	if s.cand == nil || s.cand.Size < cp.Size {
		s.cand = cp
		close(s.cands)
		s.cands = make(chan struct{})
	}
	s.mu.Unlock()
	if cur := s.Final(); cur != nil && cur.Size >= cp.Size {
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, s.opts.CosignTimeout)
	signed, names, errs, err := s.cosign(cctx, cp.Size, cp.Note)
	cancel()
	if err != nil {
		err = fmt.Errorf("checkpoint of size %d: %w (cosigners: %w)", cp.Size, err, errors.Join(errs...))
		if latest := cosignedAhead(errs, cp.Size); latest > 0 {
			return &aheadError{size: latest, err: err}
		}
		return err
	}
	if err := commit(s.log, signed); err != nil {
		return fmt.Errorf("storing the final checkpoint of size %d: %w", cp.Size, err)
	}
	final := &tlog.Checkpoint{Checkpoint: cp.Checkpoint, Note: signed}
	s.mu.Lock()
	s.final = final
	close(s.grown)
	s.grown = make(chan struct{})
	s.mu.Unlock()
	s.lg.InfoContext(ctx, "published final checkpoint", "size", cp.Size, "cosigned_by", names, "took", time.Since(started).Round(time.Microsecond))
	if len(errs) > 0 {
		s.lg.WarnContext(ctx, "some cosigners did not cosign", "size", cp.Size, "err", errors.Join(errs...))
	}
	return nil
}

// aheadError is publish's answer when cosigners refused because they have
// cosigned a larger checkpoint: size is the smallest such size.
type aheadError struct {
	size uint64
	err  error
}

func (e *aheadError) Error() string { return e.err.Error() }
func (e *aheadError) Unwrap() error { return e.err }

// cosignedAhead returns the smallest size above size that a refusing
// cosigner says it has cosigned (see [Cosigner]), or 0.
func cosignedAhead(errs []error, size uint64) uint64 {
	var least uint64
	for _, err := range errs {
		var a interface{ CosignedSize() uint64 }
		if errors.As(err, &a) {
			if n := a.CosignedSize(); n > size && (least == 0 || n < least) {
				least = n
			}
		}
	}
	return least
}

// cosign asks every cosigner at once, and returns as soon as
// [Options.Final] accepts the note with the cosignatures received so far:
// the cosigners that have not answered then are cancelled, so the slowest
// replica does not hold the checkpoint back once a majority has vouched
// for it (they cosign the next one). It returns the cosigned note and
// Final's names, or Final's refusal once every cosigner has answered; errs
// are the refusals received (those of the cosigners cancelled are left
// out). The cosignatures are added in the cosigners' order.
func (s *Service) cosign(ctx context.Context, size uint64, cpNote []byte) (signed []byte, names []string, errs []error, err error) {
	type result struct {
		i   int
		sig note.Signature
		err error
	}
	cosigners := s.opts.Cosigners
	if s.opts.CosignersFor != nil {
		cosigners = s.opts.CosignersFor(size)
	}
	if len(cosigners) == 0 {
		names, err = s.opts.Final(cpNote)
		return cpNote, names, nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	results := make(chan result, len(cosigners)) // never blocks a cosigner left behind
	for i, c := range cosigners {
		go func() {
			sig, err := c.Cosign(ctx, cpNote, s.log)
			results <- result{i, sig, err}
		}()
	}
	got := make([]*note.Signature, len(cosigners))
	for range cosigners {
		r := <-results
		if r.err != nil {
			errs = append(errs, r.err)
			continue
		}
		got[r.i] = &r.sig
		var sigs []note.Signature
		for _, g := range got {
			if g != nil {
				sigs = append(sigs, *g)
			}
		}
		if signed, err = witness.AddSignatures(cpNote, sigs...); err != nil {
			return nil, nil, errs, err
		}
		if names, err = s.opts.Final(signed); err == nil {
			return signed, names, errs, nil
		}
	}
	if len(errs) == len(cosigners) {
		// No cosignature at all: Final's own words on the bare note
		// (a rule that needs none takes it as it is).
		if names, err = s.opts.Final(cpNote); err == nil {
			return cpNote, names, errs, nil
		}
	}
	return nil, nil, errs, err
}

// Handler serves the log (see the package documentation):
//
//	GET /checkpoint                       the latest final checkpoint
//	GET /tile/...                         C2SP tlog-tiles
//	GET /proof/inclusion/<index>?size=<S> inclusion proofs, as JSON
//	GET /proof/consistency/<old>/<new>    consistency proofs, as JSON
//	GET /lookup/...                       index lookups, as JSON
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/", s.log.Handler())
	mux.HandleFunc("GET /checkpoint", func(w http.ResponseWriter, r *http.Request) {
		cp := s.Final()
		if cp == nil {
			http.Error(w, "no final checkpoint yet", http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		w.Write(cp.Note)
	})
	mux.Handle("/lookup/", s.idx.Handler())
	return mux
}

// CosignedBy returns a finality rule for [Options.Final] that requires a
// log signature by logVerifier and cosignatures by threshold distinct keys
// of cosigners ([witness.VerifyFinal]): the rule of a log whose cosigners
// are local. With no cosigners, the log's signature alone makes a
// checkpoint final.
func CosignedBy(origin string, logVerifier note.Verifier, cosigners []note.Verifier, threshold int) func([]byte) ([]string, error) {
	return func(b []byte) ([]string, error) {
		if len(cosigners) == 0 {
			_, _, err := witness.ParseCheckpoint(b, origin, logVerifier)
			return nil, err
		}
		_, names, err := witness.VerifyFinal(b, origin, []note.Verifier{logVerifier}, cosigners, threshold)
		return names, err
	}
}

// ErrNotFinal is returned by [Service.ProofBundle] for an entry that no
// final checkpoint covers yet. Use errors.Is.
var ErrNotFinal = errors.New("logservice: no final checkpoint covers the entry yet")

// ProofBundle returns the proof bundle of the entry at index against the
// latest final checkpoint, with its inclusion proof checked.
func (s *Service) ProofBundle(ctx context.Context, index uint64) (*publish.ProofBundle, error) {
	cp := s.Final()
	if cp == nil || index >= cp.Size {
		return nil, fmt.Errorf("entry %d: %w", index, ErrNotFinal)
	}
	entry, err := s.log.Entry(ctx, index)
	if err != nil {
		return nil, fmt.Errorf("logservice: reading entry %d: %w", index, err)
	}
	hashes, err := s.log.InclusionProof(ctx, index, cp.Size)
	if err != nil {
		return nil, fmt.Errorf("logservice: inclusion proof of entry %d: %w", index, err)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, cp.Size, publish.LeafHash(entry), hashes, cp.Hash); err != nil {
		return nil, fmt.Errorf("logservice: the log's inclusion proof of entry %d does not verify against its own checkpoint (the log is damaged): %w", index, err)
	}
	pb := &publish.ProofBundle{RawEntry: entry, Index: index, TreeSize: cp.Size, InclusionProof: hashes, Checkpoint: string(cp.Note)}
	// The policy changes of the tree, for a verifier that knows the
	// network's first policy (publish.VerifyProofChain).
	for _, i := range s.PolicyChanges(cp.Size) {
		if i == index {
			continue
		}
		e, err := s.log.Entry(ctx, i)
		if err != nil {
			return nil, fmt.Errorf("logservice: reading policy change %d: %w", i, err)
		}
		h, err := s.log.InclusionProof(ctx, i, cp.Size)
		if err != nil {
			return nil, fmt.Errorf("logservice: inclusion proof of policy change %d: %w", i, err)
		}
		pb.PolicyChanges = append(pb.PolicyChanges, publish.PolicyChangeProof{Index: i, RawEntry: e, InclusionProof: h})
	}
	return pb, nil
}
