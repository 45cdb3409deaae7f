package logclient

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/note"
)

// sources returns the log as both kinds of Source.
func sources(t *testing.T, tl *testLog) map[string]Source {
	srv := tl.serve(nil)
	return map[string]Source{"url": openURL(t, srv.URL), "dir": openDir(t, tl.dir)}
}

func TestClientReadsAndChecks(t *testing.T) {
	ctx := context.Background()
	net := newNetwork(t, 3)
	tl := newTestLog(t, net, "a")
	tl.append(300, "a")
	small := tl.publish(2)
	tl.append(300, "a")
	tl.publish(3)
	for name, src := range sources(t, tl) {
		t.Run(name, func(t *testing.T) {
			c := New(src, Options{Trust: net.trust(0)})
			cp, err := c.Checkpoint(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if cp.Size != 600 || cp.LogKey != testOrigin || len(cp.Cosigners) != 3 {
				t.Fatalf("got size %d, log key %q, cosigners %v; want 600, %q, 3 cosigners", cp.Size, cp.LogKey, cp.Cosigners, testOrigin)
			}
			for _, i := range []uint64{0, 1, 255, 256, 299, 511, 512, 599} {
				e, hashes, err := c.Entry(ctx, cp, i)
				if err != nil {
					t.Fatalf("entry %d: %v", i, err)
				}
				if want := entryText("a", int(i)); !bytes.Equal(e, want) {
					t.Fatalf("entry %d: got %q, want %q", i, e, want)
				}
				if err := proof.VerifyInclusion(rfc6962.DefaultHasher, i, cp.Size, publish.LeafHash(e), hashes, cp.Hash); err != nil {
					t.Fatalf("entry %d: %v", i, err)
				}
			}
			pb, err := c.ProofBundle(ctx, cp, 257)
			if err != nil {
				t.Fatal(err)
			}
			b, err := pb.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			if _, err := publish.ParseProofBundle(b); err != nil {
				t.Fatal(err)
			}
			old, err := c.VerifyCheckpoint(small)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Consistency(ctx, old, cp); err != nil {
				t.Fatal(err)
			}
			for _, sizes := range [][2]uint64{{0, 5}, {1, 2}, {3, 300}, {256, 512}, {255, 599}, {300, 600}, {7, 7}} {
				if _, err := c.ConsistencyProof(ctx, cp, sizes[0], sizes[1]); err != nil {
					t.Fatalf("consistency %v: %v", sizes, err)
				}
			}
			for _, r := range [][2]uint64{{0, 600}, {3, 4}, {255, 257}, {512, 600}, {599, 600}, {10, 10}} {
				var got []uint64
				err := c.Entries(ctx, cp, r[0], r[1], func(i uint64, e []byte) error {
					if !bytes.Equal(e, entryText("a", int(i))) {
						t.Fatalf("entry %d: got %q", i, e)
					}
					got = append(got, i)
					return nil
				})
				if err != nil {
					t.Fatalf("entries %v: %v", r, err)
				}
				if uint64(len(got)) != r[1]-r[0] || (len(got) > 0 && got[0] != r[0]) {
					t.Fatalf("entries %v: visited %d from %v", r, len(got), got[:min(1, len(got))])
				}
			}
		})
	}
}

func TestClientOutOfRange(t *testing.T) {
	ctx := context.Background()
	net := newNetwork(t, 1)
	tl := newTestLog(t, net, "a")
	tl.append(3, "a")
	tl.publish(1)
	for name, src := range sources(t, tl) {
		t.Run(name, func(t *testing.T) {
			c := New(src, Options{Trust: net.trust(0)})
			cp, err := c.Checkpoint(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = c.Entry(ctx, cp, 3)
			if !errors.Is(err, ErrOutOfRange) || !strings.Contains(err.Error(), "entry 3") || Hint(err) != "indexes run from 0 to 2" {
				t.Fatalf("got %v (hint %q), want entry 3 out of range", err, Hint(err))
			}
			if !strings.Contains(err.Error(), src.String()) {
				t.Fatalf("error %q does not name the source %q", err, src)
			}
			if _, err := c.ConsistencyProof(ctx, cp, 2, 4); !errors.Is(err, ErrOutOfRange) {
				t.Fatalf("got %v, want out of range", err)
			}
			if err := c.Entries(ctx, cp, 0, 4, func(uint64, []byte) error { return nil }); !errors.Is(err, ErrOutOfRange) {
				t.Fatalf("got %v, want out of range", err)
			}
		})
	}
}

func TestClientCheckpointChecks(t *testing.T) {
	ctx := context.Background()
	net := newNetwork(t, 3)
	other := newNetwork(t, 3)
	tl := newTestLog(t, net, "a")
	tl.append(3, "a")
	tl.publish(2)
	src := openURL(t, tl.serve(nil).URL)
	for _, tc := range []struct {
		name string
		opts Options
		want error
	}{
		{"final", Options{Trust: net.trust(0)}, nil},
		{"log key only", Options{Trust: &policy.Trust{Origin: testOrigin, LogVerifiers: []note.Verifier{net.logKey}}}, nil},
		{"unverified", Options{}, nil},
		{"unverified origin", Options{Origin: testOrigin}, nil},
		{"other origin", Options{Origin: "other"}, ErrCheckpoint},
		{"not final", Options{Trust: net.trust(3)}, witness.ErrNotFinal},
		{"other log key", Options{Trust: other.trust(0)}, ErrCheckpoint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cp, err := New(src, tc.opts).Checkpoint(ctx)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err != nil {
				if !strings.Contains(err.Error(), src.String()) || Hint(err) == "" {
					t.Fatalf("error %q (hint %q) does not name the source or say what to do", err, Hint(err))
				}
				return
			}
			if cp.Size != 3 {
				t.Fatalf("got size %d, want 3", cp.Size)
			}
		})
	}
}

var errNotExist = fs.ErrNotExist

func httptestServer(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// corrupt serves the log but changes the responses for paths with prefix.
func corrupt(prefix string, change func([]byte) []byte) func(http.Handler) http.Handler {
	return func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasPrefix(r.URL.Path, prefix) {
				h.ServeHTTP(w, r)
				return
			}
			rec := &recorder{header: http.Header{}, code: http.StatusOK}
			h.ServeHTTP(rec, r)
			b := change(rec.body.Bytes())
			w.WriteHeader(rec.code)
			w.Write(b)
		})
	}
}

type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header         { return r.header }
func (r *recorder) WriteHeader(code int)        { r.code = code }
func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }

func TestClientBadResponses(t *testing.T) {
	ctx := context.Background()
	net := newNetwork(t, 1)
	tl := newTestLog(t, net, "a")
	tl.append(300, "a")
	tl.publish(1)
	for _, tc := range []struct {
		name   string
		prefix string
		change func([]byte) []byte
		want   error
		in     string // what the error must name
	}{
		{"truncated tile", "/tile/0/", func(b []byte) []byte { return b[:len(b)-5] }, ErrBadResponse, "tile 0/"},
		{"short tile", "/tile/0/", func(b []byte) []byte { return b[:32] }, ErrBadResponse, "tile 0/"},
		{"wrong hash in tile", "/tile/0/001", func(b []byte) []byte { b = bytes.Clone(b); b[40] ^= 1; return b }, ErrProof, "entry 256"},
		{"truncated bundle", "/tile/entries/", func(b []byte) []byte { return b[:len(b)-1] }, ErrBadResponse, "entry bundle 1"},
		{"short bundle", "/tile/entries/", func(b []byte) []byte { return b[:20] }, ErrBadResponse, "entry bundle 1"},
		{"other entry", "/tile/entries/", func(b []byte) []byte { b = bytes.Clone(b); b[4] ^= 1; return b }, ErrProof, "entry 256"},
		{"too many bytes", "/tile/0/", func(b []byte) []byte { return make([]byte, maxTileSize+32) }, ErrTooLarge, "over the 8192 byte limit"},
		{"missing tile", "/tile/0/", func([]byte) []byte { return nil }, ErrBadResponse, "tile 0/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := tl.serve(corrupt(tc.prefix, tc.change))
			c := New(openURL(t, srv.URL), Options{Trust: net.trust(0)})
			cp, err := c.Checkpoint(ctx)
			if err != nil {
				t.Fatal(err)
			}
			_, _, err = c.Entry(ctx, cp, 256)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.in) || !strings.Contains(err.Error(), srv.URL) {
				t.Fatalf("got %v, want %v naming %q and the URL", err, tc.want, tc.in)
			}
			if tc.want != ErrTooLarge && Hint(err) == "" {
				t.Fatalf("error %v has no hint", err)
			}
			err = c.Entries(ctx, cp, 0, 300, func(uint64, []byte) error { return nil })
			if !errors.Is(err, tc.want) {
				t.Fatalf("entries: got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestURLSourceLimits(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		handler http.HandlerFunc
		want    error
	}{
		{"huge checkpoint", func(w http.ResponseWriter, r *http.Request) {
			w.Write(bytes.Repeat([]byte("x"), witness.MaxCheckpointSize+1))
		}, ErrTooLarge},
		{"huge checkpoint, announced", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "100000000")
			w.WriteHeader(http.StatusOK)
		}, ErrTooLarge},
		{"not found", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) }, errNotExist},
		{"server error", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) }, ErrCheckpoint},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptestServer(t, tc.handler)
			_, err := New(openURL(t, srv.URL), Options{}).Checkpoint(ctx)
			if err == nil || !strings.Contains(err.Error(), srv.URL) {
				t.Fatalf("got %v, want an error naming %s", err, srv.URL)
			}
			if tc.want != ErrCheckpoint && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	for _, u := range []string{"", "ftp://x/", "http://", "::"} {
		if _, err := OpenURL(u, URLOptions{}); err == nil || Hint(err) == "" {
			t.Errorf("OpenURL(%q): got %v, want an error with a hint", u, err)
		}
	}
	dir := t.TempDir()
	for _, d := range []string{dir + "/missing", dir} {
		_, err := OpenDir(context.Background(), d, DirOptions{})
		if err == nil || !strings.Contains(err.Error(), d) || Hint(err) == "" {
			t.Errorf("OpenDir(%q): got %v, want an error naming it, with a hint", d, err)
		}
	}
}
