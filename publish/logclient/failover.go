package logclient

import (
	"context"
	"errors"
	"strings"
	"sync"
)

// Failover returns a Source that reads from the first of srcs that answers:
// each read tries the one that answered last, then the others in order,
// and fails only if all fail (with every error). It suits a follower that
// may read from any build node or mirror: as every answer is checked,
// any of them will do. A read skips a source that is away or has not got
// a tile yet; one that answers with wrong bytes is not skipped by the
// read (its answer fails the check), but a [Follower] given a Failover
// reads its sources one at a time and goes on with the next when one
// fails its poll for any reason.
//
// A Failover among srcs counts as its members, in its place: the result
// reads one flat list.
func Failover(srcs ...Source) Source {
	var flat []Source
	for _, s := range srcs {
		if f, ok := s.(*failover); ok {
			flat = append(flat, f.srcs...)
			continue
		}
		flat = append(flat, s)
	}
	return &failover{srcs: flat}
}

type failover struct {
	srcs []Source

	mu   sync.Mutex
	good int // the source that answered last
}

func (f *failover) String() string {
	names := make([]string, len(f.srcs))
	for i, s := range f.srcs {
		names[i] = s.String()
	}
	return "logs " + strings.Join(names, ", ")
}

func (f *failover) Close() error {
	var errs []error
	for _, s := range f.srcs {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}

func (f *failover) try(ctx context.Context, read func(Source) ([]byte, error)) ([]byte, error) {
	if len(f.srcs) == 0 {
		return nil, errors.New("logclient: no sources")
	}
	f.mu.Lock()
	first := f.good
	f.mu.Unlock()
	var errs []error
	for k := range f.srcs {
		i := (first + k) % len(f.srcs)
		b, err := read(f.srcs[i])
		if err == nil {
			f.mu.Lock()
			f.good = i
			f.mu.Unlock()
			return b, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

func (f *failover) ReadCheckpoint(ctx context.Context) ([]byte, error) {
	return f.try(ctx, func(s Source) ([]byte, error) { return s.ReadCheckpoint(ctx) })
}

func (f *failover) ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
	return f.try(ctx, func(s Source) ([]byte, error) { return s.ReadTile(ctx, level, index, p) })
}

func (f *failover) ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error) {
	return f.try(ctx, func(s Source) ([]byte, error) { return s.ReadEntryBundle(ctx, index, p) })
}
