package logservice_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/logservice"
	"github.com/pyrsia/pyrsia-build/publish/tlog"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	"golang.org/x/mod/sumdb/note"
)

const origin = "pyrsia-build.example/log"

type keys struct {
	logSigner   note.Signer
	logVerifier note.Verifier
	cosigners   []logservice.Cosigner
	verifiers   []note.Verifier
}

func noteKey(t testing.TB, name string, seed byte) (string, string) {
	t.Helper()
	skey, vkey, err := note.GenerateKey(bytes.NewReader(bytes.Repeat([]byte{seed}, 32)), name)
	if err != nil {
		t.Fatal(err)
	}
	return skey, vkey
}

// testKeys makes a log key and n local cosigners with state under dir.
func testKeys(t testing.TB, dir string, n int) keys {
	t.Helper()
	skey, vkey := noteKey(t, "log", 1)
	var k keys
	var err error
	if k.logSigner, err = witness.NewLogSigner(skey); err != nil {
		t.Fatal(err)
	}
	if k.logVerifier, err = witness.NewLogVerifier(vkey); err != nil {
		t.Fatal(err)
	}
	for i := range n {
		cs, cv := noteKey(t, fmt.Sprintf("cosigner-%d", i), byte(10+i))
		signer, err := witness.NewCosignatureSigner(cs)
		if err != nil {
			t.Fatal(err)
		}
		v, err := witness.NewCosignatureVerifier(cv)
		if err != nil {
			t.Fatal(err)
		}
		c, err := witness.NewCosigner(witness.CosignerOptions{Signer: signer, Origin: origin, LogVerifier: k.logVerifier,
			StateDir: filepath.Join(dir, fmt.Sprintf("cosigner-%d", i))})
		if err != nil {
			t.Fatal(err)
		}
		k.cosigners = append(k.cosigners, c)
		k.verifiers = append(k.verifiers, v)
	}
	return k
}

func open(t testing.TB, dir string, k keys, cosigners []logservice.Cosigner) *logservice.Service {
	t.Helper()
	s, err := logservice.Open(context.Background(), logservice.Options{
		Log:           tlog.Options{Dir: filepath.Join(dir, "log"), Origin: origin, Signer: k.logSigner},
		Cosigners:     cosigners,
		Final:         logservice.CosignedBy(origin, k.logVerifier, k.verifiers, len(k.verifiers)),
		RetryInterval: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// run runs s until the test ends.
func run(t testing.TB, s *logservice.Service) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		s.Close()
	})
}

func waitCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestAppendPublishesFinalCheckpoint(t *testing.T) {
	dir := t.TempDir()
	k := testKeys(t, dir, 3)
	s := open(t, dir, k, k.cosigners)
	run(t, s)
	ctx := waitCtx(t)
	for i := range 5 {
		idx, err := s.Append(ctx, fmt.Appendf(nil, "entry %d", i))
		if err != nil {
			t.Fatal(err)
		}
		if idx != uint64(i) {
			t.Fatalf("Append: got index %d, want %d", idx, i)
		}
	}
	cp, err := s.WaitFinal(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != 5 {
		t.Errorf("final size: got %d, want 5", cp.Size)
	}
	_, names, err := witness.VerifyFinal(cp.Note, origin, []note.Verifier{k.logVerifier}, k.verifiers, 3)
	if err != nil {
		t.Fatalf("final checkpoint does not verify: %v", err)
	}
	if len(names) != 3 {
		t.Errorf("cosigners: got %v, want all 3", names)
	}

	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	body := get(t, srv.URL+"/checkpoint", http.StatusOK)
	if !bytes.Equal(body, cp.Note) {
		t.Errorf("/checkpoint: got %q, want the final note %q", body, cp.Note)
	}
	get(t, srv.URL+"/tile/entries/000.p/5", http.StatusOK)
}

func get(t testing.TB, url string, want int) []byte {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != want {
		t.Fatalf("GET %s: got status %d, want %d (%s)", url, resp.StatusCode, want, b)
	}
	return b
}

// flaky is a cosigner that refuses while down is set, then cosigns
// through the real cosigner it wraps.
type flaky struct {
	logservice.Cosigner
	down  atomic.Bool
	calls atomic.Int64
}

func (f *flaky) Cosign(ctx context.Context, n []byte, src witness.ProofSource) (note.Signature, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return note.Signature{}, errors.New("cosigner is down")
	}
	return f.Cosigner.Cosign(ctx, n, src)
}

func TestNotFinalIsNotServedAndIsRetried(t *testing.T) {
	dir := t.TempDir()
	k := testKeys(t, dir, 3)
	f := &flaky{Cosigner: k.cosigners[2]}
	f.down.Store(true)
	s := open(t, dir, k, []logservice.Cosigner{k.cosigners[0], k.cosigners[1], f})
	run(t, s)
	ctx := waitCtx(t)
	if _, err := s.Append(ctx, []byte("entry")); err != nil {
		t.Fatal(err)
	}
	// Wait for the service to have asked and failed at least twice: the
	// first attempt and a retry.
	for f.calls.Load() < 2 {
		select {
		case <-ctx.Done():
			t.Fatal("the down cosigner was not asked again")
		case <-time.After(time.Millisecond):
		}
	}
	if cp := s.Final(); cp != nil {
		t.Fatalf("a checkpoint of size %d is final without the third cosigner", cp.Size)
	}
	srv := httptest.NewServer(s.Handler())
	defer srv.Close()
	get(t, srv.URL+"/checkpoint", http.StatusNotFound)

	f.down.Store(false) // no new append: the retry alone must finish it
	cp, err := s.WaitFinal(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := witness.VerifyFinal(cp.Note, origin, []note.Verifier{k.logVerifier}, k.verifiers, 3); err != nil {
		t.Fatal(err)
	}
	get(t, srv.URL+"/checkpoint", http.StatusOK)
}

func TestRestartCosignsTheStoredCheckpoint(t *testing.T) {
	dir := t.TempDir()
	k := testKeys(t, dir, 2)
	f := &flaky{Cosigner: k.cosigners[1]}
	f.down.Store(true)
	s := open(t, dir, k, []logservice.Cosigner{k.cosigners[0], f})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	if _, err := s.Append(waitCtx(t), []byte("entry")); err != nil {
		t.Fatal(err)
	}
	for f.calls.Load() < 1 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	s.Close()

	// Restarted with every cosigner up and no new entry.
	s = open(t, dir, k, k.cosigners)
	if cp := s.Final(); cp != nil {
		t.Fatalf("the stored checkpoint of size %d was taken as final", cp.Size)
	}
	run(t, s)
	cp, err := s.WaitFinal(waitCtx(t), 1)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != 1 {
		t.Errorf("size: got %d, want 1", cp.Size)
	}

}

func TestIndexFollowsAppends(t *testing.T) {
	dir := t.TempDir()
	k := testKeys(t, dir, 0)
	s := open(t, dir, k, nil)
	run(t, s)
	ctx := waitCtx(t)
	if _, err := s.Append(ctx, []byte("not a publish entry")); err != nil {
		t.Fatal(err)
	}
	if got := s.Index().Len(); got != 0 {
		t.Errorf("index: got %d records, want 0 for a raw entry", got)
	}
	entry, err := os.ReadFile("../testdata/entry/valid-oci.json")
	if err != nil {
		t.Fatal(err)
	}
	entry = bytes.TrimSuffix(entry, []byte("\n"))
	i, err := s.Append(ctx, entry)
	if err != nil {
		t.Fatal(err)
	}
	e, err := publish.ParseEntry(entry)
	if err != nil {
		t.Fatal(err)
	}
	rec, ok := s.Index().ByInputDigest(e.InputDigest)
	if !ok || rec.LogIndex != i {
		t.Errorf("index right after Append: got %+v, %v; want log index %d", rec, ok, i)
	}
	if _, err := s.WaitFinal(ctx, 2); err != nil {
		t.Fatal(err)
	}
	pb, err := s.ProofBundle(ctx, i)
	if err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(pb)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := publish.ParseProofBundle(b); err != nil {
		t.Errorf("the service's proof bundle does not parse: %v", err)
	}
	if _, err := s.ProofBundle(ctx, 2); !errors.Is(err, logservice.ErrNotFinal) {
		t.Errorf("ProofBundle past the final checkpoint: got %v, want ErrNotFinal", err)
	}
}

// aheadCosigner is a cosigner whose replica is ahead: it refuses every
// checkpoint below latest, saying so (CosignedSize), and cosigns from
// there on.
type aheadCosigner struct {
	c       logservice.Cosigner
	latest  uint64
	refused atomic.Int32
	first   chan struct{}
	again   chan struct{} // closed on the second refusal
}

type aheadErr struct{ latest uint64 }

func (e aheadErr) Error() string        { return fmt.Sprintf("cosigned %d already", e.latest) }
func (e aheadErr) CosignedSize() uint64 { return e.latest }

func (a *aheadCosigner) Cosign(ctx context.Context, cpNote []byte, src witness.ProofSource) (note.Signature, error) {
	n, err := note.Open(cpNote, nil)
	var unverified *note.UnverifiedNoteError
	if errors.As(err, &unverified) {
		n = unverified.Note
	}
	cp, err := witness.ParseCheckpointText([]byte(n.Text))
	if err != nil {
		return note.Signature{}, err
	}
	if cp.Size < a.latest {
		switch a.refused.Add(1) {
		case 1:
			close(a.first)
		case 2:
			close(a.again)
		}
		return note.Signature{}, aheadErr{a.latest}
	}
	return a.c.Cosign(ctx, cpNote, src)
}

// signalHandler is a slog handler that closes ch at the first record whose
// message contains msg.
type signalHandler struct {
	msg  string
	ch   chan struct{}
	once *sync.Once
}

func (h signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h signalHandler) Handle(_ context.Context, r slog.Record) error {
	if strings.Contains(r.Message, h.msg) {
		h.once.Do(func() { close(h.ch) })
	}
	return nil
}
func (h signalHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h signalHandler) WithGroup(string) slog.Handler      { return h }

// TestCosignerAheadWaitsForItsSize: a cosigner that refuses a checkpoint
// for having cosigned a larger one is not asked again for smaller sizes:
// the service waits until its log reaches that size and asks there (under
// steady load a lagging replica would otherwise never finalize).
func TestCosignerAheadWaitsForItsSize(t *testing.T) {
	dir := t.TempDir()
	k := testKeys(t, dir, 2)
	ahead := &aheadCosigner{c: k.cosigners[1], latest: 5, first: make(chan struct{}), again: make(chan struct{})}
	waiting := make(chan struct{})
	s, err := logservice.Open(context.Background(), logservice.Options{
		Log:           tlog.Options{Dir: filepath.Join(dir, "log"), Origin: origin, Signer: k.logSigner},
		Cosigners:     []logservice.Cosigner{k.cosigners[0], ahead},
		Final:         logservice.CosignedBy(origin, k.logVerifier, k.verifiers, 2),
		RetryInterval: time.Millisecond,
		Logger:        slog.New(signalHandler{msg: "waiting for this replica", ch: waiting, once: new(sync.Once)}),
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	ctx := waitCtx(t)
	for i := range 3 {
		if _, err := s.Append(ctx, fmt.Appendf(nil, "entry %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-ahead.first:
	case <-ctx.Done():
		t.Fatal("the cosigner was never asked")
	}
	select {
	case <-waiting:
	case <-ahead.again:
		t.Fatal("after the cosigner said it had cosigned size 5, it was asked again for a smaller size")
	case <-ctx.Done():
		t.Fatal(ctx.Err())
	}
	for i := 3; i < 5; i++ {
		if _, err := s.Append(ctx, fmt.Appendf(nil, "entry %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	cp, err := s.WaitFinal(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if n := ahead.refused.Load(); cp.Size != 5 || n != 1 {
		t.Fatalf("final checkpoint of size %d after %d refusals, want 5 after 1", cp.Size, n)
	}
}

// EntryAt reads an entry that is durable but not yet under a checkpoint
// (the FSM reads its own log back on a snapshot restore, before Run).
func TestEntryAtBeyondTheCheckpoint(t *testing.T) {
	dir := t.TempDir()
	k := testKeys(t, dir, 1)
	s := open(t, dir, k, k.cosigners)
	defer s.Close()
	ctx := waitCtx(t)
	for i := range 3 {
		if _, err := s.Append(ctx, fmt.Appendf(nil, "entry %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	for i := range uint64(3) {
		e, err := s.EntryAt(ctx, i)
		if err != nil || string(e) != fmt.Sprintf("entry %d", i) {
			t.Fatalf("EntryAt(%d) = %q, %v", i, e, err)
		}
	}
	if _, err := s.EntryAt(ctx, 3); err == nil {
		t.Fatal("EntryAt(3) of a log of 3 entries did not fail")
	}
}

// TestAppendBatchIndexesAndPublishes: a batch is appended in order, its
// publish entries are indexed before AppendBatch returns, and a final
// checkpoint covers it.
func TestAppendBatchIndexesAndPublishes(t *testing.T) {
	dir := t.TempDir()
	k := testKeys(t, dir, 1)
	s := open(t, dir, k, k.cosigners)
	run(t, s)
	ctx := waitCtx(t)
	entry, err := os.ReadFile("../testdata/entry/valid-oci.json")
	if err != nil {
		t.Fatal(err)
	}
	entry = bytes.TrimSuffix(entry, []byte("\n"))
	e, err := publish.ParseEntry(entry)
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.AppendBatch(ctx, [][]byte{[]byte("raw 1"), entry, []byte("raw 2")})
	if err != nil {
		t.Fatal(err)
	}
	if first != 0 || s.Size() != 3 {
		t.Fatalf("first %d, size %d; want 0 and 3", first, s.Size())
	}
	if rec, ok := s.Index().ByInputDigest(e.InputDigest); !ok || rec.LogIndex != 1 {
		t.Errorf("index right after AppendBatch: got %+v, %v; want log index 1", rec, ok)
	}
	if got := s.Index().Len(); got != 1 {
		t.Errorf("index: %d records, want 1", got)
	}
	cp, err := s.WaitFinal(ctx, 3)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"raw 1", string(entry), "raw 2"} {
		got, err := s.Log().Entry(ctx, uint64(i))
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("entry %d: got %.20q, want %.20q", i, got, want)
		}
	}
	if cp.Size != 3 {
		t.Errorf("final checkpoint of size %d, want 3", cp.Size)
	}
}

// The service's proof bundles carry the log's policy changes below their
// tree size, after appends and after a restart.
func TestProofBundleCarriesPolicyChanges(t *testing.T) {
	change, err := os.ReadFile("../testdata/policychange/valid-remove-node.json")
	if err != nil {
		t.Fatal(err)
	}
	entry, err := os.ReadFile("../testdata/entry/valid-oci.json")
	if err != nil {
		t.Fatal(err)
	}
	ctx := waitCtx(t)
	appendAll := func(s *logservice.Service) {
		t.Helper()
		if _, err := s.Append(ctx, []byte("raw")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AppendBatch(ctx, [][]byte{change, entry}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(s *logservice.Service) {
		t.Helper()
		if _, err := s.WaitFinal(ctx, 3); err != nil {
			t.Fatal(err)
		}
		pb, err := s.ProofBundle(ctx, 2)
		if err != nil {
			t.Fatal(err)
		}
		if len(pb.PolicyChanges) != 1 || pb.PolicyChanges[0].Index != 1 || !bytes.Equal(pb.PolicyChanges[0].RawEntry, change) {
			t.Fatalf("got policy changes %+v, want the one at index 1", pb.PolicyChanges)
		}
		b, err := json.Marshal(pb)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := publish.ParseProofBundle(b); err != nil || !bytes.Contains(b, []byte(publish.ProofBundleV2MediaType)) {
			t.Errorf("the bundle %.80s: %v, want a v2 bundle that parses", b, err)
		}
		if pb, err := s.ProofBundle(ctx, 0); err != nil || len(pb.PolicyChanges) != 1 {
			t.Errorf("the bundle of entry 0: %v, %+v; want the change at 1 (below the tree size)", err, pb)
		}
	}
	t.Run("appended", func(t *testing.T) {
		dir := t.TempDir()
		k := testKeys(t, dir, 0)
		s := open(t, dir, k, nil)
		appendAll(s)
		run(t, s)
		check(s)
	})
	t.Run("reopened", func(t *testing.T) {
		dir := t.TempDir()
		k := testKeys(t, dir, 0)
		s := open(t, dir, k, nil)
		appendAll(s)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		s = open(t, dir, k, nil)
		run(t, s)
		check(s)
	})
}

// stalled is a cosigner that does not answer until its ctx is done.
type stalled struct {
	asked     atomic.Int64
	cancelled chan struct{}
}

func (c *stalled) Cosign(ctx context.Context, _ []byte, _ witness.ProofSource) (note.Signature, error) {
	c.asked.Add(1)
	<-ctx.Done()
	select {
	case c.cancelled <- struct{}{}:
	default:
	}
	return note.Signature{}, ctx.Err()
}

// A checkpoint is final as soon as Final accepts the cosignatures in so
// far: a cosigner that does not answer (the slowest replica) holds it
// back neither for the cosigning timeout nor at all, and it is cancelled.
func TestFinalWithoutWaitingForTheSlowest(t *testing.T) {
	dir := t.TempDir()
	k := testKeys(t, dir, 3)
	slow := &stalled{cancelled: make(chan struct{}, 1)}
	s, err := logservice.Open(context.Background(), logservice.Options{
		Log:           tlog.Options{Dir: filepath.Join(dir, "log"), Origin: origin, Signer: k.logSigner},
		Cosigners:     []logservice.Cosigner{k.cosigners[0], slow, k.cosigners[2]},
		Final:         logservice.CosignedBy(origin, k.logVerifier, k.verifiers, 2),
		CosignTimeout: time.Minute,
		RetryInterval: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	for round := 1; round <= 3; round++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if _, err := s.Append(ctx, fmt.Appendf(nil, "entry %d", round)); err != nil {
			t.Fatal(err)
		}
		cp, err := s.WaitFinal(ctx, uint64(round))
		cancel()
		if err != nil {
			t.Fatalf("round %d: no final checkpoint while one cosigner of three does not answer (threshold 2): %v", round, err)
		}
		_, names, err := witness.VerifyFinal(cp.Note, origin, []note.Verifier{k.logVerifier}, k.verifiers, 2)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if len(names) != 2 || names[0] != k.verifiers[0].Name() || names[1] != k.verifiers[2].Name() {
			t.Errorf("round %d: cosigned by %v, want cosigner-0 and cosigner-2, in the cosigners' order", round, names)
		}
		select {
		case <-slow.cancelled:
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: the cosigner that did not answer was not cancelled", round)
		}
	}
	if n := slow.asked.Load(); n < 3 {
		t.Errorf("the slow cosigner was asked %d times, want once a checkpoint (3)", n)
	}
}

// Without a majority's cosignatures a checkpoint is not final, however
// many answered: the early return takes nothing less than Final accepts.
func TestNotFinalBelowTheThreshold(t *testing.T) {
	dir := t.TempDir()
	k := testKeys(t, dir, 3)
	down := &flaky{Cosigner: k.cosigners[1]}
	down.down.Store(true)
	slow := &stalled{cancelled: make(chan struct{}, 1)}
	s, err := logservice.Open(context.Background(), logservice.Options{
		Log:           tlog.Options{Dir: filepath.Join(dir, "log"), Origin: origin, Signer: k.logSigner},
		Cosigners:     []logservice.Cosigner{k.cosigners[0], down, slow},
		Final:         logservice.CosignedBy(origin, k.logVerifier, k.verifiers, 2),
		CosignTimeout: 200 * time.Millisecond,
		RetryInterval: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	ctx := waitCtx(t)
	if _, err := s.Append(ctx, []byte("entry")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-slow.cancelled: // the round timed out
	case <-ctx.Done():
		t.Fatal("the cosigning round did not time out")
	}
	if cp := s.Final(); cp != nil {
		t.Fatalf("a checkpoint of size %d is final with one cosignature of the two needed", cp.Size)
	}
	down.down.Store(false)
	cp, err := s.WaitFinal(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := witness.VerifyFinal(cp.Note, origin, []note.Verifier{k.logVerifier}, k.verifiers, 2); err != nil {
		t.Fatal(err)
	}
}

// AppendParsedBatch indexes the parses it is given as they are (the
// state machine's, made while it checked the entries), parses the
// entries given without one, and notes a policy change among them.
func TestAppendParsedBatchTakesTheParses(t *testing.T) {
	dir := t.TempDir()
	k := testKeys(t, dir, 0)
	s := open(t, dir, k, nil)
	run(t, s)
	ctx := waitCtx(t)
	change, err := os.ReadFile("../testdata/policychange/valid-remove-node.json")
	if err != nil {
		t.Fatal(err)
	}
	entry, err := os.ReadFile("../testdata/entry/valid-oci.json")
	if err != nil {
		t.Fatal(err)
	}
	entry = bytes.TrimSuffix(entry, []byte("\n"))
	e, err := publish.ParseEntry(entry)
	if err != nil {
		t.Fatal(err)
	}
	// Entry 2's parse is given, and taken without a look at its bytes
	// (which here are not even an entry: only the test breaks the
	// contract, to see that the parse is what gets indexed).
	first, err := s.AppendParsedBatch(ctx, [][]byte{change, []byte("raw"), entry}, []*publish.Entry{nil, e})
	if err != nil || first != 0 {
		t.Fatalf("AppendParsedBatch: %d, %v", first, err)
	}
	rec, ok := s.Index().Get(1)
	if !ok || rec.InputDigest != e.InputDigest {
		t.Errorf("index at 1: %+v, %v; want the parse given", rec, ok)
	}
	if rec, ok := s.Index().Get(2); !ok || rec.InputDigest != e.InputDigest {
		t.Errorf("index at 2 (no parse given, parsed here): %+v, %v", rec, ok)
	}
	if got := s.PolicyChanges(3); len(got) != 1 || got[0] != 0 {
		t.Errorf("policy changes %v, want [0]", got)
	}
	if _, err := s.WaitFinal(ctx, 3); err != nil {
		t.Fatal(err)
	}
}

// A rule that needs no cosignature makes the log's own checkpoint final
// even when every cosigner asked refuses.
func TestFinalWithoutCosignaturesWhenTheRuleNeedsNone(t *testing.T) {
	dir := t.TempDir()
	k := testKeys(t, dir, 1)
	down := &flaky{Cosigner: k.cosigners[0]}
	down.down.Store(true)
	s, err := logservice.Open(context.Background(), logservice.Options{
		Log:           tlog.Options{Dir: filepath.Join(dir, "log"), Origin: origin, Signer: k.logSigner},
		Cosigners:     []logservice.Cosigner{down},
		Final:         logservice.CosignedBy(origin, k.logVerifier, nil, 0),
		RetryInterval: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	ctx := waitCtx(t)
	if _, err := s.Append(ctx, []byte("entry")); err != nil {
		t.Fatal(err)
	}
	cp, err := s.WaitFinal(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := witness.ParseCheckpoint(cp.Note, origin, k.logVerifier); err != nil {
		t.Fatalf("the final note %q: %v", cp.Note, err)
	}
}
