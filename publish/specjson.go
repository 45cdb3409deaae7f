package publish

import (
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pyrsia/pyrsia-build/attest"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"
)

// specJSON is CanonicalJSON(protojson.Marshal(v)), the canonical JSON of
// a statement's spec: what ParseStatement puts in ParsedStatement.Spec.
func specJSON(v *structpb.Value) ([]byte, error) {
	e := specEncoder{out: make([]byte, 0, 512)}
	if e.value(v, 0) {
		return e.out, nil
	}
	raw, err := protojson.Marshal(v)
	if err != nil {
		return nil, err
	}
	return CanonicalJSON(raw)
}

// specEncoder writes a google.protobuf.Value as CanonicalJSON would write
// protojson's encoding of it, without the two passes: keys sorted by their
// bytes, strings escaped as encoding/json escapes them without HTML
// escaping, numbers as protojson writes a double. value gives up (false)
// on what it leaves to the two passes, which word the errors: a Value of
// no kind, NaN or an infinity, a string that is not UTF-8, nesting deeper
// than attest.MaxCanonicalDepth (CanonicalJSON words the error).
// FuzzSpecJSONDifferential holds it to them.
type specEncoder struct {
	out  []byte
	keys []string
}

func (e *specEncoder) value(v *structpb.Value, depth int) bool {
	if depth > attest.MaxCanonicalDepth {
		return false
	}
	switch k := v.GetKind().(type) {
	case *structpb.Value_NullValue:
		e.out = append(e.out, "null"...)
	case *structpb.Value_BoolValue:
		e.out = strconv.AppendBool(e.out, k.BoolValue)
	case *structpb.Value_NumberValue:
		return e.number(k.NumberValue)
	case *structpb.Value_StringValue:
		return e.str(k.StringValue)
	case *structpb.Value_StructValue:
		if k.StructValue == nil {
			return false
		}
		fields := k.StructValue.GetFields()
		base := len(e.keys)
		for key := range fields {
			e.keys = append(e.keys, key)
		}
		keys := e.keys[base:]
		slices.SortFunc(keys, strings.Compare)
		e.out = append(e.out, '{')
		for i, key := range keys {
			if i > 0 {
				e.out = append(e.out, ',')
			}
			if !e.str(key) {
				return false
			}
			e.out = append(e.out, ':')
			if !e.value(fields[key], depth+1) {
				return false
			}
		}
		e.out = append(e.out, '}')
		e.keys = e.keys[:base]
	case *structpb.Value_ListValue:
		if k.ListValue == nil {
			return false
		}
		e.out = append(e.out, '[')
		for i, el := range k.ListValue.GetValues() {
			if i > 0 {
				e.out = append(e.out, ',')
			}
			if !e.value(el, depth+1) {
				return false
			}
		}
		e.out = append(e.out, ']')
	default:
		return false
	}
	return true
}

// number writes n as protojson writes a double (encoding/json's form).
func (e *specEncoder) number(n float64) bool {
	if math.IsNaN(n) || math.IsInf(n, 0) {
		return false
	}
	format := byte('f')
	if abs := math.Abs(n); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	e.out = strconv.AppendFloat(e.out, n, format, -1, 64)
	if format == 'e' {
		// "1e-07" to "1e-7", as protojson and encoding/json write it.
		out := e.out
		if n := len(out); n >= 4 && out[n-4] == 'e' && out[n-3] == '-' && out[n-2] == '0' {
			out[n-2] = out[n-1]
			e.out = out[:n-1]
		}
	}
	return true
}

const hexDigits = "0123456789abcdef"

// str writes s as encoding/json does without HTML escaping.
func (e *specEncoder) str(s string) bool {
	e.out = append(e.out, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			e.out = append(e.out, s[start:i]...)
			switch b {
			case '\\', '"':
				e.out = append(e.out, '\\', b)
			case '\b':
				e.out = append(e.out, '\\', 'b')
			case '\f':
				e.out = append(e.out, '\\', 'f')
			case '\n':
				e.out = append(e.out, '\\', 'n')
			case '\r':
				e.out = append(e.out, '\\', 'r')
			case '\t':
				e.out = append(e.out, '\\', 't')
			default:
				e.out = append(e.out, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			return false
		}
		if c == '\u2028' || c == '\u2029' {
			e.out = append(e.out, s[start:i]...)
			e.out = append(e.out, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	e.out = append(e.out, s[start:]...)
	e.out = append(e.out, '"')
	return true
}
