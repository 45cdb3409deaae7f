package quorum

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/connmgr"
	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/p2p/muxer/yamux"
	"github.com/libp2p/go-libp2p/p2p/net/swarm"
	"github.com/libp2p/go-libp2p/p2p/security/noise"
	libp2ptls "github.com/libp2p/go-libp2p/p2p/security/tls"
	libp2pquic "github.com/libp2p/go-libp2p/p2p/transport/quic"
	"github.com/libp2p/go-libp2p/p2p/transport/tcp"
	ma "github.com/multiformats/go-multiaddr"
)

// maxKeyFileSize bounds a libp2p key file: an Ed25519 key in libp2p's
// protobuf encoding is 68 bytes.
const maxKeyFileSize = 4096

// LoadOrCreateKey reads the node's libp2p identity from path, an Ed25519
// private key in libp2p's protobuf encoding (crypto.MarshalPrivateKey), or,
// when path does not exist, makes one and writes it there (mode 0600, the
// folder is created). It returns the key and its peer id, the id the
// network policy lists for this node.
func LoadOrCreateKey(path string) (crypto.PrivKey, peer.ID, error) {
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return createKey(path)
	case err != nil:
		return nil, "", fmt.Errorf("quorum: reading libp2p key: %w", err)
	}
	if len(data) > maxKeyFileSize {
		return nil, "", fmt.Errorf("quorum: libp2p key %s: %d bytes, not a key file (want an Ed25519 key of 68 bytes)", path, len(data))
	}
	key, err := crypto.UnmarshalPrivateKey(data)
	if err != nil {
		return nil, "", fmt.Errorf("quorum: libp2p key %s: not a libp2p private key (delete it to make a new one, then update the policy's peer id): %w", path, err)
	}
	if key.Type() != crypto.Ed25519 {
		return nil, "", fmt.Errorf("quorum: libp2p key %s: key type %s, want Ed25519", path, key.Type())
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, "", fmt.Errorf("quorum: libp2p key %s: %w", path, err)
	}
	return key, id, nil
}

func createKey(path string) (crypto.PrivKey, peer.ID, error) {
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		return nil, "", fmt.Errorf("quorum: making libp2p key: %w", err)
	}
	data, err := crypto.MarshalPrivateKey(key)
	if err != nil {
		return nil, "", fmt.Errorf("quorum: encoding libp2p key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, "", fmt.Errorf("quorum: making libp2p key: %w", err)
	}
	// O_EXCL: two processes starting at once must not overwrite each
	// other's identity.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, "", fmt.Errorf("quorum: writing libp2p key: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(path)
		return nil, "", fmt.Errorf("quorum: writing libp2p key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return nil, "", fmt.Errorf("quorum: writing libp2p key: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, "", fmt.Errorf("quorum: writing libp2p key: %w", err)
	}
	id, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, "", fmt.Errorf("quorum: libp2p key: %w", err)
	}
	return key, id, nil
}

// HostOptions configure [NewHost].
type HostOptions struct {
	// Key is the node's identity (see [LoadOrCreateKey]). Required.
	Key crypto.PrivKey
	// Listen are multiaddrs to listen on, such as
	// "/ip4/127.0.0.1/tcp/0" and "/ip4/127.0.0.1/udp/0/quic-v1".
	// Empty means both on 127.0.0.1 with a port chosen by the system.
	Listen []string
	// Gater decides which peers may connect. Required: a build node talks
	// only to the build nodes of its policy (see [Gater]).
	Gater *Gater
	// Logger receives the host's start; nil means slog.Default().
	Logger *slog.Logger
	// ConnManager trims connections past its high water mark; nil means
	// libp2p's default (160 to 192 connections). Either way the gater's
	// peers are protected from it (see [ProtectTag]).
	ConnManager connmgr.ConnManager
}

// NewHost starts a libp2p host: TCP and QUIC, TLS 1.3 or Noise (TLS
// preferred: AES-GCM with the CPU's instructions cost less per byte than
// Noise's ChaCha20 here, 0.72 against 0.88-0.92 CPU-s per 200 MiB
// fetched), no relay, admitting the peers o.Gater admits. The caller
// closes it.
//
// It dials a peer's TCP addresses first and its QUIC addresses only
// [quicDialDelay] later (libp2p's default is the other way round): blobs
// and log tiles move between nodes in bulk, and a byte over QUIC cost
// about twice the CPU of one over TCP with Noise and yamux here
// (BENCHMARKS.md, issue 9). Yamux streams open with a 1 MiB window and
// send frames of up to 256 KiB (libp2p's defaults: 256 KiB, 64 KiB): a
// 1 MiB chunk then fills one stream's window at once (6-15% less CPU per
// byte fetched in the same runs).
func NewHost(o HostOptions) (host.Host, error) {
	if o.Key == nil {
		return nil, errors.New("quorum: host: no identity key")
	}
	if o.Gater == nil {
		return nil, errors.New("quorum: host: no connection gater (a build node admits only policy peers)")
	}
	listen := o.Listen
	if len(listen) == 0 {
		listen = []string{"/ip4/127.0.0.1/tcp/0", "/ip4/127.0.0.1/udp/0/quic-v1"}
	}
	for _, a := range listen {
		if _, err := ma.NewMultiaddr(a); err != nil {
			return nil, fmt.Errorf("quorum: host: listen address %q is not a multiaddr (want e.g. /ip4/0.0.0.0/tcp/4001): %w", a, err)
		}
	}
	opts := []libp2p.Option{}
	if o.ConnManager != nil {
		opts = append(opts, libp2p.ConnectionManager(o.ConnManager))
	}
	h, err := libp2p.New(append(opts,
		libp2p.Identity(o.Key),
		libp2p.ListenAddrStrings(listen...),
		libp2p.Transport(tcp.NewTCPTransport),
		libp2p.Transport(libp2pquic.NewTransport),
		libp2p.Security(libp2ptls.ID, libp2ptls.New),
		libp2p.Security(noise.ID, noise.New),
		libp2p.Muxer(yamux.ID, bulkYamux()),
		libp2p.SwarmOpts(swarm.WithDialRanker(tcpFirstRanker)),
		libp2p.ConnectionGater(o.Gater),
		libp2p.DisableRelay(),
		libp2p.DisableMetrics(),
	)...)
	if err != nil {
		return nil, fmt.Errorf("quorum: starting libp2p host on %v: %w", listen, err)
	}
	o.Gater.protectPeers(h.ConnManager())
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	log.Info("libp2p host started", "peer", h.ID().String(), "addrs", fmt.Sprint(h.Addrs()))
	return h, nil
}

// quicDialDelay is how long a dial waits on a peer's TCP addresses before
// it tries its QUIC ones too.
const quicDialDelay = 250 * time.Millisecond

// tcpFirstRanker ranks a peer's addresses for dialing: TCP ones at once,
// QUIC (and any other) ones after quicDialDelay, so QUIC is the fallback
// when TCP is blocked, not the first choice.
func tcpFirstRanker(addrs []ma.Multiaddr) []network.AddrDelay {
	out := make([]network.AddrDelay, 0, len(addrs))
	haveTCP := false
	for _, a := range addrs {
		if _, err := a.ValueForProtocol(ma.P_TCP); err == nil {
			haveTCP = true
			out = append(out, network.AddrDelay{Addr: a})
		}
	}
	delay := time.Duration(0)
	if haveTCP {
		delay = quicDialDelay
	}
	for _, a := range addrs {
		if _, err := a.ValueForProtocol(ma.P_TCP); err != nil {
			out = append(out, network.AddrDelay{Addr: a, Delay: delay})
		}
	}
	return out
}

// bulkYamux is libp2p's yamux with a 1 MiB initial stream window and
// 256 KiB frames, each stream's window accounted in full with the
// resource manager (accountedYamux).
func bulkYamux() network.Multiplexer {
	t := *yamux.DefaultTransport
	t.InitialStreamWindowSize = 1 << 20
	t.MaxMessageSize = 256 << 10
	t.MaxStreamWindowSize = max(t.MaxStreamWindowSize, t.InitialStreamWindowSize)
	return accountedYamux{&t}
}

// yamuxOpenReservation is what go-yamux reserves with the resource manager
// as it opens a stream, whatever the stream's initial window: its own
// default window, 256 KiB. It then grants the peer the configured window
// (1 MiB here) without reserving the rest, so 3/4 of what a stream may
// buffer went unaccounted and the resource manager's memory limits let
// four times as many streams' windows through as they meant to.
const yamuxOpenReservation = 256 << 10

// accountedYamux is a yamux transport whose streams reserve their whole
// initial window as they open, so that the resource manager's memory
// limits bound what streams may buffer: a stream the limits have no room
// for is refused, as go-yamux refuses one whose 256 KiB do not fit.
type accountedYamux struct{ *yamux.Transport }

func (t accountedYamux) NewConn(nc net.Conn, isServer bool, scope network.PeerScope) (network.MuxedConn, error) {
	if extra := int(t.InitialStreamWindowSize) - yamuxOpenReservation; scope != nil && extra > 0 {
		scope = windowScope{PeerScope: scope, extra: extra}
	}
	return t.Transport.NewConn(nc, isServer, scope)
}

// windowScope is a peer scope whose spans (one per yamux stream) add
// extra bytes to their first reservation: the one go-yamux makes for the
// stream's opening window.
type windowScope struct {
	network.PeerScope
	extra int
}

func (s windowScope) BeginSpan() (network.ResourceScopeSpan, error) {
	sp, err := s.PeerScope.BeginSpan()
	if err != nil {
		return nil, err
	}
	return &windowSpan{ResourceScopeSpan: sp, extra: s.extra}, nil
}

type windowSpan struct {
	network.ResourceScopeSpan
	extra  int
	opened atomic.Bool
}

func (s *windowSpan) ReserveMemory(size int, prio uint8) error {
	if !s.opened.Swap(true) {
		size += s.extra
	}
	return s.ResourceScopeSpan.ReserveMemory(size, prio)
}

// AddrInfo returns the host's peer id and listen addresses, as another
// node's bootstrap list takes them.
func AddrInfo(h host.Host) peer.AddrInfo {
	return peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}
}

// ParseBootstrap parses bootstrap peers given as multiaddrs that end in
// /p2p/<peer id>, such as "/ip4/10.0.0.2/tcp/4001/p2p/12D3Koo...".
func ParseBootstrap(addrs []string) ([]peer.AddrInfo, error) {
	var mas []ma.Multiaddr
	for _, a := range addrs {
		m, err := ma.NewMultiaddr(a)
		if err != nil {
			return nil, fmt.Errorf("quorum: bootstrap peer %q is not a multiaddr: %w", a, err)
		}
		mas = append(mas, m)
	}
	infos, err := peer.AddrInfosFromP2pAddrs(mas...)
	if err != nil {
		return nil, fmt.Errorf("quorum: bootstrap peers %v: %w (each must end in /p2p/<peer id>)", addrs, err)
	}
	return infos, nil
}

// Bootstrap connects h to every peer in peers, in parallel. It returns an
// error only when none could be reached: a node may start before its
// peers, and Raft and gossip reconnect on their own once one is known.
func Bootstrap(ctx context.Context, h host.Host, peers []peer.AddrInfo) error {
	if len(peers) == 0 {
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, len(peers))
	for i, p := range peers {
		if p.ID == h.ID() {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.Connect(ctx, p); err != nil {
				errs[i] = fmt.Errorf("%s: %w", p.ID, err)
			}
		}()
	}
	wg.Wait()
	var failed []error
	for _, err := range errs {
		if err != nil {
			failed = append(failed, err)
		}
	}
	if len(failed) == len(peers) {
		return fmt.Errorf("quorum: no bootstrap peer reachable: %w", errors.Join(failed...))
	}
	return nil
}

// Gater is the connection gater of a build node: it admits connections
// only to and from the peer ids of the policy's build nodes, checked after
// the Noise handshake has authenticated the remote peer id (QUIC refuses a
// pre-shared key, so a private network is made this way instead).
//
// # Regular nodes
//
// Regular nodes (which mirror the log and serve artifacts) will connect to
// build nodes too, for tiles and content. They will be admitted by
// [Gater.AllowOthers]: the gater then lets any peer connect, and the build
// protocols admit policy peers themselves: the Raft stream layer closes
// streams from peers outside the policy ([StreamLayer]), gossipsub is told
// by a peer filter to speak the build topics only with policy peers, and
// the topic validators judge every message's signed author. Until then,
// AllowOthers stays false and nothing but a policy build node can even
// complete a connection.
type Gater struct {
	mu          sync.RWMutex
	allowed     map[peer.ID]bool
	allowOthers bool
	refused     atomic.Uint64
	// cm, once a host is made with the gater, protects the admitted
	// peers' connections from its trimming (see protectPeers).
	cm connmgr.ConnManager
}

// ProtectTag is the connection manager's protection tag of the policy's
// build nodes on a node's host.
const ProtectTag = "pyrsia-build:policy"

// protectPeers has cm keep the connections of the admitted peers (and of
// those admitted after each SetPeers): a build node that many regular
// nodes connect to goes past the connection manager's high water mark
// (192 by default) and trims connections, and must never trim those of
// the other build nodes (gossip of votes, Raft, cosigning).
func (g *Gater) protectPeers(cm connmgr.ConnManager) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.cm = cm
	for p := range g.allowed {
		cm.Protect(p, ProtectTag)
	}
}

// NewGater admits the given peers (the policy's build nodes).
func NewGater(peers []peer.ID) *Gater {
	g := &Gater{allowed: make(map[peer.ID]bool)}
	g.SetPeers(peers)
	return g
}

// SetPeers replaces the admitted peers (after a policy change). Open
// connections of peers no longer admitted are not closed here.
func (g *Gater) SetPeers(peers []peer.ID) {
	m := make(map[peer.ID]bool, len(peers))
	for _, p := range peers {
		m[p] = true
	}
	g.mu.Lock()
	if g.cm != nil {
		for p := range g.allowed {
			if !m[p] {
				g.cm.Unprotect(p, ProtectTag)
			}
		}
		for p := range m {
			g.cm.Protect(p, ProtectTag)
		}
	}
	g.allowed = m
	g.mu.Unlock()
}

// AllowOthers lets peers outside the policy connect (see "Regular nodes"
// above); the build protocols still admit only policy peers.
func (g *Gater) AllowOthers(allow bool) {
	g.mu.Lock()
	g.allowOthers = allow
	g.mu.Unlock()
}

// Admits reports whether p is a policy build node.
func (g *Gater) Admits(p peer.ID) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.allowed[p]
}

func (g *Gater) admitsConn(p peer.ID) bool {
	g.mu.RLock()
	defer g.mu.RUnlock()
	return g.allowOthers || g.allowed[p]
}

// InterceptPeerDial implements connmgr.ConnectionGater.
func (g *Gater) InterceptPeerDial(p peer.ID) bool { return g.admitsConn(p) }

// InterceptAddrDial implements connmgr.ConnectionGater.
func (g *Gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return g.admitsConn(p) }

// InterceptAccept implements connmgr.ConnectionGater. The remote peer id is
// not known before the handshake; [Gater.InterceptSecured] decides.
func (g *Gater) InterceptAccept(network.ConnMultiaddrs) bool { return true }

// InterceptSecured implements connmgr.ConnectionGater: the peer id has been
// authenticated by the security handshake.
func (g *Gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	if !g.admitsConn(p) {
		g.refused.Add(1)
		return false
	}
	return true
}

// Refused returns how many connections were refused after the handshake
// because the peer is not a policy build node (for /status).
func (g *Gater) Refused() uint64 { return g.refused.Load() }

// InterceptUpgraded implements connmgr.ConnectionGater.
func (g *Gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }
