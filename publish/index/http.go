package index

import (
	"encoding/json"
	"net/http"
)

// Handler answers lookups in the index, as JSON lists of records (the log
// indexes to fetch entries and proofs for):
//
//	GET /lookup/artifact/{sha256}                  entries that publish an artifact digest
//	GET /lookup/input/{digest}                     the latest entry for an input digest
//	GET /lookup/coordinate/{ecosystem}/{coordinate} entries for a coordinate
//
// The answers are hints: a client checks the entries it then fetches
// against a checkpoint.
func (x *Index) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /lookup/artifact/{digest}", func(w http.ResponseWriter, r *http.Request) {
		writeRecords(w, x.ByArtifact(r.PathValue("digest")))
	})
	mux.HandleFunc("GET /lookup/input/{digest}", func(w http.ResponseWriter, r *http.Request) {
		var out []Record
		if rec, ok := x.ByInputDigest(r.PathValue("digest")); ok {
			out = append(out, rec)
		}
		writeRecords(w, out)
	})
	mux.HandleFunc("GET /lookup/coordinate/{ecosystem}/{coordinate}", func(w http.ResponseWriter, r *http.Request) {
		writeRecords(w, x.ByCoordinate(r.PathValue("ecosystem"), r.PathValue("coordinate")))
	})
	return mux
}

func writeRecords(w http.ResponseWriter, recs []Record) {
	if recs == nil {
		recs = []Record{}
	}
	w.Header().Set("Content-Type", "application/json")
	if len(recs) == 0 {
		w.WriteHeader(http.StatusNotFound)
	}
	json.NewEncoder(w).Encode(recs)
}
