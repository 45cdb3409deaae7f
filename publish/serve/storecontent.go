package serve

import (
	"context"
	"fmt"

	"github.com/pyrsia/pyrsia-build/publish/store"
)

// StoreContent is a [Content] over a node's own [store.Store]: what the
// store holds was checked against its digest when it went in, and is
// checked for damage on disk when it is opened.
type StoreContent struct {
	Store *store.Store
}

// Open opens the blob from the store, and checks its size when one is
// given. A blob the store lacks is an error wrapping fs.ErrNotExist.
func (c StoreContent) Open(ctx context.Context, digest string, size int64) (Blob, error) {
	b, err := c.Store.Open(digest)
	if err != nil {
		return nil, err
	}
	if size >= 0 && b.Size() != size {
		b.Close()
		return nil, fmt.Errorf("serve: %s has %d bytes in the store, not the %d its descriptor says", digest, b.Size(), size)
	}
	return b, nil
}
