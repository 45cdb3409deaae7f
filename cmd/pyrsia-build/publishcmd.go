package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/builder"
	"github.com/pyrsia/pyrsia-build/node"
	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/pyrsia/pyrsia-build/quorum"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/urfave/cli/v2"
)

func publishCommand() *cli.Command {
	return &cli.Command{
		Name:      "publish",
		Usage:     "have a build network build and publish a spec, and write its proof bundle",
		UsageText: "pyrsia-build publish --node HOST:PORT --data DIR --policy POLICY [-o PROOF] [--json] SPEC\n   pyrsia-build publish --node HOST:PORT --key REQUESTER.key --policy POLICY [-o PROOF] [--json] SPEC",
		Description: `Sends the build spec to the build node whose API is at --node. The node signs
the request and gossips it to the network; every build node builds the spec
on its own and votes. Prints each vote as it arrives (which node, which
digest), then, once a majority agreed and a final checkpoint covers the
entry, writes the proof bundle to -o (default: PREFIX.proof.json, PREFIX the
first 12 hex digits of the input digest) and exits 0.

Without a quorum by the network's deadline it prints the verdict (who agreed
on what, who differed and in which files, who did not answer) and exits 1.

The command trusts the node for nothing: it computes the spec's input digest
itself and refuses a node that answers another, and it checks the proof
bundle against the network policy (--policy: the checkpoint is final under
it, includes the entry, and the entry, for this spec's input, is attested by
a majority of the policy's build nodes) before it writes it; otherwise it
exits 1.

The node signs a request as its requester only with its API token, the file
api.token in its data folder: --data is the node's data folder (or give
--token-file). With --key instead, the request is signed here with the
requester's own cosign key (its password from COSIGN_PASSWORD) and the node
only gossips it: the network admits it if the policy lists the key among its
requesters (or build nodes), or is open; the node refuses any other at once
(exit 2).

A spec from the network may not name local files: its source is a URL (an
archive with its sha256, or a git commit).

Verify the artifact with the policy alone:
   pyrsia-build verify --policy policy.json --bundle PREFIX.proof.json ARTIFACT

Examples:
   pyrsia-build publish --node 127.0.0.1:7881 --data nodes/a --policy policy.json hello.yaml
   pyrsia-build publish --node 127.0.0.1:7881 --data nodes/a --policy policy.json -o hello.proof.json hello.yaml
   COSIGN_PASSWORD=... pyrsia-build publish --node 127.0.0.1:7881 --key me.key --policy policy.json hello.yaml`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "node", Required: true, Usage: "the build node's API `HOST:PORT` (or URL)"},
			&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the proof bundle to `FILE`"},
			&cli.StringFlag{Name: "policy", Usage: "the network policy `FILE` the proof bundle is checked against (required)"},
			&cli.StringFlag{Name: "data", Usage: "the node's data `DIR` (its API token is DIR/" + node.APITokenFile + ")"},
			&cli.StringFlag{Name: "token-file", Usage: "read the node's API token from `FILE` instead"},
			&cli.BoolFlag{Name: "json", Usage: "print one JSON object a line: {type: input}, the node's events (vote, published, final, verdict), then {type: proof}"},
			&cli.StringFlag{Name: "key", Usage: "sign the request with the requester's cosign private key `FILE` (a key the policy lists as a requester, or any key when it is open); the node only passes it on"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 1 {
				return inputErr(fmt.Errorf("publish takes one SPEC, got %d arguments", c.NArg()), "run 'pyrsia-build publish --help' for usage")
			}
			base, err := nodeURL(c.String("node"))
			if err != nil {
				return err
			}
			if c.String("policy") == "" {
				return inputErr(errors.New("--policy is required: the proof bundle is checked against the network policy before it is written"),
					"give the network's policy file, e.g. --policy policy.json")
			}
			p, err := policy.Load(c.String("policy"))
			if err != nil {
				return inputErr(err)
			}
			if _, err := p.Trust(); err != nil {
				return inputErr(err)
			}
			var token string
			var requester *attest.Signer
			if k := c.String("key"); k != "" {
				if c.String("data") != "" || c.String("token-file") != "" {
					return inputErr(errors.New("--key signs the request as its requester: --data and --token-file (the node's API token, for a request the node signs) do not go with it"))
				}
				if requester, err = loadSigner(c.Context, k, c.App.ErrWriter); err != nil {
					return err
				}
			} else if token, err = apiToken(c.String("data"), c.String("token-file")); err != nil {
				return err
			}
			spec, err := attest.ReadFileLimited(c.Args().First(), 1<<20)
			if err != nil {
				return inputErr(fmt.Errorf("spec: %w", err))
			}
			// Only the input digest is computed here: the node checks the
			// rules for specs from the network, with its operator's
			// allowed source hosts, and its refusal is reported.
			parsed, err := builder.ParseSpec(spec)
			if err != nil {
				return inputErr(fmt.Errorf("spec %s: %w", c.Args().First(), err))
			}
			input, err := parsed.InputDigest()
			if err != nil {
				return inputErr(fmt.Errorf("spec %s: %w", c.Args().First(), err))
			}
			var out struct {
				InputDigest string `json:"inputDigest"`
				Error       string `json:"error"`
			}
			if requester != nil {
				// Signed here, with the requester's own key: the node
				// only gossips it, and the network admits it by the
				// policy's requesters (or an open policy).
				canon, err := parsed.CanonicalJSON()
				if err != nil {
					return inputErr(fmt.Errorf("spec %s: %w", c.Args().First(), err))
				}
				req, err := quorum.NewBuildRequest(quorum.RequestOptions{Policy: p.Digest(), Spec: canon, Signer: requester, IncludeKey: p.Open})
				if err != nil {
					return inputErr(err)
				}
				b, err := req.Marshal()
				if err != nil {
					return inputErr(err)
				}
				hdr := http.Header{"Content-Type": {"application/json"}}
				if err := nodeCallHeader(c.Context, http.MethodPost, base+"/v1/requests", hdr, bytes.NewReader(b), &out); err != nil {
					return err
				}
			} else {
				hdr := http.Header{"Content-Type": {"application/yaml"}, "Authorization": {"Bearer " + token}}
				if err := nodeCallHeader(c.Context, http.MethodPost, base+"/v1/publish", hdr, bytes.NewReader(spec), &out); err != nil {
					return err
				}
			}
			if out.InputDigest != input {
				return failed(fmt.Errorf("the node answered input digest %q for the spec, whose input digest is %s", out.InputDigest, input),
					"the node at --node is faulty or not a pyrsia-build node; nothing was followed or written")
			}
			w := c.App.Writer
			asJSON := c.Bool("json")
			if asJSON {
				json.NewEncoder(w).Encode(map[string]any{"type": "input", "input": out.InputDigest})
			} else {
				fmt.Fprintf(w, "input     %s\n", out.InputDigest)
			}
			ev, err := followRound(c.Context, base, out.InputDigest, w, asJSON)
			if err != nil {
				return err
			}
			if ev.Type == node.EventVerdict {
				return failed(errors.New(ev.Verdict.Text), "the artifact is not published; 'pyrsia-build status "+out.InputDigest+" --node "+c.String("node")+"' shows the verdict again")
			}
			req, err := http.NewRequestWithContext(c.Context, http.MethodGet, base+"/v1/proof/"+out.InputDigest, nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return inputErr(fmt.Errorf("fetching the proof bundle: %w", err))
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(io.LimitReader(resp.Body, publish.MaxProofBundleSize+1))
			if err != nil || resp.StatusCode != http.StatusOK {
				return inputErr(fmt.Errorf("fetching the proof bundle: %s %s %v", resp.Status, bytes.TrimSpace(b), err))
			}
			pb, err := publish.ParseProofBundle(bytes.TrimSpace(b))
			if err != nil {
				return failed(fmt.Errorf("the node's proof bundle: %w", err), "nothing was written")
			}
			// The policy is the network's first: the bundle's policy
			// changes lead to the policy in force at the entry.
			chain, _, err := publish.FollowBundle(pb, p)
			if err == nil {
				_, cpTrust := chain.ForCheckpoint(pb.TreeSize)
				_, entryTrust := chain.At(pb.Index)
				err = verifyPublished(c.Context, pb, cpTrust, entryTrust, input)
			}
			if err != nil {
				return failed(fmt.Errorf("the node's proof bundle does not hold under the policy %s: %w", c.String("policy"), err), "nothing was written")
			}
			path := c.String("output")
			if path == "" {
				path = strings.TrimPrefix(input, "sha256:")[:12] + ".proof.json"
			}
			if err := writeFileAtomic(path, b, 0o644); err != nil {
				return err
			}
			if asJSON {
				return json.NewEncoder(w).Encode(map[string]any{"type": "proof", "input": input, "index": pb.Index, "treeSize": pb.TreeSize, "proof": path})
			}
			fmt.Fprintf(w, "published entry %d, final checkpoint of size %d\n", pb.Index, pb.TreeSize)
			fmt.Fprintf(w, "proof     %s\n", path)
			return nil
		},
	}
}

// verifyPublished checks a proof bundle under trust, without the
// artifacts (the build nodes have them): its checkpoint is final, it
// includes the entry, and the entry is for input and certified by the
// policy's build nodes (publish.VerifyEntry). 'pyrsia-build verify' then
// checks an artifact against it (publish.VerifyProof).
func verifyPublished(ctx context.Context, pb *publish.ProofBundle, cpTrust, trust *policy.Trust, input string) error {
	cp, _, err := cpTrust.VerifyCheckpoint([]byte(pb.Checkpoint))
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	if cp.Size != pb.TreeSize {
		return fmt.Errorf("checkpoint is for %d entries, the proof for %d", cp.Size, pb.TreeSize)
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, pb.Index, pb.TreeSize, publish.LeafHash(pb.RawEntry), pb.InclusionProof, cp.Hash); err != nil {
		return fmt.Errorf("entry %d is not in the tree of %d entries: %w", pb.Index, pb.TreeSize, err)
	}
	e, err := pb.Entry()
	if err != nil {
		return err
	}
	if e.InputDigest != input {
		return fmt.Errorf("the bundle's entry is for input %s, not this spec's %s", e.InputDigest, input)
	}
	if _, err := publish.VerifyEntry(ctx, e, trust); err != nil {
		return err
	}
	return nil
}

// nodeURL turns --node into the API's base URL.
func nodeURL(s string) (string, error) {
	if !strings.Contains(s, "://") {
		s = "http://" + s
	}
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", inputErr(fmt.Errorf("--node %q is not HOST:PORT or an http URL", s), "give the API address a node prints at start, e.g. --node 127.0.0.1:7888")
	}
	return strings.TrimSuffix(u.String(), "/"), nil
}

// apiToken reads a node's API token: from tokenFile, or from the node's
// data folder.
func apiToken(data, tokenFile string) (string, error) {
	if tokenFile == "" && data == "" {
		return "", inputErr(errors.New("the node's API token is needed: give --data, the node's data folder, or --token-file"),
			"the node writes its token to DATA/"+node.APITokenFile+" when it starts")
	}
	if tokenFile == "" {
		tokenFile = filepath.Join(data, node.APITokenFile)
	}
	b, err := attest.ReadFileLimited(tokenFile, 4096)
	if err != nil {
		return "", inputErr(fmt.Errorf("the node's API token: %w", err), "is the node running with --data "+data+"? it writes the token when it starts")
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", inputErr(fmt.Errorf("the node's API token %s is empty", tokenFile))
	}
	return tok, nil
}

// nodeCall sends a request to a node's API and decodes its JSON answer.
func nodeCall(ctx context.Context, method, u string, body io.Reader, out any) error {
	return nodeCallHeader(ctx, method, u, nil, body, out)
}

// nodeCallHeader is nodeCall with request headers.
func nodeCallHeader(ctx context.Context, method, u string, hdr http.Header, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return inputErr(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return inputErr(fmt.Errorf("asking the node: %w", err), "is the node running? its API address is printed at its start")
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		return inputErr(fmt.Errorf("reading the node's answer: %w", err))
	}
	if resp.StatusCode >= 400 && resp.StatusCode != http.StatusNotFound {
		var e struct{ Error string }
		json.Unmarshal(b, &e)
		if e.Error == "" {
			e.Error = string(bytes.TrimSpace(b))
		}
		return inputErr(fmt.Errorf("the node refused: %s", e.Error))
	}
	if err := json.Unmarshal(b, out); err != nil {
		return inputErr(fmt.Errorf("the node's answer is not JSON: %w", err))
	}
	return nil
}

// followRound prints a round's events until it ends and returns the last;
// asJSON prints each as one line of JSON (re-encoded: the node is not
// trusted to send one line).
func followRound(ctx context.Context, base, input string, w io.Writer, asJSON bool) (*node.Event, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/v1/publish/"+input+"/events", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, inputErr(fmt.Errorf("following the round: %w", err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, inputErr(fmt.Errorf("following the round: %s", resp.Status))
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue // keep-alive
		}
		var ev node.Event
		if err := json.Unmarshal(line, &ev); err != nil {
			return nil, inputErr(fmt.Errorf("the node sent an event that is not JSON: %w", err))
		}
		t := ev.Time.Local().Format(time.TimeOnly)
		if asJSON {
			json.NewEncoder(w).Encode(&ev)
			if ev.Type == node.EventFinal || ev.Type == node.EventVerdict {
				return &ev, nil
			}
			continue
		}
		switch ev.Type {
		case node.EventVote:
			if ev.Error != "" {
				fmt.Fprintf(w, "%s  vote  %-10s failed: %s\n", t, ev.Node, ev.Error)
			} else {
				fmt.Fprintf(w, "%s  vote  %-10s %s\n", t, ev.Node, strings.Join(ev.Subjects, " "))
			}
		case node.EventPublished:
			fmt.Fprintf(w, "%s  quorum: appended as entry %d; waiting for the cosignatures\n", t, *ev.Index)
		case node.EventFinal:
			fmt.Fprintf(w, "%s  final: checkpoint of size %d cosigned by a majority\n", t, *ev.Size)
			return &ev, nil
		case node.EventVerdict:
			fmt.Fprintf(w, "%s  verdict: %s\n", t, ev.Verdict.Text)
			return &ev, nil
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return nil, inputErr(fmt.Errorf("following the round: %w", err))
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, inputErr(errors.New("the node closed the event stream before the round ended (it stopped?)"))
}
