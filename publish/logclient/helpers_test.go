package logclient

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/pyrsia/pyrsia-build/publish/tlog"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	"golang.org/x/mod/sumdb/note"
)

const testOrigin = "example.org/network"

// network is the keys of a test network: one log key and n cosigners.
type network struct {
	logSigner  note.Signer
	logKey     note.Verifier
	cosSigners []note.Signer
	cosKeys    []note.Verifier
}

func newNetwork(t testing.TB, n int) *network {
	t.Helper()
	log := newNodeKeys(t, testOrigin)
	net := &network{logSigner: log.logSigner, logKey: log.logKey}
	for i := range n {
		k := newNodeKeys(t, fmt.Sprintf("node-%c", 'a'+i))
		net.cosSigners = append(net.cosSigners, k.cosSigner)
		net.cosKeys = append(net.cosKeys, k.cosKey)
	}
	return net
}

// nodeKeys is a new note key of a build node, as the log's key (it
// signs checkpoints) and as a cosigner's.
type nodeKeys struct {
	vkey                 string // the verifier key, as a policy names it
	logSigner, cosSigner note.Signer
	logKey, cosKey       note.Verifier
}

func newNodeKeys(t testing.TB, name string) *nodeKeys {
	t.Helper()
	skey, vkey, err := witness.GenerateKey(name)
	if err != nil {
		t.Fatal(err)
	}
	k := &nodeKeys{vkey: vkey}
	if k.logSigner, err = witness.NewLogSigner(skey); err == nil {
		if k.logKey, err = witness.NewLogVerifier(vkey); err == nil {
			if k.cosSigner, err = witness.NewCosignatureSigner(skey); err == nil {
				k.cosKey, err = witness.NewCosignatureVerifier(vkey)
			}
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// policyNode returns the node of a policy named name with note key vkey,
// a new cosign key (attestations are not judged here, but a policy names
// one a node) and a peer ID made of fill and i.
func policyNode(t testing.TB, name, vkey, fill string, i int) policy.Node {
	t.Helper()
	k, err := attest.GenerateKeyPair([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	return policy.Node{Name: name, CosignKey: string(k.Public), NoteKey: vkey,
		PeerID: "12D3KooW" + strings.Repeat(fill, 43) + string(rune('A'+i))}
}

// trust returns the Trust of the network: the log key and a majority of
// the cosigners (or threshold, if not 0).
func (n *network) trust(threshold int) *policy.Trust {
	if threshold == 0 {
		threshold = witness.Threshold(len(n.cosKeys))
	}
	return &policy.Trust{Origin: testOrigin, LogVerifiers: []note.Verifier{n.logKey}, Cosigners: n.cosKeys, CosignThreshold: threshold}
}

// testLog is a real log on disk with the network's cosigners, each with
// its own state in the log's folder.
type testLog struct {
	t    testing.TB
	net  *network
	dir  string
	log  *tlog.Log
	cos  []*witness.Cosigner
	next int // the next entry's number, for entry text
	tag  string
}

// newTestLog opens a log in a new folder. Entries are "tag entry N".
func newTestLog(t testing.TB, net *network, tag string) *testLog {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "log")
	l, err := tlog.Open(context.Background(), tlog.Options{Dir: dir, Origin: testOrigin, Signer: net.logSigner})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	tl := &testLog{t: t, net: net, dir: dir, log: l, tag: tag}
	for i, s := range net.cosSigners {
		c, err := witness.NewCosigner(witness.CosignerOptions{Signer: s, Origin: testOrigin, LogVerifier: net.logKey,
			StateDir: filepath.Join(t.TempDir(), fmt.Sprintf("cosigner-%d", i))})
		if err != nil {
			t.Fatal(err)
		}
		tl.cos = append(tl.cos, c)
	}
	return tl
}

func entryText(tag string, i int) []byte { return fmt.Appendf(nil, "%s entry %d", tag, i) }

// append adds n entries (numbered on from the last) with the given tag.
func (tl *testLog) append(n int, tag string) {
	tl.t.Helper()
	batch := make([][]byte, n)
	for i := range batch {
		batch[i] = entryText(tag, tl.next+i)
	}
	if _, err := tl.log.AppendBatch(context.Background(), batch); err != nil {
		tl.t.Fatal(err)
	}
	tl.next += n
}

// publish publishes a checkpoint cosigned by the first k cosigners and
// commits it; it returns the note.
func (tl *testLog) publish(k int) []byte {
	tl.t.Helper()
	ctx := context.Background()
	cand, err := tl.log.Publish(ctx)
	if err != nil {
		tl.t.Fatal(err)
	}
	var sigs []note.Signature
	for _, c := range tl.cos[:k] {
		sig, err := c.Cosign(ctx, cand.Note, tl.log)
		if err != nil {
			tl.t.Fatal(err)
		}
		sigs = append(sigs, sig)
	}
	signed, err := witness.AddSignatures(cand.Note, sigs...)
	if err != nil {
		tl.t.Fatal(err)
	}
	if err := tl.log.Commit(signed); err != nil {
		tl.t.Fatal(err)
	}
	return signed
}

// serve serves the log over HTTP, through wrap if not nil.
func (tl *testLog) serve(wrap func(http.Handler) http.Handler) *httptest.Server {
	var h http.Handler = tl.log.Handler()
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	tl.t.Cleanup(srv.Close)
	return srv
}

func openURL(t testing.TB, u string) Source {
	t.Helper()
	s, err := OpenURL(u, URLOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func openDir(t testing.TB, dir string) Source {
	t.Helper()
	s, err := OpenDir(context.Background(), dir, DirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// switchable is a handler whose target can be changed, for a source that
// starts serving another log.
type switchable struct{ h atomic.Pointer[http.Handler] }

func (s *switchable) set(h http.Handler) { s.h.Store(&h) }

func (s *switchable) ServeHTTP(w http.ResponseWriter, r *http.Request) { (*s.h.Load()).ServeHTTP(w, r) }
