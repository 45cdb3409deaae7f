// Package quorum is the network side of the build nodes: the libp2p host,
// gossip of build requests and votes, the vote collector and its verdict,
// and the Raft log that orders the appends. The node daemon puts these
// together with the builder and the log; this package holds no builds and
// no log of its own.
//
// # Identity and admission
//
// A build node has one libp2p identity, an Ed25519 key made or loaded by
// [LoadOrCreateKey]; its peer id is listed in the network policy. [NewHost]
// listens on TCP and QUIC with Noise. Its [Gater] admits only the policy's
// build nodes, judged by the peer id the handshake authenticated (QUIC
// refuses a pre-shared key, so this is how the network stays private).
// [Bootstrap] dials the configured peers.
//
// The policy (publish/policy) becomes a [Network] through
// [NetworkFromPolicy]: the policy digest that names the network, the build
// nodes by peer id and by name with their cosign keys, the requesters.
//
// # Requests and votes
//
// [NewGossip] runs gossipsub with two topics named after the policy digest
// ([Topics]): "/pyrsia-build/<digest>/requests/1" and ".../votes/1", so
// two networks never mix messages. Queues are raised to 4096 (the default
// 32 drops most of a burst silently) and the router's own size limit is
// set above this package's, so that an oversized message is counted, not
// silently lost.
//
//	requester --BuildRequest--> any build node --gossip--> every build node
//	every build node builds on its own, then --Vote--> gossip --> every node
//
// A [BuildRequest] carries the spec (canonical JSON), its input digest, a
// nonce, a time and the requester's signature (ECDSA P-256, a cosign key,
// DSSE-signed). A [Vote] carries the node's Sigstore attestation bundle
// (DSSE envelope signed by its cosign key) and its output manifest digest,
// or the reason its build failed; it names the request it answers
// ([BuildRequest.ID]: a hash over the signed request, nonce included) and
// its time, so it counts only in that request's round and cannot be
// replayed once the window has passed. Both are versioned JSON
// (requests v1, votes v2), documented on their types; [ParseBuildRequest]
// and [ParseVote] are fuzzed.
//
// Every message is checked by a topic validator before anyone acts on it
// or forwards it: size, version, form, the policy digest, the signed
// author (m.GetFrom(), never the forwarder) being a policy build node, the
// requester being allowed, the signatures (a vote's envelope by the
// cosign key of the node the author's peer id belongs to), and no replay
// (seen nonces over a time window, in a bounded budget per requester, or
// per publishing build node for requesters an open policy does not list;
// one vote per node and request, in a bounded budget per node: one
// requester or node filling its budget locks out only itself). A node
// that signs two different votes for one request has the second refused
// and counted as equivocation ([GossipOptions.OnEquivocation] gets the
// evidence). What fails is dropped
// and counted by reason: [Gossip.Drops], for /status. Validated requests
// go through a [Scheduler], a token bucket per requester: a requester over
// its rate is slowed, not served first.
//
// # Quorum
//
// A [Collector] gathers the validated votes per input digest. When
// Threshold (an absolute majority of the policy's build nodes) have voted
// for identical subjects (names and digests), [Collector.Add] returns a
// [Verdict] with Quorum set, and the node proposes the log entry. Past the
// deadline without quorum, [Collector.Expire] returns the verdict that
// says who agreed on what, who differed (and, once the daemon has fetched
// the output manifests, in which files: [Verdict.Differs]) and who did not
// answer:
//
//	no quorum for sha256:…: 2 of 5 agree on sha256:…; node-c differs in META-INF/MANIFEST.MF; node-d, node-e did not answer in 10m
//
// # Ordering appends
//
// Raft (hashicorp/raft) orders the entries among the build nodes.
// [NewRaft] runs it over the same libp2p host: a [StreamLayer] on
// gostream streams of [RaftProtocol], server id = address = peer id,
// raft-wal as log and stable store, a file snapshot store. Any node that
// sees a quorum may propose; only the leader's proposal is accepted
// ([ErrNotLeader] names the leader), and the FSM refuses a second entry
// for an input digest, so a proposal that raced another, or was retried
// after a leader change, is harmless.
//
// The [FSM] applies [CmdAppendEntry] commands (a type byte, then the
// entry, as in consul): it re-checks the entry with its [Checker]
// ([PolicyChecker]: publish.VerifyEntry against the policy), so a faulty
// leader cannot slip in an entry without quorum, then appends it with its
// [Applier] (the node's tlog). It applies what Raft committed together as
// one batch (raft.BatchingFSM): each entry checked on its own, in order,
// the accepted ones appended with one fsync ([BatchAppender]). It counts
// the entries it has placed, so that
// Raft's replay after a restart does not append an entry twice. A node
// whose log is behind a restored snapshot fetches the missing entries from
// a peer ([Catchup], [CheckedCatchup]) and re-checks every one.
package quorum
