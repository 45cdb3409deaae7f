package publish_test

import (
	"context"
	"testing"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
)

// benchEntry is a publish entry of three of five build nodes' votes, as a
// network's FSM checks it, and the chain of that network.
func benchEntry(b *testing.B) ([]byte, *policy.Chain) {
	b.Helper()
	ns := testChainNodes(b)[:5]
	chain, err := policy.NewChain(chainPolicy(b, ns...))
	if err != nil {
		b.Fatal(err)
	}
	return publishEntry(b, "bench artifact", ns[0], ns[1], ns[2]), chain
}

func BenchmarkParseEntry(b *testing.B) {
	raw, _ := benchEntry(b)
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := publish.ParseEntry(raw); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEntryKind(b *testing.B) {
	raw, _ := benchEntry(b)
	b.ReportAllocs()
	for b.Loop() {
		if k, err := publish.EntryKind(raw); err != nil || k != publish.KindPublish {
			b.Fatal(k, err)
		}
	}
}

// BenchmarkCheckLogEntry is one FSM's check of an entry: verify=ecdsa
// verifies every envelope, verify=cached answers the signatures from a
// memo of earlier verifications (as quorum.VerifiedEnvelopes does after
// the gossip validator), so that it measures the parsing alone.
func BenchmarkCheckLogEntry(b *testing.B) {
	raw, chain := benchEntry(b)
	b.Run("verify=ecdsa", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := publish.CheckLogEntry(context.Background(), chain, 1, raw); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("verify=cached", func(b *testing.B) {
		memo := make(map[string][]*attest.PublicKey)
		o := publish.EntryOptions{Signers: func(env *dssepb.Envelope, keys []*attest.PublicKey) []*attest.PublicKey {
			k := string(env.GetPayload()) + string(env.GetSignatures()[0].GetSig())
			s, ok := memo[k]
			if !ok {
				s = attest.VerifyEnvelope(env, keys)
				memo[k] = s
			}
			return s
		}}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := publish.CheckLogEntryWith(context.Background(), chain, 1, raw, o); err != nil {
				b.Fatal(err)
			}
		}
	})
}
