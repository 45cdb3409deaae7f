package attest

import (
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	intoto "github.com/in-toto/attestation/go/v1"
	"google.golang.org/protobuf/types/known/structpb"
)

// maxFastDepth bounds the nesting parseStatementFast reads; deeper
// documents go to protojson (whose own limit is far above it).
const maxFastDepth = 100

// parseStatementFast decodes an in-toto statement as protojson.Unmarshal
// does into an intoto.Statement, without protojson's reflection, for the
// statements pyrsia-build and cosign write. It gives up (ok false) on
// anything it does not decode exactly as protojson does, and on every
// error: the caller then asks protojson, which accepts the rare form or
// words the error. So it never accepts what protojson rejects, and what
// it accepts it decodes to the same message (FuzzStatementFastDifferential
// holds it to protojson). It gives up on: a JSON null as a field's value
// (outside predicate and annotations), a subject's "content" (bytes), an
// unknown or repeated field name, a repeated key in a map or struct, a
// number strconv.ParseFloat refuses, a lone UTF-16 surrogate escape,
// nesting deeper than maxFastDepth, and anything that is not strict JSON.
func parseStatementFast(b []byte) (*intoto.Statement, bool) {
	p := fastParser{in: b}
	st, ok := p.statement()
	if !ok {
		return nil, false
	}
	p.ws()
	if p.pos != len(p.in) {
		return nil, false
	}
	return st, true
}

type fastParser struct {
	in  []byte
	pos int
}

func (p *fastParser) ws() {
	for p.pos < len(p.in) {
		switch p.in[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

// next skips whitespace and returns the next byte (0 at the end).
func (p *fastParser) next() byte {
	p.ws()
	if p.pos >= len(p.in) {
		return 0
	}
	return p.in[p.pos]
}

// consume skips whitespace and ch, or answers false.
func (p *fastParser) consume(ch byte) bool {
	if p.next() != ch {
		return false
	}
	p.pos++
	return true
}

// object reads '{' member (',' member)* '}', calling member with each
// key at the value's start (after ':').
func (p *fastParser) object(member func(key string) bool) bool {
	if !p.consume('{') {
		return false
	}
	if p.next() == '}' {
		p.pos++
		return true
	}
	for {
		if p.next() != '"' {
			return false
		}
		key, ok := p.str()
		if !ok || !p.consume(':') || !member(key) {
			return false
		}
		switch p.next() {
		case ',':
			p.pos++
		case '}':
			p.pos++
			return true
		default:
			return false
		}
	}
}

// array reads '[' elem (',' elem)* ']'.
func (p *fastParser) array(elem func() bool) bool {
	if !p.consume('[') {
		return false
	}
	if p.next() == ']' {
		p.pos++
		return true
	}
	for {
		if !elem() {
			return false
		}
		switch p.next() {
		case ',':
			p.pos++
		case ']':
			p.pos++
			return true
		default:
			return false
		}
	}
}

// stringValue reads a JSON string as a field's value.
func (p *fastParser) stringValue() (string, bool) {
	if p.next() != '"' {
		return "", false
	}
	return p.str()
}

// fieldSet is the fields of a message an object has set: protojson
// refuses a field given twice, under either of its names.
type fieldSet uint

// first reports whether f is set for the first time, and records it.
func (s *fieldSet) first(f uint) bool {
	if *s&fieldSet(f) != 0 {
		return false
	}
	*s |= fieldSet(f)
	return true
}

// Field bits, for the repeated-field check (protojson counts "_type"
// and "type" as one field).
const (
	stType = 1 << iota
	stSubject
	stPredicateType
	stPredicate
)

func (p *fastParser) statement() (*intoto.Statement, bool) {
	st := new(intoto.Statement)
	var seen fieldSet
	ok := p.object(func(key string) bool {
		var ok bool
		switch key {
		case "_type", "type":
			if !seen.first(stType) {
				return false
			}
			st.Type, ok = p.stringValue()
		case "subject":
			if !seen.first(stSubject) {
				return false
			}
			ok = p.array(func() bool {
				rd, ok := p.descriptor()
				if ok {
					st.Subject = append(st.Subject, rd)
				}
				return ok
			})
		case "predicateType", "predicate_type":
			if !seen.first(stPredicateType) {
				return false
			}
			st.PredicateType, ok = p.stringValue()
		case "predicate":
			if !seen.first(stPredicate) {
				return false
			}
			st.Predicate, ok = p.structValue(1)
		}
		return ok
	})
	return st, ok
}

const (
	rdName = 1 << iota
	rdURI
	rdDigest
	rdDownloadLocation
	rdMediaType
	rdAnnotations
)

func (p *fastParser) descriptor() (*intoto.ResourceDescriptor, bool) {
	rd := new(intoto.ResourceDescriptor)
	var seen fieldSet
	ok := p.object(func(key string) bool {
		var ok bool
		switch key {
		case "name":
			if !seen.first(rdName) {
				return false
			}
			rd.Name, ok = p.stringValue()
		case "uri":
			if !seen.first(rdURI) {
				return false
			}
			rd.Uri, ok = p.stringValue()
		case "digest":
			if !seen.first(rdDigest) {
				return false
			}
			rd.Digest = make(map[string]string, 1)
			ok = p.object(func(alg string) bool {
				if _, dup := rd.Digest[alg]; dup {
					return false
				}
				v, ok := p.stringValue()
				rd.Digest[alg] = v
				return ok
			})
		case "downloadLocation", "download_location":
			if !seen.first(rdDownloadLocation) {
				return false
			}
			rd.DownloadLocation, ok = p.stringValue()
		case "mediaType", "media_type":
			if !seen.first(rdMediaType) {
				return false
			}
			rd.MediaType, ok = p.stringValue()
		case "annotations":
			if !seen.first(rdAnnotations) {
				return false
			}
			rd.Annotations, ok = p.structValue(3)
		}
		return ok
	})
	return rd, ok
}

// structValue reads a JSON object as a google.protobuf.Struct.
func (p *fastParser) structValue(depth int) (*structpb.Struct, bool) {
	if depth > maxFastDepth || p.next() != '{' {
		return nil, false
	}
	s := &structpb.Struct{Fields: make(map[string]*structpb.Value)}
	ok := p.object(func(key string) bool {
		if _, dup := s.Fields[key]; dup {
			return false
		}
		v, ok := p.value(depth + 1)
		s.Fields[key] = v
		return ok
	})
	return s, ok
}

// value reads any JSON value as a google.protobuf.Value.
func (p *fastParser) value(depth int) (*structpb.Value, bool) {
	if depth > maxFastDepth {
		return nil, false
	}
	switch ch := p.next(); {
	case ch == '{':
		s, ok := p.structValue(depth)
		return &structpb.Value{Kind: &structpb.Value_StructValue{StructValue: s}}, ok
	case ch == '[':
		l := new(structpb.ListValue)
		ok := p.array(func() bool {
			v, ok := p.value(depth + 1)
			l.Values = append(l.Values, v)
			return ok
		})
		return &structpb.Value{Kind: &structpb.Value_ListValue{ListValue: l}}, ok
	case ch == '"':
		s, ok := p.str()
		return &structpb.Value{Kind: &structpb.Value_StringValue{StringValue: s}}, ok
	case ch == 't':
		return structpb.NewBoolValue(true), p.literal("true")
	case ch == 'f':
		return structpb.NewBoolValue(false), p.literal("false")
	case ch == 'n':
		return structpb.NewNullValue(), p.literal("null")
	case ch == '-' || '0' <= ch && ch <= '9':
		f, ok := p.number()
		return &structpb.Value{Kind: &structpb.Value_NumberValue{NumberValue: f}}, ok
	}
	return nil, false
}

func (p *fastParser) literal(lit string) bool {
	if len(p.in)-p.pos < len(lit) || string(p.in[p.pos:p.pos+len(lit)]) != lit {
		return false
	}
	p.pos += len(lit)
	return p.delimited()
}

// delimited answers whether a number or literal ends here: protojson
// refuses "truex" and "1x" as one bad token, so must this.
func (p *fastParser) delimited() bool {
	if p.pos >= len(p.in) {
		return true
	}
	switch p.in[p.pos] {
	case ' ', '\t', '\n', '\r', ',', ']', '}':
		return true
	}
	return false
}

// number reads a strict JSON number as a float64, as protojson does
// (strconv.ParseFloat of its text; giving up where that fails).
func (p *fastParser) number() (float64, bool) {
	start := p.pos
	end, ok := jsonNumberEnd(p.in, start)
	if !ok {
		return 0, false
	}
	p.pos = end
	if !p.delimited() {
		return 0, false
	}
	f, err := strconv.ParseFloat(string(p.in[start:end]), 64)
	return f, err == nil
}

// jsonNumberEnd returns where the strict JSON number at in[i:] ends
// (RFC 8259: -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?), or
// false when none starts there.
func jsonNumberEnd(in []byte, i int) (int, bool) {
	if i < len(in) && in[i] == '-' {
		i++
	}
	switch {
	case i < len(in) && in[i] == '0':
		i++
	case i < len(in) && '1' <= in[i] && in[i] <= '9':
		for i < len(in) && '0' <= in[i] && in[i] <= '9' {
			i++
		}
	default:
		return 0, false
	}
	if i < len(in) && in[i] == '.' {
		i++
		d := i
		for i < len(in) && '0' <= in[i] && in[i] <= '9' {
			i++
		}
		if i == d {
			return 0, false
		}
	}
	if i < len(in) && (in[i] == 'e' || in[i] == 'E') {
		i++
		if i < len(in) && (in[i] == '+' || in[i] == '-') {
			i++
		}
		d := i
		for i < len(in) && '0' <= in[i] && in[i] <= '9' {
			i++
		}
		if i == d {
			return 0, false
		}
	}
	return i, true
}

// str reads a JSON string at p.pos (its opening quote): valid UTF-8, no
// control characters, escapes as protojson decodes them (a surrogate
// escape only as a valid pair).
func (p *fastParser) str() (string, bool) {
	in := p.in
	i := p.pos + 1
	// The common case: no escapes.
	j := i
	ascii := true
	for j < len(in) {
		ch := in[j]
		if ch == '"' {
			s := in[i:j]
			if !ascii && !utf8.Valid(s) {
				return "", false
			}
			p.pos = j + 1
			return string(s), true
		}
		if ch == '\\' || ch < 0x20 {
			break
		}
		if ch >= 0x80 {
			ascii = false
		}
		j++
	}
	if j >= len(in) || in[j] != '\\' {
		return "", false
	}
	if !ascii && !utf8.Valid(in[i:j]) {
		return "", false
	}
	out := make([]byte, 0, j-i+16)
	out = append(out, in[i:j]...)
	for j < len(in) {
		ch := in[j]
		switch {
		case ch == '"':
			p.pos = j + 1
			return string(out), true
		case ch < 0x20:
			return "", false
		case ch == '\\':
			if j+1 >= len(in) {
				return "", false
			}
			switch e := in[j+1]; e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				r, ok := hex4(in, j+2)
				if !ok {
					return "", false
				}
				j += 6
				if utf16.IsSurrogate(r) {
					if j+1 >= len(in) || in[j] != '\\' || in[j+1] != 'u' {
						return "", false
					}
					r2, ok := hex4(in, j+2)
					if !ok {
						return "", false
					}
					r = utf16.DecodeRune(r, r2)
					if r == utf8.RuneError {
						return "", false
					}
					j += 6
				}
				out = utf8.AppendRune(out, r)
				continue
			default:
				return "", false
			}
			j += 2
		case ch < 0x80:
			out = append(out, ch)
			j++
		default:
			r, n := utf8.DecodeRune(in[j:])
			if r == utf8.RuneError && n == 1 {
				return "", false
			}
			out = append(out, in[j:j+n]...)
			j += n
		}
	}
	return "", false
}

// hex4 reads four hex digits at in[i:].
func hex4(in []byte, i int) (rune, bool) {
	if i+4 > len(in) {
		return 0, false
	}
	var r rune
	for _, c := range in[i : i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}
