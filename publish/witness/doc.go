// Package witness signs the checkpoints of the pyrsia-build transparency log
// and cosigns them, so that a checkpoint only counts once a majority of the
// build nodes vouch that it extends what they have seen before.
//
// # Formats
//
// A checkpoint is a C2SP tlog-checkpoint: a signed note (golang.org/x/mod/sumdb/note)
// whose text is the log origin, the tree size and the base64 RFC 6962 root
// hash, each on a line of its own. The log signs it with a plain Ed25519 note
// signature ([SignCheckpoint]). Each build node cosigns it with a C2SP
// tlog-cosignature/v1 signature, which adds a timestamp and uses its own key
// hash, so one Ed25519 key made by [GenerateKey] serves both roles:
// [NewLogSigner] and [NewLogVerifier] give the plain note signer and verifier,
// [NewCosignatureSigner] and [NewCosignatureVerifier] the cosignature/v1 ones.
//
// # Flow
//
//  1. The log appends entries and signs a checkpoint with [SignCheckpoint].
//  2. Every build node runs a [Cosigner]. [Cosigner.Cosign] checks the log
//     signature and origin, then checks that the new checkpoint extends the
//     last one it cosigned: same size and same root, or a larger size and a
//     consistency proof (fetched from a [ProofSource]) that verifies. It
//     stores the new checkpoint durably and only then returns its cosignature.
//     A checkpoint that does not extend the stored one is refused, with the
//     answers of C2SP tlog-witness: a smaller one with a [*ConflictError]
//     (the submitter is stale: 409 Conflict), one whose consistency proof
//     does not verify with a [*BadProofError] (422; the proof source is not
//     trusted, so nothing is proven), and one of the same size with another
//     root with a [*ForkError] that carries both notes signed by the log
//     key: the proof of a fork. [CosignerClient] is the interface a log
//     uses to ask a cosigner, local ([*Cosigner]) or remote;
//     [Cosigner.AddCheckpoint] is the request of C2SP tlog-witness (an old
//     size, a proof, a note) that a remote cosigner's server answers.
//  3. The log gathers the cosignatures into the note with [AddSignatures].
//  4. Anyone checks that a checkpoint is final with [VerifyFinal]: the log
//     signature verifies and at least a threshold of the listed cosigners
//     (by default [Threshold], an absolute majority) have cosigned it. A
//     cosignature does not cover its signer's name, so cosigners are
//     counted by public key ([PublicKey], [Distinct]), never by name.
//
// Every checkpoint note from outside is decoded by [OpenUnverified] (for
// [ParseCheckpoint]) within [MaxCheckpointSize], and its text parsed by
// [ParseCheckpointText]: one parser, one limit.
//
// The first checkpoint a [Cosigner] sees is trusted on first use: with no
// stored state there is nothing it could be checked against. The state file
// is never reset silently: a missing state directory is created, but a
// state file that is corrupt, truncated or for another log is an error.
package witness
