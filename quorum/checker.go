package quorum

import (
	"context"
	"fmt"

	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/policy"
)

// PolicyChecker is the [Checker] of a network: an entry is applied only if
// it parses as a log entry (publish.ParseEntry: canonical, within the size
// limit) and certifies itself under the policy's trust
// (publish.VerifyEntry: a majority of the policy's build node keys signed
// statements of exactly its spec and subjects). It is deterministic: it
// reads nothing but the entry and the policy.
type PolicyChecker struct {
	Trust *policy.Trust
}

// NewPolicyChecker compiles p's keys once.
func NewPolicyChecker(p *policy.Policy) (*PolicyChecker, error) {
	t, err := p.Trust()
	if err != nil {
		return nil, fmt.Errorf("quorum: %w", err)
	}
	return &PolicyChecker{Trust: t}, nil
}

// CheckEntry implements [Checker].
func (c *PolicyChecker) CheckEntry(entry []byte) (string, error) {
	e, err := publish.ParseEntry(entry)
	if err != nil {
		return "", err
	}
	if _, err := publish.VerifyEntry(context.Background(), e, c.Trust); err != nil {
		return "", fmt.Errorf("entry for %s: %w", e.InputDigest, err)
	}
	return e.InputDigest, nil
}
