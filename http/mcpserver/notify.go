package mcpserver

import (
	"context"
	"maps"
	"strconv"
	"sync"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpproxy/mcpproxy/actors/upstream"
)

// progressRouter maps the progress tokens the proxy sends upstream back to the agent call
// they belong to. Each forwarded call that asked for progress gets a token unique in this
// process, because two agents may well pick the same token and share one upstream
// connection.
type progressRouter struct {
	mu     sync.Mutex
	next   uint64
	routes map[string]progressRoute
}

// progressRoute is where the progress of one forwarded call goes: the agent's session (in
// ctx, the request context of its tools/call) and the token the agent chose.
type progressRoute struct {
	ctx   context.Context
	srv   *server.MCPServer
	token mcp.ProgressToken
}

// add registers a call and returns the token to send upstream and the function that
// unregisters it when the call is over.
func (p *progressRouter) add(ctx context.Context, srv *server.MCPServer, token mcp.ProgressToken) (string, func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.routes == nil {
		p.routes = map[string]progressRoute{}
	}
	p.next++
	key := "mcpproxy-" + strconv.FormatUint(p.next, 10)
	p.routes[key] = progressRoute{ctx: ctx, srv: srv, token: token}
	return key, func() {
		p.mu.Lock()
		delete(p.routes, key)
		p.mu.Unlock()
	}
}

// deliver forwards an upstream progress notification to its agent with the agent's own
// token. It never blocks: mcp-go drops a notification when the session's queue is full.
// The notification's _meta is not forwarded: mcp-go's SendNotificationToClient cannot carry
// one.
func (p *progressRouter) deliver(n mcp.JSONRPCNotification) {
	key, _ := n.Params.AdditionalFields["progressToken"].(string)
	if key == "" {
		return
	}
	p.mu.Lock()
	r, ok := p.routes[key]
	p.mu.Unlock()
	if !ok || r.srv == nil {
		return
	}
	params := maps.Clone(n.Params.AdditionalFields)
	params["progressToken"] = r.token
	_ = r.srv.SendNotificationToClient(r.ctx, string(mcp.MethodNotificationProgress), params)
}

// forwardMeta returns the _meta to send upstream for an agent's call: the agent's fields,
// and in place of its progress token one the router maps back to it. done unregisters the
// route once the call has returned.
func (e *Endpoint) forwardMeta(ctx context.Context, serverName string, meta *mcp.Meta) (*mcp.Meta, func()) {
	if meta == nil {
		return nil, func() {}
	}
	if meta.ProgressToken == nil {
		return meta, func() {}
	}
	// The upstream's notifications reach us only through a handler on its connection.
	if conn, err := e.opts.Backend.UpstreamConn(ctx, serverName); err == nil {
		e.hook(serverName, conn)
	}
	token, done := e.progress.add(ctx, server.ServerFromContext(ctx), meta.ProgressToken)
	return &mcp.Meta{ProgressToken: token, AdditionalFields: meta.AdditionalFields}, done
}

// hook installs, once per upstream connection, the handler that routes the upstream's
// progress notifications to the /mcp call they belong to. The handler runs on the
// connection's read loop, so it only hands work off.
func (e *Endpoint) hook(serverName string, conn *upstream.Conn) {
	if conn == nil || conn.Client == nil {
		return
	}
	if _, loaded := e.hooked.LoadOrStore(conn, struct{}{}); loaded {
		return
	}
	conn.Client.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == string(mcp.MethodNotificationProgress) {
			e.progress.deliver(n)
		}
	})
	go func() {
		select {
		case <-conn.Done():
		case <-e.done:
		}
		e.hooked.Delete(conn)
	}()
}
