package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSignalStops checks that SIGINT and SIGTERM stop a command that reads
// a long input: the built binary hashes a 1 TiB sparse artifact (minutes of
// work), is signalled once it has read a good part of a gigabyte, and must
// exit with 128+signal well before it could have finished. The bound is on
// the exit, not on speed: a command that ignores the signal runs for
// minutes.
func TestSignalStops(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	dir := t.TempDir()
	bin := filepath.Join(builtBinary(t), "pyrsia-build")
	runOK := func(args ...string) {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=pw")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "small"), []byte("small\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	runOK("keygen")
	runOK("attest", "--key", "cosign.key", "small")
	big := filepath.Join(dir, "big")
	f, err := os.Create(big)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(1 << 40); err != nil {
		t.Fatal(err)
	}
	f.Close()

	for _, tc := range []struct {
		name string
		sig  syscall.Signal
		args []string
	}{
		{"verify SIGINT", syscall.SIGINT, []string{"verify", "--key", "cosign.pub", "--bundle", "small.sigstore.json", "big"}},
		{"verify SIGTERM", syscall.SIGTERM, []string{"verify", "big", "--key", "cosign.pub", "--bundle", "small.sigstore.json"}},
		{"attest SIGINT", syscall.SIGINT, []string{"attest", "--key", "cosign.key", "--bundle", "big.json", "big"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			cmd := exec.Command(bin, tc.args...)
			cmd.Dir = dir
			cmd.Env = append(os.Environ(), "COSIGN_PASSWORD=pw")
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			// Wait until it is well into the artifact.
			for readBytes(cmd.Process.Pid) < 256<<20 {
				select {
				case err := <-done:
					t.Fatalf("exited before the signal: %v\n%s", err, stderr.String())
				case <-time.After(10 * time.Millisecond):
				}
			}
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 128+int(tc.sig) {
					t.Fatalf("got %v, want exit code %d\n%s", err, 128+int(tc.sig), stderr.String())
				}
				if !strings.Contains(stderr.String(), "context canceled") || !strings.Contains(stderr.String(), "hint: stopped by SIG") {
					t.Errorf("stderr does not say it was stopped:\n%s", stderr.String())
				}
			case <-time.After(30 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("still running 30s after %s (the artifact takes minutes)", tc.sig)
			}
		})
	}
}

// readBytes returns how many bytes process pid has read, from /proc.
func readBytes(pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/io")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "rchar: "); ok {
			n, _ := strconv.ParseInt(v, 10, 64)
			return n
		}
	}
	return 0
}
