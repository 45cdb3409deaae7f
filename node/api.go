package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/index"
	"github.com/pyrsia/pyrsia-build/publish/logservice"
	"github.com/pyrsia/pyrsia-build/quorum"
)

// maxSpecRequest bounds a spec posted to /v1/publish.
const maxSpecRequest = 1 << 20

// RoundStatus is the answer of GET /v1/status/<input or coordinate>.
type RoundStatus struct {
	InputDigest string `json:"inputDigest"`
	// State is "final" (published, and a final checkpoint covers the
	// entry), "published" (in the log, not yet under a final checkpoint),
	// "no-quorum" (Verdict says why), "pending" (votes are being
	// collected) or "unknown".
	State      string            `json:"state"`
	Index      *uint64           `json:"index,omitempty"`
	Ecosystem  string            `json:"ecosystem,omitempty"`
	Coordinate string            `json:"coordinate,omitempty"`
	Subjects   []publish.Subject `json:"subjects,omitempty"`
	Votes      []string          `json:"votes,omitempty"`
	// Dissent maps the nodes that built other subjects than the published
	// ones (or failed) to the files in which their output differs, from the
	// output manifests; empty when the manifests could not be read.
	Dissent map[string][]string `json:"dissent,omitempty"`
	Verdict *Verdict            `json:"verdict,omitempty"`
}

// apiHandler is the node's local HTTP API:
//
//	GET  /healthz                          "ok"
//	GET  /status                           the node's [Status], JSON
//	POST /v1/publish                       a build spec (YAML or JSON): {"inputDigest": ...}
//	POST /v1/requests                      a build request its requester signed (JSON): {"inputDigest": ...}
//	POST /v1/policy-changes                a policy change a majority approved (JSON): a [PolicyChangeResult]
//	GET  /v1/publish/<input>/events        the round's [Event]s, newline-delimited JSON,
//	                                       until "final" or "verdict"
//	GET  /v1/status/<input or coordinate>  a [RoundStatus]
//	GET  /v1/proof/<input>                 the proof bundle against the latest final checkpoint
//	GET  /v1/builds/<input>/manifest.json  this node's output manifest of a build
//	GET  /log/...                          the log (tlog-tiles, proofs, lookups)
//
// Every request from a web page (an Origin header) and every request for a
// host name other than localhost is refused (see [Node.checkLocal]); a POST
// needs Content-Type application/json (or application/yaml for a spec),
// and /v1/publish the node's API token ([APITokenFile]): there the node
// signs the request, while /v1/requests carries the requester's own
// signature ([Node.PublishRequest]).
func (n *Node) apiHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, n.Status())
	})
	mux.HandleFunc("POST /v1/publish", n.servePublish)
	mux.HandleFunc("POST /v1/requests", n.serveRequest)
	mux.HandleFunc("POST /v1/policy-changes", n.servePolicyChange)
	mux.HandleFunc("GET /v1/publish/{input}/events", n.serveEvents)
	mux.HandleFunc("GET /v1/status/{what...}", n.serveRoundStatus)
	mux.HandleFunc("GET /v1/proof/{input}", n.serveProof)
	mux.HandleFunc("GET /v1/builds/{input}/manifest.json", func(w http.ResponseWriter, r *http.Request) {
		b, err := n.localManifest(r.PathValue("input"))
		if err != nil {
			httpErr(w, http.StatusNotFound, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	})
	mux.Handle("/log/", http.StripPrefix("/log", n.svc.Handler()))
	n.mountServing(mux)
	n.mountMetrics(mux)
	return n.localOnly(mux)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func httpErr(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, map[string]string{"error": err.Error()})
}

// readBody reads r's body of at most max bytes; what names the body in
// the errors. When it returns false it has answered already: 400 for a
// body it could not read, 413 for one over max.
func readBody(w http.ResponseWriter, r *http.Request, max int, what string) ([]byte, bool) {
	b, err := io.ReadAll(io.LimitReader(r.Body, int64(max)+1))
	if err != nil {
		httpErr(w, http.StatusBadRequest, fmt.Errorf("reading %s: %w", what, err))
		return nil, false
	}
	if len(b) > max {
		httpErr(w, http.StatusRequestEntityTooLarge, fmt.Errorf("%s is over %d bytes", what, max))
		return nil, false
	}
	return b, true
}

func (n *Node) servePublish(w http.ResponseWriter, r *http.Request) {
	if !n.checkPost(w, r) {
		return
	}
	b, ok := readBody(w, r, maxSpecRequest, "the spec")
	if !ok {
		return
	}
	input, err := n.Publish(r.Context(), b)
	if err != nil {
		httpErr(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"inputDigest": input})
}

// serveEvents streams a round's events until it ends (final or verdict),
// the client leaves, or the node stops.
func (n *Node) serveEvents(w http.ResponseWriter, r *http.Request) {
	serveEventStream(w, r, n.stopping, n.events, n.endedEvent)
}

// endedEvent is the last event of a round that ended before this node saw
// it (a restart, or an input published before): its state.
func (n *Node) endedEvent(input string) (Event, bool) {
	st := n.roundStatus(input)
	switch st.State {
	case "final":
		ev := Event{Type: EventFinal, Input: input, Index: st.Index, Time: time.Now().UTC()}
		if cp := n.svc.Final(); cp != nil {
			size := cp.Size
			ev.Size = &size
		}
		return ev, true
	case "no-quorum":
		return Event{Type: EventVerdict, Input: input, Verdict: st.Verdict, Time: time.Now().UTC()}, true
	}
	return Event{}, false
}

// roundStatus answers for an input digest.
func (n *Node) roundStatus(input string) RoundStatus {
	st := RoundStatus{InputDigest: input, State: "unknown"}
	if rec, ok := n.svc.Index().ByInputDigest(input); ok {
		return n.recordStatus(context.Background(), rec)
	}
	n.mu.Lock()
	if r := n.rounds[input]; r != nil {
		st.State = "pending"
		for name := range r.votes {
			st.Votes = append(st.Votes, name)
		}
		st.Verdict = r.verdict
	}
	n.mu.Unlock()
	if st.Verdict == nil {
		st.Verdict, _ = n.LastVerdict(input)
	}
	if st.Verdict != nil {
		st.State = "no-quorum"
	}
	return st
}

func (n *Node) recordStatus(ctx context.Context, rec index.Record) RoundStatus {
	i := rec.LogIndex
	st := RoundStatus{InputDigest: rec.InputDigest, State: "published", Index: &i, Ecosystem: rec.Ecosystem, Coordinate: rec.Coordinate, Subjects: rec.Subjects}
	if cp := n.svc.Final(); cp != nil && cp.Size > i {
		st.State = "final"
	}
	st.Votes, st.Dissent = n.dissent(ctx, rec)
	return st
}

// dissent returns the nodes that voted on a published entry, and the
// files in which the dissenters' outputs differ, from the round this node
// saw (none after a restart). It is computed once per set of votes.
func (n *Node) dissent(ctx context.Context, rec index.Record) ([]string, map[string][]string) {
	n.mu.Lock()
	r := n.rounds[rec.InputDigest]
	if r == nil {
		n.mu.Unlock()
		return nil, nil
	}
	var names []string
	for name := range r.votes {
		names = append(names, name)
	}
	sort.Strings(names)
	if r.dissent != nil && r.dissentVotes == len(names) {
		d := r.dissent
		n.mu.Unlock()
		return names, d
	}
	qv := r.tally(r.net, 0)
	n.mu.Unlock()
	published := quorum.SubjectsKey(rec.Subjects)
	var pub []string
	var others []quorum.Group
	for _, g := range qv.Groups {
		if quorum.SubjectsKey(g.Subjects) == published {
			pub = g.Nodes
		} else {
			others = append(others, g)
		}
	}
	d := map[string][]string{}
	if pub != nil && len(others) > 0 {
		d = n.explain(ctx, rec.InputDigest, pub, others)
		if d == nil {
			d = map[string][]string{}
		}
		for _, g := range others {
			for _, name := range g.Nodes {
				if _, ok := d[name]; !ok {
					d[name] = []string{}
				}
			}
		}
	}
	for name := range qv.Failed {
		d[name] = []string{"(build failed)"}
	}
	n.mu.Lock()
	r.dissent, r.dissentVotes = d, len(names)
	n.mu.Unlock()
	return names, d
}

func (n *Node) serveRoundStatus(w http.ResponseWriter, r *http.Request) {
	what := r.PathValue("what")
	if strings.HasPrefix(what, "sha256:") {
		if _, err := inputHex(what); err != nil {
			httpErr(w, http.StatusBadRequest, err)
			return
		}
		st := n.roundStatus(what)
		code := http.StatusOK
		if st.State == "unknown" {
			code = http.StatusNotFound
		}
		writeJSON(w, code, st)
		return
	}
	// A coordinate: the latest entry published under it, in either
	// ecosystem.
	var best *index.Record
	for _, eco := range []string{publish.EcosystemOCI, publish.EcosystemMaven} {
		for _, rec := range n.svc.Index().ByCoordinate(eco, what) {
			if best == nil || rec.LogIndex > best.LogIndex {
				best = &rec
			}
		}
	}
	if best == nil {
		writeJSON(w, http.StatusNotFound, RoundStatus{Coordinate: what, State: "unknown"})
		return
	}
	writeJSON(w, http.StatusOK, n.recordStatus(r.Context(), *best))
}

func (n *Node) serveProof(w http.ResponseWriter, r *http.Request) {
	input := r.PathValue("input")
	rec, ok := n.svc.Index().ByInputDigest(input)
	if !ok {
		httpErr(w, http.StatusNotFound, fmt.Errorf("%s is not in the log", input))
		return
	}
	pb, err := n.svc.ProofBundle(r.Context(), rec.LogIndex)
	if errors.Is(err, logservice.ErrNotFinal) {
		httpErr(w, http.StatusConflict, err)
		return
	}
	if err != nil {
		httpErr(w, http.StatusInternalServerError, err)
		return
	}
	b, err := json.Marshal(pb)
	if err != nil {
		httpErr(w, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", proofMediaType(pb))
	w.Write(append(b, '\n'))
}

// proofMediaType is the media type of pb's JSON body, as MarshalJSON
// writes it: version 2 when the bundle carries policy changes.
func proofMediaType(pb *publish.ProofBundle) string {
	switch {
	case pb.MediaType != "":
		return pb.MediaType
	case len(pb.PolicyChanges) > 0:
		return publish.ProofBundleV2MediaType
	}
	return publish.ProofBundleMediaType
}
