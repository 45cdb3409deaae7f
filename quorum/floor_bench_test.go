package quorum

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/pyrsia/pyrsia-build/attest"
	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
)

// The floor of issue 8's burst on this machine: what gossip and the
// signatures of one entry cost, with nothing of the build network around
// them (BENCHMARKS.md, "Issue 8, the floor of this machine").
//
//	go test ./quorum -run '^$' -bench 'BenchmarkFloor' -benchtime 2000x
//
// An entry of the burst (votes only, five build nodes) is one request and
// five votes gossiped, each message signed by its author's libp2p key
// (ed25519, StrictSign) and checked by all five routers (the author's own
// router checks its message as it publishes it: ValidateLocal), and each
// request and vote DSSE envelope (ECDSA P-256) checked by the five nodes'
// validators.

const (
	floorNodes   = 5
	floorMsgSize = 4 << 10
	// floorWindow is how many of its messages a publisher may have out
	// (published, not yet delivered to all four peers): the burst's
	// traffic without overflowing the queues (gossipQueueSize).
	floorWindow = 256
)

// floorCPU is the process's user and system CPU time so far.
func floorCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFloorGossip: five libp2p hosts in one process (NewHost, the
// nodes' hosts, on 127.0.0.1 TCP), full mesh on one topic with the nodes'
// router settings (gossip.go's queues, message size and peer filter),
// every host publishing b.N messages of 4 KiB at once (at most
// floorWindow of its own out). msgs/s counts published messages that
// reached all four peers, deliveries/s the messages delivered to a
// subscriber other than the author (four per message); cpu-us/delivery is
// the process's CPU (getrusage) per delivery. Signing StrictSign (the
// nodes' setting) or StrictNoSign (author and sequence number, no
// signature), and no topic validator or one that accepts everything (the
// nodes register one; it moves every message through the validation
// pipeline's goroutines).
func BenchmarkFloorGossip(b *testing.B) {
	for _, c := range []struct {
		name      string
		sign      bool
		validator bool
	}{
		{"sign=strict,validator=accept", true, true},
		{"sign=strict,validator=none", true, false},
		{"sign=none,validator=accept", false, true},
		{"sign=none,validator=none", false, false},
	} {
		b.Run(c.name, func(b *testing.B) { benchFloorGossip(b, c.sign, c.validator) })
	}
}

func benchFloorGossip(b *testing.B, sign, validator bool) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	nodes := testNodes(b, floorNodes)
	ids := make([]peer.ID, floorNodes)
	allowed := make(map[peer.ID]bool)
	for i, nd := range nodes {
		ids[i], allowed[nd.id] = nd.id, true
	}
	hosts := make([]host.Host, floorNodes)
	for i, nd := range nodes {
		hosts[i] = startHost(b, nd.key, NewGater(ids))
	}
	connectAll(b, hosts)

	const topicName = "/pyrsia-build/floor/1"
	policy := pubsub.StrictSign
	if !sign {
		policy = pubsub.StrictNoSign
	}
	tr := &floorTracer{}
	topics := make([]*pubsub.Topic, floorNodes)
	subs := make([]*pubsub.Subscription, floorNodes)
	for i, h := range hosts {
		// A build node's router (routerOptions), with the signing policy
		// of the case.
		ps, err := pubsub.NewGossipSub(ctx, h, append(routerOptions(func(p peer.ID) bool { return allowed[p] }),
			pubsub.WithMessageSignaturePolicy(policy),
			pubsub.WithRawTracer(tr),
		)...)
		if err != nil {
			b.Fatal(err)
		}
		if validator {
			accept := func(context.Context, peer.ID, *pubsub.Message) pubsub.ValidationResult {
				return pubsub.ValidationAccept
			}
			if err := ps.RegisterTopicValidator(topicName, accept); err != nil {
				b.Fatal(err)
			}
		}
		if topics[i], err = ps.Join(topicName); err != nil {
			b.Fatal(err)
		}
		if subs[i], err = topics[i].Subscribe(pubsub.WithBufferSize(gossipQueueSize)); err != nil {
			b.Fatal(err)
		}
	}
	defer func() {
		for i := range subs {
			subs[i].Cancel()
			topics[i].Close()
		}
	}()

	// got[j][a] is how many of author a's messages node j has delivered;
	// progress[a] is signalled after each of them.
	var got [floorNodes][floorNodes]atomic.Int64
	var progress [floorNodes]chan struct{}
	for a := range progress {
		progress[a] = make(chan struct{}, 1)
	}
	var delivered atomic.Int64 // to a node other than the author
	var want atomic.Int64
	done := make(chan struct{}, 1)
	var wg sync.WaitGroup
	for j, sub := range subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, err := sub.Next(ctx)
				if err != nil {
					return
				}
				a := int(m.Data[0])
				got[j][a].Add(1)
				if a == j {
					continue
				}
				select {
				case progress[a] <- struct{}{}:
				default:
				}
				if delivered.Add(1) == want.Load() {
					done <- struct{}{}
				}
			}
		}()
	}
	defer wg.Wait()
	defer cancel()

	// minGot is how many of author a's messages every other node has.
	minGot := func(a int) int64 {
		m := int64(-1)
		for j := range floorNodes {
			if j == a {
				continue
			}
			if n := got[j][a].Load(); m < 0 || n < m {
				m = n
			}
		}
		return m
	}
	payload := make([]byte, floorMsgSize)
	if _, err := rand.Read(payload); err != nil {
		b.Fatal(err)
	}
	var seq atomic.Uint64      // distinct data for every message
	var sent [floorNodes]int64 // published by each host (its own goroutine's)
	publish := func(a int, n int) error {
		for range n {
			for sent[a]-minGot(a) >= floorWindow {
				select {
				case <-progress[a]:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			data := make([]byte, floorMsgSize)
			copy(data, payload)
			data[0] = byte(a)
			binary.BigEndian.PutUint64(data[1:], seq.Add(1))
			if err := topics[a].Publish(ctx, data); err != nil {
				return err
			}
			sent[a]++
		}
		return nil
	}
	run := func(n int) (time.Duration, error) {
		want.Store(delivered.Load() + int64(n*floorNodes*(floorNodes-1)))
		start := time.Now()
		errs := make(chan error, floorNodes)
		for a := range floorNodes {
			go func() { errs <- publish(a, n) }()
		}
		for range floorNodes {
			if err := <-errs; err != nil {
				return 0, err
			}
		}
		select {
		case <-done:
		case <-time.After(3 * time.Minute):
			return 0, fmt.Errorf("after 3 minutes %d of %d messages delivered", delivered.Load(), want.Load())
		}
		return time.Since(start), nil
	}

	// Every host's topic has its four peers, then one message from each
	// host reaches all (through the mesh, once it has formed).
	waitFor(b, 10*time.Second, "every host to see its four peers on the topic", func() bool {
		for _, t := range topics {
			if len(t.ListPeers()) < floorNodes-1 {
				return false
			}
		}
		return true
	})
	time.Sleep(1500 * time.Millisecond) // a heartbeat or more: the mesh
	if _, err := run(1); err != nil {
		b.Fatal(err)
	}

	tr.reset()
	b.ResetTimer()
	cpu0 := floorCPU(b)
	wall, err := run(b.N)
	cpu := floorCPU(b) - cpu0
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	msgs := float64(b.N * floorNodes)
	deliveries := msgs * (floorNodes - 1)
	b.ReportMetric(msgs/wall.Seconds(), "msgs/s")
	b.ReportMetric(deliveries/wall.Seconds(), "deliveries/s")
	b.ReportMetric(float64(cpu.Microseconds())/deliveries, "cpu-us/delivery")
	b.ReportMetric(float64(cpu.Microseconds())/msgs, "cpu-us/msg")
	b.ReportMetric(cpu.Seconds()/wall.Seconds(), "cores")
	b.ReportMetric(float64(tr.duplicates.Load())/deliveries, "dups/delivery")
	b.ReportMetric(float64(tr.dropped.Load()), "dropped-rpcs")
	if r := tr.rejected(); len(r) > 0 {
		b.Logf("rejected messages: %v", r)
	}
}

// floorTracer counts what the routers drop: RPCs a full outbound queue
// refused, messages rejected (by reason: a full validation queue,
// throttled validation, ...), and the duplicates received.
type floorTracer struct {
	duplicates, dropped atomic.Int64
	mu                  sync.Mutex
	rejects             map[string]int
}

func (t *floorTracer) reset() {
	t.duplicates.Store(0)
	t.dropped.Store(0)
	t.mu.Lock()
	t.rejects = nil
	t.mu.Unlock()
}

func (t *floorTracer) rejected() map[string]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.rejects
}

func (t *floorTracer) RejectMessage(_ *pubsub.Message, reason string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.rejects == nil {
		t.rejects = make(map[string]int)
	}
	t.rejects[reason]++
}
func (t *floorTracer) DuplicateMessage(*pubsub.Message)                     { t.duplicates.Add(1) }
func (t *floorTracer) DropRPC(*pubsub.RPC, peer.ID)                         { t.dropped.Add(1) }
func (t *floorTracer) AddPeer(peer.ID, protocol.ID)                         {}
func (t *floorTracer) RemovePeer(peer.ID)                                   {}
func (t *floorTracer) OnNewOutboundStream(peer.ID, protocol.ID)             {}
func (t *floorTracer) OnClosedOutboundStream(peer.ID)                       {}
func (t *floorTracer) Join(string)                                          {}
func (t *floorTracer) Leave(string)                                         {}
func (t *floorTracer) Graft(peer.ID, string)                                {}
func (t *floorTracer) Prune(peer.ID, string)                                {}
func (t *floorTracer) ValidateMessage(*pubsub.Message)                      {}
func (t *floorTracer) DeliverMessage(*pubsub.Message)                       {}
func (t *floorTracer) ThrottlePeer(peer.ID)                                 {}
func (t *floorTracer) RecvRPC(*pubsub.RPC)                                  {}
func (t *floorTracer) SendRPC(*pubsub.RPC, peer.ID)                         {}
func (t *floorTracer) SendRPCCompleted(*pubsub.RPC, peer.ID, time.Duration) {}
func (t *floorTracer) UndeliverableMessage(*pubsub.Message)                 {}

// floorPayloadType is the DSSE payload type of the crypto benchmarks (a
// vote's envelope signs an in-toto statement; the type only changes the
// PAE's few bytes).
const floorPayloadType = "application/vnd.in-toto+json"

// BenchmarkFloorCrypto: each signature of an entry alone, one at a time on
// one goroutine. ecdsa-p256 is crypto/ecdsa on a SHA-256 digest;
// dsse-ecdsa is attest's envelope signing and check of a 4 KiB payload (a
// vote's envelope: PAE, SHA-256, ECDSA, with a cosign key, as the nodes
// sign and the validators check); ed25519-libp2p-4KiB is the libp2p key's
// sign and verify of 4 KiB (what StrictSign does to each message, before
// its protobuf copy and encoding); ed25519-note-200B is crypto/ed25519 on
// a checkpoint-sized note (log signature, cosignatures).
func BenchmarkFloorCrypto(b *testing.B) {
	msg4k := make([]byte, floorMsgSize)
	if _, err := rand.Read(msg4k); err != nil {
		b.Fatal(err)
	}
	digest := sha256.Sum256(msg4k)

	ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	esig, err := ecdsa.SignASN1(rand.Reader, ek, digest[:])
	if err != nil {
		b.Fatal(err)
	}
	floorRun(b, "ecdsa-p256/sign", func(b *testing.B) {
		for b.Loop() {
			if _, err := ecdsa.SignASN1(rand.Reader, ek, digest[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
	floorRun(b, "ecdsa-p256/verify", func(b *testing.B) {
		for b.Loop() {
			if !ecdsa.VerifyASN1(&ek.PublicKey, digest[:], esig) {
				b.Fatal("signature not verified")
			}
		}
	})

	signer := testSigner(b, 0)
	key := publicKey(b, signer, "node-a")
	env, err := signer.SignEnvelope(floorPayloadType, msg4k)
	if err != nil {
		b.Fatal(err)
	}
	floorRun(b, "dsse-ecdsa-4KiB/sign", func(b *testing.B) {
		for b.Loop() {
			if _, err := signer.SignEnvelope(floorPayloadType, msg4k); err != nil {
				b.Fatal(err)
			}
		}
	})
	floorRun(b, "dsse-ecdsa-4KiB/verify", func(b *testing.B) {
		keys := []*attest.PublicKey{key}
		for b.Loop() {
			if len(attest.VerifyEnvelope(env, keys)) != 1 {
				b.Fatal("envelope not verified")
			}
		}
	})

	lk, lpub, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		b.Fatal(err)
	}
	lsig, err := lk.Sign(msg4k)
	if err != nil {
		b.Fatal(err)
	}
	floorRun(b, "ed25519-libp2p-4KiB/sign", func(b *testing.B) {
		for b.Loop() {
			if _, err := lk.Sign(msg4k); err != nil {
				b.Fatal(err)
			}
		}
	})
	floorRun(b, "ed25519-libp2p-4KiB/verify", func(b *testing.B) {
		for b.Loop() {
			if ok, err := lpub.Verify(msg4k, lsig); !ok || err != nil {
				b.Fatal("signature not verified", err)
			}
		}
	})

	npub, nk, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	note := msg4k[:200]
	nsig := ed25519.Sign(nk, note)
	floorRun(b, "ed25519-note-200B/sign", func(b *testing.B) {
		for b.Loop() {
			ed25519.Sign(nk, note)
		}
	})
	floorRun(b, "ed25519-note-200B/verify", func(b *testing.B) {
		for b.Loop() {
			if !ed25519.Verify(npub, note, nsig) {
				b.Fatal("signature not verified")
			}
		}
	})
}

// floorRun runs f as the sub-benchmark name and reports the process's
// CPU time per op (getrusage): on a shared machine ns/op also counts the
// time other processes held the core.
func floorRun(b *testing.B, name string, f func(b *testing.B)) {
	b.Run(name, func(b *testing.B) {
		cpu0 := floorCPU(b)
		f(b)
		b.ReportMetric(float64((floorCPU(b)-cpu0).Nanoseconds())/1000/float64(b.N), "cpu-us/op")
	})
}

// Signatures of one entry of the burst (five build nodes, votes only), at
// the least: see the comment at the top. Checkpoints and cosignatures are
// per checkpoint, not per entry, and left out (BENCHMARKS.md counts them
// over the entries of a checkpoint).
const (
	entryECDSASigns    = 1 + floorNodes                     // the request, the five votes
	entryECDSAVerifies = floorNodes + floorNodes*floorNodes // the request, each vote, at five validators
	entryEd25519Signs  = 1 + floorNodes                     // six gossip messages
	entryEd25519Checks = (1 + floorNodes) * floorNodes      // each at five routers
	entryBudget        = 2 * time.Second / 300              // 2 cores, 300 entries a second
)

// BenchmarkFloorEntryCrypto: one op is every signature and signature check
// of one entry, done one after the other on one goroutine (the DSSE
// envelopes and libp2p ed25519 on 4 KiB, as BenchmarkFloorCrypto).
// cpu-ms/entry is the process's CPU per op; budget-% is its share of the
// 6.67 ms an entry that 300 entries a second on two cores allow.
func BenchmarkFloorEntryCrypto(b *testing.B) {
	msg4k := make([]byte, floorMsgSize)
	if _, err := rand.Read(msg4k); err != nil {
		b.Fatal(err)
	}
	signer := testSigner(b, 0)
	keys := []*attest.PublicKey{publicKey(b, signer, "node-a")}
	lk, lpub, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu0 := floorCPU(b)
	for b.Loop() {
		var env *dssepb.Envelope
		for range entryECDSASigns {
			if env, err = signer.SignEnvelope(floorPayloadType, msg4k); err != nil {
				b.Fatal(err)
			}
		}
		for range entryECDSAVerifies {
			if len(attest.VerifyEnvelope(env, keys)) != 1 {
				b.Fatal("envelope not verified")
			}
		}
		var sig []byte
		for range entryEd25519Signs {
			if sig, err = lk.Sign(msg4k); err != nil {
				b.Fatal(err)
			}
		}
		for range entryEd25519Checks {
			if ok, err := lpub.Verify(msg4k, sig); !ok || err != nil {
				b.Fatal("signature not verified", err)
			}
		}
	}
	cpu := floorCPU(b) - cpu0
	perEntry := cpu.Seconds() * 1000 / float64(b.N)
	b.ReportMetric(perEntry, "cpu-ms/entry")
	b.ReportMetric(100*perEntry/(entryBudget.Seconds()*1000), "budget-%")
}
