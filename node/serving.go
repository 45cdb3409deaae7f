package node

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"

	"github.com/pyrsia/pyrsia-build/publish/index"
	"github.com/pyrsia/pyrsia-build/publish/serve"
	"github.com/pyrsia/pyrsia-build/publish/store"
)

// DefaultHTTP is the address a node serves build tools on by default.
const DefaultHTTP = "127.0.0.1:7888"

// DefaultStoreBytes bounds a node's blob store by default.
const DefaultStoreBytes = 10 << 30

// ServingOptions configure the serving part every node runs: its blob
// store (DATA/store) and the faces build tools read published artifacts
// through.
type ServingOptions struct {
	// MaxStoreBytes bounds the blob store (default DefaultStoreBytes; the
	// published outputs a build node pins count but are never evicted).
	MaxStoreBytes int64
	// AdmitPeers, on a build node, lets peers outside the policy connect
	// (regular nodes: for the log, content and requests passed on); the
	// build protocols still admit only the policy's build nodes. A
	// regular node always admits them.
	AdmitPeers bool
}

// serving is the serving part of a node: its store, the index of the
// log's entries it serves from, and the OCI and Maven faces over them.
type serving struct {
	store   *store.Store
	idx     *index.Index
	content serve.Content
	oci     http.Handler
	maven   http.Handler
}

// openServing opens the store in data/store. content nil means the store
// alone (see [serve.StoreContent]).
func openServing(data string, o ServingOptions, idx *index.Index, content func(*store.Store) (serve.Content, error), hint string, log *slog.Logger) (*serving, error) {
	if o.MaxStoreBytes == 0 {
		o.MaxStoreBytes = DefaultStoreBytes
	}
	if o.MaxStoreBytes < 0 {
		return nil, fmt.Errorf("node: the store's size bound %d is negative", o.MaxStoreBytes)
	}
	st, err := store.Open(filepath.Join(data, "store"), store.Options{MaxBytes: o.MaxStoreBytes, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	s := &serving{store: st, idx: idx}
	if content != nil {
		if s.content, err = content(st); err != nil {
			st.Close()
			return nil, err
		}
	} else {
		s.content = serve.StoreContent{Store: st}
	}
	s.oci = serve.NewOCI(serve.OCIOptions{Index: idx, Content: s.content, Logger: log, Hint: hint})
	s.maven = newMavenFace(idx, s.content, hint, log)
	return s, nil
}

// publishHint is the text an unknown name's error carries.
func publishHint(addr string) string {
	if addr == "" {
		addr = "ADDR"
	}
	return "request it with: pyrsia-build publish SPEC --node " + addr
}

// mount adds the faces to mux: /v2/ (OCI distribution, pull side) and
// /maven2/ (a Maven 2 repository).
func (s *serving) mount(mux *http.ServeMux) {
	mux.Handle("/v2/", s.oci)
	mux.Handle("/v2", s.oci)
	if s.maven != nil {
		mux.Handle("/maven2/", s.maven)
	}
}

func (s *serving) close() error {
	var errs []error
	if c, ok := s.content.(interface{ Close() error }); ok {
		errs = append(errs, c.Close())
	}
	errs = append(errs, s.store.Close())
	return errors.Join(errs...)
}
