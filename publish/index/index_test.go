package index

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pyrsia/pyrsia-build/publish"
	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
)

func hexOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// specOf returns a spec that names ecosystem and coordinate, as an entry's
// spec must.
func specOf(ecosystem, coordinate string, input any) json.RawMessage {
	b, err := json.Marshal(map[string]any{"coordinate": coordinate, "ecosystem": ecosystem, "input": input})
	if err != nil {
		panic(err)
	}
	return b
}

// inputOf is the input digest of the spec of entry(ecosystem, coordinate,
// input, ...): the SHA-256 of its spec.
func inputOf(ecosystem, coordinate string, input any) string {
	sum := sha256.Sum256(specOf(ecosystem, coordinate, input))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// entry returns an entry for spec input publishing the named artifacts
// ("name=content"), the digest of each being that of its content.
func entry(ecosystem, coordinate, input string, artifacts ...string) *publish.Entry {
	e := &publish.Entry{
		InputDigest: inputOf(ecosystem, coordinate, input),
		Ecosystem:   ecosystem,
		Coordinate:  coordinate,
		Spec:        specOf(ecosystem, coordinate, input),
		Envelopes: []*dssepb.Envelope{{
			PayloadType: "application/vnd.in-toto+json",
			Payload:     []byte(`{"input":"` + input + `"}`),
			Signatures:  []*dssepb.Signature{{Sig: []byte("sig")}},
		}},
	}
	for _, a := range artifacts {
		name, content, _ := strings.Cut(a, "=")
		e.Subjects = append(e.Subjects, publish.Subject{Name: name, Digest: "sha256:" + hexOf(content)})
	}
	return e
}

func logIndexes(recs []Record) []uint64 {
	var out []uint64
	for _, r := range recs {
		out = append(out, r.LogIndex)
	}
	return out
}

// sampleIndex holds:
//
//	0 oci   hello:1.0 input-a  hello=image-1
//	1 maven g:a:1.0   input-b  a-1.0.jar=jar-1, a-1.0.pom=pom-1
//	2 oci   hello:1.0 input-c  hello=image-2 (a new build of the tag)
//	3 oci   hello:latest input-c hello=image-2 (the same image, another tag)
//	4 maven g:a:1.1   input-d  a-1.1.jar=jar-1 (an unchanged jar), a-1.1.pom=pom-2
//	7 oci   hello:1.0 input-a  hello=image-1, hello.sbom=sbom-1 (a rebuild of input-a, after a gap)
//
// An input digest is that of the spec, which names the ecosystem and
// coordinate: entries 2 and 3 have different input digests.
func sampleIndex(t *testing.T) *Index {
	t.Helper()
	x, err := New()
	if err != nil {
		t.Fatal(err)
	}
	err = x.AddBatch([]Item{
		{0, entry("oci", "hello:1.0", "input-a", "hello=image-1")},
		{1, entry("maven", "g:a:1.0", "input-b", "a-1.0.jar=jar-1", "a-1.0.pom=pom-1")},
		{2, entry("oci", "hello:1.0", "input-c", "hello=image-2")},
		{4, entry("maven", "g:a:1.1", "input-d", "a-1.1.jar=jar-1", "a-1.1.pom=pom-2")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := x.Add(3, entry("oci", "hello:latest", "input-c", "hello=image-2")); err != nil {
		t.Fatal(err)
	}
	if err := x.Add(7, entry("oci", "hello:1.0", "input-a", "hello=image-1", "hello.sbom=sbom-1")); err != nil {
		t.Fatal(err)
	}
	return x
}

func TestLookups(t *testing.T) {
	x := sampleIndex(t)
	if got := x.Len(); got != 6 {
		t.Errorf("Len() = %d, want 6", got)
	}
	t.Run("ByArtifact", func(t *testing.T) {
		tests := []struct {
			name, digest string
			want         []uint64
		}{
			{"one entry", hexOf("pom-1"), []uint64{1}},
			{"prefixed", "sha256:" + hexOf("pom-1"), []uint64{1}},
			{"two tags", hexOf("image-2"), []uint64{2, 3}},
			{"a rebuild after a gap", hexOf("image-1"), []uint64{0, 7}},
			{"jar in two releases", hexOf("jar-1"), []uint64{1, 4}},
			{"unknown", hexOf("nothing"), nil},
			{"upper case", strings.ToUpper(hexOf("pom-1")), []uint64{1}},
			{"short", hexOf("pom-1")[:10], nil},
			{"not hex", strings.Repeat("z", 64), nil},
			{"empty", "", nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if got := logIndexes(x.ByArtifact(tt.digest)); !slices.Equal(got, tt.want) {
					t.Errorf("ByArtifact(%s) = %v, want %v", tt.digest, got, tt.want)
				}
			})
		}
	})
	t.Run("ByInputDigest", func(t *testing.T) {
		tests := []struct {
			name, digest string
			want         uint64
			ok           bool
		}{
			{"once", inputOf("maven", "g:a:1.0", "input-b"), 1, true},
			{"one input, one tag", inputOf("oci", "hello:1.0", "input-c"), 2, true},
			{"one input, another tag", inputOf("oci", "hello:latest", "input-c"), 3, true},
			{"latest after a gap", inputOf("oci", "hello:1.0", "input-a"), 7, true},
			{"bare hex", strings.TrimPrefix(inputOf("maven", "g:a:1.1", "input-d"), "sha256:"), 4, true},
			{"unknown", inputOf("oci", "hello:1.0", "input-z"), 0, false},
			{"invalid", "sha256:00", 0, false},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, ok := x.ByInputDigest(tt.digest)
				if ok != tt.ok || got.LogIndex != tt.want {
					t.Errorf("ByInputDigest(%s) = %d, %v; want %d, %v", tt.digest, got.LogIndex, ok, tt.want, tt.ok)
				}
			})
		}
	})
	t.Run("ByCoordinate", func(t *testing.T) {
		tests := []struct {
			ecosystem, coordinate string
			want                  []uint64
		}{
			{"oci", "hello:1.0", []uint64{0, 2, 7}},
			{"oci", "hello:latest", []uint64{3}},
			{"maven", "g:a:1.1", []uint64{4}},
			{"maven", "hello:1.0", nil},
			{"oci", "hello:1", nil},
			{"oci", "hello", nil},
			{"", "", nil},
		}
		for _, tt := range tests {
			t.Run(tt.ecosystem+"/"+tt.coordinate, func(t *testing.T) {
				if got := logIndexes(x.ByCoordinate(tt.ecosystem, tt.coordinate)); !slices.Equal(got, tt.want) {
					t.Errorf("ByCoordinate(%q, %q) = %v, want %v", tt.ecosystem, tt.coordinate, got, tt.want)
				}
			})
		}
	})
	t.Run("ByCoordinatePrefix", func(t *testing.T) {
		tests := []struct {
			name, ecosystem, prefix string
			want                    []uint64
		}{
			{"tags of a name", "oci", "hello:", []uint64{0, 2, 3, 7}},
			{"one tag exactly", "oci", "hello:latest", []uint64{3}},
			{"start of a tag", "oci", "hello:l", []uint64{3}},
			{"versions of an artifact", "maven", "g:a:", []uint64{1, 4}},
			{"one version", "maven", "g:a:1.1", []uint64{4}},
			{"whole ecosystem", "oci", "", []uint64{0, 2, 3, 7}},
			{"whole other ecosystem", "maven", "", []uint64{1, 4}},
			{"other ecosystem's names", "maven", "hello:", nil},
			{"longer than any", "oci", "hello:1.0.1", nil},
			{"unknown name", "oci", "hellp:", nil},
			{"unknown ecosystem", "npm", "", nil},
			{"ecosystem prefix is not an ecosystem", "oc", "", nil},
			{"NUL in prefix", "oci", "hello:1.0\x00", nil},
			{"NUL in ecosystem", "oci\x00hello", "", nil},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				if got := logIndexes(x.ByCoordinatePrefix(tt.ecosystem, tt.prefix)); !slices.Equal(got, tt.want) {
					t.Errorf("ByCoordinatePrefix(%q, %q) = %v, want %v", tt.ecosystem, tt.prefix, got, tt.want)
				}
			})
		}
	})
	t.Run("Get", func(t *testing.T) {
		got, ok := x.Get(1)
		want := Record{
			LogIndex:    1,
			InputDigest: inputOf("maven", "g:a:1.0", "input-b"),
			Ecosystem:   "maven",
			Coordinate:  "g:a:1.0",
			Subjects: []publish.Subject{
				{Name: "a-1.0.jar", Digest: "sha256:" + hexOf("jar-1")},
				{Name: "a-1.0.pom", Digest: "sha256:" + hexOf("pom-1")},
			},
		}
		if !ok || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("Get(1) = %+v, %v; want %+v, true", got, ok, want)
		}
		// The caller owns what it gets.
		got.Subjects[0].Name = "changed"
		if again, _ := x.Get(1); again.Subjects[0].Name != "a-1.0.jar" {
			t.Error("changing a returned record changed the index")
		}
		for _, i := range []uint64{5, 6, 8, 1 << 63} {
			if _, ok := x.Get(i); ok {
				t.Errorf("Get(%d) found a record, want none", i)
			}
		}
	})
}

func TestAddIdempotent(t *testing.T) {
	x := sampleIndex(t)
	// The same entry again, its slices in another order: nothing changes.
	e := entry("maven", "g:a:1.0", "input-b", "a-1.0.pom=pom-1", "a-1.0.jar=jar-1")
	if err := x.Add(1, e); err != nil {
		t.Fatalf("Add of the same entry: %v", err)
	}
	if err := x.AddBatch([]Item{{1, e}, {1, e}, {8, e}, {8, e}}); err != nil {
		t.Fatalf("AddBatch of repeated entries: %v", err)
	}
	if got := x.Len(); got != 7 {
		t.Errorf("Len() = %d, want 7", got)
	}
	if got := logIndexes(x.ByArtifact(hexOf("pom-1"))); !slices.Equal(got, []uint64{1, 8}) {
		t.Errorf("ByArtifact = %v, want [1 8]", got)
	}
}

func TestAddErrors(t *testing.T) {
	withSig := func(sig string) *publish.Entry {
		e := entry("oci", "hello:1.0", "input-a", "hello=image-1")
		e.Envelopes[0].Signatures[0].Sig = []byte(sig)
		return e
	}
	withSubject := func(name, digest string) *publish.Entry {
		e := entry("oci", "hello:1.0", "input-a")
		e.Subjects = []publish.Subject{{Name: name, Digest: digest}}
		return e
	}
	tests := []struct {
		name     string
		logIndex uint64
		entry    *publish.Entry
		want     string
		conflict bool
	}{
		{"other entry", 0, entry("oci", "hello:1.0", "input-x", "hello=image-1"), "log index 0 holds oci hello:1.0", true},
		{"other signature", 0, withSig("other"), "log index 0 holds", true},
		{"other subject", 0, entry("oci", "hello:1.0", "input-a", "hello=image-9"), "log index 0 holds", true},
		{"nil", 9, nil, "index: log index 9: nil entry", false},
		{"bad input digest", 9, &publish.Entry{InputDigest: "sha256:00"}, `input digest "sha256:00" is not sha256:<64 hex>`, false},
		{"no subjects", 9, entry("oci", "hello:1.0", "input-a"), "entry has no subjects", false},
		{"bad subject digest", 9, withSubject("hello", "md5:00"), `subject "hello": digest "md5:00"`, false},
		{"NUL in coordinate", 9, entry("oci", "a\x00b", "input-a", "hello=image-1"), "without NUL", false},
		{"no ecosystem", 9, entry("", "hello:1.0", "input-a", "hello=image-1"), "must be non-empty", false},
		// Defect 2: genuine attestations for org.example:hello:1.0 put under
		// another name are not indexed under it.
		{"coordinate not the spec's", 9, relabelled("maven", "org.victim:core:9.9"), `the entry says coordinate "org.victim:core:9.9", its spec "org.example:hello:1.0"`, false},
		{"ecosystem not the spec's", 9, relabelled("oci", "org.example:hello:1.0"), `the entry says ecosystem "oci", its spec "maven"`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			x := sampleIndex(t)
			err := x.Add(tt.logIndex, tt.entry)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), "index: ") {
				t.Fatalf("Add: got %v, want an error containing %q", err, tt.want)
			}
			if errors.Is(err, ErrConflict) != tt.conflict {
				t.Errorf("errors.Is(err, ErrConflict) = %v, want %v", !tt.conflict, tt.conflict)
			}
			// A batch that fails adds nothing.
			err = x.AddBatch([]Item{{100, entry("oci", "new:1", "input-new", "new=new")}, {tt.logIndex, tt.entry}})
			if err == nil {
				t.Fatal("AddBatch: no error")
			}
			if _, ok := x.Get(100); ok || x.Len() != 6 {
				t.Errorf("a failed AddBatch left entries behind: Len() = %d", x.Len())
			}
			if got, _ := x.Get(0); got.InputDigest != inputOf("oci", "hello:1.0", "input-a") {
				t.Errorf("log index 0 changed to %+v", got)
			}
		})
	}
}

func TestParsedEntries(t *testing.T) {
	// Entries as they come from the log: through MarshalBinary and
	// ParseEntry, which sorts their slices.
	x, err := New()
	if err != nil {
		t.Fatal(err)
	}
	for i := range uint64(3) {
		e := entry("oci", fmt.Sprintf("hello:1.%d", i), fmt.Sprint("input-", i), "b=image", "a=image")
		b, err := e.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := publish.ParseEntry(b)
		if err != nil {
			t.Fatal(err)
		}
		if err := x.Add(i, parsed); err != nil {
			t.Fatal(err)
		}
		// The unparsed entry is the same entry.
		if err := x.Add(i, e); err != nil {
			t.Errorf("Add of the entry before encoding: %v", err)
		}
	}
	recs := x.ByArtifact(hexOf("image"))
	if got := logIndexes(recs); !slices.Equal(got, []uint64{0, 1, 2}) {
		t.Errorf("ByArtifact = %v, want [0 1 2] (one hit per entry, though two subjects share the digest)", got)
	}
	if names := []string{recs[0].Subjects[0].Name, recs[0].Subjects[1].Name}; !slices.Equal(names, []string{"a", "b"}) {
		t.Errorf("subjects %v, want sorted as in the log", names)
	}
}

func TestConcurrentReadsAndWrites(t *testing.T) {
	x, err := New()
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range uint64(n) {
				// Every writer adds the same entries: repeats are no-ops.
				if err := x.Add(i, synthetic(i)); err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			for i := range uint64(n) {
				if rec, ok := x.Get(i); ok && rec.LogIndex != i {
					t.Errorf("Get(%d) = %d", i, rec.LogIndex)
				}
				x.ByArtifact(hexOf(fmt.Sprint("artifact-", i)))
				x.ByCoordinate("oci", fmt.Sprintf("app-%d:1.0", i%100))
			}
		})
	}
	wg.Wait()
	if got := x.Len(); got != n {
		t.Errorf("Len() = %d, want %d", got, n)
	}
}

// synthetic returns a plausible entry for log index i: an OCI image or a
// Maven jar and pom, signed by three nodes, with a statement of about 1 KiB.
func synthetic(i uint64) *publish.Entry {
	statement := []byte(fmt.Sprintf(`{"_type":"https://in-toto.io/Statement/v1","n":%d,"pad":"%s"}`, i, strings.Repeat("x", 1000)))
	e := &publish.Entry{}
	if i%2 == 0 {
		e.Ecosystem, e.Coordinate = "oci", fmt.Sprintf("app-%d:1.%d", i%100, i/100)
		e.Subjects = []publish.Subject{{Name: "app", Digest: "sha256:" + hexOf(fmt.Sprint("artifact-", i))}}
	} else {
		e.Ecosystem, e.Coordinate = "maven", fmt.Sprintf("org.example:lib-%d:1.%d", i%100, i/100)
		e.Subjects = []publish.Subject{
			{Name: "lib.jar", Digest: "sha256:" + hexOf(fmt.Sprint("artifact-", i))},
			{Name: "lib.pom", Digest: "sha256:" + hexOf(fmt.Sprint("pom-", i))},
		}
	}
	e.Spec = specOf(e.Ecosystem, e.Coordinate, i)
	e.InputDigest = e.SpecDigest()
	for node := range 3 {
		e.Envelopes = append(e.Envelopes, &dssepb.Envelope{
			PayloadType: "application/vnd.in-toto+json",
			Payload:     statement,
			Signatures:  []*dssepb.Signature{{Sig: []byte(fmt.Sprintf("%072d", node))}},
		})
	}
	return e
}

// BenchmarkRebuild indexes 100,000 entries with AddBatch, as a node does
// when it starts: in batches of one tile (256 entries), and in one batch.
// It reports entries/s, and the heap the index keeps per entry.
func BenchmarkRebuild(b *testing.B) {
	const n = 100_000
	items := make([]Item, n)
	for i := range items {
		items[i] = Item{LogIndex: uint64(i), Entry: synthetic(uint64(i))}
	}
	for _, batch := range []int{256, n} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			b.ReportAllocs()
			var x *Index
			var elapsed time.Duration
			for b.Loop() {
				start := time.Now()
				var err error
				x, err = New()
				if err != nil {
					b.Fatal(err)
				}
				for lo := 0; lo < n; lo += batch {
					if err := x.AddBatch(items[lo:min(lo+batch, n)]); err != nil {
						b.Fatal(err)
					}
				}
				elapsed += time.Since(start)
			}
			b.ReportMetric(float64(n)*float64(b.N)/elapsed.Seconds(), "entries/s")
			if x.Len() != n {
				b.Fatalf("Len() = %d, want %d", x.Len(), n)
			}
			b.StopTimer()
			b.ReportMetric(float64(retained(func() any { return mustRebuild(b, items, batch) }))/n, "heap-B/entry")
		})
	}
}

func mustRebuild(b *testing.B, items []Item, batch int) *Index {
	x, err := New()
	if err != nil {
		b.Fatal(err)
	}
	for lo := 0; lo < len(items); lo += batch {
		if err := x.AddBatch(items[lo:min(lo+batch, len(items))]); err != nil {
			b.Fatal(err)
		}
	}
	return x
}

// retained returns the heap that what make returns keeps alive.
func retained(make func() any) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	v := make()
	runtime.GC()
	runtime.ReadMemStats(&after)
	runtime.KeepAlive(v)
	if after.HeapAlloc < before.HeapAlloc {
		return 0
	}
	return after.HeapAlloc - before.HeapAlloc
}

// relabelled returns an entry for org.example:hello:1.0 (maven) that claims
// another ecosystem and coordinate.
func relabelled(ecosystem, coordinate string) *publish.Entry {
	e := entry("maven", "org.example:hello:1.0", "input-r", "hello-1.0.jar=jar")
	e.Ecosystem, e.Coordinate = ecosystem, coordinate
	return e
}

func TestRelabelledNotFound(t *testing.T) {
	x := sampleIndex(t)
	err := x.Add(50, relabelled("maven", "org.victim:core:9.9"))
	if !errors.Is(err, publish.ErrLabelMismatch) {
		t.Fatalf("got %v, want publish.ErrLabelMismatch", err)
	}
	if got := x.ByCoordinate("maven", "org.victim:core:9.9"); len(got) != 0 {
		t.Errorf("ByCoordinate(org.victim:core:9.9) = %v, want nothing", got)
	}
}

// CopyFrom fills a second index of the same log from the first, record
// for record, names the indexes the first lacks, does nothing for what
// it holds already, and refuses a different entry at an index it holds.
func TestCopyFrom(t *testing.T) {
	src, err := New()
	if err != nil {
		t.Fatal(err)
	}
	a := entry(publish.EcosystemMaven, "org.example:a:1", "a", "a.jar=A")
	b := entry(publish.EcosystemOCI, "example/b:1", "b", "b=B")
	if err := src.AddBatch([]Item{{LogIndex: 0, Entry: a}, {LogIndex: 2, Entry: b}}); err != nil {
		t.Fatal(err)
	}
	dst, err := New()
	if err != nil {
		t.Fatal(err)
	}
	missing, err := dst.CopyFrom(src, 0, 2)
	if err != nil || !slices.Equal(missing, []uint64{1}) {
		t.Fatalf("CopyFrom [0, 2): missing %v, %v; want [1]", missing, err)
	}
	if dst.Len() != 1 {
		t.Fatalf("%d records, want 1", dst.Len())
	}
	if missing, err := dst.CopyFrom(src, 0, 4); err != nil || !slices.Equal(missing, []uint64{1, 3}) {
		t.Fatalf("CopyFrom [0, 4): missing %v, %v; want [1 3]", missing, err)
	}
	if dst.Len() != 2 {
		t.Fatalf("%d records after copying again, want 2", dst.Len())
	}
	for i, want := range map[uint64]*publish.Entry{0: a, 2: b} {
		rec, ok := dst.Get(i)
		if !ok || rec.InputDigest != want.InputDigest || !slices.Equal(rec.Subjects, want.Subjects) {
			t.Errorf("record %d: %+v, %v", i, rec, ok)
		}
	}
	if rec, ok := dst.ByInputDigest(b.InputDigest); !ok || rec.LogIndex != 2 {
		t.Errorf("ByInputDigest of a copied record: %+v, %v", rec, ok)
	}
	other, _ := New()
	if err := other.Add(0, entry(publish.EcosystemMaven, "org.example:c:1", "c", "c.jar=C")); err != nil {
		t.Fatal(err)
	}
	if _, err := dst.CopyFrom(other, 0, 1); !errors.Is(err, ErrConflict) {
		t.Errorf("CopyFrom of another entry at 0: %v, want ErrConflict", err)
	}
}
