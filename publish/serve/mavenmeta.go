package serve

import (
	"bytes"
	"encoding/xml"
	"slices"
	"strings"
	"time"
)

// mavenMetadataXML returns the artifact-level maven-metadata.xml of
// group:artifact whose published files are files (by version, then name):
// the same files always give the same bytes.
func mavenMetadataXML(group, artifact string, files map[string]map[string]mavenFile) []byte {
	versions := make([]string, 0, len(files))
	var newest uint64
	for v, fs := range files {
		versions = append(versions, v)
		for _, f := range fs {
			newest = max(newest, f.logIndex)
		}
	}
	// Maven's order, which is not transitive ("0" < "A" < "0A0" < "0"):
	// a stable sort of the versions in byte order gives the same list
	// whatever order they came in. Versions Maven holds equal ("1.0",
	// "1") stay in byte order.
	slices.Sort(versions)
	slices.SortStableFunc(versions, compareMavenVersions)
	latest := versions[len(versions)-1]
	release := ""
	for _, v := range slices.Backward(versions) {
		if !isSnapshot(v) {
			release = v
			break
		}
	}
	var b bytes.Buffer
	b.WriteString(xml.Header)
	b.WriteString("<metadata>\n")
	elem(&b, "  ", "groupId", group)
	elem(&b, "  ", "artifactId", artifact)
	b.WriteString("  <versioning>\n")
	elem(&b, "    ", "latest", latest)
	if release != "" {
		elem(&b, "    ", "release", release)
	}
	b.WriteString("    <versions>\n")
	for _, v := range versions {
		elem(&b, "      ", "version", v)
	}
	b.WriteString("    </versions>\n")
	elem(&b, "    ", "lastUpdated", lastUpdated(newest))
	b.WriteString("  </versioning>\n")
	b.WriteString("</metadata>\n")
	return b.Bytes()
}

func elem(b *bytes.Buffer, indent, name, text string) {
	b.WriteString(indent + "<" + name + ">")
	xml.EscapeText(b, []byte(text))
	b.WriteString("</" + name + ">\n")
}

// lastUpdated is the metadata's timestamp for a newest log index: the log
// has no clock, so it is that many seconds (plus one) after the Unix
// epoch, in Maven's yyyyMMddHHmmss (UTC).
func lastUpdated(logIndex uint64) string {
	return time.Unix(int64(min(logIndex, 1<<40))+1, 0).UTC().Format("20060102150405")
}

// isSnapshot is Maven's ArtifactUtils.isSnapshot for a base version: it
// ends with SNAPSHOT, in any case.
func isSnapshot(v string) bool {
	return len(v) >= 8 && strings.EqualFold(v[len(v)-8:], "SNAPSHOT")
}
