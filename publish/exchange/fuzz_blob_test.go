package exchange

import (
	"bufio"
	"bytes"
	"errors"
	"testing"
)

// FuzzBlobRequest: the parser never panics, accepts only 44-byte requests
// within the length limit, and what it accepts writes back the same.
func FuzzBlobRequest(f *testing.F) {
	for _, req := range []blobRequest{{length: 1 << 20}, {offset: 1 << 40, length: MaxRequestLength + 1}, {sum: [32]byte{1, 2, 3}}} {
		var b bytes.Buffer
		writeBlobRequest(bufio.NewWriter(&b), req)
		f.Add(b.Bytes())
	}
	f.Add([]byte{43, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		req, err := readBlobRequest(bufio.NewReader(bytes.NewReader(in)))
		if err != nil {
			return
		}
		if req.length > MaxRequestLength {
			t.Fatalf("accepted a request for %d bytes", req.length)
		}
		var b bytes.Buffer
		writeBlobRequest(bufio.NewWriter(&b), req)
		if !bytes.HasPrefix(in, b.Bytes()) {
			t.Fatalf("%x parsed to %+v, which writes %x", in, req, b.Bytes())
		}
	})
}

// FuzzBlobResponse: the reader never panics, and a response it accepts
// has exactly the bytes the request asks for, of a size that covers them.
func FuzzBlobResponse(f *testing.F) {
	var ok bytes.Buffer
	w := bufio.NewWriter(&ok)
	writeBlobHeader(w, 100, 10)
	w.Write(make([]byte, 10))
	w.Flush()
	f.Add(ok.Bytes(), uint64(0), uint32(10))
	f.Add(ok.Bytes(), uint64(95), uint32(10))
	var busy bytes.Buffer
	writeStatus(&busy, statusBusy, "later")
	f.Add(busy.Bytes(), uint64(0), uint32(1))
	f.Add([]byte{0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 1, 0}, uint64(0), uint32(1))
	f.Fuzz(func(t *testing.T, in []byte, off uint64, length uint32) {
		length %= 1 << 16
		req := blobRequest{offset: off, length: length}
		size, b, err := readBlobResponse(bufio.NewReader(bytes.NewReader(in)), req)
		var pe *PeerError
		if err != nil {
			if errors.As(err, &pe) && pe.Status == statusOK {
				t.Fatal("a PeerError for status OK")
			}
			return
		}
		if off > uint64(size) {
			t.Fatalf("accepted bytes at offset %d of a %d byte blob", off, size)
		}
		if want := min(uint64(length), uint64(size)-off); uint64(len(b)) != want {
			t.Fatalf("accepted %d bytes, want %d", len(b), want)
		}
	})
}
