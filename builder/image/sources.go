package image

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// aptSourcesRoot is "/" but for tests.
var aptSourcesRoot = "/"

// aptSource is one "deb" source of the machine's apt configuration.
type aptSource struct {
	URI    string
	Suites []string
	File   string
}

// DebianMirror returns the Debian mirror to debootstrap bookworm from,
// read at run time from the machine's apt sources (/etc/apt/sources.list,
// /etc/apt/sources.list.d/*.list and *.sources): the first "deb" source
// naming the suite bookworm, else the first that is not a security or
// updates suite. The environment variable PYRSIA_DEBIAN_MIRROR overrides
// it. No mirror is ever written into the repository or the image.
func DebianMirror() (string, error) {
	if m := os.Getenv("PYRSIA_DEBIAN_MIRROR"); m != "" {
		return m, nil
	}
	srcs, err := readAptSources(aptSourcesRoot)
	if err != nil {
		return "", err
	}
	for _, s := range srcs {
		for _, suite := range s.Suites {
			if suite == "bookworm" {
				return s.URI, nil
			}
		}
	}
	for _, s := range srcs {
		plain := true
		for _, suite := range s.Suites {
			if strings.Contains(suite, "-security") || strings.Contains(suite, "-updates") || strings.Contains(suite, "/updates") {
				plain = false
			}
		}
		if plain && !strings.Contains(s.URI, "security") {
			return s.URI, nil
		}
	}
	return "", fmt.Errorf("no Debian mirror in the apt sources under %s: add a 'deb' source (or set PYRSIA_DEBIAN_MIRROR)",
		filepath.Join(aptSourcesRoot, "etc/apt"))
}

func readAptSources(root string) ([]aptSource, error) {
	var out []aptSource
	main := filepath.Join(root, "etc/apt/sources.list")
	if b, err := os.ReadFile(main); err == nil {
		out = append(out, parseOneLineSources(b, main)...)
	} else if !os.IsNotExist(err) {
		return nil, err
	}
	dir := filepath.Join(root, "etc/apt/sources.list.d")
	ents, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(dir, n)
		switch {
		case strings.HasSuffix(n, ".list"):
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			out = append(out, parseOneLineSources(b, p)...)
		case strings.HasSuffix(n, ".sources"):
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			out = append(out, parseDeb822Sources(b, p)...)
		}
	}
	return out, nil
}

// parseOneLineSources parses "deb [opts] URI suite [component...]" lines.
func parseOneLineSources(b []byte, file string) []aptSource {
	var out []aptSource
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "deb" {
			continue
		}
		f = f[1:]
		if strings.HasPrefix(f[0], "[") {
			for len(f) > 0 && !strings.HasSuffix(f[0], "]") {
				f = f[1:]
			}
			if len(f) == 0 {
				continue
			}
			f = f[1:]
		}
		if len(f) < 2 || !usableURI(f[0]) {
			continue
		}
		out = append(out, aptSource{URI: f[0], Suites: []string{f[1]}, File: file})
	}
	return out
}

// parseDeb822Sources parses the stanzas of a .sources file.
func parseDeb822Sources(b []byte, file string) []aptSource {
	var out []aptSource
	for _, stanza := range strings.Split(strings.ReplaceAll(string(b), "\r\n", "\n"), "\n\n") {
		fields := map[string]string{}
		last := ""
		for _, line := range strings.Split(stanza, "\n") {
			if strings.HasPrefix(line, "#") || strings.TrimSpace(line) == "" {
				continue
			}
			if (line[0] == ' ' || line[0] == '\t') && last != "" {
				fields[last] += " " + strings.TrimSpace(line)
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(k))
			fields[last] = strings.TrimSpace(v)
		}
		if !containsWord(fields["types"], "deb") || strings.EqualFold(fields["enabled"], "no") {
			continue
		}
		suites := strings.Fields(fields["suites"])
		for _, u := range strings.Fields(fields["uris"]) {
			if usableURI(u) {
				out = append(out, aptSource{URI: u, Suites: suites, File: file})
			}
		}
	}
	return out
}

func containsWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}

func usableURI(u string) bool {
	return strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "file:")
}
