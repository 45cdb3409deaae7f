package logclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/pyrsia/pyrsia-build/internal/fileread"
	"github.com/pyrsia/pyrsia-build/publish/tlog"
	"github.com/pyrsia/pyrsia-build/publish/witness"
)

// DirOptions configure [OpenDir].
type DirOptions struct {
	// Origin is the log's origin; empty means the one its checkpoint names.
	Origin string
	// Logger receives the log's recovery messages (default slog.Default()).
	Logger *slog.Logger
}

// OpenDir returns the Source for the log in folder dir, opened read-only
// with package tlog (tlog.Options.ReadOnly): it writes nothing, takes no
// lock, and reads beside a writer that has the folder open.
//
// Opening replays and checks the whole log, so it costs time in the
// number of entries. The log is read as of the last open: when
// ReadCheckpoint finds that the folder's checkpoint changed, it opens the
// log again, so that a Follower of a folder sees new checkpoints.
func OpenDir(ctx context.Context, dir string, opts DirOptions) (Source, error) {
	s := &dirSource{dir: dir, origin: opts.Origin, logger: opts.Logger}
	b, err := s.readCheckpointFile(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.open(ctx, b); err != nil {
		return nil, err
	}
	return s, nil
}

type dirSource struct {
	dir    string
	origin string
	logger *slog.Logger

	mu  sync.Mutex
	log *tlog.Log
}

func (s *dirSource) String() string { return "log folder " + s.dir }

func (s *dirSource) fail(err error, hint string) error {
	return &Error{Source: s.String(), Err: err, Hint: hint}
}

// readCheckpointFile reads DIR/checkpoint, before tlog.Open, which would
// take any folder for a log.
func (s *dirSource) readCheckpointFile(ctx context.Context) ([]byte, error) {
	fi, err := os.Stat(s.dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, s.fail(tag(err, "does not exist"), "check the folder's name; 'pyrsia-build log append' makes a log")
	case err != nil:
		return nil, s.fail(err, "")
	case !fi.IsDir():
		return nil, s.fail(errors.New("not a folder"), "name the folder that holds 'checkpoint' and 'tile/'")
	}
	b, err := fileread.ReadFile(ctx, filepath.Join(s.dir, "checkpoint"), "checkpoint", witness.MaxCheckpointSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, s.fail(tag(err, "holds no checkpoint: it is not a log folder, or no checkpoint was cosigned by a majority of its cosigners yet"),
			"check the folder's name; 'pyrsia-build log append' appends entries and publishes a checkpoint once a majority of its --cosigner cosigned it")
	}
	if err != nil {
		return nil, s.fail(err, "") // fileread names the file
	}
	return b, nil
}

// open opens the log read-only, its checkpoint being b.
func (s *dirSource) open(ctx context.Context, b []byte) error {
	origin := s.origin
	if origin == "" {
		cp, err := parseUnverified(b)
		if err != nil {
			return s.fail(fmt.Errorf("%s: %w", filepath.Join(s.dir, "checkpoint"), trimmed{err}), "the folder's checkpoint file is damaged: read the log from another build node or mirror")
		}
		origin = cp.Origin
	}
	l, err := tlog.Open(ctx, tlog.Options{Dir: s.dir, Origin: origin, Logger: s.logger, ReadOnly: true})
	if err != nil {
		var ce *tlog.CorruptError
		hint := ""
		if errors.As(err, &ce) {
			hint = ce.Hint
		}
		return s.fail(trimmed{err}, hint)
	}
	s.mu.Lock()
	old := s.log
	s.log = l
	s.mu.Unlock()
	if old != nil {
		old.Close()
	}
	return nil
}

func (s *dirSource) current() *tlog.Log {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.log
}

func (s *dirSource) ReadCheckpoint(ctx context.Context) ([]byte, error) {
	l := s.current()
	if l == nil {
		return nil, tlog.ErrClosed
	}
	b, err := s.readCheckpointFile(ctx)
	if err != nil {
		return nil, err
	}
	if cp := l.Checkpoint(); cp == nil || !bytes.Equal(cp.Note, b) {
		if err := s.open(ctx, b); err != nil {
			return nil, err
		}
		l = s.current()
	}
	cp := l.Checkpoint()
	if cp == nil {
		return nil, fmt.Errorf("no checkpoint published yet: %w", fs.ErrNotExist)
	}
	return cp.Note, nil
}

func (s *dirSource) ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
	if level > 63 {
		return nil, fmt.Errorf("tile level %d: %w", level, fs.ErrNotExist)
	}
	return s.read(ctx, tlog.TileID{Level: uint8(level), Index: index, Width: uint16(p)})
}

func (s *dirSource) ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error) {
	return s.read(ctx, tlog.TileID{Entries: true, Index: index, Width: uint16(p)})
}

func (s *dirSource) read(ctx context.Context, id tlog.TileID) ([]byte, error) {
	l := s.current()
	if l == nil {
		return nil, tlog.ErrClosed
	}
	b, err := l.ReadTile(ctx, id)
	if errors.Is(err, tlog.ErrNotPublished) {
		return nil, fmt.Errorf("%s: %w (%w)", id.Path(), fs.ErrNotExist, err)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", id.Path(), err)
	}
	return b, nil
}

func (s *dirSource) Close() error {
	s.mu.Lock()
	l := s.log
	s.log = nil
	s.mu.Unlock()
	if l == nil {
		return nil
	}
	return l.Close()
}
