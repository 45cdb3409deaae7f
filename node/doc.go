// Package node is the build-node daemon: it puts the builder, the quorum
// (libp2p gossip, votes, Raft) and the published log together.
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
package node
