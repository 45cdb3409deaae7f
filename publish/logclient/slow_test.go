package logclient

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// slowSource is a source that replays a real log, each answer just under
// the follower's ReadTimeout: no read fails, every poll crawls.
type slowSource struct {
	Source
	name    string
	delay   time.Duration
	fast    int64        // the reads before the first bundle past this many answer at once
	bundles atomic.Int64 // entry bundles read
	reads   atomic.Int64 // every read
}

func (s *slowSource) wait(ctx context.Context) error {
	s.reads.Add(1)
	if s.fast > 0 && s.bundles.Load() <= s.fast {
		return nil
	}
	select {
	case <-time.After(s.delay):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *slowSource) ReadCheckpoint(ctx context.Context) ([]byte, error) {
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	return s.Source.ReadCheckpoint(ctx)
}

func (s *slowSource) ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	return s.Source.ReadTile(ctx, level, index, p)
}

func (s *slowSource) ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error) {
	s.bundles.Add(1)
	if err := s.wait(ctx); err != nil {
		return nil, err
	}
	return s.Source.ReadEntryBundle(ctx, index, p)
}

func (s *slowSource) String() string { return s.name + " " + s.Source.String() }

// Timings of the slow source tests: every read answers in 50 ms, within
// the 250 ms ReadTimeout (a busy machine adds to it); a poll of one
// source may take 500 ms: 10 reads at most. Reading the log's 6000
// entries from the slow source takes over 25 reads (24 bundles, the
// checkpoint, the tiles of the proofs).
const (
	slowEntries     = 6000
	slowBundles     = 24
	slowDelay       = 50 * time.Millisecond
	slowReadTimeout = 250 * time.Millisecond
	slowPollTimeout = 500 * time.Millisecond
	slowMaxReads    = int64(slowPollTimeout/slowDelay) + 1
)

// TestFollowerLeavesASlowSource: a poll spends at most PollTimeout on a
// source that answers every read in time, but slowly; it then goes on
// with the next source, keeping the entries it visited. Alone, the slow
// source has each poll end at the deadline with an error that names it,
// and each poll reads on where the last stopped. Before, nothing bounded
// a poll: a mirror replaying the log just under ReadTimeout held the
// follower for as long as the log took to replay (hours for 100,000
// entries).
func TestFollowerLeavesASlowSource(t *testing.T) {
	ctx := context.Background()
	net := newNetwork(t, 1)
	tl := newTestLog(t, net, "a")
	tl.append(slowEntries, "a")
	tl.publish(1)
	follower := func(src Source, v *visits) *Follower {
		f, err := NewFollower(ctx, FollowerOptions{Source: src, Trust: net.trust(0), StateDir: t.TempDir(), Visit: v.visit,
			ReadTimeout: slowReadTimeout, PollTimeout: slowPollTimeout})
		if err != nil {
			t.Fatal(err)
		}
		return f
	}

	slow := &slowSource{Source: openDir(t, tl.dir), name: "slow", delay: slowDelay}
	v := &visits{}
	f := follower(Failover(slow, openDir(t, tl.dir)), v)
	if err := f.Poll(ctx); err != nil {
		t.Fatalf("a slow source, then a good one: %v", err)
	}
	v.check(t, "a", slowEntries)
	// Reads, not wall time: the machine may be busy.
	if n := slow.reads.Load(); n > slowMaxReads || slow.bundles.Load() == 0 {
		t.Errorf("the slow source had %d reads (%d of entry bundles), want some and at most %d (PollTimeout %s, %s a read)",
			n, slow.bundles.Load(), slowMaxReads, slowPollTimeout, slowDelay)
	}

	// Alone: each poll ends at the deadline, and the next reads on.
	slow = &slowSource{Source: openDir(t, tl.dir), name: "slow", delay: slowDelay}
	v = &visits{}
	f = follower(slow, v)
	var next uint64
	for poll := 1; ; poll++ {
		before := slow.reads.Load()
		err := f.Poll(ctx)
		if n := slow.reads.Load() - before; n > slowMaxReads {
			t.Errorf("poll %d had %d reads, want at most %d", poll, n, slowMaxReads)
		}
		if err == nil {
			break
		}
		if !errors.Is(err, ErrPollTimeout) || !strings.Contains(err.Error(), slow.String()) || !strings.Contains(err.Error(), "PollTimeout") {
			t.Fatalf("poll %d: %v, want ErrPollTimeout naming %s", poll, err, slow)
		}
		st := f.Status()
		if st.Next <= next && poll > 1 {
			t.Fatalf("poll %d made no progress: next entry %d", poll, st.Next)
		}
		next = st.Next
		if poll > 40 {
			t.Fatalf("poll %d still reading: %v", poll, err)
		}
	}
	v.check(t, "a", slowEntries)
}

// TestChainFollowerLeavesASlowSource: a chain follower reads the tree of
// a new checkpoint before it judges it; when a slow source's poll runs
// out of time in the middle, the entries already read and proven stay,
// and the next source that offers the same checkpoint reads on from
// there instead of from the start.
func TestChainFollowerLeavesASlowSource(t *testing.T) {
	ctx := context.Background()
	cn := newChainNet(t)
	tl := newTestLog(t, cn.network, "a")
	tl.append(slowEntries, "a")
	tl.publish(2)
	// The slow source is fast for its first two bundles (whatever the
	// machine's load, it gets somewhere), then slow.
	slow := &slowSource{Source: openDir(t, tl.dir), name: "slow", delay: slowDelay, fast: 2}
	good := &slowSource{Source: openDir(t, tl.dir), name: "good"} // no delay: counts
	v := &visits{}
	f := cn.followerWith(t, FollowerOptions{Source: Failover(slow, good), Visit: v.visit, ReadTimeout: slowReadTimeout, PollTimeout: slowPollTimeout})
	if err := f.Poll(ctx); err != nil {
		t.Fatalf("a slow source, then a good one: %v", err)
	}
	v.check(t, "a", slowEntries)
	// The slow source read and proved at least its first bundle before
	// the deadline; the good one read the rest of the tree, then visited
	// every entry.
	if s := slow.bundles.Load(); s < 3 {
		t.Fatalf("the slow source had %d bundles read, want at least 3 (2 fast, then slow)", s)
	}
	// Each bundle is fetched once: the last one the slow source was asked
	// for may not have been proven in time.
	if g, s := good.bundles.Load(), slow.bundles.Load(); g+s < slowBundles || g+s > slowBundles+1 {
		t.Errorf("the good source had %d bundles read, the slow one %d: want %d in all (or one more)", g, s, slowBundles)
	}
}

// TestChainFollowerFetchesEachBundleOnce: a chain follower reads the
// entries a new checkpoint adds to judge it (the policy changes among
// them), then visits them: from what it read, not by reading each entry
// bundle again. Before, every bundle was fetched twice.
func TestChainFollowerFetchesEachBundleOnce(t *testing.T) {
	ctx := context.Background()
	cn := newChainNet(t)
	tl := newTestLog(t, cn.network, "a")
	tl.append(700, "a") // bundles 0, 1 and 2 (partial)
	tl.publish(2)
	src := &slowSource{Source: openDir(t, tl.dir), name: "counted"}
	v := &visits{}
	f := cn.followerWith(t, FollowerOptions{Source: src, Visit: v.visit})
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	v.check(t, "a", 700)
	if n := src.bundles.Load(); n != 3 {
		t.Errorf("the first poll fetched %d entry bundles, want 3 (700 entries)", n)
	}
	tl.append(300, "a") // bundle 2 grows, bundle 3 (partial)
	tl.publish(2)
	before := src.bundles.Load()
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	v.check(t, "a", 1000)
	if n := src.bundles.Load() - before; n != 2 {
		t.Errorf("the second poll fetched %d entry bundles, want 2 (entries 700 to 999)", n)
	}
}

// TestChainFollowerHeldBound: past the bytes a judgement holds, the
// entries are read again to be visited; every entry is visited once, in
// order.
func TestChainFollowerHeldBound(t *testing.T) {
	ctx := context.Background()
	cn := newChainNet(t)
	tl := newTestLog(t, cn.network, "a")
	tl.append(1000, "a") // 4 bundles
	tl.publish(2)
	src := &slowSource{Source: openDir(t, tl.dir), name: "counted"}
	v := &visits{}
	f := cn.followerWith(t, FollowerOptions{Source: src, Visit: v.visit})
	f.maxHeld = 300 * len("a entry 999") // entries 0 to 299 or so
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	v.check(t, "a", 1000)
	if n := src.bundles.Load(); n != 4+3 {
		t.Errorf("fetched %d entry bundles, want 7 (4 to judge, 3 past the first 300 entries held to visit)", n)
	}
}
