package builder

import (
	"archive/tar"
	"archive/zip"
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"unicode/utf8"
)

// DiffResult explains how two builds' output folders differ.
type DiffResult struct {
	// Same is true when both folders hold the same artifacts (by name)
	// with the same digests.
	Same bool `json:"same"`
	// Artifacts has one entry per artifact name in either folder, sorted
	// by name.
	Artifacts []ArtifactDiff `json:"artifacts"`
}

// ArtifactDiff is how one artifact differs between build A and build B.
type ArtifactDiff struct {
	Name string `json:"name"`
	// DigestA and DigestB are the artifact's digests; "" when the artifact
	// is only in the other build. Equal digests: the artifact is identical
	// and the lists below are empty.
	DigestA string `json:"digestA"`
	DigestB string `json:"digestB"`
	// Added, Removed and Changed are the files only in B, only in A, and
	// in both but different (content, type, mode or link). OCI files read
	// "layer 2: etc/x"; the image config is ConfigPath.
	Added   []string `json:"added,omitempty"`
	Removed []string `json:"removed,omitempty"`
	Changed []string `json:"changed,omitempty"`
	// TextDiffs maps a changed file that is text on both sides (UTF-8, no
	// NUL, under 1 MiB) to a unified diff of at most 40 lines.
	TextDiffs map[string]string `json:"textDiffs,omitempty"`
	// Notes say why a text diff could not be made (an artifact missing
	// from its output folder, or changed since its manifest was written).
	Notes []string `json:"notes,omitempty"`
}

const (
	maxTextSize     = 1 << 20
	maxTextDiffLine = 40
	diffContext     = 3
)

// Diff compares the output folders outA and outB by their manifest.json,
// and makes unified diffs of the changed files that are text, reading them
// from the artifacts.
func Diff(ctx context.Context, outA, outB string) (*DiffResult, error) {
	ma, err := ReadManifest(filepath.Join(outA, "manifest.json"))
	if err != nil {
		return nil, fmt.Errorf("diff: %w", err)
	}
	mb, err := ReadManifest(filepath.Join(outB, "manifest.json"))
	if err != nil {
		return nil, fmt.Errorf("diff: %w", err)
	}
	byName := func(m *OutputManifest) map[string]*ArtifactManifest {
		r := make(map[string]*ArtifactManifest)
		for i := range m.Artifacts {
			r[m.Artifacts[i].Name] = &m.Artifacts[i]
		}
		return r
	}
	as, bs := byName(ma), byName(mb)
	var names []string
	for n := range as {
		names = append(names, n)
	}
	for n := range bs {
		if as[n] == nil {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	res := &DiffResult{Same: true, Artifacts: []ArtifactDiff{}}
	for _, n := range names {
		a, b := as[n], bs[n]
		ad := ArtifactDiff{Name: n}
		if a != nil {
			ad.DigestA = a.Digest
		}
		if b != nil {
			ad.DigestB = b.Digest
		}
		if a != nil && b != nil && a.Digest != b.Digest {
			if err := diffArtifact(ctx, &ad, outA, a, outB, b); err != nil {
				return nil, err
			}
		}
		if ad.DigestA != ad.DigestB {
			res.Same = false
		}
		res.Artifacts = append(res.Artifacts, ad)
	}
	return res, nil
}

// fileKey names a file inside an artifact.
type fileKey struct {
	layer int
	path  string
}

func (k fileKey) label(oci bool) string {
	if oci && k.path != ConfigPath {
		return fmt.Sprintf("layer %d: %s", k.layer, k.path)
	}
	return k.path
}

func fileMap(am *ArtifactManifest) map[fileKey]FileEntry {
	m := make(map[fileKey]FileEntry, len(am.Files))
	for _, f := range am.Files {
		m[fileKey{f.Layer, f.Path}] = f // a later duplicate wins, as in tar
	}
	return m
}

func sortedKeys(m map[fileKey]bool) []fileKey {
	keys := make([]fileKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(x, y fileKey) int {
		return cmp.Or(cmp.Compare(x.layer, y.layer), strings.Compare(x.path, y.path))
	})
	return keys
}

func diffArtifact(ctx context.Context, ad *ArtifactDiff, outA string, a *ArtifactManifest, outB string, b *ArtifactManifest) error {
	oci := a.Type == ArtifactOCILayout || b.Type == ArtifactOCILayout
	fa, fb := fileMap(a), fileMap(b)
	added, removed, changed := map[fileKey]bool{}, map[fileKey]bool{}, map[fileKey]bool{}
	for k, ea := range fa {
		eb, ok := fb[k]
		switch {
		case !ok:
			removed[k] = true
		case ea.Type != eb.Type || ea.Size != eb.Size || ea.SHA256 != eb.SHA256 || ea.Mode != eb.Mode || ea.Link != eb.Link:
			changed[k] = true
		}
	}
	for k := range fb {
		if _, ok := fa[k]; !ok {
			added[k] = true
		}
	}
	for _, k := range sortedKeys(added) {
		ad.Added = append(ad.Added, k.label(oci))
	}
	for _, k := range sortedKeys(removed) {
		ad.Removed = append(ad.Removed, k.label(oci))
	}
	// Changed files that may be text: regular on both sides, small, with
	// different content.
	var want []fileKey
	for _, k := range sortedKeys(changed) {
		ad.Changed = append(ad.Changed, k.label(oci))
		ea, eb := fa[k], fb[k]
		if ea.Type == FileRegular && eb.Type == FileRegular && ea.SHA256 != eb.SHA256 &&
			ea.Size < maxTextSize && eb.Size < maxTextSize && k.path != ConfigPath {
			want = append(want, k)
		}
	}
	if len(want) == 0 || a.Type != b.Type {
		return nil
	}
	ca, err := readContents(ctx, outA, a, fa, want)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		ad.Notes = append(ad.Notes, fmt.Sprintf("no text diffs: build A: %v", err))
		return nil
	}
	cb, err := readContents(ctx, outB, b, fb, want)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		ad.Notes = append(ad.Notes, fmt.Sprintf("no text diffs: build B: %v", err))
		return nil
	}
	for _, k := range want {
		x, okA := ca[k]
		y, okB := cb[k]
		if !okA || !okB || !isText(x) || !isText(y) {
			continue
		}
		if ad.TextDiffs == nil {
			ad.TextDiffs = make(map[string]string)
		}
		ad.TextDiffs[k.label(oci)] = UnifiedDiff("a/"+k.path, "b/"+k.path, x, y, maxTextDiffLine)
	}
	return nil
}

func isText(b []byte) bool {
	return len(b) < maxTextSize && utf8.Valid(b) && bytes.IndexByte(b, 0) < 0
}

// readContents reads the wanted regular files out of the artifact am in
// the output folder out, and checks each against its manifest entry.
func readContents(ctx context.Context, out string, am *ArtifactManifest, files map[fileKey]FileEntry, want []fileKey) (map[fileKey][]byte, error) {
	loc, err := locateArtifact(out, am)
	if err != nil {
		return nil, err
	}
	got := make(map[fileKey][]byte)
	wanted := make(map[fileKey]bool)
	for _, k := range want {
		wanted[k] = true
	}
	switch am.Type {
	case ArtifactFile:
		b, err := readLimited(loc, maxTextSize)
		if err != nil {
			return nil, err
		}
		for _, k := range want {
			got[k] = b
		}
	case ArtifactZip:
		zr, err := zip.OpenReader(loc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", loc, err)
		}
		defer zr.Close()
		for _, zf := range zr.File {
			k := fileKey{0, cleanEntryPath(zf.Name)}
			if !wanted[k] || !zf.Mode().IsRegular() {
				continue
			}
			rc, err := zf.Open()
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", loc, zf.Name, err)
			}
			b, err := io.ReadAll(io.LimitReader(rc, maxTextSize+1))
			rc.Close()
			if err != nil {
				return nil, fmt.Errorf("%s: %s: %w", loc, zf.Name, err)
			}
			got[k] = b
		}
	case ArtifactOCILayout:
		l, err := openOCILayout(loc, am.Digest)
		if err != nil {
			return nil, err
		}
		layers := make(map[int]bool)
		for _, k := range want {
			layers[k.layer] = true
		}
		for i := range layers {
			if i >= len(l.manifest.Layers) {
				return nil, fmt.Errorf("%s: manifest %s has no layer %d", loc, am.Digest, i)
			}
			if err := readLayerFiles(ctx, l, i, wanted, got); err != nil {
				return nil, err
			}
		}
	}
	for k, b := range got {
		if e := files[k]; sha256Hex(b) != e.SHA256 {
			return nil, fmt.Errorf("%s in %s does not match the manifest: the output folder changed after the build", k.label(am.Type == ArtifactOCILayout), loc)
		}
	}
	return got, nil
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func readLayerFiles(ctx context.Context, l *ociLayout, i int, wanted map[fileKey]bool, got map[fileKey][]byte) (err error) {
	r, finish, err := l.layerTar(i)
	if err != nil {
		return err
	}
	defer func() {
		if fErr := finish(); err == nil {
			err = fErr
		}
	}()
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: layer %d: reading tar: %w", l.dir, i, err)
		}
		k := fileKey{i, cleanEntryPath(hdr.Name)}
		if !wanted[k] || hdr.Typeflag != tar.TypeReg { // archive/tar reads the old TypeRegA as TypeReg
			continue
		}
		b, err := io.ReadAll(io.LimitReader(tr, maxTextSize+1))
		if err != nil {
			return fmt.Errorf("%s: layer %d: %s: %w", l.dir, i, hdr.Name, err)
		}
		got[k] = b
	}
}

// locateArtifact finds an artifact in an output folder: at its Path, or
// else under OUT/artifacts by name (a file) or by manifest digest (an OCI
// layout).
func locateArtifact(out string, am *ArtifactManifest) (string, error) {
	if am.Path != "" {
		return filepath.Join(out, filepath.FromSlash(am.Path)), nil
	}
	root := filepath.Join(out, "artifacts")
	var found string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		switch {
		case am.Type == ArtifactOCILayout && d.IsDir():
			if _, err := os.Stat(filepath.Join(p, "index.json")); err != nil {
				return nil
			}
			if _, err := openOCILayout(p, am.Digest); err == nil {
				found = p
				return fs.SkipAll
			}
			return fs.SkipDir
		case am.Type != ArtifactOCILayout && d.Type().IsRegular() && d.Name() == filepath.Base(am.Name):
			found = p
			return fs.SkipAll
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("looking for artifact %q: %w", am.Name, err)
	}
	if found == "" {
		return "", fmt.Errorf("artifact %q (%s) not found in %s", am.Name, am.Digest, root)
	}
	return found, nil
}

// Print writes a human report of d: per artifact either "identical", or
// both digests and the removed, added and changed files, with the text
// diffs indented under the files they belong to.
func (d *DiffResult) Print(w io.Writer) {
	const maxList = 50
	for _, a := range d.Artifacts {
		switch {
		case a.DigestA == a.DigestB:
			fmt.Fprintf(w, "%s: identical (%s)\n", a.Name, shortDigest(a.DigestA))
			continue
		case a.DigestB == "":
			fmt.Fprintf(w, "%s: only in A (%s)\n", a.Name, shortDigest(a.DigestA))
			continue
		case a.DigestA == "":
			fmt.Fprintf(w, "%s: only in B (%s)\n", a.Name, shortDigest(a.DigestB))
			continue
		}
		fmt.Fprintf(w, "%s: %s vs %s\n", a.Name, shortDigest(a.DigestA), shortDigest(a.DigestB))
		list := func(what string, paths []string, diffs map[string]string) {
			for i, p := range paths {
				if i == maxList {
					fmt.Fprintf(w, "  ... and %d more %s\n", len(paths)-maxList, what)
					break
				}
				fmt.Fprintf(w, "  %s: %s\n", what, p)
				if td, ok := diffs[p]; ok {
					for line := range strings.Lines(td) {
						fmt.Fprintf(w, "    %s", line)
					}
					if !strings.HasSuffix(td, "\n") {
						fmt.Fprintln(w)
					}
				}
			}
		}
		list("removed", a.Removed, nil)
		list("added", a.Added, nil)
		list("changed", a.Changed, a.TextDiffs)
		if len(a.Removed)+len(a.Added)+len(a.Changed) == 0 {
			fmt.Fprintf(w, "  no file differs: the difference is in the container (zip or tar headers, order, compression)\n")
		}
		for _, n := range a.Notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
	}
}

func shortDigest(d string) string {
	if h, ok := strings.CutPrefix(d, "sha256:"); ok && len(h) > 12 {
		return "sha256:" + h[:12] + "…"
	}
	return d
}

// Unified diff

// lineEdit is one line of an edit script: kind is ' ', '-' or '+'; a and b
// are the numbers of lines of A and B before it.
type lineEdit struct {
	kind byte
	a, b int
}

// maxEditDistance bounds the Myers search; past it, the differing middle
// of the files is shown as all removed, then all added.
const maxEditDistance = 2000

// splitLines splits s after each "\n"; the last line may lack one.
func splitLines(s []byte) []string {
	var lines []string
	for line := range strings.Lines(string(s)) {
		lines = append(lines, line)
	}
	return lines
}

// editScript returns a shortest edit script from a to b (Myers' O(ND)
// algorithm, on the part between the common prefix and suffix).
func editScript(a, b []string) []lineEdit {
	pre := 0
	for pre < len(a) && pre < len(b) && a[pre] == b[pre] {
		pre++
	}
	suf := 0
	for suf < len(a)-pre && suf < len(b)-pre && a[len(a)-1-suf] == b[len(b)-1-suf] {
		suf++
	}
	var edits []lineEdit
	for i := 0; i < pre; i++ {
		edits = append(edits, lineEdit{' ', i, i})
	}
	mid := myers(a[pre:len(a)-suf], b[pre:len(b)-suf])
	for _, e := range mid {
		edits = append(edits, lineEdit{e.kind, e.a + pre, e.b + pre})
	}
	for i := 0; i < suf; i++ {
		edits = append(edits, lineEdit{' ', len(a) - suf + i, len(b) - suf + i})
	}
	return edits
}

func myers(a, b []string) []lineEdit {
	n, m := len(a), len(b)
	maxD := min(n+m, maxEditDistance)
	off := maxD + 1
	v := make([]int, 2*maxD+3)
	// trace[d] holds v[-(d-1) .. d-1] as it was before step d.
	var trace [][]int
	for d := 0; d <= maxD; d++ {
		if d > 0 {
			trace = append(trace, slices.Clone(v[off-(d-1):off+d]))
		} else {
			trace = append(trace, nil)
		}
		for k := -d; k <= d; k += 2 {
			var x int
			if k == -d || (k != d && v[off+k-1] < v[off+k+1]) {
				x = v[off+k+1]
			} else {
				x = v[off+k-1] + 1
			}
			y := x - k
			for x < n && y < m && a[x] == b[y] {
				x++
				y++
			}
			v[off+k] = x
			if x >= n && y >= m {
				return backtrack(trace, n, m)
			}
		}
	}
	// Too far apart: remove all of a, add all of b.
	edits := make([]lineEdit, 0, n+m)
	for i := range n {
		edits = append(edits, lineEdit{'-', i, 0})
	}
	for j := range m {
		edits = append(edits, lineEdit{'+', n, j})
	}
	return edits
}

func backtrack(trace [][]int, n, m int) []lineEdit {
	var rev []lineEdit
	x, y := n, m
	for d := len(trace) - 1; d >= 0; d-- {
		var prevX, prevY int
		if d > 0 {
			vd := trace[d]
			get := func(k int) int { return vd[k+d-1] }
			k := x - y
			var prevK int
			if k == -d || (k != d && get(k-1) < get(k+1)) {
				prevK = k + 1
			} else {
				prevK = k - 1
			}
			prevX = get(prevK)
			prevY = prevX - prevK
		}
		for x > prevX && y > prevY {
			x--
			y--
			rev = append(rev, lineEdit{' ', x, y})
		}
		if d > 0 {
			if x == prevX {
				y--
				rev = append(rev, lineEdit{'+', x, y})
			} else {
				x--
				rev = append(rev, lineEdit{'-', x, y})
			}
		}
	}
	slices.Reverse(rev)
	return rev
}

// UnifiedDiff returns a unified diff of a and b (--- and +++ headers, @@
// hunks with 3 lines of context), cut to maxLines lines (0: no limit), the
// last of which then says how many were left out. Equal inputs give "".
func UnifiedDiff(nameA, nameB string, a, b []byte, maxLines int) string {
	la, lb := splitLines(a), splitLines(b)
	edits := editScript(la, lb)
	var out []string
	out = append(out, "--- "+nameA, "+++ "+nameB)
	hunks := 0
	for i := 0; i < len(edits); {
		if edits[i].kind == ' ' {
			i++
			continue
		}
		start := max(i-diffContext, 0)
		j, end := i, 0
		for {
			for j < len(edits) && edits[j].kind != ' ' {
				j++
			}
			k := j
			for k < len(edits) && edits[k].kind == ' ' {
				k++
			}
			if k == len(edits) || k-j > 2*diffContext {
				end = min(j+diffContext, k)
				break
			}
			j = k
		}
		hunks++
		out = append(out, hunkLines(edits[start:end], la, lb)...)
		i = end
	}
	if hunks == 0 {
		return ""
	}
	if maxLines > 0 && len(out) > maxLines {
		more := len(out) - (maxLines - 1)
		out = append(out[:maxLines-1], fmt.Sprintf("... %d more lines", more))
	}
	return strings.Join(out, "\n") + "\n"
}

func hunkLines(h []lineEdit, la, lb []string) []string {
	var ca, cb int
	for _, e := range h {
		switch e.kind {
		case ' ':
			ca++
			cb++
		case '-':
			ca++
		case '+':
			cb++
		}
	}
	rng := func(first, count int) string {
		if count == 0 {
			return fmt.Sprintf("%d,0", first)
		}
		if count == 1 {
			return fmt.Sprintf("%d", first+1)
		}
		return fmt.Sprintf("%d,%d", first+1, count)
	}
	out := []string{fmt.Sprintf("@@ -%s +%s @@", rng(h[0].a, ca), rng(h[0].b, cb))}
	for _, e := range h {
		var line string
		if e.kind == '+' {
			line = lb[e.b]
		} else {
			line = la[e.a]
		}
		text, hadNL := strings.CutSuffix(line, "\n")
		out = append(out, string(e.kind)+text)
		if !hadNL {
			out = append(out, `\ No newline at end of file`)
		}
	}
	return out
}
