package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pyrsia/pyrsia-build/publish/logservice"
	"github.com/pyrsia/pyrsia-build/publish/tlog"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	"golang.org/x/mod/sumdb/note"
)

const testOrigin = "test.example/network"

type noteKeys struct {
	name        string
	logSigner   note.Signer
	logVerifier note.Verifier
	cosSigner   note.Signer
	cosVerifier note.Verifier
}

func newNoteKeys(t testing.TB, name string, seed byte) noteKeys {
	t.Helper()
	skey, vkey, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{seed}, 32)), name)
	if err != nil {
		t.Fatal(err)
	}
	k := noteKeys{name: name}
	must := func(err error) {
		if err != nil {
			t.Helper()
			t.Fatal(err)
		}
	}
	k.logSigner, err = witness.NewLogSigner(skey)
	must(err)
	k.logVerifier, err = witness.NewLogVerifier(vkey)
	must(err)
	k.cosSigner, err = witness.NewCosignatureSigner(skey)
	must(err)
	k.cosVerifier, err = witness.NewCosignatureVerifier(vkey)
	must(err)
	return k
}

func newHost(t testing.TB) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// replica is one build node's log with its peer cosigning, without the
// rest of the node.
type replica struct {
	keys   noteKeys
	host   host.Host
	svc    *logservice.Service
	server *CosignServer
	cancel context.CancelFunc
	done   chan error
}

// startReplicas starts n replicas that cosign for each other, with a
// majority as the finality rule.
func startReplicas(t testing.TB, n int) []*replica {
	t.Helper()
	rs := make([]*replica, n)
	var logVs, cosVs []note.Verifier
	for i := range rs {
		k := newNoteKeys(t, fmt.Sprintf("node-%c", 'a'+i), byte(i+1))
		rs[i] = &replica{keys: k, host: newHost(t)}
		logVs = append(logVs, k.logVerifier)
		cosVs = append(cosVs, k.cosVerifier)
	}
	for _, a := range rs {
		for _, b := range rs {
			if a != b {
				a.host.Peerstore().AddAddrs(b.host.ID(), b.host.Addrs(), time.Hour)
			}
		}
	}
	ids := map[peer.ID]bool{}
	for _, r := range rs {
		ids[r.host.ID()] = true
	}
	members := func(p peer.ID) bool { return ids[p] }
	dir := t.TempDir()
	for _, r := range rs {
		w, err := witness.NewCosigner(witness.CosignerOptions{Signer: r.keys.cosSigner, Origin: testOrigin,
			LogVerifier: r.keys.logVerifier, StateDir: filepath.Join(dir, r.keys.name, "cosigner")})
		if err != nil {
			t.Fatal(err)
		}
		cosigners := []logservice.Cosigner{w}
		for _, p := range rs {
			if p != r {
				cosigners = append(cosigners, &PeerCosigner{Host: r.host, Peer: p.host.ID(), Name: p.keys.name, Verifier: p.keys.cosVerifier})
			}
		}
		own := r.keys.logVerifier
		r.svc, err = logservice.Open(context.Background(), logservice.Options{
			Log:       tlog.Options{Dir: filepath.Join(dir, r.keys.name, "log"), Origin: testOrigin, Signer: r.keys.logSigner},
			Cosigners: cosigners,
			Final: func(b []byte) ([]string, error) {
				_, names, err := witness.VerifyFinal(b, testOrigin, []note.Verifier{own}, cosVs, witness.Threshold(n))
				return names, err
			},
			RetryInterval: 5 * time.Millisecond,
			CosignTimeout: 5 * time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		r.server = &CosignServer{Service: r.svc, Origin: testOrigin, LogVerifiers: logVs, Signer: r.keys.logSigner, Cosigner: w, Admit: members}
		r.server.Register(r.host)
		ctx, cancel := context.WithCancel(context.Background())
		r.cancel, r.done = cancel, make(chan error, 1)
		go func() { r.done <- r.svc.Run(ctx) }()
		t.Cleanup(func() { r.stop(t) })
	}
	return rs
}

func (r *replica) stop(t testing.TB) {
	if r.cancel == nil {
		return
	}
	r.cancel()
	if err := <-r.done; err != nil {
		t.Errorf("%s: Run: %v", r.keys.name, err)
	}
	r.svc.Close()
	r.cancel = nil
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestPeerCosigningMakesEveryReplicaFinal(t *testing.T) {
	rs := startReplicas(t, 3)
	ctx := testCtx(t)
	for i := range 10 {
		for _, r := range rs {
			if _, err := r.svc.Append(ctx, fmt.Appendf(nil, "entry %d", i)); err != nil {
				t.Fatal(err)
			}
		}
	}
	var notes [][]byte
	for _, r := range rs {
		cp, err := r.svc.WaitFinal(ctx, 10)
		if err != nil {
			t.Fatalf("%s: %v", r.keys.name, err)
		}
		_, names, err := witness.VerifyFinal(cp.Note, testOrigin, []note.Verifier{r.keys.logVerifier}, cosVerifiers(rs), 2)
		if err != nil {
			t.Fatalf("%s: final checkpoint does not verify: %v", r.keys.name, err)
		}
		t.Logf("%s: final at size %d, cosigned by %v", r.keys.name, cp.Size, names)
		notes = append(notes, cp.Note)
	}
	// The bodies are the same on every replica.
	for i := range notes {
		a, _, _ := bytes.Cut(notes[i], []byte("\n\n"))
		b, _, _ := bytes.Cut(notes[0], []byte("\n\n"))
		if !bytes.Equal(a, b) {
			t.Errorf("%s's checkpoint body %q differs from %s's %q", rs[i].keys.name, a, rs[0].keys.name, b)
		}
	}
}

func cosVerifiers(rs []*replica) []note.Verifier {
	var vs []note.Verifier
	for _, r := range rs {
		vs = append(vs, r.keys.cosVerifier)
	}
	return vs
}

// A replica whose log differs (a forked or lying node) gets no peer's
// cosignature; the others are final without it.
func TestPeersRefuseAForkedReplica(t *testing.T) {
	rs := startReplicas(t, 3)
	ctx := testCtx(t)
	for i, r := range rs {
		entry := []byte("the agreed entry")
		if i == 2 {
			entry = []byte("a forged entry")
		}
		if _, err := r.svc.Append(ctx, entry); err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range rs[:2] {
		if _, err := r.svc.WaitFinal(ctx, 1); err != nil {
			t.Fatalf("%s: %v", r.keys.name, err)
		}
	}
	forked := rs[2]
	cp, err := forked.svc.Log().Publish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	sig, _, err := rs[0].server.Cosign(ctx, cp.Note)
	if err == nil {
		t.Fatalf("node-a cosigned the forked checkpoint: %v", sig)
	}
	t.Logf("refused as expected: %v", err)
	if f := forked.svc.Final(); f != nil {
		t.Fatalf("the forked replica has a final checkpoint of size %d", f.Size)
	}
}

// A peer outside the policy (a stranger past the gater, or no gater) gets
// no cosignature, even for a checkpoint the node would cosign.
func TestCosignServerRefusesStrangers(t *testing.T) {
	rs := startReplicas(t, 3)
	ctx := testCtx(t)
	for _, r := range rs {
		if _, err := r.svc.Append(ctx, []byte("the agreed entry")); err != nil {
			t.Fatal(err)
		}
	}
	cp, err := rs[1].svc.WaitFinal(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	stranger := newHost(t)
	stranger.Peerstore().AddAddrs(rs[0].host.ID(), rs[0].host.Addrs(), time.Hour)
	c := &PeerCosigner{Host: stranger, Peer: rs[0].host.ID(), Name: rs[0].keys.name, Verifier: rs[0].keys.cosVerifier}
	_, err = c.Cosign(ctx, cp.Note, nil)
	var refused *RefusedError
	if !errors.As(err, &refused) || !strings.Contains(refused.Reason, "not a build node") {
		t.Fatalf("a stranger asking for a cosignature got %v, want a refusal", err)
	}
}
