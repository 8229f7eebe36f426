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

// listRequestSeq numbers our own tools/list requests. Their ids are strings with a prefix, so
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
	cursor := ""
	seen := map[string]bool{}
	for page := 0; ; page++ {
		if page == maxListPages {
			return nil, fmt.Errorf("tools/list: more than %d pages", maxListPages)
		}
		params := map[string]any{}
		if cursor != "" {
			params["cursor"] = cursor
		}
		resp, err := c.Client.GetTransport().SendRequest(ctx, transport.JSONRPCRequest{
			JSONRPC: mcp.JSONRPC_VERSION,
			ID:      mcp.NewRequestId(fmt.Sprintf("mcpproxy-tools-%d", listRequestSeq.Add(1))),
			Method:  string(mcp.MethodToolsList),
			Params:  params,
		})
		if err != nil {
			if lost := c.Err(); errors.Is(lost, ErrMessageTooLarge) {
				// The answer was cut at the limit: say so, rather than mcp-go's error, which
				// may quote the partial body.
				return nil, fmt.Errorf("tools/list: %w", lost)
			}
			return nil, fmt.Errorf("tools/list: %w", err)
		}
		if resp.Error != nil {
			return nil, fmt.Errorf("tools/list: %w", resp.Error.AsError())
		}
		var res struct {
			Tools      []json.RawMessage `json:"tools"`
			NextCursor string            `json:"nextCursor"`
		}
		if err := json.Unmarshal(resp.Result, &res); err != nil {
			return nil, fmt.Errorf("tools/list: bad result: %w", err)
		}
		for _, raw := range res.Tools {
			var t struct {
				Name        string          `json:"name"`
				Title       string          `json:"title"`
				Description string          `json:"description"`
				InputSchema json.RawMessage `json:"inputSchema"`
				Annotations json.RawMessage `json:"annotations"`
			}
			if json.Unmarshal(raw, &t) != nil || t.Name == "" {
				continue
			}
			def, err := ToolDefinition(raw)
			if err != nil {
				continue
			}
			tools = append(tools, Tool{Name: t.Name, Title: t.Title, Description: t.Description,
				InputSchema: compact(t.InputSchema), Annotations: compact(t.Annotations), Def: def})
		}
		if res.NextCursor == "" {
			return tools, nil
		}
		if seen[res.NextCursor] {
			return nil, fmt.Errorf("tools/list: cursor %q repeated", res.NextCursor)
		}
		seen[res.NextCursor] = true
		cursor = res.NextCursor
	}
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
