package attest

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"

	"github.com/sigstore/cosign/v2/pkg/cosign"
	"github.com/sigstore/sigstore/pkg/cryptoutils"
	"github.com/sigstore/sigstore/pkg/signature"
)

// ErrWrongPassword is returned by [LoadSigner] when the password does not
// decrypt the private key. Use errors.Is.
var ErrWrongPassword = errors.New("attest: wrong password for private key (or the key file is damaged)")

// KeyPair is a freshly generated key pair in cosign's file formats.
type KeyPair struct {
	// Private is an encrypted PEM block of type "ENCRYPTED SIGSTORE PRIVATE KEY"
	// (scrypt + secretbox), exactly as `cosign generate-key-pair` writes it.
	Private []byte
	// Public is a PEM "PUBLIC KEY" block (PKIX).
	Public []byte
}

// GenerateKeyPair makes an ECDSA P-256 key pair with cosign's own key
// functions, encrypting the private key with password.
func GenerateKeyPair(password []byte) (*KeyPair, error) {
	kb, err := cosign.GenerateKeyPair(func(bool) ([]byte, error) { return password, nil })
	if err != nil {
		return nil, fmt.Errorf("attest: generating key pair: %w", err)
	}
	return &KeyPair{Private: kb.PrivateBytes, Public: kb.PublicBytes}, nil
}

// Signer signs DSSE envelopes with a cosign private key.
type Signer struct {
	sv  signature.SignerVerifier
	pub crypto.PublicKey
	id  string
}

// LoadSigner decrypts a cosign private key (ENCRYPTED SIGSTORE PRIVATE KEY
// or ENCRYPTED COSIGN PRIVATE KEY) with password.
func LoadSigner(keyPEM, password []byte) (*Signer, error) {
	block, _ := pem.Decode(keyPEM)
	if block == nil {
		return nil, errors.New("attest: private key: no PEM block found (is this a cosign.key file?)")
	}
	if block.Type != cosign.SigstorePrivateKeyPemType && block.Type != cosign.CosignPrivateKeyPemType {
		return nil, fmt.Errorf("attest: private key: PEM type %q is not an encrypted cosign private key", block.Type)
	}
	sv, err := cosign.LoadPrivateKey(keyPEM, password, nil)
	if err != nil {
		// go-securesystemslib's encrypted package has no sentinel for this.
		if strings.Contains(err.Error(), "decryption failed") {
			return nil, ErrWrongPassword
		}
		return nil, fmt.Errorf("attest: private key: %w", err)
	}
	pub, err := sv.PublicKey()
	if err != nil {
		return nil, fmt.Errorf("attest: private key: deriving public key: %w", err)
	}
	id, err := KeyID(pub)
	if err != nil {
		return nil, err
	}
	return &Signer{sv: sv, pub: pub, id: id}, nil
}

// KeyID returns the key's identifier: hex SHA-256 of its PKIX DER encoding.
func (s *Signer) KeyID() string { return s.id }

// KeyHint returns the key hint cosign writes into a bundle's verification
// material: standard base64 of the SHA-256 of the key's PKIX DER encoding.
func (s *Signer) KeyHint() string {
	raw, _ := hex.DecodeString(s.id)
	return base64.StdEncoding.EncodeToString(raw)
}

// Public returns the signer's public key.
func (s *Signer) Public() crypto.PublicKey { return s.pub }

// PublicKey is a verification key with a human name (usually the file it
// came from, or the build node it belongs to).
type PublicKey struct {
	Name string
	ID   string
	key  crypto.PublicKey
	v    signature.Verifier
}

// MaxPublicKeySize bounds a public key file: a PEM RSA-4096 key is under
// 1 KiB.
const MaxPublicKeySize = 16 << 10

// ParsePublicKey reads a PEM "PUBLIC KEY" (as cosign writes) and names it.
// The input must be exactly one PEM block, with nothing but white space
// around it: a key followed by something else is not a key file.
func ParsePublicKey(name string, pemBytes []byte) (*PublicKey, error) {
	if len(pemBytes) > MaxPublicKeySize {
		return nil, fmt.Errorf("attest: public key: %d bytes is over the %d byte limit (not a public key file?)", len(pemBytes), MaxPublicKeySize)
	}
	i := bytes.Index(pemBytes, []byte("-----BEGIN"))
	if i < 0 {
		return nil, errors.New("attest: public key: no PEM block found (expected a cosign.pub file)")
	}
	if len(bytes.TrimSpace(pemBytes[:i])) > 0 {
		return nil, errors.New("attest: public key: text before the PEM block (expected a cosign.pub file, one PEM block and nothing else)")
	}
	block, rest := pem.Decode(pemBytes[i:])
	if block == nil {
		return nil, errors.New("attest: public key: the PEM block is damaged or truncated (no matching END line, or bad base64)")
	}
	if rest = bytes.TrimSpace(rest); len(rest) > 0 {
		if next, _ := pem.Decode(rest); next != nil {
			return nil, errors.New("attest: public key: two PEM blocks (a key file holds one key: give each key in a file of its own)")
		}
		return nil, errors.New("attest: public key: data after the PEM block (expected a cosign.pub file, one PEM block and nothing else)")
	}
	if block.Type != string(cryptoutils.PublicKeyPEMType) {
		return nil, fmt.Errorf("attest: public key: PEM type %q, want %q", block.Type, cryptoutils.PublicKeyPEMType)
	}
	if len(block.Headers) > 0 {
		return nil, errors.New("attest: public key: the PEM block has headers; a cosign public key has none")
	}
	key, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		if compressedEC(block.Bytes) {
			return nil, errors.New("attest: public key: an elliptic-curve key with a compressed point, which cosign and pyrsia-build do not read: " +
				"write it uncompressed (openssl ec -pubin -in KEY -conv_form uncompressed -out KEY.pub)")
		}
		// The asn1 error names a tag and offset, which helps nobody here.
		return nil, errors.New("attest: public key: the PEM block does not hold a PKIX public key (damaged or truncated file?)")
	}
	return NewPublicKey(name, key)
}

// ReadPublicKeyFile reads a public key file: a regular file of at most
// [MaxPublicKeySize] bytes, named by its path.
func ReadPublicKeyFile(path string) (*PublicKey, error) {
	b, err := ReadFileLimited(path, MaxPublicKeySize)
	if err != nil {
		return nil, fmt.Errorf("attest: public key: %w", err)
	}
	k, err := ParsePublicKey(path, b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return k, nil
}

// compressedEC reports whether der is a well-formed PKIX elliptic-curve
// public key whose point is in compressed form (0x02 or 0x03 and X only),
// which crypto/x509 does not read.
func compressedEC(der []byte) bool {
	var spki struct {
		Algorithm struct {
			Algorithm  asn1.ObjectIdentifier
			Parameters asn1.RawValue `asn1:"optional"`
		}
		PublicKey asn1.BitString
	}
	rest, err := asn1.Unmarshal(der, &spki)
	if err != nil || len(rest) > 0 || !spki.Algorithm.Algorithm.Equal(asn1.ObjectIdentifier{1, 2, 840, 10045, 2, 1}) {
		return false
	}
	var curve asn1.ObjectIdentifier
	if _, err := asn1.Unmarshal(spki.Algorithm.Parameters.FullBytes, &curve); err != nil {
		return false
	}
	size := map[string]int{"1.2.840.10045.3.1.7": 32, "1.3.132.0.34": 48, "1.3.132.0.35": 66}[curve.String()]
	pt := spki.PublicKey.RightAlign()
	return size > 0 && len(pt) == 1+size && (pt[0] == 2 || pt[0] == 3)
}

// NewPublicKey wraps a crypto public key for verification.
func NewPublicKey(name string, key crypto.PublicKey) (*PublicKey, error) {
	if err := checkStrength(key); err != nil {
		return nil, err
	}
	// SHA-256 for every key type, as cosign does by default; ed25519 keys are
	// verified as pure ed25519.
	v, err := signature.LoadVerifier(key, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("attest: public key: %w", err)
	}
	id, err := KeyID(key)
	if err != nil {
		return nil, err
	}
	return &PublicKey{Name: name, ID: id, key: key, v: v}, nil
}

// MinRSABits is the smallest RSA modulus [NewPublicKey] accepts.
const MinRSABits = 2048

// checkStrength refuses keys too weak to stand for a build node or a
// requester: RSA under [MinRSABits] bits and elliptic curves other than
// P-256, P-384 and P-521 (the rule of sigstore's cryptoutils.ValidatePubKey).
func checkStrength(key crypto.PublicKey) error {
	switch k := key.(type) {
	case *rsa.PublicKey:
		if k.N == nil || k.N.BitLen() < MinRSABits {
			bits := 0
			if k.N != nil {
				bits = k.N.BitLen()
			}
			return fmt.Errorf("attest: public key: an RSA key of %d bits is too weak, want at least %d (cosign generate-key-pair makes a P-256 key)", bits, MinRSABits)
		}
	case *ecdsa.PublicKey:
		if k.Curve == nil {
			return errors.New("attest: public key: an ECDSA key without a curve")
		}
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return fmt.Errorf("attest: public key: ECDSA curve %s is not accepted, want P-256, P-384 or P-521 (cosign generate-key-pair makes a P-256 key)", k.Curve.Params().Name)
		}
	}
	return nil
}

// Key returns the underlying crypto public key.
func (p *PublicKey) Key() crypto.PublicKey { return p.key }

// KeyID returns hex SHA-256 of the key's PKIX DER encoding.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("attest: encoding public key: %w", err)
	}
	sum := sha256.Sum256(der)
	return hex.EncodeToString(sum[:]), nil
}
