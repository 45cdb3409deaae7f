package node

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// ManifestProtocol is the libp2p protocol on which a build node serves the
// output manifest of one of its builds, so that a disagreement can be
// explained file by file. The request is the input digest and a newline;
// the answer is "ok\n" and manifest.json, or "error: TEXT\n".
const ManifestProtocol protocol.ID = "/pyrsia-build/manifest/1"

// maxManifest bounds an output manifest read or served.
const maxManifest = 32 << 20

type manifestServer struct{ n *Node }

func (s *manifestServer) register(h host.Host) {
	h.SetStreamHandler(ManifestProtocol, s.handle)
}

func (s *manifestServer) handle(st network.Stream) {
	defer st.Close()
	st.SetDeadline(time.Now().Add(30 * time.Second))
	// Only the policy's build nodes (the connection gater keeps strangers
	// out too; this holds without it).
	if p := st.Conn().RemotePeer(); s.n.cur.Load() == nil {
		fmt.Fprintf(st, "error: no network\n")
		return
	} else if _, ok := s.n.net().ByPeer(p); !ok {
		fmt.Fprintf(st, "error: peer %s is not a build node of this network\n", p)
		s.n.log.Warn("refused a manifest request from a peer outside the policy", "peer", p.String())
		return
	}
	line, err := bufio.NewReader(io.LimitReader(st, 128)).ReadString('\n')
	if err != nil {
		fmt.Fprintf(st, "error: reading the request: %v\n", err)
		return
	}
	b, err := s.n.localManifest(strings.TrimSpace(line))
	if err != nil {
		fmt.Fprintf(st, "error: %s\n", strings.ReplaceAll(err.Error(), "\n", " "))
		return
	}
	io.WriteString(st, "ok\n")
	st.Write(b)
}

// fetchManifest asks peer p for its output manifest of input.
func fetchManifest(ctx context.Context, h host.Host, p peer.ID, input string) ([]byte, error) {
	st, err := h.NewStream(ctx, p, ManifestProtocol)
	if err != nil {
		return nil, err
	}
	defer st.Close()
	stop := context.AfterFunc(ctx, func() { st.Reset() })
	defer stop()
	if _, err := io.WriteString(st, input+"\n"); err != nil {
		return nil, err
	}
	st.CloseWrite()
	r := bufio.NewReader(io.LimitReader(st, maxManifest+4096))
	status, err := r.ReadString('\n')
	if err != nil {
		return nil, fmt.Errorf("reading the answer: %w", err)
	}
	if status != "ok\n" {
		return nil, fmt.Errorf("peer answered %q", strings.TrimSpace(status))
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	if len(b) > maxManifest {
		return nil, fmt.Errorf("manifest over %d bytes", maxManifest)
	}
	return b, nil
}
