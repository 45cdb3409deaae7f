package attest_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"testing"

	"github.com/pyrsia/pyrsia-build/attest"
)

func TestGenerateKeyPairLoadSigner(t *testing.T) {
	k := keyA(t)

	priv, _ := pem.Decode(k.Pair.Private)
	if priv == nil {
		t.Fatalf("private key: got no PEM block, want one:\n%s", k.Pair.Private)
	}
	if got, want := priv.Type, "ENCRYPTED SIGSTORE PRIVATE KEY"; got != want {
		t.Errorf("private key PEM type: got %q, want %q", got, want)
	}
	pub, _ := pem.Decode(k.Pair.Public)
	if pub == nil {
		t.Fatalf("public key: got no PEM block, want one:\n%s", k.Pair.Public)
	}
	if got, want := pub.Type, "PUBLIC KEY"; got != want {
		t.Errorf("public key PEM type: got %q, want %q", got, want)
	}

	der, err := x509.MarshalPKIXPublicKey(k.Signer.Public())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(der, pub.Bytes) {
		t.Errorf("signer's public key differs from the generated public key")
	}
	if _, ok := k.Signer.Public().(*ecdsa.PublicKey); !ok {
		t.Errorf("public key: got %T, want *ecdsa.PublicKey", k.Signer.Public())
	}
	sum := sha256.Sum256(der)
	if got, want := k.Signer.KeyID(), hex.EncodeToString(sum[:]); got != want {
		t.Errorf("Signer.KeyID: got %s, want %s", got, want)
	}
	if got, want := k.Pub.ID, k.Signer.KeyID(); got != want {
		t.Errorf("PublicKey.ID: got %s, want the signer's %s", got, want)
	}
	if got, want := k.Signer.KeyHint(), base64.StdEncoding.EncodeToString(sum[:]); got != want {
		t.Errorf("Signer.KeyHint: got %s, want %s", got, want)
	}
}

func TestLoadSignerWrongPassword(t *testing.T) {
	k := keyA(t)
	tests := []struct {
		name     string
		password []byte
	}{
		{"other password", []byte("tset")},
		{"empty password", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := attest.LoadSigner(k.Pair.Private, tt.password)
			if !errors.Is(err, attest.ErrWrongPassword) {
				t.Fatalf("got %v, want ErrWrongPassword", err)
			}
			if s != nil {
				t.Errorf("got a signer with the error, want nil")
			}
		})
	}
}

// cosign before v2 wrote "ENCRYPTED COSIGN PRIVATE KEY"; the format inside
// is the same.
func TestLoadSignerLegacyPEMType(t *testing.T) {
	k := keyA(t)
	legacy := bytes.ReplaceAll(k.Pair.Private, []byte("ENCRYPTED SIGSTORE PRIVATE KEY"), []byte("ENCRYPTED COSIGN PRIVATE KEY"))
	s, err := attest.LoadSigner(legacy, testPassword)
	if err != nil {
		t.Fatalf("LoadSigner: %v", err)
	}
	if got, want := s.KeyID(), k.Signer.KeyID(); got != want {
		t.Errorf("KeyID: got %s, want %s", got, want)
	}
}

func TestLoadSignerBadInput(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalECPrivateKey(ec)
	if err != nil {
		t.Fatal(err)
	}
	ecPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecDER})
	damaged := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED SIGSTORE PRIVATE KEY", Bytes: []byte("not the JSON cosign writes")})

	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "attest: private key: no PEM block found"},
		{"garbage", []byte("this is not a key\n"), "attest: private key: no PEM block found"},
		{"public key", readTestdata(t, "cosign.pub"), `attest: private key: PEM type "PUBLIC KEY" is not an encrypted cosign private key`},
		{"unencrypted EC private key", ecPEM, `attest: private key: PEM type "EC PRIVATE KEY" is not an encrypted cosign private key`},
		{"damaged encrypted key", damaged, "attest: private key: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := attest.LoadSigner(tt.in, testPassword)
			wantErrContains(t, err, tt.want)
			if errors.Is(err, attest.ErrWrongPassword) {
				t.Errorf("got ErrWrongPassword for input that is not an encrypted key")
			}
			if s != nil {
				t.Errorf("got a signer with the error, want nil")
			}
		})
	}
}

func TestParsePublicKey(t *testing.T) {
	cosignPub := readTestdata(t, "cosign.pub")
	block, _ := pem.Decode(cosignPub)
	if block == nil {
		t.Fatal("testdata/cosign.pub: no PEM block")
	}
	truncatedDER := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: block.Bytes[:len(block.Bytes)-10]})
	priv := pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED SIGSTORE PRIVATE KEY", Bytes: []byte("{}")})

	t.Run("cosign.pub", func(t *testing.T) {
		k, err := attest.ParsePublicKey("node-a", cosignPub)
		if err != nil {
			t.Fatal(err)
		}
		if k.Name != "node-a" {
			t.Errorf("Name: got %q, want %q", k.Name, "node-a")
		}
		sum := sha256.Sum256(block.Bytes)
		if got, want := k.ID, hex.EncodeToString(sum[:]); got != want {
			t.Errorf("ID: got %s, want %s", got, want)
		}
		if _, ok := k.Key().(*ecdsa.PublicKey); !ok {
			t.Errorf("Key: got %T, want *ecdsa.PublicKey", k.Key())
		}
	})

	tests := []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "attest: public key: no PEM block found"},
		{"garbage", []byte("\x00\x01garbage"), "attest: public key: no PEM block found"},
		{"truncated PEM", cosignPub[:len(cosignPub)/2], "attest: public key: the PEM block is damaged or truncated"},
		{"garbage after the PEM block", append(slicesClone(cosignPub), "garbage\n"...), "attest: public key: data after the PEM block"},
		{"two PEM blocks", append(slicesClone(cosignPub), cosignPub...), "attest: public key: two PEM blocks"},
		{"text before the PEM block", append([]byte("key:\n"), cosignPub...), "attest: public key: text before the PEM block"},
		{"compressed P-256 point", compressedP256(t), "an elliptic-curve key with a compressed point, which cosign and pyrsia-build do not read: write it uncompressed"},
		{"truncated key inside PEM", truncatedDER, "attest: public key: the PEM block does not hold a PKIX public key"},
		{"private key", priv, `attest: public key: PEM type "ENCRYPTED SIGSTORE PRIVATE KEY", want "PUBLIC KEY"`},
		{"certificate", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: block.Bytes}), `PEM type "CERTIFICATE", want "PUBLIC KEY"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := attest.ParsePublicKey("k", tt.in)
			wantErrContains(t, err, tt.want)
			if k != nil {
				t.Errorf("got a key with the error, want nil")
			}
		})
	}
}

func TestNewPublicKey(t *testing.T) {
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		key     any
		wantErr string
	}{
		{"ed25519", edPub, ""},
		{"ecdsa p-384", &ec.PublicKey, ""},
		{"not a key", "a string", "attest: public key: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := attest.NewPublicKey("k", tt.key)
			if tt.wantErr != "" {
				wantErrContains(t, err, tt.wantErr)
				return
			}
			if err != nil {
				t.Fatalf("got %v, want no error", err)
			}
			id, err := attest.KeyID(tt.key)
			if err != nil {
				t.Fatal(err)
			}
			if k.ID != id {
				t.Errorf("ID: got %s, want KeyID's %s", k.ID, id)
			}
		})
	}
}

func slicesClone(b []byte) []byte { return append([]byte(nil), b...) }

// compressedP256 returns a valid P-256 public key in PEM whose point is
// compressed (what openssl ec -conv_form compressed writes).
func compressedP256(t *testing.T) []byte {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	var spki struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(der, &spki); err != nil {
		t.Fatal(err)
	}
	pt := spki.PublicKey.RightAlign()
	x, y := new(big.Int).SetBytes(pt[1:33]), new(big.Int).SetBytes(pt[33:])
	c := make([]byte, 33)
	c[0] = 2 | byte(y.Bit(0))
	x.FillBytes(c[1:])
	spki.PublicKey = asn1.BitString{Bytes: c, BitLength: 8 * len(c)}
	der, err = asn1.Marshal(spki)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}
