package attest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"runtime"
	"testing"
)

// TestSHA256ReusesItsBuffer: hashing a small file does not allocate a
// fresh 1 MiB read buffer each time (a manifest hashes every artifact of
// every build: a third of the bytes a burst of builds allocated).
func TestSHA256ReusesItsBuffer(t *testing.T) {
	data := bytes.Repeat([]byte("x"), 3000)
	want := sha256.Sum256(data)
	if got, n, err := SHA256(context.Background(), bytes.NewReader(data)); err != nil || got != want || n != int64(len(data)) {
		t.Fatalf("SHA256: %x, %d, %v", got, n, err)
	}
	const calls = 50
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range calls {
		if _, _, err := SHA256(context.Background(), bytes.NewReader(data)); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	// A collection may empty the pool, and under the race detector
	// sync.Pool drops a quarter of what is put back (about 12 buffers of
	// 50); a buffer a call would be 50 MiB.
	if got := after.TotalAlloc - before.TotalAlloc; got > calls/2*hashBufSize {
		t.Fatalf("%d calls allocated %d bytes", calls, got)
	}
}
