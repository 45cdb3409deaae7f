package node

import (
	"fmt"
	"testing"
	"time"

	"github.com/pyrsia/pyrsia-build/quorum"
)

func TestOwnRequestsBackOffAndForget(t *testing.T) {
	o := newOwnRequests(time.Minute)
	a := &quorum.BuildRequest{Nonce: "a", InputDigest: "sha256:" + fmt.Sprintf("%064x", 1)}
	b := &quorum.BuildRequest{Nonce: "b", InputDigest: "sha256:" + fmt.Sprintf("%064x", 2)}
	o.add(a)
	o.add(b)
	start := time.Now()
	settled := map[string]bool{}
	done := func(r *quorum.BuildRequest) bool { return settled[r.Nonce] }
	if got := o.due(start, done); len(got) != 0 {
		t.Fatalf("due at once: %d requests, want none (the first send was just now)", len(got))
	}
	// Sent again after 1s, then after 2s more, then 4s, then every 8s.
	var sends []time.Duration
	for ms := 0; ms <= 30000; ms += 500 {
		at := start.Add(time.Duration(ms) * time.Millisecond)
		for _, r := range o.due(at, done) {
			if r.Nonce == "a" {
				sends = append(sends, at.Sub(start).Round(500*time.Millisecond))
			}
		}
		if ms == 10000 {
			settled["b"] = true // b's round is over: forgotten
		}
	}
	want := []time.Duration{1 * time.Second, 3 * time.Second, 7 * time.Second, 15 * time.Second, 23 * time.Second}
	if fmt.Sprint(sends) != fmt.Sprint(want) {
		t.Fatalf("a sent again at %v, want %v", sends, want)
	}
	if _, ok := o.reqs[b.ID()]; ok {
		t.Fatal("b is still kept after its round was over")
	}
	o.due(start.Add(2*time.Minute), done)
	if len(o.reqs) != 0 {
		t.Fatalf("%d requests kept past the deadline, want none", len(o.reqs))
	}
}
