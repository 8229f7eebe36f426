package http

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
)

// MetricsSink is what the HTTP layer needs from the metrics (*metrics.Metrics): the
// /metrics handler and the count of every request.
type MetricsSink interface {
	Handler() http.Handler
	HTTP(route, method string, status int, d time.Duration)
}

// countRequests counts every request by its route pattern (never its path: names and ids
// would make a series each), method and status, with its latency.
func (s *Server) countRequests(c *gin.Context) {
	start := time.Now()
	c.Next()
	s.opts.Metrics.HTTP(c.FullPath(), c.Request.Method, c.Writer.Status(), time.Since(start))
}

// metrics handles GET /metrics: behind the key unless metrics.open says otherwise (live).
func (s *Server) metrics(h http.Handler) gin.HandlerFunc {
	return func(c *gin.Context) {
		if !s.Settings().MetricsOpen && !s.KeyOK(c.Request) {
			s.writeError(c, errorf(codeUnauthorized, "missing or wrong API key"))
			return
		}
		h.ServeHTTP(c.Writer, c.Request)
	}
}
