package attest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// MaxCanonicalDepth bounds the nesting CanonicalJSON accepts (a value
// deeper is an error): build specs and the other documents it is used
// for are shallow.
const MaxCanonicalDepth = 64

// CanonicalJSON returns the canonical form of a JSON value, the one form
// every part of pyrsia-build hashes and compares (a build spec's input
// digest, a log entry's spec): no insignificant whitespace, object keys
// sorted by their UTF-8 bytes, strings escaped as encoding/json escapes
// them but without HTML escaping ('<', '>' and '&' stay as they are), and
// numbers kept exactly as written. It rejects invalid UTF-8, duplicate
// object keys, trailing data and nesting deeper than 64. Canonical JSON is
// its own canonical form.
func CanonicalJSON(b []byte) ([]byte, error) {
	if !utf8.Valid(b) {
		return nil, errors.New("attest: canonical JSON: not valid UTF-8")
	}
	if out, ok := canonicalFast(b); ok {
		return out, nil
	}
	return canonicalSlow(b)
}

// canonicalSlow is CanonicalJSON by encoding/json's tokens, for what
// canonicalFast leaves (escapes in strings, errors): the reference the
// fast path is fuzzed against (FuzzCanonicalFast).
func canonicalSlow(b []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out bytes.Buffer
	out.Grow(len(b))
	if err := canonValue(dec, &out, 0); err != nil {
		return nil, fmt.Errorf("attest: canonical JSON: %w", explainCanonErr(err, len(b)))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("attest: canonical JSON: trailing data after the JSON value")
	}
	return out.Bytes(), nil
}

// explainCanonErr turns an encoding/json error into words.
func explainCanonErr(err error, n int) error {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn) && syn.Offset >= int64(n):
		return errors.New("JSON ends early (truncated?)")
	case errors.As(err, &syn):
		return fmt.Errorf("not JSON (at byte %d: %w)", syn.Offset, err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return errors.New("JSON ends early (truncated?)")
	}
	return err
}

func canonValue(dec *json.Decoder, out *bytes.Buffer, depth int) error {
	if depth > MaxCanonicalDepth {
		return fmt.Errorf("nested more than %d deep", MaxCanonicalDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '[':
			out.WriteByte('[')
			for first := true; dec.More(); first = false {
				if !first {
					out.WriteByte(',')
				}
				if err := canonValue(dec, out, depth+1); err != nil {
					return err
				}
			}
			out.WriteByte(']')
		case '{':
			type member struct {
				key string
				val []byte
			}
			var members []member
			seen := make(map[string]bool)
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return err
				}
				key, ok := kt.(string)
				if !ok {
					return errors.New("object key is not a string")
				}
				if seen[key] {
					return fmt.Errorf("duplicate object key %q", truncateKey(key))
				}
				seen[key] = true
				var vb bytes.Buffer
				if err := canonValue(dec, &vb, depth+1); err != nil {
					return err
				}
				members = append(members, member{key, vb.Bytes()})
			}
			slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.key, b.key) })
			out.WriteByte('{')
			for i, m := range members {
				if i > 0 {
					out.WriteByte(',')
				}
				writeJSONString(out, m.key)
				out.WriteByte(':')
				out.Write(m.val)
			}
			out.WriteByte('}')
		default:
			return fmt.Errorf("unexpected %q", t)
		}
		// The closing delimiter.
		if _, err := dec.Token(); err != nil {
			return err
		}
	case string:
		writeJSONString(out, t)
	case json.Number:
		out.WriteString(t.String())
	case bool:
		out.WriteString(fmt.Sprint(t))
	case nil:
		out.WriteString("null")
	default:
		return fmt.Errorf("unexpected JSON token %v", t)
	}
	return nil
}

// writeJSONString writes s as encoding/json does, without HTML escaping.
func writeJSONString(out *bytes.Buffer, s string) {
	enc := json.NewEncoder(out)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		panic("attest: encoding a string: " + err.Error()) // a string always encodes
	}
	out.Truncate(out.Len() - 1) // Encode's newline
}

func truncateKey(s string) string {
	const max = 80
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}
