package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"strings"

	"github.com/pyrsia/pyrsia-build/publish/logclient"
	"github.com/pyrsia/pyrsia-build/publish/logservice"
	"github.com/pyrsia/pyrsia-build/publish/tlog"
)

// serviceSource is the logclient.Source of a build node's own log: its
// latest final checkpoint and the tiles under it, read from the log in
// memory and on disk (no second open of the folder). It serves the log to
// peers under the exchange's tiles protocol.
type serviceSource struct{ svc *logservice.Service }

func (s serviceSource) String() string { return "this node's log" }
func (s serviceSource) Close() error   { return nil }

func (s serviceSource) ReadCheckpoint(ctx context.Context) ([]byte, error) {
	cp := s.svc.Final()
	if cp == nil {
		return nil, fmt.Errorf("no final checkpoint yet: %w", fs.ErrNotExist)
	}
	return cp.Note, nil
}

func (s serviceSource) ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
	if level > 63 {
		return nil, fmt.Errorf("tile level %d: %w", level, fs.ErrNotExist)
	}
	return s.read(ctx, tlog.TileID{Level: uint8(level), Index: index, Width: uint16(p)})
}

func (s serviceSource) ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error) {
	return s.read(ctx, tlog.TileID{Entries: true, Index: index, Width: uint16(p)})
}

func (s serviceSource) read(ctx context.Context, id tlog.TileID) ([]byte, error) {
	b, err := s.svc.Log().ReadTile(ctx, id)
	if errors.Is(err, tlog.ErrNotPublished) {
		return nil, fmt.Errorf("%w (%w)", fs.ErrNotExist, err)
	}
	return b, err
}

// sourceHandler serves a logclient.Source as C2SP tlog-tiles over HTTP:
// GET /checkpoint (from checkpoint: the one last verified) and /tile/...
// (a regular node passes its log on, so that
// others may follow it by URL; they check what they read, as it did).
func sourceHandler(src logclient.Source, checkpoint func() ([]byte, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			http.Error(w, "only GET and HEAD", http.StatusMethodNotAllowed)
			return
		}
		path := strings.TrimPrefix(r.URL.Path, "/")
		var b []byte
		var err error
		if path == "checkpoint" {
			b, err = checkpoint()
			w.Header().Set("Cache-Control", "no-cache")
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		} else {
			id, perr := tlog.ParseTilePath(path)
			if perr != nil {
				http.Error(w, perr.Error(), http.StatusNotFound)
				return
			}
			if id.Entries {
				b, err = src.ReadEntryBundle(r.Context(), id.Index, uint8(id.Width))
			} else {
				b, err = src.ReadTile(r.Context(), uint64(id.Level), id.Index, uint8(id.Width))
			}
			w.Header().Set("Content-Type", "application/octet-stream")
		}
		switch {
		case errors.Is(err, fs.ErrNotExist):
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		case err != nil:
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Write(b)
	})
}
