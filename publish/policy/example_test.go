package policy_test

import (
	"fmt"
	"os"

	"github.com/pyrsia/pyrsia-build/publish/policy"
)

func Example() {
	b, err := os.ReadFile("testdata/valid-three-nodes.yaml")
	if err != nil {
		fmt.Println(err)
		return
	}
	p, err := policy.Parse(b)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("network:", p.Name)
	for _, n := range p.Nodes {
		fmt.Println("build node:", n.Name)
	}
	fmt.Printf("publish needs %d of %d\n", p.Threshold(), len(p.Nodes))

	// Compile the keys once; give the Trust to publish.VerifyProof,
	// publish.VerifyEntry or witness checks.
	trust, err := p.Trust()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("log origin:", trust.Origin, "cosigners:", len(trust.Cosigners), "final at:", trust.CosignThreshold)
	// Output:
	// network: example.org/pyrsia-net
	// build node: node-a
	// build node: node-b
	// build node: node-c
	// publish needs 2 of 3
	// log origin: example.org/pyrsia-net cosigners: 3 final at: 2
}

func ExampleParse_error() {
	_, err := policy.Parse([]byte(`{"version":1,"name":"example.org/net","nodes":[{"name":"Node A"}]}`))
	fmt.Println(err)
	// Output:
	// policy: nodes[0].name: "Node A" is not [a-z0-9][a-z0-9.-]*
}
