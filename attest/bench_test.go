package attest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strconv"
	"sync"
	"testing"
	"time"

	intoto "github.com/in-toto/attestation/go/v1"
	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"

	"github.com/pyrsia/pyrsia-build/attest"
)

// The benchmarks hash one file of PYRSIA_BENCH_SIZE bytes (default 1 GiB),
// to show that verification runs at SHA-256 speed in constant memory:
//
//	PYRSIA_BENCH_SIZE=$((256<<20)) go test ./attest -run XXX -bench . -benchtime 3x
//
// Besides time and MB/s they report alloc-MiB/op (bytes allocated per
// operation) and peak-heap-MiB (the largest heap seen while running), which
// stay the same whatever the file size.

const mib = 1 << 20

// benchSize returns PYRSIA_BENCH_SIZE, or 1 GiB.
func benchSize(b *testing.B) int64 {
	b.Helper()
	s := os.Getenv("PYRSIA_BENCH_SIZE")
	if s == "" {
		return 1 << 30
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		b.Fatalf("PYRSIA_BENCH_SIZE=%q: want a size in bytes, such as %d", s, 256<<20)
	}
	return n
}

func sizeName(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", n>>30)
	case n >= mib && n%mib == 0:
		return fmt.Sprintf("%dMiB", n>>20)
	default:
		return fmt.Sprintf("%dB", n)
	}
}

// benchFile writes size bytes to a file in b.TempDir() and returns its path
// and SHA-256. The content is one random 1 MiB block, repeated, with the
// block number in its first bytes so that no two blocks are equal.
func benchFile(b *testing.B, size int64) (string, [sha256.Size]byte) {
	b.Helper()
	path := filepath.Join(b.TempDir(), "artifact.bin")
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	block := make([]byte, mib)
	rng := rand.NewChaCha8([32]byte{'p', 'y', 'r', 's', 'i', 'a'})
	rng.Read(block)
	h := sha256.New()
	w := io.MultiWriter(f, h)
	for i, left := uint64(0), size; left > 0; i++ {
		binary.LittleEndian.PutUint64(block, i)
		n := min(left, int64(len(block)))
		if _, err := w.Write(block[:n]); err != nil {
			b.Fatal(err)
		}
		left -= n
	}
	if err := f.Close(); err != nil {
		b.Fatal(err)
	}
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return path, sum
}

// measure runs op in a b.Loop and reports, besides time, the bytes it
// allocates per call and the peak heap while it runs.
func measure(b *testing.B, size int64, op func()) {
	b.Helper()
	b.SetBytes(size)
	b.ReportAllocs()
	runtime.GC()
	peak := watchHeap()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for b.Loop() {
		op()
	}
	runtime.ReadMemStats(&after)
	b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/float64(b.N)/mib, "alloc-MiB/op")
	b.ReportMetric(float64(peak())/mib, "peak-heap-MiB")
}

// watchHeap samples the heap (live and not yet collected objects) every
// few milliseconds until the returned function is called, which returns the
// largest sample. runtime/metrics does not stop the world, unlike
// runtime.ReadMemStats.
func watchHeap() (stop func() uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		metrics.Read(sample)
		return sample[0].Value.Uint64()
	}
	var (
		mu      sync.Mutex
		highest = read()
		done    = make(chan struct{})
		wg      sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				v := read()
				mu.Lock()
				if v > highest {
					highest = v
				}
				mu.Unlock()
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		return highest
	}
}

// BenchmarkSHA256 is the floor: crypto/sha256 over the file with a 1 MiB
// buffer and nothing else.
func BenchmarkSHA256(b *testing.B) {
	size := benchSize(b)
	path, want := benchFile(b, size)
	b.Run("size="+sizeName(size), func(b *testing.B) {
		buf := make([]byte, mib)
		measure(b, size, func() {
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			h := sha256.New()
			if _, err := io.CopyBuffer(h, f, buf); err != nil {
				b.Fatal(err)
			}
			f.Close()
			if got := h.Sum(nil); string(got) != string(want[:]) {
				b.Fatalf("got sha256 %x, want %x", got, want)
			}
		})
	})
}

// BenchmarkVerify is a full Verifier.Verify of the same kind of file:
// signature, statement, digest and subject.
func BenchmarkVerify(b *testing.B) {
	size := benchSize(b)
	path, sum := benchFile(b, size)
	k := keyA(b)
	subject := &intoto.ResourceDescriptor{Name: "artifact.bin", Digest: map[string]string{"sha256": hex.EncodeToString(sum[:])}}
	bundle, err := attest.Attest(k.Signer, []*intoto.ResourceDescriptor{subject}, attest.PredicateSLSAProvenanceV1, testProvenance(b))
	if err != nil {
		b.Fatal(err)
	}
	bundle = reparse(b, bundle)
	v, err := attest.NewVerifier(attest.VerifierOptions{Keys: []*attest.PublicKey{k.Pub}, PredicateType: attest.PredicateSLSAProvenanceV1})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Run("size="+sizeName(size), func(b *testing.B) {
		measure(b, size, func() {
			ev, err := v.Verify(ctx, attest.FileArtifact(path), bundle)
			if err != nil {
				b.Fatal(err)
			}
			if ev.Size != size {
				b.Fatalf("verified %d bytes, want %d", ev.Size, size)
			}
		})
	})
}

// BenchmarkVerifyEnvelope checks a 1 MiB statement carrying MaxSignatures
// signatures, the last one valid, against three keys: the hostile case of a
// bundle with many signatures, bounded. The signed bytes are hashed once.
func BenchmarkVerifyEnvelope(b *testing.B) {
	k := keyA(b)
	payload := bytes.Repeat([]byte("x"), 1<<20)
	env, err := k.Signer.SignEnvelope(attest.InTotoPayloadType, payload)
	if err != nil {
		b.Fatal(err)
	}
	good := env.Signatures[0]
	env.Signatures = nil
	for range 15 {
		env.Signatures = append(env.Signatures, &dssepb.Signature{Sig: bytes.Repeat([]byte{1}, len(good.Sig))})
	}
	env.Signatures = append(env.Signatures, good)
	keys := []*attest.PublicKey{keyB(b).Pub, keyB(b).Pub, k.Pub}
	b.ResetTimer()
	for b.Loop() {
		if got := attest.VerifyEnvelope(env, keys); len(got) != 1 {
			b.Fatalf("got %d signers, want 1", len(got))
		}
	}
}
