package publish

import (
	"context"
	"fmt"

	"github.com/pyrsia/pyrsia-build/publish/policy"
)

// PolicyKeyPrefix starts the key [CheckLogEntry] returns for a policy
// change: "policy:" and the new policy's digest (a publish entry's key is
// its input digest).
const PolicyKeyPrefix = "policy:"

// CheckLogEntry is what every build node runs on the log entry at index
// before it appends it (a Raft FSM), so that a faulty leader can slip in
// neither an unapproved entry nor an unapproved change:
//
//   - a publish entry must certify itself under the policy in force at
//     index ([VerifyEntry] with chain.At(index)); its key is its input
//     digest;
//   - a policy change must be approved by a majority of the policy in
//     force at index ([policy.Change.Check]); it is applied to chain, in
//     force from index+1, and its key is [PolicyKeyPrefix] and the new
//     policy's digest. Checking again a change the chain holds at index
//     (a replay) applies nothing.
//
// Entries must be checked in log order when a policy change is among
// them: the policy in force at an index depends on the changes before it.
// Other kinds are refused.
func CheckLogEntry(ctx context.Context, chain *policy.Chain, index uint64, entry []byte) (string, error) {
	return CheckLogEntryWith(ctx, chain, index, entry, EntryOptions{})
}

// CheckLogEntryWith is [CheckLogEntry] with the options of a publish
// entry's check ([VerifyEntryWith]).
func CheckLogEntryWith(ctx context.Context, chain *policy.Chain, index uint64, entry []byte, o EntryOptions) (string, error) {
	key, _, err := CheckLogEntryParsed(ctx, chain, index, entry, o)
	return key, err
}

// CheckLogEntryParsed is [CheckLogEntryWith] that also returns the
// publish entry it parsed ([ParseEntry] of entry; nil for a policy
// change), for the caller to pass on (to the log's index) rather than
// parse the same bytes again. The entry is the caller's: it is not shared.
func CheckLogEntryParsed(ctx context.Context, chain *policy.Chain, index uint64, entry []byte, o EntryOptions) (string, *Entry, error) {
	kind, err := entryKind(entry)
	if err != nil {
		return "", nil, err
	}
	switch kind {
	case KindPublish:
		e, err := ParseEntry(entry)
		if err != nil {
			return "", nil, err
		}
		_, trust := chain.At(index)
		if _, err := VerifyEntryWith(ctx, e, trust, o); err != nil {
			return "", nil, fmt.Errorf("entry for %s: %w", e.InputDigest, err)
		}
		return e.InputDigest, e, nil
	case KindPolicy:
		c, err := ParsePolicyChange(entry)
		if err != nil {
			return "", nil, err
		}
		if _, err := chain.Apply(index, c); err != nil {
			return "", nil, fmt.Errorf("policy change to %s: %w", c.New.Digest(), err)
		}
		return PolicyKeyPrefix + c.New.Digest(), nil, nil
	}
	return "", nil, &KindError{Kind: kind}
}

// FollowChain applies to chain the policy changes of a log, read with
// entry at the indexes changes (in log order): a node rebuilding the
// policy in force from its own log at start.
func FollowChain(ctx context.Context, chain *policy.Chain, changes []uint64, entry func(ctx context.Context, index uint64) ([]byte, error)) error {
	for _, i := range changes {
		b, err := entry(ctx, i)
		if err != nil {
			return fmt.Errorf("publish: reading policy change %d: %w", i, err)
		}
		c, err := ParsePolicyChange(b)
		if err != nil {
			return fmt.Errorf("log entry %d: %w", i, err)
		}
		if _, err := chain.Apply(i, c); err != nil {
			return fmt.Errorf("publish: log entry %d: %w", i, err)
		}
	}
	return nil
}
