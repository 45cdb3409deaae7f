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

// IndexedChecker is an optional upgrade of a [Checker] whose judgement
// depends on the entry's log index: the policy in force there, when the
// network's policy changes by log entries. The FSM calls CheckEntryAt with
// the index the entry gets (or has, on a replay) instead of CheckEntry,
// and checks a batch that holds a policy change entry by entry, in order.
type IndexedChecker interface {
	CheckEntryAt(index uint64, entry []byte) (key string, err error)
}

// StagedChecker is an optional upgrade of an [IndexedChecker] whose
// CheckEntryAt changes its state (a policy change, applied to the chain):
// PreCheckEntryAt judges the entry at index as CheckEntryAt would and
// changes nothing. [CheckedCatchup] pre-checks a change so, appends it,
// and only once the log holds it calls CheckEntryAt to apply it: the
// checker then never holds a change its log does not.
type StagedChecker interface {
	IndexedChecker
	PreCheckEntryAt(index uint64, entry []byte) (key string, err error)
}

// ParsingChecker is an optional upgrade of an [IndexedChecker] that
// also returns the publish entry it parsed to judge entry (nil for
// another kind): the FSM passes it on to a [ParsedBatchAppender] (the
// log's index) instead of having the same bytes parsed again. Its
// judgement is CheckEntryAt's.
type ParsingChecker interface {
	IndexedChecker
	CheckEntryParsedAt(index uint64, entry []byte) (key string, parsed *publish.Entry, err error)
}

// checkAt runs c on the entry at index.
func checkAt(c Checker, index uint64, entry []byte) (string, error) {
	key, _, err := checkParsedAt(c, index, entry)
	return key, err
}

// checkParsedAt runs c on the entry at index, and returns the publish
// entry it parsed when c is a [ParsingChecker].
func checkParsedAt(c Checker, index uint64, entry []byte) (string, *publish.Entry, error) {
	switch ic := c.(type) {
	case ParsingChecker:
		return ic.CheckEntryParsedAt(index, entry)
	case IndexedChecker:
		key, err := ic.CheckEntryAt(index, entry)
		return key, nil, err
	}
	key, err := c.CheckEntry(entry)
	return key, nil, err
}

// ChainChecker is the [Checker] of a network whose policy changes by log
// entries (publish.CheckLogEntry): a publish entry is applied only if it
// certifies itself under the policy in force at its index, a policy change
// only if a majority of the policy in force at its index approved it, and
// the change is then in force from the next index on. Every node checks,
// so a faulty leader cannot slip in a change. Its key for a change is
// publish.PolicyKeyPrefix and the new policy's digest.
type ChainChecker struct {
	Chain *policy.Chain
	// Envelopes, if set, answers for the envelopes this node verified
	// before (its votes topic validator's, the same cache): the entry's
	// other checks all run, and an envelope not remembered is verified.
	Envelopes *VerifiedEnvelopes
}

// CheckEntryAt implements [IndexedChecker].
func (c *ChainChecker) CheckEntryAt(index uint64, entry []byte) (string, error) {
	key, _, err := c.CheckEntryParsedAt(index, entry)
	return key, err
}

// CheckEntryParsedAt implements [ParsingChecker].
func (c *ChainChecker) CheckEntryParsedAt(index uint64, entry []byte) (string, *publish.Entry, error) {
	var o publish.EntryOptions
	if c.Envelopes != nil {
		o.Signers = c.Envelopes.Verify
		o.Statements = c.Envelopes.Statement
	}
	return publish.CheckLogEntryParsed(context.Background(), c.Chain, index, entry, o)
}

// PreCheckEntryAt implements [StagedChecker]: a policy change is judged
// as the chain would apply it at index ([policy.Chain.Check]), not
// applied; any other entry as CheckEntryAt judges it.
func (c *ChainChecker) PreCheckEntryAt(index uint64, entry []byte) (string, error) {
	if kind, err := publish.EntryKind(entry); err == nil && kind == publish.KindPolicy {
		ch, err := publish.ParsePolicyChange(entry)
		if err != nil {
			return "", err
		}
		if _, err := c.Chain.Check(index, ch); err != nil {
			return "", fmt.Errorf("policy change to %s: %w", ch.New.Digest(), err)
		}
		return publish.PolicyKeyPrefix + ch.New.Digest(), nil
	}
	return c.CheckEntryAt(index, entry)
}

// CheckEntry implements [Checker]: the entry judged at the index from
// which the latest policy holds. It changes nothing: a policy change is
// judged as the chain would apply it next ([policy.Chain.Check]), not
// applied, for the chain holds only the changes of the log (the FSM
// applies them with CheckEntryAt, at their index).
func (c *ChainChecker) CheckEntry(entry []byte) (string, error) {
	_, from := c.Chain.Current()
	if kind, err := publish.EntryKind(entry); err == nil && kind == publish.KindPolicy {
		ch, err := publish.ParsePolicyChange(entry)
		if err != nil {
			return "", err
		}
		if _, err := c.Chain.Check(from, ch); err != nil {
			return "", fmt.Errorf("policy change to %s: %w", ch.New.Digest(), err)
		}
		return publish.PolicyKeyPrefix + ch.New.Digest(), nil
	}
	return c.CheckEntryAt(from, entry)
}
