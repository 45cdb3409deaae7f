package quorum

import (
	"container/list"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"sync"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish"
	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
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
// check of the entry made of the votes finds it parsed.
type VerifiedEnvelopes struct {
	mu    sync.Mutex
	max   int
	order *list.List // of [sha256.Size]byte, the most recent first
	at    map[[sha256.Size]byte]*list.Element
	hits  uint64

	stMu     sync.Mutex
	stOrder  *list.List // of parsedEntry, the most recent first
	stAt     map[[sha256.Size]byte]*list.Element
	stHits   uint64
	stParsed uint64
}

type parsedEntry struct {
	key [sha256.Size]byte
	ps  *publish.ParsedStatement
}

// NewVerifiedEnvelopes makes a cache of at most max entries (default,
// for max <= 0: 4,096, about 0.5 MiB).
func NewVerifiedEnvelopes(max int) *VerifiedEnvelopes {
	if max <= 0 {
		max = 4096
	}
	return &VerifiedEnvelopes{max: max, order: list.New(), at: make(map[[sha256.Size]byte]*list.Element),
		stOrder: list.New(), stAt: make(map[[sha256.Size]byte]*list.Element)}
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
	c.stMu.Lock()
	if e, ok := c.stAt[k]; ok {
		c.stOrder.MoveToFront(e)
		c.stHits++
		ps := e.Value.(parsedEntry).ps
		c.stMu.Unlock()
		return ps, k, nil
	}
	c.stMu.Unlock()
	ps, err = publish.ParseStatement(payload)
	if err != nil {
		return nil, k, err
	}
	c.stMu.Lock()
	c.stParsed++
	c.stMu.Unlock()
	return ps, k, nil
}

// rememberStatement remembers ps as the statement of the payload whose
// key is k.
func (c *VerifiedEnvelopes) rememberStatement(k [sha256.Size]byte, ps *publish.ParsedStatement) {
	if c == nil || ps == nil {
		return
	}
	c.stMu.Lock()
	defer c.stMu.Unlock()
	if e, ok := c.stAt[k]; ok {
		c.stOrder.MoveToFront(e)
		return
	}
	c.stAt[k] = c.stOrder.PushFront(parsedEntry{k, ps})
	for c.stOrder.Len() > c.max {
		last := c.stOrder.Back()
		delete(c.stAt, last.Value.(parsedEntry).key)
		c.stOrder.Remove(last)
	}
}

// StatementHits returns how many statements were answered from memory,
// and how many were parsed.
func (c *VerifiedEnvelopes) StatementHits() (hits, parsed uint64) {
	c.stMu.Lock()
	defer c.stMu.Unlock()
	return c.stHits, c.stParsed
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
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits
}

func (c *VerifiedEnvelopes) has(k [sha256.Size]byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.at[k]
	if ok {
		c.order.MoveToFront(e)
		c.hits++
	}
	return ok
}

func (c *VerifiedEnvelopes) add(k [sha256.Size]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.at[k]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.at[k] = c.order.PushFront(k)
	for c.order.Len() > c.max {
		last := c.order.Back()
		delete(c.at, last.Value.([sha256.Size]byte))
		c.order.Remove(last)
	}
}
