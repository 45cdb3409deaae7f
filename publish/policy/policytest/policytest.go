// Package policytest makes the log entries of policy changes for the
// tests of the packages that follow them (publish, quorum, node).
package policytest

import (
	"testing"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/policy"
)

// ChangeEntry returns the log entry ([publish.MarshalPolicyChange]) of a
// change from old to new approved by each of approvers, in order. Unlike
// [policy.Change.Approve] it signs with whatever key an approver holds,
// one of old's build nodes or not, so that tests can make the changes a
// verifier must refuse.
func ChangeEntry(t testing.TB, old, new *policy.Policy, approvers ...*attest.Signer) []byte {
	t.Helper()
	c := &policy.Change{Previous: old.Digest(), New: new}
	st, err := c.Statement()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range approvers {
		env, err := a.SignEnvelope(policy.ChangePayloadType, st)
		if err != nil {
			t.Fatal(err)
		}
		c.Approvals = append(c.Approvals, policy.Approval{KeyID: a.KeyID(), Sig: env.GetSignatures()[0].GetSig()})
	}
	b, err := publish.MarshalPolicyChange(c)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
