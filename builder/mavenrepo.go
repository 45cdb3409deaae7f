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
	"regexp"
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
//
// When the mirror comes from settings that also hold a <server> with the
// mirror's id (user settings first, as Maven merges them), its username
// and password are sent to the repository as HTTP basic auth, by resolve
// and by every fetch of a locked file, source release or official release.
// The password may be written as it is or as ${env.NAME}; Maven's
// encrypted passwords (settings-security.xml) are refused. A URL in
// $PYRSIA_MAVEN_REPOSITORY may carry user:password@. Credentials are
// never printed: errors name the server id.

// MavenRepoEnv overrides the Maven repository the machine's Maven
// configuration names.
const MavenRepoEnv = "PYRSIA_MAVEN_REPOSITORY"

// MavenRepository returns the base URL (no trailing slash) of the Maven
// repository this machine's Maven configuration resolves "central" to.
func MavenRepository() (string, error) {
	c, err := mavenRepoConfig()
	return c.url, err
}

// repoConfig is a Maven repository and the credentials to read it with.
type repoConfig struct {
	url string
	// from names where the credentials come from, for messages: the
	// settings' server id, or the variable. Empty without credentials.
	from               string
	username, password string
}

// mavenRepoConfig is [MavenRepository] with the mirror's credentials.
func mavenRepoConfig() (repoConfig, error) {
	if v := os.Getenv(MavenRepoEnv); v != "" {
		return repoFromURL(MavenRepoEnv, v)
	}
	home := mavenHome()
	var files []string
	if h, err := os.UserHomeDir(); err == nil {
		files = append(files, filepath.Join(h, ".m2", "settings.xml"))
	}
	if home != "" {
		files = append(files, filepath.Join(home, "conf", "settings.xml"))
	}
	var all []settingsXML
	var names []string
	for _, f := range files {
		data, err := readLimited(f, 4<<20)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return repoConfig{}, fmt.Errorf("builder: maven settings: %w", err)
		}
		var s settingsXML
		if err := xml.Unmarshal(data, &s); err != nil {
			return repoConfig{}, fmt.Errorf("builder: maven settings %s: not valid XML: %w", f, err)
		}
		all = append(all, s)
		names = append(names, f)
	}
	for i, s := range all {
		m, ok := s.centralMirror()
		if !ok {
			continue
		}
		f := names[i]
		if m.Blocked {
			return repoConfig{}, fmt.Errorf("builder: maven settings %s: the mirror of central is blocked: unblock it, or set %s", f, MavenRepoEnv)
		}
		c, err := repoFromURL(f, strings.TrimSpace(m.URL))
		if err != nil {
			return repoConfig{}, err
		}
		id := strings.TrimSpace(m.ID)
		if id == "" {
			return c, nil
		}
		for j, s2 := range all {
			srv, ok := s2.server(id)
			if !ok {
				continue
			}
			user, err := settingsValue(srv.Username)
			if err != nil {
				return repoConfig{}, fmt.Errorf("builder: maven settings %s: server %q: username %w", names[j], id, err)
			}
			if strings.HasPrefix(strings.TrimSpace(srv.Password), "{") {
				return repoConfig{}, fmt.Errorf("builder: maven settings %s: server %q: the password is encrypted (settings-security.xml), which pyrsia-build does not decrypt: write it as ${env.NAME} and set NAME", names[j], id)
			}
			pass, err := settingsValue(srv.Password)
			if err != nil {
				return repoConfig{}, fmt.Errorf("builder: maven settings %s: server %q: password %w", names[j], id, err)
			}
			if user != "" || pass != "" {
				c.from, c.username, c.password = fmt.Sprintf("server %q of %s", id, names[j]), user, pass
			}
			break
		}
		return c, nil
	}
	if home == "" {
		return repoConfig{}, fmt.Errorf("builder: no Maven installation found (no $MAVEN_HOME, no mvn on PATH) to read the central repository from: install maven, or set %s", MavenRepoEnv)
	}
	u, err := superPOMCentral(home)
	if err != nil {
		return repoConfig{}, fmt.Errorf("builder: reading the central repository from Maven's super POM: %w (set %s to name the repository)", err, MavenRepoEnv)
	}
	return repoFromURL("Maven's super POM", u)
}

var envRefRE = regexp.MustCompile(`\$\{env\.([A-Za-z_][A-Za-z0-9_]*)\}`)

// settingsValue expands ${env.NAME} in a settings value, as Maven does;
// any other ${...} is refused. Errors never hold the value.
func settingsValue(v string) (string, error) {
	v = strings.TrimSpace(v)
	var missing string
	out := envRefRE.ReplaceAllStringFunc(v, func(ref string) string {
		name := envRefRE.FindStringSubmatch(ref)[1]
		val, ok := os.LookupEnv(name)
		if !ok && missing == "" {
			missing = name
		}
		return val
	})
	if missing != "" {
		return "", fmt.Errorf("names the variable %s, which is not set: set it", missing)
	}
	if strings.Contains(envRefRE.ReplaceAllString(v, ""), "${") {
		return "", errors.New("holds a ${...} other than ${env.NAME}, which pyrsia-build does not expand: write the value, or use ${env.NAME}")
	}
	return out, nil
}

// repoFromURL checks a repository URL; user:password@ in it become the
// credentials and leave the URL. Errors show the URL without a password.
func repoFromURL(from, s string) (repoConfig, error) {
	u, err := url.Parse(strings.TrimRight(s, "/"))
	if err != nil {
		return repoConfig{}, fmt.Errorf("builder: maven repository from %s is not a URL", from)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return repoConfig{}, fmt.Errorf("builder: maven repository %q from %s is not an http or https URL", u.Redacted(), from)
	}
	c := repoConfig{}
	if u.User != nil {
		c.from = "the user:password in " + from
		c.username = u.User.Username()
		c.password, _ = u.User.Password()
		u.User = nil
	}
	c.url = u.String()
	return c, nil
}

func (c repoConfig) client() *repoClient {
	rc := newRepoClient(c.url)
	rc.auth = c
	return rc
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

// settingsXML is what pyrsia-build reads of a Maven settings.xml.
type settingsXML struct {
	Mirrors []settingsMirror `xml:"mirrors>mirror"`
	Servers []settingsServer `xml:"servers>server"`
}

type settingsServer struct {
	ID       string `xml:"id"`
	Username string `xml:"username"`
	Password string `xml:"password"`
}

type settingsMirror struct {
	ID       string `xml:"id"`
	MirrorOf string `xml:"mirrorOf"`
	URL      string `xml:"url"`
	Blocked  bool   `xml:"blocked"`
}

// server returns the server with the id, if any.
func (s *settingsXML) server(id string) (settingsServer, bool) {
	for _, srv := range s.Servers {
		if strings.TrimSpace(srv.ID) == id {
			return srv, true
		}
	}
	return settingsServer{}, false
}

// centralMirror returns the mirror the settings give for the central
// repository, if any. Maven prefers a mirror whose mirrorOf is exactly the
// repository id, then the first pattern that matches.
func (s *settingsXML) centralMirror() (settingsMirror, bool) {
	for _, m := range s.Mirrors {
		if strings.TrimSpace(m.MirrorOf) == "central" {
			return m, true
		}
	}
	for _, m := range s.Mirrors {
		if mirrorOfCentral(m.MirrorOf) {
			return m, true
		}
	}
	return settingsMirror{}, false
}

// centralMirror returns the URL of the mirror a settings.xml gives for the
// central repository, or "" when it has none.
func centralMirror(data []byte) (u string, blocked bool, err error) {
	var s settingsXML
	if err := xml.Unmarshal(data, &s); err != nil {
		return "", false, fmt.Errorf("not valid XML: %w", err)
	}
	m, ok := s.centralMirror()
	if !ok {
		return "", false, nil
	}
	return strings.TrimSpace(m.URL), m.Blocked, nil
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
	// Auth names the credentials sent (the settings' server id), empty
	// when none were; never the password.
	Auth string
	Err  error
}

func (e *FetchError) Error() string {
	if e.Status == http.StatusNotFound {
		return fmt.Sprintf("%s: not in the maven repository (HTTP 404)", e.Path)
	}
	if e.Status == http.StatusUnauthorized || e.Status == http.StatusForbidden {
		if e.Auth == "" {
			return fmt.Sprintf("%s: the maven repository answered HTTP %d and no credentials were sent: give them in a <server> with the mirror's id in the Maven settings", e.Path, e.Status)
		}
		return fmt.Sprintf("%s: the maven repository answered HTTP %d to the credentials of %s: check its username and password", e.Path, e.Status, e.Auth)
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
	auth repoConfig // basic auth when auth.from is set
	hc   *http.Client
}

func newRepoClient(base string) *repoClient {
	return &repoClient{base: strings.TrimRight(base, "/"), hc: &http.Client{Timeout: 5 * time.Minute, CheckRedirect: repoRedirect}}
}

// maxRepoRedirects bounds the redirects one fetch follows (net/http's
// default).
const maxRepoRedirects = 10

// repoRedirect follows a repository's redirects (a mirror may send
// files to a CDN; what arrives is checked against the lock), but the
// credentials go only to the mirror's own scheme, host and port:
// net/http keeps the Authorization header for the same host name on
// another port or scheme (http after https) and for its subdomains.
func repoRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= maxRepoRedirects {
		return fmt.Errorf("stopped after %d redirects", maxRepoRedirects)
	}
	first := via[0].URL
	if req.URL.Scheme != first.Scheme || !strings.EqualFold(req.URL.Host, first.Host) {
		req.Header.Del("Authorization")
	}
	return nil
}

// get fetches the file at the repository path p (slash-separated) into w,
// returning its sha256 hex and size.
func (c *repoClient) get(ctx context.Context, p string, w io.Writer) (string, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/"+p, nil)
	if err != nil {
		return "", 0, &FetchError{Path: p, Err: err}
	}
	if c.auth.from != "" {
		// Only to the mirror itself: see repoRedirect.
		req.SetBasicAuth(c.auth.username, c.auth.password)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", 0, &FetchError{Path: p, Auth: c.auth.from, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		return "", 0, &FetchError{Path: p, Status: resp.StatusCode, Auth: c.auth.from}
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

// resolve returns the repository (with the configuration's credentials
// when it comes from the configuration) and the cache folder ("" for
// none).
func (o mavenRepoOpts) resolve() (repo repoConfig, cache string, err error) {
	cache = o.cache
	if cache == "" {
		cache, _ = MavenRepoCacheDir()
	}
	if cache == "-" {
		cache = ""
	}
	if o.base != "" {
		return repoConfig{url: o.base}, cache, nil
	}
	repo, err = mavenRepoConfig()
	return repo, cache, err
}

// fetchMavenSource fetches a source archive from the Maven repository (or
// the cache), checks it against the spec's pin, and unpacks it into dst
// without its one top-level folder.
func fetchMavenSource(ctx context.Context, m *MavenSource, repo mavenRepoOpts, dst string, progress io.Writer) (string, error) {
	rc, cache, err := repo.resolve()
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
	if _, err := lockRepo(ctx, l, rc.client(), cache, tmp, progress); err != nil {
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
