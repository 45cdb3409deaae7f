package exchange

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/pyrsia/pyrsia-build/publish/logclient"
	"github.com/pyrsia/pyrsia-build/publish/tlog"
	"github.com/pyrsia/pyrsia-build/publish/witness"
)

// TilesProtocol is the stream protocol that serves a node's log as C2SP
// tlog-tiles resources. A request is one message: the resource's path,
// "checkpoint" or a tile path in canonical form ("tile/0/x001/234.p/7",
// "tile/entries/000"), at most [maxTilesRequest] bytes. The response is a
// status byte and one message: the resource's bytes (at most the size of
// its kind: a checkpoint [witness.MaxCheckpointSize], a hash tile 8 KiB,
// an entry bundle 256 entries of the largest size) or, for a status other
// than OK, a short message. Asked for a partial tile that is gone, the
// server answers with the full one, as tlog-tiles allows.
const TilesProtocol protocol.ID = "/pyrsia-build/tiles/1"

const (
	// maxTilesRequest bounds a tiles request: the longest canonical
	// path is well under it.
	maxTilesRequest = 128
	// maxTileSize is the size of a full hash tile.
	maxTileSize = tlog.TileWidth * tlog.HashSize
	// maxBundleSize is the size of a full entry bundle of the largest
	// entries.
	maxBundleSize = tlog.TileWidth * (2 + tlog.MaxEntrySize)
	// checkpointPath names the checkpoint in a tiles request.
	checkpointPath = "checkpoint"
)

// DefaultTimeout is the time one request of either protocol may take,
// from opening the stream to the last byte of its response, unless an
// option says otherwise.
const DefaultTimeout = 30 * time.Second

// LogOptions configure [ServeLog].
type LogOptions struct {
	// Timeout bounds each request, from its first byte to the last byte
	// of its response (default DefaultTimeout).
	Timeout time.Duration
	// MaxConcurrent bounds the requests served at once (default 16);
	// more wait for their turn within their Timeout.
	MaxConcurrent int
	// Logger receives a line for each request that fails (default
	// slog.Default()).
	Logger *slog.Logger
}

// ServeLog serves src on h under [TilesProtocol], to any peer h admits.
// src is typically logclient.OpenDir of the node's log folder. It replaces
// any handler h had for the protocol; h.RemoveStreamHandler(TilesProtocol)
// stops it. Nothing src says is checked here: readers check.
func ServeLog(h host.Host, src logclient.Source, opts LogOptions) {
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = 16
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	s := &tilesServer{src: src, opts: opts, sem: make(chan struct{}, opts.MaxConcurrent)}
	h.SetStreamHandler(TilesProtocol, s.handle)
}

type tilesServer struct {
	src  logclient.Source
	opts LogOptions
	sem  chan struct{}
}

func (s *tilesServer) handle(st network.Stream) {
	defer st.Close()
	ctx, cancel := context.WithTimeout(context.Background(), s.opts.Timeout)
	defer cancel()
	deadline, _ := ctx.Deadline()
	st.SetDeadline(deadline)
	log := s.opts.Logger.With("protocol", string(TilesProtocol), "peer", st.Conn().RemotePeer().String())

	r := bufio.NewReaderSize(st, maxTilesRequest+16)
	path, err := readTilesRequest(r)
	if err != nil {
		log.WarnContext(ctx, "bad tiles request", "err", err)
		writeStatus(st, statusBad, err.Error())
		return
	}
	select {
	case s.sem <- struct{}{}:
		defer func() { <-s.sem }()
	case <-ctx.Done():
		writeStatus(st, statusError, "busy: too many requests at once")
		return
	}
	b, err := s.read(ctx, path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		writeStatus(st, statusNotFound, err.Error())
		return
	case err != nil:
		log.WarnContext(ctx, "reading the log", "path", path, "err", err)
		writeStatus(st, statusError, err.Error())
		return
	}
	w := bufio.NewWriterSize(st, 64<<10)
	err = w.WriteByte(statusOK)
	if err == nil {
		err = writeMessage(w, b)
	}
	if err == nil {
		err = w.Flush()
	}
	if err != nil {
		log.DebugContext(ctx, "writing a tiles response", "path", path, "err", err)
		st.Reset()
	}
}

// read reads the resource path names from the source, checking that it
// fits the limit of its kind.
func (s *tilesServer) read(ctx context.Context, path string) ([]byte, error) {
	var b []byte
	var err error
	limit := int64(witness.MaxCheckpointSize)
	if path == checkpointPath {
		b, err = s.src.ReadCheckpoint(ctx)
	} else {
		id, perr := tlog.ParseTilePath(path) // readTilesRequest parsed it
		if perr != nil {
			return nil, perr
		}
		if id.Entries {
			limit = maxBundleSize
			b, err = s.src.ReadEntryBundle(ctx, id.Index, uint8(id.Width))
		} else {
			limit = maxTileSize
			b, err = s.src.ReadTile(ctx, uint64(id.Level), id.Index, uint8(id.Width))
		}
	}
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is %d bytes, over the %d byte limit of its kind", path, len(b), limit)
	}
	return b, nil
}

// readTilesRequest reads a tiles request and checks its path.
func readTilesRequest(r *bufio.Reader) (string, error) {
	b, err := readMessage(r, maxTilesRequest)
	if err != nil {
		return "", fmt.Errorf("exchange: tiles request: %w", err)
	}
	path := string(b)
	if path == checkpointPath {
		return path, nil
	}
	if _, err := tlog.ParseTilePath(path); err != nil {
		return "", fmt.Errorf("exchange: tiles request: %w (want %q or a tile path such as tile/0/000 or tile/entries/000.p/5)", err, checkpointPath)
	}
	return path, nil
}

// writeTilesRequest writes a tiles request for path.
func writeTilesRequest(w *bufio.Writer, path string) error {
	if len(path) > maxTilesRequest {
		return fmt.Errorf("exchange: tiles request for %q: path over %d bytes", path, maxTilesRequest)
	}
	if err := writeMessage(w, []byte(path)); err != nil {
		return err
	}
	return w.Flush()
}

// readTilesResponse reads a tiles response of at most limit bytes.
func readTilesResponse(r *bufio.Reader, limit int64) ([]byte, error) {
	if err := readStatus(r); err != nil {
		return nil, err
	}
	return readMessage(r, limit)
}
