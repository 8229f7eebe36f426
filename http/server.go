// Package http serves mcpproxy's HTTP surface with gin: the REST API under /api/v1, health
// and readiness, and the mount points of the event stream, the MCP endpoints, Swagger UI and
// the dashboard. Handlers are thin: they parse, make one call to the Backend, and write;
// every error goes through one table (errors.go).
//
// # Security
//
// Everything but /healthz, /readyz, /swagger/, the dashboard shell, GET /metrics when the
// config says "metrics": {"open": true}, and GET /oauth/callback
// (the OAuth redirect: it accepts only the state of a login in progress, once, within ten
// minutes, so it gives nothing to a caller without one) needs the API key
// (X-API-Key, Authorization: Bearer, or ?apikey=), compared in constant time. Requests that
// arrive over the Unix socket need no key. An agent token (actors.AgentTokenPrefix) opens
// only the MCP endpoints: on every keyed route a valid one gets 403 FORBIDDEN (requireKey).
// The MCP endpoints check the key themselves:
// require_mcp_auth: false opens them, and a DELETE that names a live MCP session may end
// that session without the key (http/mcpserver). While listening on loopback, a Host header that is
// not a loopback name (or listed in trusted_hosts) gets 403, and so does a cross-site Origin:
// that is the DNS-rebinding guard.
//
// Slow clients: a request's headers must arrive within Options.HeaderTimeout (10 s) and
// the whole request within Options.ReadTimeout (30 s), the http.Server's bounds (Bounds);
// they bound reading the request, never the response (bodies.go). The key is checked
// before a handler reads any body, and a request refused before its body was read has its
// connection closed instead of drained (bodies.go); a 401 always closes it.
//
// # Concurrency
//
// Settings that a config apply can change (API key, trusted hosts, limits) are swapped
// atomically with SetSettings; everything else is fixed at New.
package http

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/r3labs/sse/v2"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/config"
)

// Backend is what the handlers need from the actors: a small interface so that handler
// tests need no actor system. *actors.Client implements it.
type Backend interface {
	Status(ctx context.Context) (actors.Status, error)
	Servers(ctx context.Context) ([]actors.Server, error)
	ServerList(ctx context.Context) (actors.ServerList, error)
	Server(ctx context.Context, name string) (actors.Server, error)
	SetEnabled(ctx context.Context, name string, enabled bool) (actors.Server, error)
	SetQuarantined(ctx context.Context, name string, quarantined bool) (actors.Server, error)
	Restart(ctx context.Context, name string) (actors.Server, error)
	Bulk(ctx context.Context, op string, sel actors.Selection) (actors.BulkResult, error)
	Operation(ctx context.Context, id string) (actors.Operation, error)
	ServerTools(ctx context.Context, name string) (actors.ServerTools, error)
	ApproveTools(ctx context.Context, name string, tools []string, all bool) (actors.ServerTools, error)
	SetToolDisabled(ctx context.Context, name, tool string, disabled bool) (actors.ServerTools, error)
	SearchTools(ctx context.Context, query string, limit int) ([]actors.ToolHit, int, error)
	Config(ctx context.Context) (*config.Config, error)
	Apply(ctx context.Context, cfg *config.Config, source string) (actors.ApplyResult, error)
	AddServer(ctx context.Context, entry config.ServerConfig) (actors.EditResult, error)
	UpdateServer(ctx context.Context, name string, patch []byte) (actors.EditResult, error)
	RemoveServer(ctx context.Context, name string) (actors.EditResult, error)
	ImportServers(ctx context.Context, entries []config.ServerConfig) (actors.ImportResult, error)
	Logs(ctx context.Context, name string, tail int) ([]actors.LogLine, error)
	FollowLogs(ctx context.Context, name string, tail int) (*actors.LogFollow, error)
}

var _ Backend = (*actors.Client)(nil)

// Settings are the live settings a config apply may change.
type Settings struct {
	APIKey         string
	TrustedHosts   []string
	RequireMCPAuth bool
	ToolsLimit     int
	// MCPMode is what /mcp offers (config.MCPModeSearch or MCPModeDirect) and
	// ToolNameSeparator joins server and tool names on /mcp/all.
	MCPMode, ToolNameSeparator string
	// MetricsOpen serves GET /metrics without the key (config metrics.open).
	MetricsOpen bool
}

// SettingsFrom takes the live settings out of a config.
func SettingsFrom(c *config.Config) Settings {
	return Settings{
		APIKey: c.APIKey, TrustedHosts: append([]string(nil), c.TrustedHosts...),
		RequireMCPAuth: c.MCPAuthRequired(), ToolsLimit: c.ToolsLimit, MetricsOpen: c.Metrics.Open,
		MCPMode: c.MCPMode, ToolNameSeparator: c.ToolNameSeparator,
	}
}

// Options configure New. Backend and Settings are required; the rest is optional.
type Options struct {
	Backend  Backend
	Settings Settings
	// Version is shown by /api/v1/status.
	Version string
	// ConfigPath is shown by GET /api/v1/config.
	ConfigPath string
	Logger     *slog.Logger
	// Ready reports readiness for /readyz. Default: always ready.
	Ready func() bool
	// Loopback says the TCP listener is on a loopback address, which turns the Host check on.
	Loopback bool
	// Started is when the daemon started, for uptime.
	Started time.Time
	// HeaderTimeout bounds reading a request's line and headers. Default
	// DefaultHeaderTimeout (10 s).
	HeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, headers and body: a body still arriving
	// then gets 408 REQUEST_TIMEOUT and its connection is closed. It does not bound a
	// response (see bodies.go). Default DefaultReadTimeout (30 s).
	ReadTimeout time.Duration
	// EventsBuffer is how many events may wait in one /events subscriber's stream before
	// the hub drops the subscriber (64 more, as r3labs' subscriber channel holds, besides
	// the socket's buffers). Default DefaultEventsBuffer (256).
	EventsBuffer int

	// The surfaces beside the core REST API, each behind the small interface its handlers
	// need. A nil one is not mounted (handler tests mount only what they test); the daemon
	// sets them all. The dashboard and Swagger UI need nothing and are always mounted. Every
	// route is named in one table, routes.go.
	Events   EventsHub      // GET and HEAD /events
	Ops      OpsBackend     // /api/v1/info, /diagnostics, /doctor, /docker/status
	Secrets  SecretsBackend // /api/v1/secrets...
	Sessions SessionSource  // /api/v1/sessions...
	MCP      MCPEndpoint    // /mcp and /mcp/server/{name}
	OAuth    OAuthBackend   // POST /api/v1/servers/{name}/login, /logout; GET /oauth/callback
	Activity ActivitySource // /api/v1/activity...
	Metrics  MetricsSink    // GET /metrics, and every request counted
	// Tokens answers /api/v1/tokens... and checks agent tokens: on the MCP endpoints
	// (AgentToken), and on the keyed routes, which refuse them with 403.
	Tokens TokensBackend
}

// Server is the gin engine and its settings.
type Server struct {
	opts     Options
	engine   *gin.Engine
	settings atomic.Pointer[Settings]
	log      *slog.Logger
	// servers caches the JSON of GET /api/v1/servers for one registry version.
	servers atomic.Pointer[cachedJSON]
	// streams holds the /events subscribers' streams served by r3labs (events.go), and
	// writers the connections taken off net/http (events_conn.go); nil without Events.
	streams *sse.Server
	writers *eventWriters
	// dashboard holds the dashboard's files (dashboard.go).
	dashboard dashboardFiles
}

// cachedJSON is a response body built for one version of the registry's server list.
type cachedJSON struct {
	version uint64
	body    []byte
}

// New builds the engine with every route.
func New(opts Options) *Server {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Ready == nil {
		opts.Ready = func() bool { return true }
	}
	if opts.Started.IsZero() {
		opts.Started = time.Now()
	}
	if opts.HeaderTimeout <= 0 {
		opts.HeaderTimeout = DefaultHeaderTimeout
	}
	if opts.ReadTimeout <= 0 {
		opts.ReadTimeout = DefaultReadTimeout
	}
	if opts.EventsBuffer <= 0 {
		opts.EventsBuffer = DefaultEventsBuffer
	}
	s := &Server{opts: opts, log: opts.Logger, dashboard: loadDashboard()}
	if opts.Events != nil {
		s.streams = newEventStreams(opts.Events, opts.EventsBuffer)
		s.writers = newEventWriters(opts.Events, opts.EventsBuffer)
	}
	s.SetSettings(opts.Settings)
	gin.SetMode(gin.ReleaseMode)
	r := gin.New()
	r.HandleMethodNotAllowed = true
	r.ContextWithFallback = true
	r.RemoveExtraSlash = false
	_ = r.SetTrustedProxies(nil)
	r.Use(s.watchBody, s.recovery, s.logRequests)
	if opts.Metrics != nil {
		r.Use(s.countRequests)
	}
	r.Use(s.guardHost)
	r.NoRoute(func(c *gin.Context) {
		s.writeError(c, errorf(actors.CodeNotFound, "no route for %s %s", c.Request.Method, c.Request.URL.Path))
	})
	r.NoMethod(func(c *gin.Context) {
		s.writeError(c, errorf(codeMethodNotAllowed, "method %s not allowed on %s", c.Request.Method, c.Request.URL.Path))
	})
	s.engine = r
	open := r.Group("")
	keyed := r.Group("", s.requireKey)
	if opts.MCP != nil {
		opts.MCP.Attach(s)
	}
	s.routes(open, keyed)
	return s
}

// Handler is the http.Handler for the TCP listener and the Unix socket.
func (s *Server) Handler() http.Handler { return s.engine }

// Bounds are the read bounds for the http.Server that serves Handler: its
// ReadHeaderTimeout and ReadTimeout (Options.HeaderTimeout and ReadTimeout).
func (s *Server) Bounds() (header, read time.Duration) {
	return s.opts.HeaderTimeout, s.opts.ReadTimeout
}

// Engine exposes the gin engine (route listing in contract tests).
func (s *Server) Engine() *gin.Engine { return s.engine }

// SetSettings swaps the live settings (after a config apply).
func (s *Server) SetSettings(st Settings) {
	if st.ToolsLimit <= 0 {
		st.ToolsLimit = config.DefaultToolsLimit
	}
	if st.MCPMode == "" {
		st.MCPMode = config.MCPModeSearch
	}
	if st.ToolNameSeparator == "" {
		st.ToolNameSeparator = config.DefaultToolNameSeparator
	}
	s.settings.Store(&st)
}

// Settings returns the live settings.
func (s *Server) Settings() Settings { return *s.settings.Load() }

// WriteError writes err as the error envelope, for handlers outside this package (the MCP endpoints).
func (s *Server) WriteError(c *gin.Context, err error) { s.writeError(c, err) }

// unixConnKey marks requests that came over the Unix socket.
type unixConnKey struct{}

// ConnContext marks connections from the Unix socket so they need no API key, and keeps
// the server's base context for the /events streams that outlive their handler (ended
// when it is cancelled, events_conn.go); pass it as http.Server.ConnContext.
func ConnContext(ctx context.Context, c net.Conn) context.Context {
	ctx = context.WithValue(ctx, baseCtxKey{}, ctx)
	if _, ok := c.(*net.UnixConn); ok {
		return context.WithValue(ctx, unixConnKey{}, true)
	}
	return ctx
}

// ViaSocket reports whether the request came over the Unix socket.
func ViaSocket(r *http.Request) bool {
	v, _ := r.Context().Value(unixConnKey{}).(bool)
	return v
}

func (s *Server) recovery(c *gin.Context) {
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("handler panic", "path", c.Request.URL.Path, "panic", p)
			if !c.Writer.Written() {
				s.writeError(c, errorf(actors.CodeInternal, "panic: %v", p))
			}
		}
	}()
	c.Next()
}

// logRequests logs each request at debug level; the query string is left out so that an
// ?apikey= never reaches a log line.
func (s *Server) logRequests(c *gin.Context) {
	start := time.Now()
	c.Next()
	if s.log.Enabled(c.Request.Context(), slog.LevelDebug) {
		s.log.Debug("http", "method", c.Request.Method, "path", c.Request.URL.Path,
			"status", c.Writer.Status(), "dur", time.Since(start))
	}
}

// isLoopbackHost reports whether host (without port) names this machine.
func isLoopbackHost(host string) bool {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

func (s *Server) trusted(host string) bool {
	if isLoopbackHost(host) {
		return true
	}
	for _, t := range s.Settings().TrustedHosts {
		if strings.EqualFold(hostOnly(t), host) {
			return true
		}
	}
	return false
}

// guardHost is the DNS-rebinding guard: on a loopback listener, the Host header and any
// Origin header must name this machine or a trusted host.
func (s *Server) guardHost(c *gin.Context) {
	if !s.opts.Loopback || ViaSocket(c.Request) {
		c.Next()
		return
	}
	if !s.trusted(hostOnly(c.Request.Host)) {
		s.writeError(c, errorf(codeForbidden, "host %q is not allowed", c.Request.Host))
		return
	}
	if origin := c.GetHeader("Origin"); origin != "" && origin != "null" {
		host := origin
		if i := strings.Index(host, "://"); i >= 0 {
			host = host[i+3:]
		}
		if !s.trusted(hostOnly(strings.TrimSuffix(host, "/"))) {
			s.writeError(c, errorf(codeForbidden, "origin %q is not allowed", origin))
			return
		}
	} else if origin == "null" {
		s.writeError(c, errorf(codeForbidden, "origin %q is not allowed", origin))
		return
	}
	c.Next()
}

// APIKeyFrom returns the key a request presents: X-API-Key, Authorization: Bearer, or
// ?apikey=.
func APIKeyFrom(r *http.Request) string {
	if k := r.Header.Get("X-API-Key"); k != "" {
		return k
	}
	if b := bearer(r); b != "" {
		return b
	}
	return r.URL.Query().Get("apikey")
}

// bearer is the credential of an Authorization: Bearer header, "" if none.
func bearer(r *http.Request) string {
	if a := r.Header.Get("Authorization"); len(a) > 7 && strings.EqualFold(a[:7], "bearer ") {
		return strings.TrimSpace(a[7:])
	}
	return ""
}

// KeyOK reports whether the request may pass: it came over the socket or presents the key.
func (s *Server) KeyOK(r *http.Request) bool {
	return ViaSocket(r) || keysEqual(APIKeyFrom(r), s.Settings().APIKey)
}

// requireKey guards the keyed routes, so that every route added there inherits it: the API
// key passes, a valid agent token gets 403 (it is for the MCP endpoints only), anything
// else 401.
func (s *Server) requireKey(c *gin.Context) {
	if !s.KeyOK(c.Request) {
		if s.refuseAgentToken(c) {
			return
		}
		s.writeError(c, errorf(codeUnauthorized, "missing or wrong API key"))
		return
	}
	c.Next()
}

// maxBody is the largest request body, except where a route says otherwise.
const maxBody = 1 << 20

// bindJSON decodes the body into v; a body over limit is 413, bad JSON is 400.
func bindJSON(c *gin.Context, v any, limit int64, required bool) error {
	data, err := ReadBody(c, limit)
	if err != nil {
		return err
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		if required {
			return errorf(actors.CodeInvalidArgument, "a JSON body is required")
		}
		return nil
	}
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(actors.CodeInvalidArgument, "bad JSON body: %v", err)
	}
	if dec.More() {
		return errorf(actors.CodeInvalidArgument, "bad JSON body: trailing data")
	}
	return nil
}

// ReadBody reads the raw body up to limit: over it is 413, one that does not arrive within
// the read bound (Options.ReadTimeout) is 408. It is the one body reader of every route,
// the MCP endpoints' included, so the limits answer the same everywhere.
func ReadBody(c *gin.Context, limit int64) ([]byte, error) {
	data, err := io.ReadAll(http.MaxBytesReader(c.Writer, c.Request.Body, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			return nil, errorf(codePayloadTooLarge, "request body is over %d bytes", limit)
		case bodyTimedOut(err):
			return nil, errorf(codeRequestTimeout, "the request body did not arrive in time")
		}
		return nil, errorf(actors.CodeInvalidArgument, "reading body: %v", err)
	}
	return data, nil
}
