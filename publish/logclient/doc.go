// Package logclient reads the pyrsia-build transparency log and checks
// everything it reads: the one log reader of the CLI, the node daemon and
// the tests.
//
// # Sources
//
// A [Source] gives a log's checkpoint, hash tiles and entry bundles as
// C2SP tlog-tiles names them. [OpenDir] reads a log folder (package tlog,
// opened read-only); [OpenURL] reads any tlog-tiles server or static
// mirror over HTTP, every response through a size limit fitting its kind.
// [Failover] reads from whichever of several sources answers (any build
// node or mirror). Nothing a Source says is trusted.
//
// # Checking
//
// A [Client] reads a Source and checks its answers. [Client.Checkpoint]
// checks the checkpoint against a policy.Trust: its origin, a signature by
// one of the log keys and, when the Trust has cosigners, that it is final
// (cosigned by a threshold of distinct cosigner keys). [Client.Entry] reads
// an entry with its inclusion proof, built from the tiles as Tessera's
// client builds it, and checks it against the checkpoint's root;
// [Client.ProofBundle] makes a publish.ProofBundle of it. [Client.Consistency]
// checks the consistency of two checkpoints, [Client.ConsistencyProof] that
// of two sizes of one checkpoint's tree, [Client.Entries] a range of
// entries a bundle at a time.
//
// # Following
//
// A [Follower] polls a Source, accepts a new checkpoint only if it is final
// and consistent with the last one verified, keeps that one in a state
// directory (so that a restart resumes from it), and hands each new entry,
// proven included, to a callback: the node's index. A proven fork (two
// final checkpoints that cannot both be true) stops it: both checkpoints
// are kept as evidence, and it does not start again until someone moved
// them away. A checkpoint that no log key signed or that is not final, a
// stale mirror, or tiles that do not prove a new checkpoint extends the
// last one, prove nothing about the log (anyone on the path can make
// them): they are errors, the checkpoint is not accepted, and the next
// poll tries again. Nothing is ever accepted silently.
//
// A source is not trusted with the follower's time either: a checkpoint
// is refused before any of its entries is read unless a key of the
// policy the follower holds signed or cosigned it; one that such a key
// signed but a majority did not (yet) cosign has at most
// [FollowerOptions.MaxUnverified] of its entries read a poll; each read
// ends after [FollowerOptions.ReadTimeout] and a poll's reads from one
// source after [FollowerOptions.PollTimeout] (what was verified stays,
// and the next poll reads on); and a poll that fails on one source of a
// [Failover] goes on with the next.
//
// Errors name the source, what was read (an index, a size) and, through
// [Hint], what to do.
package logclient
