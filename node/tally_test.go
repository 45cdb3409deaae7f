package node

import (
	"bytes"
	"context"
	"testing"

	"github.com/pyrsia/pyrsia-build/builder"
	"github.com/pyrsia/pyrsia-build/quorum"
)

// A node that missed a request learns its spec from any vote.
func TestVoteSpec(t *testing.T) {
	k, err := InitKeys(t.TempDir(), "node-a", nil)
	if err != nil {
		t.Fatal(err)
	}
	store := &buildStore{dir: t.TempDir(), builder: fakeBuild("honest"), signer: k.Cosign, node: "node-a", inflight: map[string]chan struct{}{}}
	spec, err := builder.ParseRemoteSpec(testSpec(1))
	if err != nil {
		t.Fatal(err)
	}
	b, err := store.build(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	v, err := quorum.NewVote(quorum.VoteFor{Policy: "sha256:" + string(bytes.Repeat([]byte("0"), 64)), Request: "sha256:" + string(bytes.Repeat([]byte("1"), 64)), InputDigest: b.InputDigest, Node: "node-a"}, b.Bundle, b.ManifestDigest)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := spec.CanonicalJSON()
	if got := voteSpec(v); !bytes.Equal(got, want) {
		t.Errorf("voteSpec: got %s, want %s", got, want)
	}
	// The stored build is reused, not rebuilt.
	store.builder = BuilderFunc(failingBuild)
	if b2, err := store.build(context.Background(), spec); err != nil || b2.ManifestDigest != b.ManifestDigest {
		t.Errorf("second build of a stored input: %v, %v; want the stored build", b2, err)
	}
	failed, _ := quorum.NewFailedVote(quorum.VoteFor{Policy: "sha256:" + string(bytes.Repeat([]byte("0"), 64)), Request: "sha256:" + string(bytes.Repeat([]byte("1"), 64)), InputDigest: b.InputDigest, Node: "node-a"}, "boom")
	if got := voteSpec(failed); got != nil {
		t.Errorf("voteSpec of a failed vote: got %s, want nil", got)
	}
}
