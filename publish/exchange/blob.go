package exchange

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// BlobProtocol is the stream protocol over which peers fetch blobs from
// each other. A request is one message of 44 bytes: the blob's sha256 (32
// bytes), the offset (64-bit big-endian) and the length (32-bit
// big-endian, at most [MaxRequestLength]) of the bytes asked for. The
// response is a status byte and, for OK, the blob's size (an unsigned
// varint) and one message: exactly min(length, size-offset) bytes of the
// blob; for status 5, a message of the chunk size (an unsigned varint)
// and a bitmap of the chunks held (chunk i is bit i%8 of byte i/8), at
// most 64 KiB; for another status, a message of at most 1 KiB. Status 1
// (not found) means the peer does not have the blob; 4 (busy) that it is
// serving too many requests; 5 that it is fetching the blob itself and
// does not hold that part yet. A length of 0 asks only for the size.
const BlobProtocol protocol.ID = "/pyrsia-build/blob/1"

const (
	// MaxRequestLength bounds the bytes one blob request asks for.
	MaxRequestLength = 64 << 20
	// blobRequestSize is the size of a blob request's message.
	blobRequestSize = 32 + 8 + 4
)

// blobRequest asks for length bytes at offset of the blob with sha256 sum.
type blobRequest struct {
	sum    [32]byte
	offset uint64
	length uint32
}

func (r blobRequest) digest() string { return "sha256:" + hex.EncodeToString(r.sum[:]) }

// parseDigest parses "sha256:<64 lowercase hex>".
func parseDigest(digest string) ([32]byte, error) {
	var sum [32]byte
	h, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(h) != 64 || strings.ToLower(h) != h {
		return sum, fmt.Errorf("exchange: digest %q: want sha256: and 64 lowercase hex digits", quoteShort(digest))
	}
	if _, err := hex.Decode(sum[:], []byte(h)); err != nil {
		return sum, fmt.Errorf("exchange: digest %q: want sha256: and 64 lowercase hex digits", quoteShort(digest))
	}
	return sum, nil
}

func quoteShort(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

func writeBlobRequest(w *bufio.Writer, req blobRequest) error {
	var b [blobRequestSize]byte
	copy(b[:32], req.sum[:])
	binary.BigEndian.PutUint64(b[32:], req.offset)
	binary.BigEndian.PutUint32(b[40:], req.length)
	if err := writeMessage(w, b[:]); err != nil {
		return err
	}
	return w.Flush()
}

// readBlobRequest reads and checks a blob request.
func readBlobRequest(r *bufio.Reader) (blobRequest, error) {
	var req blobRequest
	b, err := readMessage(r, blobRequestSize)
	if err != nil {
		return req, fmt.Errorf("exchange: blob request: %w", err)
	}
	if len(b) != blobRequestSize {
		return req, fmt.Errorf("exchange: blob request: %w: %d bytes, want %d (sha256, offset, length)", ErrMalformed, len(b), blobRequestSize)
	}
	copy(req.sum[:], b)
	req.offset = binary.BigEndian.Uint64(b[32:])
	req.length = binary.BigEndian.Uint32(b[40:])
	if req.length > MaxRequestLength {
		return req, fmt.Errorf("exchange: blob request: %w: %d bytes asked for, over the %d byte limit: ask in parts", ErrTooLarge, req.length, MaxRequestLength)
	}
	return req, nil
}

// errViolation is wrapped by the errors for a response that breaks the
// protocol (a wrong length, another size than announced): the peer is
// not asked again.
var errViolation = errors.New("breaks the blob protocol")

// readBlobHeader reads a blob response up to its bytes: it returns the
// blob's size and the number of bytes that follow, which it checked to be
// what req asks for.
func readBlobHeader(r *bufio.Reader, req blobRequest) (size int64, n int64, err error) {
	if err := readStatus(r); err != nil {
		return 0, 0, err
	}
	s, err := binary.ReadUvarint(r)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: blob size: %w", ErrMalformed, noEOF(err))
	}
	if s > 1<<62 {
		return 0, 0, fmt.Errorf("%w: %w: blob size %d", errViolation, ErrMalformed, s)
	}
	if req.offset > s {
		return 0, 0, fmt.Errorf("%w: answered for offset %d of a %d byte blob", errViolation, req.offset, s)
	}
	want := min(uint64(req.length), s-req.offset)
	n, err = readLength(r, int64(req.length))
	if err != nil {
		return 0, 0, fmt.Errorf("%w: %w", errViolation, err)
	}
	if uint64(n) != want {
		return 0, 0, fmt.Errorf("%w: %d bytes announced, want %d (%d at offset %d of %d)", errViolation, n, want, req.length, req.offset, s)
	}
	return int64(s), n, nil
}

// readBlobResponse reads a whole blob response to req into memory.
func readBlobResponse(r *bufio.Reader, req blobRequest) (size int64, b []byte, err error) {
	size, n, err := readBlobHeader(r, req)
	if err != nil {
		return 0, nil, err
	}
	b = make([]byte, n)
	if k, err := io.ReadFull(r, b); err != nil {
		return 0, nil, fmt.Errorf("%d of %d bytes: %w", k, n, noEOF(err))
	}
	return size, b, nil
}

// writeBlobHeader writes an OK response's status, size and length.
func writeBlobHeader(w *bufio.Writer, size, n int64) error {
	var b [1 + 2*binary.MaxVarintLen64]byte
	b[0] = statusOK
	k := 1 + binary.PutUvarint(b[1:], uint64(size))
	k += binary.PutUvarint(b[k:], uint64(n))
	_, err := w.Write(b[:k])
	return err
}

// serveTimeout bounds the serving of one blob request.
const serveTimeout = 2 * time.Minute

func (x *Exchange) handleBlob(st network.Stream) {
	defer st.Close()
	ctx, cancel := context.WithTimeout(x.ctx, serveTimeout)
	defer cancel()
	st.SetDeadline(time.Now().Add(serveTimeout))
	log := x.log.With("protocol", string(BlobProtocol), "peer", st.Conn().RemotePeer().String())
	r := bufio.NewReaderSize(st, 128)
	req, err := readBlobRequest(r)
	if err != nil {
		log.DebugContext(ctx, "bad blob request", "err", err)
		writeStatus(st, statusBad, err.Error())
		return
	}
	digest := req.digest()
	select {
	case x.uploads <- struct{}{}:
		defer func() { <-x.uploads }()
	default:
		writeStatus(st, statusBusy, "serving too many requests: ask again or elsewhere")
		return
	}
	w, ok := x.writers.Get().(*bufio.Writer)
	if !ok {
		w = bufio.NewWriterSize(st, 256<<10)
	}
	w.Reset(st)
	n, err := x.serveBlob(w, digest, req)
	if err == nil {
		err = w.Flush()
	}
	w.Reset(nil)
	x.writers.Put(w)
	x.served.Add(n)
	if err != nil {
		log.DebugContext(ctx, "serving a blob", "digest", digest, "err", err)
		st.Reset()
	}
}

// serveBlob writes the response to req: from the store, or from a fetch
// in progress. It returns the blob bytes it wrote.
func (x *Exchange) serveBlob(w *bufio.Writer, digest string, req blobRequest) (int64, error) {
	if x.store.Has(digest) {
		b, err := x.store.Open(digest)
		if err == nil {
			defer b.Close()
			size := b.Size()
			if req.offset > uint64(size) {
				return 0, writeStatus(w, statusBad, fmt.Sprintf("offset %d is beyond the blob's %d bytes", req.offset, size))
			}
			n := min(int64(req.length), size-int64(req.offset))
			if err := writeBlobHeader(w, size, n); err != nil {
				return 0, err
			}
			return io.Copy(w, io.NewSectionReader(b, int64(req.offset), n))
		}
		if !errors.Is(err, fs.ErrNotExist) { // evicted meanwhile: maybe fetching
			return 0, writeStatus(w, statusError, "reading the blob from the store failed")
		}
	}
	if d := x.active(digest); d != nil {
		if req.offset > uint64(d.size) {
			return 0, writeStatus(w, statusBad, fmt.Sprintf("offset %d is beyond the blob's %d bytes", req.offset, d.size))
		}
		n := min(int64(req.length), d.size-int64(req.offset))
		parts, ok := d.held(int64(req.offset), n)
		if !ok {
			return 0, writePartial(w, d.haveMap())
		}
		if err := writeBlobHeader(w, d.size, n); err != nil {
			return 0, err
		}
		var sent int64
		for _, p := range parts {
			k, err := w.Write(p)
			sent += int64(k)
			if err != nil {
				return sent, err
			}
		}
		return sent, nil
	}
	return 0, writeStatus(w, statusNotFound, digest+" is not here")
}

// writePartial answers that this node is fetching the blob itself and
// does not hold the part asked for: have is the chunk size and bitmap of
// the parts it holds.
func writePartial(w io.Writer, have []byte) error {
	if _, err := w.Write([]byte{statusPartial}); err != nil {
		return err
	}
	return writeMessage(w, have)
}
