package exchange

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/pyrsia/pyrsia-build/publish/tlog"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	"golang.org/x/mod/sumdb/note"
)

// newHost starts a libp2p host on loopback TCP, closed at the end of the
// test.
func newHost(t testing.TB) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay(), libp2p.DisableMetrics())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

// connect connects a to b.
func connect(t testing.TB, a, b host.Host) {
	t.Helper()
	if err := a.Connect(context.Background(), peer.AddrInfo{ID: b.ID(), Addrs: b.Addrs()}); err != nil {
		t.Fatal(err)
	}
}

const testOrigin = "example.org/network"

// testLog is a real log on disk, its checkpoints cosigned by a majority of
// three cosigners.
type testLog struct {
	t     testing.TB
	dir   string
	log   *tlog.Log
	cos   []*witness.Cosigner
	trust *policy.Trust
}

func newTestLog(t testing.TB) *testLog {
	t.Helper()
	skey, vkey, err := witness.GenerateKey(testOrigin)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := witness.NewLogSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	logKey, err := witness.NewLogVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "log")
	l, err := tlog.Open(context.Background(), tlog.Options{Dir: dir, Origin: testOrigin, Signer: signer})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	tl := &testLog{t: t, dir: dir, log: l}
	var keys []note.Verifier
	for i := range 3 {
		skey, vkey, err := witness.GenerateKey(fmt.Sprintf("node-%c", 'a'+i))
		if err != nil {
			t.Fatal(err)
		}
		s, err := witness.NewCosignatureSigner(skey)
		if err != nil {
			t.Fatal(err)
		}
		v, err := witness.NewCosignatureVerifier(vkey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := witness.NewCosigner(witness.CosignerOptions{Signer: s, Origin: testOrigin, LogVerifier: logKey,
			StateDir: filepath.Join(t.TempDir(), fmt.Sprintf("cosigner-%d", i))})
		if err != nil {
			t.Fatal(err)
		}
		tl.cos = append(tl.cos, c)
		keys = append(keys, v)
	}
	tl.trust = &policy.Trust{Origin: testOrigin, LogVerifiers: []note.Verifier{logKey}, Cosigners: keys, CosignThreshold: witness.Threshold(len(keys))}
	return tl
}

func entryText(i int) []byte { return fmt.Appendf(nil, "entry %d", i) }

// appendAndPublish appends entries from..to-1 and publishes a final
// checkpoint of the log.
func (tl *testLog) appendAndPublish(from, to int) {
	tl.t.Helper()
	ctx := context.Background()
	for i := from; i < to; i++ {
		if _, err := tl.log.Append(ctx, entryText(i)); err != nil {
			tl.t.Fatal(err)
		}
	}
	cand, err := tl.log.Publish(ctx)
	if err != nil {
		tl.t.Fatal(err)
	}
	var sigs []note.Signature
	for _, c := range tl.cos[:2] {
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
}
