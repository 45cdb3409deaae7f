package serve

import (
	"math/big"
	"strings"
)

// This file orders Maven versions as Maven 3.8's ComparableVersion does
// (org.apache.maven.artifact.versioning, the order of version ranges,
// RELEASE and LATEST), for ASCII versions: a version is cut into numbers
// and qualifiers at '.', '-' and every switch between digits and letters;
// a '-', a switch from letters to digits, and a qualifier at the end after
// a '.' open a sub-list; trailing zeros and release qualifiers ("", "ga",
// "final", "release") of each list are dropped; then lists compare item by
// item: alpha < beta < milestone < rc = cr < snapshot < "" < sp < other
// qualifiers (alphabetically) < sub-lists < numbers.
// testdata/maven-versions/order.txt holds the order Maven itself gives a
// set of versions, which the tests check this against.

// mvItem is one item of a parsed version: a number, a qualifier or a
// sub-list. Exactly one of the fields is set (list may be empty).
type mvItem struct {
	kind mvKind
	num  *big.Int // mvNumber
	str  string   // mvString: the qualifier after aliases
	list []mvItem // mvList
}

type mvKind int

const (
	mvNumber mvKind = iota
	mvString
	mvList
)

// mavenQualifiers are Maven's known qualifiers, in order.
var mavenQualifiers = []string{"alpha", "beta", "milestone", "rc", "snapshot", "", "sp"}

// releaseQualifier is comparableQualifier("").
const releaseQualifier = "5"

// comparableQualifier is Maven's: the index of a known qualifier, or
// "7-" and the qualifier, compared as strings.
func comparableQualifier(q string) string {
	for i, k := range mavenQualifiers {
		if k == q {
			return string(rune('0' + i))
		}
	}
	return "7-" + q
}

func stringItem(s string, followedByDigit bool) mvItem {
	if followedByDigit && len(s) == 1 {
		switch s {
		case "a":
			s = "alpha"
		case "b":
			s = "beta"
		case "m":
			s = "milestone"
		}
	}
	switch s {
	case "ga", "final", "release":
		s = ""
	case "cr":
		s = "rc"
	}
	return mvItem{kind: mvString, str: s}
}

func parseItem(isDigit bool, s string) mvItem {
	if isDigit {
		n, ok := new(big.Int).SetString(s, 10)
		if !ok {
			n = new(big.Int)
		}
		return mvItem{kind: mvNumber, num: n}
	}
	return stringItem(s, false)
}

func (it mvItem) isNull() bool {
	switch it.kind {
	case mvNumber:
		return it.num.Sign() == 0
	case mvString:
		return comparableQualifier(it.str) == releaseQualifier
	default:
		return len(it.list) == 0
	}
}

// parseMavenVersion parses v into its list of items, as ComparableVersion's
// parseVersion does.
func parseMavenVersion(v string) []mvItem {
	v = strings.ToLower(v)
	// Lists are built through pointers: a sub-list is appended to its
	// parent when it is opened and filled afterwards, so the parent keeps
	// an index to it, not a copy.
	type node struct {
		items  []mvItem
		kids   map[int]*node // index in items of a sub-list → its node
		parent *node
	}
	root := &node{}
	list := root
	var all []*node
	all = append(all, root)
	open := func() {
		n := &node{parent: list}
		if list.kids == nil {
			list.kids = map[int]*node{}
		}
		list.kids[len(list.items)] = n
		list.items = append(list.items, mvItem{kind: mvList})
		list = n
		all = append(all, n)
	}
	isDigit := false
	start := 0
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '.':
			if i == start {
				list.items = append(list.items, mvItem{kind: mvNumber, num: new(big.Int)})
			} else {
				list.items = append(list.items, parseItem(isDigit, v[start:i]))
			}
			start = i + 1
		case c == '-':
			if i == start {
				list.items = append(list.items, mvItem{kind: mvNumber, num: new(big.Int)})
			} else {
				list.items = append(list.items, parseItem(isDigit, v[start:i]))
			}
			start = i + 1
			open()
		case c >= '0' && c <= '9':
			if !isDigit && i > start {
				// 1.0.0.X1 < 1.0.0-X2: a qualifier followed by a number
				// is a sub-list of its own.
				if len(list.items) > 0 {
					open()
				}
				list.items = append(list.items, stringItem(v[start:i], true))
				start = i
				open()
			}
			isDigit = true
		default:
			if isDigit && i > start {
				list.items = append(list.items, parseItem(true, v[start:i]))
				start = i
				open()
			}
			isDigit = false
		}
	}
	if len(v) > start {
		// A qualifier at the end after a '.' counts as after a '-'.
		if !isDigit && len(list.items) > 0 {
			open()
		}
		list.items = append(list.items, parseItem(isDigit, v[start:]))
	}
	// Normalize the innermost lists first (the order sub-lists were
	// opened, reversed), then build the tree.
	normalized := map[*node][]mvItem{}
	for i := len(all) - 1; i >= 0; i-- {
		n := all[i]
		items := make([]mvItem, len(n.items))
		for j, it := range n.items {
			if k, ok := n.kids[j]; ok {
				it = mvItem{kind: mvList, list: normalized[k]}
			}
			items[j] = it
		}
		for j := len(items) - 1; j >= 0; j-- {
			if items[j].isNull() {
				items = append(items[:j], items[j+1:]...)
			} else if items[j].kind != mvList {
				break
			}
		}
		normalized[n] = items
	}
	return normalized[root]
}

// compareItem compares a with b, where b may be absent (nil): Maven's
// Item.compareTo(null).
func compareItem(a mvItem, b *mvItem) int {
	switch a.kind {
	case mvNumber:
		if b == nil {
			if a.num.Sign() == 0 {
				return 0
			}
			return 1
		}
		switch b.kind {
		case mvNumber:
			return a.num.Cmp(b.num)
		default:
			return 1 // 1.1 > 1-sp, 1.1 > 1-1
		}
	case mvString:
		if b == nil {
			return strings.Compare(comparableQualifier(a.str), releaseQualifier)
		}
		switch b.kind {
		case mvString:
			return strings.Compare(comparableQualifier(a.str), comparableQualifier(b.str))
		default:
			return -1 // 1.any < 1.1, 1.any < 1-1
		}
	default:
		if b == nil {
			for _, it := range a.list {
				if c := compareItem(it, nil); c != 0 {
					return c
				}
			}
			return 0
		}
		switch b.kind {
		case mvNumber:
			return -1 // 1-1 < 1.0.x
		case mvString:
			return 1 // 1-1 > 1-sp
		}
		return compareLists(a.list, b.list)
	}
}

func compareLists(l, r []mvItem) int {
	for i := 0; i < len(l) || i < len(r); i++ {
		var c int
		switch {
		case i >= len(l):
			c = -compareItem(r[i], nil)
		case i >= len(r):
			c = compareItem(l[i], nil)
		default:
			c = compareItem(l[i], &r[i])
		}
		if c != 0 {
			return c
		}
	}
	return 0
}

// compareMavenVersions returns -1, 0 or 1 as a is older than, the same
// version as, or newer than b, in Maven's order.
func compareMavenVersions(a, b string) int {
	c := compareLists(parseMavenVersion(a), parseMavenVersion(b))
	switch {
	case c < 0:
		return -1
	case c > 0:
		return 1
	}
	return 0
}

// canonicalMavenVersion is ComparableVersion.getCanonical: the parsed
// items written out, '-' before a sub-list and '.' between other items.
func canonicalMavenVersion(v string) string {
	var b strings.Builder
	var write func(items []mvItem)
	write = func(items []mvItem) {
		for i, it := range items {
			if i > 0 {
				if it.kind == mvList {
					b.WriteByte('-')
				} else {
					b.WriteByte('.')
				}
			}
			switch it.kind {
			case mvNumber:
				b.WriteString(it.num.String())
			case mvString:
				b.WriteString(it.str)
			default:
				write(it.list)
			}
		}
	}
	write(parseMavenVersion(v))
	return b.String()
}
