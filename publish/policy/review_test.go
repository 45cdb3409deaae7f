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
