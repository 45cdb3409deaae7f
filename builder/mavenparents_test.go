package builder

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func pomText(gav [3]string, packaging, parent string) string {
	s := "<project><modelVersion>4.0.0</modelVersion>" + parent
	if gav[0] != "" {
		s += "<groupId>" + gav[0] + "</groupId>"
	}
	s += "<artifactId>" + gav[1] + "</artifactId>"
	if gav[2] != "" {
		s += "<version>" + gav[2] + "</version>"
	}
	if packaging != "" {
		s += "<packaging>" + packaging + "</packaging>"
	}
	return s + "</project>\n"
}

func parentText(g, a, v, extra string) string {
	return "<parent><groupId>" + g + "</groupId><artifactId>" + a + "</artifactId><version>" + v + "</version>" + extra + "</parent>"
}

// TestAddReactorParents: the poms of the source that published poms name
// as parents, and theirs, are added as artifactId-version.pom; a parent
// outside the source, a build output's pom and a pom of another
// coordinate at the relativePath are not.
func TestAddReactorParents(t *testing.T) {
	src, out := t.TempDir(), t.TempDir()
	files := map[string]string{
		// The root: its parent is in the repository, not in the source.
		"pom.xml": pomText([3]string{"org.x", "x-parent", "1.0"}, "pom", parentText("org.apache", "apache", "29", "")),
		// Modules found by the default relativePath.
		"lib/pom.xml": pomText([3]string{"", "lib", ""}, "", parentText("org.x", "x-parent", "1.0", "")),
		// A nested parent, itself a child of the root.
		"tools/pom.xml":     pomText([3]string{"", "tools-parent", ""}, "pom", parentText("org.x", "x-parent", "1.0", "")),
		"tools/cli/pom.xml": pomText([3]string{"", "cli", ""}, "", parentText("org.x", "tools-parent", "1.0", "")),
		// No relativePath: found by coordinate in the reactor.
		"standalone/pom.xml": pomText([3]string{"", "standalone", ""}, "", parentText("org.x", "bom-parent", "1.0", "<relativePath/>")),
		"boms/pom.xml":       pomText([3]string{"org.x", "bom-parent", "1.0"}, "pom", ""),
		// Build outputs and hidden folders are not the source's poms.
		"target/pom.xml":       pomText([3]string{"org.x", "ghost", "1.0"}, "pom", ""),
		".mvn/wrapper/pom.xml": pomText([3]string{"org.x", "ghost", "1.0"}, "pom", ""),
		"lib/nested/pom.xml":   pomText([3]string{"", "nested", ""}, "", parentText("org.x", "ghost", "1.0", "")),
	}
	for name, body := range files {
		p := filepath.Join(src, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	publish := map[string]string{
		"lib-1.0.jar":        "jar",
		"lib-1.0.pom":        files["lib/pom.xml"],
		"cli-1.0.pom":        files["tools/cli/pom.xml"],
		"standalone-1.0.pom": files["standalone/pom.xml"],
		"nested-1.0.pom":     files["lib/nested/pom.xml"],
	}
	for name, body := range publish {
		if err := os.WriteFile(filepath.Join(out, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	added, err := addReactorParents(src, out)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(added)
	if want := []string{"bom-parent-1.0.pom", "tools-parent-1.0.pom", "x-parent-1.0.pom"}; !slices.Equal(added, want) {
		t.Fatalf("added %q, want %q", added, want)
	}
	for name, src := range map[string]string{"x-parent-1.0.pom": "pom.xml", "tools-parent-1.0.pom": "tools/pom.xml", "bom-parent-1.0.pom": "boms/pom.xml"} {
		if got, _ := os.ReadFile(filepath.Join(out, name)); !bytes.Equal(got, []byte(files[src])) {
			t.Errorf("%s is %q, want the source's %s", name, got, src)
		}
	}
	// Again: nothing more to add.
	if added, err := addReactorParents(src, out); err != nil || len(added) != 0 {
		t.Fatalf("a second pass added %q, %v", added, err)
	}
}

// TestAddReactorParentsAmbiguous: two poms of the parent's coordinate and
// none at the relativePath: neither is taken.
func TestAddReactorParentsAmbiguous(t *testing.T) {
	src, out := t.TempDir(), t.TempDir()
	p := pomText([3]string{"org.x", "p", "1.0"}, "pom", "")
	child := pomText([3]string{"", "c", ""}, "", parentText("org.x", "p", "1.0", "<relativePath/>"))
	for name, body := range map[string]string{"a/pom.xml": p, "b/pom.xml": p + " ", "c/pom.xml": child} {
		os.MkdirAll(filepath.Join(src, filepath.Dir(name)), 0o755)
		os.WriteFile(filepath.Join(src, name), []byte(body), 0o644)
	}
	os.WriteFile(filepath.Join(out, "c-1.0.pom"), []byte(child), 0o644)
	if added, err := addReactorParents(src, out); err != nil || len(added) != 0 {
		t.Fatalf("added %q, %v; want nothing", added, err)
	}
}
