package attest_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"os"
	"path/filepath"
	"strings"

	intoto "github.com/in-toto/attestation/go/v1"

	"github.com/pyrsia/pyrsia-build/attest"
)

// Sign a file's provenance with a new cosign key, then check the bundle the
// way a node that downloads the file does.
func ExampleAttest() {
	ctx := context.Background()

	// A key pair, as `pyrsia-build keygen` (or `cosign generate-key-pair`) makes it.
	password := []byte("correct horse")
	pair, err := attest.GenerateKeyPair(password)
	if err != nil {
		log.Fatal(err)
	}
	signer, err := attest.LoadSigner(pair.Private, password)
	if err != nil {
		log.Fatal(err)
	}

	// The build output.
	dir, err := os.MkdirTemp("", "attest-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "hello-1.0.tar.gz")
	if err := os.WriteFile(path, []byte("hello\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	subject, err := attest.FileSubject(ctx, path)
	if err != nil {
		log.Fatal(err)
	}

	// Its provenance, signed.
	provenance, err := attest.NewProvenance(attest.ProvenanceOptions{
		BuildType:          "https://pyrsia.io/build/example/v1",
		ExternalParameters: map[string]any{"package": "hello", "version": "1.0"},
		BuilderID:          "https://pyrsia.io/node/a",
	})
	if err != nil {
		log.Fatal(err)
	}
	bundle, err := attest.Attest(signer, []*intoto.ResourceDescriptor{subject}, attest.PredicateSLSAProvenanceV1, provenance)
	if err != nil {
		log.Fatal(err)
	}
	bundleJSON, err := bundle.MarshalJSON() // written next to the file as hello-1.0.tar.gz.sigstore.json
	if err != nil {
		log.Fatal(err)
	}

	// Elsewhere: the bundle and the public key are all a verifier needs.
	pub, err := attest.ParsePublicKey("node-a", pair.Public)
	if err != nil {
		log.Fatal(err)
	}
	parsed, err := attest.ParseBundle(bundleJSON)
	if err != nil {
		log.Fatal(err)
	}
	v, err := attest.NewVerifier(attest.VerifierOptions{Keys: []*attest.PublicKey{pub}, PredicateType: attest.PredicateSLSAProvenanceV1})
	if err != nil {
		log.Fatal(err)
	}
	ev, err := v.Verify(ctx, attest.FileArtifact(path), parsed)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("verified", ev.Subject.GetName(), ev.DigestHex())
	fmt.Println("signed by", ev.Signers[0].Name)

	// A changed file no longer matches.
	if err := os.WriteFile(path, []byte("hello, world\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	_, err = v.Verify(ctx, attest.FileArtifact(path), parsed)
	var ve *attest.VerificationError
	if errors.As(err, &ve) {
		fmt.Println("changed file rejected by step", ve.Step)
	}
	// Output:
	// verified hello-1.0.tar.gz sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03
	// signed by node-a
	// changed file rejected by step subject
}

// Verify a bundle written by `cosign attest-blob --new-bundle-format --key`.
func ExampleVerifier_Verify() {
	pubPEM, err := os.ReadFile("testdata/cosign.pub")
	if err != nil {
		log.Fatal(err)
	}
	key, err := attest.ParsePublicKey("cosign.pub", pubPEM)
	if err != nil {
		log.Fatal(err)
	}
	bundleJSON, err := os.ReadFile("testdata/cosign-attest-blob.sigstore.json")
	if err != nil {
		log.Fatal(err)
	}
	bundle, err := attest.ParseBundle(bundleJSON)
	if err != nil {
		log.Fatal(err)
	}
	v, err := attest.NewVerifier(attest.VerifierOptions{Keys: []*attest.PublicKey{key}, PredicateType: attest.PredicateSLSAProvenanceV1})
	if err != nil {
		log.Fatal(err)
	}

	ev, err := v.Verify(context.Background(), attest.FileArtifact("testdata/a.txt"), bundle)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s: %d bytes, %s\n", ev.Subject.GetName(), ev.Size, ev.DigestHex())
	fmt.Println("statement:", ev.Statement.GetType())
	fmt.Println("signed by:", ev.Signers[0].Name)

	// The same bundle does not vouch for other bytes. A step's rejection
	// is an ErrNotVerified; an unreadable file is not.
	other := attest.Artifact{Name: "b.txt", Open: func() (io.ReadCloser, error) {
		return io.NopCloser(strings.NewReader("goodbye\n")), nil
	}}
	_, err = v.Verify(context.Background(), other, bundle)
	fmt.Println(errors.Is(err, attest.ErrNotVerified), err)
	_, err = v.Verify(context.Background(), attest.FileArtifact("testdata/missing.txt"), bundle)
	fmt.Println(errors.Is(err, attest.ErrNotVerified), errors.Is(err, fs.ErrNotExist))
	// Output:
	// a.txt: 6 bytes, sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03
	// statement: https://in-toto.io/Statement/v0.1
	// signed by: cosign.pub
	// true subject: artifact digest sha256:71573b922a87abc3fd1a957f2cfa09d9e16998567dd878a85e12166112751806 differs from the attested subject "a.txt" (sha256:5891b5b522d5df08…)
	// false true
}

func ExamplePAE() {
	fmt.Printf("%s\n", attest.PAE("http://example.com/HelloWorld", []byte("hello world")))
	// Output: DSSEv1 29 http://example.com/HelloWorld 11 hello world
}

func ExampleParseStatement() {
	st, err := attest.ParseStatement([]byte(`{
		"_type": "https://in-toto.io/Statement/v1",
		"subject": [{"name": "a.txt", "digest": {"sha256": "5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"}}],
		"predicateType": "https://slsa.dev/provenance/v1",
		"predicate": {"buildDefinition": {"buildType": "https://pyrsia.io/build/example/v1"}}
	}`))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.GetSubject()[0].GetName(), st.GetPredicateType())

	_, err = attest.ParseStatement([]byte(`{"_type": "https://in-toto.io/Statement/v1", "predicateType": "p", "predicate": {}}`))
	fmt.Println(err)
	// Output:
	// a.txt https://slsa.dev/provenance/v1
	// attest: statement: at least one subject required
}
