package quorum

import (
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"sync/atomic"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish"
	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// VerifiedEnvelopes remembers, within a bound, which DSSE envelopes this
// process has seen verify against which key, so that an envelope checked
// once (by the votes topic's validator) is not checked again (by the FSM,
// in the entry the leader made of the votes): the bytes are the same, so
// the answer is. Only this process's own verifications go in; an entry
// from a lying leader holding an envelope not seen here is verified in
// full. The oldest are forgotten first (least recently used).
//
// An entry is keyed by the SHA-256 of the key's id and the envelope's
// payload type, payload and signatures (each field with its length), so
// an envelope that differs in any byte, or a different key, misses.
//
// It remembers the statements parsed from envelope payloads too
// ([VerifiedEnvelopes.Statement]), keyed by the SHA-256 of the payload:
// the votes topic's validator parses a vote's statement, and the FSM's
// check of the entry made of the votes finds it parsed. Those are bounded
// by count (max) and by their estimated heap (maxStatementBytes): a
// statement of many small JSON values takes about 40 times its size once
// parsed, so that one policy member's accepted votes, 4,096 of up to 1.9
// MiB of heap each, could otherwise hold gigabytes.
type VerifiedEnvelopes struct {
	verified *lru[struct{}] // the envelopes seen verify, by envelopeKey
	// statements are the parsed statements, by the SHA-256 of the
	// payload, each of the size statementHeap estimates.
	statements *lru[*publish.ParsedStatement]
	parsed     atomic.Uint64 // statements parsed, not answered from memory
}

// DefaultStatementBytes bounds the estimated heap of the parsed
// statements a [VerifiedEnvelopes] remembers: an honest vote's statement
// takes about 20-60 KiB parsed, so this holds the last few hundred votes'
// (the validator's parse is the FSM's, a few seconds later).
const DefaultStatementBytes = 64 << 20

// NewVerifiedEnvelopes makes a cache of at most max entries (default,
// for max <= 0: 4,096, about 0.5 MiB).
func NewVerifiedEnvelopes(max int) *VerifiedEnvelopes {
	if max <= 0 {
		max = 4096
	}
	return &VerifiedEnvelopes{verified: newLRU[struct{}](max, 0), statements: newLRU[*publish.ParsedStatement](max, DefaultStatementBytes)}
}

// Statement is publish.ParseStatement(payload), answered from memory for
// a payload parsed before: parsing is a function of the bytes alone, and
// the key is the SHA-256 of all of them. Only statements that parse are
// remembered (at most as many as envelopes); the answer is shared, read
// only. On a nil c it parses. Call it only for payloads whose envelope a
// known key signed: the memory is a few MiB a statement at worst.
func (c *VerifiedEnvelopes) Statement(payload []byte) (*publish.ParsedStatement, error) {
	ps, k, err := c.lookupStatement(payload)
	if err != nil || c == nil {
		return ps, err
	}
	c.rememberStatement(k, ps)
	return ps, nil
}

// lookupStatement is Statement without remembering what it parsed: the
// votes validator parses a vote before it knows who signed it (a stranger
// may have); it remembers the statement (rememberStatement) once the
// vote is accepted. k is the payload's key.
func (c *VerifiedEnvelopes) lookupStatement(payload []byte) (ps *publish.ParsedStatement, k [sha256.Size]byte, err error) {
	if c == nil {
		ps, err = publish.ParseStatement(payload)
		return ps, k, err
	}
	k = sha256.Sum256(payload)
	if ps, ok := c.statements.get(k); ok {
		return ps, k, nil
	}
	ps, err = publish.ParseStatement(payload)
	if err != nil {
		return nil, k, err
	}
	c.parsed.Add(1)
	return ps, k, nil
}

// rememberStatement remembers ps as the statement of the payload whose
// key is k.
func (c *VerifiedEnvelopes) rememberStatement(k [sha256.Size]byte, ps *publish.ParsedStatement) {
	if c == nil || ps == nil {
		return
	}
	if c.statements.touch(k) {
		return // remembered: its heap need not be estimated again
	}
	c.statements.add(k, ps, statementHeap(ps))
}

// statementBytes returns how many statements are remembered and their
// estimated heap.
func (c *VerifiedEnvelopes) statementBytes() (n, bytes int) {
	n, bytes, _ = c.statements.stats()
	return n, bytes
}

// statementHeap estimates, from above, the heap a parsed statement holds:
// every message, map entry, list element, string and byte slice of its
// protobuf tree (the in-toto statement, structpb values for the
// predicate) at a generous size each, and its canonical spec.
// TestStatementHeapBoundsTheHeap measures it against the runtime's count.
func statementHeap(ps *publish.ParsedStatement) int {
	n := 256 + len(ps.Spec) + 64
	if ps.Statement != nil {
		n += messageHeap(ps.Statement.ProtoReflect())
	}
	return n
}

// Sizes statementHeap counts: a message (its struct and the wrapper of a
// oneof), a map entry (key and value slots, the map's buckets at worst
// load), a list element and a string or byte slice's header.
const (
	heapMessage  = 160
	heapMapEntry = 96
	heapListElem = 16
	heapString   = 32
)

func messageHeap(m protoreflect.Message) int {
	n := heapMessage
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		switch {
		case fd.IsMap():
			mv := v.Map()
			n += 64
			mv.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
				n += heapMapEntry + valueHeap(fd.MapKey(), k.Value()) + valueHeap(fd.MapValue(), v)
				return true
			})
		case fd.IsList():
			lv := v.List()
			n += 32
			for i := range lv.Len() {
				n += heapListElem + valueHeap(fd, lv.Get(i))
			}
		default:
			n += valueHeap(fd, v)
		}
		return true
	})
	return n
}

func valueHeap(fd protoreflect.FieldDescriptor, v protoreflect.Value) int {
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		return messageHeap(v.Message())
	case protoreflect.StringKind:
		return heapString + len(v.String())
	case protoreflect.BytesKind:
		return heapString + len(v.Bytes())
	}
	return 8
}

// StatementHits returns how many statements were answered from memory,
// and how many were parsed.
func (c *VerifiedEnvelopes) StatementHits() (hits, parsed uint64) {
	_, _, hits = c.statements.stats()
	return hits, c.parsed.Load()
}

func envelopeKey(env *dssepb.Envelope, key *attest.PublicKey) [sha256.Size]byte {
	h := sha256.New()
	field := func(h hash.Hash, b []byte) {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	field(h, []byte(key.ID))
	field(h, []byte(env.GetPayloadType()))
	field(h, env.GetPayload())
	for _, s := range env.GetSignatures() {
		field(h, []byte(s.GetKeyid()))
		field(h, s.GetSig())
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out
}

// Verify is attest.VerifyEnvelope(env, keys) that remembers the keys found
// and answers from memory for an envelope it has seen verify. With one
// signature (as every envelope a node makes), a key remembered is the
// answer: a signature counts for one key. Otherwise every key is checked.
func (c *VerifiedEnvelopes) Verify(env *dssepb.Envelope, keys []*attest.PublicKey) []*attest.PublicKey {
	if c == nil {
		return attest.VerifyEnvelope(env, keys)
	}
	if len(env.GetSignatures()) == 1 {
		for _, k := range keys {
			if c.has(envelopeKey(env, k)) {
				return []*attest.PublicKey{k}
			}
		}
	}
	signers := attest.VerifyEnvelope(env, keys)
	for _, k := range signers {
		c.add(envelopeKey(env, k))
	}
	return signers
}

// Hits returns how many envelopes were answered from memory.
func (c *VerifiedEnvelopes) Hits() uint64 {
	_, _, hits := c.verified.stats()
	return hits
}

func (c *VerifiedEnvelopes) has(k [sha256.Size]byte) bool {
	_, ok := c.verified.get(k)
	return ok
}

func (c *VerifiedEnvelopes) add(k [sha256.Size]byte) { c.verified.add(k, struct{}{}, 0) }
