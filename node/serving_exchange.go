package node

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pyrsia/pyrsia-build/publish/exchange"
	"github.com/pyrsia/pyrsia-build/publish/store"
)

// newExchange starts the content exchange of a node's store on h, in the
// DHT namespace of the network whose policy digest is policyDigest.
// Build nodes run the DHT as servers.
func newExchange(ctx context.Context, h host.Host, policyDigest string, st *store.Store, boot []peer.AddrInfo, server bool, log *slog.Logger) (*exchange.Exchange, error) {
	ns := strings.TrimPrefix(policyDigest, "sha256:")
	if len(ns) > 16 {
		ns = ns[:16]
	}
	x, err := exchange.New(ctx, exchange.Options{Host: h, Namespace: ns, Store: st, Bootstrap: boot, Server: server, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	return x, nil
}
