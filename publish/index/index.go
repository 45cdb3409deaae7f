// Package index is an in-memory index of the entries of the transparency
// log, rebuilt from the log when a node starts and kept up to date as the
// node follows the log.
//
// An [Index] answers the questions a node serving artifacts asks: which
// entries publish this artifact digest ([Index.ByArtifact]), which entry
// published this build spec ([Index.ByInputDigest]), what was published
// under this name ([Index.ByCoordinate]), and what is at this log index
// ([Index.Get]). It is a go-memdb database: reads never block and see a
// consistent snapshot; writes are serialized.
//
// A [Record] keeps an entry's log index, input digest, ecosystem,
// coordinate and subjects, but not its spec or DSSE envelopes, which are
// most of an entry's size: a node that needs them reads the entry from the
// log by its index.
//
// Entries go in through [Index.Add] as the log grows, or [Index.AddBatch]
// in one write transaction when rebuilding. Adding the same entry at the
// same index again does nothing; a different entry at an index already
// taken is an error wrapping [ErrConflict].
package index

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"slices"
	"strings"
	"sync/atomic"

	memdb "github.com/hashicorp/go-memdb"
	"github.com/pyrsia/pyrsia-build/publish"
)

// ErrConflict is returned (wrapped) when a log index already holds a
// different entry; use errors.Is. It means the log this index follows was
// rewritten, or two logs were mixed up.
var ErrConflict = errors.New("index: log index already holds a different entry")

// Record is what the index keeps of one log entry. The spec and the DSSE
// envelopes are left out to keep the index small; read the entry from the
// log by LogIndex when they are needed.
type Record struct {
	// LogIndex is the entry's position in the log, from 0.
	LogIndex uint64
	// InputDigest is the entry's input digest, "sha256:<hex>".
	InputDigest string
	// Ecosystem is publish.EcosystemOCI or publish.EcosystemMaven.
	Ecosystem string
	// Coordinate is the entry's coordinate in its ecosystem.
	Coordinate string
	// Subjects are the artifacts the entry publishes, in the entry's order.
	Subjects []publish.Subject
}

// Item is one entry for [Index.AddBatch] with its log index.
type Item struct {
	LogIndex uint64
	Entry    *publish.Entry
}

// Index is an in-memory index of log entries. It is safe for concurrent use.
type Index struct {
	db  *memdb.MemDB
	len atomic.Int64
}

// row is what the memdb table holds: a record, and a fingerprint of the
// whole entry to tell a repeated Add from a conflicting one.
type row struct {
	rec         Record
	fingerprint [sha256.Size]byte
}

const table = "entries"

// Index names. A non-unique memdb index appends the primary key, the
// big-endian log index, to each key, so that entries under one key come out
// in log order.
const (
	byID         = "id"
	byInput      = "input"
	byArtifact   = "artifact"
	byCoordinate = "coordinate"
)

func schema() *memdb.DBSchema {
	return &memdb.DBSchema{Tables: map[string]*memdb.TableSchema{
		table: {
			Name: table,
			Indexes: map[string]*memdb.IndexSchema{
				byID:         {Name: byID, Unique: true, Indexer: logIndexIndexer{}},
				byInput:      {Name: byInput, Indexer: inputIndexer{}},
				byArtifact:   {Name: byArtifact, Indexer: artifactIndexer{}},
				byCoordinate: {Name: byCoordinate, Indexer: coordinateIndexer{}},
			},
		},
	}}
}

// New returns an empty index.
func New() (*Index, error) {
	db, err := memdb.NewMemDB(schema())
	if err != nil {
		return nil, fmt.Errorf("index: creating database: %w", err)
	}
	return &Index{db: db}, nil
}

// Add indexes e at logIndex. Adding the same entry at the same index again
// does nothing. Entries are expected to come from publish.ParseEntry; Add
// checks the digests and names its keys are made of, and refuses an entry
// whose ecosystem and coordinate are not its spec's (errors.Is
// publish.ErrLabelMismatch), whoever made it.
func (x *Index) Add(logIndex uint64, e *publish.Entry) error {
	return x.AddBatch([]Item{{LogIndex: logIndex, Entry: e}})
}

// AddBatch indexes items in one write transaction: all of them or, on an
// error, none. It is the fast way to rebuild the index from the log.
func (x *Index) AddBatch(items []Item) error {
	rows := make([]*row, len(items))
	for i, it := range items {
		r, err := newRow(it.LogIndex, it.Entry)
		if err != nil {
			return err
		}
		rows[i] = r
	}
	return x.insert(rows)
}

// CopyFrom adds to x the records src holds at the log indexes [start,
// end), in one write transaction, as src holds them: without the entries,
// parsed or checked again (src checked them when they were added). It
// returns the log indexes of the range for which src holds no record, in
// order. As with AddBatch, a record x holds already is left as it is, and
// a different one at an index x holds is an error wrapping [ErrConflict]
// (then nothing is added). It is how a second index of the same log (one
// that follows another rule, such as final checkpoints) is filled from
// the first.
func (x *Index) CopyFrom(src *Index, start, end uint64) (missing []uint64, err error) {
	var rows []*row
	txn := src.db.Txn(false)
	for i := start; i < end; i++ {
		obj, err := txn.First(table, byID, i)
		if err != nil {
			return nil, fmt.Errorf("index: looking up log index %d: %w", i, err)
		}
		if obj == nil {
			missing = append(missing, i)
			continue
		}
		rows = append(rows, obj.(*row))
	}
	if err := x.insert(rows); err != nil {
		return nil, err
	}
	return missing, nil
}

// insert adds rows in one write transaction. Rows are never changed once
// made, so two indexes may hold the same one.
func (x *Index) insert(rows []*row) error {
	txn := x.db.Txn(true)
	defer txn.Abort()
	added := 0
	for _, r := range rows {
		old, err := txn.First(table, byID, r.rec.LogIndex)
		if err != nil {
			return fmt.Errorf("index: looking up log index %d: %w", r.rec.LogIndex, err)
		}
		if old != nil {
			if old.(*row).fingerprint != r.fingerprint {
				o := old.(*row).rec
				return fmt.Errorf("%w: log index %d holds %s %s (input %s), not %s %s (input %s)", ErrConflict,
					r.rec.LogIndex, o.Ecosystem, o.Coordinate, o.InputDigest, r.rec.Ecosystem, r.rec.Coordinate, r.rec.InputDigest)
			}
			continue
		}
		if err := txn.Insert(table, r); err != nil {
			return fmt.Errorf("index: adding log index %d: %w", r.rec.LogIndex, err)
		}
		added++
	}
	txn.Commit()
	x.len.Add(int64(added))
	return nil
}

func newRow(logIndex uint64, e *publish.Entry) (*row, error) {
	if e == nil {
		return nil, fmt.Errorf("index: log index %d: nil entry", logIndex)
	}
	if _, ok := parseDigest(e.InputDigest); !ok {
		return nil, fmt.Errorf("index: log index %d: input digest %q is not sha256:<64 hex>", logIndex, e.InputDigest)
	}
	if e.Ecosystem == "" || e.Coordinate == "" || strings.ContainsRune(e.Ecosystem+e.Coordinate, 0) {
		return nil, fmt.Errorf("index: log index %d: ecosystem %q and coordinate %q must be non-empty, without NUL", logIndex, e.Ecosystem, e.Coordinate)
	}
	if len(e.Subjects) == 0 {
		return nil, fmt.Errorf("index: log index %d: entry has no subjects", logIndex)
	}
	// An entry is found by its input digest and its coordinate: both must
	// be its spec's, or the index would serve one build, or one artifact,
	// under another's name.
	if err := publish.CheckInputDigest(e); err != nil {
		return nil, fmt.Errorf("index: log index %d: not indexed: %w", logIndex, err)
	}
	if err := publish.CheckLabels(e); err != nil {
		return nil, fmt.Errorf("index: log index %d: not indexed: %w", logIndex, err)
	}
	for _, s := range e.Subjects {
		if _, ok := parseDigest(s.Digest); !ok {
			return nil, fmt.Errorf("index: log index %d: subject %q: digest %q is not sha256:<64 hex>", logIndex, s.Name, s.Digest)
		}
	}
	return &row{
		rec: Record{
			LogIndex:    logIndex,
			InputDigest: e.InputDigest,
			Ecosystem:   e.Ecosystem,
			Coordinate:  e.Coordinate,
			Subjects:    slices.Clone(e.Subjects),
		},
		fingerprint: fingerprint(e),
	}, nil
}

// fingerprint hashes everything in e, slices in a canonical order, so that
// two entries have the same fingerprint exactly when they have the same
// encoding.
func fingerprint(e *publish.Entry) [sha256.Size]byte {
	h := sha256.New()
	put := func(h hash.Hash, b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	put(h, []byte(e.InputDigest))
	put(h, []byte(e.Ecosystem))
	put(h, []byte(e.Coordinate))
	put(h, e.Spec)
	subjects := e.Subjects
	if !slices.IsSortedFunc(subjects, compareSubjects) {
		subjects = slices.SortedFunc(slices.Values(subjects), compareSubjects)
	}
	for _, s := range subjects {
		put(h, []byte(s.Name))
		put(h, []byte(s.Digest))
	}
	envs := make([][sha256.Size]byte, len(e.Envelopes))
	eh := sha256.New()
	for i, env := range e.Envelopes {
		eh.Reset()
		put(eh, []byte(env.GetPayloadType()))
		put(eh, env.GetPayload())
		sigs := make([][2][]byte, len(env.GetSignatures()))
		for j, s := range env.GetSignatures() {
			sigs[j] = [2][]byte{[]byte(s.GetKeyid()), s.GetSig()}
		}
		slices.SortFunc(sigs, func(a, b [2][]byte) int {
			return cmp.Or(bytes.Compare(a[0], b[0]), bytes.Compare(a[1], b[1]))
		})
		for _, s := range sigs {
			put(eh, s[0])
			put(eh, s[1])
		}
		eh.Sum(envs[i][:0])
	}
	slices.SortFunc(envs, func(a, b [sha256.Size]byte) int { return bytes.Compare(a[:], b[:]) })
	for _, d := range envs {
		h.Write(d[:])
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

func compareSubjects(a, b publish.Subject) int {
	return cmp.Or(strings.Compare(a.Name, b.Name), strings.Compare(a.Digest, b.Digest))
}

// Len returns the number of entries in the index.
func (x *Index) Len() int { return int(x.len.Load()) }

// Get returns the record at logIndex.
func (x *Index) Get(logIndex uint64) (Record, bool) {
	obj, err := x.db.Txn(false).First(table, byID, logIndex)
	if err != nil || obj == nil {
		return Record{}, false
	}
	return obj.(*row).record(), true
}

// ByArtifact returns the records of the entries that publish the artifact
// with this digest, in ascending log index order: an artifact may be
// published by several entries (the same image under two tags, say). The
// digest is 64 hex digits, with or without "sha256:". An invalid digest
// finds nothing.
func (x *Index) ByArtifact(sha256hex string) []Record {
	d, ok := parseDigest(sha256hex)
	if !ok {
		return nil
	}
	return x.list(byArtifact, d)
}

// ByInputDigest returns the latest record (the highest log index) of an
// entry with input digest d, "sha256:<hex>" or bare hex. The same spec is
// normally published once, but a rebuild may publish it again.
func (x *Index) ByInputDigest(d string) (Record, bool) {
	key, ok := parseDigest(d)
	if !ok {
		return Record{}, false
	}
	obj, err := x.db.Txn(false).Last(table, byInput, key)
	if err != nil || obj == nil {
		return Record{}, false
	}
	return obj.(*row).record(), true
}

// ByCoordinate returns the records of the entries published under a
// coordinate in an ecosystem, in ascending log index order.
func (x *Index) ByCoordinate(ecosystem, coordinate string) []Record {
	return x.list(byCoordinate, coordinateKey(ecosystem, coordinate))
}

// ByCoordinatePrefix returns the records of the entries in an ecosystem
// whose coordinate starts with prefix, in ascending log index order: the
// tags of an OCI name (prefix "name:"), the versions of a Maven artifact
// (prefix "group:artifact:"). An empty prefix finds every entry of the
// ecosystem; an ecosystem or prefix with a NUL finds nothing.
func (x *Index) ByCoordinatePrefix(ecosystem, prefix string) []Record {
	if strings.ContainsRune(ecosystem+prefix, 0) {
		return nil
	}
	key := make([]byte, 0, len(ecosystem)+1+len(prefix))
	key = append(key, ecosystem...)
	key = append(key, 0)
	key = append(key, prefix...)
	recs := x.list(byCoordinate+"_prefix", key)
	// The index is in coordinate order, then log order within one
	// coordinate.
	slices.SortFunc(recs, func(a, b Record) int { return cmp.Compare(a.LogIndex, b.LogIndex) })
	return recs
}

func (x *Index) list(index string, key []byte) []Record {
	it, err := x.db.Txn(false).Get(table, index, key)
	if err != nil {
		return nil
	}
	var recs []Record
	for obj := it.Next(); obj != nil; obj = it.Next() {
		recs = append(recs, obj.(*row).record())
	}
	return recs
}

// record returns a copy of the row's record that the caller may modify.
func (r *row) record() Record {
	rec := r.rec
	rec.Subjects = slices.Clone(rec.Subjects)
	return rec
}

// parseDigest returns the 32 bytes of "sha256:<64 hex>" or "<64 hex>".
func parseDigest(s string) ([]byte, bool) {
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) != 2*sha256.Size {
		return nil, false
	}
	b, err := hex.DecodeString(s)
	return b, err == nil
}

func coordinateKey(ecosystem, coordinate string) []byte {
	k := make([]byte, 0, len(ecosystem)+len(coordinate)+2)
	k = append(k, ecosystem...)
	k = append(k, 0)
	k = append(k, coordinate...)
	return append(k, 0)
}

// The indexers compute keys from a *row directly, without reflection.
// FromArgs takes the key as built by the lookups above, or a uint64 log
// index for logIndexIndexer.

type logIndexIndexer struct{}

func (logIndexIndexer) FromObject(obj any) (bool, []byte, error) {
	return true, binary.BigEndian.AppendUint64(nil, obj.(*row).rec.LogIndex), nil
}

func (logIndexIndexer) FromArgs(args ...any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("want one log index, got %d arguments", len(args))
	}
	i, ok := args[0].(uint64)
	if !ok {
		return nil, fmt.Errorf("log index is %T, want uint64", args[0])
	}
	return binary.BigEndian.AppendUint64(nil, i), nil
}

// bytesArg is FromArgs for the indexes whose lookups pass a ready key.
func bytesArg(args []any) ([]byte, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("want one key, got %d arguments", len(args))
	}
	b, ok := args[0].([]byte)
	if !ok {
		return nil, fmt.Errorf("key is %T, want []byte", args[0])
	}
	return b, nil
}

type inputIndexer struct{}

func (inputIndexer) FromObject(obj any) (bool, []byte, error) {
	d, ok := parseDigest(obj.(*row).rec.InputDigest)
	return ok, d, nil
}

func (inputIndexer) FromArgs(args ...any) ([]byte, error) { return bytesArg(args) }

type artifactIndexer struct{}

func (artifactIndexer) FromObject(obj any) (bool, [][]byte, error) {
	subjects := obj.(*row).rec.Subjects
	keys := make([][]byte, 0, len(subjects))
	for _, s := range subjects {
		d, ok := parseDigest(s.Digest)
		// One key per digest: an artifact listed under two names is
		// still one hit for ByArtifact.
		if ok && !slices.ContainsFunc(keys, func(k []byte) bool { return bytes.Equal(k, d) }) {
			keys = append(keys, d)
		}
	}
	return len(keys) > 0, keys, nil
}

func (artifactIndexer) FromArgs(args ...any) ([]byte, error) { return bytesArg(args) }

type coordinateIndexer struct{}

func (coordinateIndexer) FromObject(obj any) (bool, []byte, error) {
	r := obj.(*row).rec
	return true, coordinateKey(r.Ecosystem, r.Coordinate), nil
}

func (coordinateIndexer) FromArgs(args ...any) ([]byte, error) { return bytesArg(args) }

// PrefixFromArgs makes the index answer "coordinate_prefix" lookups: the
// key is the ecosystem, a NUL, and the start of a coordinate.
func (coordinateIndexer) PrefixFromArgs(args ...any) ([]byte, error) { return bytesArg(args) }
