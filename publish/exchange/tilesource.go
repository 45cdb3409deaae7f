package exchange

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pyrsia/pyrsia-build/publish/logclient"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	"github.com/transparency-dev/tessera/api/layout"
)

// PeerSourceOptions configure [NewPeerSource].
type PeerSourceOptions struct {
	// Timeout bounds each request, from opening the stream to the last
	// byte of the response (default DefaultTimeout).
	Timeout time.Duration
}

// NewPeerSource returns the logclient.Source that reads the log the peers
// serve under [TilesProtocol] (see [ServeLog]), over h. With several peers
// each read goes to the one that answered last, then to the others
// (logclient.Failover). h must be able to reach the peers: connected, or
// with their addresses in its peerstore. As for any Source, nothing read
// is trusted: a logclient.Client checks it.
func NewPeerSource(h host.Host, peers []peer.ID, opts PeerSourceOptions) (logclient.Source, error) {
	if len(peers) == 0 {
		return nil, errors.New("exchange: log over libp2p: no peers to read it from")
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	srcs := make([]logclient.Source, len(peers))
	for i, p := range peers {
		srcs[i] = &peerSource{h: h, p: p, timeout: opts.Timeout}
	}
	if len(srcs) == 1 {
		return srcs[0], nil
	}
	return logclient.Failover(srcs...), nil
}

type peerSource struct {
	h       host.Host
	p       peer.ID
	timeout time.Duration
}

func (s *peerSource) String() string { return "log of peer " + s.p.String() }
func (s *peerSource) Close() error   { return nil }

func (s *peerSource) ReadCheckpoint(ctx context.Context) ([]byte, error) {
	return s.get(ctx, checkpointPath, witness.MaxCheckpointSize)
}

func (s *peerSource) ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
	if level > 63 {
		return nil, fmt.Errorf("tile level %d: %w", level, fs.ErrNotExist)
	}
	return s.partialOrFull(ctx, p, maxTileSize, func(p uint8) string { return layout.TilePath(level, index, p) })
}

func (s *peerSource) ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error) {
	return s.partialOrFull(ctx, p, maxBundleSize, func(p uint8) string { return layout.EntriesPath(index, p) })
}

// partialOrFull reads a partial resource and, if it is gone (the tile
// filled up since), the full one.
func (s *peerSource) partialOrFull(ctx context.Context, p uint8, limit int64, path func(uint8) string) ([]byte, error) {
	b, err := s.get(ctx, path(p), limit)
	if p != 0 && errors.Is(err, fs.ErrNotExist) {
		return s.get(ctx, path(0), limit)
	}
	return b, err
}

// get asks the peer for path and reads at most limit bytes of answer.
func (s *peerSource) get(ctx context.Context, path string, limit int64) (b []byte, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("exchange: %s from peer %s: %w", path, s.p, err)
		}
	}()
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	st, err := s.h.NewStream(ctx, s.p, TilesProtocol)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	deadline, _ := ctx.Deadline()
	st.SetDeadline(deadline)
	if err := writeTilesRequest(bufio.NewWriter(st), path); err != nil {
		st.Reset()
		return nil, err
	}
	st.CloseWrite()
	b, err = readTilesResponse(bufio.NewReader(st), limit)
	if err != nil {
		st.Reset()
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w (%w)", ctx.Err(), err)
		}
		return nil, err
	}
	return b, nil
}
