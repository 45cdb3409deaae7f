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
package exchange
