package quorum

import (
	"testing"
)

// BenchmarkParseVote is the votes validator's parse of one successful
// build's vote (about 3 KiB: a bundle, its statement and spec).
func BenchmarkParseVote(b *testing.B) {
	nodes := testNodes(b, 1)
	net := testNetwork(b, nodes, NetworkOptions{})
	spec, input := testSpec(b, "demo:1")
	raw, err := testVote(b, net.Digest(), nodes[0], spec, input, "artifact").Marshal()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseVote(raw); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateVote is ParseVote and the signature check of the
// votes validator (without a cache of verified envelopes).
func BenchmarkValidateVote(b *testing.B) {
	nodes := testNodes(b, 1)
	net := testNetwork(b, nodes, NetworkOptions{})
	spec, input := testSpec(b, "demo:1")
	raw, err := testVote(b, net.Digest(), nodes[0], spec, input, "artifact").Marshal()
	if err != nil {
		b.Fatal(err)
	}
	m, _ := net.ByName(nodes[0].name)
	b.ReportAllocs()
	for b.Loop() {
		v, err := ParseVote(raw)
		if err != nil {
			b.Fatal(err)
		}
		if err := v.VerifySignature(m); err != nil {
			b.Fatal(err)
		}
	}
}
