package logclient

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	fmtlog "github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// chainNet is a network of three build nodes as a policy names them: each
// node's note key signs checkpoints as the log and cosigns them. Node-a
// is the log of its logs (testLog).
type chainNet struct {
	*network
	policy *policy.Policy
}

func newChainNet(t *testing.T) *chainNet {
	t.Helper()
	cn := &chainNet{network: &network{}, policy: &policy.Policy{Version: 1, Name: testOrigin}}
	for i := range 3 {
		name := fmt.Sprintf("node-%c", 'a'+i)
		k := newNodeKeys(t, name)
		if i == 0 {
			cn.logSigner, cn.logKey = k.logSigner, k.logKey
		}
		cn.cosSigners = append(cn.cosSigners, k.cosSigner)
		cn.cosKeys = append(cn.cosKeys, k.cosKey)
		cn.policy.Nodes = append(cn.policy.Nodes, policyNode(t, name, k.vkey, "a", i))
	}
	if err := cn.policy.Validate(); err != nil {
		t.Fatal(err)
	}
	return cn
}

// follower returns a chain follower of src.
func (cn *chainNet) follower(t *testing.T, src Source, v *visits, max int) *Follower {
	t.Helper()
	return cn.followerWith(t, FollowerOptions{Source: src, Visit: v.visit, MaxUnverified: max, ReadTimeout: 300 * time.Millisecond})
}

// followerWith returns a chain follower with opts, from the network's
// policy, in a new state directory.
func (cn *chainNet) followerWith(t *testing.T, opts FollowerOptions) *Follower {
	t.Helper()
	chain, err := policy.NewChain(cn.policy)
	if err != nil {
		t.Fatal(err)
	}
	opts.Chain, opts.StateDir = chain, t.TempDir()
	f, err := NewFollower(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// hostile serves the honest log's tiles, with the checkpoint and entry
// bundles replaced as the test sets them, and counts the entry bundles
// asked for.
type hostile struct {
	honest     http.Handler
	checkpoint atomic.Pointer[[]byte]
	bundles    atomic.Int64
	// bundle, if set, answers the entry bundle requests.
	bundle func(w http.ResponseWriter, r *http.Request, h http.Handler)
}

func (h *hostile) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/checkpoint" && h.checkpoint.Load() != nil:
		w.Write(*h.checkpoint.Load())
	case strings.HasPrefix(r.URL.Path, "/tile/entries/"):
		h.bundles.Add(1)
		if h.bundle != nil {
			h.bundle(w, r, h.honest)
			return
		}
		h.honest.ServeHTTP(w, r)
	default:
		h.honest.ServeHTTP(w, r)
	}
}

func (h *hostile) set(b []byte) { h.checkpoint.Store(&b) }

// forge returns a checkpoint of the log's origin of size entries and a
// made-up root, signed by signers.
func forge(t *testing.T, size uint64, signers ...note.Signer) []byte {
	t.Helper()
	cp := fmtlog.Checkpoint{Origin: testOrigin, Size: size, Hash: bytes.Repeat([]byte{7}, 32)}
	b, err := note.Sign(&note.Note{Text: string(cp.Marshal())}, signers...)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func stranger(t *testing.T, name string) (note.Signer, note.Signer) {
	t.Helper()
	k := newNodeKeys(t, name)
	return k.logSigner, k.cosSigner
}

// TestChainFollowerHostileSource: a chain follower reading a hostile
// source first and an honest one second. Each lie (a huge checkpoint
// signed by no key, or by a stranger's key under a node's name, or by a
// node's key with a made-up root; a genuine checkpoint with entries that
// do not match its tree; a source that stalls in the middle of an entry
// bundle) fails on that source, with an error that names it, and the
// same poll follows the honest source. A checkpoint no key of the policy
// signed has none of its entries read.
func TestChainFollowerHostileSource(t *testing.T) {
	cn := newChainNet(t)
	tl := newTestLog(t, cn.network, "a")
	tl.append(700, "a")
	genuine := tl.publish(2)
	strangerLog, strangerCos := stranger(t, "node-a")

	unsigned := func() []byte {
		b := forge(t, 1<<40, cn.logSigner)
		// Replace the signature's bytes (after the 4-byte key hash).
		i := bytes.LastIndex(b, []byte(" "))
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b[i+1:])))
		if err != nil {
			t.Fatal(err)
		}
		for k := 4; k < len(raw); k++ {
			raw[k] = 0
		}
		return append(b[:i+1:i+1], base64.StdEncoding.EncodeToString(raw)+"\n"...)
	}()
	strangerSigned := forge(t, 1<<40, strangerLog, strangerCos)
	nodeSigned := forge(t, 1<<40, cn.logSigner)

	cases := []struct {
		name       string
		checkpoint []byte
		bundle     func(w http.ResponseWriter, r *http.Request, h http.Handler)
		want       string // in the error of a poll of the hostile source alone
		unread     bool   // no entry bundle may be read
	}{
		{name: "unsigned huge checkpoint", checkpoint: unsigned, want: "no signature or cosignature by a key of the policy", unread: true},
		{name: "huge checkpoint signed by an unknown key", checkpoint: strangerSigned, want: "no signature or cosignature by a key of the policy", unread: true},
		{name: "huge checkpoint signed by a node's key", checkpoint: nodeSigned, want: "entries 0 to 255"},
		{name: "entries that do not match the tree", checkpoint: genuine, want: "not in the tree of the checkpoint",
			bundle: func(w http.ResponseWriter, r *http.Request, h http.Handler) {
				rec := &recorder{header: http.Header{}, code: http.StatusOK}
				h.ServeHTTP(rec, r)
				w.Write(bytes.ReplaceAll(rec.body.Bytes(), []byte("a entry"), []byte("b entry")))
			}},
		{name: "a source that stalls mid-read", checkpoint: genuine, want: "no answer within",
			bundle: func(w http.ResponseWriter, r *http.Request, h http.Handler) {
				w.Header().Set("Content-Length", "70000")
				w.WriteHeader(http.StatusOK)
				w.Write([]byte{0, 7, 'a', ' '})
				w.(http.Flusher).Flush()
				<-r.Context().Done()
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			h := &hostile{honest: tl.log.Handler(), bundle: tc.bundle}
			h.set(tc.checkpoint)
			liar := tl.serve(func(http.Handler) http.Handler { return h })
			honest := tl.serve(nil)

			alone := cn.follower(t, openURL(t, liar.URL), &visits{}, 0)
			err := alone.Poll(ctx)
			if err == nil || !strings.Contains(err.Error(), liar.URL) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("the hostile source alone: %v, want an error naming %s that says %q", err, liar.URL, tc.want)
			}
			if n := h.bundles.Load(); tc.unread && n != 0 {
				t.Errorf("%d entry bundles read of a checkpoint no key of the policy signed", n)
			}
			if cp := alone.Status().Checkpoint; cp != nil {
				t.Errorf("accepted %d from the hostile source", cp.Size)
			}

			v := &visits{}
			f := cn.follower(t, Failover(openURL(t, liar.URL), openURL(t, honest.URL)), v, 0)
			start := time.Now()
			if err := f.Poll(ctx); err != nil {
				t.Fatalf("hostile source, then an honest one: %v", err)
			}
			if took := time.Since(start); took > 10*time.Second {
				t.Errorf("the poll took %s", took)
			}
			v.check(t, "a", 700)
			if cp := f.Status().Checkpoint; cp == nil || !bytes.Equal(cp.Note, genuine) {
				t.Errorf("checkpoint %+v, want the genuine one", cp)
			}
		})
	}
}

// TestChainFollowerBoundsUnverifiedReads: a checkpoint that a node's key
// signed over a real tree but no majority cosigned (one node that lies, or
// a policy change inside the tree that the follower cannot know yet) has
// at most MaxUnverified entries read a poll, the next poll reading on
// where the last stopped, until the whole tree is read and the
// checkpoint judged (here: not final, refused). Then a final checkpoint
// of an honest source is followed.
func TestChainFollowerBoundsUnverifiedReads(t *testing.T) {
	ctx := context.Background()
	cn := newChainNet(t)
	lying := newTestLog(t, cn.network, "lie")
	lying.append(3000, "lie")
	lying.publish(0) // signed by node-a's key alone
	h := &hostile{honest: lying.log.Handler()}
	liar := lying.serve(func(http.Handler) http.Handler { return h })

	f := cn.follower(t, openURL(t, liar.URL), &visits{}, 512)
	read := int64(0)
	for poll := 1; ; poll++ {
		err := f.Poll(ctx)
		n := h.bundles.Load() - read
		read += n
		if n > 2 {
			t.Errorf("poll %d read %d entry bundles, want at most 2 (512 entries)", poll, n)
		}
		if errors.Is(err, ErrUnverifiedLimit) {
			if !strings.Contains(err.Error(), liar.URL) || !strings.Contains(err.Error(), "size 3000") {
				t.Errorf("poll %d: %v: want the source and the size named", poll, err)
			}
			if poll > 6 {
				t.Fatalf("poll %d still reading: %v", poll, err)
			}
			continue
		}
		if !errors.Is(err, ErrCheckpoint) || !errors.Is(err, witness.ErrNotFinal) {
			t.Fatalf("poll %d, once the tree is read: %v, want it not final", poll, err)
		}
		if poll != 6 || read != 12 {
			t.Errorf("judged at poll %d after %d bundles, want 6 polls, 12 bundles (3000 entries, 512 a poll)", poll, read)
		}
		break
	}

	honestLog := newTestLog(t, cn.network, "a")
	honestLog.append(300, "a")
	honestLog.publish(2)
	honest := honestLog.serve(nil)
	v := &visits{}
	f = cn.follower(t, Failover(openURL(t, liar.URL), openURL(t, honest.URL)), v, 512)
	before := h.bundles.Load()
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	v.check(t, "a", 300)
	if n := h.bundles.Load() - before; n > 2 {
		t.Errorf("the liar had %d bundles read, want at most 2", n)
	}
}

// TestFollowerLeavesALaggingSource: a source that answered, then stays at
// the checkpoint the follower verified (a build node behind the others,
// or a mirror no longer updated), gives no error: the follower still
// reads the new checkpoint from another source, in the next poll.
func TestFollowerLeavesALaggingSource(t *testing.T) {
	ctx := context.Background()
	cn := newChainNet(t)
	tl := newTestLog(t, cn.network, "a")
	tl.append(10, "a")
	old := tl.publish(2)
	h := &hostile{honest: tl.log.Handler()}
	h.set(old)
	lagging := tl.serve(func(http.Handler) http.Handler { return h })
	honest := tl.serve(nil)
	v := &visits{}
	f := cn.follower(t, Failover(openURL(t, lagging.URL), openURL(t, honest.URL)), v, 0)
	if err := f.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	tl.append(5, "a")
	tl.publish(2)
	for range 2 {
		if err := f.Poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	v.check(t, "a", 15)
}
