package exchange

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/pyrsia/pyrsia-build/publish"
	"github.com/pyrsia/pyrsia-build/publish/index"
	"github.com/pyrsia/pyrsia-build/publish/serve"
)

// BenchmarkPullThroughPeer is a pull end to end, as crane does it: a
// client asks a regular node's OCI API (publish/serve over HTTP on
// loopback) for an image's manifest by tag, then its config and its one
// 200 MiB layer, hashing each as it reads and checking it against its
// digest; the node holds none of it and fetches each blob from a peer
// (the seed, over libp2p on loopback) while it serves it, hashing it
// too. Each iteration is a new node with an empty store. cpu-s/op is
// the process's CPU: the client, the node and the seed.
func BenchmarkPullThroughPeer(b *testing.B) {
	layer := randomBytes(200 << 20)
	config := []byte(`{"architecture":"amd64","os":"linux"}`)
	manifest := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",`+
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%d},`+
		`"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"%s","size":%d}]}`,
		digestOf(config), len(config), digestOf(layer), len(layer))
	md, cd, ld := digestOf(manifest), digestOf(config), digestOf(layer)
	spec, _ := json.Marshal(map[string]string{"coordinate": "bench:1", "ecosystem": "oci", "input": "bench"})
	entry := &publish.Entry{InputDigest: digestOf(spec), Ecosystem: "oci", Coordinate: "bench:1", Spec: spec,
		Subjects: []publish.Subject{{Name: "bench:1", Digest: md}}}
	idx, err := index.New()
	if err != nil {
		b.Fatal(err)
	}
	if err := idx.Add(0, entry); err != nil {
		b.Fatal(err)
	}
	seed := benchNet(b, 1, Options{})[0]
	blobs := [][]byte{manifest, config, layer}
	for _, p := range blobs {
		seed.put(b, p)
	}
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}}
	buf := make([]byte, 1<<20)
	get := func(url, want string) int64 {
		resp, err := client.Get(url)
		if err != nil {
			b.Fatal(err)
		}
		defer resp.Body.Close()
		h := sha256.New()
		n, err := io.CopyBuffer(h, resp.Body, buf)
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %d after %d bytes: %v", url, resp.StatusCode, n, err)
		}
		if got := fmt.Sprintf("sha256:%x", h.Sum(nil)); got != want {
			b.Fatalf("GET %s: %d bytes hashing to %s, want %s", url, n, got, want)
		}
		return n
	}
	b.SetBytes(int64(len(manifest) + len(config) + len(layer)))
	var cpu time.Duration
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		fetcher := benchNet(b, 1, Options{Bootstrap: []peer.AddrInfo{{ID: seed.x.h.ID(), Addrs: seed.x.h.Addrs()}}})[0]
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		for _, d := range []string{md, cd, ld} {
			if err := seed.x.Provide(ctx, d); err != nil {
				b.Fatal(err)
			}
		}
		fetcher.x.waitRoutable(ctx)
		srv := httptest.NewServer(serve.NewOCI(serve.OCIOptions{Index: idx, Content: fetcher.x, Logger: slog.New(slog.DiscardHandler)}))
		b.StartTimer()
		c0 := cpuTime()
		var n int64
		n += get(srv.URL+"/v2/bench/manifests/1", md)
		n += get(srv.URL+"/v2/bench/blobs/"+cd, cd)
		n += get(srv.URL+"/v2/bench/blobs/"+ld, ld)
		cpu += cpuTime() - c0
		b.StopTimer()
		if n != int64(len(manifest)+len(config)+len(layer)) {
			b.Fatalf("pulled %d bytes, want %d", n, len(manifest)+len(config)+len(layer))
		}
		srv.Close()
		cancel()
		fetcher.x.Close()
		fetcher.x.h.Close()
		fetcher.store.Close()
		b.StartTimer()
	}
	b.ReportMetric(cpu.Seconds()/float64(b.N), "cpu-s/op")
}
