package upstream

import (
	"encoding/json"
	"testing"
)

// knownTool is a definition whose hash was computed by the decode-and-encode
// implementation before canonicalize existed; stored pins hold hashes like it.
const knownTool = `{"name":"search_docs","title":"Search <docs> & more","description":"Finds \"docs\"\nin\u2028 the index \u00e9\u0041",` +
	`"inputSchema":{"type":"object","required":["q"],"properties":{"q":{"type":"string","maxLength":1.0e3},"k":{"type":"integer","minimum":-0,"default":10}},"$schema":"http://json-schema.org/draft-07/schema#"},` +
	`"annotations":{"readOnlyHint":true,"title":null},"outputSchema":null,"_meta":{"ignored":[1,2]},"icons":[]}`

const knownHash = "82eb2c27f0971304e4c1ccf67567da7d13468b5dec2c04c95b55a11f0cad2d38"

// TestToolDefinitionKnownHash pins the canonical JSON and hash of a known definition, so
// a faster implementation cannot change the hashes of stored tool pins.
func TestToolDefinitionKnownHash(t *testing.T) {
	d, err := ToolDefinition(json.RawMessage(knownTool))
	if err != nil {
		t.Fatal(err)
	}
	const want = `{"annotations":{"readOnlyHint":true,"title":null},"description":"Finds \"docs\"\nin\u2028 the index éA",` +
		`"inputSchema":{"$schema":"http://json-schema.org/draft-07/schema#","properties":{"k":{"default":10,"minimum":-0,"type":"integer"},"q":{"maxLength":1.0e3,"type":"string"}},"required":["q"],"type":"object"},` +
		`"name":"search_docs","title":"Search <docs> & more"}`
	if string(d.JSON) != want {
		t.Errorf("canonical JSON =\n%s\nwant\n%s", d.JSON, want)
	}
	if d.Hash != knownHash {
		t.Errorf("hash = %s, want %s", d.Hash, knownHash)
	}
}

// definitionCases are inputs where writing the canonical form without decoding could part
// from decoding and encoding: escapes, U+2028, invalid UTF-8, repeated keys (the last
// wins, a null last removes a top-level field), nulls below the top, numbers as written,
// space everywhere, not an object, invalid JSON.
var definitionCases = []string{
	knownTool,
	`{}`,
	` {"name":"a"} `,
	`{"name":"a","name":"b"}`,
	`{"name":"a","name":null}`,
	`{"name":null,"name":"a"}`,
	`{"na\u006de":"x","name":"y"}`,
	`{"name":"y","na\u006de":"x"}`,
	`{"inputSchema":{"b":1,"a":2,"b":3,"\u0061":4}}`,
	`{"inputSchema":{"é":1,"e":2,"z":3,"E":4,"":5}}`,
	"{\"description\":\"bad \xff utf8 \xe2\x80\"}",
	"{\"description\":\"line sep \u2028 and \u2029 raw\"}",
	`{"description":"\ud83d\ude00 \ud800 \/ \b\f\t\u0001 <>&"}`,
	`{"inputSchema":{"enum":[1.50,-0.0,1E+2,2e-3,12345678901234567890,null,true,false,[],{},[[]],{"a":{}}]}}`,
	"{\n\t\"annotations\" :\r\n {\"x\" : [ 1 , 2 ] } ,\"title\":\"\"}",
	`{"outputSchema":null,"title":null,"annotations":null}`,
	`{"_meta":{"deep":[{"x":"\u2028"}]},"name":"m"}`,
	`[1,2]`,
	`null`,
	`"str"`,
	`{"name":"a",}`,
	`{"name":"a"`,
	``,
}

// TestToolDefinitionMatchesDecodeEncode: the definition written without decoding is the
// decode-and-encode one, byte for byte, and errors where it does.
func TestToolDefinitionMatchesDecodeEncode(t *testing.T) {
	for _, in := range definitionCases {
		checkDefinition(t, in)
	}
}

func checkDefinition(t *testing.T, in string) {
	t.Helper()
	got, gotErr := ToolDefinition(json.RawMessage(in))
	want, wantErr := definitionJSON(json.RawMessage(in))
	if (gotErr != nil) != (wantErr != nil) {
		t.Fatalf("%q: error %v, decode-and-encode error %v", in, gotErr, wantErr)
	}
	if string(got.JSON) != string(want.JSON) || got.Hash != want.Hash {
		t.Fatalf("%q:\n got %s\nwant %s", in, got.JSON, want.JSON)
	}
}

// FuzzToolDefinition checks the same on generated inputs (go test -fuzz FuzzToolDefinition).
func FuzzToolDefinition(f *testing.F) {
	for _, in := range definitionCases {
		f.Add(in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		checkDefinition(t, in)
	})
}

func BenchmarkToolDefinition(b *testing.B) {
	in := json.RawMessage(knownTool)
	b.Run("canonicalize", func(b *testing.B) {
		for b.Loop() {
			_, _ = ToolDefinition(in)
		}
	})
	b.Run("decode-encode", func(b *testing.B) {
		for b.Loop() {
			_, _ = definitionJSON(in)
		}
	})
}
