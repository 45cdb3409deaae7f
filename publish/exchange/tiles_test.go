package exchange

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io/fs"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pyrsia/pyrsia-build/publish/logclient"
)

// servedLog starts a host serving a real log of n entries (published
// final) and returns it with the log.
func servedLog(t *testing.T, n int) (*testLog, logclient.Source) {
	t.Helper()
	tl := newTestLog(t)
	tl.appendAndPublish(0, n)
	src, err := logclient.OpenDir(context.Background(), tl.dir, logclient.DirOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return tl, src
}

func TestLogOverLibp2p(t *testing.T) {
	ctx := context.Background()
	tl, dir := servedLog(t, 300) // a full bundle and a partial one
	server, reader := newHost(t), newHost(t)
	ServeLog(server, dir, LogOptions{})
	connect(t, reader, server)

	src, err := NewPeerSource(reader, []peer.ID{server.ID()}, PeerSourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	c := logclient.New(src, logclient.Options{Trust: tl.trust})
	cp, err := c.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Size != 300 {
		t.Fatalf("checkpoint size %d, want 300", cp.Size)
	}
	for _, i := range []uint64{0, 255, 256, 299} {
		e, _, err := c.Entry(ctx, cp, i)
		if err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
		if want := entryText(int(i)); !bytes.Equal(e, want) {
			t.Errorf("entry %d: got %q, want %q", i, e, want)
		}
	}

	// The log grows: the old checkpoint's partial tiles are gone, and
	// the source falls back to the full ones.
	tl.appendAndPublish(300, 512)
	cp2, err := c.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cp2.Size != 512 {
		t.Fatalf("checkpoint size %d, want 512", cp2.Size)
	}
	if _, err := c.Consistency(ctx, cp, cp2); err != nil {
		t.Fatalf("consistency of 300 and 512: %v", err)
	}
	if e, _, err := c.Entry(ctx, cp, 299); err != nil || !bytes.Equal(e, entryText(299)) {
		t.Fatalf("entry 299 in the old tree after the partial bundle is gone: %q, %v", e, err)
	}
	if b, err := src.ReadEntryBundle(ctx, 1, 44); err != nil || len(b) == 0 {
		t.Fatalf("partial bundle 1.p/44 once full: %d bytes, %v; want the full bundle", len(b), err)
	}

	// What the log does not have is fs.ErrNotExist.
	if _, err := src.ReadEntryBundle(ctx, 7, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("bundle 7 of a log of 512: got %v, want fs.ErrNotExist", err)
	}
	if _, err := src.ReadTile(ctx, 1, 3, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("tile 1/3: got %v, want fs.ErrNotExist", err)
	}
}

func TestLogFailover(t *testing.T) {
	ctx := context.Background()
	tl, dir := servedLog(t, 10)
	gone, server, reader := newHost(t), newHost(t), newHost(t)
	ServeLog(server, dir, LogOptions{})
	connect(t, reader, server)
	connect(t, reader, gone)
	gone.Close()

	src, err := NewPeerSource(reader, []peer.ID{gone.ID(), server.ID()}, PeerSourceOptions{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c := logclient.New(src, logclient.Options{Trust: tl.trust})
	cp, err := c.Checkpoint(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if e, _, err := c.Entry(ctx, cp, 9); err != nil || !bytes.Equal(e, entryText(9)) {
		t.Fatalf("entry 9: %q, %v", e, err)
	}
}

func TestLogPeerWithoutProtocol(t *testing.T) {
	other, reader := newHost(t), newHost(t)
	connect(t, reader, other)
	src, err := NewPeerSource(reader, []peer.ID{other.ID()}, PeerSourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.ReadCheckpoint(context.Background()); err == nil {
		t.Fatal("a peer that does not serve the log gave a checkpoint")
	}
	if _, err := NewPeerSource(reader, nil, PeerSourceOptions{}); err == nil {
		t.Fatal("a source of no peers was made")
	}
}

// TestTilesServerRefuses sends requests the server must refuse, on a raw
// stream.
func TestTilesServerRefuses(t *testing.T) {
	_, dir := servedLog(t, 3)
	server, reader := newHost(t), newHost(t)
	ServeLog(server, dir, LogOptions{})
	connect(t, reader, server)
	for _, tc := range []struct {
		name string
		req  []byte
		want byte
	}{
		{"escaping path", append([]byte{byte(len("tile/../../etc"))}, "tile/../../etc"...), statusBad},
		{"not canonical", append([]byte{byte(len("tile/0/0"))}, "tile/0/0"...), statusBad},
		{"over-long", append([]byte{0xff, 0x01}, bytes.Repeat([]byte("a"), 255)...), statusBad},
		{"truncated", []byte{10, 't'}, statusBad},
		{"missing", append([]byte{byte(len("tile/entries/005"))}, "tile/entries/005"...), statusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := reader.NewStream(context.Background(), server.ID(), TilesProtocol)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			st.Write(tc.req)
			st.CloseWrite()
			_, err = readTilesResponse(bufio.NewReader(st), maxBundleSize)
			var pe *PeerError
			if !errors.As(err, &pe) || pe.Status != tc.want {
				t.Fatalf("got %v, want status %d", err, tc.want)
			}
		})
	}
}

// TestLogPeerSendsTooMuch: a peer that announces a tile over the limit of
// its kind is cut off before its bytes are read.
func TestLogPeerSendsTooMuch(t *testing.T) {
	liar, reader := newHost(t), newHost(t)
	liar.SetStreamHandler(TilesProtocol, func(st network.Stream) {
		defer st.Close()
		w := bufio.NewWriter(st)
		w.WriteByte(statusOK)
		writeMessage(w, make([]byte, maxTileSize+1))
		w.Flush()
	})
	connect(t, reader, liar)
	src, err := NewPeerSource(reader, []peer.ID{liar.ID()}, PeerSourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := src.ReadTile(context.Background(), 0, 0, 0); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
}
