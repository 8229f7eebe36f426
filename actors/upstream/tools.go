package upstream

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/actors/internal/rawjson"
)

// Tool is one tool as the upstream listed it, with its schema and annotations kept as the
// raw JSON it sent.
type Tool struct {
	Name string
	// Title is the tool's human title (MCP 2025-06-18 and later), when the upstream gives one.
	Title       string
	Description string
	// InputSchema and Annotations are the JSON the server sent, in canonical form as
	// slices of Def.JSON when their keys were spelt exactly (parseTool).
	InputSchema json.RawMessage
	Annotations json.RawMessage
	// Def is the tool's canonical definition and its hash (see ToolDefinition).
	Def Definition
	// Sum is the SHA-256 of the tool's JSON as the upstream sent it (its element of the
	// tools/list answer, byte for byte): the same bytes read the same, so a listing can
	// skip the tools it has read before (ListToolsKnown).
	Sum [32]byte
	// Known is set, and nothing but Sum, on a tool ListToolsKnown skipped: the caller has it.
	Known bool
}

// listRequestSeq numbers our own raw requests (lists, catalog requests). Their ids are strings with a prefix, so
// they can never collide with mcp-go's numeric request ids on the same transport.
var listRequestSeq atomic.Int64

// maxListPages bounds pagination against an upstream that keeps returning cursors.
const maxListPages = 1000

// ListTools lists every tool (following cursors) with one raw tools/list request per page,
// straight on the transport. Going around mcp-go's typed ListTools keeps schemas exactly as
// sent (mcp-go drops keys such as anyOf and $schema) and avoids its per-client cache of the
// decoded tools, which cost about 2.5 KB per tool for as long as the connection lives.
// It is meant for session-based protocol revisions (the default, see Options.ProtocolVersion).
// Its errors are scrubbed.
func (c *Conn) ListTools(ctx context.Context) ([]Tool, error) {
	return c.ListToolsKnown(ctx, nil)
}

// ListToolsKnown is ListTools for a caller that keeps the tools of an earlier listing:
// a tool whose bytes have a Sum that known reports is not read again but listed as
// Tool{Sum: sum, Known: true}, in its place, for the caller to put its own copy there.
// Reading a tool (its fields and its canonical definition) is about ten times the cost of
// its SHA-256; a restart, a reconnect or a list_changed mostly lists the same tools again.
// A nil known reads every tool.
func (c *Conn) ListToolsKnown(ctx context.Context, known func(sum [32]byte) bool) ([]Tool, error) {
	tools, err := c.listTools(ctx, known)
	return tools, c.scrub.Err(err)
}

func (c *Conn) listTools(ctx context.Context, known func(sum [32]byte) bool) ([]Tool, error) {
	var tools []Tool
	err := c.listPages(ctx, string(mcp.MethodToolsList), "tools", func(raw json.RawMessage) {
		sum := sha256.Sum256(raw)
		if known != nil && known(sum) {
			tools = append(tools, Tool{Sum: sum, Known: true})
			return
		}
		if t, ok := parseTool(raw); ok {
			t.Sum = sum
			tools = append(tools, t)
		}
	})
	return tools, err
}

// parseTool reads one element of a tools/list answer, valid JSON (listPages checked the
// page): its fields as encoding/json would decode them into Tool's (keys matched without
// regard to case, the last of a repeated key winning, null leaving a field empty; a field
// of the wrong type, or no name, drops the tool) and its canonical definition, in one pass
// over its bytes. The fields and the definition were two decodes and a validation of the
// same bytes, a third of the daemon's CPU while 100 servers of 100 tools connected.
func parseTool(raw json.RawMessage) (Tool, bool) {
	v := rawjson.SkipSpace(raw)
	if len(v) == 0 || v[0] != '{' {
		return Tool{}, false
	}
	var t Tool
	var schema, annotations []byte
	// Whether the member that set schema, annotations was spelt exactly so: only then is
	// its canonical form in the definition, where the tool can share it (schemaAt,
	// annotationsAt: its place there).
	schemaExact, annotationsExact := false, false
	var schemaAt, annotationsAt [2]int
	bad := false
	text := func(dst *string, value []byte) {
		switch {
		case string(value) == "null":
		case value[0] != '"':
			bad = true
		default:
			s, ok := rawjson.String(value)
			bad = bad || !ok
			*dst = s
		}
	}
	def, ok := canonicalDefinition(v, func(key string, value []byte) {
		switch {
		case strings.EqualFold(key, "name"):
			text(&t.Name, value)
		case strings.EqualFold(key, "title"):
			text(&t.Title, value)
		case strings.EqualFold(key, "description"):
			text(&t.Description, value)
		case strings.EqualFold(key, "inputSchema"):
			schema, schemaExact = value, key == "inputSchema"
		case strings.EqualFold(key, "annotations"):
			annotations, annotationsExact = value, key == "annotations"
		}
	}, func(key string, from, to int) {
		switch key {
		case "inputSchema":
			schemaAt = [2]int{from, to}
		case "annotations":
			annotationsAt = [2]int{from, to}
		}
	})
	if !ok || bad || t.Name == "" {
		return Tool{}, false
	}
	// The schema was held twice, as sent and in the definition the tool keeps anyway: 5 of
	// the 31 MB of heap of a daemon with 10,000 tools listed. Where the definition holds
	// it, the tool shares those bytes, the same JSON in canonical form.
	t.Def = def
	t.InputSchema, t.Annotations = definitionPart(def, schemaAt), definitionPart(def, annotationsAt)
	if !schemaExact {
		t.InputSchema = compact(schema)
	}
	if !annotationsExact {
		t.Annotations = compact(annotations)
	}
	return t, true
}

// definitionPart is the bytes of def's JSON at [from, to), nil when empty (a null field is
// not in the definition). Its capacity ends with it: an append to it can never write into
// the definition.
func definitionPart(def Definition, at [2]int) json.RawMessage {
	if at[0] == at[1] {
		return nil
	}
	return def.JSON[at[0]:at[1]:at[1]]
}

// listPages sends one raw request of method per page, following cursors (at most
// maxListPages, no cursor twice), and hands each element of the result's key array to add.
// An element shares the page's bytes: add copies what it keeps.
func (c *Conn) listPages(ctx context.Context, method, key string, add func(json.RawMessage)) error {
	cursor := ""
	seen := map[string]bool{}
	for page := 0; ; page++ {
		if page == maxListPages {
			return fmt.Errorf("%s: more than %d pages", method, maxListPages)
		}
		params := map[string]any{}
		if cursor != "" {
			params["cursor"] = cursor
		}
		result, err := c.request(ctx, method, params)
		if err != nil {
			return err
		}
		items, next, err := splitPage(result, key)
		if err != nil {
			return fmt.Errorf("%s: bad result: %w", method, err)
		}
		for _, raw := range items {
			add(raw)
		}
		if next == "" {
			return nil
		}
		if seen[next] {
			return fmt.Errorf("%s: cursor %q repeated", method, next)
		}
		seen[next] = true
		cursor = next
	}
}

// splitPage returns the elements of the array under key (none when absent or null) and
// the nextCursor (empty when absent or not a string) of one page of a list answer, the
// elements as written: what decoding it into a map of raw messages, then the array into a
// slice of them, gives, in one validation and one pass that copies nothing.
func splitPage(result []byte, key string) (items [][]byte, next string, err error) {
	if !json.Valid(result) {
		var res map[string]json.RawMessage
		return nil, "", json.Unmarshal(result, &res) // the reason, in encoding/json's words
	}
	v := rawjson.SkipSpace(result)
	if v[0] == 'n' { // null: a page with nothing on it, as a nil map is
		return nil, "", nil
	}
	if v[0] != '{' {
		return nil, "", errors.New("not an object")
	}
	rawjson.Members(v, func(rawKey, value []byte) bool {
		switch name, _ := rawjson.String(rawKey); name {
		case key:
			items = items[:0]
			switch value[0] {
			case '[':
				if items, err = splitArray(value); err != nil {
					return false
				}
			case 'n':
			default:
				err = fmt.Errorf("%s is not an array", key)
				return false
			}
		case "nextCursor":
			next = ""
			if value[0] == '"' {
				next, _ = rawjson.String(value)
			}
		}
		return true
	})
	if err != nil {
		return nil, "", err
	}
	return items, next, nil
}

// splitArray returns the elements of a valid JSON array as written.
func splitArray(v []byte) ([][]byte, error) {
	var items [][]byte
	if !rawjson.Elements(v, func(elem []byte) bool {
		items = append(items, elem)
		return true
	}) {
		return nil, errors.New("unreadable array")
	}
	return items, nil
}

// request sends one raw request straight on the transport (ids with a prefix of our own,
// see listRequestSeq) and returns its result. An answer cut at max_message_bytes is said
// so, rather than with mcp-go's error, which may quote the partial body.
func (c *Conn) request(ctx context.Context, method string, params any) (json.RawMessage, error) {
	resp, err := c.Client.GetTransport().SendRequest(ctx, transport.JSONRPCRequest{
		JSONRPC: mcp.JSONRPC_VERSION,
		ID:      mcp.NewRequestId(fmt.Sprintf("mcpproxy-req-%d", listRequestSeq.Add(1))),
		Method:  method,
		Params:  params,
	})
	if err != nil {
		if lost := c.Err(); errors.Is(lost, ErrMessageTooLarge) {
			return nil, fmt.Errorf("%s: %w", method, lost)
		}
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("%s: %w", method, resp.Error.AsError())
	}
	return resp.Result, nil
}

// compact copies raw JSON into its own small allocation (the page's buffer is dropped).
func compact(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	out := make(json.RawMessage, len(raw))
	copy(out, raw)
	return out
}
