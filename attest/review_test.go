package attest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"testing"
)

// Regression (review finding 8): ParsePublicKey used to take takes any key x509 parses, however weak:
// an RSA key of 1024 bits (or 512), an ECDSA key on P-224. A policy file
// or a --key with such a key makes a build node's vote forgeable by anyone
// who can factor it. cosign generates P-256; refuse RSA under 2048 bits and
// curves other than P-256/P-384/P-521 (sigstore's cryptoutils.ValidatePubKey).
func TestParsePublicKeyRefusesWeakKeys(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for name, pub := range map[string]any{"RSA-1024": &rsaKey.PublicKey, "P-224": &ecKey.PublicKey} {
		der, err := x509.MarshalPKIXPublicKey(pub)
		if err != nil {
			t.Fatal(err)
		}
		p := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
		if _, err := ParsePublicKey(name, p); err == nil {
			t.Errorf("%s: ParsePublicKey accepted it", name)
		}
	}
}
