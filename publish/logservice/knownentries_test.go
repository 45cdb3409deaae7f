package logservice_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pyrsia/pyrsia-build/publish/logservice"
	"github.com/pyrsia/pyrsia-build/publish/tlog"
)

func testdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("../testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(b, []byte("\n"))
}

// TestOpenKnownEntries: with Options.KnownEntries, Open refuses a log
// holding an entry this build cannot read (a publish entry or a policy
// change that does not parse, another kind, no entry at all) with an
// error naming the log, the index and the problem; a log of publish
// entries and policy changes opens, and its changes are listed. Without
// the option such an entry is kept and not indexed, as before.
func TestOpenKnownEntries(t *testing.T) {
	good := [][]byte{testdata(t, "entry/valid-oci.json"), testdata(t, "policychange/valid-remove-node.json"), testdata(t, "entry/valid-maven.json")}
	bad := []struct {
		name  string
		entry []byte
		want  string
		// changes is what PolicyChanges lists without KnownEntries: an
		// entry of kind policy, parsed or not.
		changes int
	}{
		{"truncated publish entry", testdata(t, "entry/invalid-truncated.json"), "publish: entry", 1},
		{"policy change not in canonical form", testdata(t, "policychange/invalid-pretty.json"), "policy", 2},
		{"unknown kind", []byte(`{"v":1,"kind":"membership"}`), `unknown kind "membership"`, 1},
		{"not an entry", []byte("raw bytes"), "publish: entry", 1},
		{"version 2", testdata(t, "entry/invalid-version-2.json"), "version", 1},
	}
	openWith := func(dir string, k keys, known bool) (*logservice.Service, error) {
		return logservice.Open(context.Background(), logservice.Options{
			Log:           tlog.Options{Dir: filepath.Join(dir, "log"), Origin: origin, Signer: k.logSigner},
			Final:         logservice.CosignedBy(origin, k.logVerifier, k.verifiers, len(k.verifiers)),
			RetryInterval: time.Millisecond,
			KnownEntries:  known,
		})
	}
	write := func(t *testing.T, entries ...[]byte) (string, keys) {
		t.Helper()
		dir := t.TempDir()
		k := testKeys(t, dir, 0)
		s, err := openWith(dir, k, true)
		if err != nil {
			t.Fatal(err)
		}
		ctx := waitCtx(t)
		for _, e := range entries {
			if _, err := s.Append(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return dir, k
	}

	t.Run("known", func(t *testing.T) {
		dir, k := write(t, good...)
		s, err := openWith(dir, k, true)
		if err != nil {
			t.Fatalf("a log of publish entries and a policy change: %v", err)
		}
		defer s.Close()
		if got := s.PolicyChanges(s.Size()); len(got) != 1 || got[0] != 1 {
			t.Errorf("policy changes: %v, want [1]", got)
		}
		if n := s.Index().Len(); n != 2 {
			t.Errorf("indexed %d entries, want 2", n)
		}
	})
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			dir, k := write(t, append(append([][]byte{}, good...), tc.entry)...)
			s, err := openWith(dir, k, true)
			if err == nil {
				s.Close()
				t.Fatalf("Open with KnownEntries took a log holding %q at index 3", tc.entry)
			}
			t.Logf("Open: %v", err)
			for _, want := range []string{filepath.Join(dir, "log"), "entry 3 ", tc.want} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			s, err = openWith(dir, k, false)
			if err != nil {
				t.Fatalf("Open without KnownEntries: %v", err)
			}
			defer s.Close()
			if n, c := s.Index().Len(), s.PolicyChanges(s.Size()); n != 2 || len(c) != tc.changes {
				t.Errorf("without KnownEntries: %d indexed, changes %v; want 2 and %d changes", n, c, tc.changes)
			}
		})
	}
}

// TestPolicyChangesSameAfterRestart: the policy changes a log lists are
// those a build node's check judges so (publish.LogEntryKind), as the
// entries are appended and after Open reads them back: a policy change
// behind a publish entry's prefix ({"v":1,"kind":"publish","kind":
// "policy",...}, which EntryKind's decoding reads as kind policy, its
// last "kind") is no change before a restart, and was one after it, so
// that every later proof bundle carried an entry that is no policy
// change and did not verify (review9).
func TestPolicyChangesSameAfterRestart(t *testing.T) {
	change := testdata(t, "policychange/valid-remove-node.json")
	rest, ok := bytes.CutPrefix(change, []byte(`{"v":1,"kind":"policy",`))
	if !ok {
		t.Fatalf("the change starts %.40q", change)
	}
	hidden := append([]byte(`{"v":1,"kind":"publish","kind":"policy",`), rest...)
	dir := t.TempDir()
	k := testKeys(t, dir, 0)
	openLog := func() *logservice.Service {
		t.Helper()
		s, err := logservice.Open(context.Background(), logservice.Options{
			Log:           tlog.Options{Dir: filepath.Join(dir, "log"), Origin: origin, Signer: k.logSigner},
			Final:         logservice.CosignedBy(origin, k.logVerifier, k.verifiers, len(k.verifiers)),
			RetryInterval: time.Millisecond,
		})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := openLog()
	ctx := waitCtx(t)
	for _, e := range [][]byte{testdata(t, "entry/valid-oci.json"), change, hidden, testdata(t, "entry/valid-maven.json")} {
		if _, err := s.Append(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	before := s.PolicyChanges(s.Size())
	if len(before) != 1 || before[0] != 1 {
		t.Fatalf("policy changes as appended: %v, want [1]", before)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openLog()
	defer s.Close()
	if after := s.PolicyChanges(s.Size()); len(after) != 1 || after[0] != 1 {
		t.Errorf("policy changes after a restart: %v, want %v as before it", after, before)
	}
}
