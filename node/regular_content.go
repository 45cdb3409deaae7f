package node

import (
	"context"

	"github.com/pyrsia/pyrsia-build/publish/serve"
	"github.com/pyrsia/pyrsia-build/publish/store"
)

// contentFor returns the Content a regular node serves from: its store,
// else the peers that provide the blob (the exchange checks each against
// its digest, keeps it in the store and provides it onward).
func (r *Regular) contentFor(st *store.Store) (serve.Content, error) {
	x, err := newExchange(context.Background(), r.host, r.network.Digest(), st, r.o.Bootstrap, false, r.log)
	if err != nil {
		return nil, err
	}
	r.xchg = x
	return x, nil
}
