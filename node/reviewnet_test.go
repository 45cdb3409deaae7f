package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/logclient"
	"github.com/pyrsia/pyrsia-build/publish/logservice"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/pyrsia/pyrsia-build/publish/tlog"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	"github.com/pyrsia/pyrsia-build/quorum"
)

// fakeStream is the end of a RequestProtocol stream that relay closes or
// resets; reading goes through the bufio.Reader relay is given.
type fakeStream struct {
	network.Stream
	reset, closed bool
}

func (s *fakeStream) Close() error { s.closed = true; return nil }
func (s *fakeStream) Reset() error { s.reset = true; return nil }

func (s *fakeStream) SetReadDeadline(time.Time) error { return nil }

func reviewForwarder(t *testing.T, members int) (*forwarder, *cluster) {
	t.Helper()
	c := newCluster(t, members, nil)
	nw, err := quorum.NetworkFromPolicy(c.policy)
	if err != nil {
		t.Fatal(err)
	}
	return newForwarder(nil, nw, nil, slog.New(slog.DiscardHandler)), c
}

// Regression (review-net): a lying build node that took a forwarded
// request could send vote events without end, each up to 1 MiB and naming
// any node: the regular node appended every one to the round's status
// (Votes grew without bound: memory) and passed it on to the requester as
// a vote of a node that is not in the policy. A relayed vote now counts
// only for a build node of the policy, once; a vote naming another ends
// the relay.
func TestReviewRelayedVotesBounded(t *testing.T) {
	f, c := reviewForwarder(t, 3)
	input := fuzzInput
	f.rounds[input] = &RoundStatus{InputDigest: input, State: "pending"}
	_, ch, cancel := f.events.subscribe(input)
	defer cancel()
	var lines bytes.Buffer
	enc := json.NewEncoder(&lines)
	// node-a votes twice (a lie or a repeat), then names no member.
	enc.Encode(Event{Type: EventVote, Input: input, Node: c.nodes[0].name, Subjects: []string{"sha256:" + strings.Repeat("ab", 32)}})
	enc.Encode(Event{Type: EventVote, Input: input, Node: c.nodes[0].name, Subjects: []string{"sha256:" + strings.Repeat("cd", 32)}})
	for i := range 2000 {
		enc.Encode(Event{Type: EventVote, Input: input, Node: fmt.Sprintf("sybil-%d-%s", i, strings.Repeat("x", 512))})
	}
	st := &fakeStream{}
	f.relay(st, bufio.NewReader(&lines), input, time.Now().Add(time.Hour))
	rs := f.status(input)
	if len(rs.Votes) != 1 || rs.Votes[0] != c.nodes[0].name {
		t.Errorf("round status after a lying relay: %d votes (first %.40q), want node-a's only", len(rs.Votes), rs.Votes)
	}
	got, strangers := 0, 0
	for len(ch) > 0 {
		if ev := <-ch; ev.Type == EventVote {
			got++
			if ev.Node != c.nodes[0].name {
				strangers++
			}
		}
	}
	if got != 1 || strangers != 0 {
		t.Errorf("%d votes passed on to the requester, %d of nodes outside the policy; want node-a's only", got, strangers)
	}
	if !st.reset {
		t.Error("the stream of a build node naming a voter outside the policy was not reset")
	}
}

// forwardFixture returns a cluster of three (not started), its network,
// and a request node-c signed: what the forward tests pass to build
// nodes of their own (buildNodeHost).
func forwardFixture(t *testing.T) (*cluster, *quorum.Network, *quorum.BuildRequest) {
	t.Helper()
	c := newCluster(t, 3, nil)
	nw, err := quorum.NetworkFromPolicy(c.policy)
	if err != nil {
		t.Fatal(err)
	}
	b, err := SignRequest(c.policy, ociSpec(6), c.nodes[2].keys.Cosign)
	if err != nil {
		t.Fatal(err)
	}
	req, err := quorum.ParseBuildRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	return c, nw, req
}

// buildNodeHost returns a loopback libp2p host with node i's identity
// whose RequestProtocol streams handle serves, closed at the test's end: a
// build node as a regular node's forwarder meets it, answering as the
// test says.
func (c *cluster) buildNodeHost(t *testing.T, i int, handle network.StreamHandler) host.Host {
	t.Helper()
	h, err := libp2p.New(libp2p.Identity(c.nodes[i].keys.P2P), libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"), libp2p.DisableRelay())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	h.SetStreamHandler(RequestProtocol, handle)
	return h
}

// Regression (review-net): a regular node passed a request to its build
// nodes in turn but gave up at the first refusal: one lying build node
// (first among the bootstrap peers, say) that refuses every request
// censored every requester of that regular node, though the others would
// have taken it. A refusal now moves on to the next build node; the
// request is refused only when none took it.
func TestReviewForwardPastALyingRefusal(t *testing.T) {
	c, nw, req := forwardFixture(t)
	// node-a refuses everything; node-b takes the request.
	serve := func(i int, answer func(line []byte) forwardAnswer) host.Host {
		return c.buildNodeHost(t, i, func(st network.Stream) {
			defer st.Close()
			line, err := readLine(bufio.NewReader(st), quorum.MaxRequestSize+1)
			if err != nil {
				st.Reset()
				return
			}
			json.NewEncoder(st).Encode(answer(line))
		})
	}
	liar := serve(0, func([]byte) forwardAnswer { return forwardAnswer{Error: "not one of the policy's requesters (a lie)"} })
	honest := serve(1, func(line []byte) forwardAnswer {
		r, err := quorum.ParseBuildRequest(line)
		if err != nil {
			return forwardAnswer{Error: err.Error()}
		}
		return forwardAnswer{InputDigest: r.InputDigest}
	})
	reg := newHost(t)
	boot := []peer.AddrInfo{{ID: liar.ID(), Addrs: liar.Addrs()}, {ID: honest.ID(), Addrs: honest.Addrs()}}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, ai := range boot {
		if err := reg.Connect(ctx, ai); err != nil {
			t.Fatal(err)
		}
	}
	f := newForwarder(reg, nw, boot, slog.New(slog.DiscardHandler))
	input, err := f.forward(ctx, req)
	if err != nil || input != req.InputDigest {
		t.Fatalf("forward with node-a refusing and node-b taking it: %q, %v; want node-b to take it", input, err)
	}

	// When every build node refuses, the refusal is the answer, naming
	// each.
	honest.SetStreamHandler(RequestProtocol, func(st network.Stream) {
		defer st.Close()
		readLine(bufio.NewReader(st), quorum.MaxRequestSize+1)
		json.NewEncoder(st).Encode(forwardAnswer{Error: "requester not allowed"})
	})
	_, err = f.forward(ctx, req)
	var refused *refusedError
	if !errors.As(err, &refused) || !strings.Contains(err.Error(), "node-a") || !strings.Contains(err.Error(), "node-b") || !strings.Contains(err.Error(), "requester not allowed") {
		t.Errorf("every build node refusing: %v, want a refusal naming node-a and node-b", err)
	}
}

// Regression (review-net): a build node took one of its maxForwarded
// slots for a forwarded request before reading it, and kept it up to 30 s
// while the stream sent nothing: any peer with maxForwarded silent
// streams, opened again every 30 s, made the build node answer "busy" to
// every regular node. A stream now takes a slot once its request is read,
// and one peer holds at most a few.
func TestReviewForwardSlotsNotHeldBySilentStreams(t *testing.T) {
	n := &Node{serving: buildServing{forwarded: make(chan struct{}, maxForwarded)}, log: slog.New(slog.DiscardHandler)}
	n.o.Deadline = time.Second
	server := newHost(t)
	server.SetStreamHandler(RequestProtocol, n.serveForwarded)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dial := func(h host.Host) network.Stream {
		t.Helper()
		if err := h.Connect(ctx, peer.AddrInfo{ID: server.ID(), Addrs: server.Addrs()}); err != nil {
			t.Fatal(err)
		}
		st, err := h.NewStream(ctx, server.ID(), RequestProtocol)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	attacker := newHost(t)
	for range maxForwarded + 2 {
		st := dial(attacker)
		st.Write([]byte("{")) // a request that never ends
		t.Cleanup(func() { st.Reset() })
	}
	// Wait until the server has handed every silent stream to its handler.
	for ctx.Err() == nil {
		open := 0
		for _, conn := range server.Network().ConnsToPeer(attacker.ID()) {
			for _, s := range conn.GetStreams() {
				if s.Protocol() == RequestProtocol {
					open++
				}
			}
		}
		if open >= maxForwarded { // (those answered "busy" are closed)
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	st := dial(newHost(t))
	defer st.Close()
	st.Write([]byte("{}\n"))
	st.CloseWrite()
	st.SetReadDeadline(time.Now().Add(20 * time.Second))
	line, err := readLine(bufio.NewReader(st), maxEventLine)
	if err != nil {
		t.Fatal(err)
	}
	var a forwardAnswer
	if err := json.Unmarshal(line, &a); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(a.Error, "busy") || !strings.Contains(a.Error, "build request") {
		t.Errorf("another peer's request while one peer holds %d silent streams: %q, want it judged (refused as not a build request)", maxForwarded+2, a.Error)
	}
}

// Regression (review-net): a node catching up judged the peers'
// checkpoints by the first policy (n.trust), while the FSM and the node's
// own log judge a checkpoint by the policy in force at its size. After a
// change that rotated node-b and node-c out (their keys leaked, say),
// those two could sign and cosign a forked log whose checkpoint a
// catching-up node took as final. The catch-up now judges every
// checkpoint by the policy in force at its size.
func TestReviewCatchupJudgesCheckpointsByTheChain(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	first := c.policy
	trust, err := first.Trust()
	if err != nil {
		t.Fatal(err)
	}
	// The new policy: node-a, and node-d and node-e instead of b and c.
	next := &policy.Policy{Version: policy.Version, Name: first.Name, Nodes: []policy.Node{first.Nodes[0]}}
	var added []*Keys
	for _, name := range []string{"node-d", "node-e"} {
		k := testKeys(t, filepath.Join(t.TempDir(), name), name)
		added = append(added, k)
		pn := k.PolicyNode()
		next.Nodes = append(next.Nodes, policy.Node{Name: pn.Name, CosignKey: pn.CosignKey, PeerID: pn.PeerID, NoteKey: pn.NoteKey})
	}
	chain, err := policy.NewChain(first)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := publish.ParsePolicyChange(c.changeBy(first, next, 0, 1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := chain.Apply(0, ch); err != nil {
		t.Fatal(err)
	}

	nextTrust, err := next.Trust()
	if err != nil {
		t.Fatal(err)
	}
	// A log of two entries signed by signer, cosigned by cosign, final
	// under trust.
	logOf := func(signer *Keys, cosign []*Keys, trust *policy.Trust) *logservice.Service {
		var cosigners []logservice.Cosigner
		for _, k := range cosign {
			w, err := witness.NewCosigner(witness.CosignerOptions{Signer: k.Cosigner, Origin: first.Name, LogVerifier: mustLogVerifier(signer.NoteKey),
				StateDir: filepath.Join(t.TempDir(), "cosigner")})
			if err != nil {
				t.Fatal(err)
			}
			cosigners = append(cosigners, w)
		}
		svc, err := logservice.Open(ctx, logservice.Options{
			Log:       tlog.Options{Dir: filepath.Join(t.TempDir(), "log"), Origin: first.Name, Signer: signer.LogSigner},
			Cosigners: cosigners,
			Final: func(n []byte) ([]string, error) {
				_, names, err := trust.VerifyCheckpoint(n)
				return names, err
			},
			RetryInterval: 50 * time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { svc.Close() })
		sctx, stop := context.WithCancel(ctx)
		t.Cleanup(stop)
		go svc.Run(sctx)
		for _, e := range []string{`{"entry":0}`, `{"entry":1}`} {
			if _, err := svc.Append(ctx, []byte(e)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := svc.WaitFinal(ctx, 2); err != nil {
			t.Fatal(err)
		}
		return svc
	}
	a, b, cc := c.nodes[0].keys, c.nodes[1].keys, c.nodes[2].keys
	catchup := func(svc *logservice.Service) error {
		// node-a, its log of one entry (the change), catches up to 2; a
		// short wait for a checkpoint it can take.
		n := &Node{o: Options{Keys: a, Policy: first}, trust: trust, chain: chain}
		pe := &peerEntries{n: n}
		pe.client = logclient.New(liveSource{svc}, pe.clientOptions())
		wctx, wcancel := context.WithTimeout(ctx, 2*time.Second)
		defer wcancel()
		_, _, err := pe.checkpoint(wctx, 2)
		return err
	}
	// node-b and node-c's log: final under the first policy only.
	if err := catchup(logOf(b, []*Keys{b, cc}, trust)); err == nil {
		t.Error("the catch-up took a checkpoint cosigned by node-b and node-c, whom the policy in force at its size does not list")
	}
	// The network's log under the new policy: node-a signs, node-a and
	// node-d cosign.
	if err := catchup(logOf(a, []*Keys{a, added[0]}, nextTrust)); err != nil {
		t.Errorf("the catch-up refused a checkpoint final under the policy in force at its size: %v", err)
	}
}
