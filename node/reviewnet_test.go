package node

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/network"
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
	f.relay(st, bufio.NewReader(&lines), input)
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
