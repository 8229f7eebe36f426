package search

import (
	"slices"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/mcpproxy/mcpproxy/actors/internal/rawjson"
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
	v = rawjson.SkipSpace(v)
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
		rawjson.Elements(enum, func(x []byte) bool {
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
		// repeated name once, with its last schema. A stable sort keeps a repeated name's
		// schemas in the order written, so the last of a run is the one a map keeps; sorting
		// rather than looking each name up costs n log n, whatever an upstream repeats.
		type prop struct {
			name   string
			schema []byte
		}
		var all []prop
		eachMember(props, func(key string, val []byte) {
			all = append(all, prop{key, val})
		})
		slices.SortStableFunc(all, func(a, b prop) int { return strings.Compare(a.name, b.name) })
		list := all[:0]
		for i, p := range all {
			if i+1 < len(all) && all[i+1].name == p.name {
				continue
			}
			list = append(list, p)
		}
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
			rawjson.Elements(a, func(x []byte) bool {
				w.walk(x, depth+1)
				return true
			})
		}
	}
}

// eachMember calls f with each member of the valid JSON object v, its key decoded and its
// value as written.
func eachMember(v []byte, f func(key string, val []byte)) {
	rawjson.Members(v, func(rawKey, val []byte) bool {
		key, _ := jsonString(rawKey)
		f(key, val)
		return true
	})
}

// jsonString is the decoded value of the JSON string v; ok is false when v is not a string.
// A string with no escape and only ASCII is its own bytes, shared with v and not copied:
// fieldTexts copies the walk's texts into new strings (joinCopy) before anything keeps
// them. Any other is decoded (rawjson.String), invalid UTF-8 replaced as encoding/json
// does.
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
	switch {
	case !plain:
		return rawjson.String(v)
	case len(body) == 0:
		return "", true
	}
	return unsafe.String(&body[0], len(body)), true
}
