package node

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/pyrsia/pyrsia-build/builder"
	"github.com/pyrsia/pyrsia-build/quorum"
)

// scrapeMetrics GETs /metrics from node i's API, as Prometheus does (no
// token), and parses the text format.
func (c *cluster) scrapeMetrics(ctx context.Context, i int) map[string]*dto.MetricFamily {
	c.t.Helper()
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+c.nodes[i].api.Addr().String()+"/metrics", nil)
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		c.t.Fatalf("GET /metrics: got %s, want 200", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		c.t.Errorf("GET /metrics: Content-Type %q, want the text format", ct)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		c.t.Fatalf("parsing /metrics: %v", err)
	}
	return fams
}

// metricValue returns the value of the sample of family name whose labels
// are labels (name=value pairs), and whether there is one.
func metricValue(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		match := true
		for _, l := range m.GetLabel() {
			if want[l.GetName()] != l.GetValue() {
				match = false
			}
		}
		if !match {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue(), true
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue(), true
		}
	}
	return 0, false
}

// waitUntil polls cond until it holds or ctx ends.
func waitUntil(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// failFor builds as b does, but fails the build of spec.
func failFor(t *testing.T, b Builder, spec []byte) Builder {
	s, err := builder.ParseSpec(spec)
	if err != nil {
		t.Fatal(err)
	}
	bad, _ := s.InputDigest()
	return BuilderFunc(func(ctx context.Context, spec *builder.Spec, out string) (*builder.Result, error) {
		if in, _ := spec.InputDigest(); in == bad {
			return failingBuild(ctx, spec, out)
		}
		return b.Build(ctx, spec, out)
	})
}

// TestMetricsScrape scrapes real build nodes after two rounds, one
// published and one without a quorum: four nodes, one of whose builds
// fail (and two more fail the second spec), and a fifth policy node that
// gossips garbage.
func TestMetricsScrape(t *testing.T) {
	spec, spec2 := testSpec(61), testSpec(62)
	c := newCluster(t, 5, map[int]Builder{
		1: failFor(t, fakeBuild("honest"), spec2), 2: failFor(t, fakeBuild("honest"), spec2), 3: BuilderFunc(failingBuild)})
	for i := range 4 {
		c.start(i)
	}
	ctx := c.ctx()
	f := c.startFaulty(ctx, 4)
	f.send(ctx, t, f.reqs, 4, []byte(`not json`))
	f.send(ctx, t, f.vots, 4, []byte(`not json`))

	_, evs := c.publish(ctx, 0, spec)
	if ev := lastEvent(evs); ev.Type != EventFinal {
		t.Fatalf("round ended with %+v, want final", ev)
	}
	_, evs = c.publish(ctx, 0, spec2)
	if ev := lastEvent(evs); ev.Type != EventVerdict {
		t.Fatalf("second round ended with %+v, want a verdict", ev)
	}
	a, d := c.nodes[0].node, c.nodes[3].node
	waitUntil(ctx, t, "node-a's drops and stored output", func() bool {
		dr := a.Status().Dropped
		return dr["requests/malformed"] == 1 && dr["votes/malformed"] == 1 && a.serving.store.Stats().Blobs == 1
	})
	waitUntil(ctx, t, "node-d's failed builds", func() bool { return d.builds.counts.failed.Load() == 2 })
	waitUntil(ctx, t, "node-a's votes", func() bool { return a.counts.votesSent.Load() == 2 && a.counts.votesReceived.Load() == 6 })

	// An election (under load) can change Raft's term and state between
	// the status and the scrape: scrape until the status read before and
	// the one read after it agree on them.
	st := a.Status()
	fams := c.scrapeMetrics(ctx, 0)
	for after := a.Status(); after.Raft.Term != st.Raft.Term || after.Raft.State != st.Raft.State; after = a.Status() {
		t.Logf("Raft went from term %s (%s) to %s (%s) during the scrape: again", st.Raft.Term, st.Raft.State, after.Raft.Term, after.Raft.State)
		if ctx.Err() != nil {
			t.Fatal(ctx.Err())
		}
		st, fams = after, c.scrapeMetrics(ctx, 0)
	}
	term, err := strconv.ParseUint(st.Raft.Term, 10, 64)
	if err != nil || term == 0 {
		t.Fatalf("status: Raft term %q", st.Raft.Term)
	}
	tests := []struct {
		name   string
		typ    dto.MetricType
		labels []string
		want   float64
	}{
		{"pyrsia_node_info", dto.MetricType_GAUGE, []string{"name", "node-a", "peer_id", st.PeerID, "policy", c.policy.Digest()}, 1},
		{"pyrsia_builds_started_total", dto.MetricType_COUNTER, nil, 2},
		{"pyrsia_builds_succeeded_total", dto.MetricType_COUNTER, nil, 2},
		{"pyrsia_builds_failed_total", dto.MetricType_COUNTER, nil, 0},
		{"pyrsia_builds_in_flight", dto.MetricType_GAUGE, nil, 0},
		{"pyrsia_votes_sent_total", dto.MetricType_COUNTER, nil, 2},
		// node-b, node-c and node-d in each round; node-e sent garbage.
		{"pyrsia_votes_received_total", dto.MetricType_COUNTER, nil, 6},
		{"pyrsia_verdicts_total", dto.MetricType_COUNTER, []string{"verdict", "published"}, 1},
		{"pyrsia_verdicts_total", dto.MetricType_COUNTER, []string{"verdict", "no-quorum"}, 1},
		{"pyrsia_requests_received_total", dto.MetricType_COUNTER, nil, 2},
		{"pyrsia_specs_refused_total", dto.MetricType_COUNTER, nil, 0},
		{"pyrsia_gossip_dropped_total", dto.MetricType_COUNTER, []string{"topic", "requests", "reason", "malformed"}, 1},
		{"pyrsia_gossip_dropped_total", dto.MetricType_COUNTER, []string{"topic", "votes", "reason", "malformed"}, 1},
		{"pyrsia_log_entries", dto.MetricType_GAUGE, nil, 1},
		{"pyrsia_log_final_entries", dto.MetricType_GAUGE, nil, float64(st.Final)},
		{"pyrsia_peers_connected", dto.MetricType_GAUGE, nil, 4},
		{"pyrsia_policy_nodes", dto.MetricType_GAUGE, nil, 5},
		{"pyrsia_peers_refused_total", dto.MetricType_COUNTER, nil, 0},
		{"pyrsia_raft_term", dto.MetricType_GAUGE, nil, float64(term)},
		{"pyrsia_store_blobs", dto.MetricType_GAUGE, nil, 1},
		{"pyrsia_store_bytes", dto.MetricType_GAUGE, nil, float64(len(expected(t, spec)))},
		{"pyrsia_store_max_bytes", dto.MetricType_GAUGE, nil, DefaultStoreBytes},
		{"pyrsia_store_evictions_total", dto.MetricType_COUNTER, nil, 0},
	}
	for _, s := range []string{"Follower", "Candidate", "Leader", "Shutdown"} {
		want := 0.0
		if s == st.Raft.State {
			want = 1
		}
		tests = append(tests, struct {
			name   string
			typ    dto.MetricType
			labels []string
			want   float64
		}{"pyrsia_raft_state", dto.MetricType_GAUGE, []string{"state", s}, want})
	}
	for _, tt := range tests {
		t.Run(tt.name+strings.Join(tt.labels, ","), func(t *testing.T) {
			f := fams[tt.name]
			if f == nil {
				t.Fatalf("no %s in /metrics", tt.name)
			}
			if f.GetType() != tt.typ {
				t.Errorf("type: got %s, want %s", f.GetType(), tt.typ)
			}
			if f.GetHelp() == "" {
				t.Error("no HELP")
			}
			got, ok := metricValue(fams, tt.name, tt.labels...)
			if !ok {
				t.Fatalf("no sample with labels %v", tt.labels)
			}
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	if st.Final < 1 {
		t.Errorf("status: final size %d after a final event, want at least 1", st.Final)
	}
	// The Go runtime's and the process's metrics are in the node's
	// registry too.
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes"} {
		if fams[name] == nil {
			t.Errorf("no %s in /metrics", name)
		}
	}

	// The node whose builds failed counts them.
	dfams := c.scrapeMetrics(ctx, 3)
	for name, want := range map[string]float64{"pyrsia_builds_started_total": 2, "pyrsia_builds_succeeded_total": 0, "pyrsia_builds_failed_total": 2} {
		if got, ok := metricValue(dfams, name); !ok || got != want {
			t.Errorf("node-d: %s: got %v (present %v), want %v", name, got, ok, want)
		}
	}
}

// TestRequestsReceivedNotOwnCopies: the copies of its own request that a
// node gossips again (republishLoop) are not requests received. Its own
// subscription delivers each copy to its request loop, which counted it:
// TestMetricsScrape read 3 or 4 requests received for its 2 when a round
// took more than a second (under load) and node-a gossiped it again.
func TestRequestsReceivedNotOwnCopies(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.startAll()
	ctx := c.ctx()
	input, evs := c.publish(ctx, 0, testSpec(63))
	if ev := lastEvent(evs); ev.Type != EventFinal {
		t.Fatalf("round ended with %+v, want final", ev)
	}
	a := c.nodes[0].node
	a.mu.Lock()
	req := a.rounds[input].req
	a.mu.Unlock()
	// A copy as republishLoop gossips it, then a second request: node-a's
	// request loop takes them in that order (local publishes reach its
	// subscription in order), so once the second request opened its round
	// the copy was taken.
	if err := a.gossip.PublishRequest(ctx, req, quorum.PublishOptions{}); err != nil {
		t.Fatal(err)
	}
	input2, err := a.Publish(ctx, testSpec(64))
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(ctx, t, "node-a's round of the second request", func() bool {
		a.mu.Lock()
		defer a.mu.Unlock()
		r := a.rounds[input2]
		return r != nil && r.req != nil
	})
	if got := a.requests.Load(); got != 2 {
		t.Errorf("node-a received %d requests, want 2 (a copy of its own is not one)", got)
	}
}

// TestMetricsLint checks the collector's names, types and help with
// client_golang's linter, and that it collects what it describes.
func TestMetricsLint(t *testing.T) {
	c := newCluster(t, 1, nil)
	c.start(0)
	n := c.nodes[0].node
	problems, err := testutil.CollectAndLint(nodeCollector{n})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
	// One sample per description (22), but one per Raft state, one per
	// verdict, and none for drops yet.
	if got, want := testutil.CollectAndCount(nodeCollector{n}), 22-3+len(raftStates)+2; got != want {
		t.Errorf("collected %d samples, want %d", got, want)
	}
}

// TestMetricsLocalOnly: /metrics needs no token, but refuses web pages
// and other host names as the rest of the API does.
func TestMetricsLocalOnly(t *testing.T) {
	c := newCluster(t, 1, nil)
	c.start(0)
	url := "http://" + c.nodes[0].api.Addr().String() + "/metrics"
	for _, tt := range []struct {
		name   string
		header map[string]string
		host   string
		want   int
	}{
		{"no token", nil, "", http.StatusOK},
		{"localhost", nil, "localhost:9", http.StatusOK},
		{"web page", map[string]string{"Origin": "https://evil.example"}, "", http.StatusForbidden},
		{"rebinding", nil, "evil.example", http.StatusForbidden},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", url, nil)
			for k, v := range tt.header {
				req.Header.Set(k, v)
			}
			if tt.host != "" {
				req.Host = tt.host
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.want {
				t.Errorf("got %d, want %d", resp.StatusCode, tt.want)
			}
		})
	}
}
