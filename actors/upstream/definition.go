package upstream

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"sync"

	"github.com/mcpproxy/mcpproxy/actors/internal/rawjson"
)

// definitionFields are the parts of a tool that say what it does and what it takes: a
// change to any of them is a change the user must see before agents use the tool again
// (tool-level trust). Other fields (_meta, icons) do not change what the model reads.
var definitionFields = []string{"name", "title", "description", "inputSchema", "outputSchema", "annotations"}

// Definition is a tool's canonical definition and its SHA-256, the pin of tool-level
// trust. The shared connection (ListTools) and the passthrough sessions (their raw
// tools/list answers) both compute it from the tool object as the server sent it, so the
// two agree.
type Definition struct {
	// JSON is the canonical JSON of the tool's definition fields: object keys sorted,
	// insignificant space removed, numbers as written, HTML characters unescaped; absent
	// and null fields left out.
	JSON json.RawMessage
	// Hash is the hex SHA-256 of JSON.
	Hash string
}

// ToolDefinition computes the canonical definition of one tool object of a tools/list
// answer. A valid object goes through canonicalize, which writes without decoding what
// definitionJSON writes; anything else (invalid JSON, not an object) goes through
// definitionJSON itself, for its error or its answer.
func ToolDefinition(tool json.RawMessage) (Definition, error) {
	if v := rawjson.SkipSpace(tool); len(v) > 0 && v[0] == '{' && json.Valid(v) {
		if def, ok := canonicalDefinition(v, nil, nil); ok {
			return def, nil
		}
	}
	return definitionJSON(tool)
}

// canonicalDefinition is ToolDefinition of v, a valid JSON object (checked by the caller);
// seen is given each of its members, placed where each field's value lies in the
// definition's JSON (canonicalObject). false if canonicalize does not take it.
func canonicalDefinition(v []byte, seen func(key string, value []byte), placed func(key string, from, to int)) (Definition, bool) {
	buf := definitionBuffers.Get().(*[]byte)
	defer definitionBuffers.Put(buf)
	out, _, ok := canonicalObject((*buf)[:0], v[1:], isDefinitionField, seen, placed)
	if !ok {
		return Definition{}, false
	}
	*buf = out
	sum := sha256.Sum256(out)
	// Its own allocation of its own size: it is kept as long as the tool is listed.
	return Definition{JSON: bytes.Clone(out), Hash: hex.EncodeToString(sum[:])}, true
}

// definitionBuffers are canonicalize's output buffers, reused from tool to tool.
var definitionBuffers = sync.Pool{New: func() any { return new([]byte) }}

// isDefinitionField reports whether key is one of definitionFields.
func isDefinitionField(key string) bool { return slices.Contains(definitionFields, key) }

// definitionJSON is the definition by its specification: the definition fields decoded
// into values (numbers kept as written) and encoded again, map keys sorted.
func definitionJSON(tool json.RawMessage) (Definition, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(tool, &fields); err != nil {
		return Definition{}, fmt.Errorf("tool definition: %w", err)
	}
	def := make(map[string]any, len(definitionFields))
	for _, k := range definitionFields {
		raw, ok := fields[k]
		if !ok || string(bytes.TrimSpace(raw)) == "null" {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.UseNumber() // 1.0 stays 1.0: the hash is of what was sent
		var v any
		if err := dec.Decode(&v); err != nil {
			return Definition{}, fmt.Errorf("tool definition: %s: %w", k, err)
		}
		def[k] = v
	}
	// encoding/json writes map keys sorted, at every depth: that is the canonical form.
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(def); err != nil {
		return Definition{}, fmt.Errorf("tool definition: %w", err)
	}
	out := bytes.TrimRight(b.Bytes(), "\n")
	sum := sha256.Sum256(out)
	return Definition{JSON: out, Hash: hex.EncodeToString(sum[:])}, nil
}
