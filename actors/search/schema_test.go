package search

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// walkDecoded is the walk over a schema decoded into an any that walk replaced: the
// reference walk's results are held to.
func (w *schemaWalker) walkDecoded(v any, depth int) {
	s, ok := v.(map[string]any)
	if !ok || depth > maxSchemaDepth {
		return
	}
	if depth > 0 {
		if d, ok := s["description"].(string); ok {
			w.addText(&w.descs, d)
		}
		if d, ok := s["title"].(string); ok {
			w.addText(&w.descs, d)
		}
	}
	if depth > 0 && (s["type"] == "integer" || s["type"] == "number") {
		w.numeric = true
	}
	if e, ok := s["enum"].([]any); ok {
		for i, x := range e {
			if i == maxEnumValues {
				break
			}
			if str, ok := x.(string); ok && len(str) <= maxEnumValueBytes {
				w.addText(&w.enums, str)
			}
		}
	}
	if props, ok := s["properties"].(map[string]any); ok {
		// In sorted order, so that the bounds cut the same properties every time.
		names := make([]string, 0, len(props))
		for name := range props {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			if w.props == maxSchemaProps {
				return
			}
			w.props++
			w.addText(&w.names, name)
			w.walkDecoded(props[name], depth+1)
		}
	}
	if items, ok := s["items"]; ok {
		w.walkDecoded(items, depth+1)
	}
	for _, k := range []string{"anyOf", "oneOf", "allOf"} {
		if alts, ok := s[k].([]any); ok {
			for _, a := range alts {
				w.walkDecoded(a, depth+1)
			}
		}
	}
}

// decodedText is what fieldTexts read of schema before walk: the texts of its decoding, or
// nothing for invalid JSON. It decodes numbers as json.Number: decoding into float64 failed
// on a number out of its range (1e400), which dropped the whole schema; walk reads such a
// schema like any other, since the texts it reads never include a number.
func decodedText(schema []byte) (schemaWalker, bool) {
	var w schemaWalker
	var s any
	if !json.Valid(schema) {
		return w, false
	}
	dec := json.NewDecoder(bytes.NewReader(schema))
	dec.UseNumber()
	if dec.Decode(&s) != nil {
		return w, false
	}
	w.walkDecoded(s, 0)
	return w, true
}

func rawText(schema []byte) (schemaWalker, bool) {
	var w schemaWalker
	if !json.Valid(schema) {
		return w, false
	}
	w.walk(schema, 0)
	return w, true
}

func sameWalk(a, b schemaWalker) bool {
	return slices.Equal(a.names, b.names) && slices.Equal(a.descs, b.descs) && slices.Equal(a.enums, b.enums) &&
		a.props == b.props && a.textLen == b.textLen && a.numeric == b.numeric
}

var schemaSeeds = []string{
	`{"type":"object","properties":{"repo":{"type":"string","description":"owner/name"},"count":{"type":"integer"}}}`,
	`{"properties":{"b":{"title":"B's title"},"a":{"description":"first"},"b":{"description":"the last b wins"}}}`,
	`{"properties":{"mode":{"enum":["push","pop",3,null,"apply"]}},"description":"top-level description is not a parameter's"}`,
	`{"properties":{"x":{"anyOf":[{"type":"number"},{"type":"null","description":"none"}],"oneOf":[{"enum":["a"]}],"allOf":[{"title":"t"}]}}}`,
	`{"properties":{"list":{"type":"array","items":{"type":"object","properties":{"inner":{"description":"deep"}}}}}}`,
	`{"properties":{"esc":{"description":"quote \" backslash \\ unicode \u00e9 \ud83d\ude00 slash \/"}}}`,
	"{\"properties\":{\"bad\":{\"description\":\"invalid \xff utf-8 \xc3\"}}}",
	`{"properties":{"Type":{"TYPE":"integer","type":["integer","null"]},"n":{"type":"number"}}}`,
	`{"properties":{"e":{"enum":"not an array"},"p":{"properties":["not","an","object"]},"i":{"items":[{"description":"tuple"}]}}}`,
	` { "properties" : { "spaced" : { "description" : "white space" } } } `,
	`{"properties":{"a":{"properties":{"b":{"properties":{"c":{"properties":{"d":{"properties":{"e":{"properties":{"f":{"properties":{"g":{"properties":{"h":{"properties":{"i":{"description":"too deep"}}}}}}}}}}}}}}}}}}}`,
	`[1,2]`, `"a string"`, `null`, `{}`, `{"properties":{}}`, `{"a":1,}`, `{"properties":{"x":{"description":1e5,"title":true}}}`,
	`{"properties":{"big":{"default":1e400,"description":"a number out of float64's range"}}}`,
}

// TestSchemaWalkMatchesDecoding: walking a schema's bytes reads what walking its decoding
// read, for repeated keys, escapes, invalid UTF-8, wrong types, nesting and the bounds.
func TestSchemaWalkMatchesDecoding(t *testing.T) {
	many := `{"properties":{`
	for i := range maxSchemaProps + 10 {
		if i > 0 {
			many += ","
		}
		many += `"p` + strings.Repeat("x", i%7) + string(rune('a'+i%26)) + `":{"description":"` + strings.Repeat("word ", 20) + `","enum":[` + strings.Repeat(`"v",`, maxEnumValues) + `"last"]}`
	}
	many += `}}`
	for _, s := range append(schemaSeeds, many) {
		checkWalk(t, []byte(s))
	}
}

func FuzzSchemaWalk(f *testing.F) {
	for _, s := range schemaSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, schema []byte) { checkWalk(t, schema) })
}

// checkWalk fails t when walking schema's bytes reads other than walking its decoding.
func checkWalk(t *testing.T, schema []byte) {
	t.Helper()
	want, wok := decodedText(schema)
	got, gok := rawText(schema)
	if wok != gok || !sameWalk(got, want) {
		t.Errorf("schema %.200q:\n got %v %+v\nwant %v %+v", schema, gok, got, wok, want)
	}
}

// decodedAnnotations is what fieldTexts read of annotations before they were read from
// their bytes: the true hints' words and the title of their decoding (numbers as
// json.Number, as in decodedText).
func decodedAnnotations(annotations []byte) (words, title string) {
	var a map[string]any
	if !json.Valid(annotations) {
		return "", ""
	}
	dec := json.NewDecoder(bytes.NewReader(annotations))
	dec.UseNumber()
	if dec.Decode(&a) != nil {
		return "", ""
	}
	var out []string
	for _, h := range annotationHints {
		if v, ok := a[h.key].(bool); ok && v {
			out = append(out, h.words)
		}
	}
	title, _ = a["title"].(string)
	return strings.Join(out, " "), title
}

var annotationSeeds = []string{
	`{"readOnlyHint":true,"title":"Read the file"}`,
	`{"destructiveHint":true,"destructiveHint":false,"idempotentHint":"true","openWorldHint":true}`,
	`{"readOnlyHint":false,"readOnlyHint":true,"title":1,"title":"last title wins"}`,
	`{"title":"first","title":null}`, `[true]`, `null`, `{}`, `{"readOnlyHint":true,}`,
	`{"title":"esc \u00e9 \"q\""}`, " {\"openWorldHint\" : true } ", `{"readOnlyHint":true,"n":1e400}`,
}

func annotationsRead(annotations []byte) (words, title string) {
	t := fieldTexts("s", Doc{Tool: "t", Annotations: annotations})
	return t.text[fieldAnnotations], t.text[fieldTitle]
}

// TestAnnotationsMatchDecoding: the hints and title read from annotations' bytes are those
// of their decoding, repeated keys and wrong types included.
func TestAnnotationsMatchDecoding(t *testing.T) {
	for _, a := range annotationSeeds {
		checkAnnotations(t, []byte(a))
	}
}

func FuzzAnnotations(f *testing.F) {
	for _, a := range annotationSeeds {
		f.Add([]byte(a))
	}
	f.Fuzz(func(t *testing.T, a []byte) { checkAnnotations(t, a) })
}

// checkAnnotations fails t when the hints and title read from a's bytes are not those of
// its decoding.
func checkAnnotations(t *testing.T, a []byte) {
	t.Helper()
	gw, gt := annotationsRead(a)
	ww, wt := decodedAnnotations(a)
	if gw != ww || gt != wt {
		t.Errorf("annotations %q: got %q %q, want %q %q", a, gw, gt, ww, wt)
	}
}

// TestIndexKeepsNoSchemaBytes: the index's terms do not share the bytes of a schema it was
// given, so a caller that reuses its buffer afterwards changes nothing in the index.
func TestIndexKeepsNoSchemaBytes(t *testing.T) {
	for _, c := range []struct{ schema, query string }{
		{`{"properties":{"replicas":{"type":"integer"}}}`, "replicas"},
		{`{"properties":{"x":{"description":"deployment"}}}`, "deployment"},
		{`{"properties":{"x":{"enum":["stash"]}}}`, "stash"},
	} {
		buf := []byte(c.schema)
		ix := NewIndex()
		ix.SetServer("s", []Doc{{Tool: "t", InputSchema: buf}})
		for i := range buf {
			if buf[i] >= 'a' && buf[i] <= 'z' {
				buf[i] = 'q'
			}
		}
		for term := range ix.terms {
			if strings.Contains(term, "qqq") {
				t.Errorf("schema %s: the index's term %q changed with the caller's buffer", c.schema, term)
			}
		}
		if hits := ix.Search(c.query, 1); len(hits) == 0 {
			t.Errorf("schema %s: %q no longer finds the tool after the buffer was reused", c.schema, c.query)
		}
	}
}

// TestSchemaWithManyProperties: a schema of a hundred thousand properties (a hostile or
// generated one) is read in n log n, keeps the first maxSchemaProps names in sorted order,
// and the last schema of a repeated name.
func TestSchemaWithManyProperties(t *testing.T) {
	var b strings.Builder
	b.WriteString(`{"properties":{`)
	const n = 100000
	for i := n - 1; i >= 0; i-- {
		fmt.Fprintf(&b, `"p%06d":{"description":"first"},`, i)
	}
	b.WriteString(`"p000000":{"description":"last"}}}`)
	got, ok := rawText([]byte(b.String()))
	if !ok || len(got.names) != maxSchemaProps {
		t.Fatalf("read %d names (ok %v), want %d", len(got.names), ok, maxSchemaProps)
	}
	if got.names[0] != "p000000" || got.names[maxSchemaProps-1] != fmt.Sprintf("p%06d", maxSchemaProps-1) {
		t.Errorf("names %s ... %s, want the first %d in sorted order", got.names[0], got.names[len(got.names)-1], maxSchemaProps)
	}
	if got.descs[0] != "last" {
		t.Errorf("repeated p000000 has description %q, want the last one's", got.descs[0])
	}
}
