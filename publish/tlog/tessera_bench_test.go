package tlog

// The same append workload as BenchmarkAppend, through Tessera v1.0.4's
// POSIX driver, for a side-by-side comparison on one machine.
//
// What is timed: from Appender.Add to the resolution of its IndexFuture.
// For the POSIX driver the future resolves when the batch holding the
// entry has been sequenced *and* integrated: sequenceBatch writes the entry
// bundles, the new hash tiles and .state/treeState, each through a
// temporary file opened O_SYNC, a rename and an fsync of the folder, and
// only then are the batch's futures resolved (storage/posix/files.go,
// storage/internal/queue.go). Ours resolves Append once the entry's
// write-ahead-log record is fdatasync'd; tiles are written after the
// acknowledgement and synced at segment rotation. Neither commits the entry
// to a published checkpoint at that point.

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/transparency-dev/tessera"
	"github.com/transparency-dev/tessera/storage/posix"
)

// tesseraBatching returns the batch size and age given to
// tessera.WithBatching: by default 4096 entries (our MaxBatch default) or
// 1 ms, whichever comes first; PYRSIA_BENCH_TESSERA_BATCH (entries) and
// PYRSIA_BENCH_TESSERA_AGE (a Go duration) override them.
func tesseraBatching(tb testing.TB) (uint, time.Duration) {
	size, age := uint(4096), time.Millisecond
	if s := os.Getenv("PYRSIA_BENCH_TESSERA_BATCH"); s != "" {
		n, err := strconv.ParseUint(s, 10, 32)
		if err != nil || n == 0 {
			tb.Fatalf("PYRSIA_BENCH_TESSERA_BATCH=%q is not a positive number", s)
		}
		size = uint(n)
	}
	if s := os.Getenv("PYRSIA_BENCH_TESSERA_AGE"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			tb.Fatalf("PYRSIA_BENCH_TESSERA_AGE=%q is not a positive duration", s)
		}
		age = d
	}
	return size, age
}

// BenchmarkTesseraPOSIXAppend: b.N appends of 1 KiB entries from 1, 64 and
// 1024 writers through tessera.NewAppender on the POSIX driver, with a
// checkpoint every 100 ms (Tessera's minimum for this driver); each writer
// calls Add and waits for the index future.
func BenchmarkTesseraPOSIXAppend(b *testing.B) {
	for _, writers := range []int{1, 64, 1024} {
		b.Run("writers="+strconv.Itoa(writers), func(b *testing.B) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			driver, err := posix.New(ctx, posix.Config{Path: benchDir(b)})
			if err != nil {
				b.Fatal(err)
			}
			size, age := tesseraBatching(b)
			opts := tessera.NewAppendOptions().
				WithCheckpointSigner(benchSigner(b)).
				WithCheckpointInterval(100*time.Millisecond).
				WithBatching(size, age)
			appender, shutdown, reader, err := tessera.NewAppender(ctx, driver, opts)
			if err != nil {
				b.Fatal(err)
			}

			runtime.GC()
			b.ResetTimer()
			appendWorkload(b, writers, func(ctx context.Context, e []byte) error {
				_, err := appender.Add(ctx, tessera.NewEntry(e))()
				return err
			})
			if got, err := reader.IntegratedSize(ctx); err != nil || got != uint64(b.N) {
				b.Errorf("IntegratedSize = %d, %v after %d appends", got, err, b.N)
			}
			b.ReportMetric(heapInuseMiB(), "heap-MiB")
			// Shutdown waits for a checkpoint that commits to every entry.
			sctx, scancel := context.WithTimeout(ctx, time.Minute)
			defer scancel()
			if err := shutdown(sctx); err != nil {
				b.Errorf("shutdown: %v", err)
			}
		})
	}
}
