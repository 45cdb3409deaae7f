package exchange

import (
	"bufio"
	"bytes"
	"errors"
	"testing"

	"github.com/pyrsia/pyrsia-build/publish/tlog"
)

// FuzzTilesRequest: the parser never panics, accepts only "checkpoint"
// and canonical tile paths, and what it accepts is written back as the
// same bytes.
func FuzzTilesRequest(f *testing.F) {
	for _, p := range []string{"checkpoint", "tile/0/000", "tile/entries/x001/234.p/7", "tile/../x", ""} {
		var b bytes.Buffer
		writeMessage(&b, []byte(p))
		f.Add(b.Bytes())
	}
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, in []byte) {
		path, err := readTilesRequest(bufio.NewReader(bytes.NewReader(in)))
		if err != nil {
			return
		}
		if path != checkpointPath {
			if _, err := tlog.ParseTilePath(path); err != nil {
				t.Fatalf("accepted %q: %v", path, err)
			}
		}
		var b bytes.Buffer
		w := bufio.NewWriter(&b)
		if err := writeTilesRequest(w, path); err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(in, b.Bytes()) {
			t.Fatalf("%q parsed to %q, which writes %q", in, path, b.Bytes())
		}
	})
}

// FuzzTilesResponse: the reader never panics, never returns more than the
// limit, and a response it accepts is exactly what the server would write.
func FuzzTilesResponse(f *testing.F) {
	var ok bytes.Buffer
	ok.WriteByte(statusOK)
	writeMessage(&ok, bytes.Repeat([]byte{7}, 64))
	f.Add(ok.Bytes())
	var nf bytes.Buffer
	writeStatus(&nf, statusNotFound, "tile/entries/005: not found\x1b[31m")
	f.Add(nf.Bytes())
	f.Add([]byte{statusOK, 0xff, 0xff, 0x7f})
	f.Add([]byte{9, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		const limit = 100
		b, err := readTilesResponse(bufio.NewReader(bytes.NewReader(in)), limit)
		var pe *PeerError
		switch {
		case errors.As(err, &pe):
			for _, r := range pe.Msg {
				if r < 0x20 || r == 0x7f {
					t.Fatalf("unprintable message %q", pe.Msg)
				}
			}
		case err != nil:
		case len(b) > limit:
			t.Fatalf("%d bytes over the limit of %d", len(b), limit)
		default:
			var w bytes.Buffer
			w.WriteByte(statusOK)
			writeMessage(&w, b)
			if !bytes.HasPrefix(in, w.Bytes()) {
				t.Fatalf("%q read as %q", in, b)
			}
		}
	})
}
