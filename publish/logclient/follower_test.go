package logclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pyrsia/pyrsia-build/publish/witness"
)

// visits collects the entries a follower hands over.
type visits struct {
	got  []string
	fail error // returned by the next visit, once
}

func (v *visits) visit(_ context.Context, index uint64, entry []byte) error {
	if v.fail != nil {
		err := v.fail
		v.fail = nil
		return err
	}
	if want := uint64(len(v.got)); index != want {
		return fmt.Errorf("visited entry %d, want %d", index, want)
	}
	v.got = append(v.got, string(entry))
	return nil
}

func (v *visits) check(t *testing.T, tag string, n int) {
	t.Helper()
	if len(v.got) != n {
		t.Fatalf("visited %d entries, want %d", len(v.got), n)
	}
	for i, e := range v.got {
		if want := string(entryText(tag, i)); e != want {
			t.Fatalf("entry %d: got %q, want %q", i, e, want)
		}
	}
}

func newFollower(t *testing.T, net *network, src Source, state string, v *visits, next uint64) *Follower {
	t.Helper()
	f, err := NewFollower(context.Background(), FollowerOptions{Source: src, Trust: net.trust(0), StateDir: state, Visit: v.visit, Next: next})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestFollowerFollowsAndResumes(t *testing.T) {
	ctx := context.Background()
	for _, kind := range []string{"url", "dir"} {
		t.Run(kind, func(t *testing.T) {
			net := newNetwork(t, 3)
			tl := newTestLog(t, net, "a")
			tl.append(10, "a")
			tl.publish(2)
			var src Source
			if kind == "url" {
				src = openURL(t, tl.serve(nil).URL)
			} else {
				src = openDir(t, tl.dir)
			}
			state := t.TempDir()
			v := &visits{}
			f := newFollower(t, net, src, state, v, 0)
			if err := f.Poll(ctx); err != nil {
				t.Fatal(err)
			}
			v.check(t, "a", 10)
			tl.append(300, "a")
			tl.publish(3)
			// A visit that fails stops the poll; the next one visits again.
			v.fail = errors.New("index full")
			if err := f.Poll(ctx); err == nil || !strings.Contains(err.Error(), "visiting entry 10: index full") {
				t.Fatalf("got %v, want the visit's error", err)
			}
			if err := f.Poll(ctx); err != nil {
				t.Fatal(err)
			}
			v.check(t, "a", 310)
			if err := f.Poll(ctx); err != nil {
				t.Fatal(err)
			}
			v.check(t, "a", 310)
			st := f.Status()
			if st.Checkpoint == nil || st.Checkpoint.Size != 310 || st.Next != 310 || st.Stopped != nil || st.LastError != nil {
				t.Fatalf("status %+v", st)
			}
			stored, err := os.ReadFile(filepath.Join(state, StateFile))
			if err != nil || !bytes.Equal(stored, st.Checkpoint.Note) {
				t.Fatalf("state file %q (%v), want the checkpoint", stored, err)
			}

			// A restart resumes from the stored checkpoint: it is checked,
			// and the next one must extend it.
			v2 := &visits{got: v.got}
			f2 := newFollower(t, net, src, state, v2, 310)
			if st := f2.Status(); st.Checkpoint == nil || st.Checkpoint.Size != 310 {
				t.Fatalf("after restart: status %+v", st)
			}
			tl.append(5, "a")
			tl.publish(2)
			if err := f2.Poll(ctx); err != nil {
				t.Fatal(err)
			}
			v2.check(t, "a", 315)

			// With Next 0, an index in memory gets every entry again.
			v3 := &visits{}
			f3 := newFollower(t, net, src, state, v3, 0)
			if err := f3.Poll(ctx); err != nil {
				t.Fatal(err)
			}
			v3.check(t, "a", 315)
		})
	}
}

// forked makes two logs of the same network that share common entries
// and then diverge; each has its own cosigners, as a colluding majority
// would.
func forked(t *testing.T, net *network, common, a, b int) (*testLog, *testLog) {
	la, lb := newTestLog(t, net, "x"), newTestLog(t, net, "x")
	la.append(common, "x")
	lb.append(common, "x")
	la.append(a, "a")
	lb.append(b, "b")
	return la, lb
}

func TestFollowerStopsOnFork(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name      string
		a, b      int // entries after the common 5
		wantInErr string
	}{
		{"longer", 3, 5, "does not extend the one verified"},
		{"same size", 3, 3, "two final checkpoints of size 8"},
		{"shorter, then longer", 3, 1, "does not extend the one verified"},
	} {
		for _, kind := range []string{"url", "dir"} {
			t.Run(tc.name+"/"+kind, func(t *testing.T) {
				net := newNetwork(t, 3)
				la, lb := forked(t, net, 5, tc.a, tc.b)
				noteA, noteB := la.publish(2), lb.publish(2)
				// The source serves log a, then log b: a server whose
				// handler changes, or a folder whose files are replaced.
				var src Source
				var serve func(*testLog)
				if kind == "url" {
					sw := &switchable{}
					sw.set(la.log.Handler())
					srv := httptest.NewServer(sw)
					t.Cleanup(srv.Close)
					src = openURL(t, srv.URL)
					serve = func(l *testLog) { sw.set(l.log.Handler()) }
				} else {
					mirror := filepath.Join(t.TempDir(), "mirror")
					copyDir(t, la.dir, mirror)
					src = openDir(t, mirror)
					serve = func(l *testLog) {
						if err := os.RemoveAll(mirror); err != nil {
							t.Fatal(err)
						}
						copyDir(t, l.dir, mirror)
					}
				}
				state := t.TempDir()
				f := newFollower(t, net, src, state, &visits{}, 0)
				if err := f.Poll(ctx); err != nil {
					t.Fatal(err)
				}
				serve(lb)
				if tc.b < tc.a {
					// Behind: not accepted, not yet a proven fork.
					if err := f.Poll(ctx); !errors.Is(err, ErrStale) {
						t.Fatalf("got %v, want ErrStale", err)
					}
					lb.append(tc.a, "b")
					noteB = lb.publish(2)
					serve(lb)
				}
				err := f.Poll(ctx)
				var se *StopError
				if !errors.As(err, &se) || !errors.Is(err, ErrFork) || !strings.Contains(err.Error(), tc.wantInErr) || !strings.Contains(err.Error(), src.String()) {
					t.Fatalf("got %v, want a fork naming the source and %q", err, tc.wantInErr)
				}
				if !bytes.Equal(se.Verified, noteA) || !bytes.Equal(se.Offered, noteB) {
					t.Fatal("the stop error does not carry both checkpoints")
				}
				checkEvidence(t, state, noteA, noteB)
				// It stays stopped, even when the source is fixed, and so
				// does a restart.
				serve(la)
				if err := f.Poll(ctx); !errors.As(err, &se) {
					t.Fatalf("poll after stop: got %v, want the stop error", err)
				}
				if f.Status().Stopped == nil {
					t.Fatal("status does not show the stop")
				}
				_, err = NewFollower(ctx, FollowerOptions{Source: src, Trust: net.trust(0), StateDir: state})
				if !errors.As(err, &se) || !errors.Is(err, ErrFork) || !bytes.Equal(se.Offered, noteB) {
					t.Fatalf("restart: got %v, want the stop error with the evidence", err)
				}
				if stored, _ := os.ReadFile(filepath.Join(state, StateFile)); !bytes.Equal(stored, noteA) {
					t.Fatal("the state file no longer holds the last verified checkpoint")
				}
			})
		}
	}
}

// copyDir copies the files of a log folder.
func copyDir(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(to, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(to, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func checkEvidence(t *testing.T, state string, verified, offered []byte) {
	t.Helper()
	dir := filepath.Join(state, EvidenceDir)
	for name, want := range map[string][]byte{"verified.checkpoint": verified, "offered.checkpoint": offered} {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("evidence %s: got %q (%v), want %q", name, got, err, want)
		}
	}
	if reason, err := os.ReadFile(filepath.Join(dir, "reason")); err != nil || len(reason) == 0 {
		t.Fatalf("evidence reason: %q, %v", reason, err)
	}
}

// A checkpoint that is not final proves nothing (anyone can strip
// cosignatures): it fails the poll, keeps no evidence and does not stop the
// follower, which takes the final checkpoint of the next poll.
func TestFollowerRetriesNonFinal(t *testing.T) {
	ctx := context.Background()
	net := newNetwork(t, 3)
	tl := newTestLog(t, net, "a")
	tl.append(4, "a")
	tl.publish(2)
	src := openURL(t, tl.serve(nil).URL)
	state := t.TempDir()
	v := &visits{}
	f := newFollower(t, net, src, state, v, 0)
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	tl.append(4, "a")
	tl.publish(1) // one cosignature of the two needed
	err := f.Poll(ctx)
	var se *StopError
	if errors.As(err, &se) || !errors.Is(err, witness.ErrNotFinal) {
		t.Fatalf("got %v, want a poll error for a checkpoint that is not final, not a stop", err)
	}
	if _, err := os.Stat(filepath.Join(state, "evidence")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("evidence kept for a checkpoint that proves nothing: %v", err)
	}
	v.check(t, "a", 4)
	tl.publish(2)
	if err := f.Poll(ctx); err != nil {
		t.Fatalf("poll after the checkpoint became final: %v", err)
	}
	v.check(t, "a", 8)
}

func TestFollowerStale(t *testing.T) {
	ctx := context.Background()
	net := newNetwork(t, 1)
	tl := newTestLog(t, net, "a")
	tl.append(4, "a")
	old := tl.publish(1)
	tl.append(4, "a")
	tl.publish(1)
	// A mirror that still serves the old checkpoint, with the new tiles.
	var serveOld atomic.Bool
	srv := tl.serve(func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if serveOld.Load() && r.URL.Path == "/checkpoint" {
				w.Write(old)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	f := newFollower(t, net, openURL(t, srv.URL), t.TempDir(), &visits{}, 0)
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	serveOld.Store(true)
	if err := f.Poll(ctx); !errors.Is(err, ErrStale) || Hint(err) == "" {
		t.Fatalf("got %v, want ErrStale with a hint", err)
	}
	serveOld.Store(false)
	if err := f.Poll(ctx); err != nil {
		t.Fatalf("after a stale answer: %v", err)
	}
}

func TestFollowerBadTilesAreNotEvidence(t *testing.T) {
	ctx := context.Background()
	net := newNetwork(t, 1)
	tl := newTestLog(t, net, "a")
	tl.append(300, "a")
	tl.publish(1)
	sw := &switchable{}
	sw.set(corrupt("/tile/entries/", func(b []byte) []byte { return b[:len(b)/2] })(tl.log.Handler()))
	srv := httptest.NewServer(sw)
	defer srv.Close()
	v := &visits{}
	f := newFollower(t, net, openURL(t, srv.URL), t.TempDir(), v, 0)
	err := f.Poll(ctx)
	var se *StopError
	if !errors.Is(err, ErrBadResponse) || errors.As(err, &se) || !strings.Contains(err.Error(), "entry bundle 0") {
		t.Fatalf("got %v, want a malformed bundle, not a stop", err)
	}
	sw.set(tl.log.Handler())
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	v.check(t, "a", 300)
}

func TestFollowerOtherLogIsNotEvidence(t *testing.T) {
	ctx := context.Background()
	net := newNetwork(t, 1)
	srv := httptestServer(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("<html>captive portal</html>"))
	}))
	state := t.TempDir()
	f := newFollower(t, net, openURL(t, srv.URL), state, &visits{}, 0)
	err := f.Poll(ctx)
	var se *StopError
	if !errors.Is(err, ErrCheckpoint) || errors.As(err, &se) {
		t.Fatalf("got %v, want a refused checkpoint, not a stop", err)
	}
	if _, err := os.Stat(filepath.Join(state, EvidenceDir)); err == nil {
		t.Fatal("evidence kept for a page that is no checkpoint")
	}
}

func TestNewFollowerErrors(t *testing.T) {
	ctx := context.Background()
	net := newNetwork(t, 3)
	src := openURL(t, "http://127.0.0.1:1/")
	noCosigners := net.trust(0)
	noCosigners.Cosigners, noCosigners.CosignThreshold = nil, 0
	if _, err := NewFollower(ctx, FollowerOptions{Source: src, Trust: noCosigners, StateDir: t.TempDir()}); err == nil {
		t.Fatal("a follower without cosigners started")
	}
	state := t.TempDir()
	os.WriteFile(filepath.Join(state, StateFile), []byte("damaged"), 0o644)
	_, err := NewFollower(ctx, FollowerOptions{Source: src, Trust: net.trust(0), StateDir: state})
	if err == nil || !strings.Contains(err.Error(), filepath.Join(state, StateFile)) || !strings.Contains(err.Error(), "move the file away") {
		t.Fatalf("got %v, want an error naming the damaged state file", err)
	}
}

func TestFollowerRunStops(t *testing.T) {
	net := newNetwork(t, 3)
	la, lb := forked(t, net, 2, 2, 2)
	la.publish(2)
	lb.publish(2)
	sw := &switchable{}
	sw.set(la.log.Handler())
	srv := httptest.NewServer(sw)
	defer srv.Close()
	f := newFollower(t, net, openURL(t, srv.URL), t.TempDir(), &visits{}, 0)
	if err := f.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	sw.set(lb.log.Handler())
	err := f.Run(context.Background()) // the first poll stops it
	if !errors.Is(err, ErrFork) {
		t.Fatalf("Run: got %v, want a fork", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f2 := newFollower(t, net, openURL(t, srv.URL), t.TempDir(), &visits{}, 0)
	if err := f2.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run with a done context: got %v", err)
	}
}

// A mirror that serves the smaller checkpoint of another log beside the
// tiles of the one followed: the tiles prove it is no prefix.
func TestFollowerStopsOnRollbackItCanProve(t *testing.T) {
	ctx := context.Background()
	net := newNetwork(t, 3)
	la, lb := forked(t, net, 5, 3, 1)
	noteA, noteB := la.publish(2), lb.publish(2)
	var serveB atomic.Bool
	srv := la.serve(func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if serveB.Load() && r.URL.Path == "/checkpoint" {
				w.Write(noteB)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	state := t.TempDir()
	f := newFollower(t, net, openURL(t, srv.URL), state, &visits{}, 0)
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	serveB.Store(true)
	err := f.Poll(ctx)
	var se *StopError
	if !errors.As(err, &se) || !errors.Is(err, ErrFork) || !strings.Contains(err.Error(), "is not a prefix of the one verified") {
		t.Fatalf("got %v, want a fork", err)
	}
	checkEvidence(t, state, noteA, noteB)
}

// Tiles that do not prove a new checkpoint extends the last one verified
// prove no fork either (C2SP tlog-witness's 422): an error, no evidence,
// and the follower goes on once the source is right again.
func TestFollowerBadConsistencyTilesAreNotEvidence(t *testing.T) {
	ctx := context.Background()
	net := newNetwork(t, 1)
	tl := newTestLog(t, net, "a")
	tl.append(300, "a")
	tl.publish(1)
	var lie atomic.Bool
	flipAll := corrupt("/tile/0/001", func(b []byte) []byte {
		b = bytes.Clone(b)
		for i := range b {
			b[i] ^= 1
		}
		return b
	})
	srv := tl.serve(func(h http.Handler) http.Handler {
		bad := flipAll(h)
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if lie.Load() {
				bad.ServeHTTP(w, r)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	state := t.TempDir()
	v := &visits{}
	f := newFollower(t, net, openURL(t, srv.URL), state, v, 0)
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	tl.append(300, "a")
	tl.publish(1)
	lie.Store(true)
	err := f.Poll(ctx)
	var se *StopError
	if !errors.Is(err, ErrProof) || errors.As(err, &se) || !strings.Contains(err.Error(), "do not prove that the checkpoint of size 600 extends the one verified (size 300)") || Hint(err) == "" {
		t.Fatalf("got %v, want a proof that does not verify, not a stop", err)
	}
	if _, err := os.Stat(filepath.Join(state, EvidenceDir)); err == nil {
		t.Fatal("evidence kept for tiles that do not verify")
	}
	lie.Store(false)
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	v.check(t, "a", 600)
}

// A follower of two sources goes on when one is away.
func TestFollowerFailover(t *testing.T) {
	ctx := context.Background()
	net := newNetwork(t, 1)
	tl := newTestLog(t, net, "a")
	tl.append(300, "a")
	tl.publish(1)
	first, away := serveAway(tl)
	src := Failover(openURL(t, first.URL), openDir(t, tl.dir))
	v := &visits{}
	f := newFollower(t, net, src, t.TempDir(), v, 0)
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	away.Store(true)
	tl.append(300, "a")
	tl.publish(1)
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	v.check(t, "a", 600)
	if !strings.Contains(src.String(), first.URL) || !strings.Contains(src.String(), tl.dir) {
		t.Fatalf("%q does not name both sources", src)
	}
}

// A follower whose only source went away reads on from a source added
// later (a build node a policy change brought), at the next poll.
func TestFollowerAddSources(t *testing.T) {
	ctx := context.Background()
	net := newNetwork(t, 1)
	tl := newTestLog(t, net, "a")
	tl.append(300, "a")
	tl.publish(1)
	first, away := serveAway(tl)
	v := &visits{}
	f := newFollower(t, net, openURL(t, first.URL), t.TempDir(), v, 0)
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	away.Store(true)
	tl.append(300, "a")
	tl.publish(1)
	if err := f.Poll(ctx); err == nil {
		t.Fatal("a poll of a source that is away succeeded")
	}
	f.AddSources(Failover(openDir(t, tl.dir)))
	if err := f.Poll(ctx); err != nil {
		t.Fatalf("after AddSources: %v", err)
	}
	v.check(t, "a", 600)
}

// serveAway serves tl's log over HTTP until away is set, then answers
// every request 503.
func serveAway(tl *testLog) (srv *httptest.Server, away *atomic.Bool) {
	away = new(atomic.Bool)
	srv = tl.serve(func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if away.Load() {
				http.Error(w, "away", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		})
	})
	return srv, away
}
