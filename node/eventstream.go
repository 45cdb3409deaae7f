package node

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"time"
)

// eventKeepalive is how often an idle HTTP event stream gets an empty
// line, so that proxies and clients do not take it for dead.
const eventKeepalive = 15 * time.Second

// roundEnds reports whether ev is the last event of its round.
func roundEnds(ev Event) bool { return ev.Type == EventFinal || ev.Type == EventVerdict }

// eventStream is one reader's view of a round's events.
type eventStream struct {
	past []Event      // the events kept so far
	ch   <-chan Event // the next ones
	// ended gives the last event of a round that ended before the
	// subscription (a restart, or an input published long ago).
	ended func() (Event, bool)
	// send writes one event; false: the reader is gone.
	send func(Event) bool
	// keepalive is called on every tick (a nil tick: never); false: the
	// reader is gone.
	tick      <-chan time.Time
	keepalive func() bool
}

// streamEvents sends a round's events until the round ends, the reader
// is gone, ctx is done or stop is closed: first s.past, then s.ended's
// event if it has one, else what arrives on s.ch.
func streamEvents(ctx context.Context, stop <-chan struct{}, s eventStream) {
	send, past, ch, tick := s.send, s.past, s.ch, s.tick
	for _, ev := range past {
		if !send(ev) || roundEnds(ev) {
			return
		}
	}
	if ev, ok := s.ended(); ok {
		send(ev)
		return
	}
	for {
		select {
		case ev := <-ch:
			if !send(ev) || roundEnds(ev) {
				return
			}
		case <-tick:
			if !s.keepalive() {
				return
			}
		case <-ctx.Done():
			return
		case <-stop:
			return
		}
	}
}

// serveEventStream is GET /v1/publish/<input>/events on either kind of
// node: the round's events as newline-delimited JSON (see streamEvents).
func serveEventStream(w http.ResponseWriter, r *http.Request, stop <-chan struct{}, evs *events, ended func(input string) (Event, bool)) {
	input := r.PathValue("input")
	if _, err := inputHex(input); err != nil {
		httpErr(w, http.StatusBadRequest, err)
		return
	}
	past, ch, cancel := evs.subscribe(input)
	defer cancel()
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	// The server's write timeout is for ordinary answers; a stream lives
	// as long as its round, each write given its own minute.
	flushed := func(err error) bool {
		if err != nil {
			return false
		}
		err = rc.Flush()
		return err == nil || errors.Is(err, http.ErrNotSupported)
	}
	send := func(ev Event) bool {
		rc.SetWriteDeadline(time.Now().Add(time.Minute))
		return flushed(enc.Encode(ev))
	}
	keepalive := func() bool {
		rc.SetWriteDeadline(time.Now().Add(time.Minute))
		_, err := io.WriteString(w, "\n")
		return flushed(err)
	}
	t := time.NewTicker(eventKeepalive)
	defer t.Stop()
	streamEvents(r.Context(), stop, eventStream{
		past: past, ch: ch, send: send, tick: t.C, keepalive: keepalive,
		ended: func() (Event, bool) { return ended(input) },
	})
}
