package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/index"
	"github.com/pyrsia/pyrsia-build/publish/tlog"
)

// memFinalLog is a log whose final size the test moves (unit test only:
// the real one is the log service).
type memFinalLog struct {
	mu      sync.Mutex
	entries [][]byte
	final   uint64
	grown   chan struct{}
}

func (l *memFinalLog) setFinal(n uint64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.final = n
	close(l.grown)
	l.grown = make(chan struct{})
}

func (l *memFinalLog) WaitFinal(ctx context.Context, size uint64) (*tlog.Checkpoint, error) {
	for {
		l.mu.Lock()
		final, grown := l.final, l.grown
		l.mu.Unlock()
		if final >= size {
			cp := &tlog.Checkpoint{}
			cp.Size = final
			return cp, nil
		}
		select {
		case <-grown:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (l *memFinalLog) EntryAt(_ context.Context, i uint64) ([]byte, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if i >= uint64(len(l.entries)) {
		return nil, fmt.Errorf("no entry %d", i)
	}
	return l.entries[i], nil
}

// A build node's faces serve an entry only once a final checkpoint covers
// it: the log service indexes an entry as soon as it is durable, before a
// majority has cosigned it (a review found the faces used that index).
func TestServedIndexFollowsFinalCheckpoints(t *testing.T) {
	root := t.TempDir()
	var keys []*Keys
	for i := range 2 {
		name := fmt.Sprintf("node-%c", 'a'+i)
		keys = append(keys, testKeys(t, filepath.Join(root, name), name))
	}
	log := &memFinalLog{grown: make(chan struct{})}
	for i := range 3 {
		e, err := benchEntry(i, keys)
		if err != nil {
			t.Fatal(err)
		}
		log.entries = append(log.entries, e)
	}
	log.entries = append(log.entries[:1], append([][]byte{[]byte(`{"v":1,"kind":"policy"}`)}, log.entries[1:]...)...)
	idx, err := index.New()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- indexFinal(ctx, log, idx) }()

	waitLen := func(want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for idx.Len() != want {
			if time.Now().After(deadline) {
				t.Fatalf("the served index has %d entries, want %d", idx.Len(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// Four entries are durable (the second not a publish entry), none final.
	time.Sleep(50 * time.Millisecond)
	if idx.Len() != 0 {
		t.Fatalf("the served index has %d entries before any checkpoint is final", idx.Len())
	}
	log.setFinal(1)
	waitLen(1)
	log.setFinal(3) // covers the policy entry and one more publish entry
	waitLen(2)
	if _, ok := idx.Get(3); ok {
		t.Fatal("entry 3 is served before a final checkpoint covers it")
	}
	log.setFinal(4)
	waitLen(3)
	if _, ok := idx.Get(3); !ok {
		t.Fatal("entry 3 is final but not served")
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("indexFinal ended with %v, want context.Canceled", err)
	}
}

// indexedFinalLog is a memFinalLog with the log service's index of its
// appended entries; it counts the entries read.
type indexedFinalLog struct {
	*memFinalLog
	idx   *index.Index
	reads []uint64
}

func (l *indexedFinalLog) Index() *index.Index { return l.idx }

func (l *indexedFinalLog) EntryAt(ctx context.Context, i uint64) ([]byte, error) {
	l.mu.Lock()
	l.reads = append(l.reads, i)
	l.mu.Unlock()
	return l.memFinalLog.EntryAt(ctx, i)
}

// With the log service's index at hand, the served index copies its
// records and reads (and parses) only the entries it lacks: the policy
// change, and a publish entry it did not index (one appended as a
// checkpoint was being signed, say). It still follows the final
// checkpoints only.
func TestServedIndexCopiesTheAppendedIndex(t *testing.T) {
	root := t.TempDir()
	var keys []*Keys
	for i := range 2 {
		name := fmt.Sprintf("node-%c", 'a'+i)
		keys = append(keys, testKeys(t, filepath.Join(root, name), name))
	}
	mem := &memFinalLog{grown: make(chan struct{})}
	appended, _ := index.New()
	for i := range 3 {
		b, err := benchEntry(i, keys)
		if err != nil {
			t.Fatal(err)
		}
		mem.entries = append(mem.entries, b)
	}
	mem.entries = append(mem.entries[:1], append([][]byte{[]byte(`{"v":1,"kind":"policy"}`)}, mem.entries[1:]...)...)
	for _, i := range []uint64{0, 3} { // not 2
		e, err := publish.ParseEntry(mem.entries[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := appended.Add(i, e); err != nil {
			t.Fatal(err)
		}
	}
	log := &indexedFinalLog{memFinalLog: mem, idx: appended}
	idx, _ := index.New()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- indexFinal(ctx, log, idx) }()
	waitLen := func(want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for idx.Len() != want {
			if time.Now().After(deadline) {
				t.Fatalf("the served index has %d entries, want %d", idx.Len(), want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	mem.setFinal(3)
	waitLen(2)
	if _, ok := idx.Get(3); ok {
		t.Fatal("entry 3 is served before a final checkpoint covers it")
	}
	mem.setFinal(4)
	waitLen(3)
	for _, i := range []uint64{0, 2, 3} {
		if _, ok := idx.Get(i); !ok {
			t.Errorf("entry %d is final but not served", i)
		}
	}
	cancel()
	<-done
	log.mu.Lock()
	defer log.mu.Unlock()
	if !slices.Equal(log.reads, []uint64{1, 2}) {
		t.Errorf("entries read %v, want [1 2]: those the appended index lacks", log.reads)
	}
}
