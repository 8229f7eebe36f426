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
	Diagnostics(ctx context.Context) (actors.Diagnostics, error)
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
