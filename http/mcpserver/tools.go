package mcpserver

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/activity"
	"github.com/mcpproxy/mcpproxy/config"
)

const mainInstructions = "mcpproxy connects you to the tools of many MCP servers. " +
	"Find tools with retrieve_tools (a plain-language query), then run one with call_tool, " +
	"giving its exact name \"server:tool\" and arguments that match its input schema. " +
	"upstream_servers shows which servers are connected."

// mainTools are the proxy's own tools on /mcp.
func (e *Endpoint) mainTools() []server.ServerTool {
	return []server.ServerTool{
		{
			Tool: mcp.NewTool("retrieve_tools",
				mcp.WithDescription("Search the tools of every connected upstream MCP server and return the best matches, "+
					"each with its name (\"server:tool\", what call_tool expects), description, input schema, score "+
					"and matched: the fields of the tool the query matched (name, description, parameters, ...)."),
				mcp.WithString("query", mcp.Required(), mcp.Description("What you want to do, in plain words, e.g. \"create a github issue\" (its first 64 words are searched)")),
				mcp.WithInteger("limit", mcp.Min(1), mcp.Max(config.MaxToolsLimit),
					mcp.Description("How many tools to return at most (default: the proxy's tools_limit, 15)")),
				mcp.WithTitleAnnotation("Find tools"),
				mcp.WithReadOnlyHintAnnotation(true),
				mcp.WithDestructiveHintAnnotation(false),
				mcp.WithIdempotentHintAnnotation(true),
				mcp.WithOpenWorldHintAnnotation(false),
			),
			Handler: e.retrieveTools,
		},
		{
			Tool: mcp.NewTool("call_tool",
				mcp.WithDescription("Call a tool of an upstream MCP server and return its result unchanged. "+
					"Find the name with retrieve_tools first."),
				mcp.WithString("name", mcp.Required(), mcp.Description("The tool's full name \"server:tool\", as retrieve_tools gives it")),
				mcp.WithObject("arguments", mcp.Description("The tool's arguments, matching its input schema")),
				mcp.WithTitleAnnotation("Call a tool"),
				mcp.WithReadOnlyHintAnnotation(false),
				mcp.WithDestructiveHintAnnotation(true),
				mcp.WithIdempotentHintAnnotation(false),
				mcp.WithOpenWorldHintAnnotation(true),
			),
			Handler: e.callTool,
		},
		{
			Tool: mcp.NewTool("upstream_servers",
				mcp.WithDescription("List the upstream MCP servers with their state (ready, connecting, error...), "+
					"whether they are enabled or quarantined, and how many tools each offers."),
				mcp.WithTitleAnnotation("List servers"),
				mcp.WithReadOnlyHintAnnotation(true),
				mcp.WithDestructiveHintAnnotation(false),
				mcp.WithIdempotentHintAnnotation(true),
				mcp.WithOpenWorldHintAnnotation(false),
			),
			Handler: e.upstreamServers,
		},
	}
}

// foundTool is one retrieve_tools hit, named the way MCP names tool fields.
type foundTool struct {
	Name        string          `json:"name"`
	Server      string          `json:"server"`
	Title       string          `json:"title,omitempty"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"inputSchema"`
	Annotations json.RawMessage `json:"annotations,omitempty"`
	Score       float64         `json:"score"`
	// Matched names the fields of the tool the query matched (name, title, server,
	// instructions, description, parameters, parameter_descriptions, enum_values,
	// annotations), so that an agent or a person can see why it was found.
	Matched []string `json:"matched,omitempty"`
}

// retrieveTools handles the retrieve_tools tool.
func (e *Endpoint) retrieveTools(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	query, err := req.RequireString("query")
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	if strings.TrimSpace(query) == "" {
		return mcp.NewToolResultError("query must not be empty"), nil
	}
	limit := e.toolsLimit()
	if v, ok := req.GetArguments()["limit"]; ok && v != nil {
		n, ok := v.(float64)
		if !ok || n != float64(int(n)) || n < 1 || n > config.MaxToolsLimit {
			return mcp.NewToolResultErrorf("limit must be a whole number between 1 and %d", config.MaxToolsLimit), nil
		}
		limit = int(n)
	}
	hits, total, err := e.opts.Backend.SearchTools(ctx, query, limit)
	if err != nil {
		return mcp.NewToolResultErrorf("search failed: %v", err), nil
	}
	out := make([]foundTool, len(hits))
	for i, h := range hits {
		out[i] = foundTool{Name: h.Name, Server: h.Server, Title: h.Title, Description: h.Description,
			InputSchema: h.InputSchema, Annotations: h.Annotations, Score: h.Score,
			Matched: h.Matched}
	}
	return structured(map[string]any{"tools": out, "total": total})
}

func (e *Endpoint) toolsLimit() int {
	if e.httpSrv != nil {
		if n := e.httpSrv.Settings().ToolsLimit; n > 0 {
			return n
		}
	}
	return config.DefaultToolsLimit
}

// callTool handles the call_tool tool: every failure the proxy decides (bad name, unknown,
// quarantined, disabled or not-ready server, unknown tool, timeout, upstream gone) is a tool
// error naming the reason; the upstream's own result, error or not, comes back unchanged.
//
// Every call is recorded in the activity log (activity.go), refusals included.
func (e *Endpoint) callTool(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	rec := e.newRecord(ctx)
	name, err := req.RequireString("name")
	if err != nil {
		return e.refuse(rec, err.Error()), nil
	}
	serverName, tool, ok := strings.Cut(name, ":")
	rec.Server, rec.Tool = serverName, tool
	if !ok || serverName == "" || tool == "" {
		rec.Server, rec.Tool = "", name
		return e.refuse(rec, fmt.Sprintf("name %q must be \"server:tool\" as retrieve_tools gives it", name)), nil
	}
	var args any = map[string]any{}
	if v, ok := req.GetArguments()["arguments"]; ok && v != nil {
		rec.Arguments = encodeArguments(v)
		if _, isObject := v.(map[string]any); !isObject {
			return e.refuse(rec, "arguments must be an object"), nil
		}
		args = v
	}
	return e.forwardRecorded(ctx, rec, serverName, tool, args, req.Params.Meta), nil
}

// forwardRecorded forwards a call and completes its activity record: a failure the proxy
// decides is a tool error naming it, the upstream's result comes back unchanged.
func (e *Endpoint) forwardRecorded(ctx context.Context, rec activity.Record, serverName, tool string, args any, meta *mcp.Meta) *mcp.CallToolResult {
	ctx, timing := actors.WithCallTiming(ctx)
	res, err := e.forward(ctx, serverName, tool, args, meta)
	rec.Upstream = timing.Upstream
	if err != nil {
		e.recordFailure(rec, err)
		return mcp.NewToolResultError(err.Error())
	}
	e.recordResult(rec, res)
	return res
}

// forward calls an upstream tool through the registry, routing progress back to the agent.
func (e *Endpoint) forward(ctx context.Context, serverName, tool string, args any, meta *mcp.Meta) (*mcp.CallToolResult, error) {
	res, err := e.opts.Backend.CallTool(ctx, serverName+":"+tool, args, meta, 0, progressSink(ctx, meta))
	if err == nil && res == nil {
		err = actors.Errorf(actors.CodeUpstream, "call to %s:%s returned no result", serverName, tool)
	}
	return res, err
}

// upstreamServers handles the upstream_servers tool.
func (e *Endpoint) upstreamServers(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	servers, err := e.opts.Backend.Servers(ctx)
	if err != nil {
		return mcp.NewToolResultErrorf("listing servers failed: %v", err), nil
	}
	if servers == nil {
		servers = []actors.Server{}
	}
	return structured(map[string]any{"servers": servers})
}

// structured answers with v as structured content and as JSON text for clients that read
// only text.
func structured(v any) (*mcp.CallToolResult, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var obj map[string]any
	if err := json.Unmarshal(data, &obj); err != nil {
		return nil, err
	}
	return mcp.NewToolResultStructured(obj, string(data)), nil
}
