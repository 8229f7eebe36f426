package http

import (
	"io"
	"net/http"
	"path"
	"time"

	"github.com/gin-gonic/gin"
	swaggerfiles "github.com/swaggo/files/v2"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/oas"
)

// The API documentation: Swagger UI at /swagger/, the OpenAPI document (oas.Spec) at
// /swagger/swagger.yaml, and the UI's scripts and styles at /swagger/{file}, from the
// Swagger UI distribution that github.com/swaggo/files/v2 embeds. Everything is served from
// the binary, so the UI works offline. The routes are open: reading the documentation
// needs no key, and "Try it out" asks for one (or takes ?apikey=).

// swaggerIndexHTML is the UI page. The distribution's own index.html loads an initializer
// that points at the Petstore example on the internet, so the page and its initializer are
// ours; the assets they load are the distribution's.
const swaggerIndexHTML = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>mcpproxy API</title>
<link rel="stylesheet" href="swagger-ui.css">
<link rel="stylesheet" href="index.css">
<link rel="icon" type="image/png" href="favicon-32x32.png" sizes="32x32">
<link rel="icon" type="image/png" href="favicon-16x16.png" sizes="16x16">
</head>
<body>
<div id="swagger-ui"></div>
<script src="swagger-ui-bundle.js"></script>
<script src="swagger-ui-standalone-preset.js"></script>
<script src="swagger-initializer.js"></script>
</body>
</html>
`

// swaggerInitializerJS starts Swagger UI on our document. validatorUrl null keeps the UI
// from sending the document to an online validator. A key given as ?apikey= pre-authorizes
// "Try it out" and is then taken out of the address bar, so that it stays out of the history.
const swaggerInitializerJS = `window.onload = function () {
  var params = new URLSearchParams(window.location.search);
  var key = params.get("apikey");
  if (key !== null) {
    params.delete("apikey");
    var rest = params.toString();
    window.history.replaceState(null, "", window.location.pathname + (rest ? "?" + rest : "") + window.location.hash);
  }
  window.ui = SwaggerUIBundle({
    url: "swagger.yaml",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout",
    onComplete: function () {
      if (key) {
        window.ui.preauthorizeApiKey("ApiKeyHeader", key);
      }
    }
  });
};
`

// swaggerCSP allows only this origin: the page must not load anything from a CDN. Swagger UI
// sets inline styles and shows data: images, hence those two allowances.
const swaggerCSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"

// swaggerTypes are the types of the distribution's files, by extension; set explicitly so
// that they do not depend on the machine's MIME tables.
var swaggerTypes = map[string]string{
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
	".html": "text/html; charset=utf-8",
	".png":  "image/png",
	".map":  "application/json",
}

// started stands in for the files' modification time (embedded files have none), so that
// conditional requests work within one daemon's life.
var swaggerModTime = time.Now()

// swaggerIndex handles GET /swagger/.
func swaggerIndex(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", swaggerCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Cache-Control", "no-cache")
	c.Data(http.StatusOK, "text/html; charset=utf-8", []byte(swaggerIndexHTML))
}

// swaggerSpec handles GET /swagger/swagger.yaml.
func swaggerSpec(c *gin.Context) {
	c.Writer.Header().Set("Cache-Control", "no-cache")
	c.Data(http.StatusOK, "application/yaml; charset=utf-8", oas.Spec)
}

// swaggerAsset handles GET /swagger/{file}: our initializer, or a file of the distribution.
func (s *Server) swaggerAsset(c *gin.Context) {
	name := c.Param("file")
	h := c.Writer.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	if name == "swagger-initializer.js" {
		h.Set("Cache-Control", "no-cache")
		c.Data(http.StatusOK, swaggerTypes[".js"], []byte(swaggerInitializerJS))
		return
	}
	ctype, known := swaggerTypes[path.Ext(name)]
	if !known {
		s.writeError(c, errorf(actors.CodeNotFound, "no file %q in Swagger UI", name))
		return
	}
	f, err := swaggerfiles.FS.Open(name)
	if err != nil {
		s.writeError(c, errorf(actors.CodeNotFound, "no file %q in Swagger UI", name))
		return
	}
	defer f.Close()
	rs, ok := f.(io.ReadSeeker)
	if !ok {
		s.writeError(c, errorf(actors.CodeInternal, "embedded file %q is not seekable", name))
		return
	}
	if st, err := f.Stat(); err != nil || st.IsDir() {
		s.writeError(c, errorf(actors.CodeNotFound, "no file %q in Swagger UI", name))
		return
	}
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", "no-cache")
	http.ServeContent(c.Writer, c.Request, name, swaggerModTime, rs)
}
