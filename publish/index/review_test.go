package index

import (
	"errors"
	"testing"

	"github.com/pyrsia/pyrsia-build/publish"
)

// Regression (review finding 5): the index keyed entries by their input digest without
// checking that it is the digest of their spec (ParseEntry does not check
// it either; only VerifyEntry does). Whoever can append (a log operator, a
// --raw append, a replica that follows a hostile log) adds an entry with
// any spec and any subjects under a victim's input digest, and
// ByInputDigest, which returns the latest, answers with it: the victim's
// build "was published" with the attacker's subjects.
func TestIndexInputDigestBoundToSpec(t *testing.T) {
	x, err := New()
	if err != nil {
		t.Fatal(err)
	}
	victim := entry("maven", "org.victim:core:9.9", "victim", "core-9.9.jar=good")
	victim.InputDigest = victim.SpecDigest()
	if err := x.Add(0, victim); err != nil {
		t.Fatal(err)
	}
	evil := entry("maven", "org.evil:x:1", "evil", "core-9.9.jar=evil")
	evil.InputDigest = victim.InputDigest // not the digest of evil.Spec
	err = x.Add(1, evil)
	if !errors.Is(err, publish.ErrInputMismatch) {
		t.Errorf("Add accepted an entry whose input digest %s is not the digest of its spec (%s)", evil.InputDigest, evil.SpecDigest())
	}
	// Nor does it come out of the log: ParseEntry refuses it too, and
	// MarshalBinary will not write it.
	if _, err := evil.MarshalBinary(); !errors.Is(err, publish.ErrInputMismatch) {
		t.Errorf("MarshalBinary of an entry whose input digest is not its spec's: got %v, want publish.ErrInputMismatch", err)
	}
	if r, ok := x.ByInputDigest(victim.InputDigest); !ok || r.LogIndex != 0 {
		t.Errorf("ByInputDigest(victim) = %+v, %v; want log index 0, the victim's own entry", r, ok)
	}
}
