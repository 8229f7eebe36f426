package http

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/mcpproxy/mcpproxy/actors"
)

// MCPEndpoint is what the route table needs from the MCP endpoints (http/mcpserver): their
// handlers, and Attach, which hands them the Server for its settings, key check and
// error writer before any request arrives. The endpoints check the key themselves (see the
// package doc), so both are mounted in the open group.
type MCPEndpoint interface {
	Attach(s *Server)
	ServeMain(c *gin.Context)
	ServeAll(c *gin.Context)
	ServePassthrough(c *gin.Context)
}

// routes is the route table: every route the daemon serves, in the open group (no key) or
// the keyed one. Surfaces whose backend is nil in Options are left out.
func (s *Server) routes(open, keyed *gin.RouterGroup) {
	open.GET("/healthz", s.healthz)
	open.GET("/readyz", s.readyz)
	// The dashboard (dashboard.go) and the API documentation (swagger.go) are open: the
	// page asks for the key, and reading the documentation needs none.
	open.GET("/", s.dashboardPage)
	open.HEAD("/", s.dashboardPage)
	open.GET("/dashboard/:file", s.dashboardAsset)
	open.HEAD("/dashboard/:file", s.dashboardAsset)
	open.GET("/swagger/", swaggerIndex)
	open.GET("/swagger/swagger.yaml", swaggerSpec)
	open.GET("/swagger/:file", s.swaggerAsset)
	if s.opts.MCP != nil {
		open.Any("/mcp", s.opts.MCP.ServeMain)
		open.Any("/mcp/all", s.opts.MCP.ServeAll)
		open.Any("/mcp/server/:name", s.opts.MCP.ServePassthrough)
	}
	if b := s.opts.OAuth; b != nil {
		// The authorization server redirects the user's browser here, which has no key;
		// only the state of a login in progress is accepted, once.
		open.GET("/oauth/callback", oauthHandlers{s: s, b: b}.callback)
	}
	if m := s.opts.Metrics; m != nil {
		// In the open group: the handler checks the key itself unless metrics.open.
		open.GET("/metrics", s.metrics(m.Handler()))
	}
	if s.opts.Events != nil {
		// The key by header or ?apikey= (browser EventSource cannot set headers).
		keyed.GET("/events", s.events)
		keyed.HEAD("/events", headEvents)
	}

	api := keyed.Group("/api/v1")
	api.GET("/status", s.getStatus)
	api.GET("/servers", s.listServers)
	api.POST("/servers", s.addServer)
	api.POST("/servers/import", s.importServers)
	api.POST("/servers/enable_all", s.bulk(actors.BulkEnableAll))
	api.POST("/servers/disable_all", s.bulk(actors.BulkDisableAll))
	api.POST("/servers/restart_all", s.bulk(actors.BulkRestartAll))
	api.POST("/servers/reconnect", s.bulk(actors.BulkReconnect))
	api.GET("/operations/:id", s.operation)
	api.GET("/servers/:name", s.getServer)
	api.PATCH("/servers/:name", s.patchServer)
	api.DELETE("/servers/:name", s.deleteServer)
	api.GET("/servers/:name/logs", s.serverLogs)
	api.POST("/servers/:name/enable", s.setEnabled(true))
	api.POST("/servers/:name/disable", s.setEnabled(false))
	api.POST("/servers/:name/quarantine", s.quarantine)
	api.POST("/servers/:name/restart", s.restart)
	api.GET("/servers/:name/tools", s.serverTools)
	api.POST("/servers/:name/tools/approve", s.approveTools)
	api.POST("/servers/:name/tools/:tool/disable", s.setToolDisabled(true))
	api.POST("/servers/:name/tools/:tool/enable", s.setToolDisabled(false))
	api.GET("/tools", s.searchTools)
	api.GET("/config", s.getConfig)
	api.POST("/config/validate", s.validateConfig)
	api.POST("/config/apply", s.applyConfig)

	if b := s.opts.Ops; b != nil {
		api.GET("/info", opsHandler(s, b.Info))
		api.GET("/diagnostics", opsHandler(s, b.Diagnostics))
		api.GET("/doctor", opsHandler(s, b.Doctor))
		api.GET("/docker/status", opsHandler(s, b.DockerStatus))
	}
	if b := s.opts.Secrets; b != nil {
		h := secretsHandlers{s: s, b: b}
		api.GET("/secrets", h.list)
		api.GET("/secrets/:name", h.get)
		api.PUT("/secrets/:name", h.put)
		api.DELETE("/secrets/:name", h.delete)
	}
	if b := s.opts.OAuth; b != nil {
		h := oauthHandlers{s: s, b: b}
		api.POST("/servers/:name/login", h.login)
		api.POST("/servers/:name/logout", h.logout)
	}
	if src := s.opts.Activity; src != nil {
		h := activityHandlers{s: s, src: src}
		api.GET("/activity", h.list)
		api.GET("/activity/export", h.export)
		api.GET("/activity/:id", h.get)
	}
	if b := s.opts.Tokens; b != nil {
		h := tokensHandlers{s: s, b: b}
		api.POST("/tokens", h.create)
		api.GET("/tokens", h.list)
		api.DELETE("/tokens/:name", h.revoke)
	}
	if src := s.opts.Sessions; src != nil {
		h := sessionHandlers{s: s, src: src}
		api.GET("/sessions", h.list)
		api.GET("/sessions/:id", h.get)
	}
}

// healthz handles GET /healthz: the process is alive.
func (s *Server) healthz(c *gin.Context) {
	c.JSON(http.StatusOK, gin.H{"status": "ok"})
}

// readyz handles GET /readyz: 200 once config, store and actors are up, else 503.
func (s *Server) readyz(c *gin.Context) {
	if !s.opts.Ready() {
		s.writeError(c, errorf(actors.CodeUnavailable, "not ready"))
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ready"})
}

type statusResponse struct {
	Status  string               `json:"status"`
	Version string               `json:"version"`
	Uptime  int64                `json:"uptime"`
	Servers actors.StatusServers `json:"servers"`
	Tools   actors.StatusTools   `json:"tools"`
}

// getStatus handles GET /api/v1/status.
func (s *Server) getStatus(c *gin.Context) {
	st, err := s.opts.Backend.Status(c.Request.Context())
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, statusResponse{
		Status: "running", Version: s.opts.Version, Uptime: int64(time.Since(s.opts.Started).Seconds()),
		Servers: st.Servers, Tools: st.Tools,
	})
}

// listServers handles GET /api/v1/servers.
// The body is encoded once per registry version: dashboards poll this route, and encoding
// a hundred servers was most of its cost.
func (s *Server) listServers(c *gin.Context) {
	list, err := s.opts.Backend.ServerList(c.Request.Context())
	if err != nil {
		s.writeError(c, err)
		return
	}
	if cached := s.servers.Load(); cached != nil && cached.version == list.Version {
		c.Data(http.StatusOK, "application/json; charset=utf-8", cached.body)
		return
	}
	body, err := json.Marshal(gin.H{"servers": list.Servers})
	if err != nil {
		s.writeError(c, err)
		return
	}
	s.servers.Store(&cachedJSON{version: list.Version, body: body})
	c.Data(http.StatusOK, "application/json; charset=utf-8", body)
}

// getServer handles GET /api/v1/servers/{name}.
func (s *Server) getServer(c *gin.Context) {
	srv, err := s.opts.Backend.Server(c.Request.Context(), c.Param("name"))
	s.writeServer(c, srv, err)
}

func (s *Server) writeServer(c *gin.Context, srv actors.Server, err error) {
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"server": srv})
}

// setEnabled handles POST /api/v1/servers/{name}/enable and /disable.
func (s *Server) setEnabled(on bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		if _, err := ReadBody(c, maxBody); err != nil {
			s.writeError(c, err)
			return
		}
		srv, err := s.opts.Backend.SetEnabled(c.Request.Context(), c.Param("name"), on)
		s.writeServer(c, srv, err)
	}
}

type quarantineRequest struct {
	Quarantined *bool `json:"quarantined"`
}

// quarantine handles POST /api/v1/servers/{name}/quarantine with {"quarantined": bool}.
func (s *Server) quarantine(c *gin.Context) {
	var req quarantineRequest
	if err := bindJSON(c, &req, maxBody, true); err != nil {
		s.writeError(c, err)
		return
	}
	if req.Quarantined == nil {
		s.writeError(c, errorf(actors.CodeInvalidArgument, "body must say {\"quarantined\": true|false}"))
		return
	}
	srv, err := s.opts.Backend.SetQuarantined(c.Request.Context(), c.Param("name"), *req.Quarantined)
	s.writeServer(c, srv, err)
}

// restart handles POST /api/v1/servers/{name}/restart.
func (s *Server) restart(c *gin.Context) {
	if _, err := ReadBody(c, maxBody); err != nil {
		s.writeError(c, err)
		return
	}
	srv, err := s.opts.Backend.Restart(c.Request.Context(), c.Param("name"))
	s.writeServer(c, srv, err)
}

// bulk handles POST /api/v1/servers/enable_all, disable_all, restart_all and reconnect. The
// body is optional: a Selection of servers, states and a glob; none means every server.
func (s *Server) bulk(op string) gin.HandlerFunc {
	return func(c *gin.Context) {
		var sel actors.Selection
		if err := bindJSON(c, &sel, maxBody, false); err != nil {
			s.writeError(c, err)
			return
		}
		res, err := s.opts.Backend.Bulk(c.Request.Context(), op, sel)
		if err != nil {
			s.writeError(c, err)
			return
		}
		c.JSON(http.StatusOK, res)
	}
}

// operation handles GET /api/v1/operations/{id}: a bulk operation's progress.
func (s *Server) operation(c *gin.Context) {
	op, err := s.opts.Backend.Operation(c.Request.Context(), c.Param("id"))
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, op)
}

// serverTools handles GET /api/v1/servers/{name}/tools.
func (s *Server) serverTools(c *gin.Context) {
	res, err := s.opts.Backend.ServerTools(c.Request.Context(), c.Param("name"))
	s.writeTools(c, res, err)
}

// searchTools handles GET /api/v1/tools?q=&limit=.
func (s *Server) searchTools(c *gin.Context) {
	limit := s.Settings().ToolsLimit
	if v, ok := c.GetQuery("limit"); ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 || n > 1000 {
			s.writeError(c, errorf(actors.CodeInvalidArgument, "limit must be an integer from 1 to 1000"))
			return
		}
		limit = n
	}
	hits, total, err := s.opts.Backend.SearchTools(c.Request.Context(), c.Query("q"), limit)
	if err != nil {
		s.writeError(c, err)
		return
	}
	if hits == nil {
		hits = []actors.ToolHit{}
	}
	c.JSON(http.StatusOK, gin.H{"tools": hits, "total": total})
}
