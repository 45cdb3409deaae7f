package logclient

import (
	"bytes"
	"context"
	"fmt"

	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api/layout"
)

// Entries calls visit for each entry from index from up to (not including)
// to, in order, each proven to be in the tree of cp first. It reads one
// entry bundle at a time and checks it as a whole: the bundle's leaf
// hashes, appended to the compact range of the tree before it, give the
// root of a tree that a consistency proof ties to cp's root. That proves
// every entry of the bundle included in cp, at the cost of one proof per
// 256 entries. It stops at the first error, from the source or from visit.
func (c *Client) Entries(ctx context.Context, cp *Checkpoint, from, to uint64, visit func(index uint64, entry []byte) error) error {
	what := fmt.Sprintf("entries %d to %d", from, to)
	switch {
	case from > to:
		return c.fail(what, tag(ErrOutOfRange, "the first index is past the last"), "")
	case to > cp.Size:
		return c.fail("", tag(ErrOutOfRange, "entry %d is past the end of the log: its checkpoint has size %d", to-1, cp.Size), lastIndexHint(cp.Size))
	case from == to:
		return nil
	}
	nodes := &nodeReader{c: c, size: cp.Size, tiles: make(map[[2]uint64][][]byte)}
	start := from / bundleWidth * bundleWidth
	ids := compact.RangeNodes(0, start, nil)
	hashes := make([][]byte, len(ids))
	for i, id := range ids {
		h, err := nodes.node(ctx, id)
		if err != nil {
			return c.fail(what, fmt.Errorf("the tree before entry %d: %w", start, err), hintFor(err))
		}
		hashes[i] = h
	}
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r, err := rf.NewRange(0, start, hashes)
	if err != nil {
		return c.fail(what, err, "")
	}
	pb, errOf := c.proofBuilder(ctx, cp.Size, cp.Size)
	for n := start / bundleWidth; n*bundleWidth < to; n++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		first := n * bundleWidth
		end := min(first+bundleWidth, cp.Size)
		bwhat := fmt.Sprintf("entries %d to %d", first, end-1)
		entries, err := c.bundle(ctx, n, cp.Size)
		if err != nil {
			return c.fail(bwhat, err, hintFor(err))
		}
		entries = entries[:end-first]
		for _, e := range entries {
			if err := r.Append(publish.LeafHash(e), nil); err != nil {
				return c.fail(bwhat, err, "")
			}
		}
		root, err := r.GetRootHash(nil)
		if err != nil {
			return c.fail(bwhat, err, "")
		}
		if end < cp.Size {
			p, err := pb.ConsistencyProof(ctx, end, cp.Size)
			if err != nil {
				return c.fail(bwhat, fmt.Errorf("consistency proof from size %d to %d: %w", end, cp.Size, firstErr(errOf(), err)), hintFor(errOf()))
			}
			err = proof.VerifyConsistency(rfc6962.DefaultHasher, end, cp.Size, p, root, cp.Hash)
			if err != nil {
				return c.fail(bwhat, tag(ErrProof, "not in the tree of the checkpoint (size %d): %w", cp.Size, merkleErr(err)), hintOtherSource)
			}
		} else if !bytes.Equal(root, cp.Hash) {
			return c.fail(bwhat, tag(ErrProof, "not in the tree of the checkpoint (size %d): the entries give another root", cp.Size), hintOtherSource)
		}
		for i, e := range entries {
			index := first + uint64(i)
			if index < from || index >= to {
				continue
			}
			if err := visit(index, e); err != nil {
				return err
			}
		}
	}
	return nil
}

// nodeReader reads the hashes of perfect subtrees of the tree of size
// entries from its hash tiles (as Tessera's client does inside its proof
// builder), caching the tiles.
type nodeReader struct {
	c     *Client
	size  uint64
	tiles map[[2]uint64][][]byte
}

func (r *nodeReader) node(ctx context.Context, id compact.NodeID) ([]byte, error) {
	level, index, nodeLevel, nodeIndex := layout.NodeCoordsToTileAddress(uint64(id.Level), id.Index)
	key := [2]uint64{level, index}
	t, ok := r.tiles[key]
	if !ok {
		w := width(level, index, r.size)
		p := uint8(0)
		if w < bundleWidth {
			p = uint8(w)
		}
		b, err := r.c.src.ReadTile(ctx, level, index, p)
		if err != nil {
			return nil, fmt.Errorf("tile %d/%d: %w", level, index, err)
		}
		t, err = parseTile(b, w)
		if err != nil {
			return nil, fmt.Errorf("tile %d/%d (tree size %d): %w", level, index, r.size, err)
		}
		r.tiles[key] = t
	}
	n := uint64(1) << nodeLevel
	lo, hi := nodeIndex*n, (nodeIndex+1)*n
	if hi > uint64(len(t)) {
		return nil, fmt.Errorf("%w: tile %d/%d has %d hashes, node %v needs %d", ErrBadResponse, level, index, len(t), id, hi)
	}
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	cr := rf.NewEmptyRange(0)
	for _, h := range t[lo:hi] {
		if err := cr.Append(h, nil); err != nil {
			return nil, err
		}
	}
	return cr.GetRootHash(nil)
}
