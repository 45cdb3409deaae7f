package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pyrsia/pyrsia-build/attest"
	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
)

// ChangePayloadType is the DSSE payload type of the statement a build node
// signs to approve a policy change: its own type, so that an approval can
// never be taken for an attestation or a build request, nor one of those
// for an approval.
const ChangePayloadType = "application/vnd.pyrsia-build.policy-change.v1+json"

// MaxApprovals bounds the approvals of a change: one per build node of
// the policy in force at most.
const MaxApprovals = MaxNodes

// Approval is one build node's signature over a change's [Change.Statement]:
// KeyID is the hex SHA-256 of the PKIX DER of its cosign public key (a hint
// to find the key, checked by the signature), Sig an ASN.1 DER ECDSA
// signature (or whatever the key's algorithm makes) over DSSE's
// PAE([ChangePayloadType], statement).
type Approval struct {
	KeyID string
	Sig   []byte
}

// Change is a change of a network's policy: the new policy, the digest of
// the policy it replaces (the one in force where the change is applied) and
// the approvals of the build nodes of that policy.
type Change struct {
	// Previous is the digest of the policy in force, "sha256:<hex>".
	Previous string
	// New is the policy that is in force after the change.
	New *Policy
	// Approvals are the build nodes' signatures, at most one per key.
	Approvals []Approval
}

// ErrChange is wrapped by every error of [Change.Check] and
// [Change.CheckShape]: the change does not hold. Use errors.Is.
var ErrChange = errors.New("policy: change refused")

// ChangeError is the error for a change that does not hold: Reason says
// why. It wraps [ErrChange].
type ChangeError struct {
	Reason string
}

func (e *ChangeError) Error() string { return "policy: change: " + e.Reason }

func (e *ChangeError) Is(target error) bool { return target == ErrChange }

func changeErr(format string, args ...any) error {
	return &ChangeError{Reason: fmt.Sprintf(format, args...)}
}

// Statement returns the bytes a build node signs to approve the change:
// the canonical JSON
//
//	{"network":NAME,"policy":NEW DIGEST,"previous":PREVIOUS DIGEST,"type":"policy-change","v":1}
//
// It binds the network's name, the policy replaced and the new policy, so
// an approval counts for this one step of this one network only.
func (c *Change) Statement() ([]byte, error) {
	if c == nil || c.New == nil {
		return nil, changeErr("no new policy")
	}
	d := c.New.Digest()
	if d == "" {
		return nil, changeErr("the new policy is not valid: %v", c.New.Validate())
	}
	b, err := attest.CanonicalJSON(fmt.Appendf(nil, `{"v":1,"type":"policy-change","network":%q,"previous":%q,"policy":%q}`, c.New.Name, c.Previous, d))
	if err != nil {
		return nil, fmt.Errorf("policy: change: encoding the statement: %w", err)
	}
	return b, nil
}

// CheckShape checks what a change says without judging its approvals: the
// new policy is valid, Previous is a digest and not the new policy's own,
// and no key approved twice. It is what a parser of change entries checks.
func (c *Change) CheckShape() error {
	if c == nil {
		return changeErr("nil change")
	}
	if c.New == nil {
		return changeErr("no new policy")
	}
	if err := c.New.Validate(); err != nil {
		return changeErr("the new policy: %v", err)
	}
	if err := checkDigestString(c.Previous); err != nil {
		return changeErr("previous policy digest: %v", err)
	}
	if c.Previous == c.New.Digest() {
		return changeErr("the new policy is the policy it replaces (%s): nothing changes", c.Previous)
	}
	if len(c.Approvals) > MaxApprovals {
		return changeErr("%d approvals, more than %d", len(c.Approvals), MaxApprovals)
	}
	seen := map[string]int{}
	for i, a := range c.Approvals {
		if err := checkHex64(a.KeyID); err != nil {
			return changeErr("approval %d: keyid: %v", i, err)
		}
		if len(a.Sig) == 0 {
			return changeErr("approval %d (key %s): empty signature", i, short(a.KeyID))
		}
		if len(a.Sig) > 1024 {
			return changeErr("approval %d (key %s): signature of %d bytes, more than 1024", i, short(a.KeyID), len(a.Sig))
		}
		if j, dup := seen[a.KeyID]; dup {
			return changeErr("approvals %d and %d are by the same key %s: each build node approves once", j, i, short(a.KeyID))
		}
		seen[a.KeyID] = i
	}
	return nil
}

// ChangeEvidence is what [Change.Check] established.
type ChangeEvidence struct {
	// Approvers are the names (in the policy in force) of the build nodes
	// whose approval verified, in the policy's order.
	Approvers []string
	// Ignored says, per approval that did not count, why: a key outside
	// the policy in force, or a signature that does not verify.
	Ignored []string
}

// Check judges c against the policy in force, inForce: its shape
// ([Change.CheckShape]), Previous is inForce's digest, the network keeps
// its name, and the approvals of at least inForce.Threshold() distinct
// build nodes of inForce verify over [Change.Statement]. Approvals by keys
// outside inForce, or whose signature does not verify, count for nothing
// (they are listed in the evidence and, when too few count, in the error).
//
// The name is kept because it is the origin line of every checkpoint of
// the log: a new name would be a new log, whose cosigners refuse the old
// log's checkpoints. A network that wants a new name starts a new log.
func (c *Change) Check(inForce *Policy) (*ChangeEvidence, error) {
	if err := c.Replaces(inForce); err != nil {
		return nil, err
	}
	st, err := c.Statement()
	if err != nil {
		return nil, err
	}
	keys := make(map[string]*attest.PublicKey, len(inForce.Nodes))
	for _, n := range inForce.Nodes {
		k, err := attest.ParsePublicKey(n.Name, []byte(n.CosignKey))
		if err != nil {
			return nil, changeErr("the policy in force: node %s: %v", n.Name, err)
		}
		keys[k.ID] = k
	}
	ev := &ChangeEvidence{}
	approved := map[string]bool{}
	for i, a := range c.Approvals {
		k, ok := keys[a.KeyID]
		if !ok {
			ev.Ignored = append(ev.Ignored, fmt.Sprintf("approval %d: key %s is not a build node of the policy in force", i, short(a.KeyID)))
			continue
		}
		env := &dssepb.Envelope{PayloadType: ChangePayloadType, Payload: st, Signatures: []*dssepb.Signature{{Sig: a.Sig}}}
		if len(attest.VerifyEnvelope(env, []*attest.PublicKey{k})) == 0 {
			ev.Ignored = append(ev.Ignored, fmt.Sprintf("approval %d: the signature of %s does not verify over this change", i, k.Name))
			continue
		}
		approved[k.Name] = true
	}
	for _, n := range inForce.Nodes {
		if approved[n.Name] {
			ev.Approvers = append(ev.Approvers, n.Name)
		}
	}
	if len(ev.Approvers) < inForce.Threshold() {
		names := "none"
		if len(ev.Approvers) > 0 {
			names = strings.Join(ev.Approvers, ", ")
		}
		msg := fmt.Sprintf("approved by %d of the %d build nodes of the policy in force (%s), %d needed", len(ev.Approvers), len(inForce.Nodes), names, inForce.Threshold())
		if len(ev.Ignored) > 0 {
			msg += "; not counted: " + strings.Join(ev.Ignored, "; ")
		}
		return ev, changeErr("%s", msg)
	}
	return ev, nil
}

// Replaces checks everything about c but its approvals: its shape
// ([Change.CheckShape]), that Previous is inForce's digest, and that the
// new policy keeps the network's name.
func (c *Change) Replaces(inForce *Policy) error {
	if err := c.CheckShape(); err != nil {
		return err
	}
	if inForce == nil {
		return changeErr("no policy in force to judge the change with")
	}
	cur := inForce.Digest()
	if cur == "" {
		return changeErr("the policy in force is not valid: %v", inForce.Validate())
	}
	if c.Previous != cur {
		return changeErr("it replaces policy %s, but the policy in force is %s: the change was made for another policy (made before another change was applied?); propose it again against the policy in force", c.Previous, cur)
	}
	if c.New.Name != inForce.Name {
		return changeErr("the new policy names the network %q, the policy in force %q: a change keeps the network's name (it is the origin of the log's checkpoints)", truncate(c.New.Name), truncate(inForce.Name))
	}
	return nil
}

// Approve signs c as the build node whose cosign key signer holds, after
// checking c's shape, that c replaces inForce, and that signer's key is
// one of inForce's build nodes. It replaces an earlier approval by the
// same key. It returns the name of the node that approved.
func (c *Change) Approve(inForce *Policy, signer *attest.Signer) (string, error) {
	if err := c.Replaces(inForce); err != nil {
		return "", err
	}
	name := ""
	for _, n := range inForce.Nodes {
		if k, err := attest.ParsePublicKey(n.Name, []byte(n.CosignKey)); err == nil && k.ID == signer.KeyID() {
			name = n.Name
		}
	}
	if name == "" {
		return "", changeErr("key %s is not the cosign key of a build node of the policy in force: only they approve changes", short(signer.KeyID()))
	}
	st, err := c.Statement()
	if err != nil {
		return "", err
	}
	env, err := signer.SignEnvelope(ChangePayloadType, st)
	if err != nil {
		return "", fmt.Errorf("policy: change: %w", err)
	}
	c.Approvals = slices.DeleteFunc(c.Approvals, func(a Approval) bool { return a.KeyID == signer.KeyID() })
	c.Approvals = append(c.Approvals, Approval{KeyID: signer.KeyID(), Sig: env.GetSignatures()[0].GetSig()})
	slices.SortFunc(c.Approvals, func(a, b Approval) int { return strings.Compare(a.KeyID, b.KeyID) })
	return name, nil
}

func checkDigestString(d string) error {
	h, ok := strings.CutPrefix(d, "sha256:")
	if !ok {
		return fmt.Errorf("%q does not start with \"sha256:\"", truncate(d))
	}
	return checkHex64(h)
}

func checkHex64(h string) error {
	if len(h) != 64 {
		return fmt.Errorf("%q is not 64 lowercase hex digits", truncate(h))
	}
	for _, c := range []byte(h) {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return fmt.Errorf("%q is not 64 lowercase hex digits", truncate(h))
		}
	}
	return nil
}

func short(id string) string {
	if len(id) > 16 {
		return id[:16]
	}
	return id
}
