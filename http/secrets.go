package http

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/config"
)

// Secret is a stored secret as the API shows it: metadata only, never the value.
type Secret struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	// UsedBy are the servers whose config references ${secret:NAME}, sorted.
	UsedBy []string `json:"used_by"`
}

// SecretsBackend answers the secrets routes. Errors carry actors codes (NOT_FOUND for an
// unknown secret). The daemon implements it over the store and the registry.
type SecretsBackend interface {
	Secrets(ctx context.Context) ([]Secret, error)
	Secret(ctx context.Context, name string) (Secret, error)
	// SetSecret stores value and restarts the enabled servers that use the secret; created
	// says it did not exist before.
	SetSecret(ctx context.Context, name, value string) (s Secret, created bool, restarted []string, err error)
	// DeleteSecret deletes the secret and restarts the enabled servers that used it (they go
	// to error, naming the missing secret).
	DeleteSecret(ctx context.Context, name string) (restarted []string, err error)
}

var secretNameRE = regexp.MustCompile(config.RefNamePattern)

// secretResponse is the answer of GET and PUT /api/v1/secrets/{name}. Restarted lists the
// servers a PUT restarted.
type secretResponse struct {
	Secret    Secret   `json:"secret"`
	Restarted []string `json:"restarted,omitempty"`
}

// SecretsRoutes is the route plug-in for /api/v1/secrets (all keyed).
func SecretsRoutes(b SecretsBackend) func(s *Server, open, keyed *gin.RouterGroup) {
	return func(s *Server, _, keyed *gin.RouterGroup) {
		h := secretsHandlers{s: s, b: b}
		api := keyed.Group("/api/v1")
		api.GET("/secrets", h.list)
		api.GET("/secrets/:name", h.get)
		api.PUT("/secrets/:name", h.put)
		api.DELETE("/secrets/:name", h.delete)
	}
}

type secretsHandlers struct {
	s *Server
	b SecretsBackend
}

// secretName returns the {name} parameter if it could name a secret (config.RefNamePattern), since
// only such names can be referenced as ${secret:NAME}.
func secretName(c *gin.Context) (string, error) {
	name := c.Param("name")
	if !secretNameRE.MatchString(name) {
		return "", errorf(actors.CodeInvalidArgument, "secret name %q must match %s", name, config.RefNamePattern)
	}
	return name, nil
}

// list handles GET /api/v1/secrets.
func (h secretsHandlers) list(c *gin.Context) {
	list, err := h.b.Secrets(c.Request.Context())
	if err != nil {
		h.s.writeError(c, err)
		return
	}
	if list == nil {
		list = []Secret{}
	}
	c.JSON(http.StatusOK, gin.H{"secrets": list})
}

// get handles GET /api/v1/secrets/{name}.
func (h secretsHandlers) get(c *gin.Context) {
	name, err := secretName(c)
	if err != nil {
		h.s.writeError(c, err)
		return
	}
	sec, err := h.b.Secret(c.Request.Context(), name)
	if err != nil {
		h.s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, secretResponse{Secret: sec})
}

// put handles PUT /api/v1/secrets/{name} with body {"value": "..."}: 201 when the secret is
// new, 200 when it replaced one.
func (h secretsHandlers) put(c *gin.Context) {
	name, err := secretName(c)
	if err != nil {
		h.s.writeError(c, err)
		return
	}
	var body struct {
		Value *string `json:"value"`
	}
	if err := bindJSON(c, &body, maxBody, true); err != nil {
		h.s.writeError(c, err)
		return
	}
	switch {
	case body.Value == nil:
		h.s.writeError(c, errorf(actors.CodeInvalidArgument, `the body must be {"value": "..."}`))
		return
	case *body.Value == "":
		h.s.writeError(c, errorf(actors.CodeInvalidArgument, "the secret value must not be empty"))
		return
	case strings.ContainsRune(*body.Value, 0):
		// Values end up in process environments and headers, where NUL cannot go.
		h.s.writeError(c, errorf(actors.CodeInvalidArgument, "the secret value must not contain NUL"))
		return
	}
	sec, created, restarted, err := h.b.SetSecret(c.Request.Context(), name, *body.Value)
	if err != nil {
		h.s.writeError(c, err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	c.JSON(status, secretResponse{Secret: sec, Restarted: restarted})
}

// delete handles DELETE /api/v1/secrets/{name}: 204.
func (h secretsHandlers) delete(c *gin.Context) {
	name, err := secretName(c)
	if err != nil {
		h.s.writeError(c, err)
		return
	}
	if _, err := h.b.DeleteSecret(c.Request.Context(), name); err != nil {
		h.s.writeError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
