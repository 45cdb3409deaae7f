// Package builder turns a build spec into artifacts, reproducibly, with
// nothing from outside but the pinned source and the pinned builder image.
//
// # Flow
//
// A [Spec] (build spec v1, YAML) names the ecosystem, the coordinate, the
// source (git URL + commit, or archive + sha256), the recipe, and the
// builder image by digest. Its canonical JSON's SHA-256 is the input digest.
// A [Builder] fetches and checks the source, builds in a container with the
// network off, and writes an output folder:
//
//	OUT/artifacts/...              the artifacts: an OCI image layout (oci),
//	                               or jars and poms (maven)
//	OUT/manifest.json              the output manifest: every file inside
//	                               every artifact, with size and sha256
//	OUT/build.log                  the build's log
//
// The caller (the CLI, or a build node) then signs an attestation over the
// artifacts. [Diff] explains why two builds of one spec differ.
//
// # Maven: two phases
//
// A Maven spec with a dependency lock ([Lock], recipe.maven.lock) builds
// against exactly the lock's files: the node fetches each from the Maven
// repository of its own Maven configuration ([MavenRepository]), or takes
// it from its cache, checks it against the lock ([LockMismatchError]), and
// gives the build a local repository of those files only, with the network
// off; what the build still reaches for is a [NotLockedError].
// [BuildKit.Resolve] writes the lock: it runs the recipe once with a
// recording mirror of the configured repository as Maven's only repository.
// [CompareUpstream] compares a build with the official release; a recipe
// with compareUpstream puts that comparison into the [Result] and the
// provenance.
package builder

import (
	"context"
	"io"
)

// Artifact is one build output, named by its sha256.
type Artifact struct {
	// Name is the artifact's file name, or for an OCI image its
	// coordinate ("hello:1.0").
	Name string `json:"name"`
	// Digest is "sha256:<hex>": for an OCI image the single-platform
	// image manifest digest, for a file its content digest.
	Digest string `json:"digest"`
	// Path is where the artifact is, relative to the output folder: a file
	// for maven, the OCI layout folder for oci.
	Path string `json:"path"`
	// MediaType is the artifact's media type (the image manifest's, or
	// application/java-archive, application/xml...).
	MediaType string `json:"mediaType,omitempty"`
}

// Result is what a build produced.
type Result struct {
	InputDigest string `json:"inputDigest"`
	// Coordinate is the spec's coordinate.
	Coordinate string     `json:"coordinate,omitempty"`
	Artifacts  []Artifact `json:"artifacts"`
	// SourceDigest and BuilderImageDigest are what the build resolved
	// and used, for the provenance's resolvedDependencies.
	SourceDigest       string `json:"sourceDigest"`
	BuilderImageDigest string `json:"builderImageDigest"`
	// MavenLockDigest is "sha256:<hex>" of the Maven dependency lock the
	// build used, if any.
	MavenLockDigest string `json:"mavenLockDigest,omitempty"`
	// Upstream is the comparison with the official release, when the
	// recipe asked for it (recipe.maven.compareUpstream).
	Upstream *UpstreamResult `json:"upstream,omitempty"`
}

// Builder builds a spec into an output folder.
//
// Build must not reach the network during the build steps, must not share
// a cache with anyone, and must fail with the tail of the build log when
// the recipe fails. Progress is written to the Progress of the options.
type Builder interface {
	Build(ctx context.Context, spec *Spec, opts BuildOptions) (*Result, error)
}

// BuildOptions are the per-build settings a Builder gets.
type BuildOptions struct {
	// OutDir is the output folder; it is created, and must be empty.
	OutDir string
	// SpecDir resolves relative paths in the spec (an archive path).
	SpecDir string
	// Images is the folder of builder images (OCI layouts) by name.
	Images string
	// Progress receives human-readable progress; nil discards it.
	Progress io.Writer
	// Remote says the spec arrived over a network: Build checks it with
	// [Spec.ValidateRemote], so it cannot read the node's own files
	// (relative paths are opened inside SpecDir only, never through a
	// symlink out of it), connects only to public internet addresses
	// (checked when each connection is made), and clones git sources
	// without the node user's git configuration and credentials, over
	// https and http only.
	Remote bool
	// AllowHosts are the node operator's source hosts that are not public
	// and that a Remote build may fetch from all the same (see
	// [RemoteOptions]); a bad entry fails the build.
	AllowHosts []string
	// NoCache asks for every step to be rebuilt, ignoring the daemon's
	// cache. [BuildKit] always does so (a build must not share a cache
	// with anyone); the field is kept for builders that could cache
	// safely, and for callers that set it.
	NoCache bool
	// MavenRepository is the Maven repository a locked Maven build fetches
	// the lock's files from; when empty, [MavenRepository] reads it from
	// the machine's Maven configuration.
	MavenRepository string
	// MavenCache keeps fetched Maven files by sha256 between builds
	// ([MavenRepoCacheDir] when empty, "-" for none). A speed-up only:
	// every file is hashed again before a build sees it.
	MavenCache string
}
