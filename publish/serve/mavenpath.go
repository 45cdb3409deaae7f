package serve

import (
	"errors"
	"fmt"
	"strings"
)

// Limits on a request path under /maven2/. Real Maven paths are far
// shorter; the limits bound the work a request can cause.
const (
	maxMavenPath     = 1024 // bytes after /maven2/
	maxMavenSegments = 64
	maxMavenSegment  = 255 // bytes of one segment, a file name's usual limit
)

// mavenMetadata is the file name of Maven's repository metadata.
const mavenMetadata = "maven-metadata.xml"

// checksumKinds are the checksum files served beside every file, by
// extension.
var checksumKinds = []string{"sha1", "md5", "sha256", "sha512"}

// mavenPath is a parsed request path: an artifact's maven-metadata.xml
// (version empty) or a file of one version, and, if the request is for a
// checksum file, the checksum's kind ("sha1", ...).
type mavenPath struct {
	group    string // groupId, dotted
	artifact string
	version  string // empty for maven-metadata.xml
	file     string // the file's name, without the checksum extension
	checksum string
}

// metadata reports whether p is an artifact's maven-metadata.xml.
func (p mavenPath) metadata() bool { return p.version == "" }

// errNoSuchPath is wrapped by parseMavenPath's error for a well-formed
// path that cannot name a file in the layout (too few segments): not
// found rather than bad input.
var errNoSuchPath = errors.New("no such path in a Maven repository")

// errPathTooLong is wrapped by parseMavenPath's error for a path over the
// limits.
var errPathTooLong = errors.New("path too long")

// parseMavenPath parses a repository path relative to /maven2/:
//
//	g/r/o/u/p/artifactId/maven-metadata.xml[.sha1|.md5|.sha256|.sha512]
//	g/r/o/u/p/artifactId/version/file[.sha1|.md5|.sha256|.sha512]
//
// Segments are non-empty, at most 255 bytes of [A-Za-z0-9._~+-], and do
// not start with '.' (so no "." or ".."). It does not check that the file
// name fits the artifact and version: only published files are served.
func parseMavenPath(s string) (mavenPath, error) {
	if len(s) > maxMavenPath {
		return mavenPath{}, fmt.Errorf("%w: %d bytes, at most %d", errPathTooLong, len(s), maxMavenPath)
	}
	if s == "" {
		return mavenPath{}, fmt.Errorf("%w: ask for GROUP/PATH/ARTIFACT/VERSION/FILE or GROUP/PATH/ARTIFACT/maven-metadata.xml", errNoSuchPath)
	}
	segs := strings.Split(s, "/")
	if len(segs) > maxMavenSegments {
		return mavenPath{}, fmt.Errorf("%w: %d segments, at most %d", errPathTooLong, len(segs), maxMavenSegments)
	}
	for i, seg := range segs {
		if err := checkSegment(seg); err != nil {
			return mavenPath{}, fmt.Errorf("segment %d %q: %w", i+1, seg, err)
		}
	}
	last := segs[len(segs)-1]
	var p mavenPath
	p.file = last
	for _, k := range checksumKinds {
		if name, ok := strings.CutSuffix(last, "."+k); ok && name != "" {
			p.file, p.checksum = name, k
			break
		}
	}
	if p.file == mavenMetadata {
		if len(segs) < 3 {
			return mavenPath{}, fmt.Errorf("%w: maven-metadata.xml needs a groupId and an artifactId: GROUP/PATH/ARTIFACT/maven-metadata.xml", errNoSuchPath)
		}
		p.artifact = segs[len(segs)-2]
		return p, p.setGroup(segs[:len(segs)-2])
	}
	if len(segs) < 4 {
		return mavenPath{}, fmt.Errorf("%w: too few segments: a file is GROUP/PATH/ARTIFACT/VERSION/FILE", errNoSuchPath)
	}
	p.version = segs[len(segs)-2]
	p.artifact = segs[len(segs)-3]
	return p, p.setGroup(segs[:len(segs)-3])
}

// setGroup sets the groupId from its segments. The layout writes a
// groupId's dots as slashes, so a segment with a dot is not a group's: it
// would be a second path to the same files.
func (p *mavenPath) setGroup(segs []string) error {
	for _, s := range segs {
		if strings.Contains(s, ".") {
			return fmt.Errorf("%w: group segment %q holds a '.': a groupId's dots are slashes in the path", errNoSuchPath, s)
		}
	}
	p.group = strings.Join(segs, ".")
	return nil
}

func checkSegment(s string) error {
	switch {
	case s == "":
		return errors.New("empty (a doubled or trailing '/')")
	case len(s) > maxMavenSegment:
		return fmt.Errorf("%w: %d bytes, at most %d", errPathTooLong, len(s), maxMavenSegment)
	case s[0] == '.':
		return errors.New("starts with '.'")
	case !validSegment(s):
		return errors.New("holds a character other than A-Z a-z 0-9 . _ ~ + -")
	}
	return nil
}

// validSegment reports whether s is made of the characters a path segment
// (a groupId part, an artifactId, a version, a file name) may hold.
func validSegment(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.', c == '_', c == '~', c == '+', c == '-':
		default:
			return false
		}
	}
	return true
}

// mavenDir returns the repository path of a group, artifact and version:
// dots of the groupId become slashes.
func mavenDir(group, artifact, version string) string {
	return strings.ReplaceAll(group, ".", "/") + "/" + artifact + "/" + version
}

// fitsArtifact reports whether file is a file of artifact at version in
// Maven's layout: artifact-version.ext or artifact-version-classifier.ext,
// with a non-empty extension and classifier, and not itself a checksum or
// metadata file (those the repository makes).
func fitsArtifact(file, artifact, version string) bool {
	rest, ok := strings.CutPrefix(file, artifact+"-"+version)
	if !ok || rest == "" || !validSegment(file) || file[0] == '.' {
		return false
	}
	switch rest[0] {
	case '.':
		rest = rest[1:]
	case '-':
		classifier, ext, ok := strings.Cut(rest[1:], ".")
		if !ok || classifier == "" {
			return false
		}
		rest = ext
	default:
		return false
	}
	if rest == "" || strings.HasSuffix(rest, ".") {
		return false
	}
	for _, k := range checksumKinds {
		if rest == k || strings.HasSuffix(rest, "."+k) {
			return false
		}
	}
	return true
}
