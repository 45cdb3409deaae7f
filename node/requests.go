package node

import (
	"context"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"time"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/quorum"
)

// ErrRequesterNotAllowed is wrapped by the error of a signed request whose
// requester the policy does not admit: its key is not listed, and the
// policy is not open. Use errors.Is.
var ErrRequesterNotAllowed = errors.New("node: requester not allowed by the policy")

// requestSkew is how far a signed request's time may be from this node's
// clock (the gossip validators' replay window).
const requestSkew = 10 * time.Minute

// PublishRequest gossips a build request that its requester signed
// (quorum.BuildRequest JSON: `pyrsia-build publish --key`): this node
// only passes it on. It is admissible as every build node's validator
// will judge it: for this network, signed by a requester the policy lists
// (a build node's key, or one of its requesters), or by any key that the
// request includes when the policy is open, and within the replay window.
// A requester the policy does not admit is an error wrapping
// [ErrRequesterNotAllowed]. It returns the input digest.
func (n *Node) PublishRequest(ctx context.Context, b []byte) (string, error) {
	req, err := quorum.ParseBuildRequest(b)
	if err != nil {
		return "", err
	}
	if req.Policy != n.net().Digest() {
		return "", fmt.Errorf("node: the request is for the network with policy %s, this node's is %s (%s): sign it with this network's policy", req.Policy, n.net().Digest(), n.o.Policy.Name)
	}
	key, listed := n.net().Requester(req.Requester)
	switch {
	case listed:
	case n.net().Open() && len(req.RequesterKey) > 0:
		if key, err = attest.ParsePublicKey("requester", req.RequesterKey); err != nil {
			return "", fmt.Errorf("node: the request's requesterKey: %w", err)
		}
	case n.net().Open():
		return "", fmt.Errorf("%w: the policy %s is open, but the request does not include its requester's public key (requesterKey)", ErrRequesterNotAllowed, n.o.Policy.Name)
	default:
		return "", fmt.Errorf("%w: requester key %s is not one of the policy %s's build nodes or requesters, and the policy is not open: ask the network to add the public key to the policy's requesters",
			ErrRequesterNotAllowed, req.Requester, n.o.Policy.Name)
	}
	if err := req.VerifySignature(key); err != nil {
		return "", err
	}
	if d := time.Since(req.Time); d > requestSkew || d < -requestSkew {
		return "", fmt.Errorf("node: the request was signed at %s, more than %v from this node's clock: sign it again (or check the clocks)", req.Time.UTC().Format(time.RFC3339), requestSkew)
	}
	// The spec under this node's rules for specs from the network: a
	// refusal here is clearer than a failed vote from every node.
	if _, err := n.parseSpec(req.Spec); err != nil {
		return "", err
	}
	if i, ok := n.fsm.Lookup(req.InputDigest); ok {
		n.events.emit(req.InputDigest, Event{Type: EventPublished, Input: req.InputDigest, Index: &i})
		return req.InputDigest, nil
	}
	n.events.reset(req.InputDigest)
	if err := n.publishGossip(ctx, func(ctx context.Context, o quorum.PublishOptions) error {
		return n.gossip.PublishRequest(ctx, req, o)
	}); err != nil {
		return "", err
	}
	n.mine.add(req)
	return req.InputDigest, nil
}

// serveRequest is POST /v1/requests: a signed build request (JSON). It
// needs no API token: the requester's signature is what the network
// admits.
func (n *Node) serveRequest(w http.ResponseWriter, r *http.Request) {
	if why := n.checkLocal(r); why != "" {
		httpErr(w, http.StatusForbidden, errors.New(why))
		return
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		httpErr(w, http.StatusUnsupportedMediaType, fmt.Errorf("Content-Type %q: send the signed request as application/json", r.Header.Get("Content-Type")))
		return
	}
	b, ok := readBody(w, r, quorum.MaxRequestSize, "the request")
	if !ok {
		return
	}
	input, err := n.PublishRequest(r.Context(), b)
	switch {
	case errors.Is(err, ErrRequesterNotAllowed):
		httpErr(w, http.StatusForbidden, err)
		return
	case err != nil:
		httpErr(w, http.StatusBadRequest, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"inputDigest": input})
}
