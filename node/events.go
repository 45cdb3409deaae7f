package node

import (
	"slices"
	"sync"
	"time"
)

// Event types of a publish round, as GET /v1/publish/<input>/events
// streams them (newline-delimited JSON).
const (
	EventVote      = "vote"      // a build node voted: Node, Subjects or Error
	EventVerdict   = "verdict"   // no quorum by the deadline: Verdict
	EventPublished = "published" // the entry is in this node's log: Index
	EventFinal     = "final"     // a final checkpoint covers it: Index, Size
)

// Event is one step of a publish round.
type Event struct {
	Type     string    `json:"type"`
	Time     time.Time `json:"time"`
	Input    string    `json:"input"`
	Node     string    `json:"node,omitempty"`
	Subjects []string  `json:"subjects,omitempty"`
	Error    string    `json:"error,omitempty"`
	Index    *uint64   `json:"index,omitempty"`
	Size     *uint64   `json:"size,omitempty"`
	Verdict  *Verdict  `json:"verdict,omitempty"`
}

// Bounds of the events kept for late subscribers.
const (
	maxEventInputs    = 1000
	maxEventsPerInput = 200
)

// events keeps each round's events and fans them out to subscribers.
type events struct {
	mu    sync.Mutex
	hist  map[string][]Event
	order []string // inputs, oldest first
	subs  map[string]map[chan Event]struct{}
}

func newEvents() *events {
	return &events{hist: map[string][]Event{}, subs: map[string]map[chan Event]struct{}{}}
}

func (e *events) emit(input string, ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.hist[input]; !ok {
		e.order = append(e.order, input)
		if len(e.order) > maxEventInputs {
			delete(e.hist, e.order[0])
			e.order = e.order[1:]
		}
	}
	if h := e.hist[input]; len(h) < maxEventsPerInput {
		e.hist[input] = append(h, ev)
	}
	for ch := range e.subs[input] {
		select {
		case ch <- ev:
		default: // a subscriber that does not read loses events, never blocks the node
		}
	}
}

// reset forgets the events kept for input (a new request for it);
// subscribers stay.
func (e *events) reset(input string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.hist[input]; ok {
		delete(e.hist, input)
		e.order = slices.DeleteFunc(e.order, func(s string) bool { return s == input })
	}
}

// subscribe returns the events so far and a channel of the next ones;
// cancel ends the subscription.
func (e *events) subscribe(input string) (past []Event, ch chan Event, cancel func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	ch = make(chan Event, 256)
	if e.subs[input] == nil {
		e.subs[input] = map[chan Event]struct{}{}
	}
	e.subs[input][ch] = struct{}{}
	past = append([]Event(nil), e.hist[input]...)
	return past, ch, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		delete(e.subs[input], ch)
		if len(e.subs[input]) == 0 {
			delete(e.subs, input)
		}
	}
}
