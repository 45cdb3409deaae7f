package quorum

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/pyrsia/pyrsia-build/publish"
)

// CommandType is the first byte of every Raft log entry the FSM applies,
// as in consul's FSM: it selects the apply function.
type CommandType byte

// Command types. New types get new numbers; numbers are never reused.
const (
	// CmdAppendEntry appends one publish log entry (publish.Entry bytes)
	// to the node's log, after re-checking its quorum.
	CmdAppendEntry CommandType = 1
)

// AppendEntryCommand encodes the command that appends entry.
func AppendEntryCommand(entry []byte) []byte {
	return append([]byte{byte(CmdAppendEntry)}, entry...)
}

// Checker re-verifies a log entry before the FSM applies it: the entry is
// well-formed and carries a quorum of the policy's build nodes (their
// attestations of the entry's spec and subjects, signatures checked
// against the policy), so that a faulty leader cannot slip in an entry the
// nodes did not agree on. It returns the entry's input digest. It must be
// deterministic: every node checks every entry and must come to the same
// answer. The FSM checks the entries of a batch concurrently, so
// CheckEntry must be safe for concurrent use. publish.VerifyEntry with the
// policy does this.
type Checker interface {
	CheckEntry(entry []byte) (inputDigest string, err error)
}

// CheckerFunc adapts a function to [Checker].
type CheckerFunc func(entry []byte) (string, error)

// CheckEntry implements [Checker].
func (f CheckerFunc) CheckEntry(entry []byte) (string, error) { return f(entry) }

// Applier is the node's log, as the FSM appends to it (tlog.Log is one).
//
// Size returns the number of entries durably in the log. Append adds an
// entry at index Size() and returns its index once it is durable. The FSM
// calls them from one goroutine.
//
// Raft replays committed entries after a restart (all of them, or those
// after the last snapshot): the FSM counts the entries it has placed, and
// an entry whose position is below Size() is already in the log and is not
// appended again. So the log and the FSM never disagree on what was
// appended, even after a crash between the two.
type Applier interface {
	Size() uint64
	Append(ctx context.Context, entry []byte) (uint64, error)
}

// EntryAt is an optional upgrade of an [Applier]: when the log can read
// back an entry, a replayed entry is compared with the one stored at its
// position, and a difference stops the FSM (the log and Raft disagree:
// the node needs an operator, not a guess).
type EntryAt interface {
	EntryAt(ctx context.Context, index uint64) ([]byte, error)
}

// BatchAppender is an optional upgrade of an [Applier]: AppendBatch adds
// entries at indices Size(), Size()+1, ... in their order and returns the
// index of the first once all are durable (tlog.Log's AppendBatch: one
// write-ahead-log write and one fsync for the batch). The FSM then appends
// each Raft batch of entries at once, instead of waiting for an fsync per
// entry.
type BatchAppender interface {
	AppendBatch(ctx context.Context, entries [][]byte) (uint64, error)
}

// ParsedBatchAppender is an optional upgrade of a [BatchAppender] that
// takes the entries' parses along (logservice.Service's, for its index):
// parsed[k], when not nil, is publish.ParseEntry's entry of entries[k],
// made by a [ParsingChecker] while it checked them, so the log does not
// parse the same bytes again. The entries are the log's to keep.
type ParsedBatchAppender interface {
	AppendParsedBatch(ctx context.Context, entries [][]byte, parsed []*publish.Entry) (uint64, error)
}

// ErrDuplicateInput is the response to an entry for an input digest the
// log already holds. Use errors.Is.
var ErrDuplicateInput = errors.New("quorum: fsm: the log already holds an entry for this input")

// ErrRefused wraps the Checker's error for an entry it refused. Use
// errors.Is.
var ErrRefused = errors.New("quorum: fsm: entry refused")

// ApplyResult is the FSM's response to a command, returned by
// raft.ApplyFuture.Response (and [Raft.Propose]).
type ApplyResult struct {
	// Index is the entry's index in the node's log.
	Index uint64
	// InputDigest is the entry's input digest.
	InputDigest string
	// Err is why the entry was not appended: wrapping ErrRefused,
	// ErrDuplicateInput, or a failure of the log.
	Err error
}

// FSMOptions configure [NewFSM].
type FSMOptions struct {
	Checker Checker
	Applier Applier
	// Catchup, if set, lets a node whose log is shorter than a restored
	// snapshot fetch the missing entries from a peer (see [Catchup]).
	Catchup Catchup
	// Observe, if set, is called after every command with its Raft index
	// and result (for the daemon: publish a checkpoint, wake a waiting
	// requester). It runs on the FSM goroutine: keep it short.
	Observe func(raftIndex uint64, r ApplyResult)
	// AppendTimeout bounds one Append (and EntryAt) of the log (default
	// 1m): a log that does not answer in time stops the FSM with an error
	// rather than blocking Raft's apply loop for ever.
	AppendTimeout time.Duration
	Logger        *slog.Logger
}

// FSM is the build nodes' Raft state machine: it appends agreed log
// entries to the node's log, in Raft's order, each once.
//
// # State
//
// The state is small: the number of entries placed in the log (size), and
// the input digest of each (an entry per input). It is rebuilt by replay
// after a restart; a snapshot carries only the size, and the input set is
// rebuilt from the node's own log entries on restore. The log entries live
// in the Applier, which is durable on its own.
//
// # Failure
//
// Bad input is an error value, never a panic: an unknown command type, a
// refused entry or a duplicate input gets an [ApplyResult] with Err set and
// changes nothing. A log that fails to append, or that disagrees with Raft
// on replay, stops the FSM: every later command gets that error, until the
// node is restarted and repaired.
//
// # Batches
//
// The FSM is a raft.BatchingFSM: Raft hands it the entries it committed
// together, and they are applied as one batch. Every entry is checked on
// its own, in Raft's order, exactly as if it came alone: its quorum by the
// Checker, and its input against the log's and against the entries before
// it in the same batch (a second entry for an input in one batch is
// refused too). The entries accepted are then appended together, with one
// fsync when the Applier is a [BatchAppender], and their results (and the
// Observe calls) follow once they are durable. A refused entry changes
// nothing and does not hold up the others.
type FSM struct {
	o     FSMOptions
	log   *slog.Logger
	apply map[CommandType]func(b *applyBatch, i int, idx uint64, data []byte)

	mu     sync.Mutex
	size   uint64
	inputs map[string]uint64 // input digest -> index in the log
	failed error
	stats  FSMStats

	// stopped ends a catch-up in Restore (Stop).
	stopped context.Context
	stop    context.CancelFunc
}

// FSMStats count the FSM's work, for benchmarks and /status.
type FSMStats struct {
	// Batches and Entries are the Raft batches applied and the commands
	// in them.
	Batches, Entries uint64
	// Apply is the time spent applying them: Check in the Checker,
	// Append in the log's appends (fsyncs), Observe in the observer.
	Apply, Check, Append, Observe time.Duration
}

// Stats returns the FSM's counters.
func (f *FSM) Stats() FSMStats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}

var _ raft.BatchingFSM = (*FSM)(nil)

// NewFSM makes the FSM.
func NewFSM(o FSMOptions) (*FSM, error) {
	if o.Checker == nil || o.Applier == nil {
		return nil, errors.New("quorum: fsm: checker and applier are required")
	}
	if o.AppendTimeout <= 0 {
		o.AppendTimeout = time.Minute
	}
	f := &FSM{o: o, log: o.Logger, inputs: make(map[string]uint64)}
	f.stopped, f.stop = context.WithCancel(context.Background())
	if f.log == nil {
		f.log = slog.Default()
	}
	f.apply = map[CommandType]func(*applyBatch, int, uint64, []byte){
		CmdAppendEntry: f.applyAppendEntry,
	}
	return f, nil
}

// Stop ends a catch-up that [FSM.Restore] is running, and makes later
// ones fail at once: the node is shutting down, and Raft's shutdown waits
// for its FSM goroutine ([Raft.Close] calls Stop). Applies are not
// affected.
func (f *FSM) Stop() { f.stop() }

// Size returns the number of entries the FSM has placed in the log.
func (f *FSM) Size() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.size
}

// Lookup returns the log index of the entry for an input digest.
func (f *FSM) Lookup(inputDigest string) (uint64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	i, ok := f.inputs[inputDigest]
	return i, ok
}

// Apply implements raft.FSM: a batch of one.
func (f *FSM) Apply(l *raft.Log) any {
	return f.ApplyBatch([]*raft.Log{l})[0]
}

// applyBatch is one Raft batch being applied: the results so far, the
// entries to append and the inputs they add.
type applyBatch struct {
	ctx     context.Context
	logs    []*raft.Log
	results []ApplyResult
	pos     uint64            // the log index of the next accepted entry
	logSize uint64            // the Applier's size at the start: below it, a replay
	inputs  map[string]uint64 // inputs of the entries accepted in this batch
	appends [][]byte          // entries to append, at logSize+...
	parsed  []*publish.Entry  // their parses by the Checker (nil: none)
	at      []int             // their positions in results
	checks  []check           // the Checker's answers, made beforehand
}

// check is the Checker's answer on one entry.
type check struct {
	done   bool
	input  string
	parsed *publish.Entry // a ParsingChecker's parse of a publish entry
	err    error
}

// checkAll runs the Checker on every append command of the batch at once,
// on up to GOMAXPROCS goroutines: the checks (signature verifications)
// are independent and deterministic, and only their use, in applyAppendEntry,
// follows Raft's order.
func (f *FSM) checkAll(b *applyBatch) {
	var todo []int
	for i, l := range b.logs {
		if l.Type == raft.LogCommand && len(l.Data) > 0 && CommandType(l.Data[0]) == CmdAppendEntry {
			todo = append(todo, i)
		}
	}
	b.checks = make([]check, len(b.logs))
	if len(todo) < 2 {
		return // checked in order
	}
	if _, ok := f.o.Checker.(IndexedChecker); ok {
		// Without a policy change in the batch, one policy is in force
		// at every index the batch fills: judge them all at its first.
		// With one, the entries after it are judged by its policy: in
		// order, at their own index.
		// LogEntryKind, not EntryKind: bytes that start as a canonical
		// publish entry are judged as one by the chain's check (and
		// refused unless they are one), never applied as a change, so
		// they need no scan of the rest here.
		for _, i := range todo {
			if k, err := publish.LogEntryKind(b.logs[i].Data[1:]); err == nil && k == publish.KindPolicy {
				return
			}
		}
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(todo)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				input, parsed, err := checkParsedAt(f.o.Checker, b.pos, b.logs[i].Data[1:])
				b.checks[i] = check{done: true, input: input, parsed: parsed, err: err}
			}
		}()
	}
	for _, i := range todo {
		next <- i
	}
	close(next)
	wg.Wait()
}

// ApplyBatch implements raft.BatchingFSM. It returns an [ApplyResult] for
// every log, in order (see [FSM]'s "Batches").
func (f *FSM) ApplyBatch(logs []*raft.Log) []any {
	started := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), f.o.AppendTimeout)
	defer cancel()
	f.mu.Lock()
	b := &applyBatch{ctx: ctx, logs: logs, results: make([]ApplyResult, len(logs)), pos: f.size, inputs: map[string]uint64{}}
	f.mu.Unlock()
	b.logSize = f.o.Applier.Size()
	if f.Err() == nil {
		f.checkAll(b)
	}
	commands := 0
	for i, l := range logs {
		if l.Type != raft.LogCommand {
			continue
		}
		commands++
		if len(l.Data) == 0 {
			b.results[i].Err = fmt.Errorf("quorum: fsm: raft entry %d is empty (no command type)", l.Index)
		} else if fn, ok := f.apply[CommandType(l.Data[0])]; !ok {
			b.results[i].Err = fmt.Errorf("quorum: fsm: raft entry %d has unknown command type %d (upgrade pyrsia-build?)", l.Index, l.Data[0])
		} else {
			fn(b, i, l.Index, l.Data[1:])
		}
	}
	checked := time.Now()
	f.appendAll(b)
	appended := time.Now()
	out := make([]any, len(logs))
	for i, l := range logs {
		out[i] = b.results[i]
		if l.Type != raft.LogCommand {
			continue
		}
		r := b.results[i]
		if r.Err != nil {
			f.log.Warn("raft command not applied", "raft_index", l.Index, "input", r.InputDigest, "err", r.Err)
		}
		if f.o.Observe != nil {
			f.o.Observe(l.Index, r)
		}
	}
	f.mu.Lock()
	f.stats.Batches++
	f.stats.Entries += uint64(commands)
	f.stats.Apply += time.Since(started)
	f.stats.Check += checked.Sub(started)
	f.stats.Append += appended.Sub(checked)
	f.stats.Observe += time.Since(appended)
	f.mu.Unlock()
	return out
}

// applyAppendEntry checks the entry of logs[i] and, if it is accepted,
// adds it to the batch's appends (or, for a replay, compares it with the
// log's).
func (f *FSM) applyAppendEntry(b *applyBatch, i int, idx uint64, entry []byte) {
	if err := f.Err(); err != nil {
		b.results[i] = ApplyResult{Err: err}
		return
	}
	c := b.checks[i]
	if !c.done {
		c.input, c.parsed, c.err = checkParsedAt(f.o.Checker, b.pos, entry)
	}
	input, err := c.input, c.err
	if err != nil {
		b.results[i] = ApplyResult{Err: fmt.Errorf("%w: raft entry %d: %w", ErrRefused, idx, err)}
		return
	}
	f.mu.Lock()
	prev, dup := f.inputs[input]
	f.mu.Unlock()
	if !dup {
		prev, dup = b.inputs[input]
	}
	if dup {
		b.results[i] = ApplyResult{InputDigest: input, Index: prev, Err: fmt.Errorf("%w: %s is entry %d", ErrDuplicateInput, input, prev)}
		return
	}
	pos := b.pos
	if pos < b.logSize {
		// A replay: the log holds this entry already.
		if er, ok := f.o.Applier.(EntryAt); ok {
			stored, err := er.EntryAt(b.ctx, pos)
			if err != nil {
				b.results[i] = f.fail(input, fmt.Errorf("quorum: fsm: reading log entry %d to check a replay: %w", pos, err))
				return
			}
			if !bytes.Equal(stored, entry) {
				b.results[i] = f.fail(input, fmt.Errorf("quorum: fsm: log entry %d differs from raft entry %d: the log and raft disagree (restore the log from a peer)", pos, idx))
				return
			}
		}
	} else {
		b.appends = append(b.appends, entry)
		b.parsed = append(b.parsed, c.parsed)
		b.at = append(b.at, i)
	}
	b.inputs[input] = pos
	b.pos = pos + 1
	b.results[i] = ApplyResult{Index: pos, InputDigest: input}
}

// appendAll appends the batch's accepted entries to the log, and records
// their inputs and the new size once they are durable. A failure of the
// log stops the FSM, and every entry not acknowledged by the log gets its
// error.
func (f *FSM) appendAll(b *applyBatch) {
	durable := b.pos // the entries below are in the log
	if len(b.appends) > 0 {
		durable = f.appendEntries(b)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for in, p := range b.inputs {
		if p < durable {
			f.inputs[in] = p
		}
	}
	f.size = max(f.size, durable)
}

// appendEntries writes b.appends, in one batch if the log can, and
// returns the log index below which the batch's entries are durable.
func (f *FSM) appendEntries(b *applyBatch) uint64 {
	want := b.results[b.at[0]].Index
	failFrom := func(k int, err error) uint64 {
		for _, i := range b.at[k:] {
			b.results[i] = f.fail(b.results[i].InputDigest, err)
		}
		return want + uint64(k)
	}
	if ba, ok := f.o.Applier.(BatchAppender); ok {
		var first uint64
		var err error
		if pa, ok := f.o.Applier.(ParsedBatchAppender); ok {
			first, err = pa.AppendParsedBatch(b.ctx, b.appends, b.parsed)
		} else {
			first, err = ba.AppendBatch(b.ctx, b.appends)
		}
		if err != nil {
			return failFrom(0, fmt.Errorf("quorum: fsm: appending raft entries %d to %d: %w", b.logs[b.at[0]].Index, b.logs[b.at[len(b.at)-1]].Index, err))
		}
		if first != want {
			return failFrom(0, fmt.Errorf("quorum: fsm: the log put raft entry %d at index %d, want %d (was it appended to by something else?)", b.logs[b.at[0]].Index, first, want))
		}
		return b.pos
	}
	for k, e := range b.appends {
		idx := b.logs[b.at[k]].Index
		got, err := f.o.Applier.Append(b.ctx, e)
		if err != nil {
			return failFrom(k, fmt.Errorf("quorum: fsm: appending raft entry %d: %w", idx, err))
		}
		if got != want+uint64(k) {
			return failFrom(k, fmt.Errorf("quorum: fsm: the log put raft entry %d at index %d, want %d (was it appended to by something else?)", idx, got, want+uint64(k)))
		}
	}
	return b.pos
}

func (f *FSM) fail(input string, err error) ApplyResult {
	f.mu.Lock()
	f.failed = err
	f.mu.Unlock()
	f.log.Error("raft FSM stopped", "err", err)
	return ApplyResult{InputDigest: input, Err: err}
}

// Err returns the error that stopped the FSM, if any.
func (f *FSM) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failed
}

// snapshotVersion is the "v" of the FSM's snapshot encoding. Version 1
// also listed the input digests; they are ignored when read (see
// [FSM.Restore]).
const snapshotVersion = 2

// fsmSnapshot is the FSM's snapshot, JSON:
//
//	{"v":2,"size":<entries in the log>}
//
// Neither the entries nor their input digests are in it: a snapshot comes
// from the leader, and the FSM trusts nothing in it but the size to reach.
// A node restoring a snapshot larger than its log fetches the missing
// entries from a peer (see [Catchup]), and rebuilds its input set from its
// own log.
type fsmSnapshot struct {
	V    int    `json:"v"`
	Size uint64 `json:"size"`
	// Inputs is version 1's input map, read and ignored.
	Inputs map[string]uint64 `json:"inputs,omitempty"`
}

// Snapshot implements raft.FSM.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.failed != nil {
		return nil, f.failed
	}
	return &fsmSnapshot{V: snapshotVersion, Size: f.size}, nil
}

// Persist implements raft.FSMSnapshot.
func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := json.NewEncoder(sink).Encode(s); err != nil {
		sink.Cancel()
		return fmt.Errorf("quorum: fsm: writing snapshot: %w", err)
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (s *fsmSnapshot) Release() {}

// entryReader returns a function reading the log's entries back: through
// [EntryAt], or a log's Entry method (tlog.Log's).
func entryReader(a Applier) func(ctx context.Context, i uint64) ([]byte, error) {
	switch r := a.(type) {
	case EntryAt:
		return r.EntryAt
	case interface {
		Entry(ctx context.Context, index uint64) ([]byte, error)
	}:
		return r.Entry
	}
	return nil
}

// rebuildInputs adds the input digests of the log's entries [start, end)
// to inputs, each through the Checker, and refuses a second entry for an
// input.
func rebuildInputs(ctx context.Context, c Checker, log Applier, start, end uint64, inputs map[string]uint64) error {
	if start >= end {
		return nil
	}
	read := entryReader(log)
	if read == nil {
		return fmt.Errorf("the log cannot read back its entries (no EntryAt) to rebuild the input set")
	}
	for i := start; i < end; i++ {
		e, err := read(ctx, i)
		if err != nil {
			return fmt.Errorf("reading log entry %d: %w", i, err)
		}
		if err := addInput(c, inputs, i, e); err != nil {
			return err
		}
	}
	return nil
}

// addInput checks entry i and records its input, refusing a duplicate.
func addInput(c Checker, inputs map[string]uint64, i uint64, entry []byte) error {
	input, err := checkAt(c, i, entry)
	if err != nil {
		return fmt.Errorf("%w: log entry %d: %w", ErrRefused, i, err)
	}
	if prev, dup := inputs[input]; dup {
		return fmt.Errorf("%w: log entry %d is a second entry for %s (entry %d)", ErrDuplicateInput, i, input, prev)
	}
	inputs[input] = i
	return nil
}

// Restore implements raft.FSM. Of the snapshot it uses only the size:
// when the node's log is shorter (a wiped disk, a node far behind), the
// missing entries are fetched through o.Catchup and appended (without a
// Catchup, Restore fails and says so). The input set is then rebuilt from
// the node's own log, every entry re-checked by the Checker: a snapshot
// cannot make the FSM forget an input (and append a second entry for it),
// and a log holding two entries for one input is refused.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	var s fsmSnapshot
	dec := json.NewDecoder(io.LimitReader(rc, 1<<30))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return fmt.Errorf("quorum: fsm: reading snapshot: %w", err)
	}
	if s.V != snapshotVersion && s.V != 1 {
		return fmt.Errorf("quorum: fsm: snapshot version %d, this build reads 1 and %d (upgrade pyrsia-build?)", s.V, snapshotVersion)
	}
	ctx := f.stopped
	have := f.o.Applier.Size()
	inputs := make(map[string]uint64)
	if err := rebuildInputs(ctx, f.o.Checker, f.o.Applier, 0, min(have, s.Size), inputs); err != nil {
		return fmt.Errorf("quorum: fsm: restoring a snapshot of %d entries: %w", s.Size, err)
	}
	if have < s.Size {
		if f.o.Catchup == nil {
			return fmt.Errorf("quorum: fsm: the log holds %d entries, the snapshot %d, and no peer to fetch the rest from", have, s.Size)
		}
		var err error
		if ic, ok := f.o.Catchup.(inputCatchup); ok {
			err = ic.CatchUpInputs(ctx, f.o.Applier, have, s.Size, inputs)
		} else if err = f.o.Catchup.CatchUp(ctx, f.o.Applier, have, s.Size); err == nil {
			err = rebuildInputs(ctx, f.o.Checker, f.o.Applier, have, s.Size, inputs)
		}
		if err != nil {
			return fmt.Errorf("quorum: fsm: catching up from %d to %d entries: %w", have, s.Size, err)
		}
	}
	f.mu.Lock()
	f.size = s.Size
	f.inputs = inputs
	f.failed = nil
	f.mu.Unlock()
	return nil
}

// Catchup brings a node's log from have to want entries after it has
// restored a Raft snapshot of want entries: a node that was wiped, or was
// down while the others compacted their Raft logs.
//
// # Design
//
// The entries come from any peer (the log's tiles over HTTP, or a stream);
// none of them is trusted for coming from a peer. An implementation must:
//
//  1. get the latest checkpoint that a majority of the policy's build nodes
//     have cosigned (witness.VerifyFinal against the policy), of size
//     cpSize >= want if one exists;
//  2. fetch entries [have, want), re-check each with the [Checker] (its
//     quorum against the policy, as Apply does), and append them;
//  3. once the log reaches cpSize, compare its root with the checkpoint's
//     (the log's own tree, e.g. tlog's Publish): a peer that served other
//     entries, or in another order, is caught here, and the node refuses
//     to rejoin rather than cosign a fork.
//
// Entries past the last cosigned checkpoint can only be checked by step 2;
// they are cosigned later, when this node (and the others) cosign the next
// checkpoint, each after a consistency check.
type Catchup interface {
	CatchUp(ctx context.Context, log Applier, have, want uint64) error
}

// EntrySource serves a peer's log entries [start, end), for [CheckedCatchup].
type EntrySource interface {
	Entries(ctx context.Context, start, end uint64) ([][]byte, error)
}

// CheckedCatchup is a [Catchup] that fetches the missing entries from a
// peer and re-checks each with the Checker before appending it (step 2 of
// [Catchup]'s design). The entries of a fetch are checked (at once, on
// GOMAXPROCS goroutines, unless one is a policy change) and then appended
// together, with one fsync when the log is a [BatchAppender]; an entry
// refused stops the catch-up with only the entries before it appended. Verify, if set, is called at the end with the new
// size: the daemon compares the log's root with the latest cosigned
// checkpoint there (step 3), which needs the log's tree and the policy's
// cosigners.
type CheckedCatchup struct {
	Source  EntrySource
	Checker Checker
	// Batch is how many entries to fetch at once; default 256.
	Batch  uint64
	Verify func(ctx context.Context, size uint64) error
}

// inputCatchup is a [Catchup] that keeps the FSM's input set: the FSM
// gives it the inputs of entries [0, have) and it adds those it appends.
type inputCatchup interface {
	CatchUpInputs(ctx context.Context, log Applier, have, want uint64, inputs map[string]uint64) error
}

// CatchUp implements [Catchup]. It first reads the input digests of the
// log's entries [0, have) back (the log must be able to: [EntryAt]), so
// that an entry for an input the log already holds is refused.
func (c *CheckedCatchup) CatchUp(ctx context.Context, log Applier, have, want uint64) error {
	inputs := make(map[string]uint64)
	if err := rebuildInputs(ctx, c.Checker, log, 0, have, inputs); err != nil {
		return err
	}
	return c.CatchUpInputs(ctx, log, have, want, inputs)
}

// CatchUpInputs is CatchUp with the input digests of the log's entries
// [0, have) known: a peer's entry for an input in inputs, or for one it
// served before, is refused (wrapping [ErrDuplicateInput], naming the
// entry) before it reaches the log. The inputs of the appended entries
// are added to inputs.
func (c *CheckedCatchup) CatchUpInputs(ctx context.Context, log Applier, have, want uint64, inputs map[string]uint64) error {
	batch := c.Batch
	if batch == 0 {
		batch = 256
	}
	for start := have; start < want; {
		end := min(start+batch, want)
		entries, err := c.Source.Entries(ctx, start, end)
		if err != nil {
			return fmt.Errorf("fetching entries %d to %d: %w", start, end, err)
		}
		if uint64(len(entries)) != end-start {
			return fmt.Errorf("asked for entries %d to %d, got %d", start, end, len(entries))
		}
		if err := c.appendChecked(ctx, log, start, entries, inputs); err != nil {
			return err
		}
		start = end
	}
	if c.Verify != nil {
		return c.Verify(ctx, want)
	}
	return nil
}

// appendChecked checks the peer's entries, which go at start, start+1,
// ... in the log, then appends those before the first refused one (all,
// if none is) and returns the refusal. With a [StagedChecker], a policy
// change ends a run of entries: it is pre-checked, appended with the
// entries before it, and applied only then, so that the checker never
// holds a change the log does not (an append that fails leaves the chain
// as it was); the entries after it are checked by its policy next.
func (c *CheckedCatchup) appendChecked(ctx context.Context, log Applier, start uint64, entries [][]byte, inputs map[string]uint64) error {
	for len(entries) > 0 {
		checks, staged := checkEntries(c.Checker, start, entries)
		good, refused := len(checks), error(nil)
		for i, ch := range checks {
			idx := start + uint64(i)
			if ch.err != nil {
				good, refused = i, fmt.Errorf("entry %d from the peer: %w: log entry %d: %w", idx, ErrRefused, idx, ch.err)
				break
			}
			if prev, dup := inputs[ch.input]; dup {
				good, refused = i, fmt.Errorf("entry %d from the peer: %w: log entry %d is a second entry for %s (entry %d)", idx, ErrDuplicateInput, idx, ch.input, prev)
				break
			}
			inputs[ch.input] = idx
		}
		if good > 0 {
			parsed := make([]*publish.Entry, good)
			for i, ch := range checks[:good] {
				parsed[i] = ch.parsed
			}
			if err := appendAt(ctx, log, start, entries[:good], parsed); err != nil {
				for _, ch := range checks[:good] {
					delete(inputs, ch.input)
				}
				return err
			}
		}
		if refused != nil {
			return refused
		}
		if staged {
			// The change is the last of the run, and in the log now.
			idx := start + uint64(good) - 1
			if _, err := c.Checker.(IndexedChecker).CheckEntryAt(idx, entries[good-1]); err != nil {
				return fmt.Errorf("entry %d from the peer: applying the policy change it is, appended after its check: %w", idx, err)
			}
		}
		start += uint64(good)
		entries = entries[good:]
	}
	return nil
}

// checkEntries runs the Checker on entries, which go at start, start+1,
// ...: at once on up to GOMAXPROCS goroutines, or in order when one of
// them is a policy change (the entries after it are judged by its
// policy, which the Checker learns by checking it). With a
// [StagedChecker] the check stops at the first policy change, which it
// pre-checks without applying: staged is then true and the change is the
// last of the checks returned.
func checkEntries(c Checker, start uint64, entries [][]byte) (out []check, staged bool) {
	out = make([]check, len(entries))
	inOrder := len(entries) < 2
	sc, canStage := c.(StagedChecker)
	if _, ok := c.(IndexedChecker); ok && (!inOrder || canStage) {
		for _, e := range entries {
			// LogEntryKind: see FSM.checkAll.
			if k, err := publish.LogEntryKind(e); err == nil && k == publish.KindPolicy {
				inOrder = true
				break
			}
		}
	}
	if inOrder {
		for i, e := range entries {
			if k, err := publish.LogEntryKind(e); canStage && err == nil && k == publish.KindPolicy {
				in, err := sc.PreCheckEntryAt(start+uint64(i), e)
				out[i] = check{done: true, input: in, err: err}
				return out[:i+1], err == nil
			}
			in, parsed, err := checkParsedAt(c, start+uint64(i), e)
			out[i] = check{done: true, input: in, parsed: parsed, err: err}
			if err != nil {
				break // the entries after a refused one are not used
			}
		}
		return out, false
	}
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(entries)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				in, parsed, err := checkParsedAt(c, start+uint64(i), entries[i])
				out[i] = check{done: true, input: in, parsed: parsed, err: err}
			}
		}()
	}
	for i := range entries {
		next <- i
	}
	close(next)
	wg.Wait()
	return out, false
}

// appendAt appends entries to log, which must put the first at index
// start: in one batch if the log can (with the Checker's parses, parsed,
// if it takes them), else one by one.
func appendAt(ctx context.Context, log Applier, start uint64, entries [][]byte, parsed []*publish.Entry) error {
	if ba, ok := log.(BatchAppender); ok {
		var first uint64
		var err error
		if pa, ok := log.(ParsedBatchAppender); ok {
			first, err = pa.AppendParsedBatch(ctx, entries, parsed)
		} else {
			first, err = ba.AppendBatch(ctx, entries)
		}
		if err != nil {
			return fmt.Errorf("appending entries %d to %d: %w", start, start+uint64(len(entries))-1, err)
		}
		if first != start {
			return fmt.Errorf("the log put entries %d to %d at index %d", start, start+uint64(len(entries))-1, first)
		}
		return nil
	}
	for i, e := range entries {
		idx := start + uint64(i)
		got, err := log.Append(ctx, e)
		if err != nil {
			return fmt.Errorf("appending entry %d: %w", idx, err)
		}
		if got != idx {
			return fmt.Errorf("the log put entry %d at index %d", idx, got)
		}
	}
	return nil
}
