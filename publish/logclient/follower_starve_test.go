package logclient

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/pyrsia/pyrsia-build/publish/policy/policytest"
	"github.com/pyrsia/pyrsia-build/publish/witness"
)

// TestChainFollowerNotStarvedByALiar: a follower catching up across a
// policy change (the honest checkpoint is final only under the policy a
// change in its tree makes, so its tree is read within the budget of
// unverified reads) must get there although a lying source listed first,
// holding one key of the policy in force (a node since removed, say),
// offers a huge checkpoint that key alone signed at every poll. Before,
// the liar spent the poll's whole budget first and took the one slot of
// a judgement in progress, so the honest source's tree was never read
// past the budget.
func TestChainFollowerNotStarvedByALiar(t *testing.T) {
	ctx := context.Background()
	cn := newChainNet(t)
	// The cosign keys of node-a and node-b, to approve the change.
	var approvers []*attest.Signer
	for i := range 2 {
		k, err := attest.GenerateKeyPair([]byte("pw"))
		if err != nil {
			t.Fatal(err)
		}
		s, err := attest.LoadSigner(k.Private, []byte("pw"))
		if err != nil {
			t.Fatal(err)
		}
		cn.policy.Nodes[i].CosignKey = string(k.Public)
		approvers = append(approvers, s)
	}
	if err := cn.policy.Validate(); err != nil {
		t.Fatal(err)
	}
	// The new policy adds node-d and node-e (threshold 3 of 5).
	grown := *cn.policy
	grown.Nodes = append([]policy.Node(nil), cn.policy.Nodes...)
	var newCos []*witness.Cosigner
	for i := 3; i < 5; i++ {
		name := fmt.Sprintf("node-%c", 'a'+i)
		k := newNodeKeys(t, name)
		c, err := witness.NewCosigner(witness.CosignerOptions{Signer: k.cosSigner, Origin: testOrigin, LogVerifier: cn.logKey,
			StateDir: filepath.Join(t.TempDir(), name)})
		if err != nil {
			t.Fatal(err)
		}
		newCos = append(newCos, c)
		grown.Nodes = append(grown.Nodes, policyNode(t, name, k.vkey, "b", i))
	}
	if err := grown.Validate(); err != nil {
		t.Fatal(err)
	}

	honestLog := newTestLog(t, cn.network, "a")
	if _, err := honestLog.log.Append(ctx, policytest.ChangeEntry(t, cn.policy, &grown, approvers...)); err != nil {
		t.Fatal(err)
	}
	honestLog.next++
	honestLog.append(1500, "a")
	// Cosigned by node-a, node-d and node-e: final under the grown policy,
	// not under the first (node-a alone of a, b, c).
	honestLog.cos = []*witness.Cosigner{honestLog.cos[0], newCos[0], newCos[1]}
	honestLog.publish(3)
	honest := honestLog.serve(nil)

	lying := newTestLog(t, cn.network, "lie")
	lying.append(5000, "lie")
	lying.publish(0) // node-a's key alone
	h := &hostile{honest: lying.log.Handler()}
	liar := lying.serve(func(http.Handler) http.Handler { return h })

	v := &visits{}
	f := cn.follower(t, Failover(openURL(t, liar.URL), openURL(t, honest.URL)), v, 512)
	var err error
	for poll := 1; poll <= 8; poll++ {
		if err = f.Poll(ctx); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("after 8 polls (1501 entries to read, 512 a poll): %v", err)
	}
	if got := f.Status().Checkpoint; got == nil || got.Size != 1501 {
		t.Fatalf("checkpoint %+v, want the honest one of size 1501", got)
	}
}
