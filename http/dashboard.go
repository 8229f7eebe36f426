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

// dashboardFiles are the dashboard's files, loaded once at New: the page (served at "/")
// and its scripts and style sheets (under /dashboard/), all served without the API key
// (the page asks for the key and sends it with every API call; it holds no data itself).
type dashboardFiles struct {
	index  dashboardFile
	assets map[string]dashboardFile
}

func loadDashboard() dashboardFiles {
	index, err := loadDashboardFile(dashboard.Index)
	if err != nil {
		panic(err) // the files are embedded at build time; a missing one is a build bug
	}
	d := dashboardFiles{index: index, assets: make(map[string]dashboardFile, len(dashboard.Assets))}
	for _, name := range dashboard.Assets {
		f, err := loadDashboardFile(name)
		if err != nil {
			panic(err)
		}
		d.assets[name] = f
	}
	return d
}

// dashboardPage handles GET and HEAD /: the dashboard's page.
func (s *Server) dashboardPage(c *gin.Context) { serveDashboardFile(c, s.dashboard.index) }

// dashboardAsset handles GET and HEAD /dashboard/{file}: one of the page's scripts or
// style sheets.
func (s *Server) dashboardAsset(c *gin.Context) {
	f, ok := s.dashboard.assets[c.Param("file")]
	if !ok {
		s.writeError(c, errorf(actors.CodeNotFound, "no dashboard file %q", c.Param("file")))
		return
	}
	serveDashboardFile(c, f)
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
