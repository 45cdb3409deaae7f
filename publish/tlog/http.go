package tlog

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// Handler serves the log over HTTP:
//
//	GET /checkpoint                        the latest checkpoint (C2SP tlog-checkpoint)
//	GET /tile/<L>/<N>[.p/<W>]              hash tiles (C2SP tlog-tiles)
//	GET /tile/entries/<N>[.p/<W>]          entry bundles (C2SP tlog-tiles)
//	GET /proof/inclusion/<index>?size=<S>  an inclusion proof, as JSON (ours)
//	GET /proof/consistency/<old>/<new>     a consistency proof, as JSON (ours)
//
// Any tlog-tiles client reads the log through the first three. The proof
// endpoints save a client the tile fetches; a proof's hashes are checked
// against a checkpoint, so they need no more trust than the tiles do. The
// size defaults to the latest checkpoint's.
//
// Only the committed checkpoint (see [Log.Commit]) is served, and nothing
// past its size: a candidate, its tiles and proofs up to it stay private
// until they are committed.
func (l *Log) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /checkpoint", l.serveCheckpoint)
	mux.HandleFunc("GET /tile/", l.serveTile)
	mux.HandleFunc("GET /proof/inclusion/{index}", l.serveInclusion)
	mux.HandleFunc("GET /proof/consistency/{old}/{new}", l.serveConsistency)
	return mux
}

func (l *Log) serveCheckpoint(w http.ResponseWriter, r *http.Request) {
	cp := l.cp.Load()
	if cp == nil {
		http.Error(w, "no checkpoint published yet", http.StatusNotFound)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Write(cp.Note)
}

func (l *Log) serveTile(w http.ResponseWriter, r *http.Request) {
	id, err := ParseTilePath(strings.TrimPrefix(r.URL.Path, "/"))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	data, err := l.readTile(r.Context(), id, l.publishedSize())
	if err != nil {
		httpError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	if id.Width == 0 {
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	}
	w.Write(data)
}

// ProofResponse is the JSON body of the proof endpoints. An inclusion
// proof always carries index, a consistency proof always oldSize, even
// when 0.
type ProofResponse struct {
	Index    uint64   `json:"index,omitempty"`
	OldSize  uint64   `json:"oldSize,omitempty"`
	TreeSize uint64   `json:"treeSize"`
	Hashes   []string `json:"hashes"` // base64, standard encoding
}

func (l *Log) serveInclusion(w http.ResponseWriter, r *http.Request) {
	index, err := strconv.ParseUint(r.PathValue("index"), 10, 64)
	if err != nil {
		http.Error(w, "index is not a number", http.StatusBadRequest)
		return
	}
	size, ok := sizeParam(w, r, l.publishedSize())
	if !ok {
		return
	}
	p, err := l.inclusionProof(r.Context(), index, size, l.publishedSize())
	if err != nil {
		httpError(w, err)
		return
	}
	writeProof(w, ProofResponse{Index: index, TreeSize: size, Hashes: b64(p)}, true)
}

func (l *Log) serveConsistency(w http.ResponseWriter, r *http.Request) {
	oldSize, err1 := strconv.ParseUint(r.PathValue("old"), 10, 64)
	newSize, err2 := strconv.ParseUint(r.PathValue("new"), 10, 64)
	if err1 != nil || err2 != nil {
		http.Error(w, "sizes are not numbers", http.StatusBadRequest)
		return
	}
	p, err := l.consistencyProof(r.Context(), oldSize, newSize, l.publishedSize())
	if err != nil {
		httpError(w, err)
		return
	}
	writeProof(w, ProofResponse{OldSize: oldSize, TreeSize: newSize, Hashes: b64(p)}, false)
}

func sizeParam(w http.ResponseWriter, r *http.Request, def uint64) (uint64, bool) {
	s := r.URL.Query().Get("size")
	if s == "" {
		return def, true
	}
	size, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		http.Error(w, "size is not a number", http.StatusBadRequest)
		return 0, false
	}
	return size, true
}

// writeProof writes p as JSON, by hand: this is the hot path of a busy
// log, and the encoding is fixed. An inclusion proof carries index, a
// consistency proof oldSize.
func writeProof(w http.ResponseWriter, p ProofResponse, inclusion bool) {
	buf := make([]byte, 0, 96+len(p.Hashes)*48)
	buf = append(buf, '{')
	if inclusion {
		buf = strconv.AppendUint(append(buf, `"index":`...), p.Index, 10)
		buf = append(buf, ',')
	} else {
		buf = strconv.AppendUint(append(buf, `"oldSize":`...), p.OldSize, 10)
		buf = append(buf, ',')
	}
	buf = strconv.AppendUint(append(buf, `"treeSize":`...), p.TreeSize, 10)
	buf = append(buf, `,"hashes":[`...)
	for i, h := range p.Hashes {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(append(append(buf, '"'), h...), '"')
	}
	buf = append(buf, "]}\n"...)
	hdr := w.Header()
	hdr["Content-Type"] = []string{"application/json"}
	w.Write(buf)
}

func b64(hashes [][]byte) []string {
	out := make([]string, len(hashes))
	for i, h := range hashes {
		out[i] = base64.StdEncoding.EncodeToString(h)
	}
	return out
}

func httpError(w http.ResponseWriter, err error) {
	var ce *CorruptError
	switch {
	case errors.Is(err, ErrNotPublished):
		http.Error(w, err.Error(), http.StatusNotFound)
	case errors.Is(err, ErrOutOfRange):
		http.Error(w, err.Error(), http.StatusBadRequest)
	case errors.As(err, &ce):
		http.Error(w, "stored data is damaged", http.StatusInternalServerError)
	default:
		http.Error(w, "internal error", http.StatusInternalServerError)
	}
}
