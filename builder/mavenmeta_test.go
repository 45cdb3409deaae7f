package builder

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCompareMavenVersions(t *testing.T) {
	// Each is lower than the next, as Maven's ComparableVersion orders them.
	order := []string{"1.0-alpha-1", "1.0-alpha-2", "1.0-beta", "1.0-M1", "1.0-RC1", "1.0", "1.0-sp1", "1.0-xyz", "1.0.1", "1.2", "1.10", "2.0.0-alpha", "2", "10.0"}
	for i := range order {
		for j := range order {
			c := compareMavenVersions(order[i], order[j])
			if (i < j) != (c < 0) || (i == j) != (c == 0) {
				t.Errorf("compare(%s, %s) = %d", order[i], order[j], c)
			}
		}
	}
	for _, eq := range [][2]string{{"1.0", "1.0.0"}, {"1", "1.0"}, {"1.0-ga", "1.0"}, {"1.0-final", "1"}} {
		if c := versionItems(eq[0]); len(c) != len(versionItems(eq[1])) || compareMavenVersions(eq[0], eq[1]) != strings.Compare(eq[0], eq[1]) {
			t.Errorf("%s and %s are one version to Maven (items %v and %v)", eq[0], eq[1], c, versionItems(eq[1]))
		}
	}
}

// TestLockMetadata: the metadata a build sees lists the lock's versions
// of the artifact in Maven's order, the highest as release and latest, and
// the lock's repository holds it where offline Maven reads it; a lock
// whose metadata digest does not match what the lock makes is refused.
func TestLockMetadata(t *testing.T) {
	h := strings.Repeat("a", 64)
	l := &Lock{Version: 1, Files: []LockFile{
		{Coordinate: "org.x:lib:1.10", File: "lib-1.10.pom", SHA256: h},
		{Coordinate: "org.x:lib:1.9", File: "lib-1.9.jar", SHA256: h},
		{Coordinate: "org.x:lib:1.9", File: "lib-1.9.pom", SHA256: h},
		{Coordinate: "org.x:other:3", File: "other-3.pom", SHA256: h},
	}}
	got := string(lockMetadata(l, "org.x:lib"))
	want := `<?xml version="1.0" encoding="UTF-8"?>
<metadata>
  <groupId>org.x</groupId>
  <artifactId>lib</artifactId>
  <versioning>
    <latest>1.10</latest>
    <release>1.10</release>
    <versions>
      <version>1.9</version>
      <version>1.10</version>
    </versions>
  </versioning>
</metadata>
`
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}
	if lockMetadata(l, "org.x:absent") != nil {
		t.Fatal("metadata of an artifact the lock has no version of")
	}
	entries := metadataEntries(l, []string{"org.x:lib", "org.x:absent", "org:x"})
	if len(entries) != 1 || entries[0].Path() != "org/x/lib/maven-metadata.xml" || entries[0].SHA256 != sha([]byte(want)) {
		t.Fatalf("entries %+v, want the one of org.x:lib", entries)
	}
	l.Files = append(l.Files[:2], append(entries, l.Files[2:]...)...)
	data, err := l.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	l2, err := ParseLock(data)
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	cache := t.TempDir()
	for _, f := range l2.Files {
		if !f.isMetadata() {
			os.WriteFile(filepath.Join(cache, f.SHA256), []byte("x"), 0o644)
		}
	}
	// The files are not what h says: only the metadata is checked here.
	_, err = lockRepo(context.Background(), l2, nil, cache, dir, io.Discard)
	if err == nil || strings.Contains(err.Error(), "maven-metadata") {
		t.Fatalf("got %v, want the first non-metadata file to fail (no repository, wrong cache)", err)
	}
	md := &Lock{Version: 1, Files: entries}
	_, err = lockRepo(context.Background(), md, nil, "", dir, io.Discard)
	if err == nil || !strings.Contains(err.Error(), "no version of it") {
		t.Fatalf("got %v, want a refusal of metadata without versions", err)
	}

	// With real files.
	jar, pom := []byte("jar"), []byte("<project/>")
	l = &Lock{Version: 1, Files: []LockFile{
		{Coordinate: "org.x:lib:1.9", File: "lib-1.9.jar", SHA256: sha(jar)},
		{Coordinate: "org.x:lib:1.9", File: "lib-1.9.pom", SHA256: sha(pom)},
	}}
	l.Files = append(l.Files, metadataEntries(l, []string{"org.x:lib"})...)
	_, url := newRepo(t, map[string][]byte{"org/x/lib/1.9/lib-1.9.jar": jar, "org/x/lib/1.9/lib-1.9.pom": pom})
	dir = t.TempDir()
	if _, err := lockRepo(context.Background(), l, newRepoClient(url), "", dir, io.Discard); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "org/x/lib", localMetadataFile))
	if err != nil || !strings.Contains(string(b), "<release>1.9</release>") {
		t.Fatalf("the lock's repository holds %q, %v", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "org/x/lib/maven-metadata.xml")); err == nil {
		t.Fatal("the metadata is also under the repository's name, which offline Maven does not read")
	}

	l.Files[2].SHA256 = h
	_, err = lockRepo(context.Background(), l, newRepoClient(url), "", t.TempDir(), io.Discard)
	for _, want := range []string{"org/x/lib/maven-metadata.xml", "sha256:" + h, "pyrsia-build lock SPEC"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want an error holding %q", err, want)
		}
	}
}
