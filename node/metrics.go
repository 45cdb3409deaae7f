package node

import (
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/pyrsia/pyrsia-build/quorum"
)

// The build node's metrics, served on GET /metrics of its API in the
// Prometheus text format. They are read at scrape time from what the node
// tracks anyway (its [Status], its gossip drops, its store), by a
// [prometheus.Collector] on a registry of the node's own (never the
// global one: two nodes in one process, as in the tests, do not mix).
var (
	metricInfo = prometheus.NewDesc("pyrsia_node_info",
		"The build node: its name in the policy, its libp2p peer id and the policy's digest (always 1).",
		[]string{"name", "peer_id", "policy"}, nil)
	metricBuildsStarted = prometheus.NewDesc("pyrsia_builds_started_total",
		"Builds this node started since it started (a stored build reused is none).", nil, nil)
	metricBuildsSucceeded = prometheus.NewDesc("pyrsia_builds_succeeded_total",
		"Builds that finished with a result and a signed attestation.", nil, nil)
	metricBuildsFailed = prometheus.NewDesc("pyrsia_builds_failed_total",
		"Builds that failed or were cancelled.", nil, nil)
	metricBuildsInFlight = prometheus.NewDesc("pyrsia_builds_in_flight",
		"Builds running now.", nil, nil)
	metricVotesSent = prometheus.NewDesc("pyrsia_votes_sent_total",
		"Votes this node gossiped (for a build, or failed).", nil, nil)
	metricVotesReceived = prometheus.NewDesc("pyrsia_votes_received_total",
		"Votes of the other build nodes received from the gossip that passed validation.", nil, nil)
	metricVerdicts = prometheus.NewDesc("pyrsia_verdicts_total",
		"Rounds ended, by verdict: published (an entry applied to this node's log) or no-quorum.",
		[]string{"verdict"}, nil)
	metricRequests = prometheus.NewDesc("pyrsia_requests_received_total",
		"Build requests received from the gossip that passed validation.", nil, nil)
	metricSpecsRefused = prometheus.NewDesc("pyrsia_specs_refused_total",
		"Requested specs this node refused to build (the network's rules), voting failed instead.", nil, nil)
	metricDropped = prometheus.NewDesc("pyrsia_gossip_dropped_total",
		"Gossip messages dropped, by topic (requests, votes) and reason (see 'pyrsia-build node status').",
		[]string{"topic", "reason"}, nil)
	metricLogSize = prometheus.NewDesc("pyrsia_log_entries",
		"Entries in this node's replica of the log.", nil, nil)
	metricFinalSize = prometheus.NewDesc("pyrsia_log_final_entries",
		"Size of the latest final (majority-cosigned) checkpoint.", nil, nil)
	metricPeers = prometheus.NewDesc("pyrsia_peers_connected",
		"Build nodes of the policy this node is connected to.", nil, nil)
	metricPolicyNodes = prometheus.NewDesc("pyrsia_policy_nodes",
		"Build nodes the policy lists (a majority of them must agree).", nil, nil)
	metricPeersRefused = prometheus.NewDesc("pyrsia_peers_refused_total",
		"Connections refused after the handshake: peers outside the policy.", nil, nil)
	metricRaftState = prometheus.NewDesc("pyrsia_raft_state",
		"This node's Raft role: 1 for the state it is in, 0 for the others.", []string{"state"}, nil)
	metricRaftTerm = prometheus.NewDesc("pyrsia_raft_term",
		"This node's current Raft term.", nil, nil)
	metricStoreBytes = prometheus.NewDesc("pyrsia_store_bytes",
		"Bytes of the blobs in the node's store (DATA/store).", nil, nil)
	metricStoreMaxBytes = prometheus.NewDesc("pyrsia_store_max_bytes",
		"The store's size bound (pinned published outputs count but are never evicted).", nil, nil)
	metricStoreBlobs = prometheus.NewDesc("pyrsia_store_blobs",
		"Blobs in the node's store.", nil, nil)
	metricStoreEvictions = prometheus.NewDesc("pyrsia_store_evictions_total",
		"Blobs evicted from the store since the node started.", nil, nil)
)

// buildCounts count the builds a node ran (not the stored builds it
// reused).
type buildCounts struct{ started, succeeded, failed atomic.Uint64 }

func (c *buildCounts) finished(err error) {
	if err != nil {
		c.failed.Add(1)
	} else {
		c.succeeded.Add(1)
	}
}

// nodeCounts count what a node does not keep otherwise: its votes and
// its verdicts.
type nodeCounts struct {
	votesSent, votesReceived atomic.Uint64
	published, noQuorum      atomic.Uint64
}

// received counts a validated vote from the gossip, unless it is this
// node's own.
func (c *nodeCounts) received(n *Node, v *quorum.Vote) {
	if v.Node != n.o.Keys.Name {
		c.votesReceived.Add(1)
	}
}

// raftStates are the values of pyrsia_raft_state's label, every one of
// them present in each scrape.
var raftStates = []raft.RaftState{raft.Follower, raft.Candidate, raft.Leader, raft.Shutdown}

// nodeCollector reads a build node's metrics at scrape time.
type nodeCollector struct{ n *Node }

// Describe implements [prometheus.Collector].
func (c nodeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{metricInfo, metricBuildsStarted, metricBuildsSucceeded, metricBuildsFailed,
		metricBuildsInFlight, metricVotesSent, metricVotesReceived, metricVerdicts, metricRequests, metricSpecsRefused, metricDropped, metricLogSize, metricFinalSize,
		metricPeers, metricPolicyNodes, metricPeersRefused, metricRaftState, metricRaftTerm,
		metricStoreBytes, metricStoreMaxBytes, metricStoreBlobs, metricStoreEvictions} {
		ch <- d
	}
}

// Collect implements [prometheus.Collector].
func (c nodeCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	st := n.Status()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(metricInfo, 1, st.Name, st.PeerID, st.Policy)
	bc := &n.builds.counts
	counter(metricBuildsStarted, bc.started.Load())
	counter(metricBuildsSucceeded, bc.succeeded.Load())
	counter(metricBuildsFailed, bc.failed.Load())
	gauge(metricBuildsInFlight, float64(len(st.Building)))
	counter(metricVotesSent, n.counts.votesSent.Load())
	counter(metricVotesReceived, n.counts.votesReceived.Load())
	counter(metricVerdicts, n.counts.published.Load(), "published")
	counter(metricVerdicts, n.counts.noQuorum.Load(), "no-quorum")
	counter(metricRequests, n.requests.Load())
	counter(metricSpecsRefused, st.Refused)
	for key, v := range st.Dropped {
		topic, reason, _ := strings.Cut(key, "/")
		counter(metricDropped, v, topic, reason)
	}
	gauge(metricLogSize, float64(st.LogSize))
	gauge(metricFinalSize, float64(st.Final))
	gauge(metricPeers, float64(len(st.Peers)))
	gauge(metricPolicyNodes, float64(len(n.cur.Load().members)))
	counter(metricPeersRefused, st.RefusedPeers)
	for _, s := range raftStates {
		v := 0.0
		if s.String() == st.Raft.State {
			v = 1
		}
		gauge(metricRaftState, v, s.String())
	}
	if term, err := strconv.ParseUint(st.Raft.Term, 10, 64); err == nil {
		gauge(metricRaftTerm, float64(term))
	}
	if s := n.serving.serving; s != nil && s.store != nil {
		ss := s.store.Stats()
		gauge(metricStoreBytes, float64(ss.Bytes))
		gauge(metricStoreMaxBytes, float64(ss.MaxBytes))
		gauge(metricStoreBlobs, float64(ss.Blobs))
		counter(metricStoreEvictions, uint64(ss.Evictions))
	}
}

// metricsHandler serves the node's registry: its own metrics and the Go
// runtime's and process's (memory, goroutines, open files, CPU time).
func (n *Node) metricsHandler() http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(nodeCollector{n},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
}

// mountMetrics adds GET /metrics to the API's mux. Like GET /status it
// needs no API token: it is read-only and the API refuses web pages and
// other host names (see [Node.checkLocal]); Prometheus scrapers send no
// token.
func (n *Node) mountMetrics(mux *http.ServeMux) {
	mux.Handle("GET /metrics", n.metricsHandler())
}
