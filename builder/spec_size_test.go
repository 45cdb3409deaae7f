package builder

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pyrsia/pyrsia-build/attest"
	"github.com/pyrsia/pyrsia-build/publish"
	dssepb "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
)

// majority is the number of build nodes whose attestations a log entry of
// a 15-node network carries: floor(15/2)+1.
const majority = 8

// entryMargin is what an entry of a spec at MaxSpecSize must leave free,
// for more artifacts and other outputs than the reference builds have.
const entryMargin = publish.MaxEntrySize / 10

// majorityEntry makes the log entry that a majority of a 15-node network
// would publish for spec: 8 nodes' attestations from [Provenance] and
// [attest.Attest] of a reference build (Maven: a jar, a pom, sources and
// javadoc, each compared with the upstream release when the spec asks;
// OCI: one image), with node names of the most characters a policy
// allows, put together by [publish.NewEntry]. It returns the entry's size.
func majorityEntry(t *testing.T, signer *attest.Signer, s *Spec) (int, error) {
	t.Helper()
	digest := func(i int) string { return fmt.Sprintf("sha256:%064x", i+1) }
	res := &Result{BuilderImageDigest: s.BuilderImage.Digest}
	switch s.Ecosystem {
	case "oci":
		name, _, _ := strings.Cut(s.Coordinate, ":")
		res.Artifacts = []Artifact{{Name: name, Digest: digest(0), MediaType: "application/vnd.oci.image.manifest.v1+json"}}
	case "maven":
		_, a, v := splitCoordinate(s.Coordinate)
		if s.Recipe.Maven.CompareUpstream {
			res.Upstream = &UpstreamResult{Coordinate: s.Coordinate, Official: map[string]string{}, Diff: &DiffResult{}}
		}
		for i, suffix := range []string{".jar", ".pom", "-sources.jar", "-javadoc.jar"} {
			name := a + "-" + v + suffix
			res.Artifacts = append(res.Artifacts, Artifact{Name: name, Digest: digest(i), MediaType: "application/java-archive"})
			if up := res.Upstream; up != nil {
				up.Official[name] = digest(i + 10)
				up.Diff.Artifacts = append(up.Diff.Artifacts, ArtifactDiff{Name: name, DigestA: digest(i), DigestB: digest(i + 10)})
			}
		}
	}
	var envs []*dssepb.Envelope
	for i := range majority {
		node := fmt.Sprintf("build-node-%02d-", i) + strings.Repeat("n", 63-len("build-node-00-"))
		started := time.Date(2026, 12, 1, 21, 0, 0, 123456789, time.UTC)
		subjects, prov, err := Provenance(s, res, "urn:pyrsia-build:node:"+node, started, started.Add(time.Duration(i+1)*time.Minute+time.Nanosecond))
		if err != nil {
			t.Fatal(err)
		}
		b, err := attest.Attest(signer, subjects, attest.PredicateSLSAProvenanceV1, prov)
		if err != nil {
			t.Fatal(err)
		}
		envs = append(envs, b.Envelope())
	}
	canon, err := s.CanonicalJSON()
	if err != nil {
		t.Fatal(err)
	}
	e, err := publish.NewEntry(s.Ecosystem, s.Coordinate, canon, envs)
	if err != nil {
		return 0, err
	}
	b, err := e.MarshalBinary()
	return len(b), err
}

func testSigner(t *testing.T) *attest.Signer {
	t.Helper()
	kp, err := attest.GenerateKeyPair([]byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := attest.LoadSigner(kp.Private, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestMaxSpecSizeFitsAnEntry measures MaxSpecSize against the real
// encodings: for specs grown to the bound in each field that can grow (the
// ones every attestation repeats among them, and characters JSON escapes),
// the entry of a 15-node majority's attestations fits in
// publish.MaxEntrySize with entryMargin to spare; one byte more is refused.
// It logs, from the growth between two sizes, how large a spec of each
// shape could be before the entry is full.
func TestMaxSpecSizeFitsAnEntry(t *testing.T) {
	signer := testSigner(t)
	oci := func(t *testing.T) *Spec { return mustParse(t, ociSpec) }
	maven := func(t *testing.T) *Spec {
		s := mustParse(t, edit(t, mavenSpec, "path: hello.tar.gz", "url: https://example.com/hello.tar.gz"))
		s.Recipe.Maven.CompareUpstream = true
		s.Recipe.Maven.Lock = &LockRef{Path: "maven.lock.json", SHA256: testSHA}
		return s
	}
	shapes := []struct {
		name string
		base func(*testing.T) *Spec
		grow func(s *Spec, n int)
	}{
		{"oci build arg", oci, func(s *Spec, n int) {
			s.Recipe.OCI.BuildArgs = map[string]string{"V": strings.Repeat("x", n)}
		}},
		{"oci build arg of escaped characters", oci, func(s *Spec, n int) {
			s.Recipe.OCI.BuildArgs = map[string]string{"V": strings.Repeat("\x01<>&\"\\\u2028é", n)}
		}},
		{"oci git URL", oci, func(s *Spec, n int) {
			s.Source.Git.URL = "https://example.com/" + strings.Repeat("x", n) + ".git"
		}},
		{"maven args", maven, func(s *Spec, n int) {
			s.Recipe.Maven.Args = []string{"-Dx=" + strings.Repeat("x", n)}
		}},
		{"maven modules", maven, func(s *Spec, n int) {
			s.Recipe.Maven.Modules = nil
			for i := range n {
				s.Recipe.Maven.Modules = append(s.Recipe.Maven.Modules, fmt.Sprintf("m%d", i))
			}
		}},
		{"maven archive URL", maven, func(s *Spec, n int) {
			s.Source.Archive.URL = "https://example.com/" + strings.Repeat("x", n) + ".tar.gz"
		}},
		{"maven lock path", maven, func(s *Spec, n int) {
			s.Recipe.Maven.Lock.Path = strings.Repeat("x", n) + ".json"
		}},
		{"maven source release", func(t *testing.T) *Spec {
			s := maven(t)
			s.Source.Archive = nil
			s.Source.Maven = &MavenSource{Coordinate: "org.example:hello:1.0", SHA256: testSHA}
			return s
		}, func(s *Spec, n int) {
			s.Source.Maven.Coordinate = "org.example:hello" + strings.Repeat("x", n) + ":1.0"
		}},
	}
	var lines []string
	for _, sh := range shapes {
		t.Run(sh.name, func(t *testing.T) {
			grown := func(n int) *Spec {
				s := sh.base(t).clone()
				sh.grow(s, n)
				return s
			}
			// The largest growth that Validate accepts.
			n := sort.Search(MaxSpecSize, func(n int) bool { return grown(n+1).Validate() != nil })
			at := grown(n)
			if err := at.Validate(); err != nil {
				t.Fatalf("no spec of this shape is accepted: %v", err)
			}
			canon, repeated, err := at.size()
			if err != nil {
				t.Fatal(err)
			}
			if got := canon + repeated; got > MaxSpecSize || got < MaxSpecSize-64 {
				t.Fatalf("grown to %d bytes, want close to %d", got, MaxSpecSize)
			}
			err = grown(n + 1).Validate()
			var se *SpecError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), fmt.Sprintf("is over the limit of %d", MaxSpecSize)) {
				t.Fatalf("one step over the bound: got %v, want the size refused", err)
			}
			size, err := majorityEntry(t, signer, at)
			if err != nil {
				t.Fatalf("a spec of %d bytes (%d canonical): %v", canon+repeated, canon, err)
			}
			if size > publish.MaxEntrySize-entryMargin {
				t.Errorf("a spec of %d bytes (%d canonical) gives an entry of %d bytes, over %d-%d: lower MaxSpecSize", canon+repeated, canon, size, publish.MaxEntrySize, entryMargin)
			}
			// How much each byte of spec costs, and so where the entry
			// would be full.
			smaller := sort.Search(n, func(m int) bool { c, r, _ := grown(m).size(); return c+r > MaxSpecSize-512 })
			c2, r2, _ := grown(smaller).size()
			size2, err := majorityEntry(t, signer, grown(smaller))
			if err != nil {
				t.Fatal(err)
			}
			perByte := float64(size-size2) / float64(canon+repeated-c2-r2)
			full := float64(canon+repeated) + float64(publish.MaxEntrySize-size)/perByte
			lines = append(lines, fmt.Sprintf("%-36s at %d bytes (%d canonical): entry %d bytes; %.1f entry bytes per spec byte; full at about %.0f", sh.name, canon+repeated, canon, size, perByte, full))
		})
	}
	t.Log("entries of 8 attestations, specs at MaxSpecSize:\n" + strings.Join(lines, "\n"))
}

func mustParse(t *testing.T, text string) *Spec {
	t.Helper()
	s, err := ParseSpec([]byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
