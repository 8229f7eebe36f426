package mcpserver

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/upstream"
)

// listTimeout bounds listing an upstream's tools for the mirror.
const listTimeout = 30 * time.Second

// passthrough mirrors one upstream for /mcp/server/{name}: an MCPServer whose tools are the
// upstream's own, with handlers that forward each call, and its streamable HTTP handler.
// The mirror follows the connection the registry currently holds for the server; a new
// connection (after a restart) or a tools/list_changed makes it list the tools again, and
// a changed list is announced to every agent session by mcp-go.
type passthrough struct {
	e    *Endpoint
	name string
	srv  *server.MCPServer
	http *server.StreamableHTTPServer

	conn    atomic.Pointer[upstream.Conn] // the connection whose tools are mirrored
	mu      sync.Mutex                    // serialises syncs; guards sig
	sig     [32]byte                      // hash of the mirrored list
	pending atomic.Bool                   // a re-list is queued
}

// servePassthrough handles ANY /mcp/server/{name}: 404 for an unknown server, 409 for a
// quarantined or disabled one, 503 while it is not ready; otherwise the mirror serves it.
func (e *Endpoint) servePassthrough(c *gin.Context) {
	name := c.Param("name")
	endpoint := "/mcp/server/" + name
	if !e.authorized(c, endpoint) {
		return
	}
	if c.Request.Method == http.MethodDelete {
		// Ending a session needs no reachable upstream.
		if pt := e.passthroughIfAny(name); pt != nil {
			e.serve(c, pt.http, endpoint)
			return
		}
	}
	conn, err := e.opts.Backend.UpstreamConn(c.Request.Context(), name)
	if err != nil {
		if actors.ErrorCode(err) == actors.CodeNotFound {
			e.dropPassthrough(name)
		}
		e.httpSrv.WriteError(c, err)
		return
	}
	pt, err := e.passthroughFor(c.Request.Context(), name, conn)
	if err != nil {
		e.httpSrv.WriteError(c, err)
		return
	}
	e.serve(c, pt.http, endpoint)
}

// passthroughIfAny returns the mirror of name if one exists.
func (e *Endpoint) passthroughIfAny(name string) *passthrough {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.pts[name]
}

// passthroughFor returns the mirror of name, made on first use, in step with conn.
func (e *Endpoint) passthroughFor(ctx context.Context, name string, conn *upstream.Conn) (*passthrough, error) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, actors.Errorf(actors.CodeUnavailable, "the proxy is shutting down")
	}
	pt := e.pts[name]
	if pt == nil {
		pt = e.newPassthrough(name, conn)
		e.pts[name] = pt
	}
	e.mu.Unlock()
	if pt.conn.Load() != conn {
		e.hook(name, conn)
		if err := pt.sync(ctx, conn, false); err != nil {
			return nil, actors.Errorf(actors.CodeUpstream, "listing the tools of %q failed: %v", name, err)
		}
	}
	return pt, nil
}

func (e *Endpoint) newPassthrough(name string, conn *upstream.Conn) *passthrough {
	pt := &passthrough{e: e, name: name}
	info := mcp.Implementation{Name: name, Version: "unknown"}
	instructions := ""
	if conn.Init != nil {
		if conn.Init.ServerInfo.Name != "" {
			info = conn.Init.ServerInfo
		}
		instructions = conn.Init.Instructions
	}
	opts := []server.ServerOption{
		server.WithToolCapabilities(true),
		server.WithRecovery(),
		server.WithLogger(e.log),
		server.WithHooks(e.sessionHooks()),
	}
	if instructions != "" {
		opts = append(opts, server.WithInstructions(instructions))
	}
	pt.srv = server.NewMCPServer(info.Name, info.Version, opts...)
	pt.http = e.newHTTP(pt.srv, "/mcp/server/"+name)
	return pt
}

// dropPassthrough forgets the mirror of a server that no longer exists and closes its
// sessions.
func (e *Endpoint) dropPassthrough(name string) {
	e.mu.Lock()
	pt := e.pts[name]
	delete(e.pts, name)
	e.mu.Unlock()
	if pt != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		pt.http.CloseSessions(ctx)
	}
}

// sync lists conn's tools and mirrors them. A first sync (resync false) of a connection
// already mirrored does nothing (another request synced it meanwhile); a resync (after
// tools/list_changed) does nothing unless conn is the mirrored connection, because a newer
// one has replaced it. The first sync holds the lock while it lists, so a resync queued
// meanwhile runs after it and sees the connection mirrored.
func (pt *passthrough) sync(ctx context.Context, conn *upstream.Conn, resync bool) error {
	pt.mu.Lock()
	defer pt.mu.Unlock()
	if mirrored := pt.conn.Load() == conn; mirrored != resync {
		return nil
	}
	lctx, cancel := context.WithTimeout(ctx, listTimeout)
	defer cancel()
	res, err := conn.Client.ListTools(lctx, mcp.ListToolsRequest{})
	if err != nil {
		return err
	}
	pt.conn.Store(conn)
	data, err := json.Marshal(res.Tools)
	if err != nil {
		return err
	}
	sig := sha256.Sum256(data)
	if sig == pt.sig {
		return nil
	}
	pt.sig = sig
	tools := make([]server.ServerTool, len(res.Tools))
	for i, t := range res.Tools {
		tools[i] = server.ServerTool{Tool: t, Handler: pt.call}
	}
	// SetTools replaces the list and sends tools/list_changed to every session.
	pt.srv.SetTools(tools...)
	return nil
}

// toolsChanged is called on conn's read loop when the upstream announces a new tool list;
// the re-list runs in a goroutine, and announcements that arrive meanwhile are folded into
// one more re-list.
func (pt *passthrough) toolsChanged(conn *upstream.Conn) {
	if !pt.pending.CompareAndSwap(false, true) {
		return
	}
	go func() {
		pt.pending.Store(false)
		if err := pt.sync(context.Background(), conn, true); err != nil {
			pt.e.log.Warn("re-listing tools for the passthrough failed", "server", pt.name, "err", err)
		}
	}()
}

// call forwards a tools/call. Failures the proxy decides (quarantine, readiness, timeout)
// are tool errors naming the reason; an upstream that answers with a JSON-RPC error gives
// the agent a JSON-RPC error too, as it would directly.
func (pt *passthrough) call(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
	res, err := pt.e.forward(ctx, pt.name, req.Params.Name, req.Params.Arguments, req.Params.Meta)
	if err != nil {
		if actors.ErrorCode(err) == actors.CodeUpstream {
			return nil, err
		}
		return mcp.NewToolResultError(err.Error()), nil
	}
	return res, nil
}
