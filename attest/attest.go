// Package attest makes and checks signed in-toto attestations.
//
// An attestation is an in-toto Statement v1 whose subjects are artifacts
// (name + sha256) and whose predicate is SLSA provenance v1
// ([NewProvenance]). The statement is signed as a DSSE envelope with a
// cosign key ([LoadSigner], [Signer.SignEnvelope]) and stored as a Sigstore
// bundle v0.3 ([NewBundle], [ParseBundle]), the format that
// `cosign verify-blob-attestation --new-bundle-format` reads.
//
// # Keys
//
// Keys are cosign key pairs: an ECDSA P-256 private key encrypted with a
// password ("ENCRYPTED SIGSTORE PRIVATE KEY") and a PEM public key. Keys made
// by `cosign generate-key-pair` load here, and keys made here
// ([GenerateKeyPair]) work with cosign.
//
// # Verification
//
// A [Verifier] runs [Step]s in order over an [Evidence] value: the
// envelope's signatures, the statement, the artifact's digest (read once,
// streamed), the subject. Further checks, such as a transparency-log proof
// or a network policy, are further steps added with [Verifier.With].
//
// This package imports no other package of pyrsia-build.
package attest

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"

	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/proto"
)

// FileSubject reads the file at path once through SHA-256 and returns a
// subject named by the file's base name.
func FileSubject(ctx context.Context, path string) (*intoto.ResourceDescriptor, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sum, _, err := SHA256(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return &intoto.ResourceDescriptor{
		Name:   filepath.Base(path),
		Digest: map[string]string{"sha256": hex.EncodeToString(sum[:])},
	}, nil
}

// Attest signs a statement about subjects with the given predicate and
// returns it as a bundle.
func Attest(s *Signer, subjects []*intoto.ResourceDescriptor, predicateType string, predicate proto.Message) (*Bundle, error) {
	st, err := NewStatement(subjects, predicateType, predicate)
	if err != nil {
		return nil, err
	}
	payload, err := MarshalStatement(st)
	if err != nil {
		return nil, fmt.Errorf("attest: encoding statement: %w", err)
	}
	// Never sign what the verifier refuses to read.
	if len(payload) > MaxStatementSize {
		return nil, fmt.Errorf("attest: statement is %d bytes, over the %d byte limit that verifiers read (a spec or predicate field too large?)", len(payload), MaxStatementSize)
	}
	env, err := s.SignEnvelope(InTotoPayloadType, payload)
	if err != nil {
		return nil, err
	}
	b := NewBundle(env, s.KeyHint())
	data, err := b.MarshalJSON()
	if err != nil {
		return nil, fmt.Errorf("attest: encoding bundle: %w", err)
	}
	if len(data) > MaxBundleSize {
		return nil, fmt.Errorf("attest: bundle is %d bytes, over the %d byte limit that verifiers read", len(data), MaxBundleSize)
	}
	return b, nil
}
