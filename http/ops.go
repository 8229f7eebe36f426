package http

import (
	"context"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/doctor"
	"github.com/mcpproxy/mcpproxy/actors/upstream"
)

// OpsBackend answers the operations routes: info, diagnostics, doctor and Docker status. The
// daemon implements it; handler tests can fake it.
type OpsBackend interface {
	Info(ctx context.Context) (Info, error)
	Diagnostics(ctx context.Context) (Diagnostics, error)
	Doctor(ctx context.Context) (doctor.Report, error)
	DockerStatus(ctx context.Context) (DockerStatus, error)
}

// Info is the answer of GET /api/v1/info: what runs and where.
type Info struct {
	Version    string    `json:"version"`
	Commit     string    `json:"commit"`
	GoVersion  string    `json:"go_version"`
	OS         string    `json:"os"`
	Arch       string    `json:"arch"`
	PID        int       `json:"pid"`
	StartedAt  time.Time `json:"started_at"`
	Listen     string    `json:"listen"`
	DataDir    string    `json:"data_dir"`
	ConfigPath string    `json:"config_path"`
	SocketPath string    `json:"socket_path"`
	// Endpoints are the URLs of the daemon's surfaces: api, mcp, events, swagger, dashboard,
	// socket.
	Endpoints map[string]string `json:"endpoints"`
}

// Diagnostics is the answer of GET /api/v1/diagnostics: runtime figures for troubleshooting.
type Diagnostics struct {
	// ServersInError are the servers in error or backoff, with their errors and since when.
	ServersInError []ServerInError `json:"servers_in_error"`
	Goroutines     int             `json:"goroutines"`
	Memory         Memory          `json:"memory"`
	Actors         ActorCounts     `json:"actors"`
	// Events are the /events hub's counters: subscribers and dropped events.
	Events actors.HubStats `json:"events"`
	Store  StoreStats      `json:"store"`
	// Uptime is in seconds.
	Uptime int64 `json:"uptime"`
}

// ServerInError is one server that is not working.
type ServerInError struct {
	Name       string       `json:"name"`
	State      actors.State `json:"state"`
	LastError  string       `json:"last_error"`
	RetryCount int          `json:"retry_count"`
	// Since is when the server entered error or backoff.
	Since *time.Time `json:"since"`
}

// Memory figures, in bytes. RSS is the resident set size from /proc/self/status (0 where
// that is not available).
type Memory struct {
	HeapAlloc uint64 `json:"heap_alloc"`
	HeapInuse uint64 `json:"heap_inuse"`
	HeapSys   uint64 `json:"heap_sys"`
	Sys       uint64 `json:"sys"`
	RSS       uint64 `json:"rss"`
	NumGC     uint32 `json:"num_gc"`
}

// ActorCounts counts live actors: all of them (including pending request futures), and the
// upstream actors (one per server that is not disabled).
type ActorCounts struct {
	Total     int `json:"total"`
	Upstreams int `json:"upstreams"`
}

// StoreStats describe the pebble store.
type StoreStats struct {
	// DiskSize is the bytes the store uses on disk.
	DiskSize int64 `json:"disk_size"`
}

// DockerStatus is the answer of GET /api/v1/docker/status.
type DockerStatus struct {
	upstream.DockerStatus
	Isolation DockerIsolation `json:"isolation"`
	// IsolatedServers are the stdio servers configured to run in Docker.
	IsolatedServers []string `json:"isolated_servers"`
}

// DockerIsolation is the global docker_isolation setting.
type DockerIsolation struct {
	Enabled      bool   `json:"enabled"`
	DefaultImage string `json:"default_image"`
}

// OpsRoutes is the route plug-in for GET /api/v1/info, /diagnostics, /doctor and
// /docker/status (all keyed).
func OpsRoutes(b OpsBackend) func(s *Server, open, keyed *gin.RouterGroup) {
	return func(s *Server, _, keyed *gin.RouterGroup) {
		api := keyed.Group("/api/v1")
		api.GET("/info", opsHandler(s, b.Info))
		api.GET("/diagnostics", opsHandler(s, b.Diagnostics))
		api.GET("/doctor", opsHandler(s, b.Doctor))
		api.GET("/docker/status", opsHandler(s, b.DockerStatus))
	}
}

// opsHandler serves one read-only operations route: one backend call, its value as JSON.
// The doctor answers 200 also when unhealthy: the report is the answer, not an error.
func opsHandler[T any](s *Server, get func(context.Context) (T, error)) gin.HandlerFunc {
	return func(c *gin.Context) {
		v, err := get(c.Request.Context())
		if err != nil {
			s.writeError(c, err)
			return
		}
		c.JSON(http.StatusOK, v)
	}
}
