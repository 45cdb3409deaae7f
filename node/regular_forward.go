package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/builder"
	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/pyrsia/pyrsia-build/quorum"
)

// RequestProtocol passes a signed build request from a regular node on to
// a build node, which gossips it to the network and sends the round's
// events back. The stream carries JSON lines: the request
// ([quorum.BuildRequest] as on the requests topic, at most
// [quorum.MaxRequestSize] bytes) and a newline; then the build node's
// answer, {"inputDigest": ...} or {"error": TEXT}, and, after an
// inputDigest, the round's [Event]s (at most 1 MiB each) until "final" or
// "verdict". The build node judges the request as it judges gossip: the
// network's policy digest, a requester the policy admits, the
// requester's signature. The regular node's own identity counts for
// nothing.
const RequestProtocol protocol.ID = "/pyrsia-build/request/1"

const (
	// maxForwarded bounds the forwarded requests a build node follows at
	// once.
	maxForwarded = 16
	// maxEventLine bounds one event line on the request protocol.
	maxEventLine = 1 << 20
)

// forwardAnswer is the build node's first line.
type forwardAnswer struct {
	InputDigest string `json:"inputDigest,omitempty"`
	Error       string `json:"error,omitempty"`
	// Until is when the build node stops following the round (its
	// deadline and a margin): the regular node waits no longer.
	Until *time.Time `json:"until,omitempty"`
}

// Bounds of a regular node's wait for a build node that took a request.
var (
	// forwardKeepalive is how often a build node sends an empty line on
	// an idle request stream; the regular node gives up after
	// 3*forwardKeepalive without a byte.
	forwardKeepalive = 15 * time.Second
	// forwardMargin is added to the build node's Until (clocks differ,
	// and the last event takes time to come).
	forwardMargin = time.Minute
	// forwardMaxWait bounds the wait whatever Until a build node names
	// (and is the wait when it names none).
	forwardMaxWait = 2*time.Hour + time.Minute
)

// serveForwarded is a build node's end of [RequestProtocol].
func (n *Node) serveForwarded(st network.Stream) {
	defer st.Close()
	// The request is read before the stream takes a slot: a peer that
	// opens streams and sends nothing (or a byte at a time) holds no
	// slot, and cannot make this node "busy" for everyone.
	st.SetReadDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReaderSize(st, 4096)
	line, err := readLine(br, quorum.MaxRequestSize+1)
	if err != nil {
		st.Reset()
		return
	}
	select {
	case n.serving.forwarded <- struct{}{}:
		defer func() { <-n.serving.forwarded }()
	default:
		st.SetDeadline(time.Now().Add(10 * time.Second))
		json.NewEncoder(st).Encode(forwardAnswer{Error: "busy: too many forwarded requests at once; try another build node or later"})
		return
	}
	until := time.Now().Add(2*n.o.Deadline + time.Minute)
	ctx, cancel := context.WithDeadline(context.Background(), until)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	go func() { // the regular node went away: stop following
		// A clean end of its side (CloseWrite: it sent its request and
		// now only reads) is not going away; a reset or a broken stream
		// is. Writes to a regular node that closed the stream fail.
		if _, err := io.Copy(io.Discard, br); err != nil {
			cancel()
		}
	}()
	st.SetReadDeadline(time.Time{})
	enc := json.NewEncoder(st)
	send := func(v any) bool {
		st.SetWriteDeadline(time.Now().Add(time.Minute))
		return enc.Encode(v) == nil
	}
	// Judged as the requests topic's validators will judge it.
	input, err := n.PublishRequest(ctx, line)
	if err != nil {
		send(forwardAnswer{Error: err.Error()})
		return
	}
	past, ch, unsubscribe := n.events.subscribe(input)
	defer unsubscribe()
	if !send(forwardAnswer{InputDigest: input, Until: &until}) {
		return
	}
	// A verdict is not passed on for a round that ended before: the
	// request was gossiped again just now and a new round is open.
	ended := func() (Event, bool) {
		if ev, ok := n.endedEvent(input); ok && ev.Type == EventFinal {
			return ev, true
		}
		return Event{}, false
	}
	// An empty line while nothing happens: the regular node tells a
	// build node at work from a silent one.
	tick := time.NewTicker(forwardKeepalive)
	defer tick.Stop()
	keepalive := func() bool {
		st.SetWriteDeadline(time.Now().Add(time.Minute))
		_, err := st.Write([]byte("\n"))
		return err == nil
	}
	streamEvents(ctx, n.stopping, eventStream{past: past, ch: ch, ended: ended, send: func(ev Event) bool { return send(ev) }, tick: tick.C, keepalive: keepalive})
}

// readLine reads one line of at most limit bytes, without its newline.
func readLine(r *bufio.Reader, limit int) ([]byte, error) {
	var line []byte
	for {
		chunk, err := r.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > limit {
			return nil, fmt.Errorf("node: a line over %d bytes", limit)
		}
		if err == nil {
			return bytes.TrimSuffix(line, []byte("\n")), nil
		}
		if !errors.Is(err, bufio.ErrBufferFull) {
			if errors.Is(err, io.EOF) && len(line) > 0 {
				return line, nil
			}
			return nil, err
		}
	}
}

// forwarder is a regular node's end of [RequestProtocol]: it passes
// requests on to a build node and keeps the events of their rounds.
type forwarder struct {
	h       host.Host
	network atomic.Pointer[quorum.Network] // of the policy in force
	boot    []peer.AddrInfo
	log     *slog.Logger
	events  *events
	poke    func() // reads the log again (a round ended final)

	mu     sync.Mutex
	rounds map[string]*RoundStatus // by input, rounds passed on
}

func newForwarder(h host.Host, nw *quorum.Network, boot []peer.AddrInfo, log *slog.Logger) *forwarder {
	f := &forwarder{h: h, boot: boot, log: log, events: newEvents(), rounds: map[string]*RoundStatus{}, poke: func() {}}
	f.network.Store(nw)
	return f
}

// buildPeers returns the build nodes to pass a request to: those this
// node is connected to, the bootstrap peers among them first.
func (f *forwarder) buildPeers() []peer.ID {
	seen := map[peer.ID]bool{}
	var out []peer.ID
	add := func(p peer.ID) {
		if _, ok := f.network.Load().ByPeer(p); ok && !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	for _, b := range f.boot {
		add(b.ID)
	}
	for _, p := range f.h.Network().Peers() {
		add(p)
	}
	return out
}

// forward passes a signed request on to the first build node that takes
// it, and follows its round in the background. It returns the input
// digest.
func (f *forwarder) forward(ctx context.Context, req *quorum.BuildRequest) (string, error) {
	b, err := req.Marshal()
	if err != nil {
		return "", err
	}
	peers := f.buildPeers()
	if len(peers) == 0 {
		return "", errors.New("node: no build node to pass the request on to: this node is connected to none of the policy's build nodes (check --bootstrap)")
	}
	// A refusal does not end the search: one lying build node must not
	// censor the requesters of this node. The request is refused when
	// the build nodes that answered all refused it.
	var errs []error
	var refusals []string
	for _, p := range peers {
		name := p.String()
		if m, ok := f.network.Load().ByPeer(p); ok {
			name = m.Name
		}
		input, err := f.forwardTo(ctx, p, b, req.InputDigest)
		var refused *refusedError
		if errors.As(err, &refused) {
			refusals = append(refusals, fmt.Sprintf("build node %s refused the request: %s", name, refused.msg))
			continue
		}
		if err == nil {
			f.log.InfoContext(ctx, "passed a build request on", "input", input, "build-node", name)
			return input, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", name, err))
	}
	if len(refusals) > 0 {
		return "", &refusedError{"node: " + strings.Join(refusals, "; ")}
	}
	return "", fmt.Errorf("node: no build node took the request: %w", errors.Join(errs...))
}

// parseAnswer checks a build node's first line on [RequestProtocol]: it
// took the request of input, or refused it (a *refusedError). It returns
// when the regular node stops waiting for the round's end: the build
// node's Until and forwardMargin, at most forwardMaxWait from now.
func parseAnswer(line []byte, input string) (time.Time, error) {
	var a forwardAnswer
	if err := json.Unmarshal(line, &a); err != nil {
		return time.Time{}, fmt.Errorf("its answer is not JSON: %w", err)
	}
	switch {
	case a.Error != "":
		return time.Time{}, &refusedError{printableText(a.Error, 1024)}
	case a.InputDigest != input:
		return time.Time{}, fmt.Errorf("it answered input digest %q for the request of %s", printableText(a.InputDigest, 80), input)
	}
	now := time.Now()
	limit := now.Add(forwardMaxWait)
	if a.Until != nil {
		if u := a.Until.Add(forwardMargin); u.Before(limit) {
			limit = u
		}
	}
	return limit, nil
}

// parseRelayed decodes an event a build node sent of the round of input.
func parseRelayed(line []byte, input string) (Event, error) {
	var ev Event
	if err := json.Unmarshal(line, &ev); err != nil {
		return Event{}, fmt.Errorf("an event that is not JSON: %w", err)
	}
	if ev.Input != input {
		return Event{}, fmt.Errorf("an event of input %q in the round of %s", printableText(ev.Input, 80), input)
	}
	switch ev.Type {
	case EventVote, EventVerdict, EventPublished, EventFinal:
	default:
		return Event{}, fmt.Errorf("an event of unknown type %q", printableText(ev.Type, 40))
	}
	if ev.Type == EventVerdict && ev.Verdict == nil {
		return Event{}, errors.New("a verdict event without its verdict")
	}
	return ev, nil
}

// printableText is s cut to at most n bytes, control characters replaced:
// text from a peer, for messages.
func printableText(s string, n int) string {
	if len(s) > n {
		s = s[:n] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

type refusedError struct{ msg string }

func (e *refusedError) Error() string { return e.msg }

func (f *forwarder) forwardTo(ctx context.Context, p peer.ID, req []byte, input string) (string, error) {
	sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := f.h.NewStream(sctx, p, RequestProtocol)
	if err != nil {
		return "", err
	}
	st.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := st.Write(append(req, '\n')); err != nil {
		st.Reset()
		return "", err
	}
	br := bufio.NewReaderSize(st, 4096)
	line, err := readLine(br, maxEventLine)
	if err != nil {
		st.Reset()
		return "", err
	}
	limit, err := parseAnswer(line, input)
	if err != nil {
		st.Reset()
		return "", err
	}
	f.mu.Lock()
	if len(f.rounds) >= maxEventInputs {
		for k := range f.rounds { // bounded: forget one, whichever
			delete(f.rounds, k)
			break
		}
	}
	f.rounds[input] = &RoundStatus{InputDigest: input, State: "pending"}
	f.mu.Unlock()
	f.events.reset(input)
	st.SetDeadline(time.Time{})
	go func() {
		if err := f.relay(st, br, input, limit); err != nil {
			f.lost(p, input, err)
		}
	}()
	return input, nil
}

// lost ends the round of input that build node p took, as this node's
// subscribers see it: the relay of its events ended (err) before the
// round did. Unless the node's follower saw the entry meanwhile, they get
// a verdict that says so (the round may still end in the log: a later
// request finds it there).
func (f *forwarder) lost(p peer.ID, input string, err error) {
	name := p.String()
	if m, ok := f.network.Load().ByPeer(p); ok {
		name = m.Name
	}
	f.mu.Lock()
	_, pending := f.rounds[input]
	delete(f.rounds, input)
	f.mu.Unlock()
	if !pending {
		return // published, or forgotten
	}
	text := fmt.Sprintf("this node stopped following the round: build node %s, which took the request, %v; "+
		"the artifact is not published yet: its status shows it if the round still ends in the log, else send the request again", name, err)
	f.log.Warn("a build node that took a request stopped sending its round's events", "input", input, "build-node", name, "err", err)
	now := time.Now().UTC()
	f.events.emit(input, Event{Type: EventVerdict, Input: input, Error: text, Time: now,
		Verdict: &Verdict{InputDigest: input, Time: now, Silent: []string{name}, Text: text}})
}

// relay passes a build node's events of a round on to this node's
// subscribers. "published" and "final" come from this node's own
// follower instead (see published): a client that sees "final" can then
// get the proof bundle from this node. It returns nil at the round's end
// (a verdict, or final), else why it stopped before: the stream ended or
// carried a bad event, 3*forwardKeepalive passed without a byte, or limit
// passed.
func (f *forwarder) relay(st network.Stream, br *bufio.Reader, input string, limit time.Time) error {
	defer st.Close()
	idle := 3 * forwardKeepalive
	for {
		d, overall := time.Now().Add(idle), false
		if !limit.After(d) {
			d, overall = limit, true
		}
		st.SetReadDeadline(d)
		line, err := readLine(br, maxEventLine)
		switch {
		case isTimeout(err) && overall:
			st.Reset()
			return fmt.Errorf("did not end it by %s (its deadline and a margin)", limit.UTC().Format(time.RFC3339))
		case isTimeout(err):
			st.Reset()
			return fmt.Errorf("sent nothing for %s, not even a keepalive", idle)
		case err != nil:
			st.Reset()
			return fmt.Errorf("ended the stream before the round's end: %w", err)
		case len(line) == 0:
			continue // a keepalive
		}
		ev, err := parseRelayed(line, input)
		if err != nil {
			st.Reset()
			return fmt.Errorf("sent %w", err)
		}
		switch ev.Type {
		case EventVote:
			// A vote counts for a build node of the policy, once: a
			// build node naming others lies (and could grow Votes
			// without end).
			if _, ok := f.network.Load().ByName(ev.Node); !ok {
				st.Reset()
				return fmt.Errorf("sent a vote of %q, not a build node of the policy", printableText(ev.Node, 80))
			}
			f.mu.Lock()
			rs := f.rounds[input]
			seen := rs != nil && slices.Contains(rs.Votes, ev.Node)
			if rs != nil && !seen {
				rs.Votes = append(rs.Votes, ev.Node)
			}
			f.mu.Unlock()
			if !seen {
				f.events.emit(input, ev)
			}
		case EventVerdict:
			f.mu.Lock()
			if rs := f.rounds[input]; rs != nil && ev.Verdict != nil {
				rs.State, rs.Verdict = "no-quorum", ev.Verdict
			}
			f.mu.Unlock()
			f.events.emit(input, ev)
			return nil
		case EventFinal:
			f.poke()
			return nil
		}
	}
}

// isTimeout reports whether err is a read deadline's.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout()
}

// published is called for every entry the node's follower indexed.
func (f *forwarder) published(i uint64, e *publish.Entry, size uint64) {
	f.mu.Lock()
	_, ours := f.rounds[e.InputDigest]
	delete(f.rounds, e.InputDigest)
	f.mu.Unlock()
	if !ours {
		return
	}
	f.events.emit(e.InputDigest, Event{Type: EventPublished, Input: e.InputDigest, Index: &i})
	f.events.emit(e.InputDigest, Event{Type: EventFinal, Input: e.InputDigest, Index: &i, Size: &size})
}

// status is the state of a round passed on and not published yet.
func (f *forwarder) status(input string) RoundStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	if rs := f.rounds[input]; rs != nil {
		return *rs
	}
	return RoundStatus{InputDigest: input, State: "unknown"}
}

// servePublish is POST /v1/publish: a spec, which a build node signs as
// requester with its API token. A regular node has no key to sign with.
func (r *Regular) servePublish(w http.ResponseWriter, req *http.Request) {
	httpErr(w, http.StatusUnsupportedMediaType, errors.New("a regular node passes on only build requests signed by their requester (POST /v1/requests): run 'pyrsia-build publish --key REQUESTER.key'"))
}

// serveRequest is POST /v1/requests: a build request signed by its
// requester (JSON, as 'pyrsia-build publish --key' sends it), passed on to
// a build node.
func (r *Regular) serveRequest(w http.ResponseWriter, req *http.Request) {
	if req.Header.Get("Origin") != "" || (req.Header.Get("Sec-Fetch-Site") != "" && req.Header.Get("Sec-Fetch-Site") != "none") {
		httpErr(w, http.StatusForbidden, errors.New("requests from web pages are refused: use the pyrsia-build command"))
		return
	}
	if mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		httpErr(w, http.StatusUnsupportedMediaType, fmt.Errorf("Content-Type %q: send the signed request as application/json ('pyrsia-build publish --key' does)", req.Header.Get("Content-Type")))
		return
	}
	b, err := io.ReadAll(io.LimitReader(req.Body, quorum.MaxRequestSize+1))
	if err != nil {
		httpErr(w, http.StatusBadRequest, fmt.Errorf("reading the request: %w", err))
		return
	}
	breq, err := quorum.ParseBuildRequest(b)
	if err != nil {
		httpErr(w, http.StatusBadRequest, err)
		return
	}
	if _, ok := r.idx.ByInputDigest(breq.InputDigest); ok {
		// Published already: nothing to pass on (its events say final).
		writeJSON(w, http.StatusAccepted, map[string]string{"inputDigest": breq.InputDigest})
		return
	}
	input, err := r.fwd.forward(req.Context(), breq)
	var refused *refusedError
	switch {
	case errors.As(err, &refused):
		httpErr(w, http.StatusForbidden, err)
		return
	case err != nil:
		httpErr(w, http.StatusBadGateway, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"inputDigest": input})
}

// serveEvents streams the events of a round passed on by this node.
func (r *Regular) serveEvents(w http.ResponseWriter, req *http.Request) {
	serveEventStream(w, req, nil, r.fwd.events, func(input string) (Event, bool) {
		rec, ok := r.idx.ByInputDigest(input)
		if !ok {
			return Event{}, false
		}
		i := rec.LogIndex
		ev := Event{Type: EventFinal, Input: input, Index: &i, Time: time.Now().UTC()}
		if cp := r.checkpoint(); cp != nil {
			size := cp.Size
			ev.Size = &size
		}
		return ev, true
	})
}

// SignRequest returns a build request for spec (YAML or JSON) signed by
// the requester's key, as POST /v1/requests takes it (on a build node or a
// regular node). The key is included when the policy is open.
func SignRequest(p *policy.Policy, spec []byte, signer *attest.Signer) ([]byte, error) {
	s, err := builder.ParseSpec(spec)
	if err != nil {
		return nil, fmt.Errorf("node: spec: %w", err)
	}
	canon, err := s.CanonicalJSON()
	if err != nil {
		return nil, fmt.Errorf("node: spec: %w", err)
	}
	nw, err := quorum.NetworkFromPolicy(p)
	if err != nil {
		return nil, err
	}
	req, err := quorum.NewBuildRequest(quorum.RequestOptions{Policy: nw.Digest(), Spec: canon, Signer: signer, IncludeKey: p.Open})
	if err != nil {
		return nil, err
	}
	return req.Marshal()
}
