package attest

import (
	"bytes"
	"slices"
)

// canonicalFast is CanonicalJSON for the common documents, without
// encoding/json's tokens (which cost an allocation or more per value):
// a scanner that writes the canonical form as it reads. It gives up
// (ok false) on anything it does not handle exactly as canonicalSlow
// does: a string with an escape or a character that encoding/json would
// escape, and every error (canonicalSlow then words it). b is valid
// UTF-8 (checked by the caller). FuzzCanonicalFast holds it to
// canonicalSlow's output.
func canonicalFast(b []byte) ([]byte, bool) {
	c := canonScanner{in: b, out: make([]byte, 0, len(b))}
	if !c.value(0) {
		return nil, false
	}
	c.ws()
	if c.pos != len(c.in) {
		return nil, false
	}
	return c.out, true
}

type canonScanner struct {
	in  []byte
	pos int
	out []byte
}

func (c *canonScanner) ws() {
	for c.pos < len(c.in) {
		switch c.in[c.pos] {
		case ' ', '\t', '\n', '\r':
			c.pos++
		default:
			return
		}
	}
}

func (c *canonScanner) value(depth int) bool {
	if depth > MaxCanonicalDepth {
		return false
	}
	c.ws()
	if c.pos >= len(c.in) {
		return false
	}
	switch ch := c.in[c.pos]; {
	case ch == '{':
		return c.object(depth)
	case ch == '[':
		return c.array(depth)
	case ch == '"':
		s, ok := c.str()
		if ok {
			c.out = append(c.out, '"')
			c.out = append(c.out, s...)
			c.out = append(c.out, '"')
		}
		return ok
	case ch == 't':
		return c.literal("true")
	case ch == 'f':
		return c.literal("false")
	case ch == 'n':
		return c.literal("null")
	case ch == '-' || '0' <= ch && ch <= '9':
		return c.number()
	}
	return false
}

func (c *canonScanner) literal(lit string) bool {
	if !bytes.HasPrefix(c.in[c.pos:], []byte(lit)) {
		return false
	}
	c.pos += len(lit)
	c.out = append(c.out, lit...)
	return true
}

// number copies a JSON number as written (json.Number keeps the text).
func (c *canonScanner) number() bool {
	end, ok := jsonNumberEnd(c.in, c.pos)
	if !ok {
		return false
	}
	c.out = append(c.out, c.in[c.pos:end]...)
	c.pos = end
	return true
}

// str reads a string at c.pos (its opening quote) and returns its
// contents, which encode as themselves: no escapes, no control
// characters, no U+2028 or U+2029 (encoding/json escapes those).
func (c *canonScanner) str() ([]byte, bool) {
	in := c.in
	i := c.pos + 1
	for i < len(in) {
		switch ch := in[i]; {
		case ch == '"':
			s := in[c.pos+1 : i]
			c.pos = i + 1
			return s, true
		case ch == '\\' || ch < 0x20:
			return nil, false
		case ch == 0xe2 && i+2 < len(in) && in[i+1] == 0x80 && (in[i+2] == 0xa8 || in[i+2] == 0xa9):
			return nil, false
		}
		i++
	}
	return nil, false
}

func (c *canonScanner) array(depth int) bool {
	c.pos++ // '['
	c.out = append(c.out, '[')
	c.ws()
	if c.pos < len(c.in) && c.in[c.pos] == ']' {
		c.pos++
		c.out = append(c.out, ']')
		return true
	}
	for {
		if !c.value(depth + 1) {
			return false
		}
		c.ws()
		if c.pos >= len(c.in) {
			return false
		}
		switch c.in[c.pos] {
		case ',':
			c.pos++
			c.out = append(c.out, ',')
		case ']':
			c.pos++
			c.out = append(c.out, ']')
			return true
		default:
			return false
		}
	}
}

// canonMember is an object member written to out: its key, and where its
// "key":value starts and ends in out.
type canonMember struct {
	key        []byte
	start, end int
}

func (c *canonScanner) object(depth int) bool {
	c.pos++ // '{'
	c.out = append(c.out, '{')
	c.ws()
	if c.pos < len(c.in) && c.in[c.pos] == '}' {
		c.pos++
		c.out = append(c.out, '}')
		return true
	}
	var members []canonMember
	sorted := true
	for {
		c.ws()
		if c.pos >= len(c.in) || c.in[c.pos] != '"' {
			return false
		}
		start := len(c.out)
		key, ok := c.str()
		if !ok {
			return false
		}
		if n := len(members); n > 0 {
			switch cmp := bytes.Compare(members[n-1].key, key); {
			case cmp == 0:
				return false // a duplicate key: canonicalSlow words the error
			case cmp > 0:
				sorted = false
			}
		}
		c.out = append(c.out, '"')
		c.out = append(c.out, key...)
		c.out = append(c.out, '"', ':')
		c.ws()
		if c.pos >= len(c.in) || c.in[c.pos] != ':' {
			return false
		}
		c.pos++
		if !c.value(depth + 1) {
			return false
		}
		members = append(members, canonMember{key: key, start: start, end: len(c.out)})
		c.ws()
		if c.pos >= len(c.in) {
			return false
		}
		switch c.in[c.pos] {
		case ',':
			c.pos++
			c.out = append(c.out, ',')
			continue
		case '}':
			c.pos++
		default:
			return false
		}
		break
	}
	if !sorted {
		slices.SortFunc(members, func(a, b canonMember) int { return bytes.Compare(a.key, b.key) })
		for i := 1; i < len(members); i++ {
			if bytes.Equal(members[i-1].key, members[i].key) {
				return false
			}
		}
		base := members[0].start
		for _, m := range members {
			base = min(base, m.start)
		}
		region := slices.Clone(c.out[base:])
		c.out = c.out[:base]
		for i, m := range members {
			if i > 0 {
				c.out = append(c.out, ',')
			}
			c.out = append(c.out, region[m.start-base:m.end-base]...)
		}
	}
	c.out = append(c.out, '}')
	return true
}
