package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	"github.com/urfave/cli/v2"
	"golang.org/x/mod/sumdb/note"
)

// predicateAliases are cosign's --type shorthands that apply here.
var predicateAliases = map[string]string{
	"slsaprovenance1":  attest.PredicateSLSAProvenanceV1,
	"slsaprovenance02": "https://slsa.dev/provenance/v0.2",
	"slsaprovenance":   "https://slsa.dev/provenance/v0.2",
}

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:      "verify",
		Usage:     "verify an artifact against its attestation or proof bundle, offline",
		UsageText: "pyrsia-build verify --key PUB... [--bundle FILE] [--log-key PUB --cosigner-key PUB...] [--type TYPE] [--json] ARTIFACT\n   pyrsia-build verify --policy POLICY --bundle PROOF [--type TYPE] [--json] ARTIFACT",
		Description: `Reads ARTIFACT once through SHA-256 and checks it against a bundle, offline.

With a Sigstore bundle (an attestation, as 'pyrsia-build attest' or
'cosign attest-blob --new-bundle-format --key' write it), it checks in order:
the DSSE envelope is signed by a --key, its payload is an in-toto statement
(of --type, if given), and a subject of the statement has the artifact's
digest.

With a proof bundle (application/vnd.pyrsia.proof-bundle.v1+json, as
'pyrsia-build log proof' writes it), it checks in order: the checkpoint is
signed by the log (--log-key) and, with --cosigner-key, cosigned by
--cosign-threshold of the cosigners (default: a majority); the log entry is
included in that checkpoint's tree; the entry's attestations are signed by
--threshold of the build nodes' --key files (default: a majority) and name
the artifact's digest.

With --policy, the network policy of a build network gives all of that for a
proof bundle: its name is the checkpoint's origin, any build node's note key
may have signed the checkpoint, a majority of them must have cosigned it, and
a majority of the build nodes' cosign keys must have signed the attestations.
--policy is the network's first policy; the bundle's policy changes lead
from it to the policy in force at the entry and at the checkpoint. Keys a
change rotated out still make a majority of the first policy: give the
policy the nodes run now with --later-policy, and a bundle whose changes do
not lead to it (a fork signed by the rotated-out keys) is refused.

The bundle defaults to ARTIFACT.sigstore.json. Prints who signed, which
subject, the predicate type, and for a proof bundle the log position.

Exit codes: 0 verified, 1 not verified (the reason is printed),
2 usage error or unreadable input.

Examples:
   pyrsia-build verify --key cosign.pub app.tar
   pyrsia-build verify --key node-a.pub --bundle app.tar.sigstore.json --type slsaprovenance1 app.tar
   pyrsia-build verify --key cosign.pub --json app.tar | jq .subject
   pyrsia-build verify --bundle hello.proof.json --key node-a.pub --key node-b.pub --key node-c.pub \
       --log-key log.note.pub --cosigner-key node-a.note.pub --cosigner-key node-b.note.pub hello.jar`,
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "key", Usage: "cosign public key `FILE` that may have signed; repeat for several (the build nodes); required without --policy"},
			&cli.StringFlag{Name: "policy", Usage: "proof bundles: the network policy `FILE`, which gives every key and threshold (instead of --key, --log-key, --cosigner-key)"},
			&cli.StringFlag{Name: "later-policy", Usage: "with --policy: a later policy `FILE` of the network, known to have been in force (the one its nodes run): refuse a bundle whose policy changes do not lead to it (a fork signed by rotated-out keys)"},
			&cli.StringFlag{Name: "bundle", Usage: "Sigstore bundle or proof bundle `FILE` (default: ARTIFACT.sigstore.json)"},
			&cli.IntFlag{Name: "threshold", Usage: "`N` of the keys must have signed (default: 1 for a Sigstore bundle, a majority for a proof bundle)"},
			&cli.StringFlag{Name: "type", Usage: "require this predicate `TYPE`: a URI, or slsaprovenance1"},
			&cli.StringFlag{Name: "log-key", Usage: "proof bundles: the log's checkpoint verifier key `FILE` (a note key, see 'pyrsia-build log keygen')"},
			&cli.StringSliceFlag{Name: "cosigner-key", Usage: "proof bundles: a cosigner's verifier key `FILE`; repeat for each"},
			&cli.IntFlag{Name: "cosign-threshold", Usage: "proof bundles: `N` cosigners must have cosigned the checkpoint (default: a majority)"},
			&cli.StringFlag{Name: "origin", Usage: "proof bundles: require this log `ORIGIN` in the checkpoint (default: the log key's name)"},
			&cli.BoolFlag{Name: "allow-unwitnessed", Usage: "proof bundles: accept a checkpoint with no --cosigner-key, on the log's signature alone"},
			&cli.BoolFlag{Name: "json", Usage: "print the verdict as JSON"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return inputErr(fmt.Errorf("verify takes one ARTIFACT, got %d arguments", c.NArg()),
					"run 'pyrsia-build verify --help' for usage")
			}
			if err := checkThresholds(c); err != nil {
				return err
			}
			if c.String("policy") == "" && len(c.StringSlice("key")) == 0 {
				return inputErr(errors.New("no --key given: verify needs the keys that may have signed"),
					"give the build nodes' cosign public keys with --key, or, for a proof bundle of a build network, its policy with --policy POLICY")
			}
			if c.String("later-policy") != "" && c.String("policy") == "" {
				return inputErr(errors.New("--later-policy goes with --policy, the network's first policy"))
			}
			if c.String("policy") != "" && (len(c.StringSlice("key")) > 0 || c.String("log-key") != "" || len(c.StringSlice("cosigner-key")) > 0) {
				return inputErr(errors.New("--policy gives every key: --key, --log-key and --cosigner-key do not go with it"))
			}
			artifact := c.Args().First()
			if fi, err := os.Stat(artifact); err != nil {
				return inputErr(fmt.Errorf("artifact: %w", err))
			} else if !fi.Mode().IsRegular() {
				return inputErr(fmt.Errorf("artifact %s is not a regular file", artifact))
			}
			bundlePath := c.String("bundle")
			if bundlePath == "" {
				bundlePath = artifact + ".sigstore.json"
			}
			keys, err := loadPublicKeys(c.Context, c.StringSlice("key"))
			if err != nil {
				return err
			}
			data, err := readBundleFile(c.Context, bundlePath)
			if err != nil {
				return err
			}
			ptype := c.String("type")
			if full, ok := predicateAliases[ptype]; ok {
				ptype = full
			}
			if publish.IsProofBundle(data) {
				return verifyProof(c, artifact, bundlePath, data, keys, ptype)
			}
			if c.String("policy") != "" {
				return inputErr(fmt.Errorf("%s is not a proof bundle: --policy checks proof bundles (give --key for an attestation)", bundlePath),
					"get the proof bundle with 'pyrsia-build publish' or 'pyrsia-build log proof'")
			}
			if c.String("log-key") != "" || len(c.StringSlice("cosigner-key")) > 0 {
				return inputErr(fmt.Errorf("%s is not a proof bundle, so --log-key and --cosigner-key do not apply", bundlePath),
					"make a proof bundle with 'pyrsia-build log proof'")
			}
			b, err := attest.ParseBundle(data)
			if err != nil {
				return inputErr(fmt.Errorf("%s: %w", bundlePath, trimPkg(err)))
			}
			v, err := attest.NewVerifier(attest.VerifierOptions{Keys: keys, Threshold: c.Int("threshold"), PredicateType: ptype})
			if err != nil {
				return inputErr(trimPkg(err))
			}
			ev, err := v.Verify(c.Context, attest.FileArtifact(artifact), b)
			if err := verifyErr(artifact, err); err != nil {
				return err
			}
			return printVerdict(c, verdict(artifact, bundlePath, ev))
		},
	}
}

func verifyProof(c *cli.Context, artifact, bundlePath string, data []byte, keys []*attest.PublicKey, ptype string) error {
	pb, err := publish.ParseProofBundle(data)
	if err != nil {
		return inputErr(fmt.Errorf("%s: %w", bundlePath, err))
	}
	if path := c.String("policy"); path != "" {
		p, err := policy.Load(path)
		if err != nil {
			return inputErr(err)
		}
		later := ""
		if path := c.String("later-policy"); path != "" {
			lp, err := policy.Load(path)
			if err != nil {
				return inputErr(err)
			}
			later = lp.Digest()
		}
		// The policy is the network's first: the bundle's policy
		// changes lead from it to the policy in force at the entry.
		ev, err := publish.VerifyProofChain(c.Context, attest.FileArtifact(artifact), pb, p, publish.ProofOptions{
			PredicateType: ptype, AllowUnwitnessed: c.Bool("allow-unwitnessed"), LaterPolicy: later,
		})
		return proofVerdict(c, artifact, bundlePath, ev, err)
	}
	if len(pb.PolicyChanges) > 0 {
		return inputErr(fmt.Errorf("%s carries %d changes of the network's policy: keys given one by one cannot follow them", bundlePath, len(pb.PolicyChanges)),
			"verify it with the network's first policy: pyrsia-build verify --policy FIRST.json --bundle "+bundlePath+" "+artifact)
	}
	if c.String("log-key") == "" {
		return inputErr(fmt.Errorf("%s is a proof bundle: --log-key is needed to check its checkpoint", bundlePath),
			"pass the log's note verifier key, e.g. --log-key log.note.pub")
	}
	logVerifier, err := readNoteVerifier(c.String("log-key"), witness.NewLogVerifier)
	if err != nil {
		return err
	}
	var cosigners []note.Verifier
	for _, p := range c.StringSlice("cosigner-key") {
		// One key under two names counts once: policy.NewTrust
		// de-duplicates by public key.
		v, err := readNoteVerifier(p, witness.NewCosignatureVerifier)
		if err != nil {
			return err
		}
		cosigners = append(cosigners, v)
	}
	trust, err := policy.NewTrust(policy.TrustOptions{
		Origin: c.String("origin"), LogVerifiers: []note.Verifier{logVerifier},
		Cosigners: cosigners, CosignThreshold: c.Int("cosign-threshold"),
		BuildKeys: keys, BuildThreshold: c.Int("threshold"),
	})
	if err != nil {
		return inputErr(trimPrefix(err, "policy: trust: "))
	}
	return verifyProofTrust(c, artifact, bundlePath, pb, trust, ptype)
}

func verifyProofTrust(c *cli.Context, artifact, bundlePath string, pb *publish.ProofBundle, trust *policy.Trust, ptype string) error {
	ev, err := publish.VerifyProof(c.Context, attest.FileArtifact(artifact), pb, trust, publish.ProofOptions{
		PredicateType: ptype, AllowUnwitnessed: c.Bool("allow-unwitnessed"),
	})
	return proofVerdict(c, artifact, bundlePath, ev, err)
}

func proofVerdict(c *cli.Context, artifact, bundlePath string, ev *publish.ProofEvidence, err error) error {
	if errors.Is(err, publish.ErrUnwitnessed) {
		return inputErr(fmt.Errorf("%s is a proof bundle: %w", bundlePath, trimPrefix(err, "publish: ")),
			"pass the build nodes' note keys (--cosigner-key node-a.note.pub ...), or --allow-unwitnessed to trust the log's signature alone")
	}
	if err := verifyErr(artifact, err); err != nil {
		return err
	}
	v := verdict(artifact, bundlePath, ev.Evidence)
	v.Log = &logVerdict{
		Origin: ev.Checkpoint.Origin, Index: ev.Index, TreeSize: ev.Checkpoint.Size,
		Cosigners: ev.Cosigners, InputDigest: ev.Entry.InputDigest, Coordinate: ev.Entry.Coordinate,
		Policy: ev.Policy, PolicyChanges: ev.PolicyChanges,
	}
	return printVerdict(c, v)
}

// checkThresholds refuses thresholds that no evidence could meet, or that
// would be ignored, as usage errors, before anything is read.
func checkThresholds(c *cli.Context) error {
	hint := "run 'pyrsia-build verify --help' for usage"
	keys, cosigners := len(c.StringSlice("key")), len(c.StringSlice("cosigner-key"))
	if n := c.Int("threshold"); c.IsSet("threshold") && (n < 1 || n > keys) {
		return inputErr(fmt.Errorf("--threshold %d is out of range: give 1 to %d for %d --key files", n, keys, keys), hint)
	}
	if !c.IsSet("cosign-threshold") {
		return nil
	}
	n := c.Int("cosign-threshold")
	switch {
	case cosigners == 0 && c.Bool("allow-unwitnessed"):
		return inputErr(fmt.Errorf("--cosign-threshold %d with --allow-unwitnessed and no --cosigner-key: the threshold would be ignored", n),
			"pass the cosigners' keys with --cosigner-key to require cosignatures, or drop --cosign-threshold to trust the log's signature alone")
	case cosigners == 0:
		return inputErr(fmt.Errorf("--cosign-threshold needs --cosigner-key"), hint)
	case n < 1 || n > cosigners:
		return inputErr(fmt.Errorf("--cosign-threshold %d is out of range: give 1 to %d for %d --cosigner-key files", n, cosigners, cosigners), hint)
	}
	return nil
}

// verifyErr turns a verifier's error into the command's.
func verifyErr(artifact string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, attest.ErrNotVerified):
		return failed(fmt.Errorf("%s: not verified: %w", artifact, err), verifyHint(err))
	default:
		return inputErr(trimPkg(err))
	}
}

func readNoteVerifier(path string, parse func(string) (note.Verifier, error)) (note.Verifier, error) {
	vkey, err := readVerifierKeyFile(path)
	if err != nil {
		return nil, inputErr(err)
	}
	v, err := parse(vkey)
	if err != nil {
		return nil, inputErr(fmt.Errorf("%s: %w", path, err))
	}
	return v, nil
}

// readBundleFile reads a bundle file of either kind, within the larger
// size limit.
func readBundleFile(ctx context.Context, path string) ([]byte, error) {
	return readFile(ctx, path, "bundle", maxBundleFileSize,
		"make one with 'pyrsia-build attest' or 'pyrsia-build log proof', or name it with --bundle")
}

func verifyHint(err error) string {
	var ve *attest.VerificationError
	if !errors.As(err, &ve) {
		return ""
	}
	switch ve.Step {
	case "signature":
		return "check that --key is the public key of the signer; a bundle that was edited after signing never verifies"
	case "subject", "entry":
		return "the file is not the one that was attested: download it again, or use the bundle that belongs to it"
	case "statement":
		return "the bundle is signed but does not hold the attestation expected"
	case "checkpoint":
		return "check --log-key, --cosigner-key and --origin: they must be the log's and its cosigners' keys"
	case "inclusion":
		return "the proof does not tie the entry to the checkpoint: fetch a fresh proof bundle ('pyrsia-build log proof')"
	}
	return ""
}

type verdictJSON struct {
	Verified      bool        `json:"verified"`
	Artifact      string      `json:"artifact"`
	Bundle        string      `json:"bundle"`
	Digest        string      `json:"digest"`
	Size          int64       `json:"size"`
	Subject       string      `json:"subject"`
	Signers       []string    `json:"signers"`
	PredicateType string      `json:"predicateType"`
	Builder       string      `json:"builder,omitempty"`
	Log           *logVerdict `json:"log,omitempty"`

	signerKeys []string
}

type logVerdict struct {
	Origin      string   `json:"origin"`
	Index       uint64   `json:"index"`
	TreeSize    uint64   `json:"treeSize"`
	Cosigners   []string `json:"cosigners,omitempty"`
	InputDigest string   `json:"inputDigest"`
	Coordinate  string   `json:"coordinate"`
	// Policy is the digest of the policy in force at the entry, after
	// PolicyChanges (the log indexes of the changes followed).
	Policy        string   `json:"policy,omitempty"`
	PolicyChanges []uint64 `json:"policyChanges,omitempty"`
}

func verdict(artifact, bundle string, ev *attest.Evidence) *verdictJSON {
	v := &verdictJSON{
		Verified: true, Artifact: artifact, Bundle: bundle,
		Digest: ev.DigestHex(), Size: ev.Size, Subject: ev.Subject.GetName(),
		PredicateType: ev.Statement.GetPredicateType(), Builder: builderID(ev),
	}
	for _, k := range ev.Signers {
		v.Signers = append(v.Signers, k.Name)
		v.signerKeys = append(v.signerKeys, fmt.Sprintf("%s (key %s)", k.Name, k.ID[:16]))
	}
	return v
}

func printVerdict(c *cli.Context, v *verdictJSON) error {
	w := c.App.Writer
	if c.Bool("json") {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	fmt.Fprintf(w, "verified: %s\n", v.Artifact)
	fmt.Fprintf(w, "  subject:   %s %s\n", v.Subject, v.Digest)
	fmt.Fprintf(w, "  signed by: %s\n", strings.Join(v.signerKeys, ", "))
	fmt.Fprintf(w, "  predicate: %s\n", v.PredicateType)
	if v.Builder != "" {
		fmt.Fprintf(w, "  builder:   %s\n", v.Builder)
	}
	if l := v.Log; l != nil {
		fmt.Fprintf(w, "  log:       %s, entry %d of %d (%s, input %s)\n", l.Origin, l.Index, l.TreeSize, l.Coordinate, l.InputDigest)
		if len(l.Cosigners) > 0 {
			fmt.Fprintf(w, "  cosigned:  %s\n", strings.Join(l.Cosigners, ", "))
		}
		if len(l.PolicyChanges) > 0 {
			fmt.Fprintf(w, "  policy:    %s in force at entry %d (policy changes followed: log entries %s)\n", l.Policy, l.Index, joinUints(l.PolicyChanges))
		}
	}
	return nil
}

// builderID reads runDetails.builder.id from a SLSA v1 predicate, if any.
func builderID(ev *attest.Evidence) string {
	if ev.Statement.GetPredicateType() != attest.PredicateSLSAProvenanceV1 {
		return ""
	}
	rd := ev.Statement.GetPredicate().GetFields()["runDetails"].GetStructValue()
	return rd.GetFields()["builder"].GetStructValue().GetFields()["id"].GetStringValue()
}

func joinUints(xs []uint64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprint(x)
	}
	return strings.Join(parts, ", ")
}
