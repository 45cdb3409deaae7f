package builder_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/pyrsia/pyrsia-build/builder"
)

// TestDaemonsStartTogether: several buildkitd started at once (three build
// nodes on one machine, as make run does) each keep their sockets in their
// own folder. buildkitd's default trace socket, /run/buildkit/otel-grpc.sock,
// is shared by every daemon on the machine, and one that binds it while
// another does fails at start with "address already in use".
func TestDaemonsStartTogether(t *testing.T) {
	needBuildkit(t)
	const n = 3
	var (
		wg   sync.WaitGroup
		errs [n]error
		ds   [n]*builder.Daemon
		dirs [n]string
	)
	for i := range n {
		dirs[i] = filepath.Join(t.TempDir(), fmt.Sprintf("bk-%d", i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			ds[i], errs[i] = builder.StartDaemon(context.Background(), builder.DaemonOptions{Dir: dirs[i]})
		}()
	}
	wg.Wait()
	for i := range n {
		if ds[i] != nil {
			defer ds[i].Stop()
		}
	}
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("daemon %d: %v", i, errs[i])
		}
		sock := filepath.Join(dirs[i], "otel-grpc.sock")
		if fi, err := os.Stat(sock); err != nil || fi.Mode()&os.ModeSocket == 0 {
			t.Errorf("daemon %d: its trace socket is not %s (%v): it would share the machine-wide default", i, sock, err)
		}
	}
}
