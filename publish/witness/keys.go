package witness

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"unicode"

	"github.com/pyrsia/pyrsia-build/attest"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
)

// algEd25519 is the note key algorithm byte of an Ed25519 key.
const algEd25519 = 0x01

// GenerateKey makes an Ed25519 note key pair for name. The signer key skey is
// private; the verifier key vkey is public. Both are single lines of text.
//
// The same pair signs checkpoints as a log ([NewLogSigner], [NewLogVerifier])
// and cosigns them as a build node ([NewCosignatureSigner],
// [NewCosignatureVerifier]).
func GenerateKey(name string) (skey, vkey string, err error) {
	if !validName(name) {
		return "", "", fmt.Errorf("witness: invalid key name %q: it must be non-empty, with no spaces and no '+'", name)
	}
	skey, vkey, err = note.GenerateKey(rand.Reader, name)
	if err != nil {
		return "", "", fmt.Errorf("witness: generating key: %w", err)
	}
	return skey, vkey, nil
}

// NewLogSigner returns the plain Ed25519 note signer for skey, used by the
// log to sign checkpoints.
func NewLogSigner(skey string) (note.Signer, error) {
	if err := checkKey(skey, true); err != nil {
		return nil, fmt.Errorf("witness: signer key: %w", err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, fmt.Errorf("witness: signer key: %w", err)
	}
	return s, nil
}

// NewLogVerifier returns the plain Ed25519 note verifier for vkey, used to
// check the log's checkpoint signature.
func NewLogVerifier(vkey string) (note.Verifier, error) {
	if err := checkKey(vkey, false); err != nil {
		return nil, fmt.Errorf("witness: verifier key: %w", err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("witness: verifier key: %w", err)
	}
	return keyedVerifier{v, publicKey(vkey)}, nil
}

// NewCosignatureSigner returns the tlog-cosignature/v1 signer for skey, used
// by a [Cosigner].
func NewCosignatureSigner(skey string) (note.Signer, error) {
	if _, err := NewLogSigner(skey); err != nil {
		return nil, err
	}
	s, err := fnote.NewSignerForCosignatureV1(skey)
	if err != nil {
		return nil, fmt.Errorf("witness: signer key: %w", err)
	}
	return s, nil
}

// NewCosignatureVerifier returns the tlog-cosignature/v1 verifier for vkey,
// used by [VerifyFinal]. Its key hash differs from the [NewLogVerifier] one.
func NewCosignatureVerifier(vkey string) (note.Verifier, error) {
	if _, err := NewLogVerifier(vkey); err != nil {
		return nil, err
	}
	v, err := fnote.NewVerifierForCosignatureV1(vkey)
	if err != nil {
		return nil, fmt.Errorf("witness: verifier key: %w", err)
	}
	return keyedVerifier{v, publicKey(vkey)}, nil
}

// keyedVerifier is a note verifier that knows its public key, so that one
// key listed under two names can be told apart from two keys: a
// cosignature/v1 signature does not cover the key's name, and anyone can
// relabel it with another name (and the key hash that name gives).
type keyedVerifier struct {
	note.Verifier
	pub string // the algorithm byte and key, in canonical base64 (see publicKey)
}

// publicKey returns the key part of a well-formed verifier key
// "<name>+<hash>+<base64 key>", in canonical base64 of its decoded bytes.
// The name holds no '+' and the hash is 8 hex digits, so the key is what
// follows the second '+', whatever '+' characters its base64 holds. A key
// is identified by its bytes, never by its text: Go's base64 decoder skips
// '\r' and '\n', so two texts can be one key (checkKey also refuses such
// text).
func publicKey(vkey string) string {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return ""
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) == 0 {
		return ""
	}
	return base64.StdEncoding.EncodeToString(raw)
}

// PublicKey returns the identity of the public key behind v: its algorithm
// and key bytes (in canonical base64), for the verifiers of [NewLogVerifier] and
// [NewCosignatureVerifier]; for any other verifier, its name and key hash,
// which tell keys apart only as far as their names do. Two verifiers with
// the same PublicKey must be counted once.
func PublicKey(v note.Verifier) string {
	if k, ok := v.(keyedVerifier); ok && k.pub != "" {
		return "key:" + k.pub
	}
	return fmt.Sprintf("name:%s+%08x", v.Name(), v.KeyHash())
}

// Distinct returns vs without the verifiers whose public key (see
// [PublicKey]) came earlier in vs: the one place where verifiers are
// de-duplicated by key. It also returns, for each verifier kept, the names
// of the later ones dropped as its duplicates.
func Distinct(vs []note.Verifier) (kept []note.Verifier, dups map[string][]string) {
	first := make(map[string]note.Verifier)
	for _, v := range vs {
		id := PublicKey(v)
		if k, ok := first[id]; ok {
			if dups == nil {
				dups = make(map[string][]string)
			}
			dups[k.Name()] = append(dups[k.Name()], v.Name())
			continue
		}
		first[id] = v
		kept = append(kept, v)
	}
	return kept, dups
}

// ReadSignerKeyFile reads a private signer key, written as one line of text,
// from path and checks that it is an Ed25519 note signer key.
func ReadSignerKeyFile(path string) (skey string, err error) {
	return readKeyFile(path, true)
}

// ReadVerifierKeyFile reads a public verifier key, written as one line of
// text, from path and checks that it is an Ed25519 note verifier key.
func ReadVerifierKeyFile(path string) (vkey string, err error) {
	return readKeyFile(path, false)
}

// MaxKeyFileSize bounds a note key file: a key is one line of about 100
// bytes.
const MaxKeyFileSize = 4 << 10

func readKeyFile(path string, private bool) (string, error) {
	b, err := attest.ReadFileLimited(path, MaxKeyFileSize)
	if err != nil {
		return "", fmt.Errorf("witness: reading key: %w", err)
	}
	key := strings.TrimSpace(string(b))
	if strings.ContainsAny(key, "\r\n") {
		return "", fmt.Errorf("witness: %s: want one key on one line, found several lines", path)
	}
	if err := checkKey(key, private); err != nil {
		return "", fmt.Errorf("witness: %s: %w", path, err)
	}
	if private {
		_, err = note.NewSigner(key)
	} else {
		_, err = note.NewVerifier(key)
	}
	if err != nil {
		return "", fmt.Errorf("witness: %s: invalid key: %w", path, err)
	}
	return key, nil
}

// checkKey checks the shape of a note key, to give a precise error: a
// private key where a public one is expected, or the other way round, or
// another algorithm than Ed25519.
func checkKey(key string, private bool) error {
	const privPrefix = "PRIVATE+KEY+"
	rest, isPriv := strings.CutPrefix(key, privPrefix)
	name, rest, _ := strings.Cut(rest, "+")
	hash, key64, _ := strings.Cut(rest, "+")
	raw, err := base64.StdEncoding.DecodeString(key64)
	wellFormed := validName(name) && len(hash) == 8 && err == nil && len(raw) > 0
	switch {
	case key == "":
		return errors.New("empty key")
	case strings.ContainsFunc(key, unicode.IsSpace):
		return errors.New("the key contains white space (a line break inside it?): write the key on one line, as GenerateKey made it")
	case wellFormed && base64.StdEncoding.EncodeToString(raw) != key64:
		return errors.New("the key's base64 is not canonical (standard base64 with padding, as GenerateKey wrote it): copy the key again")
	case private && !isPriv && wellFormed:
		return errors.New("this is a verifier (public) key, want a signer (private) key starting PRIVATE+KEY+")
	case private && !wellFormed, private && !isPriv:
		return errors.New("not a note signer key: want PRIVATE+KEY+<name>+<hash>+<base64 key>")
	case !private && isPriv:
		return errors.New("this is a signer (private) key, want a verifier (public) key: give the public key, never share the private one")
	case !private && !wellFormed:
		return errors.New("not a note verifier key: want <name>+<hash>+<base64 key>")
	case raw[0] != algEd25519:
		return fmt.Errorf("key %q has algorithm 0x%02x, want Ed25519 (0x01) as made by GenerateKey", name, raw[0])
	}
	return nil
}

// validName reports whether name is a valid note key name.
func validName(name string) bool {
	return name != "" && !strings.ContainsFunc(name, unicode.IsSpace) && !strings.Contains(name, "+")
}

// VerifierKey returns the verifier key (the public half) of an Ed25519
// note signer key, as GenerateKey would have returned it.
func VerifierKey(skey string) (string, error) {
	// PRIVATE+KEY+<name>+<hash>+<base64(0x01 || seed)>
	parts := strings.SplitN(skey, "+", 5)
	if len(parts) != 5 || parts[0] != "PRIVATE" || parts[1] != "KEY" {
		return "", errors.New("witness: not a note signer key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(raw) != 1+ed25519.SeedSize || raw[0] != 1 {
		return "", errors.New("witness: not an Ed25519 note signer key")
	}
	pub := ed25519.NewKeyFromSeed(raw[1:]).Public().(ed25519.PublicKey)
	vkey, err := note.NewEd25519VerifierKey(parts[2], pub)
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(vkey, parts[2]+"+"+parts[3]+"+") {
		return "", errors.New("witness: the key hash does not match the key")
	}
	return vkey, nil
}
