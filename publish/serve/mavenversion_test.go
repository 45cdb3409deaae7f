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

// FuzzMavenVersion checks that the order is an order: antisymmetric,
// reflexive and transitive. (A canonical form does not always parse back
// to the same version in Maven either: "0A" is "a", but "a" < "0A".)
func FuzzMavenVersion(f *testing.F) {
	f.Add("1.0-alpha", "1.0", "1.0.1")
	f.Add("1-alpha2snapshot", "1.a1.b", "2.0.a")
	f.Add("1..0-", "1.0-0.1", "1.9223372036854775808")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		// Only versions a path may hold: the order of other characters
		// (Java's Unicode digits and case folding) is not Maven's.
		for _, v := range []string{a, b, c} {
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
		bc, ac := compareMavenVersions(b, c), compareMavenVersions(a, c)
		if ab <= 0 && bc <= 0 && ac > 0 {
			t.Fatalf("%q <= %q <= %q but compare(%q, %q) = %d", a, b, c, a, c, ac)
		}
	})
}
