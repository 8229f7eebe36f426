package http

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"path"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/http/dashboard"
)

// dashboardCSP keeps the page to its own script and style sheet and to requests to the
// daemon itself: even a string that escaped the page's textContent discipline could not
// run script or load anything from elsewhere.
const dashboardCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; " +
	"img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

var dashboardTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

// dashboardFile is one embedded file ready to serve.
type dashboardFile struct {
	name        string
	data        []byte
	contentType string
	etag        string
}

func loadDashboardFile(name string) (dashboardFile, error) {
	data, err := dashboard.Files.ReadFile(name)
	if err != nil {
		return dashboardFile{}, fmt.Errorf("dashboard file %s: %w", name, err)
	}
	sum := sha256.Sum256(data)
	// A fixed table rather than mime.TypeByExtension, which reads the system's mime.types
	// and so varies between machines.
	ct, ok := dashboardTypes[path.Ext(name)]
	if !ok {
		ct = "application/octet-stream"
	}
	return dashboardFile{name: name, data: data, contentType: ct, etag: `"` + hex.EncodeToString(sum[:12]) + `"`}, nil
}

// dashboardRoutes serves the dashboard: the page at "/" and its script and style sheet
// under /dashboard/, all without the API key (the page asks for the key and sends it with
// every API call; it holds no data itself).
func (s *Server) dashboardRoutes(open *gin.RouterGroup) {
	index, err := loadDashboardFile(dashboard.Index)
	if err != nil {
		panic(err) // the files are embedded at build time; a missing one is a build bug
	}
	assets := make(map[string]dashboardFile, len(dashboard.Assets))
	for _, name := range dashboard.Assets {
		f, err := loadDashboardFile(name)
		if err != nil {
			panic(err)
		}
		assets[name] = f
	}
	page := func(c *gin.Context) { serveDashboardFile(c, index) }
	open.GET("/", page)
	open.HEAD("/", page)
	asset := func(c *gin.Context) {
		f, ok := assets[c.Param("file")]
		if !ok {
			s.WriteError(c, errorf(actors.CodeNotFound, "no dashboard file %q", c.Param("file")))
			return
		}
		serveDashboardFile(c, f)
	}
	open.GET("/dashboard/:file", asset)
	open.HEAD("/dashboard/:file", asset)
}

// serveDashboardFile writes f with the security headers. The files change only with the
// binary, so browsers revalidate with the ETag rather than cache blindly across upgrades.
func serveDashboardFile(c *gin.Context, f dashboardFile) {
	h := c.Writer.Header()
	h.Set("Content-Type", f.contentType)
	h.Set("Content-Security-Policy", dashboardCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	// The page URL may carry ?apikey= until the script removes it: never send it on.
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.etag)
	http.ServeContent(c.Writer, c.Request, f.name, time.Time{}, bytes.NewReader(f.data))
}
