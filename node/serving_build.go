package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/exchange"
	"github.com/pyrsia/pyrsia-build/publish/index"
	"github.com/pyrsia/pyrsia-build/publish/serve"
	"github.com/pyrsia/pyrsia-build/publish/store"
	"github.com/pyrsia/pyrsia-build/publish/tlog"
	"github.com/pyrsia/pyrsia-build/quorum"
)

// buildServing is the serving part of a build node: its store, with the
// outputs of every published entry it built in it (pinned), the OCI and
// Maven faces over its own index, its log to peers over libp2p, and the
// end of [RequestProtocol] that takes requests passed on by regular nodes.
type buildServing struct {
	*serving
	xchg      *exchange.Exchange
	forwarded chan struct{} // forwarded requests followed at once
	outputs   chan uint64   // log indexes whose outputs go in the store
	provided  sync.Map      // input digest → true, once its outputs are provided in the DHT
}

// openServing starts a build node's serving part (from [New]).
func (n *Node) openServing(ctx context.Context) error {
	if n.o.Serving.AdmitPeers {
		n.gater.AllowOthers(true)
	}
	hint := publishHint("")
	if n.o.API != nil {
		hint = publishHint(n.o.API.Addr().String())
	}
	var x *exchange.Exchange
	// The faces serve only what a final checkpoint covers: the log
	// service indexes an entry as soon as it is durable, before a
	// majority has cosigned it, so they get an index of their own that
	// indexFinal fills as checkpoints become final.
	final, err := index.New()
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	s, err := openServing(n.o.Data, n.o.Serving, final, func(st *store.Store) (serve.Content, error) {
		var err error
		x, err = newExchange(ctx, n.host, n.chain.NetworkID(), st, n.o.Bootstrap, true, n.log)
		return x, err
	}, hint, n.log)
	if err != nil {
		return err
	}
	n.serving = buildServing{serving: s, xchg: x, forwarded: make(chan struct{}, maxForwarded), outputs: make(chan uint64, 1024)}
	n.closers = append(n.closers, s.close)
	exchange.ServeLog(n.host, serviceSource{n.svc}, exchange.LogOptions{Logger: n.log})
	n.host.SetStreamHandler(RequestProtocol, n.serveForwarded)
	return nil
}

// runServing puts the outputs of published entries in the store: every
// entry of the log at start (pins last only as long as the process), then
// each one as it is applied. It ends with ctx.
func (n *Node) runServing(ctx context.Context) error {
	go func() {
		if n.serving.serving == nil {
			return
		}
		// indexFinal ends only with an error: ctx's, or a log it cannot read.
		if err := indexFinal(ctx, n.svc, n.serving.idx); ctx.Err() == nil {
			n.log.ErrorContext(ctx, "the served index stopped following the final checkpoints: nothing published from now on is served", "err", err)
		}
	}()
	for i := range uint64(n.svc.Index().Len()) {
		if rec, ok := n.svc.Index().Get(i); ok {
			n.storeOutputs(ctx, rec)
		}
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case i := <-n.serving.outputs:
			if rec, ok := n.svc.Index().Get(i); ok {
				n.storeOutputs(ctx, rec)
			}
		}
	}
}

// servePublished is the applied hook: an entry is in this node's log.
func (n *Node) servePublished(r quorum.ApplyResult) {
	if n.serving.serving == nil || r.Err != nil || r.InputDigest == "" {
		return
	}
	select {
	case n.serving.outputs <- r.Index:
	default:
		n.log.Warn("too many entries applied at once: their outputs go in the store at the next start", "index", r.Index)
	}
}

// mountServing adds the faces to the API's mux.
func (n *Node) mountServing(mux *http.ServeMux) {
	if n.serving.serving != nil {
		n.serving.mount(mux)
	}
}

// storeOutputs puts the published outputs of rec that this node built
// in the store, pinned. A node that did not build the entry, or built
// other bytes, has nothing to add: its content comes from peers.
func (n *Node) storeOutputs(ctx context.Context, rec index.Record) {
	b, err := n.builds.get(rec.InputDigest)
	if err != nil || b == nil {
		return
	}
	var files []storedFile
	switch rec.Ecosystem {
	case publish.EcosystemOCI:
		files, err = ociOutputs(b, rec.Subjects)
	case publish.EcosystemMaven:
		files, err = mavenOutputs(b, rec.Subjects)
	}
	if err != nil {
		n.log.WarnContext(ctx, "the published outputs of a build are not all in its folder", "input", rec.InputDigest, "err", err)
	}
	st := n.serving.store
	var stored []string
	for _, f := range files {
		st.Pin(f.digest)
		if !st.Has(f.digest) {
			if err := putFile(ctx, st, f); err != nil {
				n.log.WarnContext(ctx, "putting a published output in the store", "input", rec.InputDigest, "digest", f.digest, "err", err)
				continue
			}
		}
		stored = append(stored, f.digest)
	}
	if len(stored) > 0 && n.serving.xchg != nil {
		go n.provide(ctx, rec.InputDigest, stored)
	}
}

// provide announces the digests in the network's DHT: peers find this
// node as a provider.
func (n *Node) provide(ctx context.Context, input string, digests []string) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	for _, d := range digests {
		if err := n.serving.xchg.Provide(ctx, d); err != nil {
			if ctx.Err() == nil {
				n.log.WarnContext(ctx, "providing a published output", "input", input, "digest", d, "err", err)
			}
			return
		}
	}
	n.serving.provided.Store(input, true)
}

type storedFile struct {
	digest string
	size   int64 // -1 unknown
	path   string
}

func putFile(ctx context.Context, st *store.Store, f storedFile) error {
	fh, err := os.Open(f.path)
	if err != nil {
		return err
	}
	defer fh.Close()
	return st.Put(ctx, f.digest, f.size, fh)
}

// ociOutputs returns the manifest of each published image subject and
// the config and layers it names, from the build's OCI layout.
func ociOutputs(b *Build, subjects []publish.Subject) ([]storedFile, error) {
	var out []storedFile
	var errs []error
	for _, s := range subjects {
		var layout string
		for _, a := range b.Result.Artifacts {
			if a.Digest == s.Digest {
				layout = filepath.Join(b.Dir, filepath.FromSlash(a.Path))
			}
		}
		if layout == "" {
			continue // another digest than this node's build
		}
		blob := func(d string) (string, error) {
			h, ok := strings.CutPrefix(d, "sha256:")
			if !ok || len(h) != 64 || strings.ContainsAny(h, "/.") {
				return "", fmt.Errorf("digest %q is not sha256:<64 hex>", d)
			}
			return filepath.Join(layout, "blobs", "sha256", h), nil
		}
		mp, err := blob(s.Digest)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		mb, err := readFileLimited(mp, 4<<20)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var m struct {
			Config descriptor   `json:"config"`
			Layers []descriptor `json:"layers"`
		}
		if err := json.Unmarshal(mb, &m); err != nil {
			errs = append(errs, fmt.Errorf("manifest %s: %w", s.Digest, err))
			continue
		}
		out = append(out, storedFile{digest: s.Digest, size: int64(len(mb)), path: mp})
		for _, d := range append([]descriptor{m.Config}, m.Layers...) {
			p, err := blob(d.Digest)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			out = append(out, storedFile{digest: d.Digest, size: d.Size, path: p})
		}
	}
	return out, errors.Join(errs...)
}

type descriptor struct {
	MediaType string `json:"mediaType"`
	Digest    string `json:"digest"`
	Size      int64  `json:"size"`
}

// mavenOutputs returns the build's files that are published subjects.
func mavenOutputs(b *Build, subjects []publish.Subject) ([]storedFile, error) {
	var out []storedFile
	for _, s := range subjects {
		for _, a := range b.Result.Artifacts {
			if a.Digest == s.Digest && a.Name == s.Name {
				out = append(out, storedFile{digest: s.Digest, size: -1, path: filepath.Join(b.Dir, filepath.FromSlash(a.Path))})
				break
			}
		}
	}
	return out, nil
}

// ServingStatus is the serving part of a build node's [Status]: its store
// and the bytes its exchange moved.
type ServingStatus struct {
	Store    store.Stats    `json:"store"`
	Exchange exchange.Stats `json:"exchange"`
}

// servingStatus returns the serving part of the node's status.
func (n *Node) servingStatus() *ServingStatus {
	if n.serving.serving == nil {
		return nil
	}
	s := &ServingStatus{Store: n.serving.store.Stats()}
	if n.serving.xchg != nil {
		s.Exchange = n.serving.xchg.Stats()
	}
	return s
}

// finalLog is what indexFinal reads: the log service's final checkpoints
// and entries.
type finalLog interface {
	WaitFinal(ctx context.Context, size uint64) (*tlog.Checkpoint, error)
	EntryAt(ctx context.Context, index uint64) ([]byte, error)
}

// indexFinal adds to idx the publish entries of log, in order, as final
// checkpoints cover them, until ctx is done: what a build node's faces
// serve is what a client could verify. Entries of other kinds (policy
// changes) are not indexed.
//
// When log also has an Index (the log service's, which indexes every
// publish entry as it is appended), the records are copied from it, and
// only the entries it lacks (policy changes, entries it could not index)
// are read and parsed.
func indexFinal(ctx context.Context, log finalLog, idx *index.Index) error {
	var appended *index.Index
	if li, ok := log.(interface{ Index() *index.Index }); ok {
		appended = li.Index()
	}
	var next uint64
	for {
		cp, err := log.WaitFinal(ctx, next+1)
		if err != nil {
			return err
		}
		var read []uint64
		if appended != nil {
			if read, err = idx.CopyFrom(appended, next, cp.Size); err != nil {
				return fmt.Errorf("indexing entries %d to %d: %w", next, cp.Size-1, err)
			}
		} else {
			for i := next; i < cp.Size; i++ {
				read = append(read, i)
			}
		}
		for _, i := range read {
			b, err := log.EntryAt(ctx, i)
			if err != nil {
				return fmt.Errorf("reading entry %d: %w", i, err)
			}
			e, err := publish.ParseEntry(b)
			if err != nil {
				continue // not a publish entry: nothing to serve
			}
			if err := idx.Add(i, e); err != nil {
				return fmt.Errorf("indexing entry %d: %w", i, err)
			}
		}
		next = cp.Size
	}
}
