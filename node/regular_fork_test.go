package node

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pyrsia/pyrsia-build/publish/logclient"
	"github.com/pyrsia/pyrsia-build/publish/logservice"
	"github.com/pyrsia/pyrsia-build/publish/tlog"
	"github.com/pyrsia/pyrsia-build/publish/witness"
)

// A regular node that restarts resumes from the checkpoint it verified:
// its follower starts there (a source behind it is refused as stale),
// re-reads the entries it had against it, and goes on with the new ones.
func TestRegularResumesAfterRestart(t *testing.T) {
	c := servingCluster(t, 3)
	ctx := c.ctx()
	first, _ := c.publish(ctx, 0, ociSpec(2))
	dir := filepath.Join(t.TempDir(), "regular")
	reg := startRegular(t, c, dir, 0, "")
	reg.waitIndexed(ctx, first)
	reg.stop()
	if _, err := os.Stat(filepath.Join(dir, "follow", logclient.StateFile)); err != nil {
		t.Fatalf("no verified checkpoint kept: %v", err)
	}
	second, _ := c.publish(ctx, 0, testSpec(2))

	// Before it reads the log again, it holds the checkpoint it verified.
	o := reg.o
	o.HTTP = nil
	r, err := NewRegular(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if cp := r.Follower().Status().Checkpoint; cp == nil || cp.Size != 1 {
		t.Errorf("restarted follower: checkpoint %+v, want the verified one of size 1", cp)
	}
	r.close()

	reg = startRegular(t, c, dir, 2, "")
	reg.waitIndexed(ctx, first, second)
	if st := reg.status(); st.LogSize != 2 || st.Indexed != 2 {
		t.Errorf("after the restart: status %+v, want size 2, 2 entries", st)
	}
}

// A source that serves a final checkpoint forked from the one verified
// (the same size, another root: entries in another order, signed by a
// policy node's log key and cosigned by a majority, as colluding build
// nodes could) stops the follower: the evidence is kept and shown in
// /status, the node goes on serving what it verified, and it does not
// follow again after a restart until the evidence is moved away.
func TestRegularStopsOnFork(t *testing.T) {
	c := servingCluster(t, 3)
	ctx := c.ctx()
	first, second := publishBoth(t, c, ctx, 3)
	real := c.nodes[0].node.Log()
	if _, err := real.WaitFinal(ctx, 2); err != nil {
		t.Fatal(err)
	}
	var h atomic.Value
	h.Store(real.Handler())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.Load().(http.Handler).ServeHTTP(w, r) }))
	defer srv.Close()

	dir := filepath.Join(t.TempDir(), "regular")
	reg := startRegular(t, c, dir, -1, srv.URL)
	reg.waitIndexed(ctx, first, second)

	fork := forkedLog(t, ctx, c, [][]byte{mustEntry(t, ctx, real, 1), mustEntry(t, ctx, real, 0)})
	h.Store(fork.Handler())
	var st RegularStatus
	for st = reg.status(); st.Stopped == nil; st = reg.status() {
		select {
		case <-ctx.Done():
			t.Fatalf("the follower did not stop on the fork: %+v", st)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if !st.Stopped.Fork || st.Stopped.Verified == "" || st.Stopped.Offered == "" || st.Stopped.Verified == st.Stopped.Offered {
		t.Errorf("stopped: %+v, want a fork with both checkpoints", st.Stopped)
	}
	for _, f := range []string{"verified.checkpoint", "offered.checkpoint", "reason", "kind"} {
		if _, err := os.Stat(filepath.Join(st.Stopped.Evidence, f)); err != nil {
			t.Errorf("evidence %s: %v", f, err)
		}
	}
	// What was verified is still served.
	if code, _, body := reg.get("/v1/status/" + first); code != http.StatusOK {
		t.Errorf("after the fork: status of a verified entry: %d %s", code, body)
	}
	if st.LogSize != 2 || st.Indexed != 2 {
		t.Errorf("after the fork: size %d, %d indexed, want what was verified (2, 2)", st.LogSize, st.Indexed)
	}
	reg.stop()

	// A restart does not follow again.
	_, err := NewRegular(ctx, reg.o)
	var se *logclient.StopError
	if !errors.As(err, &se) || !errors.Is(err, logclient.ErrFork) || !strings.Contains(err.Error(), "move") {
		t.Errorf("restart with evidence: got %v, want the StopError of the fork", err)
	}
}

func mustEntry(t *testing.T, ctx context.Context, svc *logservice.Service, i uint64) []byte {
	t.Helper()
	b, err := svc.EntryAt(ctx, i)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// forkedLog writes entries to a log of the cluster's network signed by
// node-a's log key and cosigned by node-a and node-b, with cosigner states
// of their own (a majority colluding), and returns it with a final
// checkpoint over all of them.
func forkedLog(t *testing.T, ctx context.Context, c *cluster, entries [][]byte) *logservice.Service {
	t.Helper()
	trust, err := c.policy.Trust()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var cosigners []logservice.Cosigner
	for i := range 2 {
		k := c.nodes[i].keys
		w, err := witness.NewCosigner(witness.CosignerOptions{Signer: k.Cosigner, Origin: c.policy.Name,
			LogVerifier: mustLogVerifier(c.nodes[0].keys.NoteKey), StateDir: filepath.Join(dir, "cosigner", k.Name)})
		if err != nil {
			t.Fatal(err)
		}
		cosigners = append(cosigners, w)
	}
	svc, err := logservice.Open(ctx, logservice.Options{
		Log:       tlog.Options{Dir: filepath.Join(dir, "log"), Origin: c.policy.Name, Signer: c.nodes[0].keys.LogSigner, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))},
		Cosigners: cosigners,
		Final: func(b []byte) ([]string, error) {
			_, names, err := trust.VerifyCheckpoint(b)
			return names, err
		},
		RetryInterval: 20 * time.Millisecond,
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { svc.Run(rctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; svc.Close() })
	for _, e := range entries {
		if _, err := svc.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.WaitFinal(ctx, uint64(len(entries))); err != nil {
		t.Fatal(err)
	}
	return svc
}
