// Package policy is the trust root of a pyrsia-build network: the network
// policy file, and the compiled [Trust] that every verifier uses.
//
// A [Policy] (file format "Network policy v1", JSON; YAML accepted on
// input) names the network, lists its build nodes (name, cosign public
// key, libp2p peer id, note key) and says who may request builds. Its
// [Policy.Digest] names the network: everything a node signs or gossips is
// bound to it. The rule is an absolute majority of the listed build nodes,
// [Policy.Threshold].
//
// A [Trust] is what a verifier needs: the log's verifier keys, the
// cosigners' and the build nodes' keys, de-duplicated by public key, and the
// thresholds. [Policy.Trust] compiles one from a policy; [NewTrust]
// assembles one from separate keys (the CLI's --key, --log-key and
// --cosigner-key), so that both paths give the same type, checked the same
// way.
//
// # Changes
//
// A network's membership changes only by a log entry that a majority of
// the policy in force approved. A [Change] holds the new policy (whole),
// the digest of the policy it replaces and approvals: each a build node's
// cosign-key signature over DSSE's PAE of payload type
// [ChangePayloadType] and [Change.Statement], the canonical JSON
// {"network","policy","previous","type":"policy-change","v":1}, so an
// approval counts for one step of one network and for nothing else (not
// as an attestation, not as a build request). [Change.Check] accepts a
// change only if Previous is the digest of the policy in force, the new
// policy is valid, differs from it and keeps the network's name (the
// origin of every checkpoint of the log: a new name would be a new log),
// and at least floor(n/2)+1 distinct build nodes of the policy in force
// approved it. Approvals are told apart by key, one per key (a key that
// approves twice makes the change malformed); approvals by keys outside
// the policy in force, or whose signature does not verify, count for
// nothing. [Change.Approve] adds one node's approval.
//
// A [Chain] follows the changes along the log. The rule, which nodes and
// verifiers apply alike: an entry at index i is judged by the policy in
// force at i, the first policy replaced by every approved change at an
// index below i; a change at i is judged by the policy in force at i and
// holds from i+1, and may not bring back a policy that was in force before
// (its old changes' approvals would be replayable); a checkpoint of size N is judged (signer, cosigners,
// threshold) by the policy in force at N. So a vote signed with a key that
// a change rotated out counts for nothing in an entry after the change.
// Everything a node gossips or signs names the digest of the policy in
// force ([Chain.CheckBinding]); the gossip topics and the DHT namespace
// keep the first policy's digest, [Chain.NetworkID], for the network's
// life. [Diff] says what a change does, in words.
package policy

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	"go.yaml.in/yaml/v3"
)

// Version is the policy file version this package reads and writes.
const Version = 1

// MaxPolicySize bounds a policy file: a hundred nodes with their keys fit
// in well under a tenth of it.
const MaxPolicySize = 1 << 20

// MaxNodes bounds the build nodes of a policy. Raft, which orders the
// appends among them, works best with a handful; 15 is a large network.
const MaxNodes = 100

// MaxRequesters bounds the requester keys of a policy.
const MaxRequesters = 1000

// Node is one build node of a network.
type Node struct {
	// Name is unique in the policy: [a-z0-9][a-z0-9.-]*, at most 63
	// characters.
	Name string `json:"name" yaml:"name"`
	// CosignKey is the node's cosign public key (a PEM "PUBLIC KEY"
	// block, its cosign.pub): it signs the node's attestations (votes).
	CosignKey string `json:"cosignKey" yaml:"cosignKey"`
	// PeerID is the node's libp2p peer id ("12D3Koo..."); it may be empty
	// in a policy that is only used to verify.
	PeerID string `json:"peerId" yaml:"peerId"`
	// NoteKey is the node's note verifier key "name+hash+base64"
	// (Ed25519): the same key signs checkpoints as a log and cosigns them.
	NoteKey string `json:"noteKey" yaml:"noteKey"`
}

// Policy is a network policy, version 1.
type Policy struct {
	// Version is 1.
	Version int `json:"version" yaml:"version"`
	// Name is the network's name, also the log origin of its checkpoints.
	Name string `json:"name" yaml:"name"`
	// Nodes are the build nodes that count: at least one, each key and
	// peer id at most once.
	Nodes []Node `json:"nodes" yaml:"nodes"`
	// Requesters are PEM public keys allowed to request builds; with none
	// and Open false, only the build nodes may.
	Requesters []string `json:"requesters" yaml:"requesters"`
	// Open lets anyone request builds.
	Open bool `json:"open" yaml:"open"`
}

// Error is the error for a policy that does not hold: Field names the
// field ("nodes[2].cosignKey"), Err says what is wrong with it.
type Error struct {
	Field string
	Err   error
}

func (e *Error) Error() string {
	if e.Field == "" {
		return "policy: " + e.Err.Error()
	}
	return "policy: " + e.Field + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

func fieldErr(field string, format string, args ...any) error {
	return &Error{Field: field, Err: fmt.Errorf(format, args...)}
}

// Parse decodes a policy, JSON or YAML, strictly (no unknown fields, no
// duplicate keys, one document, no trailing data, exact types), and
// validates every field with [Policy.Validate].
func Parse(data []byte) (*Policy, error) {
	if len(data) > MaxPolicySize {
		return nil, &Error{Err: fmt.Errorf("%d bytes is over the %d byte limit", len(data), MaxPolicySize)}
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, &Error{Err: errors.New("empty (want a network policy v1, JSON or YAML)")}
	}
	var p Policy
	var err error
	if trimmed[0] == '{' {
		err = parseJSON(data, &p)
	} else {
		err = parseYAML(data, &p)
	}
	if err != nil {
		return nil, &Error{Err: err}
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

func parseJSON(data []byte, p *Policy) error {
	if err := checkDuplicateKeys(data); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(p); err != nil {
		var typ *json.UnmarshalTypeError
		var syn *json.SyntaxError
		switch {
		case errors.As(err, &typ) && typ.Field != "":
			return fmt.Errorf("field %s: JSON %s where %s belongs", typ.Field, typ.Value, typ.Type)
		case errors.As(err, &syn):
			return fmt.Errorf("not valid JSON (at byte %d: %s)", syn.Offset, syn.Error())
		case errors.Is(err, io.ErrUnexpectedEOF):
			return errors.New("JSON ends early (truncated file?)")
		}
		return fmt.Errorf("JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

// checkDuplicateKeys refuses a JSON text with an object that holds a key
// twice: encoding/json would keep the last one silently, and two readers
// could see two policies.
func checkDuplicateKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var walk func(depth int, path string) error
	walk = func(depth int, path string) error {
		if depth > 16 {
			return fmt.Errorf("%s: nested deeper than a policy is", cmp.Or(path, "top level"))
		}
		tok, err := dec.Token()
		if err != nil {
			return err
		}
		d, ok := tok.(json.Delim)
		if !ok {
			return nil
		}
		switch d {
		case '{':
			seen := map[string]bool{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				k, _ := kt.(string)
				if seen[k] {
					return fmt.Errorf("key %q appears twice in %s", k, cmp.Or(path, "the top-level object"))
				}
				seen[k] = true
				if err := walk(depth+1, strings.TrimPrefix(path+"."+k, ".")); err != nil {
					return err
				}
			}
		case '[':
			for i := 0; dec.More(); i++ {
				if err := walk(depth+1, fmt.Sprintf("%s[%d]", path, i)); err != nil {
					return err
				}
			}
		}
		_, err = dec.Token() // the closing delimiter
		return err
	}
	if err := walk(0, ""); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) {
			return fmt.Errorf("not valid JSON (at byte %d: %s)", syn.Offset, syn.Error())
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return errors.New("JSON ends early (truncated file?)")
		}
		return err
	}
	return nil
}

func parseYAML(data []byte, p *Policy) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(p); err != nil {
		if errors.Is(err, io.EOF) {
			return errors.New("empty (want a network policy v1, JSON or YAML)")
		}
		return fmt.Errorf("YAML: %w", err)
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		return errors.New("more than one YAML document (a policy file holds one)")
	}
	// yaml.v3 puts 1.0 into an int: the version must be written as one.
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err == nil && len(root.Content) == 1 {
		m := root.Content[0]
		for i := 0; i+1 < len(m.Content); i += 2 {
			if k, v := m.Content[i], m.Content[i+1]; k.Value == "version" && v.Tag != "!!int" {
				return fmt.Errorf("line %d: version %q is not an integer (write version: 1)", v.Line, truncate(v.Value))
			}
		}
	}
	return nil
}

// Load reads and parses the policy file at path: a regular file of at most
// [MaxPolicySize] bytes.
func Load(path string) (*Policy, error) {
	b, err := attest.ReadFileLimited(path, MaxPolicySize)
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	p, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// Validate checks every field of p. Errors are [*Error]s naming the field.
func (p *Policy) Validate() error {
	if p.Version != Version {
		return fieldErr("version", "%d is not supported (this build reads version %d)", p.Version, Version)
	}
	if err := checkNetworkName(p.Name); err != nil {
		return &Error{Field: "name", Err: err}
	}
	if len(p.Nodes) == 0 {
		return fieldErr("nodes", "no build nodes (a network needs at least one)")
	}
	if len(p.Nodes) > MaxNodes {
		return fieldErr("nodes", "%d build nodes, more than %d", len(p.Nodes), MaxNodes)
	}
	names := map[string]int{}
	cosign := map[string]int{}
	peers := map[string]int{}
	notes := map[string]int{}
	for i, n := range p.Nodes {
		f := fmt.Sprintf("nodes[%d]", i)
		if err := checkNodeName(n.Name); err != nil {
			return &Error{Field: f + ".name", Err: err}
		}
		f = fmt.Sprintf("nodes[%d] (%s)", i, n.Name)
		if j, dup := names[n.Name]; dup {
			return fieldErr(f+".name", "%q is also the name of nodes[%d]", n.Name, j)
		}
		names[n.Name] = i
		k, err := attest.ParsePublicKey(n.Name, []byte(n.CosignKey))
		if err != nil {
			return &Error{Field: f + ".cosignKey", Err: trim(err)}
		}
		if j, dup := cosign[k.ID]; dup {
			return fieldErr(f+".cosignKey", "the same key as that of nodes[%d] (%s): each node has its own key", j, p.Nodes[j].Name)
		}
		cosign[k.ID] = i
		if n.PeerID != "" {
			if err := checkPeerID(n.PeerID); err != nil {
				return &Error{Field: f + ".peerId", Err: err}
			}
			if j, dup := peers[n.PeerID]; dup {
				return fieldErr(f+".peerId", "also the peer id of nodes[%d] (%s)", j, p.Nodes[j].Name)
			}
			peers[n.PeerID] = i
		}
		v, err := witness.NewLogVerifier(n.NoteKey)
		if err != nil {
			return &Error{Field: f + ".noteKey", Err: trim(err)}
		}
		if err := checkNoteKeyName(v.Name()); err != nil {
			return &Error{Field: f + ".noteKey", Err: err}
		}
		id := witness.PublicKey(v)
		if j, dup := notes[id]; dup {
			return fieldErr(f+".noteKey", "the same key as that of nodes[%d] (%s): one key under two names would be counted twice", j, p.Nodes[j].Name)
		}
		notes[id] = i
	}
	if len(p.Requesters) > MaxRequesters {
		return fieldErr("requesters", "%d keys, more than %d", len(p.Requesters), MaxRequesters)
	}
	reqs := map[string]int{}
	for i, r := range p.Requesters {
		k, err := attest.ParsePublicKey(fmt.Sprintf("requester %d", i), []byte(r))
		if err != nil {
			return &Error{Field: fmt.Sprintf("requesters[%d]", i), Err: trim(err)}
		}
		if j, dup := reqs[k.ID]; dup {
			return fieldErr(fmt.Sprintf("requesters[%d]", i), "the same key as requesters[%d]", j)
		}
		reqs[k.ID] = i
	}
	return nil
}

func trim(err error) error {
	msg := err.Error()
	for _, p := range []string{"attest: ", "witness: "} {
		msg = strings.TrimPrefix(msg, p)
	}
	return errors.New(msg)
}

func checkNodeName(s string) error {
	if s == "" {
		return errors.New("empty")
	}
	if len(s) > 63 {
		return fmt.Errorf("%d characters, more than 63", len(s))
	}
	for i, c := range []byte(s) {
		ok := 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || i > 0 && (c == '-' || c == '.')
		if !ok {
			return fmt.Errorf("%q is not [a-z0-9][a-z0-9.-]*", truncate(s))
		}
	}
	return nil
}

// checkNetworkName checks the network name, which is also the origin line
// of the log's checkpoints and so the name checkpoint signers use.
func checkNetworkName(s string) error {
	if s == "" {
		return errors.New("empty (the network's name, also its log origin)")
	}
	if len(s) > 255 {
		return fmt.Errorf("%d bytes, more than 255", len(s))
	}
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f || c == '+' {
			return fmt.Errorf("%q holds a space, '+' or a character outside printable ASCII", truncate(s))
		}
	}
	return nil
}

// checkNoteKeyName checks the name of a note key, which the CLI prints
// (a rotated note key in `network propose` and `approve`, the cosigners of
// a checkpoint in `verify`): printable ASCII only. note.NewVerifier takes
// any name without white space or '+', terminal escapes and bidi
// overrides included, with which a hostile policy could hide a line of
// what a change does from the nodes asked to approve it.
func checkNoteKeyName(s string) error {
	for _, c := range []byte(s) {
		if c <= ' ' || c >= 0x7f {
			return fmt.Errorf("key name %q holds a character outside printable ASCII (a note key's name is printed: write it like the node's name)", truncate(s))
		}
	}
	return nil
}

// checkPeerID checks the shape of a libp2p peer id in base58 (a multihash:
// "12D3Koo..." for an Ed25519 key, "Qm..." for a SHA-256 one). It does not
// decode the multihash: the node's libp2p host does.
func checkPeerID(s string) error {
	const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	if len(s) < 40 || len(s) > 128 {
		return fmt.Errorf("%q is %d characters, not a libp2p peer id (base58, like 12D3Koo...)", truncate(s), len(s))
	}
	for _, c := range s {
		if !strings.ContainsRune(alphabet, c) {
			return fmt.Errorf("%q is not base58, not a libp2p peer id (like 12D3Koo...)", truncate(s))
		}
	}
	return nil
}

func truncate(s string) string {
	if len(s) <= 80 {
		return s
	}
	return s[:80] + "..."
}

// canonical is what Marshal encodes, in attest.CanonicalJSON's form.
type canonical struct {
	Name       string          `json:"name"`
	Nodes      []canonicalNode `json:"nodes"`
	Open       bool            `json:"open"`
	Requesters []string        `json:"requesters"`
	Version    int             `json:"version"`
}

type canonicalNode struct {
	CosignKey string `json:"cosignKey"`
	Name      string `json:"name"`
	NoteKey   string `json:"noteKey"`
	PeerID    string `json:"peerId"`
}

// Marshal returns the canonical JSON of a valid policy: keys sorted, no
// insignificant whitespace, nodes sorted by name, requesters sorted, and
// every PEM key re-encoded from its bytes, so that two files that say the
// same thing have the same canonical form, and the same [Policy.Digest].
func (p *Policy) Marshal() ([]byte, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	c := canonical{Name: p.Name, Open: p.Open, Version: p.Version, Requesters: []string{}}
	for _, n := range p.Nodes {
		c.Nodes = append(c.Nodes, canonicalNode{CosignKey: canonicalPEM(n.CosignKey), Name: n.Name, NoteKey: n.NoteKey, PeerID: n.PeerID})
	}
	slices.SortFunc(c.Nodes, func(a, b canonicalNode) int { return strings.Compare(a.Name, b.Name) })
	for _, r := range p.Requesters {
		c.Requesters = append(c.Requesters, canonicalPEM(r))
	}
	slices.Sort(c.Requesters)
	b, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("policy: encoding: %w", err)
	}
	// The one canonical-JSON encoder of the project.
	b, err = attest.CanonicalJSON(b)
	if err != nil {
		return nil, fmt.Errorf("policy: encoding: %w", err)
	}
	return b, nil
}

// canonicalPEM re-encodes a validated PEM key.
func canonicalPEM(s string) string {
	b, _ := pem.Decode([]byte(s))
	return string(pem.EncodeToMemory(&pem.Block{Type: b.Type, Bytes: b.Bytes}))
}

// Digest returns "sha256:<hex>" of the canonical JSON, the name of the
// network. It is "" for an invalid policy.
func (p *Policy) Digest() string {
	b, err := p.Marshal()
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Threshold returns the absolute majority of the build nodes, floor(n/2)+1.
func (p *Policy) Threshold() int { return witness.Threshold(len(p.Nodes)) }

// Node returns the build node called name.
func (p *Policy) Node(name string) (Node, bool) {
	i := slices.IndexFunc(p.Nodes, func(n Node) bool { return n.Name == name })
	if i < 0 {
		return Node{}, false
	}
	return p.Nodes[i], true
}

// NodeByPeerID returns the build node with libp2p peer id id.
func (p *Policy) NodeByPeerID(id string) (Node, bool) {
	if id == "" {
		return Node{}, false
	}
	i := slices.IndexFunc(p.Nodes, func(n Node) bool { return n.PeerID == id })
	if i < 0 {
		return Node{}, false
	}
	return p.Nodes[i], true
}

// AddNode adds a build node to p and validates the result; on an error p is
// unchanged. It is what `network add-node` does.
func (p *Policy) AddNode(n Node) error {
	p.Nodes = append(p.Nodes, n)
	if err := p.Validate(); err != nil {
		p.Nodes = p.Nodes[:len(p.Nodes)-1]
		return err
	}
	return nil
}

// MayRequest reports whether the holder of key may request builds: anyone
// in an open network, else a listed requester or a build node. It returns
// the name the requester goes by: the node's name, "requesters[i]", or
// "anyone".
func (p *Policy) MayRequest(key *attest.PublicKey) (string, bool) {
	if key == nil {
		return "", false
	}
	for _, n := range p.Nodes {
		if k, err := attest.ParsePublicKey(n.Name, []byte(n.CosignKey)); err == nil && k.ID == key.ID {
			return n.Name, true
		}
	}
	for i, r := range p.Requesters {
		if k, err := attest.ParsePublicKey("", []byte(r)); err == nil && k.ID == key.ID {
			return fmt.Sprintf("requesters[%d]", i), true
		}
	}
	if p.Open {
		return "anyone", true
	}
	return "", false
}
