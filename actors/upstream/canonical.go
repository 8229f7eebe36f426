package upstream

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/mcpproxy/mcpproxy/actors/internal/rawjson"
)

// canonicalize appends the canonical form of one valid JSON value to out: what decoding it
// with encoding/json (UseNumber) into an any and encoding that again (SetEscapeHTML(false),
// map keys sorted) writes, byte for byte, without building the maps and interfaces
// (ToolDefinition runs for every tool of every server at each connect; the round trip
// through any was most of the daemon's CPU while 100 servers started). The rules it keeps:
// no insignificant space; numbers as written; object keys sorted by their decoded bytes,
// a repeated key's last value winning; strings decoded and encoded again, which leaves a
// plain string as it was written. ok is false for input it does not take (invalid JSON);
// the caller then goes the slow way.
func canonicalize(out, v []byte) (_ []byte, rest []byte, ok bool) {
	v = rawjson.SkipSpace(v)
	if len(v) == 0 {
		return out, nil, false
	}
	switch c := v[0]; {
	case c == '{':
		return canonicalObject(out, v[1:], nil, nil, nil)
	case c == '[':
		return canonicalArray(out, v[1:])
	case c == '"':
		raw, rest, ok := rawjson.ScanString(v)
		if !ok {
			return out, nil, false
		}
		out, ok = appendCanonicalString(out, raw)
		return out, rest, ok
	default:
		n := rawjson.LiteralEnd(v)
		if n == 0 {
			return out, nil, false
		}
		return append(out, v[:n]...), v[n:], true
	}
}

// member is one key of an object with its canonical value, kept until the keys are sorted.
type member struct {
	key      string
	raw      []byte // the key as written, quotes included
	from, to int    // the value's canonical bytes in the scratch buffer
}

// canonicalObject writes the object whose '{' was just read. With keep, it is a tool's top
// level: only the keys keep takes, and none whose value is null. seen, when not nil, is
// given every member of this object (not of nested ones) with its value as written, so
// that a caller can read fields in the same pass. placed, when not nil, is told where in out
// each member written lies (its canonical value, out[from:to]).
func canonicalObject(out, v []byte, keep func(string) bool, seen func(key string, value []byte),
	placed func(key string, from, to int)) ([]byte, []byte, bool) {
	var members []member
	var scratch []byte
	v = rawjson.SkipSpace(v)
	if len(v) > 0 && v[0] == '}' {
		return append(out, "{}"...), v[1:], true
	}
	for {
		v = rawjson.SkipSpace(v)
		if len(v) == 0 || v[0] != '"' {
			return out, nil, false
		}
		rawKey, rest, ok := rawjson.ScanString(v)
		if !ok {
			return out, nil, false
		}
		key, ok := rawjson.String(rawKey)
		if !ok {
			return out, nil, false
		}
		v = rawjson.SkipSpace(rest)
		if len(v) == 0 || v[0] != ':' {
			return out, nil, false
		}
		from := len(scratch)
		value := rawjson.SkipSpace(v[1:])
		scratch, v, ok = canonicalize(scratch, value)
		if !ok {
			return out, nil, false
		}
		if seen != nil {
			seen(key, value[:len(value)-len(v)])
		}
		if keep != nil && (!keep(key) || string(scratch[from:]) == "null") {
			// A null after a value of the same key still removes it, as the map did.
			if keep(key) {
				members = append(members, member{key: key, from: -1})
			}
			scratch = scratch[:from]
		} else {
			members = append(members, member{key: key, raw: rawKey, from: from, to: len(scratch)})
		}
		v = rawjson.SkipSpace(v)
		if len(v) == 0 {
			return out, nil, false
		}
		if v[0] == '}' {
			v = v[1:]
			break
		}
		if v[0] != ',' {
			return out, nil, false
		}
		v = v[1:]
	}
	// Stable, so among repeated keys the last written stays last: it is the one kept.
	slices.SortStableFunc(members, func(a, b member) int { return strings.Compare(a.key, b.key) })
	out = append(out, '{')
	first := true
	for i, m := range members {
		if i+1 < len(members) && members[i+1].key == m.key || m.from < 0 {
			continue
		}
		if !first {
			out = append(out, ',')
		}
		first = false
		var ok bool
		if out, ok = appendCanonicalString(out, m.raw); !ok {
			return out, nil, false
		}
		out = append(out, ':')
		from := len(out)
		out = append(out, scratch[m.from:m.to]...)
		if placed != nil {
			placed(m.key, from, len(out))
		}
	}
	return append(out, '}'), v, true
}

func canonicalArray(out, v []byte) ([]byte, []byte, bool) {
	out = append(out, '[')
	v = rawjson.SkipSpace(v)
	if len(v) > 0 && v[0] == ']' {
		return append(out, ']'), v[1:], true
	}
	for first := true; ; first = false {
		if !first {
			out = append(out, ',')
		}
		var ok bool
		if out, v, ok = canonicalize(out, v); !ok {
			return out, nil, false
		}
		v = rawjson.SkipSpace(v)
		if len(v) == 0 {
			return out, nil, false
		}
		if v[0] == ']' {
			return append(out, ']'), v[1:], true
		}
		if v[0] != ',' {
			return out, nil, false
		}
		v = v[1:]
	}
}

// plainString reports whether a string as written is its own canonical form: no escape,
// valid UTF-8 and neither U+2028 nor U+2029 (which encoding/json escapes). Control
// characters cannot occur unescaped in valid JSON.
func plainString(raw []byte) bool {
	body := raw[1 : len(raw)-1]
	if bytes.IndexByte(body, '\\') >= 0 || !utf8.Valid(body) {
		return false
	}
	return !bytes.Contains(body, []byte("\u2028")) && !bytes.Contains(body, []byte("\u2029"))
}

// appendCanonicalString appends the canonical form of the string raw (quotes included):
// raw itself when it is plain, else what encoding/json writes for its decoded value.
func appendCanonicalString(out, raw []byte) ([]byte, bool) {
	if plainString(raw) {
		return append(out, raw...), true
	}
	s, ok := rawjson.String(raw)
	if !ok {
		return out, false
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if enc.Encode(s) != nil {
		return out, false
	}
	return append(out, bytes.TrimRight(b.Bytes(), "\n")...), true
}
