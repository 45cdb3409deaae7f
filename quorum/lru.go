package quorum

import (
	"container/list"
	"crypto/sha256"
	"sync"
)

// lru remembers values by a SHA-256 key within bounds: a count (max) and,
// when maxBytes > 0, the sum of the sizes the values were added with. The
// least recently used are forgotten first. It is safe for concurrent use;
// a nil *lru remembers nothing.
type lru[V any] struct {
	mu       sync.Mutex
	max      int
	maxBytes int // 0: no bound but the count
	bytes    int
	order    *list.List // of lruEntry[V], the most recent first
	at       map[[sha256.Size]byte]*list.Element
	hits     uint64
}

type lruEntry[V any] struct {
	key  [sha256.Size]byte
	v    V
	size int
}

func newLRU[V any](max, maxBytes int) *lru[V] {
	return &lru[V]{max: max, maxBytes: maxBytes, order: list.New(), at: make(map[[sha256.Size]byte]*list.Element)}
}

// get returns the value of k, counted as a hit, and makes it the most
// recent.
func (c *lru[V]) get(k [sha256.Size]byte) (V, bool) {
	var zero V
	if c == nil {
		return zero, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.at[k]
	if !ok {
		return zero, false
	}
	c.order.MoveToFront(e)
	c.hits++
	return e.Value.(lruEntry[V]).v, true
}

// touch makes k the most recent, if it is remembered, and says whether it
// is; it is not counted as a hit.
func (c *lru[V]) touch(k [sha256.Size]byte) bool {
	if c == nil {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.at[k]
	if ok {
		c.order.MoveToFront(e)
	}
	return ok
}

// add remembers v under k with its size, forgetting the least recently
// used past the bounds. A key remembered already is only made the most
// recent; a value larger than the whole byte bound is not remembered.
func (c *lru[V]) add(k [sha256.Size]byte, v V, size int) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.at[k]; ok {
		c.order.MoveToFront(e)
		return
	}
	if c.maxBytes > 0 && size > c.maxBytes {
		return
	}
	c.at[k] = c.order.PushFront(lruEntry[V]{k, v, size})
	c.bytes += size
	for c.order.Len() > c.max || c.maxBytes > 0 && c.bytes > c.maxBytes {
		last := c.order.Back()
		le := last.Value.(lruEntry[V])
		delete(c.at, le.key)
		c.bytes -= le.size
		c.order.Remove(last)
	}
}

// stats returns how many values are remembered, their sizes' sum and the
// hits so far.
func (c *lru[V]) stats() (n, bytes int, hits uint64) {
	if c == nil {
		return 0, 0, 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len(), c.bytes, c.hits
}
