package node

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/builder"
	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/quorum"
	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	"google.golang.org/protobuf/encoding/protojson"
)

// round is one request's votes, from the validated request to its entry
// or its verdict. Only a request opens a round, and only votes naming that
// request count in it; a verdict closes the request, not the input: a new
// request for the input opens a new round.
type round struct {
	// net is the network of the policy in force when the round opened:
	// it counts its votes (only votes bound to that policy), by its
	// majority, to the end (see membership.go).
	net      *quorum.Network
	req      *quorum.BuildRequest
	request  string // req.ID()
	reqTime  time.Time
	input    string
	spec     json.RawMessage // canonical JSON, from the request
	started  time.Time
	closed   time.Time // when it got its verdict or entry; zero while open
	deadline time.Time
	votes    map[string]*quorum.Vote // by node name: the first vote of each node counts
	proposed bool                    // the entry was proposed by this node
	// refused is why the FSM refused this node's proposal of the
	// round's entry (its quorum did not check out): the round then ends
	// at its deadline like one without a quorum.
	refused error
	index   int64 // log index once appended, -1 before
	verdict *Verdict
	judging bool // a verdict is being made
	// equivocations: nodes that signed two different votes for the
	// request, with the digests of both.
	equivocations map[string][]string

	dissent      map[string][]string // explained dissent of a published round
	dissentVotes int                 // the number of votes it was explained for
}

func newRound(req *quorum.BuildRequest, now time.Time, deadline time.Duration) *round {
	return &round{req: req, request: req.ID(), reqTime: req.Time, input: req.InputDigest, spec: req.Spec, started: now,
		deadline: now.Add(deadline), votes: make(map[string]*quorum.Vote), equivocations: map[string][]string{}, index: -1}
}

// open reports whether the round still counts votes.
func (r *round) open() bool { return r.index < 0 && r.verdict == nil }

// add records v; it returns false for a second vote of the same node.
func (r *round) add(v *quorum.Vote) bool {
	if _, dup := r.votes[v.Node]; dup {
		return false
	}
	r.votes[v.Node] = v
	return true
}

// tally is the quorum package's verdict over the round's votes.
func (r *round) tally(net *quorum.Network, waited time.Duration) *quorum.Verdict {
	votes := make([]*quorum.Vote, 0, len(r.votes))
	for _, v := range r.votes {
		votes = append(votes, v)
	}
	sort.Slice(votes, func(i, j int) bool { return votes[i].Node < votes[j].Node })
	return quorum.Tally(net, r.input, votes, waited)
}

// awaitsEntry reports whether the round has a quorum whose entry is not
// in the log yet and was not refused: such a round is not given a
// verdict at its deadline but waits (its proposal retried by every new
// leader) until its entry is appended. A deadline bounds the wait for
// votes; an accepted request whose majority agreed is published once Raft
// has a leader again, however long the leader change took.
func (r *round) awaitsEntry(net *quorum.Network) bool {
	if !r.open() || r.refused != nil {
		return false
	}
	_, ok := r.quorum(net)
	return ok
}

// quorum returns the envelopes of a majority when the round has a
// quorum: those of the first Threshold nodes of the agreeing group, in the
// order of their names. An entry carries no more than a majority's
// envelopes, so its size is what a node checks before it votes
// (majorityEntrySize), however many nodes agreed.
func (r *round) quorum(net *quorum.Network) ([]*dssepb.Envelope, bool) {
	v := r.tally(net, 0)
	g, ok := v.Agreed()
	if !v.Quorum || !ok {
		return nil, false
	}
	var envs []*dssepb.Envelope
	for _, n := range g.Nodes[:min(len(g.Nodes), net.Threshold())] {
		envs = append(envs, r.votes[n].Envelope())
	}
	return envs, true
}

// Verdict is what became of a request that found no quorum by its
// deadline, as it is stored (DATA/verdicts) and served.
type Verdict struct {
	InputDigest string    `json:"inputDigest"`
	Time        time.Time `json:"time"`
	Threshold   int       `json:"threshold"`
	// Groups are the nodes that built identical subjects, largest first.
	Groups []VerdictGroup `json:"groups"`
	// Failed are the nodes whose build failed, with the reason.
	Failed map[string]string `json:"failed,omitempty"`
	// Silent are the nodes that did not vote by the deadline.
	Silent []string `json:"silent,omitempty"`
	// Differs maps a node outside the largest group to the files in which
	// its output differs from the largest group's (from the output
	// manifests), when they could be read.
	Differs map[string][]string `json:"differs,omitempty"`
	// Equivocations are the nodes that signed two different votes for
	// the request: the digests of the first and of the second (refused).
	Equivocations map[string][]string `json:"equivocations,omitempty"`
	Waited        string              `json:"waited"`
	// Text is the verdict in one line, as publish prints it.
	Text string `json:"text"`
}

// VerdictGroup is nodes that agree on subjects.
type VerdictGroup struct {
	Subjects []publish.Subject `json:"subjects"`
	Nodes    []string          `json:"nodes"`
}

func newVerdict(v *quorum.Verdict, now time.Time) *Verdict {
	out := &Verdict{InputDigest: v.InputDigest, Time: now.UTC(), Threshold: v.Threshold, Silent: v.Missing,
		Differs: v.Differs, Waited: v.Waited.String(), Text: v.String()}
	if len(v.Failed) > 0 {
		out.Failed = v.Failed
	}
	for _, g := range v.Groups {
		out.Groups = append(out.Groups, VerdictGroup{Subjects: g.Subjects, Nodes: g.Nodes})
	}
	return out
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// manifestDiff returns the files (artifact/path) in which b differs from
// a, at most max of them.
func manifestDiff(a, b *builder.OutputManifest, max int) []string {
	type fileKey struct{ artifact, path string }
	files := func(m *builder.OutputManifest) map[fileKey]string {
		out := map[fileKey]string{}
		for _, am := range m.Artifacts {
			for _, f := range am.Files {
				out[fileKey{am.Name, f.Path}] = f.Type + " " + f.SHA256 + " " + f.Mode + " " + f.Link
			}
		}
		return out
	}
	fa, fb := files(a), files(b)
	var diff []string
	for k, va := range fa {
		if vb, ok := fb[k]; !ok || va != vb {
			diff = append(diff, k.path)
		}
	}
	for k := range fb {
		if _, ok := fa[k]; !ok {
			diff = append(diff, k.path)
		}
	}
	sort.Strings(diff)
	diff = slices.Compact(diff)
	if len(diff) > max {
		diff = append(diff[:max], fmt.Sprintf("(%d more)", len(diff)-max))
	}
	return diff
}

func digestHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// voteBuffer keeps, for a while, votes for requests this node has not
// opened a round for (the request is late, or waits in the scheduler):
// a few per build node, so one node's votes for made-up requests push out
// only its own.
type voteBuffer struct {
	max   int
	ttl   time.Duration
	votes map[string][]bufferedVote // by voting node
}

type bufferedVote struct {
	v  *quorum.Vote
	at time.Time
}

func newVoteBuffer(max int, ttl time.Duration) *voteBuffer {
	return &voteBuffer{max: max, ttl: ttl, votes: map[string][]bufferedVote{}}
}

func (b *voteBuffer) add(v *quorum.Vote, now time.Time) {
	q := b.live(b.votes[v.Node], now)
	if len(q) >= b.max {
		q = q[1:] // the node's oldest goes
	}
	b.votes[v.Node] = append(q, bufferedVote{v: v, at: now})
}

// peek returns the buffered votes for request, leaving them.
func (b *voteBuffer) peek(request string, now time.Time) []*quorum.Vote {
	var out []*quorum.Vote
	for _, q := range b.votes {
		for _, bv := range b.live(q, now) {
			if bv.v.Request == request {
				out = append(out, bv.v)
			}
		}
	}
	return out
}

// take removes and returns the buffered votes for request.
func (b *voteBuffer) take(request string, now time.Time) []*quorum.Vote {
	var out []*quorum.Vote
	for node, q := range b.votes {
		kept := q[:0]
		for _, bv := range b.live(q, now) {
			if bv.v.Request == request {
				out = append(out, bv.v)
			} else {
				kept = append(kept, bv)
			}
		}
		if len(kept) == 0 {
			delete(b.votes, node)
		} else {
			b.votes[node] = kept
		}
	}
	return out
}

// expire drops the votes older than the buffer's ttl.
func (b *voteBuffer) expire(now time.Time) {
	for node, q := range b.votes {
		if q = b.live(q, now); len(q) == 0 {
			delete(b.votes, node)
		} else {
			b.votes[node] = q
		}
	}
}

func (b *voteBuffer) live(q []bufferedVote, now time.Time) []bufferedVote {
	i := 0
	for i < len(q) && now.Sub(q[i].at) > b.ttl {
		i++
	}
	return q[i:]
}

func (b *voteBuffer) len() int {
	n := 0
	for _, q := range b.votes {
		n += len(q)
	}
	return n
}

// voteSpec returns the canonical spec a vote's attestation names (its SLSA
// externalParameters.spec, which the vote's validator has checked hashes
// to the vote's input digest), or nil. A node that missed the request
// learns the spec from the votes.
func voteSpec(v *quorum.Vote) []byte {
	env := v.Envelope()
	if env == nil {
		return nil
	}
	st, err := attest.ParseStatement(env.GetPayload())
	if err != nil {
		return nil
	}
	spec := st.GetPredicate().GetFields()["buildDefinition"].GetStructValue().
		GetFields()["externalParameters"].GetStructValue().GetFields()["spec"]
	if spec == nil {
		return nil
	}
	raw, err := protojson.Marshal(spec)
	if err != nil {
		return nil
	}
	canon, err := publish.CanonicalJSON(raw)
	if err != nil {
		return nil
	}
	sum := sha256.Sum256(canon)
	if "sha256:"+hex.EncodeToString(sum[:]) != v.InputDigest {
		return nil
	}
	return canon
}
