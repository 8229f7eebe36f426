package actors

import (
	"context"
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/config"
)

// DefaultAskTimeout bounds a request to an actor when the caller's context has no deadline.
const DefaultAskTimeout = 10 * time.Second

// maxCallWait bounds how long CallTool waits for the upstream actor's answer when neither the
// caller's context nor the call names a deadline; the actor's own timeout normally ends the
// call long before.
const maxCallWait = 24 * time.Hour

// Client is the typed ask API the HTTP and MCP layers use to talk to the registry. Every
// call is bounded by ctx's deadline (DefaultAskTimeout when it has none): a timeout gives
// CodeTimeout, a registry that is gone gives CodeUnavailable.
type Client struct {
	sys      *actor.ActorSystem
	registry *actor.PID
}

// NewClient returns a Client for the registry at pid.
func NewClient(sys *actor.ActorSystem, registry *actor.PID) *Client {
	return &Client{sys: sys, registry: registry}
}

func timeoutOf(ctx context.Context) time.Duration {
	if dl, ok := ctx.Deadline(); ok {
		if d := time.Until(dl); d > 0 {
			return d
		}
		return time.Millisecond
	}
	return DefaultAskTimeout
}

func (c *Client) ask(ctx context.Context, msg any, timeout time.Duration) (any, error) {
	return ask(c.sys, c.registry, ctx, msg, timeout, "the proxy")
}

// ask sends msg to the actor at pid and waits for its answer, at most timeout: the one
// request/reply path of every typed client. A context already done gives CodeTimeout
// without sending; no answer in time gives CodeTimeout naming who (such as "the proxy");
// an actor that is gone gives CodeUnavailable.
func ask(sys *actor.ActorSystem, pid *actor.PID, ctx context.Context, msg any, timeout time.Duration, who string) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, Errorf(CodeTimeout, "request cancelled")
	}
	res, err := sys.Root.RequestFuture(pid, msg, timeout).Result()
	switch {
	case errors.Is(err, actor.ErrTimeout):
		return nil, Errorf(CodeTimeout, "%s did not answer in time", who)
	case errors.Is(err, actor.ErrDeadLetter):
		return nil, Errorf(CodeUnavailable, "the proxy is shutting down")
	case err != nil:
		return nil, err
	}
	return res, nil
}

func askValue[T any](c *Client, ctx context.Context, msg any) (T, error) {
	var zero T
	res, err := c.ask(ctx, msg, timeoutOf(ctx))
	if err != nil {
		return zero, err
	}
	rep, ok := res.(reply)
	if !ok {
		return zero, Errorf(CodeInternal, "internal error: unexpected reply %T", res)
	}
	if rep.err != nil {
		return zero, rep.err
	}
	if rep.v == nil {
		return zero, nil
	}
	v, ok := rep.v.(T)
	if !ok {
		return zero, Errorf(CodeInternal, "internal error: unexpected value %T", rep.v)
	}
	return v, nil
}

// callerScope is the scope of the caller ctx carries (nil: everything, as for REST and the
// daemon's own calls).
func callerScope(ctx context.Context) Scope {
	caller, _ := CallerFrom(ctx)
	return caller.Scope
}

// Servers lists every configured server, sorted by name; only those its scope allows for
// a caller with an agent token (CallerFrom(ctx)).
func (c *Client) Servers(ctx context.Context) ([]Server, error) {
	return askValue[[]Server](c, ctx, listServers{Scope: callerScope(ctx)})
}

// ServerList lists every server with the registry's version number.
func (c *Client) ServerList(ctx context.Context) (ServerList, error) {
	return askValue[ServerList](c, ctx, listServers{Versioned: true})
}

// Server returns one server.
func (c *Client) Server(ctx context.Context, name string) (Server, error) {
	return askValue[Server](c, ctx, getServer{Name: name})
}

// Status summarises servers and tools.
func (c *Client) Status(ctx context.Context) (Status, error) {
	return askValue[Status](c, ctx, getStatus{})
}

// SetEnabled enables or disables a server and saves the flag.
func (c *Client) SetEnabled(ctx context.Context, name string, enabled bool) (Server, error) {
	return askValue[Server](c, ctx, setEnabled{Name: name, Enabled: enabled})
}

// SetQuarantined sets a server's quarantine flag and saves it.
func (c *Client) SetQuarantined(ctx context.Context, name string, q bool) (Server, error) {
	return askValue[Server](c, ctx, setQuarantined{Name: name, Quarantined: q})
}

// Restart drops a server's connection and connects again; CodeConflict if it is disabled.
func (c *Client) Restart(ctx context.Context, name string) (Server, error) {
	return askValue[Server](c, ctx, restartServer{Name: name})
}

// Bulk runs one of BulkEnableAll, BulkDisableAll, BulkRestartAll, BulkReconnect over the
// servers sel selects (all for the zero Selection).
func (c *Client) Bulk(ctx context.Context, op string, sel Selection) (BulkResult, error) {
	return askValue[BulkResult](c, ctx, bulkOp{Op: op, Sel: sel})
}

// Operation returns a bulk operation's progress (the registry forwards the ask to the
// operations actor); CodeNotFound when unknown or expired.
func (c *Client) Operation(ctx context.Context, id string) (Operation, error) {
	return askValue[Operation](c, ctx, getOperation{ID: id})
}

// ServerTools lists a server's own tools (also while quarantined, for review).
func (c *Client) ServerTools(ctx context.Context, name string) (ServerTools, error) {
	return askValue[ServerTools](c, ctx, getServerTools{Name: name})
}

// SearchTools ranks reachable tools for query (all of them by name when query is blank)
// and returns at most limit hits and the index size; for a caller with an agent token, only
// the tools its scope allows, and their number.
func (c *Client) SearchTools(ctx context.Context, query string, limit int) ([]ToolHit, int, error) {
	r, err := askValue[searchResult](c, ctx, searchTools{Query: query, Limit: limit, Scope: callerScope(ctx)})
	return r.Hits, r.Total, err
}

// Config returns a copy of the running config (not redacted).
func (c *Client) Config(ctx context.Context) (*config.Config, error) {
	return askValue[*config.Config](c, ctx, getConfig{})
}

// Apply applies a new config as a diff; source is config.SourceAPI or config.SourceFile.
func (c *Client) Apply(ctx context.Context, cfg *config.Config, source string) (ApplyResult, error) {
	return askValue[ApplyResult](c, ctx, applyConfig{Config: cfg, Source: source})
}

// CallTool calls "server:tool" with args. timeout 0 means the config's call_tool_timeout.
// The upstream's result comes back unchanged, including isError. When meta carries a
// progress token and progress is not nil, the upstream's progress notifications for the
// call go to progress, all of them before CallTool returns. A caller with an agent token
// (CallerFrom(ctx)) gets CodeForbidden for a tool outside its scope.
func (c *Client) CallTool(ctx context.Context, name string, args any, meta *mcp.Meta, timeout time.Duration, progress ProgressSink) (*mcp.CallToolResult, error) {
	// The upstream actor bounds the call itself (timeout, else call_tool_timeout) and always
	// answers, so a caller without a deadline of its own waits for that answer rather than
	// for DefaultAskTimeout, which is shorter than the default call_tool_timeout.
	wait := maxCallWait
	if _, ok := ctx.Deadline(); ok {
		wait = timeoutOf(ctx)
	}
	if timeout > 0 && timeout+time.Second < wait {
		wait = timeout + time.Second
	}
	res, err := c.ask(ctx, callTool{Name: name, Args: args, Meta: meta, Timeout: timeout, Progress: progress, Scope: callerScope(ctx)}, wait)
	if err != nil {
		return nil, err
	}
	var rep callToolReply
	switch r := res.(type) {
	case callToolReply:
		rep = r
	case callLease:
		// The upstream actor handed over its ready connection: the call is made here,
		// bounded by the caller's context as the ask was (wait) and by the call's timeout.
		cctx, cancel := context.WithTimeout(ctx, wait)
		rep = r.call.run(cctx)
		cancel()
	default:
		return nil, Errorf(CodeInternal, "internal error: unexpected reply %T", res)
	}
	if t, ok := ctx.Value(callTimingKey{}).(*CallTiming); ok {
		t.Upstream = rep.Took
	}
	return rep.Result, rep.Err
}

// CallTiming is filled in by CallTool for a context made by WithCallTiming: how long the
// upstream took, so that the caller can tell the proxy's own share of a call's time.
type CallTiming struct{ Upstream time.Duration }

type callTimingKey struct{}

// WithCallTiming returns ctx carrying a CallTiming that CallTool fills in.
func WithCallTiming(ctx context.Context) (context.Context, *CallTiming) {
	t := &CallTiming{}
	return context.WithValue(ctx, callTimingKey{}, t), t
}

// Shutdown stops every upstream (killing their processes) and waits until all are gone.
func (c *Client) Shutdown(ctx context.Context) error {
	_, err := c.ask(ctx, shutdownAll{}, timeoutOf(ctx))
	return err
}

// AddServer adds one server entry (decoded by config.ParseServer), quarantined unless the
// entry says "quarantined": false, and answers once the config is saved. CodeConflict for
// a name in use, CodeInvalidArgument with the entry's field errors.
func (c *Client) AddServer(ctx context.Context, entry config.ServerConfig) (EditResult, error) {
	return askValue[EditResult](c, ctx, editServer{Op: EditAdd, Name: entry.Name, Entry: entry})
}

// UpdateServer applies a JSON merge patch to a server's entry (config.PatchServer) and
// answers once the config is saved; the server reconnects if its definition changed.
func (c *Client) UpdateServer(ctx context.Context, name string, patch []byte) (EditResult, error) {
	return askValue[EditResult](c, ctx, editServer{Op: EditUpdate, Name: name, Patch: patch})
}

// RemoveServer removes a server and answers once the config is saved and its processes are
// gone.
func (c *Client) RemoveServer(ctx context.Context, name string) (EditResult, error) {
	return askValue[EditResult](c, ctx, editServer{Op: EditRemove, Name: name})
}

// Logs returns the last tail lines of a server's log (see logs.go), oldest first.
func (c *Client) Logs(ctx context.Context, name string, tail int) ([]LogLine, error) {
	return askValue[[]LogLine](c, ctx, getLogs{Server: name, Tail: tail})
}

// FollowLogs returns the last tail lines of a server's log and a channel of the lines that
// follow; the caller must call Stop when done.
func (c *Client) FollowLogs(ctx context.Context, name string, tail int) (*LogFollow, error) {
	return askValue[*LogFollow](c, ctx, followLogs{Server: name, Tail: tail})
}

// ImportServers adds the entries whose names are free, every one quarantined, in one
// apply, and answers once the config is saved.
func (c *Client) ImportServers(ctx context.Context, entries []config.ServerConfig) (ImportResult, error) {
	return askValue[ImportResult](c, ctx, editServer{Op: EditImport, Entries: entries})
}
