package tlog

import (
	"context"
	"testing"
)

// publishCommit publishes a candidate and commits it as it is (a log
// without cosigners).
func publishCommit(l *Log, ctx context.Context) (*Checkpoint, error) {
	cp, err := l.Publish(ctx)
	if err != nil {
		return nil, err
	}
	if err := l.Commit(cp.Note); err != nil {
		return nil, err
	}
	return l.Checkpoint(), nil
}

// ackedEntries are the entries a log acknowledged, by index.
type ackedEntries map[uint64][]byte

// add appends entry(i) for the next n indexes past those acknowledged,
// recording each one acknowledged, and returns the first error.
func (a ackedEntries) add(ctx context.Context, l *Log, n int) error {
	for range n {
		i := len(a)
		if _, err := l.Append(ctx, entry(i)); err != nil {
			return err
		}
		a[uint64(i)] = entry(i)
	}
	return nil
}

// crashRecover closes l, cuts the power of m and opens the log again
// (with mod): every entry of a and the checkpoint last must be there.
// The caller closes the log it returns.
func crashRecover(t *testing.T, l *Log, m *memFS, mod func(*Options), what string, a ackedEntries, last *Checkpoint) *Log {
	t.Helper()
	l.Close()
	m.Crash(nil)
	l, got, err := reopen(t, m, mod)
	if err != nil {
		t.Fatalf("%s: Open after the power cut: %v", what, err)
	}
	checkRecovered(t, what, l, got, a, last)
	return l
}

// openMem opens a log in m with mod and appends n entries: entry(0) to
// entry(n-1).
func openMem(t *testing.T, m *memFS, mod func(*Options), n int) (*Log, ackedEntries) {
	t.Helper()
	ctx := context.Background()
	l, err := Open(ctx, memOptions(m, mod))
	if err != nil {
		t.Fatal(err)
	}
	acked := ackedEntries{}
	if err := acked.add(ctx, l, n); err != nil {
		t.Fatal(err)
	}
	return l, acked
}
