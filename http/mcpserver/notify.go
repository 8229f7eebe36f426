package mcpserver

import (
	"context"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpproxy/mcpproxy/actors"
)

// agentProgress is the actors.ProgressSink of one forwarded call: the agent's session (in
// ctx, the request context of its tools/call) on the endpoint's MCP server. The upstream
// actor that owns the connection calls it with the agent's own token already in place.
type agentProgress struct {
	ctx context.Context
	srv *server.MCPServer
}

var _ actors.ProgressSink = agentProgress{}

// Progress sends one notifications/progress to the agent. It never blocks: mcp-go drops a
// notification when the session's queue is full.
func (p agentProgress) Progress(params map[string]any) {
	_ = p.srv.SendNotificationToClient(p.ctx, string(mcp.MethodNotificationProgress), params)
}

// progressSink is where the progress of an agent's call goes, nil when the call did not ask
// for progress (no token) or has no session to send it to.
func progressSink(ctx context.Context, meta *mcp.Meta) actors.ProgressSink {
	if meta == nil || meta.ProgressToken == nil {
		return nil
	}
	srv := server.ServerFromContext(ctx)
	if srv == nil {
		return nil
	}
	return agentProgress{ctx: ctx, srv: srv}
}
