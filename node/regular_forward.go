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
	"net/http"
	"slices"
	"strings"
	"sync"
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
}

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
	ctx, cancel := context.WithTimeout(context.Background(), 2*n.o.Deadline+time.Minute)
	defer cancel()
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	go func() { // the regular node went away: stop following
		io.Copy(io.Discard, br)
		cancel()
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
	if !send(forwardAnswer{InputDigest: input}) {
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
	streamEvents(ctx, n.stopping, eventStream{past: past, ch: ch, ended: ended, send: func(ev Event) bool { return send(ev) }})
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
	network *quorum.Network
	boot    []peer.AddrInfo
	log     *slog.Logger
	events  *events
	poke    func() // reads the log again (a round ended final)

	mu     sync.Mutex
	rounds map[string]*RoundStatus // by input, rounds passed on
}

func newForwarder(h host.Host, nw *quorum.Network, boot []peer.AddrInfo, log *slog.Logger) *forwarder {
	return &forwarder{h: h, network: nw, boot: boot, log: log, events: newEvents(), rounds: map[string]*RoundStatus{}, poke: func() {}}
}

// buildPeers returns the build nodes to pass a request to: those this
// node is connected to, the bootstrap peers among them first.
func (f *forwarder) buildPeers() []peer.ID {
	seen := map[peer.ID]bool{}
	var out []peer.ID
	add := func(p peer.ID) {
		if _, ok := f.network.ByPeer(p); ok && !seen[p] {
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
		if m, ok := f.network.ByPeer(p); ok {
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
// took the request of input, or refused it (a *refusedError).
func parseAnswer(line []byte, input string) error {
	var a forwardAnswer
	if err := json.Unmarshal(line, &a); err != nil {
		return fmt.Errorf("its answer is not JSON: %w", err)
	}
	switch {
	case a.Error != "":
		return &refusedError{printableText(a.Error, 1024)}
	case a.InputDigest != input:
		return fmt.Errorf("it answered input digest %q for the request of %s", printableText(a.InputDigest, 80), input)
	}
	return nil
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
	if err := parseAnswer(line, input); err != nil {
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
	go f.relay(st, br, input)
	return input, nil
}

// relay passes a build node's events of a round on to this node's
// subscribers. "published" and "final" come from this node's own
// follower instead (see published): a client that sees "final" can then
// get the proof bundle from this node.
func (f *forwarder) relay(st network.Stream, br *bufio.Reader, input string) {
	defer st.Close()
	for {
		line, err := readLine(br, maxEventLine)
		if err != nil {
			return
		}
		ev, err := parseRelayed(line, input)
		if err != nil {
			st.Reset()
			return
		}
		switch ev.Type {
		case EventVote:
			// A vote counts for a build node of the policy, once: a
			// build node naming others lies (and could grow Votes
			// without end).
			if _, ok := f.network.ByName(ev.Node); !ok {
				st.Reset()
				return
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
			return
		case EventFinal:
			f.poke()
			return
		}
	}
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
