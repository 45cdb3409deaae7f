package quorum

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish"
)

func d(c byte) string { return "sha256:" + strings.Repeat(string(c), 64) }

// fakeVotes builds votes directly (the collector trusts its input: gossip
// validated it): node name -> artifact digest, or "fail:reason".
func fakeVotes(input string, by map[string]string) []*Vote {
	var out []*Vote
	for _, name := range sortedKeys(by) {
		what := by[name]
		v := &Vote{Policy: testPolicyDigest, InputDigest: input, Node: name}
		if r, ok := strings.CutPrefix(what, "fail:"); ok {
			v.Error = r
		} else {
			v.Bundle = &attest.Bundle{}
			v.Subjects = []publish.Subject{{Name: "demo", Digest: what}}
			v.Manifest = what
		}
		out = append(out, v)
	}
	return out
}

func TestTally(t *testing.T) {
	nodes := testNodes(t, 5)
	net := testNetwork(t, nodes, NetworkOptions{})
	input := d('1')
	A, B, C := d('a'), d('b'), d('c')
	for _, tc := range []struct {
		name    string
		votes   map[string]string
		differs map[string][]string
		quorum  bool
		want    string
	}{
		{
			name:   "all agree",
			votes:  map[string]string{"node-a": A, "node-b": A, "node-c": A, "node-d": A, "node-e": A},
			quorum: true,
			want:   "quorum for " + input + ": 5 of 5 agree on " + A,
		},
		{
			name:   "two down",
			votes:  map[string]string{"node-a": A, "node-b": A, "node-c": A},
			quorum: true,
			want:   "quorum for " + input + ": 3 of 5 agree on " + A + "; node-d, node-e did not answer in 10m",
		},
		{
			name:    "one differs",
			votes:   map[string]string{"node-a": A, "node-b": A, "node-c": B, "node-d": A},
			differs: map[string][]string{"node-c": {"META-INF/MANIFEST.MF"}},
			quorum:  true,
			want:    "quorum for " + input + ": 3 of 5 agree on " + A + "; node-c differs in META-INF/MANIFEST.MF; node-e did not answer in 10m",
		},
		{
			name:    "the issue's example",
			votes:   map[string]string{"node-a": A, "node-b": A, "node-c": B},
			differs: map[string][]string{"node-c": {"META-INF/MANIFEST.MF"}},
			want:    "no quorum for " + input + ": 2 of 5 agree on " + A + "; node-c differs in META-INF/MANIFEST.MF; node-d, node-e did not answer in 10m",
		},
		{
			name:  "three digests",
			votes: map[string]string{"node-a": A, "node-b": B, "node-c": C, "node-d": A, "node-e": B},
			want:  "no quorum for " + input + ": 2 of 5 agree on " + A + "; node-b built " + B + "; node-e built " + B + "; node-c built " + C,
		},
		{
			name:  "failures",
			votes: map[string]string{"node-a": A, "node-b": "fail:compile error\nat Foo.java:3", "node-c": A},
			want:  "no quorum for " + input + ": 2 of 5 agree on " + A + "; node-b failed: compile error at Foo.java:3; node-d, node-e did not answer in 10m",
		},
		{
			name:  "nobody",
			votes: map[string]string{},
			want:  "no quorum for " + input + ": 0 of 5 agree; node-a, node-b, node-c, node-d, node-e did not answer in 10m",
		},
		{
			name:  "outsider and other input ignored",
			votes: map[string]string{"node-a": A, "node-b": A, "node-z": A},
			want:  "no quorum for " + input + ": 2 of 5 agree on " + A + "; node-c, node-d, node-e did not answer in 10m",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			votes := fakeVotes(input, tc.votes)
			votes = append(votes, fakeVotes(d('9'), map[string]string{"node-c": A, "node-d": A, "node-e": A})...)
			v := Tally(net, input, votes, 10*time.Minute)
			v.Differs = tc.differs
			if v.Quorum != tc.quorum {
				t.Errorf("got quorum %v, want %v", v.Quorum, tc.quorum)
			}
			if got := v.String(); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
			if err := v.Err(); (err == nil) != tc.quorum || (err != nil && !errors.Is(err, ErrNoQuorum)) {
				t.Errorf("got error %v, want ErrNoQuorum iff no quorum", err)
			}
		})
	}
}

func TestTallySubjectSets(t *testing.T) {
	// Maven: a jar and a pom; agreement is on the whole set.
	net := testNetwork(t, testNodes(t, 3), NetworkOptions{})
	jar := publish.Subject{Name: "x.jar", Digest: d('a')}
	pom := publish.Subject{Name: "x.pom", Digest: d('b')}
	pom2 := publish.Subject{Name: "x.pom", Digest: d('c')}
	mk := func(node string, s ...publish.Subject) *Vote {
		return &Vote{InputDigest: d('1'), Node: node, Bundle: &attest.Bundle{}, Subjects: s}
	}
	v := Tally(net, d('1'), []*Vote{mk("node-a", jar, pom), mk("node-b", jar, pom2), mk("node-c", jar)}, time.Minute)
	if v.Quorum {
		t.Fatalf("quorum on different subject sets: %s", v)
	}
	if len(v.Groups) != 3 {
		t.Fatalf("got %d groups, want 3: %s", len(v.Groups), v)
	}
	v = Tally(net, d('1'), []*Vote{mk("node-a", jar, pom), mk("node-b", jar, pom), mk("node-a", jar, pom2)}, time.Minute)
	if !v.Quorum || len(v.Groups) != 1 {
		t.Fatalf("got %s, want a quorum of node-a and node-b (node-a's second vote ignored)", v)
	}
	want := "quorum for " + d('1') + ": 2 of 3 agree on x.jar=" + d('a') + ", x.pom=" + d('b') + "; node-c did not answer in 1m"
	if v.String() != want {
		t.Fatalf("got  %s\nwant %s", v, want)
	}
}

func TestCollector(t *testing.T) {
	net := testNetwork(t, testNodes(t, 5), NetworkOptions{})
	now := time.Unix(1000, 0)
	c := NewCollector(net, func() time.Time { return now })
	input := d('1')
	c.Start(input)
	votes := fakeVotes(input, map[string]string{"node-a": d('a'), "node-b": d('a'), "node-c": d('b'), "node-d": d('a')})
	var decided *Verdict
	for i, v := range votes {
		now = now.Add(time.Second)
		got, ok := c.Add(v)
		if ok != (i == 3) {
			t.Fatalf("vote %d (%s): decided %v", i, v.Node, ok)
		}
		if ok {
			decided = got
		}
	}
	if !decided.Quorum || decided.Waited != 4*time.Second {
		t.Fatalf("got %s after %v", decided, decided.Waited)
	}
	// A repeat and a late vote do not decide again.
	if _, ok := c.Add(votes[0]); ok {
		t.Fatal("a repeated vote decided again")
	}
	late := fakeVotes(input, map[string]string{"node-e": d('a')})[0]
	if _, ok := c.Add(late); ok {
		t.Fatal("a late vote decided again")
	}
	if v, _ := c.Verdict(input); len(v.Groups[0].Nodes) != 4 {
		t.Fatalf("verdict after the late vote: %s", v)
	}
	// A poll without quorum expires with its verdict.
	c.Start(d('2'))
	c.Add(fakeVotes(d('2'), map[string]string{"node-a": d('a')})[0])
	now = now.Add(10 * time.Minute)
	exp := c.Expire(10 * time.Minute)
	if len(exp) != 2 {
		t.Fatalf("expired %d polls, want 2", len(exp))
	}
	want := "no quorum for " + d('2') + ": 1 of 5 agree on " + d('a') + "; node-b, node-c, node-d, node-e did not answer in 10m"
	if exp[1].String() != want {
		t.Fatalf("got  %s\nwant %s", exp[1], want)
	}
	if _, ok := c.Verdict(d('2')); ok {
		t.Fatal("an expired poll is still kept")
	}
}
