package image

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeDebootstrap is a shell script that fails its first failures runs
// with the line fail prints, then succeeds; it counts its runs in a file.
func fakeDebootstrap(t *testing.T, failures int, fail string) (*exec.Cmd, func() int) {
	t.Helper()
	dir := t.TempDir()
	count := filepath.Join(dir, "count")
	script := `n=$(cat "$1" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$1"
if [ $n -le ` + strconv.Itoa(failures) + ` ]; then echo "` + fail + `"; exit 1; fi
echo "I: Base system installed successfully."`
	cmd := exec.Command("/bin/sh", "-c", script, "sh", count)
	return cmd, func() int {
		b, _ := os.ReadFile(count)
		n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
		return n
	}
}

func TestDebootstrapRetriesFailedDownloads(t *testing.T) {
	old := debootstrapPause
	debootstrapPause = time.Millisecond
	t.Cleanup(func() { debootstrapPause = old })

	cmd, runs := fakeDebootstrap(t, 2, "E: Couldn't download packages: adduser ant")
	cleaned := 0
	var out tailBuffer
	if err := runDebootstrap(context.Background(), cmd, io.Discard, &out, func() error { cleaned++; return nil }); err != nil {
		t.Fatalf("two failed downloads then success: %v", err)
	}
	if runs() != 3 || cleaned != 2 {
		t.Fatalf("ran %d times and cleaned %d times, want 3 and 2", runs(), cleaned)
	}
	if strings.Contains(string(out.b), "Couldn't download") {
		t.Fatalf("the output kept an earlier try's failure: %q", out.b)
	}

	// Downloads that never come: three tries, then the error.
	cmd, runs = fakeDebootstrap(t, 9, "E: Couldn't download packages: adduser")
	if err := runDebootstrap(context.Background(), cmd, io.Discard, &out, func() error { return nil }); err == nil {
		t.Fatal("a debootstrap that always fails succeeded")
	}
	if runs() != debootstrapTries {
		t.Fatalf("ran %d times, want %d", runs(), debootstrapTries)
	}
}

func TestDebootstrapDoesNotRetryOtherFailures(t *testing.T) {
	cmd, runs := fakeDebootstrap(t, 1, "E: No such script: /usr/share/debootstrap/scripts/nosuch")
	if err := runDebootstrap(context.Background(), cmd, io.Discard, &tailBuffer{}, func() error { t.Fatal("cleaned after a failure that is not a download"); return nil }); err == nil {
		t.Fatal("a failed debootstrap succeeded")
	}
	if runs() != 1 {
		t.Fatalf("ran %d times, want 1", runs())
	}
}
