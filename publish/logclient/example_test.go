package logclient_test

import (
	"context"
	"fmt"

	"github.com/pyrsia/pyrsia-build/publish/logclient"
	"github.com/pyrsia/pyrsia-build/publish/policy"
)

// A reader checks the latest checkpoint against the network's trust, then
// reads an entry proven to be in it.
func ExampleClient() {
	read := func(ctx context.Context, url string, trust *policy.Trust) error {
		src, err := logclient.OpenURL(url, logclient.URLOptions{})
		if err != nil {
			return err
		}
		defer src.Close()
		c := logclient.New(src, logclient.Options{Trust: trust})
		cp, err := c.Checkpoint(ctx) // signed by a log key, final
		if err != nil {
			return err
		}
		entry, _, err := c.Entry(ctx, cp, 0) // its inclusion proof checked
		if err != nil {
			return err
		}
		fmt.Printf("entry 0 of %d: %d bytes\n", cp.Size, len(entry))
		return nil
	}
	_ = read
}

// A node follows its network's log and indexes every entry.
func ExampleFollower() {
	follow := func(ctx context.Context, src logclient.Source, trust *policy.Trust, stateDir string, index func(uint64, []byte) error) error {
		f, err := logclient.NewFollower(ctx, logclient.FollowerOptions{
			Source:   src,
			Trust:    trust,
			StateDir: stateDir,
			Visit: func(_ context.Context, i uint64, entry []byte) error {
				return index(i, entry)
			},
		})
		if err != nil {
			return err // a *logclient.StopError if it stopped before
		}
		return f.Run(ctx) // until ctx is done, or a fork or a checkpoint that is not final
	}
	_ = follow
}
