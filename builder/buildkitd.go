package builder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/moby/buildkit/client"
)

// Daemon is a private buildkitd started for one node or one command: its
// own root (state and cache) and socket under a folder of its own, so that
// no cache is shared with anyone.
type Daemon struct {
	Addr string // unix:///.../buildkitd.sock
	cmd  *exec.Cmd
	done chan error
	log  *os.File
}

// DaemonOptions configure [StartDaemon].
type DaemonOptions struct {
	// Dir holds the daemon's root, socket and log (DIR/root,
	// DIR/buildkitd.sock, DIR/buildkitd.log).
	Dir string
	// Binary is the buildkitd executable; default: "buildkitd" on PATH.
	Binary string
	// Timeout bounds the wait for the daemon to answer (default 60s).
	Timeout time.Duration
}

// ErrNoBuildkitd is returned when no buildkitd executable is found. Use
// errors.Is.
var ErrNoBuildkitd = errors.New("builder: buildkitd not found on PATH (install it with scripts/install-buildkit.sh, or pass --buildkit-addr)")

// StartDaemon starts buildkitd (it must run as root, with runc on PATH)
// and waits until it answers.
func StartDaemon(ctx context.Context, o DaemonOptions) (*Daemon, error) {
	bin := o.Binary
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("buildkitd"); err != nil {
			return nil, ErrNoBuildkitd
		}
	}
	if _, err := exec.LookPath("runc"); err != nil {
		return nil, errors.New("builder: runc not found on PATH (apt-get install runc)")
	}
	if o.Timeout == 0 {
		o.Timeout = 60 * time.Second
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "buildkitd.sock")
	os.Remove(sock)
	logf, err := os.OpenFile(filepath.Join(dir, "buildkitd.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	d := &Daemon{Addr: "unix://" + sock, log: logf, done: make(chan error, 1)}
	d.cmd = exec.Command(bin,
		"--root", filepath.Join(dir, "root"),
		"--addr", d.Addr,
		"--oci-worker=true", "--containerd-worker=false",
		"--oci-worker-gc=true",
		// Its own trace socket: the default, /run/buildkit/otel-grpc.sock,
		// is shared by every buildkitd on the machine, and two starting
		// at once fail with "address already in use".
		"--otel-socket-path", filepath.Join(dir, "otel-grpc.sock"),
		// Only the Maven resolve phase asks for the host's network (to
		// reach its recording mirror on 127.0.0.1); a solve gets it only
		// when its client asks, and builds never do.
		"--allow-insecure-entitlement=network.host")
	d.cmd.Stdout, d.cmd.Stderr = logf, logf
	// Its own process group: a Ctrl-C in the terminal goes to us, and we
	// stop the daemon in order.
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	if err := d.cmd.Start(); err != nil {
		logf.Close()
		return nil, fmt.Errorf("builder: starting buildkitd: %w", err)
	}
	go func() { d.done <- d.cmd.Wait() }()

	deadline := time.Now().Add(o.Timeout)
	for {
		select {
		case err := <-d.done:
			logf.Close()
			logTail, _ := os.ReadFile(logf.Name())
			return nil, fmt.Errorf("builder: buildkitd exited at start (%v)%s; its log (%s) ends:\n%s", err, daemonError(string(logTail)), logf.Name(), tail(string(logTail), 15))
		case <-ctx.Done():
			d.Stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if _, err := os.Stat(sock); err == nil {
			c, err := client.New(ctx, d.Addr)
			if err == nil {
				cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
				ws, err := c.ListWorkers(cctx)
				cancel()
				c.Close()
				if err == nil && len(ws) > 0 {
					return d, nil
				}
			}
		}
		if time.Now().After(deadline) {
			d.Stop()
			return nil, fmt.Errorf("builder: buildkitd did not answer within %s; see %s", o.Timeout, logf.Name())
		}
	}
}

// Stop asks the daemon to stop and waits for it (killing it after 15s).
func (d *Daemon) Stop() error {
	defer d.log.Close()
	if d.cmd.Process == nil {
		return nil
	}
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(15 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
	}
	return nil
}

// daemonError returns buildkitd's own error line from its log (it starts
// with "buildkitd: " and is followed by a stack trace that would push it out
// of the log's tail), as ": <line>", or "".
func daemonError(log string) string {
	for _, line := range strings.Split(log, "\n") {
		if msg, ok := strings.CutPrefix(line, "buildkitd: "); ok {
			return ": " + msg
		}
	}
	return ""
}
