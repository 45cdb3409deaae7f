package exchange_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"

	"github.com/libp2p/go-libp2p"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pyrsia/pyrsia-build/publish/exchange"
	"github.com/pyrsia/pyrsia-build/publish/store"
)

// Two nodes of one network: the first has a blob and provides it, the
// second opens it, which fetches it from the first, checks it, keeps it in
// its store and provides it onward.
func ExampleExchange_Open() {
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	var cleanup []func()
	defer func() {
		for i := len(cleanup) - 1; i >= 0; i-- {
			cleanup[i]()
		}
	}()
	start := func(boot []peer.AddrInfo) (host.Host, *store.Store, *exchange.Exchange) {
		h, err := libp2p.New(libp2p.ListenAddrStrings("/ip4/127.0.0.1/tcp/0"))
		if err != nil {
			log.Fatal(err)
		}
		dir, err := os.MkdirTemp("", "exchange-example-")
		if err != nil {
			log.Fatal(err)
		}
		st, err := store.Open(dir, store.Options{Logger: quiet})
		if err != nil {
			log.Fatal(err)
		}
		cleanup = append(cleanup, func() { os.RemoveAll(dir) }, func() { h.Close() }, func() { st.Close() })
		x, err := exchange.New(ctx, exchange.Options{
			Host: h, Store: st, Bootstrap: boot, Server: true, Logger: quiet,
			Namespace: "3f2a9c0d51e7b8a4", // the first 16 hex digits of the policy digest
		})
		if err != nil {
			log.Fatal(err)
		}
		cleanup = append(cleanup, func() { x.Close() })
		return h, st, x
	}
	seedHost, seedStore, seed := start(nil)
	_, _, other := start([]peer.AddrInfo{{ID: seedHost.ID(), Addrs: seedHost.Addrs()}})

	blob := []byte("a layer of a published image")
	sum := sha256.Sum256(blob)
	digest := "sha256:" + hex.EncodeToString(sum[:])
	if err := seedStore.Put(ctx, digest, int64(len(blob)), bytes.NewReader(blob)); err != nil {
		log.Fatal(err)
	}
	if err := seed.Provide(ctx, digest); err != nil {
		log.Fatal(err)
	}

	b, err := other.Open(ctx, digest, int64(len(blob)))
	if err != nil {
		log.Fatal(err)
	}
	defer b.Close()
	got, _ := io.ReadAll(b)
	fmt.Printf("%d bytes: %s\n", b.Size(), got)
	// Output: 28 bytes: a layer of a published image
}
