package logclient

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"
)

func FuzzParseBundle(f *testing.F) {
	f.Add([]byte{}, 1)
	f.Add([]byte{0, 1, 'x'}, 1)
	f.Add([]byte{0, 3, 'a', 'b'}, 1)
	f.Add(bytes.Repeat([]byte{0, 0}, 257), 256)
	f.Fuzz(func(t *testing.T, b []byte, want int) {
		entries, err := parseBundle(b, want)
		if err != nil {
			return
		}
		if len(entries) < want || len(entries) > bundleWidth {
			t.Fatalf("%d entries accepted, want %d to %d", len(entries), want, bundleWidth)
		}
		var re []byte
		for _, e := range entries {
			re = binary.BigEndian.AppendUint16(re, uint16(len(e)))
			re = append(re, e...)
		}
		if !bytes.Equal(re, b) {
			t.Fatal("the entries do not encode to the bundle")
		}
	})
}

func FuzzParseTile(f *testing.F) {
	f.Add(make([]byte, 32), 1)
	f.Add(make([]byte, 33), 1)
	f.Add(make([]byte, 8192), 256)
	f.Fuzz(func(t *testing.T, b []byte, want int) {
		hashes, err := parseTile(b, want)
		if err != nil {
			return
		}
		if len(hashes) < want || len(hashes) > 256 || !bytes.Equal(bytes.Join(hashes, nil), b) {
			t.Fatalf("tile of %d bytes parsed as %d hashes (want %d)", len(b), len(hashes), want)
		}
	})
}

// lyingSource answers like src, but gives data instead of its answer to
// the n-th tile or bundle read.
type lyingSource struct {
	Source
	n    int
	data []byte
}

func (s *lyingSource) lie(b []byte, err error) ([]byte, error) {
	s.n--
	if s.n == 0 {
		return s.data, nil
	}
	return b, err
}

func (s *lyingSource) ReadTile(ctx context.Context, level, index uint64, p uint8) ([]byte, error) {
	return s.lie(s.Source.ReadTile(ctx, level, index, p))
}

func (s *lyingSource) ReadEntryBundle(ctx context.Context, index uint64, p uint8) ([]byte, error) {
	return s.lie(s.Source.ReadEntryBundle(ctx, index, p))
}

// FuzzClientAnswers checks that whatever one tile or bundle of a real log
// is replaced by, the client either fails or returns the log's true
// entries and proofs.
func FuzzClientAnswers(f *testing.F) {
	ctx := context.Background()
	net := newNetwork(f, 1)
	tl := newTestLog(f, net, "a")
	tl.append(300, "a")
	small := tl.publish(1)
	tl.append(30, "a")
	tl.publish(1)
	src := openDir(f, tl.dir)
	good := New(src, Options{Trust: net.trust(0)})
	cp, err := good.Checkpoint(ctx)
	if err != nil {
		f.Fatal(err)
	}
	old, err := good.VerifyCheckpoint(small)
	if err != nil {
		f.Fatal(err)
	}
	for n := 1; n < 4; n++ {
		for _, seed := range [][]byte{nil, make([]byte, 32), make([]byte, 8192)} {
			f.Add(n, uint16(257), seed)
		}
	}
	if b, err := src.ReadEntryBundle(ctx, 1, 74); err == nil {
		f.Add(1, uint16(300), b)
		b = bytes.Clone(b)
		b[len(b)-1] ^= 1
		f.Add(1, uint16(329), b)
	}
	if b, err := src.ReadTile(ctx, 0, 1, 74); err == nil {
		b = bytes.Clone(b)
		b[0] ^= 1
		f.Add(2, uint16(257), b)
	}
	f.Fuzz(func(t *testing.T, n int, index uint16, data []byte) {
		i := uint64(index) % cp.Size
		c := New(&lyingSource{Source: src, n: n, data: data}, Options{Trust: net.trust(0)})
		if e, _, err := c.Entry(ctx, cp, i); err == nil && !bytes.Equal(e, entryText("a", int(i))) {
			t.Fatalf("entry %d: got %q", i, e)
		}
		c = New(&lyingSource{Source: src, n: n, data: data}, Options{Trust: net.trust(0)})
		_ = c.Entries(ctx, cp, i, cp.Size, func(j uint64, e []byte) error {
			if !bytes.Equal(e, entryText("a", int(j))) {
				t.Fatalf("entries: entry %d: got %q", j, e)
			}
			return nil
		})
		c = New(&lyingSource{Source: src, n: n, data: data}, Options{Trust: net.trust(0)})
		if _, err := c.ConsistencyProof(ctx, cp, i/2, i); err == nil {
			p, err := good.ConsistencyProof(ctx, cp, i/2, i)
			if err != nil {
				t.Fatal(err)
			}
			_ = p // verified against proven roots: nothing more to compare
		}
		c = New(&lyingSource{Source: src, n: n, data: data}, Options{Trust: net.trust(0)})
		_, _ = c.Consistency(ctx, old, cp)
	})
}

// FuzzFollowerCheckpoint serves a real log whose checkpoint is replaced by
// fuzzed bytes: the follower never takes them for anything but the log's
// own final checkpoint, and visits only the log's entries.
func FuzzFollowerCheckpoint(f *testing.F) {
	ctx := context.Background()
	net := newNetwork(f, 3)
	tl := newTestLog(f, net, "a")
	tl.append(5, "a")
	first := tl.publish(2)
	tl.append(5, "a")
	second := tl.publish(1) // not final
	f.Add(first)
	f.Add(second)
	f.Add(bytes.Replace(first, []byte("\n5\n"), []byte("\n6\n"), 1))
	f.Add([]byte("example.org/network\n5\nAAAA\n\n— x AAAA\n"))
	src := openDir(f, tl.dir)
	f.Fuzz(func(t *testing.T, cp []byte) {
		fake := &fixedCheckpoint{Source: src, note: cp}
		v := &visits{}
		fl, err := NewFollower(ctx, FollowerOptions{Source: fake, Trust: net.trust(0), StateDir: t.TempDir(), Visit: v.visit})
		if err != nil {
			t.Fatal(err)
		}
		err = fl.Poll(ctx)
		st := fl.Status()
		if st.Checkpoint != nil && !bytes.Equal(st.Checkpoint.Note, first) && !finalOf(t, net, st.Checkpoint.Note, 5) {
			t.Fatalf("accepted %q (poll: %v)", st.Checkpoint.Note, err)
		}
		for i, e := range v.got {
			if e != string(entryText("a", i)) {
				t.Fatalf("entry %d: got %q", i, e)
			}
		}
	})
}

// finalOf reports whether b is a final checkpoint of size 5 with the
// log's root: the same checkpoint, other cosignature lines.
func finalOf(t *testing.T, net *network, b []byte, size uint64) bool {
	cp, _, err := net.trust(0).VerifyCheckpoint(b)
	return err == nil && cp.Size == size
}

type fixedCheckpoint struct {
	Source
	note []byte
}

func (s *fixedCheckpoint) ReadCheckpoint(context.Context) ([]byte, error) { return s.note, nil }
