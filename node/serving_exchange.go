package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pyrsia/pyrsia-build/publish/exchange"
	"github.com/pyrsia/pyrsia-build/publish/serve"
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
	x, err := exchange.New(ctx, exchange.Options{Host: h, Namespace: ns, Store: exchangeStore{st}, Bootstrap: boot, Server: server, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	return x, nil
}

// exchangeStore is a store.Store as the exchange's Store.
type exchangeStore struct{ s *store.Store }

func (e exchangeStore) Has(digest string) bool { return e.s.Has(digest) }

func (e exchangeStore) Open(digest string) (serve.Blob, error) {
	b, err := e.s.Open(digest)
	if err != nil {
		return nil, err
	}
	return b, nil
}

func (e exchangeStore) Create(digest string, size int64) (exchange.Writer, error) {
	w, err := e.s.Create(digest, size)
	if err != nil {
		return nil, err
	}
	return exchangeWriter{w}, nil
}

func (e exchangeStore) Put(ctx context.Context, digest string, size int64, r io.Reader) error {
	return digestErr(e.s.Put(ctx, digest, size, r))
}

type exchangeWriter struct{ *store.Writer }

func (w exchangeWriter) Commit() error { return digestErr(w.Writer.Commit()) }

// digestErr makes the store's digest mismatch the exchange's.
func digestErr(err error) error {
	var de *store.DigestError
	if errors.As(err, &de) {
		return fmt.Errorf("%w: %w", exchange.ErrDigest, err)
	}
	return err
}
