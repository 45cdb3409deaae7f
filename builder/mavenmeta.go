package builder

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"unicode"
)

// Maven metadata in a lock
//
// Maven reads an artifact's maven-metadata.xml (groupId/artifactId/
// maven-metadata.xml) to resolve a version range ("[1.0,2.0)"), RELEASE
// or LATEST, or a plugin without a version. The repository's file lists
// every version ever published and so changes with each release: its
// bytes cannot be pinned. A lock instead pins the metadata the build sees,
// made from the lock itself: an entry
//
//	{"coordinate": "groupId:artifactId", "file": "maven-metadata.xml", "sha256": ...}
//
// says that resolve read that artifact's metadata, and its sha256 is that
// of the metadata [lockMetadata] makes from the lock: the versions of the
// artifact that the lock pins, with the highest as release and latest.
// The build finds it in its local repository as maven-metadata-local.xml
// (Maven reads the local repository's metadata in offline mode too), so a
// range resolves to the highest locked version in range: the one resolve
// chose, since resolve chose the highest the repository had. Group
// metadata (groupId/maven-metadata.xml, the plugin prefixes of a goal
// such as dependency:tree) is not locked: name plugins by
// groupId:artifactId:version:goal in the recipe, or declare them in the pom.

// metadataFile is the file name of an artifact's metadata in a lock.
const metadataFile = "maven-metadata.xml"

// localMetadataFile is the name Maven gives the local repository's own
// metadata, which it reads in offline mode as well.
const localMetadataFile = "maven-metadata-local.xml"

// isMetadata reports whether f is an artifact's metadata (coordinate
// groupId:artifactId).
func (f LockFile) isMetadata() bool {
	return f.File == metadataFile && strings.Count(f.Coordinate, ":") == 1
}

// metadataCandidate returns the groupId:artifactId a repository path of
// artifact metadata names; ok is false for anything else. A group's
// metadata (groupId/maven-metadata.xml) also looks like one; the lock
// keeps only those whose artifact it holds files of.
func metadataCandidate(p string) (ga string, ok bool) {
	parts := strings.Split(p, "/")
	if len(parts) < 3 || parts[len(parts)-1] != metadataFile {
		return "", false
	}
	g, a := strings.Join(parts[:len(parts)-2], "."), parts[len(parts)-2]
	if !mavenPartRE.MatchString(g) || !mavenPartRE.MatchString(a) || strings.Contains(g, "..") {
		return "", false
	}
	return g + ":" + a, true
}

// lockedVersions returns the versions of groupId:artifactId that the lock
// holds files of, lowest first in Maven's order.
func lockedVersions(l *Lock, ga string) []string {
	var vs []string
	for _, f := range l.Files {
		if f.isMetadata() {
			continue
		}
		g, a, v := splitCoordinate(f.Coordinate)
		if g+":"+a == ga && !slices.Contains(vs, v) {
			vs = append(vs, v)
		}
	}
	slices.SortFunc(vs, compareMavenVersions)
	return vs
}

// lockMetadata is the maven-metadata.xml of groupId:artifactId that a
// build sees: the lock's versions of it. Its bytes depend on the lock
// alone; nil when the lock holds no version of it.
func lockMetadata(l *Lock, ga string) []byte {
	vs := lockedVersions(l, ga)
	if len(vs) == 0 {
		return nil
	}
	g, a, _ := splitCoordinate(ga)
	var b bytes.Buffer
	b.WriteString("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<metadata>\n")
	fmt.Fprintf(&b, "  <groupId>%s</groupId>\n  <artifactId>%s</artifactId>\n  <versioning>\n", g, a)
	last := vs[len(vs)-1]
	fmt.Fprintf(&b, "    <latest>%s</latest>\n    <release>%s</release>\n    <versions>\n", last, last)
	for _, v := range vs {
		fmt.Fprintf(&b, "      <version>%s</version>\n", v)
	}
	b.WriteString("    </versions>\n  </versioning>\n</metadata>\n")
	return b.Bytes()
}

// metadataEntries returns the lock entries of the artifacts' metadata
// that resolve read, for those the lock holds versions of.
func metadataEntries(l *Lock, gas []string) []LockFile {
	var out []LockFile
	for _, ga := range gas {
		data := lockMetadata(l, ga)
		if data == nil {
			continue
		}
		sum := sha256.Sum256(data)
		out = append(out, LockFile{Coordinate: ga, File: metadataFile, SHA256: hex.EncodeToString(sum[:])})
	}
	return out
}

// compareMavenVersions orders versions as Maven's ComparableVersion does
// for the usual forms: numbers numerically, "1.0-alpha" < "1.0-beta" <
// "1.0-milestone" < "1.0-rc" < "1.0-SNAPSHOT" < "1.0" (= "1.0.0" =
// "1.0-ga") < "1.0-sp" < "1.0-other qualifiers" (alphabetically) <
// "1.0.1". It is used only for the latest and release of a lock's
// metadata; a range is resolved by Maven itself.
func compareMavenVersions(a, b string) int {
	x, y := versionItems(a), versionItems(b)
	for i := 0; i < max(len(x), len(y)); i++ {
		var p, q versionItem
		if i < len(x) {
			p = x[i]
		}
		if i < len(y) {
			q = y[i]
		}
		if c := p.compare(q); c != 0 {
			return c
		}
	}
	return strings.Compare(a, b)
}

// versionItem is a number (num, without leading zeros) or a qualifier;
// the zero value is an absent item.
type versionItem struct {
	num   string
	qual  string
	isNum bool
}

var qualifierRank = map[string]int{"alpha": 1, "a": 1, "beta": 2, "b": 2, "milestone": 3, "m": 3, "rc": 4, "cr": 4, "snapshot": 5, "": 6, "ga": 6, "final": 6, "release": 6, "sp": 7}

func (p versionItem) compare(q versionItem) int {
	switch {
	case p.isNum && q.isNum:
		if c := len(p.num) - len(q.num); c != 0 {
			return c
		}
		return strings.Compare(p.num, q.num)
	case p.isNum:
		if !q.isNum && q.qual == "" && p.num == "0" {
			return 0 // 1.0 == 1
		}
		return 1
	case q.isNum:
		return -q.compare(p)
	}
	rp, okp := qualifierRank[p.qual]
	rq, okq := qualifierRank[q.qual]
	switch {
	case okp && okq:
		return rp - rq
	case okp:
		return -1
	case okq:
		return 1
	}
	return strings.Compare(p.qual, q.qual)
}

// versionItems splits a version at '.', '-' and where digits and letters
// meet, dropping trailing zeros and release qualifiers of each part.
func versionItems(v string) []versionItem {
	var items []versionItem
	var cur []rune
	digits := false
	flush := func() {
		s := string(cur)
		cur = cur[:0]
		if s == "" {
			return
		}
		if digits {
			s = strings.TrimLeft(s, "0")
			if s == "" {
				s = "0"
			}
			items = append(items, versionItem{num: s, isNum: true})
		} else {
			items = append(items, versionItem{qual: s})
		}
	}
	for _, r := range strings.ToLower(v) {
		switch {
		case r == '.' || r == '-' || r == '_':
			flush()
		case unicode.IsDigit(r) != digits && len(cur) > 0:
			flush()
			digits = unicode.IsDigit(r)
			cur = append(cur, r)
		default:
			digits = unicode.IsDigit(r)
			cur = append(cur, r)
		}
	}
	flush()
	// 1.0.0 == 1.0 == 1 and 1.0-ga == 1.0: trailing zeros and release
	// qualifiers say nothing.
	for len(items) > 0 {
		last := items[len(items)-1]
		if last.isNum && last.num == "0" || !last.isNum && qualifierRank[last.qual] == 6 && last.qual != "" {
			items = items[:len(items)-1]
			continue
		}
		break
	}
	return items
}
