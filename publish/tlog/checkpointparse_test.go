package tlog

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStoredCheckpointStrict: the stored checkpoint is read with the
// module's one checkpoint parser (witness.ParseCheckpointText), which
// refuses what C2SP tlog-checkpoint does not allow and the log never
// writes: a size with a leading zero, a root hash that is not 32 bytes, a
// note without signatures. Open reports each as a damaged checkpoint.
func TestStoredCheckpointStrict(t *testing.T) {
	s, _ := testKeys(t)
	dir := t.TempDir()
	l := openLog(t, dir, s, nil)
	for i := range 3 {
		if _, err := l.Append(context.Background(), entry(i)); err != nil {
			t.Fatal(err)
		}
	}
	cp, err := publishCommit(l, context.Background())
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	path := filepath.Join(dir, "checkpoint")
	good := string(cp.Note)
	lines := strings.SplitN(good, "\n", 4) // origin, size, root, rest
	for name, bad := range map[string]string{
		"leading zero": lines[0] + "\n03\n" + lines[2] + "\n" + lines[3],
		"short root":   lines[0] + "\n3\n" + "AAAA\n" + lines[3],
		"no signature": lines[0] + "\n3\n" + lines[2] + "\n\n",
	} {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
				t.Fatal(err)
			}
			l, err := Open(context.Background(), Options{Dir: dir, Origin: testOrigin, Signer: s, Logger: quiet})
			if err == nil {
				l.Close()
			}
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Path != "checkpoint" {
				t.Fatalf("Open: got %v, want a CorruptError naming the checkpoint", err)
			}
		})
	}
	if err := os.WriteFile(path, cp.Note, 0o644); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, dir, s, nil)
	defer l.Close()
	if got := l.Checkpoint(); got == nil || got.Size != 3 {
		t.Fatalf("after restoring the checkpoint: got %v, want size 3", got)
	}
}
