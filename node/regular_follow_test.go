package node

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/pyrsia/pyrsia-build/publish/witness"
	fmtlog "github.com/transparency-dev/formats/log"
	"golang.org/x/mod/sumdb/note"
)

// TestRegularFollowsPastALyingMirror: a regular node whose --log-url is a
// mirror that lies (a checkpoint of a huge tree, signed by a key of no
// build node) reads none of the entries it claims, and follows the log
// from its bootstrap peer instead: it indexes what the network published.
func TestRegularFollowsPastALyingMirror(t *testing.T) {
	c := servingCluster(t, 3)
	ctx := c.ctx()
	in, _ := c.publish(ctx, 0, ociSpec(21))

	skey, _, err := witness.GenerateKey(c.policy.Name)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := witness.NewLogSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	cp := fmtlog.Checkpoint{Origin: c.policy.Name, Size: 1 << 40, Hash: bytes.Repeat([]byte{9}, 32)}
	forged, err := note.Sign(&note.Note{Text: string(cp.Marshal())}, signer)
	if err != nil {
		t.Fatal(err)
	}
	var others atomic.Int64
	liar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/checkpoint" {
			w.Write(forged)
			return
		}
		others.Add(1)
		http.NotFound(w, r)
	}))
	defer liar.Close()

	reg := startRegular(t, c, filepath.Join(t.TempDir(), "regular"), 0, liar.URL)
	reg.waitIndexed(ctx, in)
	if n := others.Load(); n != 0 {
		t.Errorf("the lying mirror was asked for %d tiles or bundles", n)
	}
	if st := reg.status(); st.Stopped != nil || st.LogSize == 0 {
		t.Errorf("status %+v", st)
	}
	if src := reg.r.follower.Status(); src.Checkpoint == nil || bytes.Equal(src.Checkpoint.Note, forged) || src.Checkpoint.Size == 0 {
		t.Errorf("follower: %+v", src)
	}
}
