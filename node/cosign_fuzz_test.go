package node

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// FuzzCosignRequest feeds arbitrary bytes to the cosign protocol's reader
// and to a replica's CosignServer.Cosign: outside input must give an error
// or a cosignature of this replica's own checkpoint, never a panic or a
// cosignature of anything else.
func FuzzCosignRequest(f *testing.F) {
	rs := startReplicas(f, 2)
	ctx := context.Background()
	for _, r := range rs {
		if _, err := r.svc.Append(ctx, []byte("entry 0")); err != nil {
			f.Fatal(err)
		}
	}
	cp, err := rs[1].svc.WaitFinal(ctx, 1)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"version":1,"checkpoint":"` + strings.ReplaceAll(string(cp.Note), "\n", `\n`) + `"}`))
	f.Add(cp.Note)
	f.Add([]byte(`{"version":1,"checkpoint":""}`))
	f.Add([]byte(`{"version":1,"checkpoint":"test.example/network\n1\nAAAA\n\n— x AAAA\n"}`))
	f.Add([]byte(`{"version":2}`))
	f.Add([]byte{})
	own, _, _ := bytes.Cut(cp.Note, []byte("\n\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		var req cosignRequest
		if err := readJSON(bytes.NewReader(b), &req); err != nil {
			req.Checkpoint = string(b)
		}
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		sig, _, err := rs[0].server.Cosign(cctx, []byte(req.Checkpoint))
		if err != nil {
			return
		}
		body, _, _ := strings.Cut(req.Checkpoint, "\n\n")
		if body != string(own) {
			t.Fatalf("cosigned %q (signature %v), which is not this replica's checkpoint %q", body, sig, own)
		}
	})
}
