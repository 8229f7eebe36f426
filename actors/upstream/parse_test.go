package upstream

import (
	"crypto/sha256"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unsafe"
)

// decodedTool is what listTools made of a tools/list element before parseTool: the
// fields decoded by encoding/json, then ToolDefinition of the same bytes. parseTool must
// give the same, in one pass; the input schema and annotations the same JSON (sameJSON),
// as parseTool may give their canonical form.
func decodedTool(raw json.RawMessage) (Tool, bool) {
	var t struct {
		Name        string          `json:"name"`
		Title       string          `json:"title"`
		Description string          `json:"description"`
		InputSchema json.RawMessage `json:"inputSchema"`
		Annotations json.RawMessage `json:"annotations"`
	}
	if json.Unmarshal(raw, &t) != nil || t.Name == "" {
		return Tool{}, false
	}
	def, err := ToolDefinition(raw)
	if err != nil {
		return Tool{}, false
	}
	return Tool{Name: t.Name, Title: t.Title, Description: t.Description,
		InputSchema: compact(t.InputSchema), Annotations: compact(t.Annotations), Def: def}, true
}

// toolCases are tool elements where one pass could part from decoding: keys in another
// case, repeated keys, nulls, fields of the wrong type, escapes and invalid UTF-8.
var toolCases = []string{
	knownTool,
	`{"name":"a"}`,
	`{"name":""}`,
	`{}`,
	`null`,
	`[1]`,
	`"name"`,
	`{"NAME":"upper","Description":"d","INPUTSCHEMA":{"type":"object"}}`,
	`{"name":"first","name":"second"}`,
	`{"name":"a","name":null}`,
	`{"name":"a","title":null,"description":null,"inputSchema":null,"annotations":null}`,
	`{"name":1}`,
	`{"name":"a","title":["x"]}`,
	`{"name":"a","description":{"x":1}}`,
	`{"name":"a","description":true}`,
	`{"name":"a\u00e9\n\"q\"","description":"\ud83d\ude00 \u2028"}`,
	"{\"name\":\"bad \xff utf8\",\"description\":\"\xc3\"}",
	` { "name" : "spaced" , "inputSchema" : { "a" : [ 1 , 2 ] } , "annotations" : { } } `,
	`{"name":"a","inputSchema":{"type":"object","properties":{"name":{"type":"string"}}},"name":"b"}`,
	`{"na\u006de":"escaped key"}`,
	`{"name":"a","ſitle":"long s folds to t? no: to s"}`,
	`{"name":"a","\u212aelvin":"K"}`,
	`{"name":"a","inputSchema":"not an object","annotations":[1]}`,
}

func TestParseToolMatchesDecoding(t *testing.T) {
	for _, in := range toolCases {
		checkParseTool(t, in)
	}
}

func FuzzParseTool(f *testing.F) {
	for _, in := range toolCases {
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		if json.Valid([]byte(in)) {
			checkParseTool(t, in)
		}
	})
}

func checkParseTool(t *testing.T, in string) {
	t.Helper()
	want, wantOK := decodedTool(json.RawMessage(in))
	got, gotOK := parseTool(json.RawMessage(in))
	if !sameJSON(got.InputSchema, want.InputSchema) || !sameJSON(got.Annotations, want.Annotations) {
		t.Errorf("parseTool(%q) schema %s, annotations %s; decoding gives %s, %s",
			in, got.InputSchema, got.Annotations, want.InputSchema, want.Annotations)
	}
	got.InputSchema, got.Annotations, want.InputSchema, want.Annotations = nil, nil, nil, nil
	if gotOK != wantOK || !reflect.DeepEqual(got, want) {
		t.Errorf("parseTool(%q) = %+v, %v; decoding gives %+v, %v", in, got, gotOK, want, wantOK)
	}
}

// sameJSON reports whether a and b are both absent or the same JSON value.
func sameJSON(a, b json.RawMessage) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	ca, _, okA := canonicalize(nil, a)
	cb, _, okB := canonicalize(nil, b)
	return okA && okB && string(ca) == string(cb)
}

// TestParseToolSharesDefinition holds the memory saving: a tool's input schema and
// annotations are the bytes of its definition, not copies of them, and an append to
// either cannot write into the definition.
func TestParseToolSharesDefinition(t *testing.T) {
	tool, ok := parseTool(json.RawMessage(knownTool))
	if !ok {
		t.Fatal("knownTool does not parse")
	}
	def := tool.Def.JSON
	inside := func(field json.RawMessage) bool {
		if len(field) == 0 {
			return false
		}
		start := uintptr(unsafe.Pointer(unsafe.SliceData(def)))
		p := uintptr(unsafe.Pointer(unsafe.SliceData(field)))
		return p >= start && p+uintptr(len(field)) <= start+uintptr(len(def))
	}
	for name, field := range map[string]json.RawMessage{"inputSchema": tool.InputSchema, "annotations": tool.Annotations} {
		if !inside(field) {
			t.Errorf("%s %s is a copy, not a part of the definition", name, field)
		}
		if cap(field) != len(field) {
			t.Errorf("%s has room to grow into the definition (len %d, cap %d)", name, len(field), cap(field))
		}
	}
	before := string(def)
	_ = append(tool.InputSchema, "!!"...)
	if string(def) != before {
		t.Error("an append to the input schema wrote into the definition")
	}
	// A key in another case is not in the definition: the field is its own copy.
	other, ok := parseTool(json.RawMessage(`{"name":"a","INPUTSCHEMA":{"type":"object"}}`))
	if !ok || string(other.InputSchema) != `{"type":"object"}` {
		t.Errorf("INPUTSCHEMA gives %s, %v", other.InputSchema, ok)
	}
}

// decodedPage is what listPages made of a page before splitPage.
func decodedPage(result []byte, key string) (items []json.RawMessage, next string, err error) {
	var res map[string]json.RawMessage
	if err := json.Unmarshal(result, &res); err != nil {
		return nil, "", err
	}
	if raw, ok := res[key]; ok && string(raw) != "null" {
		if err := json.Unmarshal(raw, &items); err != nil {
			return nil, "", err
		}
	}
	if raw, ok := res["nextCursor"]; ok {
		_ = json.Unmarshal(raw, &next)
	}
	return items, next, nil
}

var pageCases = []string{
	`{"tools":[{"name":"a"},{"name":"b","inputSchema":{"x":[1,{"y":"]}"}]}}],"nextCursor":"c2"}`,
	`{"tools":[]}`,
	`{"tools":null,"nextCursor":null}`,
	`{}`,
	` { "tools" : [ 1 , "two" , [ 3 ] , { } , null , true ] , "nextCursor" : "a\"b" } `,
	`{"tools":[{"name":"a"}],"tools":[{"name":"b"}]}`,
	`{"nextCursor":5,"tools":[{"name":"a"}]}`,
	`{"nextCursor":"x","nextCursor":7}`,
	`{"tools":{"name":"a"}}`,
	`{"tools":"x"}`,
	`{"tool\u0073":[{"name":"escaped key"}]}`,
	`{"Tools":[{"name":"wrong case is another key"}]}`,
	`[]`,
	`"x"`,
	`null`,
	`{"tools":[`,
	`{"tools":[1,]}`,
	``,
}

func TestSplitPageMatchesDecoding(t *testing.T) {
	for _, in := range pageCases {
		checkSplitPage(t, in)
	}
}

func FuzzSplitPage(f *testing.F) {
	for _, in := range pageCases {
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		checkSplitPage(t, in)
	})
}

func checkSplitPage(t *testing.T, in string) {
	t.Helper()
	want, wantNext, wantErr := decodedPage([]byte(in), "tools")
	got, gotNext, gotErr := splitPage([]byte(in), "tools")
	if (gotErr != nil) != (wantErr != nil) {
		t.Fatalf("splitPage(%q): error %v, decoding gives %v", in, gotErr, wantErr)
	}
	if wantErr != nil {
		return
	}
	if gotNext != wantNext || len(got) != len(want) {
		t.Fatalf("splitPage(%q) = %q, %q; decoding gives %q, %q", in, got, gotNext, want, wantNext)
	}
	for i := range got {
		if string(got[i]) != string(want[i]) {
			t.Fatalf("splitPage(%q) item %d = %q, decoding gives %q", in, i, got[i], want[i])
		}
	}
}

// BenchmarkListToolsPage is the daemon's work on one tools/list page of 100 tools once the
// transport has decoded the JSON-RPC envelope: splitting the page and reading every tool.
//
//	go test -run '^$' -bench ListToolsPage -count 5 ./actors/upstream
//
// eachItem splits page, a tools/list answer of 100 tools, and hands each tool to read, for
// as long as the benchmark runs; a tool read refuses fails it.
func eachItem(b *testing.B, page []byte, read func(raw []byte) bool) {
	b.SetBytes(int64(len(page)))
	for b.Loop() {
		items, _, err := splitPage(page, "tools")
		if err != nil || len(items) != 100 {
			b.Fatal(err, len(items))
		}
		for _, raw := range items {
			if !read(raw) {
				b.Fatal("tool dropped")
			}
		}
	}
}

func BenchmarkListToolsPage(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"tools":[`)
	for i := range 100 {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strings.Replace(knownTool, `"search_docs"`, `"search_docs_`+strings.Repeat("x", i%7)+`"`, 1))
	}
	sb.WriteString(`]}`)
	page := []byte(sb.String())
	b.Run("one-pass", func(b *testing.B) {
		eachItem(b, page, func(raw []byte) bool { _, ok := parseTool(raw); return ok })
	})
	b.Run("known", func(b *testing.B) { // every tool known from the last listing
		eachItem(b, page, func(raw []byte) bool { return sha256.Sum256(raw) != [32]byte{} })
	})
	b.Run("decode", func(b *testing.B) { // what listTools did before
		b.SetBytes(int64(len(page)))
		for b.Loop() {
			items, _, err := decodedPage(page, "tools")
			if err != nil || len(items) != 100 {
				b.Fatal(err, len(items))
			}
			for _, raw := range items {
				if _, ok := decodedTool(raw); !ok {
					b.Fatal("tool dropped")
				}
			}
		}
	})
}
