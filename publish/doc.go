// Package publish holds what makes an artifact public: the entries of the
// transparency log and the proof bundles that show an entry is in it.
//
// An artifact is published when an absolute majority of the build nodes
// built the same digest from the same build spec. The log then gains an
// [Entry]: the input digest, the spec, the agreed subjects and the
// majority's DSSE envelopes. The entry certifies itself: a verifier checks
// the envelopes against the network policy and trusts no log operator.
//
// # Log entries
//
// The log stores the bytes of [Entry.MarshalBinary], version [EntryVersion]
// of kind [KindPublish]: compact JSON, fields in a fixed order with the
// version first, bytes in padded standard base64, the spec as
// [CanonicalJSON], subjects sorted by name then digest, envelopes sorted by
// the SHA-256 of their encoding. For example (wrapped, payload shortened):
//
//	{"v":1,"kind":"publish","inputDigest":"sha256:0f1e…","ecosystem":"oci",
//	 "coordinate":"hello:1.0","spec":{"coordinate":"hello:1.0","ecosystem":"oci"},
//	 "subjects":[{"name":"hello","digest":"sha256:9a8b…"}],
//	 "envelopes":[{"payloadType":"application/vnd.in-toto+json","payload":"eyJf…",
//	   "signatures":[{"sig":"MEUC…"}]}]}
//
// The same entry always has the same bytes, and [ParseEntry] accepts only
// those bytes, so an entry has one leaf hash, [LeafHash], in the RFC 6962
// tree. ParseEntry rejects an entry of a kind it does not know with
// [ErrUnknownKind], and a newer version with [ErrUnsupportedVersion], so
// that readers that follow the log can tell "not for me" from "broken".
// A policy change is an entry of kind [KindPolicy] ([MarshalPolicyChange],
// [ParsePolicyChange]): the new policy, the digest of the one it replaces
// and the approvals of a majority of that policy's build nodes (see
// package policy's "Changes"). ParseEntry refuses it with an error that
// matches [ErrNotPublish]; [EntryKind] tells the kinds apart.
// An entry's ecosystem and coordinate must be its spec's ([CheckLabels],
// [ErrLabelMismatch]), and its envelopes in-toto ones, so that genuine
// attestations cannot be put under another name.
//
// # Verification
//
// A [policy.Trust] (from a network policy, or keys given one by one) is the
// trust root. [VerifyEntry] checks that an entry certifies itself under it
// (a majority of distinct build-node keys signed in-toto statements that
// bind exactly the entry's spec and subjects): a Raft FSM runs it before it
// applies an entry. [VerifyProof] checks an artifact against a proof
// bundle: the checkpoint is final, the entry is in it, [VerifyEntry], and
// the artifact's digest is an agreed subject. [VerifyProofChain] does the
// same given the network's first policy: it follows the policy changes the
// bundle carries (each proven in the same tree) to the policy in force at
// the entry's index, which judges the entry, and at the tree's size, which
// judges the checkpoint.
//
// # Proof bundles
//
// A [ProofBundle], media type [ProofBundleMediaType], is what verify needs
// offline: the entry's exact bytes, its index, the inclusion proof, and the
// checkpoint (a C2SP signed note with the build nodes' cosignatures) for the
// tree the proof leads to; version 2 ([ProofBundleV2MediaType]) adds the
// log's policy changes below the tree size with their inclusion proofs.
// [ParseProofBundle] checks its shape only; the
// proof and the signatures are checked by the verifier.
//
// # Index
//
// Package [github.com/pyrsia/pyrsia-build/publish/index] indexes the entries
// of the log in memory, by artifact digest, input digest and coordinate.
package publish
