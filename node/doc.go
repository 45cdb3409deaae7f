// Package node is the node daemon: a build node ([New]) puts the builder,
// the quorum (libp2p gossip, votes, Raft) and the published log together;
// a regular node ([NewRegular]) follows that log and serves what it
// published to build tools.
//
// # Peer cosigning
//
// No build node holds a key that can make a checkpoint final on its own.
// Each node keeps its own replica of the network's log (see
// [logservice.Service]); after applying an entry it signs a candidate
// checkpoint with its own log key, cosigns it with its own witness, and
// asks every other build node for its cosignature over [CosignProtocol]
// ([PeerCosigner] is the client, [CosignServer] the answer). Once the
// cosignatures of a majority of the policy's build nodes are on the note, it
// is final and served.
//
// # Serving
//
// Every node serves the published artifacts on HTTP: /v2/ (OCI
// distribution, pull side) and /maven2/ (a Maven 2 repository), from an
// index of the log's entries and a blob store in DATA/store, with the
// network's content exchange (publish/exchange) behind it. A build node
// indexes its own replica, pins the published outputs it built in its
// store and provides them; a regular node follows the log of its policy
// over libp2p or a mirror's URL with a logclient.Follower (final
// checkpoints only, consistent with the last one verified; a fork stops it
// with the evidence kept), and fetches content from the providers. A
// regular node passes requests signed by their requester on to a build
// node over [RequestProtocol]. [Pull] and [Fetch] are the clients that
// check everything a node serves against the policy.
package node
