package node

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/pyrsia/pyrsia-build/quorum"
)

func bufVote(node string, i int) *quorum.Vote {
	return &quorum.Vote{Node: node, Request: fmt.Sprintf("sha256:%064d", i), InputDigest: fmt.Sprintf("sha256:%064d", i)}
}

// One node's votes for made-up requests push out only its own buffered
// votes; votes are taken by request and expire.
func TestVoteBufferPerNode(t *testing.T) {
	now := time.Unix(1000, 0)
	b := newVoteBuffer(4, time.Minute)
	honest := bufVote("node-a", 7)
	b.add(honest, now)
	for i := range 100 {
		b.add(bufVote("node-c", 1000+i), now)
	}
	if got := b.len(); got != 5 {
		t.Fatalf("buffer holds %d votes, want node-c's last 4 and node-a's 1", got)
	}
	got := b.take(honest.Request, now)
	if len(got) != 1 || got[0] != honest {
		t.Fatalf("take(%s) = %v, want node-a's vote", honest.Request, got)
	}
	if got := b.take(honest.Request, now); len(got) != 0 {
		t.Fatalf("a taken vote came back: %v", got)
	}
	b.expire(now.Add(2 * time.Minute))
	if got := b.len(); got != 0 {
		t.Fatalf("%d votes outlived the buffer's minute", got)
	}
}

// Only the newest verdicts stay on disk.
func TestPruneVerdicts(t *testing.T) {
	dir := t.TempDir()
	base := time.Unix(1_700_000_000, 0)
	for i := range 5 {
		p := filepath.Join(dir, fmt.Sprintf("%d.json", i))
		if err := os.WriteFile(p, []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, base.Add(time.Duration(i)*time.Minute), base.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	if err := pruneVerdicts(dir, 3); err != nil {
		t.Fatal(err)
	}
	des, _ := os.ReadDir(dir)
	var names []string
	for _, de := range des {
		names = append(names, de.Name())
	}
	if want := []string{"2.json", "3.json", "4.json"}; !slices.Equal(names, want) {
		t.Fatalf("kept %v, want %v", names, want)
	}
}
