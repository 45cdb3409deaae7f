package policy

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	"github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// Trust is what a verifier needs, compiled once: the keys, each public key
// once whatever names it is listed under, and the thresholds. Make one with
// [Policy.Trust] or [NewTrust]; a Trust is not modified after that and is
// safe for concurrent use.
type Trust struct {
	// Origin is required of checkpoints.
	Origin string
	// LogVerifiers check the log signature of a checkpoint: one of them
	// must have signed it.
	LogVerifiers []note.Verifier
	// Cosigners are cosignature/v1 verifiers, one per distinct public key.
	Cosigners []note.Verifier
	// CosignThreshold is how many distinct Cosigners make a checkpoint
	// final; 0 when there are no Cosigners.
	CosignThreshold int
	// BuildKeys are the build nodes' cosign keys, one per distinct key.
	BuildKeys []*attest.PublicKey
	// BuildThreshold is how many distinct BuildKeys must have attested an
	// entry: 1 to len(BuildKeys). A verifier refuses a Trust with 0 (fail
	// closed); NewTrust and Policy.Trust always set it.
	BuildThreshold int
	// PolicyDigest is the digest of the policy this Trust was compiled
	// from, "" for one assembled from keys.
	PolicyDigest string
}

// TrustOptions are the separate keys [NewTrust] assembles a Trust from.
type TrustOptions struct {
	// Origin is required of checkpoints; empty means the name of the first
	// log verifier, which names the log by convention.
	Origin string
	// LogVerifiers check the log's checkpoint signature (from
	// witness.NewLogVerifier). At least one.
	LogVerifiers []note.Verifier
	// Cosigners (from witness.NewCosignatureVerifier) may be empty: a
	// verifier then accepts checkpoints on the log's signature alone, and
	// only if it allows that.
	Cosigners []note.Verifier
	// CosignThreshold: 0 means an absolute majority of the distinct
	// Cosigners.
	CosignThreshold int
	// BuildKeys: at least one.
	BuildKeys []*attest.PublicKey
	// BuildThreshold: 0 means an absolute majority of the distinct
	// BuildKeys.
	BuildThreshold int
}

// NewTrust assembles a Trust from separate keys. Keys are told apart by
// public key, never by name: a cosigner or build key given twice, under
// one name or two, is an error (counted once, it would lower the majority
// the caller asked for; counted twice, it would let one node stand for
// two). A log key given twice is kept once.
func NewTrust(o TrustOptions) (*Trust, error) {
	return newTrust(o, "")
}

func newTrust(o TrustOptions, digest string) (*Trust, error) {
	logs, _ := witness.Distinct(o.LogVerifiers)
	if len(logs) == 0 || slicesHasNil(logs) {
		return nil, errors.New("policy: trust: no log verifier key to check checkpoints with")
	}
	if o.Origin == "" {
		o.Origin = logs[0].Name()
	}
	if slicesHasNil(o.Cosigners) {
		return nil, errors.New("policy: trust: nil cosigner")
	}
	cosigners, dups := witness.Distinct(o.Cosigners)
	if len(dups) > 0 {
		return nil, fmt.Errorf("policy: trust: the same cosigner key is given twice%s: give each cosigner's key once", dupNote(dups))
	}
	ct := o.CosignThreshold
	switch {
	case ct < 0:
		return nil, fmt.Errorf("policy: trust: cosign threshold %d is negative", ct)
	case len(cosigners) == 0 && ct > 0:
		return nil, fmt.Errorf("policy: trust: cosign threshold %d, but no cosigner keys", ct)
	case len(cosigners) > 0 && ct == 0:
		ct = witness.Threshold(len(cosigners))
	case ct > len(cosigners):
		return nil, fmt.Errorf("policy: trust: cosign threshold %d is more than the %d cosigner keys", ct, len(cosigners))
	}

	var keys []*attest.PublicKey
	seen := map[string]string{}
	for _, k := range o.BuildKeys {
		if k == nil {
			return nil, errors.New("policy: trust: nil build key")
		}
		if first, dup := seen[k.ID]; dup {
			return nil, fmt.Errorf("policy: trust: build node keys %q and %q are the same public key: give each node's key once", first, k.Name)
		}
		seen[k.ID] = k.Name
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("policy: trust: no build node keys to check attestations with")
	}
	bt := o.BuildThreshold
	switch {
	case bt < 0:
		return nil, fmt.Errorf("policy: trust: build threshold %d is negative", bt)
	case bt == 0:
		bt = witness.Threshold(len(keys))
	case bt > len(keys):
		return nil, fmt.Errorf("policy: trust: build threshold %d is more than the %d build node keys", bt, len(keys))
	}
	return &Trust{
		Origin:          o.Origin,
		LogVerifiers:    logs,
		Cosigners:       cosigners,
		CosignThreshold: ct,
		BuildKeys:       keys,
		BuildThreshold:  bt,
		PolicyDigest:    digest,
	}, nil
}

func slicesHasNil(vs []note.Verifier) bool {
	for _, v := range vs {
		if v == nil {
			return true
		}
	}
	return false
}

func dupNote(dups map[string][]string) string {
	if len(dups) == 0 {
		return ""
	}
	var parts []string
	for first, others := range dups {
		parts = append(parts, fmt.Sprintf("%q and %q", first, strings.Join(others, `" and "`)))
	}
	slices.Sort(parts)
	return " (" + strings.Join(parts, "; ") + ")"
}

// Trust compiles the policy's keys: every node's note key checks the log
// signature and, as a cosignature/v1 key, cosignatures; every node's cosign
// key checks attestations; both thresholds are the absolute majority of the
// nodes. The origin is the network's name.
func (p *Policy) Trust() (*Trust, error) {
	if err := p.Validate(); err != nil {
		return nil, err
	}
	var o TrustOptions
	o.Origin = p.Name
	for i, n := range p.Nodes {
		k, err := attest.ParsePublicKey(n.Name, []byte(n.CosignKey))
		if err != nil {
			return nil, fieldErr(fmt.Sprintf("nodes[%d].cosignKey", i), "%w", err)
		}
		lv, err := witness.NewLogVerifier(n.NoteKey)
		if err != nil {
			return nil, fieldErr(fmt.Sprintf("nodes[%d].noteKey", i), "%w", err)
		}
		cv, err := witness.NewCosignatureVerifier(n.NoteKey)
		if err != nil {
			return nil, fieldErr(fmt.Sprintf("nodes[%d].noteKey", i), "%w", err)
		}
		o.BuildKeys = append(o.BuildKeys, k)
		o.LogVerifiers = append(o.LogVerifiers, lv)
		o.Cosigners = append(o.Cosigners, cv)
	}
	o.BuildThreshold = p.Threshold()
	o.CosignThreshold = p.Threshold()
	return newTrust(o, p.Digest())
}

// VerifyCheckpoint checks a checkpoint note against t: the origin, a log
// signature by one of LogVerifiers and, when t has Cosigners,
// CosignThreshold distinct cosignatures ([witness.VerifyFinal]). It returns
// the checkpoint and the names of the cosigners that cosigned it. With no
// Cosigners it checks the log signature only: whether that is enough is
// the caller's decision.
func (t *Trust) VerifyCheckpoint(noteBytes []byte) (*log.Checkpoint, []string, error) {
	if len(t.Cosigners) == 0 {
		cp, _, err := witness.ParseCheckpoint(noteBytes, t.Origin, t.LogVerifiers...)
		return cp, nil, err
	}
	return witness.VerifyFinal(noteBytes, t.Origin, t.LogVerifiers, t.Cosigners, t.CosignThreshold)
}

// CosignerOptions returns the options of a [witness.Cosigner] that cosigns
// this network's checkpoints with signer (the node's cosignature/v1
// signer), keeping its state in stateDir: any of t's log keys may have
// signed a checkpoint, its origin is t's, and it cosigns only trees that
// replica, the node's own copy of the log, holds. With more than one log
// key, [witness.NewCosigner] refuses options without a replica: any one
// node's key could otherwise advance the cosigner past the real log.
func (t *Trust) CosignerOptions(signer note.Signer, stateDir string, replica witness.Replica) witness.CosignerOptions {
	return witness.CosignerOptions{Signer: signer, Origin: t.Origin, LogVerifiers: t.LogVerifiers, StateDir: stateDir, Replica: replica}
}
