package node

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pyrsia/pyrsia-build/publish/logclient"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	"golang.org/x/mod/sumdb/note"
)

// offered is a log source whose checkpoint is cp: the tiles are the
// real log's.
type offered struct {
	logclient.Source
	cp []byte
}

func (o offered) ReadCheckpoint(context.Context) ([]byte, error) { return o.cp, nil }

// rotateKeysOfB has node-a and node-b (its old key) approve a change that
// gives node-b of a three-node cluster fresh cosign and note keys, and
// waits until every running node acts on it. node-b still runs on its old
// keys. It returns the new policy.
func (c *cluster) rotateKeysOfB(ctx context.Context, t *testing.T) *policy.Policy {
	t.Helper()
	fresh, err := InitKeys(t.TempDir(), "node-b", nil)
	if err != nil {
		t.Fatal(err)
	}
	pb := c.policyNode(1)
	pb.CosignKey, pb.NoteKey = string(fresh.CosignPub), fresh.NoteKey
	p2 := withNodes(c.policy, c.policyNode(0), pb, c.policyNode(2))
	if code, body := c.submit(ctx, 0, c.changeBy(c.policy, p2, 0, 1)); code != http.StatusCreated {
		t.Fatalf("submit: %d %s", code, body)
	}
	c.waitActing(ctx, p2)
	return p2
}

// TestRegularFollowsPolicyChain: a regular node started with the
// network's first policy follows a change that rotates node-b's cosign
// and note keys: it applies the change (its status names the new policy),
// judges the checkpoints after it by the new policy, and indexes, serves
// and proves the entry published after it. A checkpoint of that tree
// cosigned with node-b's rotated-out note key (with node-a's: a majority
// of the first policy, one of three of the new) is refused by the same
// follower, though the first policy alone would accept it. Restarted, the
// regular node takes its stored checkpoint again, by the chain.
func TestRegularFollowsPolicyChain(t *testing.T) {
	c := servingCluster(t, 3)
	ctx := c.ctx()
	c.leader(ctx)
	reg := startRegular(t, c, filepath.Join(t.TempDir(), "regular"), 0, "")
	in1, _ := c.publish(ctx, 0, ociSpec(11))
	reg.waitIndexed(ctx, in1)

	oldB := c.nodes[1].keys
	p2 := c.rotateKeysOfB(ctx, t)
	// node-b runs on its rotated-out keys: node-a and node-c are the
	// majority of the new policy.
	in2, evs := c.publish(ctx, 0, ociSpec(12))
	if ev := lastEvent(evs); ev.Type != EventFinal {
		t.Fatalf("the publish after the change: %v", evs)
	}
	reg.waitIndexed(ctx, in2)
	st := reg.status()
	if st.Policy != p2.Digest() || len(st.Skipped) != 0 || st.Stopped != nil {
		t.Errorf("status after the change: policy %s (want %s), skipped %v, stopped %+v", st.Policy, p2.Digest(), st.Skipped, st.Stopped)
	}
	if cur, from := reg.r.chain.Current(); cur.Digest() != p2.Digest() || from == 0 {
		t.Errorf("the regular node's chain: %s from %d, want %s", cur.Digest(), from, p2.Digest())
	}
	reg.proof(in2)

	// Restarted, it judges its stored checkpoint (after the change) by
	// the chain it reads again from the log.
	before := reg.r.checkpoint()
	reg.stop()
	o := reg.o
	o.HTTP = nil
	r, err := NewRegular(ctx, o) // before it reads the log: from DATA/follow
	if err != nil {
		t.Fatal(err)
	}
	if cp := r.Follower().Status().Checkpoint; cp == nil || cp.Size != before.Size || r.chainCurrent().Digest() != p2.Digest() || r.current().Digest() != p2.Digest() {
		t.Errorf("restarted, before reading the log: checkpoint %+v, chain at %s; want size %d under %s", cp, r.chainCurrent().Digest(), before.Size, p2.Digest())
	}
	r.close()
	reg = startRegular(t, c, reg.dir, 0, "")
	reg.waitIndexed(ctx, in1, in2)
	if st := reg.status(); st.Policy != p2.Digest() || st.LastError != "" || len(st.Skipped) != 0 {
		t.Errorf("status after a restart: policy %s (want %s), error %q, skipped %v", st.Policy, p2.Digest(), st.LastError, st.Skipped)
	}
	// Without DATA/follow/changes (a data folder of an older version),
	// the stored checkpoint is judged at the first read of the log.
	reg.stop()
	if err := os.Remove(filepath.Join(reg.dir, "follow", logclient.ChangesFile)); err != nil {
		t.Fatal(err)
	}
	reg = startRegular(t, c, reg.dir, 0, "")
	reg.waitIndexed(ctx, in1, in2)
	if st := reg.status(); st.Policy != p2.Digest() || st.LastError != "" || st.LogSize != before.Size {
		t.Errorf("status after a restart without the changes file: policy %s (want %s), error %q, size %d", st.Policy, p2.Digest(), st.LastError, st.LogSize)
	}

	// A checkpoint of the same tree, log-signed by node-a and cosigned by
	// node-a and node-b's rotated-out key.
	real := reg.r.checkpoint()
	n, err := witness.OpenUnverified(real.Note)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := note.Sign(&note.Note{Text: n.Text}, c.nodes[0].keys.LogSigner, c.nodes[0].keys.Cosigner, oldB.Cosigner)
	if err != nil {
		t.Fatal(err)
	}
	src, err := logclient.OpenURL("http://"+c.nodes[0].api.Addr().String()+"/log/", logclient.URLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	first, err := c.policy.Trust()
	if err != nil {
		t.Fatal(err)
	}
	follow := func(o logclient.FollowerOptions, cp []byte) (*logclient.Follower, error) {
		o.Source, o.StateDir, o.Logger = offered{src, cp}, t.TempDir(), slog.New(slog.NewTextHandler(io.Discard, nil))
		f, err := logclient.NewFollower(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		return f, f.Poll(ctx)
	}
	// The control: the first policy alone takes it (this is what the
	// regular node did before it followed the chain).
	if f, err := follow(logclient.FollowerOptions{Trust: first}, forged); err != nil || f.Status().Checkpoint == nil {
		t.Fatalf("the forged checkpoint under the first policy alone: %v; want it accepted (else this test proves nothing)", err)
	}
	chain, err := policy.NewChain(c.policy)
	if err != nil {
		t.Fatal(err)
	}
	f, err := follow(logclient.FollowerOptions{Chain: chain}, forged)
	if err == nil || f.Status().Checkpoint != nil || !strings.Contains(err.Error(), p2.Digest()) {
		t.Errorf("a checkpoint cosigned with a rotated-out key, judged by the chain: %v, checkpoint %v; want it refused under %s", err, f.Status().Checkpoint, p2.Digest())
	}
	if cur, _ := chain.Current(); cur.Digest() != c.policy.Digest() {
		t.Errorf("the chain applied %s from a checkpoint it refused", cur.Digest())
	}
	// The genuine one, judged by a fresh chain, is taken, and the chain
	// follows the change (once, at its index).
	chain2, _ := policy.NewChain(c.policy)
	var changed []uint64
	f, err = follow(logclient.FollowerOptions{Chain: chain2, OnChange: func(i uint64, _ *policy.Change) { changed = append(changed, i) }}, real.Note)
	if err != nil || f.Status().Checkpoint == nil {
		t.Fatalf("the genuine checkpoint, judged by the chain: %v", err)
	}
	if cur, _ := chain2.Current(); cur.Digest() != p2.Digest() || len(changed) != 1 || changed[0] != 1 {
		t.Errorf("after the genuine checkpoint: chain at %s, changes applied at %v; want %s from the change at index 1", cur.Digest(), changed, p2.Digest())
	}
}

// TestReviewChangesFileOmission (review-follow): DATA/follow/changes is a
// cache of the log's policy changes. A disk that lost its last line (or
// an attacker with write access who removed it) must not leave the
// restarted node on the policy the change replaced: the stored
// checkpoint, cosigned by node-a and node-c, verifies under the first
// policy too, and the follower then reads only the entries past it, so
// it would never see the change again.
func TestReviewChangesFileOmission(t *testing.T) {
	c := servingCluster(t, 3)
	ctx := c.ctx()
	c.leader(ctx)
	reg := startRegular(t, c, filepath.Join(t.TempDir(), "regular"), 0, "")
	in1, _ := c.publish(ctx, 0, ociSpec(11))
	reg.waitIndexed(ctx, in1)
	early, err := os.ReadFile(filepath.Join(reg.dir, "follow", logclient.StateFile))
	if err != nil {
		t.Fatal(err)
	}

	p2 := c.rotateKeysOfB(ctx, t)
	in2, _ := c.publish(ctx, 0, ociSpec(12))
	reg.waitIndexed(ctx, in2)
	if st := reg.status(); st.Policy != p2.Digest() {
		t.Fatalf("status after the change: policy %s, want %s", st.Policy, p2.Digest())
	}
	reg.stop()
	changes := filepath.Join(reg.dir, "follow", logclient.ChangesFile)
	stored, err := os.ReadFile(changes)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(changes, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	reg = startRegular(t, c, reg.dir, 0, "")
	reg.waitIndexed(ctx, in1, in2)
	if st := reg.status(); st.Policy != p2.Digest() {
		t.Errorf("restarted with the change removed from %s: policy %s (the first policy is %s), want %s, or an error naming the file", changes, st.Policy, c.policy.Digest(), p2.Digest())
	}
	if b, err := os.ReadFile(changes); err != nil || !bytes.Equal(b, stored) {
		t.Errorf("%s after the restart: %q, %v; want it written again from the log: %q", changes, b, err, stored)
	}

	// The change moved to a later index of the stored tree (it still
	// holds under the first policy there): entries between would be
	// judged by the replaced policy. The node says what is wrong and
	// visits nothing until the file is moved away.
	reg.stop()
	moved := bytes.Replace(stored, []byte(`{"index":1,`), []byte(`{"index":2,`), 1)
	if bytes.Equal(moved, stored) {
		t.Fatalf("%s holds no change at index 1: %q", changes, stored)
	}
	if err := os.WriteFile(changes, moved, 0o644); err != nil {
		t.Fatal(err)
	}
	reg = startRegular(t, c, reg.dir, 0, "")
	for {
		st := reg.status()
		if st.LastError != "" {
			if !strings.Contains(st.LastError, changes) || !strings.Contains(st.LastError, "move") || st.Indexed != 0 {
				t.Errorf("restarted with the change moved in %s: error %q, %d entries indexed; want an error naming the file and what to do, nothing indexed", changes, st.LastError, st.Indexed)
			}
			break
		}
		if st.Indexed != 0 {
			t.Fatalf("restarted with the change moved in %s: %d entries indexed, no error", changes, st.Indexed)
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-c.after():
		}
	}
	reg.stop()
	if err := os.Remove(changes); err != nil {
		t.Fatal(err)
	}
	reg = startRegular(t, c, reg.dir, 0, "")
	reg.waitIndexed(ctx, in1, in2)
	if st := reg.status(); st.Policy != p2.Digest() || st.LastError != "" {
		t.Errorf("with the file moved away: policy %s, error %q; want %s, none", st.Policy, st.LastError, p2.Digest())
	}
	// A crash after the changes of a new checkpoint were stored and
	// before the checkpoint was: the stored checkpoint is the one before
	// the change, the file holds the change past it. The change is not
	// applied at the restart, and is applied from the log once the
	// checkpoint after it is verified.
	reg.stop()
	if err := os.WriteFile(filepath.Join(reg.dir, "follow", logclient.StateFile), early, 0o644); err != nil {
		t.Fatal(err)
	}
	o := reg.o
	o.HTTP = nil
	r, err := NewRegular(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if cur := r.chainCurrent(); cur.Digest() != c.policy.Digest() {
		t.Errorf("restarted on the checkpoint before the change: chain at %s, want the first policy %s", cur.Digest(), c.policy.Digest())
	}
	r.close()
	reg = startRegular(t, c, reg.dir, 0, "")
	reg.waitIndexed(ctx, in1, in2)
	if st := reg.status(); st.Policy != p2.Digest() || st.LastError != "" {
		t.Errorf("after the crash between the two files: policy %s, error %q; want %s, none", st.Policy, st.LastError, p2.Digest())
	}
}
