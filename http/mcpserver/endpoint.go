// Package mcpserver serves mcpproxy's MCP endpoints for agents with mark3labs/mcp-go's
// streamable HTTP server mounted in gin:
//
//   - /mcp: the proxy's own tools retrieve_tools, call_tool and upstream_servers, through
//     which an agent finds and calls the tools of every reachable upstream.
//   - /mcp/server/{name}: one upstream passed through under its own tool names, as if the
//     agent were connected to it directly.
//
// Both need the API key unless require_mcp_auth is off (the Unix socket needs none), except
// for a DELETE that ends a live session (see Endpoint.authorized); the Host/Origin guard of
// the http package runs before them.
//
// # Sessions
//
// Every MCP session is recorded by the Tracker (see sessions.go) and listed by
// /api/v1/sessions. The endpoints speak only the session-oriented protocol revisions (up to
// 2025-11-25) toward agents: mcp-go v1.2.1 also offers the stateless 2026-07-28 core, whose
// requests carry no session id at all, which would leave nothing to record or expire. A
// modern client learns this from server/discover (or the answer to its first request) and
// falls back to the initialize handshake, as mcp-go's and the official SDKs' clients do.
//
// # Passthrough
//
// /mcp/server/{name} is not an mcp-go server: it is a streamable HTTP transport of its own
// (passthrough.go, passthrough_session.go) that relays raw JSON-RPC between each agent
// session and a connection to the upstream that belongs to that session alone, dialled at
// the agent's initialize with the agent's own initialize (so its capabilities) and closed
// with the session. Everything the two sides negotiate passes unchanged, in both
// directions: tools with their schemas as the upstream wrote them, prompts, resources and
// subscriptions, completions, logging, progress with the agent's token, cancellation,
// list_changed, and the upstream's sampling, elicitation and roots requests, which reach
// the agent that owns the connection. The registry still decides quarantine, disable and
// config changes (checked on every request and swept every second), and call_tool_timeout
// bounds every relayed request. See "Passthrough sessions" in package actors for why a
// connection per session.
//
// # Progress
//
// On /mcp, when an agent's call carries a progress token, the proxy sends the upstream a
// token of its own, unique in the process, and maps the upstream's notifications/progress
// back to the agent's session and token (notify.go); two agents sharing one upstream
// connection may have chosen the same token. Passthrough sessions need no mapping: their
// connection is theirs alone.
//
// # Concurrency
//
// Requests are served concurrently; calls to one upstream overlap (the upstream actor runs
// each call in its own goroutine). Endpoint state is guarded by mutexes or is atomic.
package mcpserver

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/upstream"
	mhttp "github.com/mcpproxy/mcpproxy/http"
)

// Backend is what the endpoints need from the actors. *actors.Client implements it.
type Backend interface {
	SearchTools(ctx context.Context, query string, limit int) ([]actors.ToolHit, int, error)
	Servers(ctx context.Context) ([]actors.Server, error)
	CallTool(ctx context.Context, name string, args any, meta *mcp.Meta, timeout time.Duration) (*mcp.CallToolResult, error)
	UpstreamConn(ctx context.Context, name string) (*upstream.Conn, error)
	PassthroughTarget(ctx context.Context, name string) (actors.PassthroughTarget, error)
	PassthroughGen(ctx context.Context, name string) (int, error)
}

var _ Backend = (*actors.Client)(nil)

// Options configure New. Backend is required; the zero value of every other field is usable.
type Options struct {
	Backend Backend
	// Store keeps the session records. Nil keeps them in memory only.
	Store SessionStore
	// Logger default discards.
	Logger *slog.Logger
	// Version is the proxy's version in serverInfo. Default "dev".
	Version string
	// IdleTTL closes a session that has had no request in flight, no open stream and no
	// request for this long. Default 30 minutes; negative never closes idle sessions.
	IdleTTL time.Duration
	// FlushInterval is how often changed session records are written. Default 2 s.
	FlushInterval time.Duration
	// KeepClosed is how many closed sessions the store keeps. Default 1000.
	KeepClosed int
	// MaxBody bounds one request body. Default 16 MiB.
	MaxBody int64
	// Heartbeat is the interval of pings on an agent's GET stream, which finds dead
	// connections. Default 30 s; negative sends none.
	Heartbeat time.Duration
	// PassthroughSessions bounds the sessions of one server on /mcp/server/{name}, each of
	// which has a connection (for stdio, a process) of its own; when a new one would pass
	// it, the least recently active idle session is closed. Default
	// DefaultPassthroughSessions.
	PassthroughSessions int
	// DialUpstream opens a passthrough session's connection. Default DialRaw.
	DialUpstream DialFunc
}

// Defaults of Options.
const (
	DefaultIdleTTL       = 30 * time.Minute
	DefaultFlushInterval = 2 * time.Second
	DefaultKeepClosed    = 1000
	DefaultMaxBody       = 16 << 20
	DefaultHeartbeat     = 30 * time.Second
)

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Version == "" {
		o.Version = "dev"
	}
	if o.IdleTTL == 0 {
		o.IdleTTL = DefaultIdleTTL
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.KeepClosed <= 0 {
		o.KeepClosed = DefaultKeepClosed
	}
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.PassthroughSessions <= 0 {
		o.PassthroughSessions = DefaultPassthroughSessions
	}
	if o.DialUpstream == nil {
		o.DialUpstream = DialRaw
	}
}

// Endpoint is the MCP surface for agents: /mcp, /mcp/server/{name} and their sessions.
type Endpoint struct {
	opts     Options
	log      *slog.Logger
	sessions *Tracker
	main     *server.MCPServer
	mainHTTP *server.StreamableHTTPServer
	progress progressRouter
	hooked   sync.Map // *upstream.Conn -> struct{}: connections with our notification handler
	done     chan struct{}

	httpSrv   *mhttp.Server // set by Routes
	mu        sync.Mutex    // guards closed, pt and ptCount
	closed    bool
	closeOnce sync.Once

	pt        map[string]*ptSession // passthrough sessions by id
	ptCount   map[string]int        // passthrough sessions by server, starting ones included
	ptWG      sync.WaitGroup        // passthrough work: starting sessions, watchers, calls
	ptSeq     atomic.Int64          // numbers the Docker containers of passthrough sessions
	sweepDone chan struct{}
}

// New builds the endpoints. Mount them with Routes; stop them with Close.
func New(opts Options) *Endpoint {
	opts.defaults()
	e := &Endpoint{opts: opts, log: opts.Logger, done: make(chan struct{}), sweepDone: make(chan struct{}),
		pt: map[string]*ptSession{}, ptCount: map[string]int{}}
	e.sessions = newTracker(opts.Store, opts.Logger, trackerOptions{
		idleTTL: opts.IdleTTL, flushInterval: opts.FlushInterval, keepClosed: opts.KeepClosed,
	})
	e.main = server.NewMCPServer("mcpproxy", opts.Version,
		server.WithToolCapabilities(false),
		server.WithRecovery(),
		server.WithLogger(opts.Logger),
		server.WithInstructions(mainInstructions),
		server.WithHooks(e.sessionHooks()),
	)
	e.main.AddTools(e.mainTools()...)
	e.mainHTTP = e.newHTTP(e.main, "/mcp")
	go e.sweepPassthrough()
	return e
}

// Sessions is the session tracker, for GET /api/v1/sessions.
func (e *Endpoint) Sessions() *Tracker { return e.sessions }

// newHTTP wraps an MCPServer in a streamable HTTP handler whose sessions the tracker owns.
func (e *Endpoint) newHTTP(srv *server.MCPServer, endpoint string) *server.StreamableHTTPServer {
	ids := &idManager{t: e.sessions, endpoint: endpoint}
	opts := []server.StreamableHTTPOption{
		server.WithSessionIdManager(ids),
		// The http package's Host/Origin guard runs first and knows trusted_hosts.
		server.WithDisableLocalhostProtection(true),
		server.WithStreamableHTTPProtocolVersions(mcp.LegacyProtocolVersions()...),
		server.WithStreamableHTTPLogger(e.log),
	}
	if e.opts.Heartbeat > 0 {
		opts = append(opts, server.WithHeartbeatInterval(e.opts.Heartbeat))
	}
	h := server.NewStreamableHTTPServer(srv, opts...)
	ids.handler = h
	return h
}

// sessionHooks record the client of each session and count its tool calls.
func (e *Endpoint) sessionHooks() *server.Hooks {
	hooks := &server.Hooks{}
	hooks.AddAfterInitialize(func(ctx context.Context, _ any, req *mcp.InitializeRequest, _ *mcp.InitializeResult) {
		if s := server.ClientSessionFromContext(ctx); s != nil && req != nil {
			e.sessions.setClient(s.SessionID(), req.Params.ClientInfo)
		}
	})
	hooks.AddBeforeCallTool(func(ctx context.Context, _ any, _ *mcp.CallToolRequest) {
		if s := server.ClientSessionFromContext(ctx); s != nil {
			e.sessions.countCall(s.SessionID())
		}
	})
	return hooks
}

// Routes mounts /mcp and /mcp/server/{name}; it is an http.Options.Routes plug-in. The
// routes sit in the open group because require_mcp_auth decides whether they need the key.
func (e *Endpoint) Routes(s *mhttp.Server, open, _ *gin.RouterGroup) {
	e.httpSrv = s
	open.Any("/mcp", e.serveMain)
	open.Any("/mcp/server/:name", e.servePassthrough)
}

// Codes the http package maps to 401, 413 and 405 (its table decides the status).
const (
	codeUnauthorized     actors.Code = "UNAUTHORIZED"
	codePayloadTooLarge  actors.Code = "PAYLOAD_TOO_LARGE"
	codeMethodNotAllowed actors.Code = "METHOD_NOT_ALLOWED"
)

// authorized checks the API key when require_mcp_auth is on, and answers 401 if it fails.
//
// One exception: a DELETE that names a live session of this endpoint may end it without the
// key. mcp-go's client sends its closing DELETE without the headers it was configured with,
// so its sessions would otherwise stay open until they idle out; and the session id, 130
// random bits handed out only in answer to a keyed initialize, proves as much as the key
// for ending that one session.
func (e *Endpoint) authorized(c *gin.Context, endpoint string) bool {
	r := c.Request
	if !e.httpSrv.Settings().RequireMCPAuth || e.httpSrv.KeyOK(r) {
		return true
	}
	if r.Method == http.MethodDelete && e.sessions.isLive(r.Header.Get(server.HeaderKeySessionID), endpoint) {
		return true
	}
	e.httpSrv.WriteError(c, actors.Errorf(codeUnauthorized, "missing or wrong API key"))
	return false
}

// serveMain handles ANY /mcp.
func (e *Endpoint) serveMain(c *gin.Context) {
	if !e.authorized(c, "/mcp") {
		return
	}
	e.serve(c, e.mainHTTP, "/mcp")
}

// serve hands a request to an endpoint's mcp-go handler, after checking the session it
// names (so that an unknown or closed id gets 404 on every method, GET included) and
// accounting for it, so that a session with a request in flight or an open stream is never
// idle.
func (e *Endpoint) serve(c *gin.Context, h http.Handler, endpoint string) {
	r := c.Request
	if r.Method == http.MethodPost && r.Body != nil {
		// mcp-go reads the whole body without a bound; read it here so that an oversized
		// one is a clean 413.
		data, err := io.ReadAll(http.MaxBytesReader(c.Writer, r.Body, e.opts.MaxBody))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				e.httpSrv.WriteError(c, actors.Errorf(codePayloadTooLarge, "request body is over %d bytes", e.opts.MaxBody))
			} else {
				e.httpSrv.WriteError(c, actors.Errorf(actors.CodeInvalidArgument, "reading body: %v", err))
			}
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(data))
	}
	id := r.Header.Get(server.HeaderKeySessionID)
	if id == "" && r.Method == http.MethodGet {
		// mcp-go would mint a session for a GET without one; a stream belongs to an
		// initialized session.
		e.httpSrv.WriteError(c, actors.Errorf(actors.CodeInvalidArgument, "a GET stream needs the %s header of an initialized session", server.HeaderKeySessionID))
		return
	}
	if id != "" && r.Method == http.MethodDelete && !e.sessions.isLive(id, endpoint) {
		// mcp-go answers 200 to a DELETE of a session it does not know.
		e.httpSrv.WriteError(c, actors.Errorf(actors.CodeNotFound, "MCP session %q not found or closed", id))
		return
	}
	if id != "" && r.Method != http.MethodDelete {
		ctx, end, err := e.sessions.begin(r.Context(), id, endpoint, r.Method == http.MethodGet)
		if err != nil {
			e.httpSrv.WriteError(c, actors.Errorf(actors.CodeNotFound, "MCP session %q not found or closed; initialize a new one", id))
			return
		}
		defer end()
		r = r.WithContext(ctx)
	}
	h.ServeHTTP(c.Writer, r)
}

// Close ends every session and stops the background work; the HTTP servers must have
// stopped first. It is a daemon stopper.
func (e *Endpoint) Close(ctx context.Context) {
	e.closeOnce.Do(func() {
		close(e.done)
		select {
		case <-e.sweepDone:
		case <-ctx.Done():
		}
		e.mu.Lock()
		e.closed = true
		e.mu.Unlock()
		if err := e.mainHTTP.Shutdown(ctx); err != nil {
			e.log.Debug("closing MCP sessions", "err", err)
		}
		e.closePassthrough(ctx)
		e.sessions.Close()
	})
}
