package policy_test

import (
	"strings"
	"testing"

	"github.com/pyrsia/pyrsia-build/publish/policy"
)

// Regression (review finding 2): a policy could list one node's note key twice, under two
// names, if the second copy has a newline inside its base64 (JSON "\n"):
// note.NewVerifier skips it, witness.PublicKey does not. Validate passes and
// Trust counts one node's cosignature as two.
func TestPolicySameNoteKeyWithNewline(t *testing.T) {
	b := edit(t, func(m map[string]any) {
		k := sameKeyOtherName(t, node(m, 0)["noteKey"].(string), "node-b")
		parts := strings.SplitN(k, "+", 3)
		node(m, 1)["noteKey"] = parts[0] + "+" + parts[1] + "+" + parts[2][:10] + "\n" + parts[2][10:]
	})
	p, err := policy.Parse(b)
	if err == nil {
		tr, terr := p.Trust()
		t.Fatalf("Parse accepted a policy whose nodes[1].noteKey is nodes[0]'s key (Trust: %d cosigners, %v)", len(tr.Cosigners), terr)
	}
	if !strings.Contains(err.Error(), "noteKey") {
		t.Errorf("got %v, want an error naming the noteKey", err)
	}
}

// Regression (hostile review of the policy chain): a note key's name is
// printed as it is (`network propose` and `approve` show a rotated note
// key, `verify` names the cosigners by it), and note.NewVerifier takes
// any name without white space or '+': terminal escapes, backspaces and
// bidi overrides included. A proposer could write a new policy whose
// note key rotation hides itself from the approvers' screens.
func TestPolicyNoteKeyNameControlCharacters(t *testing.T) {
	for _, name := range []string{"node-b\x1b[2K\x1b[G", "node-b\x08\x08\x08\x08", "node-b\u202e", "nodé-b", "node-b\x7f"} {
		b := edit(t, func(m map[string]any) {
			node(m, 1)["noteKey"] = sameKeyOtherName(t, node(m, 1)["noteKey"].(string), name)
		})
		_, err := policy.Parse(b)
		if err == nil || !strings.Contains(err.Error(), "nodes[1] (node-b).noteKey") {
			t.Errorf("note key name %q: got %v, want a refusal naming nodes[1] (node-b).noteKey", name, err)
		}
	}
}
