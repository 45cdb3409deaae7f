package serve

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestMavenVersionOrder checks the order and canonical forms against those
// of Maven 3.8.7's own ComparableVersion (testdata/maven-versions/Order.java
// made order.txt from versions.txt), for every pair of versions.
func TestMavenVersionOrder(t *testing.T) {
	f, err := os.Open("testdata/maven-versions/order.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type row struct {
		rank      int
		version   string
		canonical string
	}
	var rows []row
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Split(sc.Text(), "\t")
		if len(parts) != 3 {
			t.Fatalf("order.txt: line %q: want rank, version, canonical", sc.Text())
		}
		rank, err := strconv.Atoi(parts[0])
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row{rank, parts[1], parts[2]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rows) < 100 {
		t.Fatalf("order.txt holds %d versions, want at least 100", len(rows))
	}
	for _, r := range rows {
		if got := canonicalMavenVersion(r.version); got != r.canonical {
			t.Errorf("canonical(%q) = %q, want %q", r.version, got, r.canonical)
		}
	}
	for _, a := range rows {
		for _, b := range rows {
			want := 0
			switch {
			case a.rank < b.rank:
				want = -1
			case a.rank > b.rank:
				want = 1
			}
			if got := compareMavenVersions(a.version, b.version); got != want {
				t.Errorf("compare(%q, %q) = %d, want %d", a.version, b.version, got, want)
			}
		}
	}
}

func TestMavenVersionKnownOrder(t *testing.T) {
	order := []string{"1.0-alpha", "1.0-beta", "1.0-rc", "1.0-SNAPSHOT", "1.0", "1.0.1", "1.10"}
	for i := range order {
		for j := range order {
			want := 0
			switch {
			case i < j:
				want = -1
			case i > j:
				want = 1
			}
			if got := compareMavenVersions(order[i], order[j]); got != want {
				t.Errorf("compare(%q, %q) = %d, want %d", order[i], order[j], got, want)
			}
		}
	}
}

// TestMavenVersionNotTransitive: Maven's order has cycles, and this one
// has Maven's (Maven 3.8.7 prints 0 < A, A < 0A0, 0A0 < 0), so a sort
// must not depend on the order versions come in (see mavenMetadataXML).
func TestMavenVersionNotTransitive(t *testing.T) {
	for _, c := range [][2]string{{"0", "A"}, {"A", "0A0"}, {"0A0", "0"}} {
		if got := compareMavenVersions(c[0], c[1]); got != -1 {
			t.Errorf("compare(%q, %q) = %d, want -1 as in Maven", c[0], c[1], got)
		}
	}
}

// FuzzMavenVersion checks that the comparison is antisymmetric and
// reflexive. (It is not transitive, in Maven either: see
// TestMavenVersionNotTransitive.)
func FuzzMavenVersion(f *testing.F) {
	f.Add("1.0-alpha", "1.0")
	f.Add("1-alpha2snapshot", "1.a1.b")
	f.Add("1..0-", "1.9223372036854775808")
	f.Add("0A0", "A")
	f.Fuzz(func(t *testing.T, a, b string) {
		// Only versions a path may hold: the order of other characters
		// (Java's Unicode digits and case folding) is not Maven's.
		for _, v := range []string{a, b} {
			if !validSegment(v) {
				t.Skip()
			}
		}
		ab, ba := compareMavenVersions(a, b), compareMavenVersions(b, a)
		if ab != -ba {
			t.Fatalf("compare(%q, %q) = %d but compare(%q, %q) = %d", a, b, ab, b, a, ba)
		}
		if compareMavenVersions(a, a) != 0 {
			t.Fatalf("compare(%q, %q) != 0", a, a)
		}
	})
}
