package quorum

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pyrsia/pyrsia-build/publish"
)

// ErrNoQuorum is wrapped by [Verdict.Err] when the build nodes did not
// agree. Use errors.Is.
var ErrNoQuorum = errors.New("no quorum")

// Group is the build nodes that voted for the same subjects.
type Group struct {
	Subjects []publish.Subject
	Nodes    []string // sorted
	// Manifests are the output manifest digests of the group's votes, by
	// node (identical subjects can come with different manifests when
	// something outside the subjects differs).
	Manifests map[string]string
}

// Verdict is the outcome of the votes for one input digest: a quorum, or
// who agreed on what, who differed and who did not answer.
type Verdict struct {
	InputDigest string
	// Quorum is set when Threshold nodes voted for identical subjects;
	// Agreed is then their group.
	Quorum    bool
	Threshold int
	Total     int // build nodes in the policy
	// Groups are the successful votes grouped by subjects, largest first
	// (ties: by the subjects' key).
	Groups []Group
	// Failed are the nodes whose build failed, with the reason.
	Failed map[string]string
	// Missing are the policy nodes that did not vote, sorted.
	Missing []string
	// Waited is how long the collector waited before giving this verdict
	// (the deadline, for a verdict without quorum).
	Waited time.Duration
	// Differs explains dissent: for a node outside the largest group, the
	// files in which its output differs from the largest group's (from the
	// nodes' output manifests: builder's diff). Filled in by the caller
	// after fetching the manifests; nil until then.
	Differs map[string][]string
}

// Agreed returns the largest group, the quorum's when there is one.
func (v *Verdict) Agreed() (Group, bool) {
	if len(v.Groups) == 0 {
		return Group{}, false
	}
	return v.Groups[0], true
}

// Err returns nil for a quorum, else an error wrapping [ErrNoQuorum] that
// reads as the verdict.
func (v *Verdict) Err() error {
	if v.Quorum {
		return nil
	}
	return &NoQuorumError{Verdict: v}
}

// NoQuorumError is the error of a verdict without quorum.
type NoQuorumError struct{ Verdict *Verdict }

func (e *NoQuorumError) Error() string { return e.Verdict.String() }

// Unwrap returns [ErrNoQuorum].
func (e *NoQuorumError) Unwrap() error { return ErrNoQuorum }

// String renders the verdict in one line, for example:
//
//	no quorum for sha256:…: 2 of 5 agree on sha256:…; node-c differs in META-INF/MANIFEST.MF; node-d, node-e did not answer in 10m
func (v *Verdict) String() string {
	var b strings.Builder
	if v.Quorum {
		fmt.Fprintf(&b, "quorum for %s", v.InputDigest)
	} else {
		fmt.Fprintf(&b, "no quorum for %s", v.InputDigest)
	}
	var parts []string
	if g, ok := v.Agreed(); ok {
		parts = append(parts, fmt.Sprintf("%d of %d agree on %s", len(g.Nodes), v.Total, subjectsString(g.Subjects)))
		for _, other := range v.Groups[1:] {
			for _, n := range other.Nodes {
				if files, ok := v.Differs[n]; ok && len(files) > 0 {
					parts = append(parts, fmt.Sprintf("%s differs in %s", n, strings.Join(files, ", ")))
				} else {
					parts = append(parts, fmt.Sprintf("%s built %s", n, subjectsString(other.Subjects)))
				}
			}
		}
	} else {
		parts = append(parts, fmt.Sprintf("0 of %d agree", v.Total))
	}
	for _, n := range sortedKeys(v.Failed) {
		parts = append(parts, fmt.Sprintf("%s failed: %s", n, oneLine(v.Failed[n])))
	}
	if len(v.Missing) > 0 {
		s := strings.Join(v.Missing, ", ") + " did not answer"
		if v.Waited > 0 {
			s += " in " + formatDuration(v.Waited)
		}
		parts = append(parts, s)
	}
	b.WriteString(": ")
	b.WriteString(strings.Join(parts, "; "))
	return b.String()
}

// subjectsString names a subject set: the digest of a single subject, or
// name=digest pairs.
func subjectsString(s []publish.Subject) string {
	if len(s) == 1 {
		return s[0].Digest
	}
	parts := make([]string, len(s))
	for i, x := range s {
		parts[i] = x.Name + "=" + x.Digest
	}
	return strings.Join(parts, ", ")
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}

// formatDuration writes 10m, 90s, 1h30m: time.Duration's form without
// zero units.
func formatDuration(d time.Duration) string {
	d = d.Round(time.Second)
	if d < time.Second {
		return "under a second"
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// Tally computes the verdict of votes for one input digest. Only the first
// vote of each policy node counts; votes from nodes outside the policy or
// for another input are ignored. waited is how long the votes were
// collected.
func Tally(net *Network, inputDigest string, votes []*Vote, waited time.Duration) *Verdict {
	v := &Verdict{InputDigest: inputDigest, Threshold: net.Threshold(), Total: len(net.members), Failed: map[string]string{}, Waited: waited}
	seen := map[string]bool{}
	groups := map[string]*Group{}
	for _, vote := range votes {
		if vote == nil || vote.InputDigest != inputDigest || seen[vote.Node] {
			continue
		}
		if _, ok := net.ByName(vote.Node); !ok {
			continue
		}
		seen[vote.Node] = true
		if vote.Failed() {
			v.Failed[vote.Node] = vote.Error
			continue
		}
		key := SubjectsKey(vote.Subjects)
		g, ok := groups[key]
		if !ok {
			g = &Group{Subjects: vote.Subjects, Manifests: map[string]string{}}
			groups[key] = g
		}
		g.Nodes = append(g.Nodes, vote.Node)
		g.Manifests[vote.Node] = vote.Manifest
	}
	for _, m := range net.members {
		if !seen[m.Name] {
			v.Missing = append(v.Missing, m.Name)
		}
	}
	slices.Sort(v.Missing)
	for _, g := range groups {
		slices.Sort(g.Nodes)
		v.Groups = append(v.Groups, *g)
	}
	slices.SortFunc(v.Groups, func(a, b Group) int {
		if len(a.Nodes) != len(b.Nodes) {
			return len(b.Nodes) - len(a.Nodes)
		}
		return strings.Compare(SubjectsKey(a.Subjects), SubjectsKey(b.Subjects))
	})
	v.Quorum = len(v.Groups) > 0 && len(v.Groups[0].Nodes) >= v.Threshold
	return v
}

// Collector gathers votes per input digest as they arrive from gossip and
// tells when one reaches quorum. It is safe for concurrent use. Polls are
// bounded: a poll that is decided or past its deadline is forgotten by
// [Collector.Expire], which returns its verdict.
type Collector struct {
	net *Network
	now func() time.Time

	mu    sync.Mutex
	polls map[string]*poll
}

type poll struct {
	started time.Time
	votes   []*Vote
	nodes   map[string]bool
	decided bool
}

// NewCollector makes a collector for net's build nodes. now is the clock;
// nil means time.Now.
func NewCollector(net *Network, now func() time.Time) *Collector {
	if now == nil {
		now = time.Now
	}
	return &Collector{net: net, now: now, polls: map[string]*poll{}}
}

// Start opens the poll for an input digest (when its request arrives), so
// that the deadline counts from then. Votes that come first open it too.
func (c *Collector) Start(inputDigest string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.poll(inputDigest)
}

func (c *Collector) poll(input string) *poll {
	p, ok := c.polls[input]
	if !ok {
		p = &poll{started: c.now(), nodes: map[string]bool{}}
		c.polls[input] = p
	}
	return p
}

// Add records a validated vote. It returns the verdict, with Quorum set,
// the first time the input's votes reach quorum; later votes for a decided
// input return (nil, false) (they may still be wanted as dissent: see
// [Collector.Verdict]). A second vote by the same node is ignored.
func (c *Collector) Add(v *Vote) (*Verdict, bool) {
	if _, ok := c.net.ByName(v.Node); !ok {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p := c.poll(v.InputDigest)
	if p.nodes[v.Node] {
		return nil, false
	}
	p.nodes[v.Node] = true
	p.votes = append(p.votes, v)
	if p.decided {
		return nil, false
	}
	verdict := Tally(c.net, v.InputDigest, p.votes, c.now().Sub(p.started))
	if !verdict.Quorum {
		return nil, false
	}
	p.decided = true
	return verdict, true
}

// Verdict returns the current verdict for an input digest.
func (c *Collector) Verdict(inputDigest string) (*Verdict, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	p, ok := c.polls[inputDigest]
	if !ok {
		return nil, false
	}
	return Tally(c.net, inputDigest, p.votes, c.now().Sub(p.started)), true
}

// Votes returns the votes recorded for an input digest, in arrival order.
func (c *Collector) Votes(inputDigest string) []*Vote {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.polls[inputDigest]; ok {
		return slices.Clone(p.votes)
	}
	return nil
}

// Expire forgets every poll started more than deadline ago and returns
// their final verdicts: without quorum, these are the "no quorum" verdicts
// to report.
func (c *Collector) Expire(deadline time.Duration) []*Verdict {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	var out []*Verdict
	for _, input := range sortedKeys(c.polls) {
		p := c.polls[input]
		if now.Sub(p.started) < deadline {
			continue
		}
		v := Tally(c.net, input, p.votes, deadline)
		out = append(out, v)
		delete(c.polls, input)
	}
	return out
}
