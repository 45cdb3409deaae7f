package witness_test

import (
	"context"
	"fmt"
	"os"

	"github.com/pyrsia/pyrsia-build/publish/witness"
	"github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

func Example() {
	const origin = "pyrsia-build.example/log"

	// The log signs a checkpoint of its tree: here one entry.
	logSkey, logVkey, _ := witness.GenerateKey("log")
	logSigner, _ := witness.NewLogSigner(logSkey)
	logVerifier, _ := witness.NewLogVerifier(logVkey)
	root := rfc6962.DefaultHasher.HashLeaf([]byte("first entry"))
	signed, err := witness.SignCheckpoint(logSigner, log.Checkpoint{Origin: origin, Size: 1, Hash: root})
	if err != nil {
		panic(err)
	}

	// Three build nodes; two of them cosign.
	var verifiers []note.Verifier
	var sigs []note.Signature
	for i, name := range []string{"node-a", "node-b", "node-c"} {
		skey, vkey, _ := witness.GenerateKey(name)
		v, _ := witness.NewCosignatureVerifier(vkey)
		verifiers = append(verifiers, v)
		if i == 2 {
			continue
		}
		s, _ := witness.NewCosignatureSigner(skey)
		dir, _ := os.MkdirTemp("", "witness-example")
		defer os.RemoveAll(dir)
		c, err := witness.NewCosigner(witness.CosignerOptions{Signer: s, Origin: origin, LogVerifier: logVerifier, StateDir: dir})
		if err != nil {
			panic(err)
		}
		// The first checkpoint is trusted on first use: no proof needed.
		sig, err := c.Cosign(context.Background(), signed, nil)
		if err != nil {
			panic(err)
		}
		sigs = append(sigs, sig)
	}

	final, err := witness.AddSignatures(signed, sigs[0])
	if err != nil {
		panic(err)
	}
	_, _, err = witness.VerifyFinal(final, origin, []note.Verifier{logVerifier}, verifiers, witness.Threshold(len(verifiers)))
	fmt.Println(err)

	final, err = witness.AddSignatures(final, sigs[1])
	if err != nil {
		panic(err)
	}
	cp, names, err := witness.VerifyFinal(final, origin, []note.Verifier{logVerifier}, verifiers, witness.Threshold(len(verifiers)))
	if err != nil {
		panic(err)
	}
	fmt.Printf("size %d is final, cosigned by %v\n", cp.Size, names)
	// Output:
	// witness: checkpoint of "pyrsia-build.example/log" at size 1 is not final: cosigned by 1 of 3 cosigners, need 2; missing node-b, node-c
	// size 1 is final, cosigned by [node-a node-b]
}
