package builder

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// The parent poms a consumer needs
//
// A published module's pom names its parent (<parent>), and Maven needs
// the parent's pom to read the module's: a multi-module build whose
// parent is part of its own source (the reactor's root pom, say) must
// publish that pom too, or nobody can resolve the modules it published.
// The default artifact collection therefore adds, as pom-only artifacts
// named artifactId-version.pom, every pom of the source tree that a
// published pom names as its parent, and their parents in turn, as far as
// they are in the source. Maven finds a parent by its relativePath
// (default ../pom.xml) when the pom there has the parent's coordinate,
// else by coordinate among the projects of the build; so does this. A
// parent outside the source (org.apache:apache, say) is in the Maven
// repository already, and in the lock.

// maxReactorPoms bounds the pom.xml files read from a source tree, and
// maxPomSize each of them.
const (
	maxReactorPoms = 10000
	maxPomSize     = 4 << 20
)

// pomModel is what the parent search reads of a pom.
type pomModel struct {
	GroupID    string `xml:"groupId"`
	ArtifactID string `xml:"artifactId"`
	Version    string `xml:"version"`
	Packaging  string `xml:"packaging"`
	Parent     *struct {
		GroupID      string  `xml:"groupId"`
		ArtifactID   string  `xml:"artifactId"`
		Version      string  `xml:"version"`
		RelativePath *string `xml:"relativePath"`
	} `xml:"parent"`
}

// reactorPom is a pom.xml of the source tree.
type reactorPom struct {
	rel   string // its path in the source tree, slash-separated
	data  []byte
	model pomModel
	gav   string // groupId:artifactId:version, "" if not a plain one
}

func parsePom(data []byte) (pomModel, error) {
	var m pomModel
	err := xml.Unmarshal(data, &m)
	return m, err
}

// coordinate returns the pom's own groupId:artifactId:version (groupId
// and version inherited from the parent as Maven does), or "" when it is
// not a plain coordinate (a property such as ${revision}).
func (m pomModel) coordinate() string {
	g, v := strings.TrimSpace(m.GroupID), strings.TrimSpace(m.Version)
	if m.Parent != nil {
		if g == "" {
			g = strings.TrimSpace(m.Parent.GroupID)
		}
		if v == "" {
			v = strings.TrimSpace(m.Parent.Version)
		}
	}
	return plainGAV(g, strings.TrimSpace(m.ArtifactID), v)
}

// parentCoordinate returns the coordinate the pom names as its parent, or
// "" for none (or not a plain one).
func (m pomModel) parentCoordinate() string {
	if m.Parent == nil {
		return ""
	}
	return plainGAV(strings.TrimSpace(m.Parent.GroupID), strings.TrimSpace(m.Parent.ArtifactID), strings.TrimSpace(m.Parent.Version))
}

func plainGAV(g, a, v string) string {
	if !mavenPartRE.MatchString(g) || !mavenPartRE.MatchString(a) || !mavenVerRE.MatchString(v) {
		return ""
	}
	return g + ":" + a + ":" + v
}

// readReactor reads every pom.xml of the source tree srcDir, leaving out
// build outputs (target/) and hidden folders. Symlinks are not followed.
func readReactor(srcDir string) ([]*reactorPom, error) {
	var poms []*reactorPom
	err := filepath.WalkDir(srcDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if p != srcDir && (d.Name() == "target" || strings.HasPrefix(d.Name(), ".")) {
				return filepath.SkipDir
			}
			return nil
		}
		if d.Name() != "pom.xml" || !d.Type().IsRegular() {
			return nil
		}
		if len(poms) >= maxReactorPoms {
			return fmt.Errorf("more than %d pom.xml files", maxReactorPoms)
		}
		data, err := readLimited(p, maxPomSize)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(srcDir, p)
		if err != nil {
			return err
		}
		rp := &reactorPom{rel: filepath.ToSlash(rel), data: data}
		if rp.model, err = parsePom(data); err == nil {
			rp.gav = rp.model.coordinate()
		}
		poms = append(poms, rp)
		return nil
	})
	return poms, err
}

// findParent returns the reactor pom that child (at childRel, "" when
// its place is not known) names as its parent: the one at its
// relativePath if that pom has the parent's coordinate, else the only
// one of the reactor with that coordinate. A parent must be of packaging
// pom.
func findParent(poms []*reactorPom, child pomModel, childRel string) *reactorPom {
	want := child.parentCoordinate()
	if want == "" {
		return nil
	}
	isParent := func(p *reactorPom) bool {
		return p.gav == want && strings.TrimSpace(p.model.Packaging) == "pom"
	}
	if childRel != "" {
		rel := "../pom.xml"
		if rp := child.Parent.RelativePath; rp != nil {
			rel = strings.TrimSpace(*rp)
		}
		if rel != "" {
			p := path.Join(path.Dir(childRel), rel)
			if !strings.HasSuffix(p, ".xml") {
				p = path.Join(p, "pom.xml")
			}
			for _, c := range poms {
				if c.rel == p && isParent(c) {
					return c
				}
			}
		}
	}
	var found *reactorPom
	for _, c := range poms {
		if isParent(c) {
			if found != nil {
				return nil // two projects of that coordinate: Maven would refuse the build
			}
			found = c
		}
	}
	return found
}

// addReactorParents writes into artifactsDir, as artifactId-version.pom,
// the poms of srcDir that the poms in artifactsDir name as parents, and
// their parents, as far as they are in srcDir. It returns the names
// added.
func addReactorParents(srcDir, artifactsDir string) ([]string, error) {
	des, err := os.ReadDir(artifactsDir)
	if err != nil {
		return nil, err
	}
	type pending struct {
		model pomModel
		rel   string
	}
	var todo []pending
	var poms []*reactorPom
	have := map[string]bool{}
	for _, d := range des {
		have[d.Name()] = true
	}
	for _, d := range des {
		if !strings.HasSuffix(d.Name(), ".pom") || !d.Type().IsRegular() {
			continue
		}
		data, err := readLimited(filepath.Join(artifactsDir, d.Name()), maxPomSize)
		if err != nil {
			return nil, err
		}
		m, err := parsePom(data)
		if err != nil || m.parentCoordinate() == "" {
			continue
		}
		if poms == nil {
			if poms, err = readReactor(srcDir); err != nil {
				return nil, fmt.Errorf("builder: the source's poms: %w", err)
			}
		}
		// Where the module is: the source's pom.xml it was copied from.
		rel := ""
		for _, p := range poms {
			if bytes.Equal(p.data, data) {
				rel = p.rel
				break
			}
		}
		todo = append(todo, pending{m, rel})
	}
	var added []string
	seen := map[*reactorPom]bool{}
	for len(todo) > 0 {
		c := todo[0]
		todo = todo[1:]
		p := findParent(poms, c.model, c.rel)
		if p == nil || seen[p] {
			continue
		}
		seen[p] = true
		_, a, v := splitCoordinate(p.gav)
		name := a + "-" + v + ".pom"
		if !have[name] {
			if err := os.WriteFile(filepath.Join(artifactsDir, name), p.data, 0o644); err != nil {
				return nil, err
			}
			have[name] = true
			added = append(added, name)
		}
		todo = append(todo, pending{p.model, p.rel})
	}
	return added, nil
}
