// Package exchange lets the nodes of a network share content and the log
// peer to peer, over their libp2p hosts.
//
// # The log
//
// [ServeLog] serves a node's log (any logclient.Source, typically its log
// folder) under the [TilesProtocol] stream protocol, and [NewPeerSource]
// is the logclient.Source that reads it from one or more peers, so that a
// logclient.Follower follows a build node's log over libp2p as it would
// over HTTP. Nothing a peer sends is trusted: the logclient checks every
// checkpoint, tile and entry.
//
// # Content
//
// An [Exchange] ([New]) joins the network's own Kademlia DHT (kad-dht
// under /pyrsia-build/<namespace>, provider records only, keyed by the CID
// of a blob's sha256: raw codec, sha2-256 multihash), serves the blobs of
// the node's store (package publish/store) under [BlobProtocol], and announces them
// ([Exchange.Provide]). [Exchange.Open] is a serve.Content: a blob the
// store lacks is looked up in the DHT and fetched, a blob of known size in
// chunks from several providers at once (each chunk from one, a chunk of
// a provider that fails, stalls for PeerTimeout or goes away given to
// another), into a store Writer whose Commit checks the digest. If the
// whole does not match, each provider in turn is asked for all of it: one
// whose blob does not match sent wrong bytes, and once one matches, every
// provider whose chunks differ from it (by a keyed hash of each chunk
// kept while fetching) sent wrong bytes; such peers are never asked for
// that blob again ([Exchange.Banned]). A blob of unknown size comes whole
// from one provider at a time, at most MaxUnknownSize bytes. A fetched
// blob is provided onward. Chunks are asked for in order, so that the
// Writer hashes them from memory as they come and Commit has nothing left
// to read; at the first "busy" or "not yet" answer (others are fetching
// the blob too) the rest are asked for in a random order, so that those
// fetchers hold different chunks to give each other. Nothing is served
// to a client (Open returns) before Commit has checked the whole blob:
// the digest is of the whole blob, so no byte of it can be checked
// before the last one has come.
//
// A node announces a blob as soon as it starts fetching it, and serves
// the chunks it holds in memory (up to ShareMemory) to peers fetching the
// same blob, telling them "busy" for the parts it lacks: when many nodes
// fetch a new blob at once, most bytes go between them rather than from
// the first provider. Those chunks are not checked yet: a node that
// passes on a liar's chunk may be blamed for it by the peer it gave it
// to, for that blob only, and the blob still comes right.
package exchange
