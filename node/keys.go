package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	"golang.org/x/mod/sumdb/note"
)

// Key files in DATA/keys.
const (
	cosignKeyFile = "cosign.key" // ECDSA P-256, cosign's encrypted format: signs votes
	cosignPubFile = "cosign.pub"
	noteKeyFile   = "note.key" // note signer key: signs and cosigns checkpoints
	notePubFile   = "note.pub"
	p2pKeyFile    = "p2p.key" // libp2p Ed25519 identity (protobuf encoding)
	maxKeyFile    = 64 << 10
)

// Keys are a build node's keys, loaded from DATA/keys.
type Keys struct {
	Name string
	// Cosign signs the node's attestations (its votes); CosignPub is its
	// public key, PEM.
	Cosign    *attest.Signer
	CosignPub []byte
	// LogSigner signs checkpoints as a log; Cosigner cosigns them
	// (cosignature/v1). Both come from one note key, NoteKey its verifier
	// key.
	LogSigner note.Signer
	Cosigner  note.Signer
	NoteKey   string
	// P2P is the libp2p identity, PeerID its id.
	P2P    crypto.PrivKey
	PeerID peer.ID
}

// PolicyNode is the node's entry in a network policy, as JSON: what
// `pyrsia-build network add-node` takes.
type PolicyNode struct {
	Name      string `json:"name"`
	CosignKey string `json:"cosignKey"`
	PeerID    string `json:"peerId"`
	NoteKey   string `json:"noteKey"`
}

// PolicyNode returns the node's entry for the network policy.
func (k *Keys) PolicyNode() PolicyNode {
	return PolicyNode{Name: k.Name, CosignKey: string(k.CosignPub), PeerID: k.PeerID.String(), NoteKey: k.NoteKey}
}

// InitKeys makes the keys of a new build node named name in dir/keys; the
// cosign key is encrypted with password (which may be empty). It refuses
// to overwrite keys that exist.
func InitKeys(dir, name string, password []byte) (*Keys, error) {
	kd := filepath.Join(dir, "keys")
	for _, f := range []string{cosignKeyFile, noteKeyFile, p2pKeyFile} {
		if _, err := os.Lstat(filepath.Join(kd, f)); err == nil {
			return nil, fmt.Errorf("node: %s already exists: this data folder has a node's keys (use another --data, or remove the keys to make a new node, which then needs a new policy entry)", filepath.Join(kd, f))
		}
	}
	if err := os.MkdirAll(kd, 0o700); err != nil {
		return nil, fmt.Errorf("node: making %s: %w", kd, err)
	}
	kp, err := attest.GenerateKeyPair(password)
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	skey, vkey, err := witness.GenerateKey(name)
	if err != nil {
		return nil, fmt.Errorf("node: note key for %q: %w", name, err)
	}
	p2p, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		return nil, fmt.Errorf("node: libp2p key: %w", err)
	}
	p2pBytes, err := crypto.MarshalPrivateKey(p2p)
	if err != nil {
		return nil, fmt.Errorf("node: libp2p key: %w", err)
	}
	for _, f := range []struct {
		name string
		data []byte
		mode fs.FileMode
	}{
		{cosignKeyFile, kp.Private, 0o600},
		{cosignPubFile, kp.Public, 0o644},
		{noteKeyFile, []byte(skey + "\n"), 0o600},
		{notePubFile, []byte(vkey + "\n"), 0o644},
		{p2pKeyFile, p2pBytes, 0o600},
	} {
		if err := writeNew(filepath.Join(kd, f.name), f.data, f.mode); err != nil {
			return nil, err
		}
	}
	return LoadKeys(dir, password)
}

// LoadKeys loads the keys of the node whose data folder is dir.
func LoadKeys(dir string, password []byte) (*Keys, error) {
	kd := filepath.Join(dir, "keys")
	read := func(f string) ([]byte, error) {
		b, err := readFileLimited(filepath.Join(kd, f), maxKeyFile)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("node: %s is missing: make the node's keys with 'pyrsia-build node init --data %s --name NAME'", filepath.Join(kd, f), dir)
		}
		if err != nil {
			return nil, fmt.Errorf("node: %w", err)
		}
		return b, nil
	}
	var k Keys
	priv, err := read(cosignKeyFile)
	if err != nil {
		return nil, err
	}
	if k.CosignPub, err = read(cosignPubFile); err != nil {
		return nil, err
	}
	if k.Cosign, err = attest.LoadSigner(priv, password); err != nil {
		return nil, fmt.Errorf("node: %s: %w (the password comes from COSIGN_PASSWORD)", filepath.Join(kd, cosignKeyFile), err)
	}
	skey, err := witness.ReadSignerKeyFile(filepath.Join(kd, noteKeyFile))
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	if k.LogSigner, err = witness.NewLogSigner(skey); err != nil {
		return nil, fmt.Errorf("node: %s: %w", filepath.Join(kd, noteKeyFile), err)
	}
	if k.Cosigner, err = witness.NewCosignatureSigner(skey); err != nil {
		return nil, fmt.Errorf("node: %s: %w", filepath.Join(kd, noteKeyFile), err)
	}
	if k.NoteKey, err = witness.VerifierKey(skey); err != nil {
		return nil, fmt.Errorf("node: %s: %w", filepath.Join(kd, noteKeyFile), err)
	}
	k.Name = k.LogSigner.Name()
	p2p, err := read(p2pKeyFile)
	if err != nil {
		return nil, err
	}
	if k.P2P, err = crypto.UnmarshalPrivateKey(p2p); err != nil {
		return nil, fmt.Errorf("node: %s is not a libp2p private key: %w", filepath.Join(kd, p2pKeyFile), err)
	}
	if k.PeerID, err = peer.IDFromPrivateKey(k.P2P); err != nil {
		return nil, fmt.Errorf("node: %s: %w", filepath.Join(kd, p2pKeyFile), err)
	}
	return &k, nil
}

// MarshalPolicyNode returns the node's policy entry as indented JSON.
func (k *Keys) MarshalPolicyNode() []byte {
	b, _ := json.MarshalIndent(k.PolicyNode(), "", "  ")
	return append(b, '\n')
}

// writeNew writes a file that must not exist, durably.
func writeNew(path string, data []byte, mode fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("node: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("node: writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("node: writing %s: %w", path, err)
	}
	return f.Close()
}

// readFileLimited reads a regular file of at most limit bytes.
func readFileLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%s is over the %d byte limit", path, limit)
	}
	return b, nil
}
