package store

import (
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"testing"
	"time"
)

// BenchmarkWriter200MiB writes a 200 MiB blob through a Writer in 1 MiB
// chunks, in order, and commits it (hash check, fsync, rename), as a
// fetch from a peer does, in STORE_BENCH_DIR (default the test's
// temporary folder, on the disk). commit-ms is the time Commit took:
// mostly the fsync's wait for what was not yet on the disk.
func BenchmarkWriter200MiB(b *testing.B) {
	data := make([]byte, 200<<20)
	r := rand.NewChaCha8([32]byte{9})
	r.Read(data)
	sum := sha256.Sum256(data)
	d := "sha256:" + hex.EncodeToString(sum[:])
	const chunk = 1 << 20
	b.SetBytes(int64(len(data)))
	var commit time.Duration
	for range b.N {
		b.StopTimer()
		dir := os.Getenv("STORE_BENCH_DIR")
		if dir == "" {
			dir = b.TempDir()
		} else {
			var err error
			if dir, err = os.MkdirTemp(dir, "storebench-*"); err != nil {
				b.Fatal(err)
			}
		}
		s, err := Open(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		w, err := s.Create(d, int64(len(data)))
		if err != nil {
			b.Fatal(err)
		}
		for off := 0; off < len(data); off += chunk {
			if _, err := w.WriteAt(data[off:off+chunk], int64(off)); err != nil {
				b.Fatal(err)
			}
		}
		c0 := time.Now()
		if err := w.Commit(); err != nil {
			b.Fatal(err)
		}
		commit += time.Since(c0)
		b.StopTimer()
		s.Close()
		os.RemoveAll(dir)
		b.StartTimer()
	}
	b.ReportMetric(float64(commit.Milliseconds())/float64(b.N), "commit-ms")
}
