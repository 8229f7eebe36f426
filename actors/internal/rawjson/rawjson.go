// Package rawjson reads JSON in place: where a value ends, an object's members and an
// array's elements as slices of the input, and a string's value. It builds no maps or
// interfaces and copies nothing but decoded strings, for the paths that read every tool of
// every upstream: the tool lists (actors/upstream) and the search index's reading of their
// schemas (actors/search).
//
// Its functions expect input that json.Valid accepted, which the caller checks once for a
// whole document. Given input that is not, they return ok false or stop early; they do not
// panic.
package rawjson

import (
	"bytes"
	"encoding/json"
	"unicode/utf8"
)

// SkipSpace returns v without its leading JSON white space.
func SkipSpace(v []byte) []byte {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t' || v[0] == '\n' || v[0] == '\r') {
		v = v[1:]
	}
	return v
}

// ScanString splits the string at the start of v (quotes included) from what follows.
func ScanString(v []byte) (raw, rest []byte, ok bool) {
	if len(v) == 0 || v[0] != '"' {
		return nil, nil, false
	}
	for i := 1; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case '"':
			return v[:i+1], v[i+1:], true
		}
	}
	return nil, nil, false
}

// LiteralEnd is the length of the number, true, false or null at the start of v, 0 if none
// is.
func LiteralEnd(v []byte) int {
	n := 0
	for n < len(v) {
		switch c := v[n]; {
		case c >= '0' && c <= '9', c == '-', c == '+', c == '.', c == 'e', c == 'E', c >= 'a' && c <= 'z':
			n++
		default:
			return n
		}
	}
	return n
}

// Skip returns what follows the value at the start of v (after white space): it finds the
// value's end without decoding or copying it.
func Skip(v []byte) (rest []byte, ok bool) {
	v = SkipSpace(v)
	if len(v) == 0 {
		return nil, false
	}
	switch v[0] {
	case '"':
		_, rest, ok := ScanString(v)
		return rest, ok
	case '{', '[':
		depth := 0
		for i := 0; i < len(v); i++ {
			switch v[i] {
			case '"':
				_, rest, ok := ScanString(v[i:])
				if !ok {
					return nil, false
				}
				i = len(v) - len(rest) - 1
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return v[i+1:], true
				}
			}
		}
		return nil, false
	default:
		n := LiteralEnd(v)
		if n == 0 {
			return nil, false
		}
		return v[n:], true
	}
}

// Members calls f with each member of the object at the start of v (after white space):
// its key as written (quotes included) and its value as written. It stops when f returns
// false. ok is false when v does not start with an object it can read.
func Members(v []byte, f func(rawKey, value []byte) bool) (ok bool) {
	v = SkipSpace(v)
	if len(v) == 0 || v[0] != '{' {
		return false
	}
	v = SkipSpace(v[1:])
	if len(v) > 0 && v[0] == '}' {
		return true
	}
	for {
		rawKey, rest, ok := ScanString(v)
		if !ok {
			return false
		}
		v = SkipSpace(rest)
		if len(v) == 0 || v[0] != ':' {
			return false
		}
		value := SkipSpace(v[1:])
		if rest, ok = Skip(value); !ok {
			return false
		}
		if !f(rawKey, value[:len(value)-len(rest)]) {
			return true
		}
		v = SkipSpace(rest)
		switch {
		case len(v) > 0 && v[0] == '}':
			return true
		case len(v) > 0 && v[0] == ',':
			v = SkipSpace(v[1:])
		default:
			return false
		}
	}
}

// Elements calls f with each element, as written, of the array at the start of v (after
// white space). It stops when f returns false. ok is false when v does not start with an
// array it can read.
func Elements(v []byte, f func(elem []byte) bool) (ok bool) {
	v = SkipSpace(v)
	if len(v) == 0 || v[0] != '[' {
		return false
	}
	v = SkipSpace(v[1:])
	if len(v) > 0 && v[0] == ']' {
		return true
	}
	for {
		rest, ok := Skip(v)
		if !ok {
			return false
		}
		if !f(v[:len(v)-len(rest)]) {
			return true
		}
		v = SkipSpace(rest)
		switch {
		case len(v) > 0 && v[0] == ']':
			return true
		case len(v) > 0 && v[0] == ',':
			v = SkipSpace(v[1:])
		default:
			return false
		}
	}
}

// String is the value of the string raw (quotes included), as encoding/json decodes it
// (invalid UTF-8 replaced); ok is false when raw is not a string.
func String(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return "", false
	}
	if body := raw[1 : len(raw)-1]; bytes.IndexByte(body, '\\') < 0 && utf8.Valid(body) {
		return string(body), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}
