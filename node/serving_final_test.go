package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

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
