package node

import (
	"github.com/pyrsia/pyrsia-build/publish/serve"
	"github.com/pyrsia/pyrsia-build/publish/store"
)

// contentFor returns the Content a regular node serves from: its store.
func (r *Regular) contentFor(st *store.Store) (serve.Content, error) {
	return serve.StoreContent{Store: st}, nil
}
