package node

import (
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"strings"

	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/index"
)

// handler is a regular node's HTTP face, on --http:
//
//	GET  /healthz                          "ok"
//	GET  /status                           the node's [RegularStatus], JSON
//	GET  /v2/...                           OCI distribution, pull side
//	GET  /maven2/...                       a Maven 2 repository
//	GET  /log/checkpoint, /log/tile/...    the log as verified (C2SP tlog-tiles)
//	POST /v1/requests                      a build request signed by its requester, passed on to a build node
//	POST /v1/publish                       refused: a regular node signs nothing
//	GET  /v1/publish/<input>/events        the round's [Event]s, as a build node sends them
//	GET  /v1/status/<input or coordinate>  a [RoundStatus]
//	GET  /v1/proof/<input>                 the proof bundle against the last checkpoint verified
func (r *Regular) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, req *http.Request) {
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, req *http.Request) {
		writeJSON(w, http.StatusOK, r.Status())
	})
	r.serving.mount(mux)
	mux.Handle("/log/", http.StripPrefix("/log", sourceHandler(r.src, func() ([]byte, error) {
		cp := r.checkpoint()
		if cp == nil {
			return nil, errNoCheckpoint
		}
		return cp.Note, nil
	})))
	mux.HandleFunc("POST /v1/publish", r.servePublish)
	mux.HandleFunc("POST /v1/requests", r.serveRequest)
	mux.HandleFunc("GET /v1/publish/{input}/events", r.serveEvents)
	mux.HandleFunc("GET /v1/status/{what...}", r.serveRoundStatus)
	mux.HandleFunc("GET /v1/proof/{input}", r.serveProof)
	return mux
}

func (r *Regular) serveRoundStatus(w http.ResponseWriter, req *http.Request) {
	what := req.PathValue("what")
	if strings.HasPrefix(what, "sha256:") {
		if _, err := inputHex(what); err != nil {
			httpErr(w, http.StatusBadRequest, err)
			return
		}
		if rec, ok := r.idx.ByInputDigest(what); ok {
			writeJSON(w, http.StatusOK, r.recordStatus(rec))
			return
		}
		st := r.fwd.status(what)
		code := http.StatusOK
		if st.State == "unknown" {
			code = http.StatusNotFound
		}
		writeJSON(w, code, st)
		return
	}
	if best, ok := latest(r.idx, what); ok {
		writeJSON(w, http.StatusOK, r.recordStatus(best))
		return
	}
	writeJSON(w, http.StatusNotFound, RoundStatus{Coordinate: what, State: "unknown"})
}

// latest returns the latest entry published under a coordinate, in
// either ecosystem.
func latest(idx *index.Index, coordinate string) (index.Record, bool) {
	var best *index.Record
	for _, eco := range []string{publish.EcosystemOCI, publish.EcosystemMaven} {
		for _, rec := range idx.ByCoordinate(eco, coordinate) {
			if best == nil || rec.LogIndex > best.LogIndex {
				best = &rec
			}
		}
	}
	if best == nil {
		return index.Record{}, false
	}
	return *best, true
}

// recordStatus: every entry a regular node indexed is under a final
// checkpoint (it follows only final ones).
func (r *Regular) recordStatus(rec index.Record) RoundStatus {
	i := rec.LogIndex
	return RoundStatus{InputDigest: rec.InputDigest, State: "final", Index: &i, Ecosystem: rec.Ecosystem, Coordinate: rec.Coordinate, Subjects: rec.Subjects}
}

func (r *Regular) serveProof(w http.ResponseWriter, req *http.Request) {
	input := req.PathValue("input")
	rec, ok := r.idx.ByInputDigest(input)
	if !ok {
		httpErr(w, http.StatusNotFound, fmt.Errorf("%s is not in the log as this node verified it", input))
		return
	}
	pb, err := r.ProofBundle(req.Context(), rec.LogIndex)
	if err != nil {
		httpErr(w, http.StatusBadGateway, err)
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

var errNoCheckpoint = fmt.Errorf("no checkpoint verified yet: %w", fs.ErrNotExist)
