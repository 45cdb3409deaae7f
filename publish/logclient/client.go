package logclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	fmtlog "github.com/transparency-dev/formats/log"
	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/tessera/api/layout"
	"github.com/transparency-dev/tessera/client"
)

// Options configure a [Client].
type Options struct {
	// Trust checks checkpoints: their origin, a log signature by one of
	// Trust.LogVerifiers and, when Trust has Cosigners, that they are
	// final. Nil takes checkpoints unverified (for printing one): entries
	// and proofs are then checked against a root nobody vouched for.
	Trust *policy.Trust
	// Origin, with a nil Trust, is required of checkpoints when not empty.
	Origin string
}

// Client reads a log from a Source and checks every answer: checkpoints
// against the Trust, entries and proofs against a checkpoint's root.
// It is safe for concurrent use.
type Client struct {
	src  Source
	opts Options
}

// New returns a Client reading src.
func New(src Source, opts Options) *Client {
	return &Client{src: src, opts: opts}
}

// Source returns the client's source.
func (c *Client) Source() Source { return c.src }

// Checkpoint is a checkpoint that a Client read and checked.
type Checkpoint struct {
	fmtlog.Checkpoint
	// Note is the signed note, with every signature it carries.
	Note []byte
	// LogKey is the name of the log key whose signature verified, ""
	// without a Trust.
	LogKey string
	// Cosigners are the names of the cosigners whose cosignature
	// verified, when the Trust has cosigners.
	Cosigners []string
}

func (c *Client) fail(what string, err error, hint string) error {
	var e *Error
	if errors.As(err, &e) && e.Source == c.src.String() {
		return err // names the source already
	}
	return &Error{Source: c.src.String(), What: what, Err: err, Hint: hint}
}

// Checkpoint reads the source's latest checkpoint and checks it (see
// [Options.Trust]).
func (c *Client) Checkpoint(ctx context.Context) (*Checkpoint, error) {
	b, err := c.src.ReadCheckpoint(ctx)
	if err != nil {
		hint := "check that the source names a log: the folder, or the URL of the folder, that holds 'checkpoint' and 'tile/'"
		if errors.Is(err, fs.ErrNotExist) {
			hint = "the log has no checkpoint there: check the source, or wait until the log publishes one"
		}
		return nil, c.fail("reading checkpoint", err, hint)
	}
	return c.VerifyCheckpoint(b)
}

// VerifyCheckpoint checks a checkpoint note as Checkpoint does.
func (c *Client) VerifyCheckpoint(b []byte) (*Checkpoint, error) {
	t := c.opts.Trust
	if t == nil {
		cp, err := parseUnverified(b)
		if err != nil {
			return nil, c.fail("", tag(ErrCheckpoint, "checkpoint: %w", trimmed{err}), "the source does not serve a checkpoint: check it")
		}
		if c.opts.Origin != "" && cp.Origin != c.opts.Origin {
			return nil, c.fail("", tag(ErrCheckpoint, "checkpoint is for log %q, want %q", cp.Origin, c.opts.Origin),
				"check the origin asked for, or that the source is the log you mean")
		}
		return &Checkpoint{Checkpoint: *cp, Note: b}, nil
	}
	cp, names, err := t.VerifyCheckpoint(b)
	if errors.Is(err, witness.ErrNotFinal) {
		return nil, c.fail("", tag(ErrCheckpoint, "%w", trimmed{err}),
			"the build nodes have not cosigned this checkpoint yet (wait and read it again), or a listed cosigner key is not one of theirs")
	}
	if err != nil {
		return nil, c.fail("", tag(ErrCheckpoint, "checkpoint not verified: %w", trimmed{err}),
			"check the log keys and origin given (the log signs with a build node's note key), or that the source is the log you mean")
	}
	out := &Checkpoint{Checkpoint: *cp, Note: b, Cosigners: names}
	for _, v := range t.LogVerifiers {
		if _, _, err := witness.ParseCheckpoint(b, t.Origin, v); err == nil {
			out.LogKey = v.Name()
			break
		}
	}
	return out, nil
}

// parseUnverified parses a checkpoint note's body without checking any
// signature.
func parseUnverified(b []byte) (*fmtlog.Checkpoint, error) {
	n, err := witness.OpenUnverified(b)
	if err != nil {
		return nil, err
	}
	return witness.ParseCheckpointText([]byte(n.Text))
}

// tiles returns a tile fetcher that reads the tiles of the tree of size
// entries, whatever width is asked for (the perfect subtrees of a smaller
// tree are in them too), and checks each tile's shape; and a function that
// returns the first error it met, named by tile (Tessera's client
// flattens errors).
func (c *Client) tiles(size uint64) (client.TileFetcherFunc, func() error) {
	var first error
	f := func(ctx context.Context, level, index uint64, _ uint8) ([]byte, error) {
		p := layout.PartialTileSize(level, index, size)
		b, err := c.src.ReadTile(ctx, level, index, p)
		if err == nil {
			_, err = parseTile(b, width(level, index, size))
			if err != nil {
				err = fmt.Errorf("tile %d/%d (tree size %d): %w", level, index, size, err)
			}
		}
		if err != nil && first == nil {
			first = err
		}
		return b, err
	}
	return f, func() error { return first }
}

// Entry reads the entry at index and its inclusion proof in the tree of
// cp, and checks the proof against cp's root.
func (c *Client) Entry(ctx context.Context, cp *Checkpoint, index uint64) (entry []byte, hashes [][]byte, err error) {
	if index >= cp.Size {
		return nil, nil, c.fail("", tag(ErrOutOfRange, "entry %d is past the end of the log: its checkpoint has size %d", index, cp.Size), lastIndexHint(cp.Size))
	}
	what := fmt.Sprintf("reading entry %d", index)
	entries, err := c.bundle(ctx, index/uint64(bundleWidth), cp.Size)
	if err != nil {
		return nil, nil, c.fail(what, err, hintFor(err))
	}
	entry = entries[index%uint64(bundleWidth)]
	pb, errOf := c.proofBuilder(ctx, cp.Size, cp.Size)
	hashes, err = pb.InclusionProof(ctx, index)
	if err != nil {
		return nil, nil, c.fail(fmt.Sprintf("inclusion proof of entry %d", index), firstErr(errOf(), err), hintFor(errOf()))
	}
	if err := proof.VerifyInclusion(rfc6962.DefaultHasher, index, cp.Size, publish.LeafHash(entry), hashes, cp.Hash); err != nil {
		return nil, nil, c.fail("", tag(ErrProof, "entry %d is not in the tree of its checkpoint (size %d): %w", index, cp.Size, merkleErr(err)), hintOtherSource)
	}
	return entry, hashes, nil
}

const bundleWidth = 256

// bundle reads and parses the entry bundle at n of the tree of size entries.
func (c *Client) bundle(ctx context.Context, n, size uint64) ([][]byte, error) {
	w := width(0, n, size)
	p := uint8(0)
	if w < bundleWidth {
		p = uint8(w)
	}
	b, err := c.src.ReadEntryBundle(ctx, n, p)
	if err != nil {
		return nil, fmt.Errorf("entry bundle %d: %w", n, err)
	}
	entries, err := parseBundle(b, w)
	if err != nil {
		return nil, fmt.Errorf("entry bundle %d (tree size %d): %w", n, size, err)
	}
	return entries, nil
}

// proofBuilder returns a proof builder for the tree of size entries that
// reads the tiles of the tree of tileSize entries (at least size).
func (c *Client) proofBuilder(ctx context.Context, size, tileSize uint64) (*client.ProofBuilder, func() error) {
	f, errOf := c.tiles(tileSize)
	pb, _ := client.NewProofBuilder(ctx, size, f) // never fails
	return pb, errOf
}

func firstErr(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func hintFor(err error) string {
	if errors.Is(err, ErrBadResponse) || errors.Is(err, ErrTooLarge) {
		return hintOtherSource
	}
	return ""
}

func lastIndexHint(size uint64) string {
	if size == 0 {
		return "the log is empty"
	}
	return fmt.Sprintf("indexes run from 0 to %d", size-1)
}

// ProofBundle returns the proof bundle of the entry at index against cp:
// the entry, its inclusion proof (checked) and cp's note.
func (c *Client) ProofBundle(ctx context.Context, cp *Checkpoint, index uint64) (*publish.ProofBundle, error) {
	entry, hashes, err := c.Entry(ctx, cp, index)
	if err != nil {
		return nil, err
	}
	return &publish.ProofBundle{
		MediaType:      publish.ProofBundleMediaType,
		RawEntry:       entry,
		Index:          index,
		TreeSize:       cp.Size,
		InclusionProof: hashes,
		Checkpoint:     string(cp.Note),
	}, nil
}

// PolicyChanges returns the log indexes of the policy change entries
// (kind publish.KindPolicy) in cp's tree. It reads every entry, each
// proven included in cp ([Client.Entries]).
func (c *Client) PolicyChanges(ctx context.Context, cp *Checkpoint) ([]uint64, error) {
	var out []uint64
	err := c.Entries(ctx, cp, 0, cp.Size, func(i uint64, e []byte) error {
		if k, err := publish.EntryKind(e); err == nil && k == publish.KindPolicy {
			out = append(out, i)
		}
		return nil
	})
	return out, err
}

// ProofBundleChain returns the proof bundle of the entry at index against
// cp, as [Client.ProofBundle] does, with the policy change entries at
// changes (from [Client.PolicyChanges]; every change in cp's tree, for a
// verifier to follow the chain from the network's first policy) and their
// inclusion proofs, checked. Without changes the bundle is version 1.
func (c *Client) ProofBundleChain(ctx context.Context, cp *Checkpoint, index uint64, changes []uint64) (*publish.ProofBundle, error) {
	pb, err := c.ProofBundle(ctx, cp, index)
	if err != nil {
		return nil, err
	}
	for _, i := range changes {
		if i == index {
			continue
		}
		entry, hashes, err := c.Entry(ctx, cp, i)
		if err != nil {
			return nil, err
		}
		pb.PolicyChanges = append(pb.PolicyChanges, publish.PolicyChangeProof{Index: i, RawEntry: entry, InclusionProof: hashes})
	}
	if len(pb.PolicyChanges) > 0 {
		pb.MediaType = publish.ProofBundleV2MediaType
	}
	return pb, nil
}

// Consistency reads the consistency proof from old's tree to cp's and
// checks it against both roots. old must not be larger than cp. A proof
// that does not verify is ErrProof: either the source's tiles are wrong or
// the two checkpoints are of two diverging logs (a fork, when both are
// signed by the log).
func (c *Client) Consistency(ctx context.Context, old, cp *Checkpoint) ([][]byte, error) {
	what := fmt.Sprintf("consistency proof from size %d to %d", old.Size, cp.Size)
	if old.Size > cp.Size {
		return nil, c.fail(what, tag(ErrOutOfRange, "the older checkpoint is the larger"), "")
	}
	if old.Size == cp.Size || old.Size == 0 {
		if old.Size == cp.Size && !bytes.Equal(old.Hash, cp.Hash) {
			return nil, c.fail(what, tag(ErrProof, "two roots for one size"), "")
		}
		return [][]byte{}, nil
	}
	pb, errOf := c.proofBuilder(ctx, cp.Size, cp.Size)
	hashes, err := pb.ConsistencyProof(ctx, old.Size, cp.Size)
	if err != nil {
		return nil, c.fail(what, firstErr(errOf(), err), hintFor(errOf()))
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, old.Size, cp.Size, hashes, old.Hash, cp.Hash); err != nil {
		return hashes, c.fail(what, tag(ErrProof, "%w", merkleErr(err)), hintOtherSource)
	}
	return hashes, nil
}

// ConsistencyProof returns the consistency proof between two sizes of the
// tree of cp (oldSize <= newSize <= cp.Size), checked: the roots of both
// trees are computed from the source's tiles and each is proven consistent
// with cp's root before the proof between them is checked.
func (c *Client) ConsistencyProof(ctx context.Context, cp *Checkpoint, oldSize, newSize uint64) ([][]byte, error) {
	what := fmt.Sprintf("consistency proof from size %d to %d", oldSize, newSize)
	switch {
	case oldSize > newSize:
		return nil, c.fail(what, tag(ErrOutOfRange, "the old size is the larger"), "")
	case newSize > cp.Size:
		return nil, c.fail("", tag(ErrOutOfRange, "size %d is past the end of the log: its checkpoint has size %d", newSize, cp.Size), "")
	case oldSize == 0 || oldSize == newSize:
		return [][]byte{}, nil
	}
	oldRoot, err := c.rootAt(ctx, cp, oldSize)
	if err != nil {
		return nil, err
	}
	newRoot, err := c.rootAt(ctx, cp, newSize)
	if err != nil {
		return nil, err
	}
	pb, errOf := c.proofBuilder(ctx, newSize, cp.Size)
	hashes, err := pb.ConsistencyProof(ctx, oldSize, newSize)
	if err != nil {
		return nil, c.fail(what, firstErr(errOf(), err), hintFor(errOf()))
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, oldSize, newSize, hashes, oldRoot, newRoot); err != nil {
		return nil, c.fail(what, tag(ErrProof, "%w", merkleErr(err)), hintOtherSource)
	}
	return hashes, nil
}

// rootAt returns the root of the tree of size entries, computed from the
// source's tiles and proven consistent with cp's root.
func (c *Client) rootAt(ctx context.Context, cp *Checkpoint, size uint64) ([]byte, error) {
	root, _, err := c.rootAndProof(ctx, cp, size)
	return root, err
}

// rootAndProof is rootAt that also returns the consistency proof from the
// tree of size entries to cp's.
func (c *Client) rootAndProof(ctx context.Context, cp *Checkpoint, size uint64) ([]byte, [][]byte, error) {
	if size == cp.Size {
		return cp.Hash, [][]byte{}, nil
	}
	what := fmt.Sprintf("root of the tree of size %d", size)
	// The perfect subtrees of the smaller tree, read from the tiles of
	// cp's tree (those of the smaller tree may be gone).
	nr := &nodeReader{c: c, size: cp.Size, tiles: make(map[[2]uint64][][]byte)}
	ids := compact.RangeNodes(0, size, nil)
	nodes := make([][]byte, len(ids))
	for i, id := range ids {
		h, err := nr.node(ctx, id)
		if err != nil {
			return nil, nil, c.fail(what, err, hintFor(err))
		}
		nodes[i] = h
	}
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	r, err := rf.NewRange(0, size, nodes)
	if err != nil {
		return nil, nil, c.fail(what, tag(ErrBadResponse, "%w", err), hintOtherSource)
	}
	root, err := r.GetRootHash(nil)
	if err != nil {
		return nil, nil, c.fail(what, err, "")
	}
	pb, errOf := c.proofBuilder(ctx, cp.Size, cp.Size)
	hashes, err := pb.ConsistencyProof(ctx, size, cp.Size)
	if err != nil {
		return nil, nil, c.fail(what, firstErr(errOf(), err), hintFor(errOf()))
	}
	if err := proof.VerifyConsistency(rfc6962.DefaultHasher, size, cp.Size, hashes, root, cp.Hash); err != nil {
		return nil, nil, c.fail("", tag(ErrProof, "the tree of size %d in the log's tiles is not consistent with its checkpoint (size %d): %w", size, cp.Size, merkleErr(err)), hintOtherSource)
	}
	return root, hashes, nil
}
