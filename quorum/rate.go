package quorum

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// RateOptions configure a [Scheduler].
type RateOptions struct {
	// Rate is how many build requests per second one requester is served
	// at, once its burst is spent. Default 2.
	Rate rate.Limit
	// Burst is how many requests a requester may send at once. Default 20.
	Burst int
	// MaxPending bounds a requester's requests waiting for their turn;
	// beyond it requests are dropped and counted. Default 1000.
	MaxPending int
	// MaxRequesters bounds the requesters tracked; when full, the idle
	// ones (no pending request, bucket full again) are forgotten first,
	// and if none is idle a new requester's request is dropped. Default
	// 10,000.
	MaxRequesters int
}

// Scheduler serves validated build requests in the order of the
// requesters' token buckets: a requester within its rate is served at
// once; one over its rate is slowed (its requests wait for tokens, in
// order), not served first and not allowed to hold up the others.
// Requests come in through [Scheduler.Submit] and go out on
// [Scheduler.C].
type Scheduler struct {
	ctx     context.Context
	o       RateOptions
	out     chan Received[*BuildRequest]
	dropped atomic.Uint64

	mu   sync.Mutex
	reqs map[string]*requester
}

type requester struct {
	lim     *rate.Limiter
	pending []Received[*BuildRequest]
	running bool
}

// NewScheduler makes a scheduler; its goroutines stop when ctx is done.
func NewScheduler(ctx context.Context, o RateOptions) *Scheduler {
	if o.Rate <= 0 {
		o.Rate = 2
	}
	if o.Burst <= 0 {
		o.Burst = 20
	}
	if o.MaxPending <= 0 {
		o.MaxPending = 1000
	}
	if o.MaxRequesters <= 0 {
		o.MaxRequesters = 10_000
	}
	return &Scheduler{ctx: ctx, o: o, out: make(chan Received[*BuildRequest], 64), reqs: map[string]*requester{}}
}

// C delivers the requests to serve.
func (s *Scheduler) C() <-chan Received[*BuildRequest] { return s.out }

// Dropped returns how many requests were dropped for a full queue (for
// /status, next to the gossip drops).
func (s *Scheduler) Dropped() uint64 { return s.dropped.Load() }

// Submit queues a request under its requester's key id. It reports false
// when the request was dropped.
func (s *Scheduler) Submit(r Received[*BuildRequest]) bool {
	key := r.Msg.Requester
	s.mu.Lock()
	q, ok := s.reqs[key]
	if !ok {
		if len(s.reqs) >= s.o.MaxRequesters {
			s.forgetIdle()
		}
		if len(s.reqs) >= s.o.MaxRequesters {
			s.mu.Unlock()
			s.dropped.Add(1)
			return false
		}
		q = &requester{lim: rate.NewLimiter(s.o.Rate, s.o.Burst)}
		s.reqs[key] = q
	}
	if len(q.pending) >= s.o.MaxPending {
		s.mu.Unlock()
		s.dropped.Add(1)
		return false
	}
	q.pending = append(q.pending, r)
	if !q.running {
		q.running = true
		go s.drain(q)
	}
	s.mu.Unlock()
	return true
}

// forgetIdle removes requesters with nothing pending and a full bucket:
// forgetting them changes nothing. Called with s.mu held.
func (s *Scheduler) forgetIdle() {
	now := time.Now()
	for k, q := range s.reqs {
		if !q.running && len(q.pending) == 0 && q.lim.TokensAt(now) >= float64(s.o.Burst) {
			delete(s.reqs, k)
		}
	}
}

// drain serves one requester's pending requests, each when its bucket
// allows.
func (s *Scheduler) drain(q *requester) {
	for {
		s.mu.Lock()
		if len(q.pending) == 0 {
			q.running = false
			s.mu.Unlock()
			return
		}
		r := q.pending[0]
		q.pending = q.pending[1:]
		s.mu.Unlock()
		if err := q.lim.Wait(s.ctx); err != nil {
			return
		}
		select {
		case s.out <- r:
		case <-s.ctx.Done():
			return
		}
	}
}
