package builder

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestUnifiedDiff(t *testing.T) {
	tests := []struct {
		name, a, b, want string
	}{
		{"equal", "x\ny\n", "x\ny\n", ""},
		{"both empty", "", "", ""},
		{"one line changed", "a\nb\nc\nd\ne\nf\ng\nh\ni\n", "a\nb\nc\nd\nE\nf\ng\nh\ni\n",
			"--- a/f\n+++ b/f\n@@ -2,7 +2,7 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n"},
		{"from empty", "", "x\ny\n", "--- a/f\n+++ b/f\n@@ -0,0 +1,2 @@\n+x\n+y\n"},
		{"to empty", "x\n", "", "--- a/f\n+++ b/f\n@@ -1 +0,0 @@\n-x\n"},
		{"no newline at end", "a\nb", "a\nb\n",
			"--- a/f\n+++ b/f\n@@ -1,2 +1,2 @@\n a\n-b\n\\ No newline at end of file\n+b\n"},
		{"two hunks", "1\n2\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\n14\n15\n", "1\nX\n3\n4\n5\n6\n7\n8\n9\n10\n11\n12\n13\nY\n15\n",
			"--- a/f\n+++ b/f\n@@ -1,5 +1,5 @@\n 1\n-2\n+X\n 3\n 4\n 5\n@@ -11,5 +11,5 @@\n 11\n 12\n 13\n-14\n+Y\n 15\n"},
		{"gap of 7 splits", "1\n2\n3\n4\n5\n6\n7\n8\n9\n", "X\n2\n3\n4\n5\n6\n7\n8\nY\n",
			"--- a/f\n+++ b/f\n@@ -1,4 +1,4 @@\n-1\n+X\n 2\n 3\n 4\n@@ -6,4 +6,4 @@\n 6\n 7\n 8\n-9\n+Y\n"},
		{"gap of 6 merges", "1\n2\n3\n4\n5\n6\n7\n8\n", "X\n2\n3\n4\n5\n6\n7\nY\n",
			"--- a/f\n+++ b/f\n@@ -1,8 +1,8 @@\n-1\n+X\n 2\n 3\n 4\n 5\n 6\n 7\n-8\n+Y\n"},
		{"insert in middle", "a\nb\nc\n", "a\nb\nnew\nc\n", "--- a/f\n+++ b/f\n@@ -1,3 +1,4 @@\n a\n b\n+new\n c\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := UnifiedDiff("a/f", "b/f", []byte(tt.a), []byte(tt.b), 0)
			if got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

func TestUnifiedDiffLimit(t *testing.T) {
	var a, b strings.Builder
	for i := range 100 {
		fmt.Fprintf(&a, "line %d\n", i)
		fmt.Fprintf(&b, "LINE %d\n", i)
	}
	got := UnifiedDiff("a/f", "b/f", []byte(a.String()), []byte(b.String()), 40)
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 40 {
		t.Errorf("got %d lines, want 40", len(lines))
	}
	// 2 headers + 1 hunk header + 200 lines = 203; 39 kept.
	if last := lines[len(lines)-1]; last != "... 164 more lines" {
		t.Errorf("got last line %q, want ... 164 more lines", last)
	}
}

// lcsLen is the length of the longest common subsequence, by dynamic
// programming.
func lcsLen(a, b []string) int {
	dp := make([][]int, len(a)+1)
	for i := range dp {
		dp[i] = make([]int, len(b)+1)
	}
	for i := len(a) - 1; i >= 0; i-- {
		for j := len(b) - 1; j >= 0; j-- {
			if a[i] == b[j] {
				dp[i][j] = dp[i+1][j+1] + 1
			} else {
				dp[i][j] = max(dp[i+1][j], dp[i][j+1])
			}
		}
	}
	return dp[0][0]
}

func TestEditScriptMinimal(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	randLines := func() []string {
		n := r.IntN(12)
		s := make([]string, n)
		for i := range s {
			s[i] = string(rune('a'+r.IntN(3))) + "\n"
		}
		return s
	}
	for i := range 3000 {
		a, b := randLines(), randLines()
		edits := editScript(a, b)
		// Applying the script to a gives b, and it keeps an LCS.
		var gotA, gotB []string
		kept := 0
		for _, e := range edits {
			switch e.kind {
			case ' ':
				if a[e.a] != b[e.b] {
					t.Fatalf("case %d: kept line %d/%d differs", i, e.a, e.b)
				}
				gotA, gotB = append(gotA, a[e.a]), append(gotB, b[e.b])
				kept++
			case '-':
				gotA = append(gotA, a[e.a])
			case '+':
				gotB = append(gotB, b[e.b])
			}
		}
		if !reflect.DeepEqual(gotA, a) && len(a) > 0 || !reflect.DeepEqual(gotB, b) && len(b) > 0 {
			t.Fatalf("case %d: script does not rebuild a=%q b=%q: %v", i, a, b, edits)
		}
		if want := lcsLen(a, b); kept != want {
			t.Fatalf("case %d: kept %d lines, want %d (a=%q b=%q)", i, kept, want, a, b)
		}
	}
}

// writeOut writes an output folder with a jar, a pom and an OCI layout.
func writeOut(t *testing.T, out, manifestMF, classBody, etcHello string) {
	t.Helper()
	ctx := context.Background()
	arts := filepath.Join(out, "artifacts")
	if err := os.MkdirAll(filepath.Join(arts, "image"), 0o755); err != nil {
		t.Fatal(err)
	}
	jar := filepath.Join(arts, "hello.jar")
	writeZip(t, jar, []zipFile{
		{"META-INF/", os.ModeDir | 0o755, ""},
		{"META-INF/MANIFEST.MF", 0o644, manifestMF},
		{"org/example/Hello.class", 0o644, classBody},
	})
	pom := filepath.Join(arts, "hello.pom")
	if err := os.WriteFile(pom, []byte("<project/>\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	helloLayout(t, filepath.Join(arts, "image"), etcHello)
	var m OutputManifest
	for _, a := range []struct{ name, path string }{{"hello.jar", "artifacts/hello.jar"}, {"hello.pom", ""}} {
		am, err := ManifestFile(ctx, a.name, filepath.Join(out, "artifacts", filepath.Base(a.name)))
		if err != nil {
			t.Fatal(err)
		}
		am.Path = a.path
		m.Artifacts = append(m.Artifacts, am)
	}
	am, err := ManifestOCILayout(ctx, "hello:1.0", filepath.Join(arts, "image"))
	if err != nil {
		t.Fatal(err)
	}
	m.Artifacts = append(m.Artifacts, am) // Path left empty: found by digest
	if err := WriteManifest(filepath.Join(out, "manifest.json"), &m); err != nil {
		t.Fatal(err)
	}
}

func TestDiff(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a, b, c := filepath.Join(dir, "a"), filepath.Join(dir, "b"), filepath.Join(dir, "c")
	mf := "Manifest-Version: 1.0\nCreated-By: Maven\nBuild-Jdk-Spec: 17\n"
	writeOut(t, a, mf, "\xca\xfe\xba\xbe\x00\x01", "hello\n")
	writeOut(t, b, strings.Replace(mf, "17", "21", 1), "\xca\xfe\xba\xbe\x00\x02", "hello, world\n")
	writeOut(t, c, mf, "\xca\xfe\xba\xbe\x00\x01", "hello\n")

	same, err := Diff(ctx, a, c)
	if err != nil {
		t.Fatal(err)
	}
	if !same.Same || len(same.Artifacts) != 3 {
		t.Fatalf("got %+v, want 3 identical artifacts", same)
	}
	var buf bytes.Buffer
	same.Print(&buf)
	if got := buf.String(); strings.Count(got, ": identical (sha256:") != 3 {
		t.Errorf("got report\n%s\nwant 3 identical artifacts", got)
	}

	d, err := Diff(ctx, a, b)
	if err != nil {
		t.Fatal(err)
	}
	if d.Same {
		t.Fatal("got Same, want a difference")
	}
	byName := map[string]ArtifactDiff{}
	for _, ad := range d.Artifacts {
		byName[ad.Name] = ad
	}
	jar := byName["hello.jar"]
	if want := []string{"META-INF/MANIFEST.MF", "org/example/Hello.class"}; !reflect.DeepEqual(jar.Changed, want) {
		t.Errorf("got changed %q, want %q", jar.Changed, want)
	}
	wantMF := "--- a/META-INF/MANIFEST.MF\n+++ b/META-INF/MANIFEST.MF\n@@ -1,3 +1,3 @@\n Manifest-Version: 1.0\n Created-By: Maven\n-Build-Jdk-Spec: 17\n+Build-Jdk-Spec: 21\n"
	if got := jar.TextDiffs["META-INF/MANIFEST.MF"]; got != wantMF {
		t.Errorf("got text diff\n%s\nwant\n%s", got, wantMF)
	}
	if _, ok := jar.TextDiffs["org/example/Hello.class"]; ok || len(jar.TextDiffs) != 1 {
		t.Errorf("got text diffs %q, want only MANIFEST.MF (the class is binary)", jar.TextDiffs)
	}
	if pom := byName["hello.pom"]; pom.DigestA != pom.DigestB || pom.Changed != nil {
		t.Errorf("got %+v, want hello.pom identical", pom)
	}
	img := byName["hello:1.0"]
	if want := []string{"layer 1: etc/hello"}; !reflect.DeepEqual(img.Changed, want) || len(img.Notes) != 0 {
		t.Errorf("got changed %q notes %q, want %q", img.Changed, img.Notes, want)
	}
	if got, want := img.TextDiffs["layer 1: etc/hello"], "--- a/etc/hello\n+++ b/etc/hello\n@@ -1 +1 @@\n-hello\n+hello, world\n"; got != want {
		t.Errorf("got text diff\n%s\nwant\n%s", got, want)
	}

	buf.Reset()
	d.Print(&buf)
	report := buf.String()
	for _, want := range []string{
		"hello.jar: sha256:", "… vs sha256:",
		"  changed: META-INF/MANIFEST.MF\n    --- a/META-INF/MANIFEST.MF\n    +++ b/META-INF/MANIFEST.MF\n",
		"    +Build-Jdk-Spec: 21\n  changed: org/example/Hello.class\n",
		"hello.pom: identical",
		"  changed: layer 1: etc/hello\n    --- a/etc/hello\n",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("got report\n%s\nwant it to hold %q", report, want)
		}
	}

	// An artifact changed after its manifest was written gives a note,
	// not a wrong diff.
	writeZip(t, filepath.Join(b, "artifacts", "hello.jar"), []zipFile{{"META-INF/MANIFEST.MF", 0o644, "tampered\n"}})
	d, err = Diff(ctx, a, b)
	if err != nil {
		t.Fatal(err)
	}
	for _, ad := range d.Artifacts {
		if ad.Name == "hello.jar" && (len(ad.Notes) != 1 || !strings.Contains(ad.Notes[0], "does not match the manifest") || ad.TextDiffs != nil) {
			t.Errorf("got notes %q diffs %q, want a note about the changed jar", ad.Notes, ad.TextDiffs)
		}
	}
}

func TestDiffAddedRemoved(t *testing.T) {
	dir := t.TempDir()
	d := "sha256:" + sha([]byte("x"))
	f := func(p string) FileEntry {
		return FileEntry{Path: p, Size: 1, SHA256: sha([]byte(p)), Mode: "0644", Type: FileRegular}
	}
	write := func(out string, m *OutputManifest) {
		os.MkdirAll(out, 0o755)
		if err := WriteManifest(filepath.Join(out, "manifest.json"), m); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "a"), &OutputManifest{Artifacts: []ArtifactManifest{
		{Name: "x.jar", Digest: d, Type: ArtifactZip, Files: []FileEntry{f("keep"), f("old")}},
		{Name: "gone.pom", Digest: d, Type: ArtifactFile, Files: []FileEntry{f("gone.pom")}},
	}})
	mod := f("keep")
	mod.Mode = "0755"
	write(filepath.Join(dir, "b"), &OutputManifest{Artifacts: []ArtifactManifest{
		{Name: "x.jar", Digest: "sha256:" + sha([]byte("y")), Type: ArtifactZip, Files: []FileEntry{mod, f("new")}},
	}})
	res, err := Diff(context.Background(), filepath.Join(dir, "a"), filepath.Join(dir, "b"))
	if err != nil {
		t.Fatal(err)
	}
	want := &DiffResult{Artifacts: []ArtifactDiff{
		{Name: "gone.pom", DigestA: d},
		{Name: "x.jar", DigestA: d, DigestB: "sha256:" + sha([]byte("y")), Added: []string{"new"}, Removed: []string{"old"}, Changed: []string{"keep"}},
	}}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("got %+v, want %+v", res, want)
	}
	var buf bytes.Buffer
	res.Print(&buf)
	for _, s := range []string{"gone.pom: only in A", "  removed: old\n", "  added: new\n", "  changed: keep\n"} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("got report\n%s\nwant it to hold %q", buf.String(), s)
		}
	}
	if _, err := Diff(context.Background(), filepath.Join(dir, "a"), filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "manifest.json") {
		t.Errorf("got %v, want an error naming manifest.json", err)
	}
}

func TestEditScriptFarApart(t *testing.T) {
	// Past maxEditDistance the script removes all and adds all, and is
	// still a correct script.
	var a, b []string
	for i := range maxEditDistance {
		a = append(a, fmt.Sprintf("a%d\n", i))
		b = append(b, fmt.Sprintf("b%d\n", i))
	}
	a = append([]string{"same\n"}, append(a, "end\n")...)
	b = append([]string{"same\n"}, append(b, "end\n")...)
	var gotB []string
	for _, e := range editScript(a, b) {
		if e.kind != '-' {
			gotB = append(gotB, b[e.b])
		}
	}
	if !reflect.DeepEqual(gotB, b) {
		t.Errorf("script does not rebuild b")
	}
	d := UnifiedDiff("a/f", "b/f", []byte(strings.Join(a, "")), []byte(strings.Join(b, "")), 5)
	if !strings.HasPrefix(d, "--- a/f\n+++ b/f\n@@ -1,2002 +1,2002 @@\n same\n... 4001 more lines\n") {
		t.Errorf("got %q", d)
	}
}

func ExampleUnifiedDiff() {
	a := "Manifest-Version: 1.0\nCreated-By: Maven\nBuild-Jdk-Spec: 17\n"
	b := "Manifest-Version: 1.0\nCreated-By: Maven\nBuild-Jdk-Spec: 21\n"
	fmt.Print(UnifiedDiff("a/META-INF/MANIFEST.MF", "b/META-INF/MANIFEST.MF", []byte(a), []byte(b), 40))
	// Output:
	// --- a/META-INF/MANIFEST.MF
	// +++ b/META-INF/MANIFEST.MF
	// @@ -1,3 +1,3 @@
	//  Manifest-Version: 1.0
	//  Created-By: Maven
	// -Build-Jdk-Spec: 17
	// +Build-Jdk-Spec: 21
}
