package builder

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Maven dependency lock v1
//
// A lock lists every file a Maven build reads from the repository:
// plugins, extensions, dependencies, their poms and parents. It is JSON,
// one entry per file, sorted by path:
//
//	{
//	  "version": 1,
//	  "files": [
//	    {"coordinate": "org.apache:apache:29", "file": "apache-29.pom", "sha256": "<64 hex>"},
//	    ...
//	  ]
//	}
//
// The file's path in the repository is the groupId with dots as slashes,
// the artifactId, the version and the file name. An entry of coordinate
// groupId:artifactId and file maven-metadata.xml is the artifact's
// metadata, which the build makes from the lock (see [lockMetadata]). A lock names no
// repository: every node fetches the files from the Maven repository its
// own machine is configured with ([MavenRepository]) and checks each
// against the lock before the build sees it. A spec points at its lock by
// path and sha256 (recipe.maven.lock), so the lock is part of the input
// digest. 'pyrsia-build lock SPEC' writes it ([BuildKit.Resolve]).

// LockVersion is the only lock format version this package reads.
const LockVersion = 1

// maxLockSize bounds a lock file (about 40,000 entries).
const maxLockSize = 8 << 20

// Lock is a Maven dependency lock.
type Lock struct {
	Version int        `json:"version"`
	Files   []LockFile `json:"files"`
}

// LockFile is one file of a lock.
type LockFile struct {
	// Coordinate is groupId:artifactId:version.
	Coordinate string `json:"coordinate"`
	// File is the file name: artifactId-version[-classifier].extension.
	File string `json:"file"`
	// SHA256 is the file's digest, 64 lowercase hex digits.
	SHA256 string `json:"sha256"`
}

// Path returns the file's path in a Maven repository.
func (f LockFile) Path() string {
	g, a, v := splitCoordinate(f.Coordinate)
	if f.isMetadata() {
		return strings.ReplaceAll(g, ".", "/") + "/" + a + "/" + f.File
	}
	return strings.ReplaceAll(g, ".", "/") + "/" + a + "/" + v + "/" + f.File
}

func splitCoordinate(c string) (g, a, v string) {
	parts := strings.SplitN(c, ":", 3)
	for len(parts) < 3 {
		parts = append(parts, "")
	}
	return parts[0], parts[1], parts[2]
}

var lockFileRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.+-]*$`)

// LockError is a problem with a lock file's contents.
type LockError struct {
	Index int // the entry, -1 for the document
	Msg   string
}

func (e *LockError) Error() string {
	if e.Index < 0 {
		return "lock: " + e.Msg
	}
	return fmt.Sprintf("lock: files[%d]: %s", e.Index, e.Msg)
}

func (f LockFile) validate() error {
	parts := strings.Split(f.Coordinate, ":")
	if len(parts) == 2 && f.File == metadataFile {
		// An artifact's metadata (see lockMetadata).
		if !mavenPartRE.MatchString(parts[0]) || !mavenPartRE.MatchString(parts[1]) || strings.Contains(parts[0], "..") || strings.HasSuffix(parts[0], ".") {
			return fmt.Errorf("coordinate %q of metadata is not groupId:artifactId", f.Coordinate)
		}
		if !isHex(f.SHA256, 64) {
			return fmt.Errorf("sha256 %q is not 64 lowercase hex digits", f.SHA256)
		}
		return nil
	}
	if len(parts) != 3 || !mavenPartRE.MatchString(parts[0]) || !mavenPartRE.MatchString(parts[1]) || !mavenVerRE.MatchString(parts[2]) {
		return fmt.Errorf("coordinate %q is not groupId:artifactId:version", f.Coordinate)
	}
	if strings.Contains(parts[0], "..") || strings.HasSuffix(parts[0], ".") {
		return fmt.Errorf("coordinate %q has an empty groupId part", f.Coordinate)
	}
	if strings.HasSuffix(parts[2], "-SNAPSHOT") {
		return fmt.Errorf("coordinate %q is a snapshot: a lock pins releases only", f.Coordinate)
	}
	if !lockFileRE.MatchString(f.File) || !strings.HasPrefix(f.File, parts[1]+"-"+parts[2]) {
		return fmt.Errorf("file %q is not %s-%s[-classifier].extension", f.File, parts[1], parts[2])
	}
	rest := strings.TrimPrefix(f.File, parts[1]+"-"+parts[2])
	if !strings.HasPrefix(rest, ".") && !strings.HasPrefix(rest, "-") || len(rest) < 2 || strings.HasSuffix(rest, ".") {
		return fmt.Errorf("file %q is not %s-%s[-classifier].extension", f.File, parts[1], parts[2])
	}
	if strings.HasPrefix(f.File, "maven-metadata") {
		// Artifact "maven", version "metadata-central": where Maven reads
		// another artifact's metadata. A lock's metadata is only ever the
		// one made from its versions (see lockMetadata).
		return fmt.Errorf("file %q has the name of Maven's metadata, which a lock pins only as an entry of groupId:artifactId and maven-metadata.xml", f.File)
	}
	if !isHex(f.SHA256, 64) {
		return fmt.Errorf("sha256 %q is not 64 lowercase hex digits", f.SHA256)
	}
	return nil
}

// Validate checks every entry and that the entries are sorted by path with
// none twice.
func (l *Lock) Validate() error {
	if l.Version != LockVersion {
		return &LockError{Index: -1, Msg: fmt.Sprintf("version %d is not supported (want %d)", l.Version, LockVersion)}
	}
	for i, f := range l.Files {
		if err := f.validate(); err != nil {
			return &LockError{Index: i, Msg: err.Error()}
		}
		if i > 0 {
			switch p, q := l.Files[i-1].Path(), f.Path(); {
			case p == q:
				return &LockError{Index: i, Msg: fmt.Sprintf("%s is listed twice", q)}
			case p > q:
				return &LockError{Index: i, Msg: fmt.Sprintf("%s is out of order (the files are sorted by path; 'pyrsia-build lock' writes them so)", q)}
			}
		}
	}
	return nil
}

// ParseLock parses and validates a lock, rejecting unknown fields.
func ParseLock(data []byte) (*Lock, error) {
	if len(data) > maxLockSize {
		return nil, &LockError{Index: -1, Msg: fmt.Sprintf("%d bytes is larger than the limit of %d", len(data), maxLockSize)}
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	var l Lock
	if err := d.Decode(&l); err != nil {
		return nil, &LockError{Index: -1, Msg: "not a lock (JSON): " + err.Error()}
	}
	if d.More() {
		return nil, &LockError{Index: -1, Msg: "trailing data after the JSON object"}
	}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return &l, nil
}

// Marshal returns the lock's file form: sorted, one entry per line, so
// that a change to a lock reads well in a diff.
func (l *Lock) Marshal() ([]byte, error) {
	c := &Lock{Version: l.Version, Files: slices.Clone(l.Files)}
	slices.SortFunc(c.Files, func(a, b LockFile) int { return strings.Compare(a.Path(), b.Path()) })
	if err := c.Validate(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "{\n  \"version\": %d,\n  \"files\": [", c.Version)
	for i, f := range c.Files {
		line, err := json.Marshal(f)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString("\n    ")
		b.Write(line)
	}
	if len(c.Files) > 0 {
		b.WriteString("\n  ")
	}
	b.WriteString("]\n}\n")
	return b.Bytes(), nil
}

// lockFileFromPath turns a repository path into a lock entry; ok is false
// for what is not an artifact file (metadata, checksums, signatures,
// snapshots).
func lockFileFromPath(p, sha string) (LockFile, bool) {
	parts := strings.Split(p, "/")
	if len(parts) < 4 {
		return LockFile{}, false
	}
	name := parts[len(parts)-1]
	if strings.HasPrefix(name, "maven-metadata") {
		return LockFile{}, false
	}
	for _, ext := range []string{".sha1", ".md5", ".sha256", ".sha512", ".asc", ".lastUpdated"} {
		if strings.HasSuffix(name, ext) {
			return LockFile{}, false
		}
	}
	f := LockFile{
		Coordinate: strings.Join(parts[:len(parts)-3], ".") + ":" + parts[len(parts)-3] + ":" + parts[len(parts)-2],
		File:       name,
		SHA256:     sha,
	}
	if f.validate() != nil || f.Path() != p {
		return LockFile{}, false
	}
	return f, true
}

// ReadLock reads and parses the lock file at name; errors name the file.
func ReadLock(name string) (*Lock, error) {
	data, err := readLimited(name, maxLockSize)
	if err != nil {
		return nil, fmt.Errorf("reading maven lock: %w", err)
	}
	l, err := ParseLock(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return l, nil
}

// LockMismatchError is a file the Maven repository served with other
// bytes than the lock pins. Use errors.As.
type LockMismatchError struct {
	Path string // the file's path in the repository
	Want string // the lock's sha256 hex
	Got  string // the served file's sha256 hex
}

func (e *LockMismatchError) Error() string {
	return fmt.Sprintf("maven lock: %s: the repository served sha256:%s, the lock pins sha256:%s; this node builds only what the lock pins. "+
		"If the repository (or a mirror in the Maven settings) serves a wrong file, fix or change the repository; "+
		"if the lock is stale, run 'pyrsia-build lock SPEC' and review the change", e.Path, e.Got, e.Want)
}

// lockRepo makes dir a Maven local repository holding exactly the lock's
// files: each comes from the cache folder (by sha256, hashed again) or is
// fetched from the repository, and is checked against the lock before it is
// placed. It returns how many files were fetched.
func lockRepo(ctx context.Context, l *Lock, client *repoClient, cache, dir string, progress io.Writer) (fetched int, err error) {
	if progress == nil {
		progress = io.Discard
	}
	if cache != "" {
		if err := os.MkdirAll(cache, 0o755); err != nil {
			cache = ""
		}
	}
	var total int64
	for _, f := range l.Files {
		if err := ctx.Err(); err != nil {
			return fetched, err
		}
		p := f.Path()
		dst := filepath.Join(dir, filepath.FromSlash(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return fetched, err
		}
		if f.isMetadata() {
			if err := writeLockMetadata(l, f, filepath.Join(filepath.Dir(dst), localMetadataFile)); err != nil {
				return fetched, err
			}
			continue
		}
		if cache != "" {
			if n, ok := copyIfDigest(filepath.Join(cache, f.SHA256), dst, f.SHA256); ok {
				if total += n; total > maxLockBytes {
					os.Remove(dst)
					return fetched, lockTooLarge(p)
				}
				continue
			}
		}
		if client == nil {
			return fetched, fmt.Errorf("maven lock: %s is not cached and no repository is configured", p)
		}
		tmp, err := os.CreateTemp(filepath.Dir(dst), ".fetch-*")
		if err != nil {
			return fetched, err
		}
		got, n, err := client.get(ctx, p, tmp)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(tmp.Name())
			var fe *FetchError
			if errors.As(err, &fe) && fe.Status == 404 {
				return fetched, fmt.Errorf("maven lock: %s (%s) is pinned by the lock but the repository does not serve it (HTTP 404): "+
					"check the Maven settings' mirror, or run 'pyrsia-build lock SPEC' if the project no longer needs it", p, f.Coordinate)
			}
			return fetched, fmt.Errorf("maven lock: %w", err)
		}
		if got != f.SHA256 {
			os.Remove(tmp.Name())
			return fetched, &LockMismatchError{Path: p, Want: f.SHA256, Got: got}
		}
		if total += n; total > maxLockBytes {
			os.Remove(tmp.Name())
			return fetched, lockTooLarge(p)
		}
		if err := os.Rename(tmp.Name(), dst); err != nil {
			return fetched, err
		}
		fetched++
		fmt.Fprintf(progress, "maven: fetched %s\n", p)
		if cache != "" {
			copyFile(dst, filepath.Join(cache, f.SHA256))
		}
	}
	return fetched, nil
}

// writeLockMetadata writes the metadata of f's artifact that the build
// sees, made from the lock, after checking it against the lock's digest.
func writeLockMetadata(l *Lock, f LockFile, dst string) error {
	data := lockMetadata(l, f.Coordinate)
	if data == nil {
		return fmt.Errorf("maven lock: %s: the lock pins metadata of %s but no version of it: run 'pyrsia-build lock SPEC' again", f.Path(), f.Coordinate)
	}
	sum := sha256.Sum256(data)
	if got := hex.EncodeToString(sum[:]); got != f.SHA256 {
		return fmt.Errorf("maven lock: %s: the metadata made from the lock's versions of %s has sha256:%s, the lock pins sha256:%s: the lock was edited or written by another version of pyrsia-build; run 'pyrsia-build lock SPEC' and review the change", f.Path(), f.Coordinate, got, f.SHA256)
	}
	return os.WriteFile(dst, data, 0o644)
}

// copyIfDigest copies src to dst if src's content has the sha256 want,
// returning its size.
func copyIfDigest(src, dst, want string) (int64, bool) {
	b, err := os.ReadFile(src)
	if err != nil {
		return 0, false
	}
	sum := sha256.Sum256(b)
	if hex.EncodeToString(sum[:]) != want {
		os.Remove(src) // a damaged cache entry
		return 0, false
	}
	return int64(len(b)), os.WriteFile(dst, b, 0o644) == nil
}

// maxLockBytes bounds the bytes of all of a lock's files (a variable for
// the tests): a lock may list up to 40,000 files of up to maxMavenFile
// each, which no build needs and no disk holds.
var maxLockBytes int64 = 32 << 30

func lockTooLarge(p string) error {
	return fmt.Errorf("maven lock: the lock's files come to more than %d bytes at %s: no Maven build needs that much; check the lock", maxLockBytes, p)
}

// copyFile copies src to dst by way of a temporary file of its own, so a
// reader (or another build filling the same cache) never sees half a file.
func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".tmp-"+filepath.Base(dst)+"-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), dst)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}
