package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/pyrsia/pyrsia-build/internal/fileread"
	"github.com/pyrsia/pyrsia-build/publish/tlog"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	fmtlog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/tessera/client"
	"github.com/urfave/cli/v2"
	"golang.org/x/mod/sumdb/note"
)

// logSource is a log being read: a local folder or a tlog-tiles URL. Its
// answers are checked against a checkpoint by the caller.
type logSource interface {
	// Checkpoint returns the latest checkpoint's signed note.
	Checkpoint(ctx context.Context) ([]byte, error)
	// Entry returns the entry at index in the tree of size entries.
	Entry(ctx context.Context, index, size uint64) ([]byte, error)
	InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error)
	ConsistencyProof(ctx context.Context, oldSize, newSize uint64) ([][]byte, error)
	Close() error
	// String names the log in messages.
	String() string
}

// logReaderFlags are the flags every reader takes.
func logReaderFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "dir", Usage: "read the log in folder `DIR` (the log must not be served meanwhile)"},
		&cli.StringFlag{Name: "url", Usage: "read the log served at `URL` by any tlog-tiles server or static mirror"},
		&cli.StringFlag{Name: "origin", Usage: "require the log's checkpoints to carry this `ORIGIN` (default: the checkpoint's own)"},
		&cli.StringSliceFlag{Name: "log-key", Usage: "check the checkpoint's signature with the log's public key `FILE` (PREFIX.note.pub); repeat to accept any of several"},
	}
}

// openSource opens the log named by --dir or --url.
func openSource(c *cli.Context) (logSource, error) {
	dir, rawURL := c.String("dir"), c.String("url")
	switch {
	case dir != "" && rawURL != "":
		return nil, inputErr(errors.New("give either --dir or --url, not both"))
	case dir != "":
		return openDirSource(c.Context, dir, c.String("origin"), c.App.ErrWriter)
	case rawURL != "":
		return openURLSource(rawURL)
	}
	return nil, inputErr(errors.New("no log given"),
		"name the log's folder with --dir DIR, or its server with --url URL")
}

// dirSource reads a log folder through package tlog, opened read-only: it
// writes nothing and does not wait for a writer that has the folder open.
type dirSource struct {
	dir string
	*tlog.Log
}

func openDirSource(ctx context.Context, dir, origin string, stderr io.Writer) (*dirSource, error) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, inputErr(fmt.Errorf("log folder %s does not exist", dir),
			"check --dir; 'pyrsia-build log append' makes a log")
	case err != nil:
		return nil, inputErr(fmt.Errorf("log folder: %w", err))
	case !fi.IsDir():
		return nil, inputErr(fmt.Errorf("log folder %s is not a folder", dir))
	}
	// Read the checkpoint before tlog.Open, which would make a new, empty
	// log in a folder that holds none.
	cpPath := filepath.Join(dir, "checkpoint")
	b, err := fileread.ReadFile(ctx, cpPath, "checkpoint", maxCheckpointFileSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, inputErr(fmt.Errorf("%s holds no checkpoint: it is not a log folder, or no checkpoint was cosigned by a majority of its cosigners yet", dir),
			"check --dir; 'pyrsia-build log append' appends entries and publishes a checkpoint once a majority of its --cosigner cosigned it")
	}
	if err != nil {
		return nil, inputErr(fmt.Errorf("reading checkpoint: %w", err))
	}
	if origin == "" {
		cp, err := checkpointBody(b)
		if err != nil {
			return nil, inputErr(fmt.Errorf("%s: %w", cpPath, err))
		}
		origin = cp.Origin
	}
	l, err := tlog.Open(ctx, tlog.Options{Dir: dir, Origin: origin, Logger: cliLogger(stderr), ReadOnly: true})
	if err != nil {
		return nil, openLogErr(dir, err)
	}
	return &dirSource{dir: dir, Log: l}, nil
}

func (s *dirSource) String() string { return "log folder " + s.dir }

func (s *dirSource) Checkpoint(context.Context) ([]byte, error) {
	cp := s.Log.Checkpoint()
	if cp == nil {
		return nil, errors.New("no checkpoint published yet")
	}
	return cp.Note, nil
}

func (s *dirSource) Entry(ctx context.Context, index, _ uint64) ([]byte, error) {
	return s.Log.Entry(ctx, index)
}

// urlSource reads a log served over HTTP with the tessera client.
type urlSource struct {
	url string
	f   *client.HTTPFetcher
	t   *logTransport
	pbs map[uint64]*client.ProofBuilder
}

// maxResponseSize bounds every response read from a log server: an entry
// bundle of 256 entries of the largest size fits.
const maxResponseSize = 32 << 20

func openURLSource(rawURL string) (*urlSource, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, inputErr(fmt.Errorf("--url %q is not an http:// or https:// URL", rawURL),
			"give the URL the log is served at, such as http://127.0.0.1:8080/ (the folder holding 'checkpoint' and 'tile/')")
	}
	t := &logTransport{RoundTripper: http.DefaultTransport, max: maxResponseSize}
	f, err := client.NewHTTPFetcher(u, &http.Client{Timeout: time.Minute, Transport: t})
	if err != nil {
		return nil, inputErr(fmt.Errorf("--url %s: %w", rawURL, err))
	}
	return &urlSource{url: u.String(), f: f, t: t, pbs: make(map[uint64]*client.ProofBuilder)}, nil
}

func (s *urlSource) String() string { return "log at " + s.url }
func (s *urlSource) Close() error   { return nil }

func (s *urlSource) Checkpoint(ctx context.Context) ([]byte, error) {
	b, err := s.f.ReadCheckpoint(ctx)
	return b, s.t.explain(err)
}

func (s *urlSource) Entry(ctx context.Context, index, size uint64) ([]byte, error) {
	n := index / tlog.TileWidth
	b, err := client.GetEntryBundle(ctx, s.f.ReadEntryBundle, n, size)
	if err != nil {
		return nil, s.t.explain(err)
	}
	i := index % tlog.TileWidth
	if i >= uint64(len(b.Entries)) {
		return nil, fmt.Errorf("entry bundle %d holds %d entries, want at least %d", n, len(b.Entries), i+1)
	}
	return b.Entries[i], nil
}

func (s *urlSource) proofBuilder(ctx context.Context, size uint64) (*client.ProofBuilder, error) {
	if pb, ok := s.pbs[size]; ok {
		return pb, nil
	}
	pb, err := client.NewProofBuilder(ctx, size, s.f.ReadTile)
	if err != nil {
		return nil, err
	}
	s.pbs[size] = pb
	return pb, nil
}

func (s *urlSource) InclusionProof(ctx context.Context, index, size uint64) ([][]byte, error) {
	pb, err := s.proofBuilder(ctx, size)
	if err != nil {
		return nil, err
	}
	p, err := pb.InclusionProof(ctx, index)
	return p, s.t.explain(err)
}

func (s *urlSource) ConsistencyProof(ctx context.Context, oldSize, newSize uint64) ([][]byte, error) {
	pb, err := s.proofBuilder(ctx, newSize)
	if err != nil {
		return nil, err
	}
	p, err := pb.ConsistencyProof(ctx, oldSize, newSize)
	return p, s.t.explain(err)
}

// logTransport fails responses whose body is longer than max bytes, so
// that a misbehaving server cannot fill memory, and remembers the last
// request that failed, so that errors can name it plainly (the tessera
// client flattens them).
type logTransport struct {
	http.RoundTripper
	max int64

	mu   sync.Mutex
	last error
}

func (t *logTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.RoundTripper.RoundTrip(req)
	if err != nil {
		t.remember(fmt.Errorf("GET %s: %w", req.URL, err))
		return nil, err
	}
	if resp.StatusCode == http.StatusOK {
		t.remember(nil) // a partial tile's 404 before its full tile's 200 is no failure
	} else {
		t.remember(fmt.Errorf("GET %s: %s", req.URL, resp.Status))
	}
	resp.Body = &limitedBody{r: io.LimitReader(resp.Body, t.max+1), c: resp.Body, left: t.max + 1, url: req.URL.String()}
	return resp, nil
}

func (t *logTransport) remember(err error) {
	t.mu.Lock()
	t.last = err
	t.mu.Unlock()
}

// explain returns the failed request behind err, if one was remembered.
func (t *logTransport) explain(err error) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err == nil || t.last == nil {
		return err
	}
	last := t.last
	t.last = nil
	return trimmed{last.Error(), err} // the request's error, unwrapping to err
}

type limitedBody struct {
	r    io.Reader
	c    io.Closer
	left int64
	url  string
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	b.left -= int64(n)
	if b.left <= 0 {
		return n, fmt.Errorf("response from %s is over the %d byte limit", b.url, maxResponseSize)
	}
	return n, err
}

func (b *limitedBody) Close() error { return b.c.Close() }

// readCheckpoint reads the source's checkpoint and checks it: its origin
// against --origin, and its signature against --log-key when given. It
// returns the checkpoint, its note and the log verifier whose signature
// verified (nil without --log-key).
func readCheckpoint(c *cli.Context, src logSource) (*fmtlog.Checkpoint, []byte, note.Verifier, error) {
	logKeys, err := readVerifiers(c.StringSlice("log-key"), "log-key", false)
	if err != nil {
		return nil, nil, nil, err
	}
	b, err := src.Checkpoint(c.Context)
	if err != nil {
		hint := "check --dir"
		if _, ok := src.(*urlSource); ok {
			hint = "check --url: it names the folder that holds 'checkpoint' and 'tile/', and a log must be served there"
			if errors.Is(err, fs.ErrNotExist) {
				hint = "the server has no checkpoint there: check --url, or wait until the log publishes one"
			}
		}
		return nil, nil, nil, inputErr(fmt.Errorf("%s: reading checkpoint: %w", src, err), hint)
	}
	cp, err := checkpointBody(b)
	if err != nil {
		return nil, nil, nil, failed(fmt.Errorf("%s: checkpoint: %w", src, err))
	}
	origin := c.String("origin")
	if origin != "" && cp.Origin != origin {
		return nil, nil, nil, failed(fmt.Errorf("%s: checkpoint is for log %q, want %q", src, cp.Origin, origin),
			"check --origin, or that --url/--dir is the log you mean")
	}
	if len(logKeys) == 0 {
		return cp, b, nil, nil
	}
	var errs []error
	for _, v := range logKeys {
		if _, _, err := witness.ParseCheckpoint(b, cp.Origin, v); err != nil {
			errs = append(errs, trimWitness(err))
			continue
		}
		return cp, b, v, nil
	}
	return nil, nil, nil, failed(fmt.Errorf("%s: checkpoint not verified: %w", src, errors.Join(errs...)),
		"--log-key takes the public key of the log (PREFIX.note.pub of the key given to 'log append --key')")
}

// checkpointBody parses a checkpoint note's body without checking any
// signature.
//
// Helper logic: it belongs in package witness (say
// witness.ParseCheckpointUnverified), next to ParseCheckpoint.
func checkpointBody(b []byte) (*fmtlog.Checkpoint, error) {
	if len(b) > witness.MaxCheckpointSize {
		return nil, fmt.Errorf("%d bytes is over the %d byte limit", len(b), witness.MaxCheckpointSize)
	}
	_, err := note.Open(b, note.VerifierList())
	var unverified *note.UnverifiedNoteError
	if !errors.As(err, &unverified) {
		if err == nil {
			err = errors.New("no signatures")
		}
		return nil, fmt.Errorf("not a signed note: %w", err)
	}
	cp, err := witness.ParseCheckpointText([]byte(unverified.Note.Text))
	if err != nil {
		return nil, trimWitness(err)
	}
	return cp, nil
}
