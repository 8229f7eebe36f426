package http

import (
	"context"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/config"
)

// SecretsBackend answers the secrets routes (actors.Secrets implements it). Errors carry
// actors codes (NOT_FOUND for an unknown secret).
type SecretsBackend interface {
	List(ctx context.Context) ([]actors.Secret, error)
	Get(ctx context.Context, name string) (actors.Secret, error)
	// Set stores value and restarts the enabled servers that use the secret; created says
	// it did not exist before.
	Set(ctx context.Context, name, value string) (s actors.Secret, created bool, restarted []string, err error)
	// Delete deletes the secret and restarts the enabled servers that used it (they go to
	// error, naming the missing secret).
	Delete(ctx context.Context, name string) (restarted []string, err error)
}

var _ SecretsBackend = (*actors.Secrets)(nil)

var secretNameRE = config.MustNameMatcher(config.RefNamePattern)

// secretResponse is the answer of GET and PUT /api/v1/secrets/{name}. Restarted lists the
// servers a PUT restarted.
type secretResponse struct {
	Secret    actors.Secret `json:"secret"`
	Restarted []string      `json:"restarted,omitempty"`
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
	list, err := h.b.List(c.Request.Context())
	if err != nil {
		h.s.writeError(c, err)
		return
	}
	if list == nil {
		list = []actors.Secret{}
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
	sec, err := h.b.Get(c.Request.Context(), name)
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
	sec, created, restarted, err := h.b.Set(c.Request.Context(), name, *body.Value)
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
	if _, err := h.b.Delete(c.Request.Context(), name); err != nil {
		h.s.writeError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}
