package search

import (
	"encoding/json"
	"slices"
	"unicode/utf8"
	"unsafe"
)

// A tool's input schema is read straight from its JSON bytes: decoding each schema into
// maps and interfaces only to walk them once was a third of the cost of indexing a server
// (BenchmarkReindexServer100). walk reads what encoding/json would have decoded into an
// any, with its rules: an object's last repeated key wins, keys match exactly, a string is
// unescaped with invalid UTF-8 replaced. TestSchemaWalkMatchesDecoding and FuzzSchemaWalk
// hold it to a walk of the decoding.

// walk collects the texts of the schema v, which must be valid JSON (the caller checks), at
// nesting depth.
func (w *schemaWalker) walk(v []byte, depth int) {
	v = skipWS(v)
	if len(v) == 0 || v[0] != '{' || depth > maxSchemaDepth {
		return
	}
	// The members walk reads, each the last of its key (as a decoded map keeps it).
	var desc, title, typ, enum, props, items []byte
	var alts [3][]byte // anyOf, oneOf, allOf
	eachMember(v, func(key string, val []byte) {
		switch key {
		case "description":
			desc = val
		case "title":
			title = val
		case "type":
			typ = val
		case "enum":
			enum = val
		case "properties":
			props = val
		case "items":
			items = val
		case "anyOf":
			alts[0] = val
		case "oneOf":
			alts[1] = val
		case "allOf":
			alts[2] = val
		}
	})
	if depth > 0 {
		if s, ok := jsonString(desc); ok {
			w.addText(&w.descs, s)
		}
		if s, ok := jsonString(title); ok {
			w.addText(&w.descs, s)
		}
		if s, ok := jsonString(typ); ok && (s == "integer" || s == "number") {
			w.numeric = true
		}
	}
	if len(enum) > 0 && enum[0] == '[' {
		i := 0
		eachElement(enum, func(x []byte) bool {
			if i == maxEnumValues {
				return false
			}
			i++
			if s, ok := jsonString(x); ok && len(s) <= maxEnumValueBytes {
				w.addText(&w.enums, s)
			}
			return true
		})
	}
	if len(props) > 0 && props[0] == '{' {
		// In sorted order, so that the bounds cut the same properties every time; a
		// repeated name once, with its last schema.
		type prop struct {
			name   string
			schema []byte
		}
		var list []prop
		eachMember(props, func(key string, val []byte) {
			for i := range list {
				if list[i].name == key {
					list[i].schema = val
					return
				}
			}
			list = append(list, prop{key, val})
		})
		slices.SortFunc(list, func(a, b prop) int {
			switch {
			case a.name < b.name:
				return -1
			case a.name > b.name:
				return 1
			}
			return 0
		})
		for _, p := range list {
			if w.props == maxSchemaProps {
				return
			}
			w.props++
			w.addText(&w.names, p.name)
			w.walk(p.schema, depth+1)
		}
	}
	if items != nil {
		w.walk(items, depth+1)
	}
	for _, a := range alts {
		if len(a) > 0 && a[0] == '[' {
			eachElement(a, func(x []byte) bool {
				w.walk(x, depth+1)
				return true
			})
		}
	}
}

// eachMember calls f with each member of the valid JSON object at the start of v, its key
// decoded and its value as written.
func eachMember(v []byte, f func(key string, val []byte)) {
	v = skipWS(v[1:]) // past '{'
	for len(v) > 0 && v[0] != '}' {
		end := stringEnd(v)
		key, _ := jsonString(v[:end])
		v = skipWS(v[end:])
		v = skipWS(v[1:]) // past ':'
		n := valueEnd(v)
		f(key, v[:n])
		v = skipWS(v[n:])
		if len(v) > 0 && v[0] == ',' {
			v = skipWS(v[1:])
		}
	}
}

// eachElement calls f with each element of the valid JSON array at the start of v, until f
// returns false.
func eachElement(v []byte, f func(x []byte) bool) {
	v = skipWS(v[1:]) // past '['
	for len(v) > 0 && v[0] != ']' {
		n := valueEnd(v)
		if !f(v[:n]) {
			return
		}
		v = skipWS(v[n:])
		if len(v) > 0 && v[0] == ',' {
			v = skipWS(v[1:])
		}
	}
}

// valueEnd is the length of the valid JSON value at the start of v.
func valueEnd(v []byte) int {
	switch v[0] {
	case '"':
		return stringEnd(v)
	case '{', '[':
		depth := 0
		for i := 0; i < len(v); i++ {
			switch v[i] {
			case '"':
				i += stringEnd(v[i:]) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return len(v)
	}
	// A number, true, false or null.
	i := 0
	for i < len(v) && !isJSONDelim(v[i]) {
		i++
	}
	return i
}

func isJSONDelim(c byte) bool {
	switch c {
	case ',', '}', ']', ' ', '\t', '\n', '\r':
		return true
	}
	return false
}

// stringEnd is the length of the JSON string, quotes included, at the start of v.
func stringEnd(v []byte) int {
	for i := 1; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(v)
}

func skipWS(v []byte) []byte {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t' || v[0] == '\n' || v[0] == '\r') {
		v = v[1:]
	}
	return v
}

// jsonString is the decoded value of the JSON string v; ok is false when v is not a string.
// A string with no escape and only ASCII is its own bytes, shared with v and not copied:
// the walk's texts are joined into new strings before the schema's bytes are let go, and
// those bytes are never written. Any other goes through encoding/json, which also replaces
// invalid UTF-8 as decoding the whole schema did.
func jsonString(v []byte) (string, bool) {
	if len(v) < 2 || v[0] != '"' {
		return "", false
	}
	body := v[1 : len(v)-1]
	plain := true
	for _, c := range body {
		if c == '\\' || c >= utf8.RuneSelf {
			plain = false
			break
		}
	}
	if plain {
		if len(body) == 0 {
			return "", true
		}
		return unsafe.String(&body[0], len(body)), true
	}
	var s string
	if json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}
