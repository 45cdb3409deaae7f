package logclient_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"

	"github.com/pyrsia/pyrsia-build/publish/logclient"
	"github.com/pyrsia/pyrsia-build/publish/policy"
	"github.com/pyrsia/pyrsia-build/publish/tlog"
	"github.com/pyrsia/pyrsia-build/publish/witness"
	"golang.org/x/mod/sumdb/note"
)

// A reader checks the latest checkpoint of a log served over HTTP against
// the trust (here the log key alone), then reads an entry proven to be in
// it.
func ExampleClient() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)

	// A log of three entries, served.
	skey, vkey, _ := witness.GenerateKey("example.org/log")
	signer, _ := witness.NewLogSigner(skey)
	quiet := slog.New(slog.DiscardHandler)
	l, _ := tlog.Open(ctx, tlog.Options{Dir: filepath.Join(dir, "log"), Origin: "example.org/log", Signer: signer, Logger: quiet})
	defer l.Close()
	for _, e := range []string{"one", "two", "three"} {
		l.Append(ctx, []byte(e))
	}
	cand, _ := l.Publish(ctx)
	l.Commit(cand.Note)
	srv := httptest.NewServer(l.Handler())
	defer srv.Close()

	// The reader.
	logKey, _ := witness.NewLogVerifier(vkey)
	trust := &policy.Trust{Origin: "example.org/log", LogVerifiers: []note.Verifier{logKey}}
	src, err := logclient.OpenURL(srv.URL, logclient.URLOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer src.Close()
	c := logclient.New(src, logclient.Options{Trust: trust})
	cp, err := c.Checkpoint(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	entry, _, err := c.Entry(ctx, cp, 1)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("checkpoint of size %d signed by %s; entry 1: %s\n", cp.Size, cp.LogKey, entry)
	_, _, err = c.Entry(ctx, cp, 3)
	fmt.Println(strings.Replace(err.Error(), srv.URL+"/", "URL", 1))
	fmt.Println("hint:", logclient.Hint(err))
	// Output:
	// checkpoint of size 3 signed by example.org/log; entry 1: two
	// logclient: log at URL: entry 3 is past the end of the log: its checkpoint has size 3
	// hint: indexes run from 0 to 2
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
