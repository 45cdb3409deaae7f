package node

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/logservice"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// CosignProtocol is the libp2p protocol on which a build node asks another
// for its cosignature on a checkpoint of the network's log.
//
// The requester sends one JSON object, {"version":1,"checkpoint":NOTE}, with
// NOTE its checkpoint signed by its own log key; the answer is one JSON
// object, {"version":1,"signature":{"name":..,"hash":..,"base64":..}} or
// {"version":1,"error":TEXT,"latest":N}. Each is at most
// maxCosignMessage bytes.
//
// Every build node applies the same entries in the same (Raft) order, so
// the checkpoint body (origin, size, root) at a size is the same on every
// replica, and a cosignature/v1 signature, which covers the body alone, is
// valid on any node's note of it. The answering node therefore vouches for
// the body from its own replica: it waits until its log has the size,
// checks that the offered root is its own root at that size (a consistency
// proof from its own log to its own latest root), and has its own
// [witness.Cosigner] cosign the body, signed by its own log key, which also
// checks that it extends the last checkpoint this node cosigned. It trusts
// nothing the requester sends but the size to look at.
const CosignProtocol protocol.ID = "/pyrsia-build/cosign/1"

const maxCosignMessage = publish.MaxCheckpointSize + 4096

type cosignRequest struct {
	Version    int    `json:"version"`
	Checkpoint string `json:"checkpoint"`
}

type cosignResponse struct {
	Version   int             `json:"version"`
	Signature *note.Signature `json:"signature,omitempty"`
	Error     string          `json:"error,omitempty"`
	Latest    uint64          `json:"latest,omitempty"`
}

// CosignServer answers [CosignProtocol] requests with this node's
// cosignature, from its own replica of the log.
type CosignServer struct {
	Service *logservice.Service
	// Origin is the log's origin (the network's name).
	Origin string
	// LogVerifiers are the policy's build nodes' log keys: a request must
	// carry a note signed by one of them.
	LogVerifiers []note.Verifier
	// LogVerifiersFor, when set, returns them instead of LogVerifiers at
	// each request: the log keys of the policy in force.
	LogVerifiersFor func() []note.Verifier
	// Signer is this node's log signer; Cosigner its witness.
	Signer   note.Signer
	Cosigner *witness.Cosigner
	// Admit says whether a peer is one of the policy's build nodes: only
	// those are answered (the connection gater keeps strangers out too;
	// this holds without it). Nil answers no one.
	Admit func(peer.ID) bool
	// Wait bounds how long a request waits for this replica to reach the
	// offered size (default 5s).
	Wait   time.Duration
	Logger *slog.Logger
}

// Register sets s as h's handler of [CosignProtocol].
func (s *CosignServer) Register(h host.Host) {
	h.SetStreamHandler(CosignProtocol, s.handle)
}

func (s *CosignServer) handle(st network.Stream) {
	defer st.Close()
	st.SetDeadline(time.Now().Add(s.wait() + 10*time.Second))
	var req cosignRequest
	resp := cosignResponse{Version: 1}
	if p := st.Conn().RemotePeer(); s.Admit == nil || !s.Admit(p) {
		resp.Error = fmt.Sprintf("peer %s is not a build node of this network", p)
		s.logger().Warn("refused a cosign request from a peer outside the policy", "peer", p.String())
	} else if err := readJSON(st, &req); err != nil {
		resp.Error = err.Error()
	} else {
		ctx, cancel := context.WithTimeout(context.Background(), s.wait()+5*time.Second)
		sig, latest, err := s.Cosign(ctx, []byte(req.Checkpoint))
		cancel()
		if err != nil {
			resp.Error, resp.Latest = err.Error(), latest
			s.logger().Debug("refused to cosign", "peer", st.Conn().RemotePeer().String(), "err", err)
		} else {
			resp.Signature = &sig
		}
	}
	b, _ := json.Marshal(resp)
	st.Write(b)
}

func (s *CosignServer) wait() time.Duration {
	if s.Wait > 0 {
		return s.Wait
	}
	return 5 * time.Second
}

func (s *CosignServer) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.Default()
}

// Cosign checks the checkpoint note against this replica and returns this
// node's cosignature on its body. On a refusal because this node has
// cosigned a later checkpoint, latest is that checkpoint's size.
func (s *CosignServer) Cosign(ctx context.Context, cpNote []byte) (sig note.Signature, latest uint64, err error) {
	vs := s.LogVerifiers
	if s.LogVerifiersFor != nil {
		vs = s.LogVerifiersFor()
	}
	n, err := note.Open(cpNote, note.VerifierList(vs...))
	if err != nil {
		return sig, 0, fmt.Errorf("node: checkpoint is not signed by a build node's log key of this network: %w", err)
	}
	cp, err := witness.ParseCheckpointText([]byte(n.Text))
	if err != nil {
		return sig, 0, fmt.Errorf("node: %w", err)
	}
	if cp.Origin != s.Origin {
		return sig, 0, fmt.Errorf("node: checkpoint is for log %q, this network's log is %q", cp.Origin, s.Origin)
	}
	if cp.Size == 0 {
		return sig, 0, errors.New("node: will not cosign an empty log")
	}
	wctx, cancel := context.WithTimeout(ctx, s.wait())
	own, err := s.Service.WaitSigned(wctx, cp.Size)
	cancel()
	if err != nil {
		return sig, 0, fmt.Errorf("node: this replica is behind: %w", err)
	}
	l := s.Service.Log()
	var p [][]byte
	if own.Size > cp.Size {
		if p, err = l.ConsistencyProof(ctx, cp.Size, own.Size); err != nil {
			return sig, 0, fmt.Errorf("node: proving the offered checkpoint against this replica: %w", err)
		}
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, cp.Size, own.Size, p, cp.Hash, own.Hash); err != nil {
		return sig, 0, fmt.Errorf("node: the offered checkpoint of size %d, root %s, is not this replica's (the requester's log differs from ours)",
			cp.Size, base64.StdEncoding.EncodeToString(cp.Hash))
	}
	mine, err := witness.SignCheckpoint(s.Signer, *cp)
	if err != nil {
		return sig, 0, fmt.Errorf("node: %w", err)
	}
	sig, err = s.Cosigner.Cosign(ctx, mine, l)
	if err != nil {
		return sig, s.lastCosigned(), fmt.Errorf("node: %w", err)
	}
	return sig, 0, nil
}

// lastCosigned returns the size of the checkpoint this node cosigned last.
func (s *CosignServer) lastCosigned() uint64 {
	last := s.Cosigner.Last()
	if last == nil {
		return 0
	}
	text, _, _ := bytes.Cut(last, []byte("\n\n"))
	cp, err := witness.ParseCheckpointText(append(text, '\n'))
	if err != nil {
		return 0
	}
	return cp.Size
}

// PeerCosigner asks one other build node for its cosignature over
// [CosignProtocol]. It is a [logservice.Cosigner].
type PeerCosigner struct {
	Host host.Host
	Peer peer.ID
	// Name is the peer's node name, for messages.
	Name string
	// Verifier is the peer's cosignature/v1 verifier: an answer that does
	// not verify with it is refused.
	Verifier note.Verifier
}

var _ logservice.Cosigner = (*PeerCosigner)(nil)

// Cosign sends the checkpoint note to the peer and returns its
// cosignature. The peer uses its own replica, not src.
func (c *PeerCosigner) Cosign(ctx context.Context, cpNote []byte, _ witness.ProofSource) (note.Signature, error) {
	n, err := note.Open(cpNote, nil)
	var unverified *note.UnverifiedNoteError
	if errors.As(err, &unverified) {
		n, err = unverified.Note, nil
	}
	if err != nil {
		return note.Signature{}, fmt.Errorf("node: cosigner %s: %w", c.Name, err)
	}
	st, err := c.Host.NewStream(network.WithAllowLimitedConn(ctx, "cosign"), c.Peer, CosignProtocol)
	if err != nil {
		return note.Signature{}, fmt.Errorf("node: cosigner %s: %w", c.Name, err)
	}
	defer st.Close()
	if d, ok := ctx.Deadline(); ok {
		st.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	b, _ := json.Marshal(cosignRequest{Version: 1, Checkpoint: string(cpNote)})
	if _, err := st.Write(b); err != nil {
		return note.Signature{}, fmt.Errorf("node: cosigner %s: sending: %w", c.Name, err)
	}
	if err := st.CloseWrite(); err != nil {
		return note.Signature{}, fmt.Errorf("node: cosigner %s: sending: %w", c.Name, err)
	}
	var resp cosignResponse
	if err := readJSON(st, &resp); err != nil {
		return note.Signature{}, fmt.Errorf("node: cosigner %s: %w", c.Name, err)
	}
	if resp.Error != "" || resp.Signature == nil {
		return note.Signature{}, &RefusedError{Node: c.Name, Reason: resp.Error, Latest: resp.Latest}
	}
	sig := *resp.Signature
	if !verifySig(n.Text, sig, c.Verifier) {
		return note.Signature{}, fmt.Errorf("node: cosigner %s: its cosignature does not verify with its policy key %s", c.Name, c.Verifier.Name())
	}
	return sig, nil
}

// RefusedError is a peer's refusal to cosign.
type RefusedError struct {
	Node   string
	Reason string
	Latest uint64 // the size the peer has cosigned, when it is ahead
}

// CosignedSize returns the size of the checkpoint the peer has cosigned,
// when it refused for being ahead (0 otherwise): the log service then
// waits until its own log reaches it (see logservice.Cosigner).
func (e *RefusedError) CosignedSize() uint64 { return e.Latest }

func (e *RefusedError) Error() string {
	return fmt.Sprintf("node: cosigner %s refused: %s", e.Node, e.Reason)
}

func verifySig(text string, sig note.Signature, v note.Verifier) bool {
	if sig.Name != v.Name() || sig.Hash != v.KeyHash() {
		return false
	}
	n, err := note.Open([]byte(text+"\n"+"— "+sig.Name+" "+sig.Base64+"\n"), note.VerifierList(v))
	return err == nil && len(n.Sigs) == 1
}

// readJSON reads one JSON object of at most maxCosignMessage bytes, the
// whole stream.
func readJSON(r io.Reader, v any) error {
	b, err := io.ReadAll(io.LimitReader(r, maxCosignMessage+1))
	if err != nil {
		return fmt.Errorf("reading message: %w", err)
	}
	if len(b) > maxCosignMessage {
		return fmt.Errorf("message is over %d bytes", maxCosignMessage)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("message is not valid JSON of this protocol: %w", err)
	}
	return nil
}
