package node

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"
)

// recorder collects what streamEvents sends; it fails after failAfter
// sends when failAfter > 0.
type recorder struct {
	got       []string
	failAfter int
}

func (r *recorder) send(ev Event) bool {
	r.got = append(r.got, ev.Type)
	return r.failAfter == 0 || len(r.got) < r.failAfter
}

func noEnd() (Event, bool) { return Event{}, false }

func TestStreamEventsStopsAtTheRoundsEnd(t *testing.T) {
	vote := Event{Type: EventVote}
	final := Event{Type: EventFinal}
	cases := []struct {
		name  string
		past  []Event
		next  []Event
		ended func() (Event, bool)
		fail  int
		want  []string
	}{
		{"final among the past", []Event{vote, final, vote}, []Event{vote}, noEnd, 0, []string{"vote", "final"}},
		{"verdict on the channel", []Event{vote}, []Event{vote, {Type: EventVerdict}, vote}, noEnd, 0, []string{"vote", "vote", "verdict"}},
		{"ended before", nil, []Event{vote}, func() (Event, bool) { return final, true }, 0, []string{"final"}},
		{"past first, then ended", []Event{vote}, []Event{vote}, func() (Event, bool) { return final, true }, 0, []string{"vote", "final"}},
		{"reader gone in the past", []Event{vote, vote, final}, nil, noEnd, 1, []string{"vote"}},
		{"reader gone on the channel", nil, []Event{vote, vote, final}, noEnd, 2, []string{"vote", "vote"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ch := make(chan Event, len(c.next))
			for _, ev := range c.next {
				ch <- ev
			}
			rec := &recorder{failAfter: c.fail}
			streamEvents(context.Background(), nil, eventStream{past: c.past, ch: ch, ended: c.ended, send: rec.send})
			if !slices.Equal(rec.got, c.want) {
				t.Fatalf("sent %v, want %v", rec.got, c.want)
			}
		})
	}
}

func TestStreamEventsKeepaliveAndEnds(t *testing.T) {
	// Keepalives on ticks until the reader is gone.
	tick := make(chan time.Time, 3)
	tick <- time.Time{}
	tick <- time.Time{}
	tick <- time.Time{}
	alive := 0
	rec := &recorder{}
	streamEvents(context.Background(), nil, eventStream{
		ch: make(chan Event), ended: noEnd, send: rec.send, tick: tick,
		keepalive: func() bool { alive++; return alive < 2 },
	})
	if alive != 2 || len(rec.got) != 0 {
		t.Fatalf("keepalives %d, events %v: want 2 keepalives, the second failing, and no events", alive, rec.got)
	}

	// A cancelled context and a closed stop channel end an idle stream.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	streamEvents(ctx, nil, eventStream{ch: make(chan Event), ended: noEnd, send: rec.send})
	stop := make(chan struct{})
	close(stop)
	streamEvents(context.Background(), stop, eventStream{ch: make(chan Event), ended: noEnd, send: rec.send})
	if len(rec.got) != 0 {
		t.Fatalf("an idle stream sent %v", rec.got)
	}
}

func TestServeEventStreamHTTP(t *testing.T) {
	input := "sha256:" + strings.Repeat("ab", 32)
	evs := newEvents()
	evs.emit(input, Event{Type: EventVote, Input: input, Node: "b1"})
	go func() { // the next event, once the handler subscribed
		for {
			evs.mu.Lock()
			n := len(evs.subs[input])
			evs.mu.Unlock()
			if n > 0 {
				evs.emit(input, Event{Type: EventVerdict, Input: input})
				return
			}
			runtime.Gosched()
		}
	}()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /e/{input}", func(w http.ResponseWriter, r *http.Request) {
		serveEventStream(w, r, nil, evs, func(string) (Event, bool) { return Event{}, false })
	})
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "/e/"+input, nil))
	if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/x-ndjson" {
		t.Fatalf("status %d, Content-Type %q", w.Code, w.Header().Get("Content-Type"))
	}
	var types []string
	for line := range strings.Lines(w.Body.String()) {
		var ev Event
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		types = append(types, ev.Type)
	}
	if !slices.Equal(types, []string{EventVote, EventVerdict}) {
		t.Fatalf("streamed %v", types)
	}

	// Published before: its final event at once, from ended.
	mux = http.NewServeMux()
	mux.HandleFunc("GET /e/{input}", func(w http.ResponseWriter, r *http.Request) {
		serveEventStream(w, r, nil, newEvents(), func(in string) (Event, bool) {
			return Event{Type: EventFinal, Input: in}, true
		})
	})
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "/e/"+input, nil))
	if !strings.Contains(w.Body.String(), `"type":"final"`) || strings.Count(w.Body.String(), "\n") != 1 {
		t.Fatalf("published input streamed %q", w.Body.String())
	}

	// A bad input digest: 400 naming it.
	w = httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "/e/sha256:XYZ", nil))
	if w.Code != http.StatusBadRequest || !strings.Contains(w.Body.String(), "sha256:XYZ") {
		t.Fatalf("bad input: %d %q", w.Code, w.Body.String())
	}
}
