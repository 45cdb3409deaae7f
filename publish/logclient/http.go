package logclient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/pyrsia/pyrsia-build/publish/witness"
	"github.com/transparency-dev/tessera/api/layout"
)

// ErrTooLarge is wrapped by the error for a response over its size limit.
// Use errors.Is.
var ErrTooLarge = errors.New("logclient: response too large")

// URLOptions configure [OpenURL].
type URLOptions struct {
	// Client makes the requests (default: one with a one-minute timeout).
	// Whatever it is, every response body is read through a size limit.
	Client *http.Client
	// MaxResponseSize, if set, lowers the limit of every response; by
	// default each kind has its own: a checkpoint witness.MaxCheckpointSize,
	// a hash tile 8 KiB, an entry bundle 256 entries of the largest size.
	MaxResponseSize int64
}

// OpenURL returns the Source for the log served at rawURL by any
// tlog-tiles server or static mirror: the URL of the folder that holds
// "checkpoint" and "tile/".
func OpenURL(rawURL string, opts URLOptions) (Source, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, &Error{Source: rawURL, Err: errors.New("not an http:// or https:// URL"),
			Hint: "give the URL the log is served at, such as http://127.0.0.1:8080/ (the folder holding 'checkpoint' and 'tile/')"}
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	u.RawQuery, u.Fragment = "", ""
	c := opts.Client
	if c == nil {
		c = &http.Client{Timeout: time.Minute}
	}
	return &urlSource{root: u, c: c, max: opts.MaxResponseSize}, nil
}

type urlSource struct {
	root *url.URL
	c    *http.Client
	max  int64
}

func (s *urlSource) String() string { return "log at " + s.root.String() }
func (s *urlSource) Close() error   { return nil }

func (s *urlSource) ReadCheckpoint(ctx context.Context) ([]byte, error) {
	return s.get(ctx, layout.CheckpointPath, witness.MaxCheckpointSize)
}

func (s *urlSource) ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
	return s.partialOrFull(ctx, p, maxTileSize, func(p uint8) string { return layout.TilePath(level, index, p) })
}

func (s *urlSource) ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error) {
	return s.partialOrFull(ctx, p, maxBundleSize, func(p uint8) string { return layout.EntriesPath(index, p) })
}

// partialOrFull fetches a partial resource and, if it is gone (the tile
// filled up since), the full one.
func (s *urlSource) partialOrFull(ctx context.Context, p uint8, limit int64, path func(uint8) string) ([]byte, error) {
	b, err := s.get(ctx, path(p), limit)
	if p != 0 && errors.Is(err, fs.ErrNotExist) {
		return s.get(ctx, path(0), limit)
	}
	return b, err
}

// get fetches one path under the root, reading at most limit bytes.
func (s *urlSource) get(ctx context.Context, path string, limit int64) ([]byte, error) {
	if s.max > 0 && s.max < limit {
		limit = s.max
	}
	u := s.root.JoinPath(path).String()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	resp, err := s.c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // it names the URL again
		}
		return nil, fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, fmt.Errorf("GET %s: status %d: %w", u, resp.StatusCode, fs.ErrNotExist)
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	case resp.ContentLength > limit:
		return nil, fmt.Errorf("GET %s: %w: %d bytes announced, over the %d byte limit", u, ErrTooLarge, resp.ContentLength, limit)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("GET %s: reading the response: %w", u, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("GET %s: %w: over the %d byte limit", u, ErrTooLarge, limit)
	}
	return b, nil
}
