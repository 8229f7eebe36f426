// Package mcpserver serves mcpproxy's MCP endpoints for agents with mark3labs/mcp-go's
// streamable HTTP server mounted in gin:
//
//   - /mcp: the proxy's own tools retrieve_tools, call_tool and upstream_servers, through
//     which an agent finds and calls the tools of every reachable upstream (or, with
//     mcp_mode direct, what /mcp/all offers).
//   - /mcp/all: every reachable tool listed as itself (direct.go).
//
// Both aggregate the reachable upstreams' prompts, resources, resource templates,
// subscriptions and completions (catalog.go).
//   - /mcp/server/{name}: one upstream passed through under its own tool names, as if the
//     agent were connected to it directly.
//
// Both need the API key unless require_mcp_auth is off (the Unix socket needs none), except
// for a DELETE that ends a live session (see Endpoint.authorized); the Host/Origin guard of
// the http package runs before them.
//
// # Sessions
//
// Every MCP session is recorded by the sessions actor (actors/sessions.go), which mints
// the ids (idManager hands them to mcp-go), accounts for every request, closes idle
// sessions, persists the records and answers /api/v1/sessions; this package holds no store
// handle and no session table. The endpoints speak only the session-oriented protocol
// revisions (up to 2025-11-25) toward agents: mcp-go v1.2.1 also offers the stateless
// 2026-07-28 core, whose requests carry no session id at all, which would leave nothing to
// record or expire. A modern client learns this from server/discover (or the answer to its
// first request) and falls back to the initialize handshake, as mcp-go's and the official
// SDKs' clients do.
//
// # Passthrough
//
// /mcp/server/{name} is not an mcp-go server: it is a streamable HTTP transport of its own
// (passthrough.go) in front of the passthrough session actors (actors/passthrough), each of
// which relays raw JSON-RPC between one agent session and a connection to the upstream that
// belongs to that session alone, dialled at the agent's initialize with the agent's own
// initialize (so its capabilities) and closed with the session. Everything the two sides
// negotiate passes unchanged, in both directions: tools with their schemas as the upstream
// wrote them, prompts, resources and subscriptions, completions, logging, progress with the
// agent's token, cancellation, list_changed, and the upstream's sampling, elicitation and
// roots requests, which reach the agent that owns the connection. This file keeps only the
// framing: it parses the body, answers what the transport refuses, hands each response
// stream to the session as a passthrough.Stream and writes what arrives there (an event
// stream, or JSON for a client that takes only JSON). The registry's verdicts (quarantine,
// disable, removal, config change) reach the sessions without this package: the registry
// tells the sessions actor, which closes them. See "Passthrough sessions" in package actors.
//
// # Progress
//
// On /mcp, when an agent's call carries a progress token, the call carries a sink for its
// progress (notify.go: the agent's session) to the upstream actor, which owns the shared
// connection: it sends the upstream a token of its own, unique on that connection (two
// agents may have chosen the same token), and routes the upstream's notifications/progress
// back to the sink with the agent's token, all before the call's answer. Passthrough
// sessions need no mapping: their connection is theirs alone.
//
// # Concurrency
//
// Requests are served concurrently; calls to one upstream overlap (the upstream actor runs
// each call in its own goroutine). The endpoint keeps no session or routing state of its
// own.
package mcpserver

import (
	"bytes"
	"context"
	"encoding/json"
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
	"github.com/mcpproxy/mcpproxy/actors/passthrough"
	"github.com/mcpproxy/mcpproxy/actors/upstream"
	"github.com/mcpproxy/mcpproxy/config"
	mhttp "github.com/mcpproxy/mcpproxy/http"
)

// Backend is what the endpoints need from the registry. *actors.Client implements it.
type Backend interface {
	SearchTools(ctx context.Context, query string, limit int) ([]actors.ToolHit, int, error)
	Servers(ctx context.Context) ([]actors.Server, error)
	CallTool(ctx context.Context, name string, args any, meta *mcp.Meta, timeout time.Duration, progress actors.ProgressSink) (*mcp.CallToolResult, error)
	CheckPassthrough(ctx context.Context, name string) error
	// The prompts and resources (catalog.go).
	Catalog(ctx context.Context) (actors.CatalogView, error)
	CatalogCall(ctx context.Context, req actors.CatalogRequest) (json.RawMessage, string, time.Duration, error)
	SubscribeResource(ctx context.Context, uri, key string, sink actors.ResourceSink) error
	UnsubscribeResource(ctx context.Context, uri, key string) error
	DropSubscriber(key string)
}

var _ Backend = (*actors.Client)(nil)

// Sessions is what the endpoints need from the sessions actor, which owns the MCP session
// table and the passthrough sessions. *actors.SessionsClient implements it.
type Sessions interface {
	// For mcp-go's sessions (/mcp).
	NewSession(endpoint string) string
	SetClient(id string, info mcp.Implementation)
	BindCredential(id, credential string)
	CountCall(id string)
	Begin(ctx context.Context, id, endpoint string) (<-chan struct{}, error)
	End(id string)
	Live(ctx context.Context, id, endpoint string) bool
	Terminate(id, endpoint string)
	OnIdleClose(endpoint string, purge func(id string))
	// For /mcp/server/{name}.
	OpenPassthrough(ctx context.Context, server, endpoint string, init json.RawMessage, info mcp.Implementation) (string, json.RawMessage, *upstream.RPCError, error)
	PostPassthrough(ctx context.Context, id, endpoint string, msgs []passthrough.Message, out *passthrough.Stream) error
	ListenPassthrough(ctx context.Context, id, endpoint string, out *passthrough.Stream) error
	EndPassthrough(id string, out *passthrough.Stream)
	DeletePassthrough(ctx context.Context, id, endpoint string) error
	PassthroughCount(ctx context.Context) (int, error)
	// At shutdown.
	CloseAll(ctx context.Context) error
}

var _ Sessions = (*actors.SessionsClient)(nil)

// Options configure New. Backend and Sessions are required; the zero value of every other
// field is usable. Session limits (idle TTL, the bound of passthrough sessions per server)
// are the sessions actor's (actors.SessionsOptions).
type Options struct {
	Backend  Backend
	Sessions Sessions
	// Logger default discards.
	Logger *slog.Logger
	// Version is the proxy's version in serverInfo, as given (daemon.Options.Version is the
	// one place that defaults it).
	Version string
	// MaxBody bounds one request body. Default 16 MiB.
	MaxBody int64
	// Heartbeat is the interval of pings on an agent's GET stream, which finds dead
	// connections. Default 30 s; negative sends none.
	Heartbeat time.Duration
	// Events tells the endpoint when the registry's tools change, for the direct tools of
	// /mcp/all (direct.go). Nil: they are listed once, at New.
	Events EventSource
	// Activity records /mcp's tool calls and the passthrough requests this package
	// refuses itself (the passthrough session actors record the rest). Nil records none.
	Activity Recorder
}

// Defaults of Options.
const (
	DefaultMaxBody   = 16 << 20
	DefaultHeartbeat = 30 * time.Second
)

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxBody <= 0 {
		o.MaxBody = DefaultMaxBody
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = DefaultHeartbeat
	}
}

// Endpoint is the MCP surface for agents: /mcp, /mcp/server/{name} and their sessions.
type Endpoint struct {
	opts     Options
	log      *slog.Logger
	sessions Sessions
	main     *server.MCPServer
	mainHTTP *server.StreamableHTTPServer
	// all serves the direct tools (direct.go): on /mcp/all through allHTTP, and on /mcp
	// through directHTTP when mcp_mode is direct.
	all        *server.MCPServer
	allHTTP    *server.StreamableHTTPServer
	directHTTP *server.StreamableHTTPServer
	direct     atomic.Pointer[directSet]
	// directListed: refreshDirect has given all a full set once (only syncDirect's
	// goroutine refreshes, so only it reads and writes this).
	directListed bool
	// The direct tools are listed only once someone asks for them (useDirect): directOn
	// says so, directWake tells syncDirect, and directReady is closed after the first
	// listing that followed.
	directOn    atomic.Bool
	directWake  chan struct{}
	directReady chan struct{}
	readyOnce   sync.Once
	catalog     atomic.Pointer[catalogSet] // catalog.go
	done        chan struct{}
	syncDone    chan struct{}
	syncing     atomic.Bool

	httpSrv   *mhttp.Server // set by Routes
	closeOnce sync.Once
}

// New builds the endpoints. Mount them with Routes; stop them with Close.
func New(opts Options) *Endpoint {
	opts.defaults()
	e := &Endpoint{opts: opts, log: opts.Logger, sessions: opts.Sessions, done: make(chan struct{}), syncDone: make(chan struct{}),
		directWake: make(chan struct{}, 1), directReady: make(chan struct{})}
	e.main = server.NewMCPServer("mcpproxy", opts.Version, append([]server.ServerOption{
		server.WithToolCapabilities(false),
		server.WithRecovery(),
		server.WithLogger(opts.Logger),
		server.WithInstructions(mainInstructions),
		server.WithHooks(e.sessionHooks()),
	}, e.catalogOptions()...)...)
	e.main.AddTools(e.mainTools()...)
	e.all = server.NewMCPServer("mcpproxy", opts.Version, append([]server.ServerOption{
		server.WithToolCapabilities(true),
		server.WithToolFilter(e.scopeFilter),
		server.WithRecovery(),
		server.WithLogger(opts.Logger),
		server.WithInstructions(directInstructions),
		server.WithHooks(e.sessionHooks()),
	}, e.catalogOptions()...)...)
	e.all.AddTools(e.mainTools()...)
	var mainIDs, directIDs, allIDs *idManager
	e.mainHTTP, mainIDs = e.newHTTP(e.main, "/mcp")
	e.directHTTP, directIDs = e.newHTTP(e.all, "/mcp")
	e.allHTTP, allIDs = e.newHTTP(e.all, "/mcp/all")
	opts.Sessions.OnIdleClose("/mcp", func(id string) {
		// A /mcp session lives in one of the two handlers, as the mode was when it began.
		mainIDs.purge(id)
		directIDs.purge(id)
	})
	opts.Sessions.OnIdleClose("/mcp/all", allIDs.purge)
	return e
}

// newHTTP wraps an MCPServer in a streamable HTTP handler whose session ids come from the
// sessions actor.
func (e *Endpoint) newHTTP(srv *server.MCPServer, endpoint string) (*server.StreamableHTTPServer, *idManager) {
	ids := &idManager{s: e.sessions, endpoint: endpoint}
	opts := []server.StreamableHTTPOption{
		server.WithSessionIdManagerResolver(ids),
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
	return h, ids
}

// sessionHooks record the client of each session and count its tool calls.
func (e *Endpoint) sessionHooks() *server.Hooks {
	hooks := &server.Hooks{}
	hooks.AddAfterInitialize(func(ctx context.Context, _ any, req *mcp.InitializeRequest, _ *mcp.InitializeResult) {
		if s := server.ClientSessionFromContext(ctx); s != nil && req != nil {
			e.sessions.SetClient(s.SessionID(), req.Params.ClientInfo)
			if caller, ok := actors.CallerFrom(ctx); ok {
				e.sessions.BindCredential(s.SessionID(), caller.Credential)
			}
		}
	})
	hooks.AddBeforeCallTool(func(ctx context.Context, _ any, _ *mcp.CallToolRequest) {
		if s := server.ClientSessionFromContext(ctx); s != nil {
			e.sessions.CountCall(s.SessionID())
		}
	})
	e.catalogHooks(hooks)
	return hooks
}

// Attach hands the endpoint the HTTP server whose route table mounts it (mhttp.Options.MCP):
// its live settings, key check and error writer. New calls it before serving.
//
// It starts keeping the direct tools in step with the registry (direct.go), which reads the
// live settings (tool_name_separator).
func (e *Endpoint) Attach(s *mhttp.Server) {
	e.httpSrv = s
	if e.syncing.CompareAndSwap(false, true) {
		go e.syncDirect()
	}
}

// ServeMain handles /mcp: the proxy's own tools, or with mcp_mode direct every tool as on
// /mcp/all. The mode is read when each request arrives: a session begun in the other mode is
// unknown to this one's handler (404), and its client starts a new session.
func (e *Endpoint) ServeMain(c *gin.Context) {
	h := e.mainHTTP
	if e.httpSrv != nil && e.httpSrv.Settings().MCPMode == config.MCPModeDirect {
		h = e.directHTTP
		e.useDirect(c.Request.Context())
	}
	e.serveMCP(c, "/mcp", h)
}

// ServeAll handles /mcp/all: every tool agents may reach, each as itself (direct.go).
func (e *Endpoint) ServeAll(c *gin.Context) {
	e.useDirect(c.Request.Context())
	e.serveMCP(c, "/mcp/all", e.allHTTP)
}

// ServePassthrough handles /mcp/server/{name}: one upstream as if connected directly.
func (e *Endpoint) ServePassthrough(c *gin.Context) { e.servePassthrough(c) }

var _ mhttp.MCPEndpoint = (*Endpoint)(nil)

// Codes the http package maps to 401 and 405 (its table decides the status).
const (
	codeUnauthorized     actors.Code = "UNAUTHORIZED"
	codeMethodNotAllowed actors.Code = "METHOD_NOT_ALLOWED"
)

// authorized checks the API key when require_mcp_auth is on, and answers 401 if it fails.
//
// An agent token (Authorization: Bearer or X-API-Key, never ?apikey=) is checked whatever
// require_mcp_auth says: the caller is the token (Credential its name, Scope its scope),
// which the call path enforces; one that is unknown, revoked or expired gets 401, so an
// agent whose token was revoked learns it even where no key is needed.
//
// One exception: a DELETE that names a live session of this endpoint may end it without the
// key. mcp-go's client sends its closing DELETE without the headers it was configured with,
// so its sessions would otherwise stay open until they idle out; and the session id, 130
// random bits handed out only in answer to a keyed initialize, proves as much as the key
// for ending that one session.
//
// An authorized request's context carries its actors.Caller (the credential used and the
// session it names), which the call path reads.
func (e *Endpoint) authorized(c *gin.Context, endpoint string) bool {
	r := c.Request
	withCaller := func(credential string) bool {
		caller := actors.Caller{Credential: credential, SessionID: r.Header.Get(server.HeaderKeySessionID)}
		c.Request = r.WithContext(actors.WithCaller(r.Context(), caller))
		return true
	}
	if tok := mhttp.AgentTokenFrom(r); tok != "" {
		caller, ok := e.httpSrv.AgentToken(r.Context(), tok)
		if !ok {
			e.httpSrv.WriteError(c, actors.Errorf(codeUnauthorized, "unknown, revoked or expired agent token"))
			return false
		}
		caller.SessionID = r.Header.Get(server.HeaderKeySessionID)
		c.Request = r.WithContext(actors.WithCaller(r.Context(), caller))
		return true
	}
	if !e.httpSrv.Settings().RequireMCPAuth {
		return withCaller(actors.CredentialNone)
	}
	if e.httpSrv.KeyOK(r) {
		return withCaller(actors.CredentialAdmin)
	}
	if r.Method == http.MethodDelete && e.sessions.Live(r.Context(), r.Header.Get(server.HeaderKeySessionID), endpoint) {
		return withCaller(actors.CredentialNone)
	}
	e.httpSrv.WriteError(c, actors.Errorf(codeUnauthorized, "missing or wrong API key"))
	return false
}

// serveMCP handles ANY /mcp and /mcp/all with h. Before mcp-go sees a request, the session it names is
// checked (so that an unknown or closed id gets 404 on every method, GET included) and
// accounted for, so that a session with a request in flight or an open stream is never
// idle; closing the session ends its GET stream.
func (e *Endpoint) serveMCP(c *gin.Context, endpoint string, h *server.StreamableHTTPServer) {
	if !e.authorized(c, endpoint) || !e.boundBody(c) {
		return
	}
	r := c.Request
	id := r.Header.Get(server.HeaderKeySessionID)
	if id == "" && r.Method == http.MethodGet {
		// mcp-go would mint a session for a GET without one; a stream belongs to an
		// initialized session.
		e.httpSrv.WriteError(c, errGETNeedsSession)
		return
	}
	if id != "" && r.Method == http.MethodDelete && !e.sessions.Live(r.Context(), id, endpoint) {
		// mcp-go answers 200 to a DELETE of a session it does not know.
		e.httpSrv.WriteError(c, actors.Errorf(actors.CodeNotFound, "MCP session %q not found or closed", id))
		return
	}
	if id != "" && r.Method != http.MethodDelete {
		closed, err := e.sessions.Begin(r.Context(), id, endpoint)
		if err != nil {
			e.httpSrv.WriteError(c, err)
			return
		}
		defer e.sessions.End(id)
		ctx := context.WithValue(r.Context(), checkedKey{}, id)
		ctx = context.WithValue(ctx, endpointKey{}, endpoint)
		if r.Method == http.MethodGet {
			var cancel context.CancelFunc
			ctx, cancel = context.WithCancel(ctx)
			defer cancel()
			go func() {
				select {
				case <-closed:
					cancel()
				case <-ctx.Done():
				}
			}()
		}
		r = r.WithContext(ctx)
	}
	if id == "" {
		r = r.WithContext(context.WithValue(r.Context(), endpointKey{}, endpoint))
	}
	h.ServeHTTP(c.Writer, r)
}

// endpointKey carries, in a request's context, the endpoint it came to, for its activity
// records.
type endpointKey struct{}

var errGETNeedsSession = actors.Errorf(actors.CodeInvalidArgument, "a GET stream needs the %s header of an initialized session", server.HeaderKeySessionID)

// boundBody reads a POST body with the MaxBody bound (mcp-go reads it without one), through
// the http package's one body reader, so that an oversized one is a clean 413 and a slow
// one a 408; false if it answered.
func (e *Endpoint) boundBody(c *gin.Context) bool {
	r := c.Request
	if r.Method != http.MethodPost || r.Body == nil {
		return true
	}
	data, err := mhttp.ReadBody(c, e.opts.MaxBody)
	if err != nil {
		e.httpSrv.WriteError(c, err)
		return false
	}
	r.Body = io.NopCloser(bytes.NewReader(data))
	return true
}

// PassthroughSessions is the number of open agent sessions on /mcp/server/{name}, each of
// which holds a connection of its own to its server.
func (e *Endpoint) PassthroughSessions() int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	n, _ := e.sessions.PassthroughCount(ctx)
	return n
}

// Close ends every session (waiting until the passthrough sessions' connections are
// closed, bounded by ctx) and stops the background work; the HTTP servers must have
// stopped first. It is a daemon stopper.
func (e *Endpoint) Close(ctx context.Context) {
	e.closeOnce.Do(func() {
		close(e.done)
		if e.syncing.Load() {
			<-e.syncDone
		}
		for _, h := range []*server.StreamableHTTPServer{e.mainHTTP, e.directHTTP, e.allHTTP} {
			if err := h.Shutdown(ctx); err != nil {
				e.log.Debug("closing MCP sessions", "err", err)
			}
		}
		if err := e.sessions.CloseAll(ctx); err != nil {
			e.log.Warn("MCP sessions did not close in time", "err", err)
		}
	})
}
