package logclient

import (
	"context"
	"testing"
)

// BenchmarkEntries measures reading and checking every entry of a log of
// 10,000 entries, a bundle at a time, from a folder and over HTTP.
func BenchmarkEntries(b *testing.B) {
	ctx := context.Background()
	net := newNetwork(b, 1)
	tl := newTestLog(b, net, "a")
	tl.append(10000, "a")
	tl.publish(1)
	for name, src := range map[string]Source{"dir": openDir(b, tl.dir), "url": openURL(b, tl.serve(nil).URL)} {
		b.Run(name, func(b *testing.B) {
			c := New(src, Options{Trust: net.trust(0)})
			cp, err := c.Checkpoint(ctx)
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if err := c.Entries(ctx, cp, 0, cp.Size, func(uint64, []byte) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cp.Size)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
		})
	}
}

// BenchmarkEntry measures reading one entry with its inclusion proof, as
// 'log entry' and 'log proof' do.
func BenchmarkEntry(b *testing.B) {
	ctx := context.Background()
	net := newNetwork(b, 1)
	tl := newTestLog(b, net, "a")
	tl.append(10000, "a")
	tl.publish(1)
	for name, src := range map[string]Source{"dir": openDir(b, tl.dir), "url": openURL(b, tl.serve(nil).URL)} {
		b.Run(name, func(b *testing.B) {
			c := New(src, Options{Trust: net.trust(0)})
			cp, err := c.Checkpoint(ctx)
			if err != nil {
				b.Fatal(err)
			}
			i := uint64(0)
			for b.Loop() {
				if _, _, err := c.Entry(ctx, cp, i%cp.Size); err != nil {
					b.Fatal(err)
				}
				i += 997
			}
		})
	}
}
