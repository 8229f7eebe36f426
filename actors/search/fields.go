package search

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/mcpproxy/mcpproxy/actors/internal/rawjson"
)

// Fields of a document, in the order of fieldWeight, fieldB and FieldNames.
const (
	fieldName = iota
	fieldTitle
	fieldServer
	fieldInstructions
	fieldDesc
	fieldParams
	fieldParamDesc
	fieldEnum
	fieldAnnotations
	numFields
)

// FieldNames name the fields a hit can match, as Explain reports them.
var FieldNames = [numFields]string{
	"name", "title", "server", "instructions", "description",
	"parameters", "parameter_descriptions", "enum_values", "annotations",
}

// FieldSet is a set of fields, bit f for the field FieldNames[f].
type FieldSet uint16

// Names returns the names of the fields in s, in field order; nil for the empty set.
func (s FieldSet) Names() []string {
	var out []string
	for f, name := range FieldNames {
		if s&(1<<f) != 0 {
			out = append(out, name)
		}
	}
	return out
}

// Ranking parameters. The name says most about what a tool does and is short, so it weighs
// most and is barely length-normalised; a title is a name written for people, and its words
// that the name also has count once, in the name (scoreTerm), so that a title repeating the
// name ("Git Stash") does not put a titled tool above an untitled one. The server's
// name is the same for all of its tools. The description is the tool's own account of itself;
// its parameters' names say what it acts on ("replicas", "branch") and count as much, and so
// do its enum values, which name what it can be told to do or to work on (a tool that manages
// stashes takes "push", "pop", "apply"); what is said about each parameter, the server's
// instructions (shared by all its tools) and the annotations are weaker evidence, mostly
// about neighbouring tools too. Long texts are length-normalised most, a long enum list
// fully: one of fifty units says little about the tool.
var (
	fieldWeight = [numFields]float64{3.0, 2.5, 1.5, 0.3, 1.0, 1.0, 0.4, 1.0, 0.3}
	fieldB      = [numFields]float64{0.5, 0.5, 0.3, 0.75, 0.75, 0.5, 0.75, 1.0, 0.3}
)

// Bounds on what one document's schema contributes, so that an upstream's huge or deeply
// nested schema costs the index a bounded amount.
const (
	maxSchemaDepth    = 8
	maxSchemaProps    = 256
	maxSchemaTextLen  = 16 << 10
	maxEnumValues     = 64
	maxEnumValueBytes = 64
)

// docText is a document's text, one string per field, and whether its schema takes a number.
type docText struct {
	text    [numFields]string
	numeric bool
}

// numberTerm is the term of a tool whose schema has a numeric property (integer or number):
// a query that gives a number ("scale web to 5 replicas") asks a little for such a tool.
// Tokenize never makes it from text ('#' separates words).
const numberTerm = "#number"

// fieldTexts splits d into the text of each field.
func fieldTexts(server string, d Doc) docText {
	var t docText
	t.text[fieldName] = d.Tool
	t.text[fieldTitle] = d.Title
	t.text[fieldServer] = server
	t.text[fieldInstructions] = d.Instructions
	t.text[fieldDesc] = d.Description
	if len(d.InputSchema) > 0 && json.Valid(d.InputSchema) {
		var w schemaWalker
		w.walk(d.InputSchema, 0)
		t.text[fieldParams] = joinCopy(w.names)
		t.numeric = w.numeric
		t.text[fieldParamDesc] = joinCopy(w.descs)
		t.text[fieldEnum] = joinCopy(w.enums)
	}
	if a := rawjson.SkipSpace(d.Annotations); len(a) > 0 && a[0] == '{' && json.Valid(a) {
		var hints []string
		var title string
		eachMember(a, func(key string, val []byte) {
			for _, h := range annotationHints {
				if key == h.key {
					// The last of a repeated key wins, as in a decoded map.
					hints = slices.DeleteFunc(hints, func(w string) bool { return w == h.words })
					if string(val) == "true" {
						hints = append(hints, h.words)
					}
				}
			}
			if key == "title" {
				title, _ = jsonString(val)
				title = strings.Clone(title) // the index keeps its words (see joinCopy)
			}
		})
		t.text[fieldAnnotations] = annotationText(hints)
		if t.text[fieldTitle] == "" {
			t.text[fieldTitle] = title
		}
	}
	return t
}

// joinCopy joins the walk's texts with spaces into a new string. The texts may share the
// schema's bytes (jsonString), and the index keeps substrings of what it tokenises as its
// terms: strings.Join returns a single text as it is, which would leave the index holding
// the caller's bytes.
func joinCopy(texts []string) string {
	if len(texts) == 1 {
		return strings.Clone(texts[0])
	}
	return strings.Join(texts, " ")
}

// annotationHints are the MCP tool annotations that describe behaviour, and the words a
// true value stands for.
var annotationHints = []struct{ key, words string }{
	{"readOnlyHint", "read only"},
	{"destructiveHint", "destructive"},
	{"idempotentHint", "idempotent"},
	{"openWorldHint", "external"},
}

// annotationText is the words of the hints that are true, in annotationHints' order.
func annotationText(set []string) string {
	var out []string
	for _, h := range annotationHints {
		if slices.Contains(set, h.words) {
			out = append(out, h.words)
		}
	}
	return strings.Join(out, " ")
}

// schemaWalker collects a JSON Schema's property names, descriptions and enum values,
// through nested objects, array items and the anyOf/oneOf/allOf alternatives (walk, in
// schema.go).
type schemaWalker struct {
	names, descs, enums []string
	props, textLen      int
	numeric             bool
}

func (w *schemaWalker) addText(dst *[]string, s string) {
	if w.textLen+len(s) > maxSchemaTextLen {
		return
	}
	w.textLen += len(s)
	*dst = append(*dst, s)
}
