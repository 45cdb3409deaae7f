package builder

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// The Maven repository a node resolves from and fetches locked files from
// is the one the machine's Maven is configured with, read at run time and
// never written into a spec or a lock (a lock names files, not hosts):
//
//  1. $PYRSIA_MAVEN_REPOSITORY, if set (an http or https URL);
//  2. else the first mirror of "central" in the user's settings
//     (~/.m2/settings.xml), then the global settings
//     ($MAVEN_HOME/conf/settings.xml, MAVEN_HOME found from $MAVEN_HOME or
//     the mvn on PATH), matched as Maven matches mirrorOf ("*",
//     "external:*", "central", lists, "!id" exclusions);
//  3. else the URL of the central repository in Maven's super POM
//     (org/apache/maven/model/pom-4.0.0.xml in $MAVEN_HOME/lib/maven-model-builder-*.jar).

// MavenRepoEnv overrides the Maven repository the machine's Maven
// configuration names.
const MavenRepoEnv = "PYRSIA_MAVEN_REPOSITORY"

// MavenRepository returns the base URL (no trailing slash) of the Maven
// repository this machine's Maven configuration resolves "central" to.
func MavenRepository() (string, error) {
	if v := os.Getenv(MavenRepoEnv); v != "" {
		return checkRepoURL(MavenRepoEnv, v)
	}
	home := mavenHome()
	var files []string
	if h, err := os.UserHomeDir(); err == nil {
		files = append(files, filepath.Join(h, ".m2", "settings.xml"))
	}
	if home != "" {
		files = append(files, filepath.Join(home, "conf", "settings.xml"))
	}
	for _, f := range files {
		data, err := readLimited(f, 4<<20)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("builder: maven settings: %w", err)
		}
		u, blocked, err := centralMirror(data)
		if err != nil {
			return "", fmt.Errorf("builder: maven settings %s: %w", f, err)
		}
		if blocked {
			return "", fmt.Errorf("builder: maven settings %s: the mirror of central is blocked: unblock it, or set %s", f, MavenRepoEnv)
		}
		if u != "" {
			return checkRepoURL(f, u)
		}
	}
	if home == "" {
		return "", fmt.Errorf("builder: no Maven installation found (no $MAVEN_HOME, no mvn on PATH) to read the central repository from: install maven, or set %s", MavenRepoEnv)
	}
	u, err := superPOMCentral(home)
	if err != nil {
		return "", fmt.Errorf("builder: reading the central repository from Maven's super POM: %w (set %s to name the repository)", err, MavenRepoEnv)
	}
	return checkRepoURL("Maven's super POM", u)
}

func checkRepoURL(from, s string) (string, error) {
	u, err := url.Parse(strings.TrimRight(s, "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", fmt.Errorf("builder: maven repository %q from %s is not an http or https URL", s, from)
	}
	return u.String(), nil
}

// mavenHome finds the Maven installation: $MAVEN_HOME, or the folder above
// the bin/ of the mvn on PATH (symlinks resolved).
func mavenHome() string {
	for _, k := range []string{"MAVEN_HOME", "M2_HOME"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	mvn, err := exec.LookPath("mvn")
	if err != nil {
		return ""
	}
	real, err := filepath.EvalSymlinks(mvn)
	if err != nil {
		return ""
	}
	return filepath.Dir(filepath.Dir(real))
}

type settingsXML struct {
	Mirrors []struct {
		ID       string `xml:"id"`
		MirrorOf string `xml:"mirrorOf"`
		URL      string `xml:"url"`
		Blocked  bool   `xml:"blocked"`
	} `xml:"mirrors>mirror"`
}

// centralMirror returns the URL of the mirror a settings.xml gives for the
// central repository, or "" when it has none. Maven prefers a mirror whose
// mirrorOf is exactly the repository id, then the first pattern that
// matches.
func centralMirror(data []byte) (u string, blocked bool, err error) {
	var s settingsXML
	if err := xml.Unmarshal(data, &s); err != nil {
		return "", false, fmt.Errorf("not valid XML: %w", err)
	}
	for _, m := range s.Mirrors {
		if strings.TrimSpace(m.MirrorOf) == "central" {
			return strings.TrimSpace(m.URL), m.Blocked, nil
		}
	}
	for _, m := range s.Mirrors {
		if mirrorOfCentral(m.MirrorOf) {
			return strings.TrimSpace(m.URL), m.Blocked, nil
		}
	}
	return "", false, nil
}

// mirrorOfCentral reports whether a mirrorOf pattern covers central (id
// "central", an https URL on a remote host).
func mirrorOfCentral(pattern string) bool {
	match := false
	for _, p := range strings.Split(pattern, ",") {
		p = strings.TrimSpace(p)
		switch {
		case p == "!central":
			return false
		case p == "*", p == "central", p == "external:*", p == "external:https:*":
			match = true
		}
	}
	return match
}

// superPOMCentral reads the central repository's URL from the super POM in
// maven-model-builder's jar.
func superPOMCentral(home string) (string, error) {
	jars, _ := filepath.Glob(filepath.Join(home, "lib", "maven-model-builder*.jar"))
	if len(jars) == 0 {
		return "", fmt.Errorf("no maven-model-builder jar in %s", filepath.Join(home, "lib"))
	}
	zr, err := zip.OpenReader(jars[0])
	if err != nil {
		return "", err
	}
	defer zr.Close()
	f, err := zr.Open("org/apache/maven/model/pom-4.0.0.xml")
	if err != nil {
		return "", fmt.Errorf("%s: %w", jars[0], err)
	}
	defer f.Close()
	var pom struct {
		Repositories []struct {
			ID  string `xml:"id"`
			URL string `xml:"url"`
		} `xml:"repositories>repository"`
	}
	if err := xml.NewDecoder(io.LimitReader(f, 1<<20)).Decode(&pom); err != nil {
		return "", fmt.Errorf("%s: super POM: %w", jars[0], err)
	}
	for _, r := range pom.Repositories {
		if r.ID == "central" && r.URL != "" {
			return strings.TrimSpace(r.URL), nil
		}
	}
	return "", fmt.Errorf("%s: the super POM names no central repository", jars[0])
}

// MavenRepoCacheDir is where fetched Maven files are kept by sha256
// between builds: $XDG_CACHE_HOME/pyrsia-build/maven, or
// ~/.cache/pyrsia-build/maven. It is a speed-up only: a cached file is
// hashed again before use.
func MavenRepoCacheDir() (string, error) {
	c, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(c, "pyrsia-build", "maven"), nil
}

// maxMavenFile bounds one file fetched from a Maven repository.
const maxMavenFile = 512 << 20

// FetchError is a file the Maven repository did not serve.
type FetchError struct {
	Path   string // the file's path in the repository
	Status int    // the HTTP status, 0 for a transport error
	Err    error
}

func (e *FetchError) Error() string {
	if e.Status == http.StatusNotFound {
		return fmt.Sprintf("%s: not in the maven repository (HTTP 404)", e.Path)
	}
	if e.Status != 0 {
		return fmt.Sprintf("%s: the maven repository answered HTTP %d", e.Path, e.Status)
	}
	return fmt.Sprintf("%s: fetching from the maven repository: %v", e.Path, e.Err)
}

func (e *FetchError) Unwrap() error { return e.Err }

// repoClient fetches files from one Maven repository.
type repoClient struct {
	base string
	hc   *http.Client
}

func newRepoClient(base string) *repoClient {
	return &repoClient{base: strings.TrimRight(base, "/"), hc: &http.Client{Timeout: 5 * time.Minute}}
}

// get fetches the file at the repository path p (slash-separated) into w,
// returning its sha256 hex and size.
func (c *repoClient) get(ctx context.Context, p string, w io.Writer) (string, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/"+p, nil)
	if err != nil {
		return "", 0, &FetchError{Path: p, Err: err}
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", 0, &FetchError{Path: p, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return "", 0, &FetchError{Path: p, Status: resp.StatusCode}
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(resp.Body, maxMavenFile+1))
	if err != nil {
		return "", n, &FetchError{Path: p, Err: err}
	}
	if n > maxMavenFile {
		return "", n, &FetchError{Path: p, Err: fmt.Errorf("larger than %d bytes", maxMavenFile)}
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// mavenRepoOpts are a build's Maven repository and cache settings, as
// given (empty: from the machine's configuration and the default cache).
type mavenRepoOpts struct {
	base  string
	cache string
}

func (o mavenRepoOpts) resolve() (base, cache string, err error) {
	base, cache = o.base, o.cache
	if cache == "" {
		cache, _ = MavenRepoCacheDir()
	}
	if cache == "-" {
		cache = ""
	}
	if base == "" {
		base, err = MavenRepository()
	}
	return base, cache, err
}

// fetchMavenSource fetches a source archive from the Maven repository (or
// the cache), checks it against the spec's pin, and unpacks it into dst
// without its one top-level folder.
func fetchMavenSource(ctx context.Context, m *MavenSource, repo mavenRepoOpts, dst string, progress io.Writer) (string, error) {
	base, cache, err := repo.resolve()
	if err != nil {
		return "", err
	}
	f := m.lockFile()
	l := &Lock{Version: LockVersion, Files: []LockFile{f}}
	tmp, err := os.MkdirTemp("", "pyrsia-maven-source-*")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if _, err := lockRepo(ctx, l, newRepoClient(base), cache, tmp, progress); err != nil {
		var me *LockMismatchError
		if errors.As(err, &me) {
			return "", fmt.Errorf("source.maven: %s has sha256 %s, the spec pins %s: the repository serves another file than the spec pins; fix the repository, or the spec if it is wrong", me.Path, me.Got, me.Want)
		}
		return "", fmt.Errorf("source.maven: %w", err)
	}
	name := filepath.Join(tmp, filepath.FromSlash(f.Path()))
	file, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return "", err
	}
	unpacked := filepath.Join(tmp, "unpacked")
	if err := os.Mkdir(unpacked, 0o700); err != nil {
		return "", err
	}
	if err := unpack(file, fi.Size(), unpacked); err != nil {
		return "", fmt.Errorf("source.maven %s: %w", f.Path(), err)
	}
	top := unpacked
	if des, err := os.ReadDir(unpacked); err == nil && len(des) == 1 && des[0].IsDir() {
		top = filepath.Join(unpacked, des[0].Name())
	}
	des, err := os.ReadDir(top)
	if err != nil {
		return "", err
	}
	for _, d := range des {
		if err := os.Rename(filepath.Join(top, d.Name()), filepath.Join(dst, d.Name())); err != nil {
			return "", err
		}
	}
	return "sha256:" + f.SHA256, nil
}
