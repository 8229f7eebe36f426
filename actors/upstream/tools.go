package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// Tool is one tool as the upstream listed it, with its schema and annotations kept as the
// raw JSON it sent.
type Tool struct {
	Name string
	// Title is the tool's human title (MCP 2025-06-18 and later), when the upstream gives one.
	Title       string
	Description string
	InputSchema json.RawMessage
	Annotations json.RawMessage
	// Def is the tool's canonical definition and its hash (see ToolDefinition).
	Def Definition
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
	tools, err := c.listTools(ctx)
	return tools, c.scrub.Err(err)
}

func (c *Conn) listTools(ctx context.Context) ([]Tool, error) {
	var tools []Tool
	err := c.listPages(ctx, string(mcp.MethodToolsList), "tools", func(raw json.RawMessage) {
		var t struct {
			Name        string          `json:"name"`
			Title       string          `json:"title"`
			Description string          `json:"description"`
			InputSchema json.RawMessage `json:"inputSchema"`
			Annotations json.RawMessage `json:"annotations"`
		}
		if json.Unmarshal(raw, &t) != nil || t.Name == "" {
			return
		}
		def, err := ToolDefinition(raw)
		if err != nil {
			return
		}
		tools = append(tools, Tool{Name: t.Name, Title: t.Title, Description: t.Description,
			InputSchema: compact(t.InputSchema), Annotations: compact(t.Annotations), Def: def})
	})
	return tools, err
}

// listPages sends one raw request of method per page, following cursors (at most
// maxListPages, no cursor twice), and hands each element of the result's key array to add.
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
		var res map[string]json.RawMessage
		if err := json.Unmarshal(result, &res); err != nil {
			return fmt.Errorf("%s: bad result: %w", method, err)
		}
		var items []json.RawMessage
		if raw, ok := res[key]; ok && string(raw) != "null" {
			if err := json.Unmarshal(raw, &items); err != nil {
				return fmt.Errorf("%s: bad result: %w", method, err)
			}
		}
		for _, raw := range items {
			add(raw)
		}
		var next string
		if raw, ok := res["nextCursor"]; ok {
			_ = json.Unmarshal(raw, &next)
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
