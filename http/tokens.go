package http

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/mcpproxy/mcpproxy/actors"
)

// TokensBackend answers the agent token routes and checks presented tokens
// (*actors.TokensClient implements it).
type TokensBackend interface {
	Create(ctx context.Context, spec actors.TokenSpec) (actors.CreatedToken, error)
	List(ctx context.Context) ([]actors.AgentToken, error)
	Revoke(ctx context.Context, name string) error
	Verify(ctx context.Context, token string, use bool) (actors.Caller, bool)
}

var _ TokensBackend = (*actors.TokensClient)(nil)

type tokensHandlers struct {
	s *Server
	b TokensBackend
}

// create handles POST /api/v1/tokens: 201 with the token, shown this once.
func (h tokensHandlers) create(c *gin.Context) {
	var spec actors.TokenSpec
	if err := bindJSON(c, &spec, maxBody, true); err != nil {
		h.s.writeError(c, err)
		return
	}
	tok, err := h.b.Create(c.Request.Context(), spec)
	if err != nil {
		h.s.writeError(c, err)
		return
	}
	// The token is in this body only: no cache may keep it.
	c.Header("Cache-Control", "no-store")
	c.JSON(http.StatusCreated, tok)
}

// list handles GET /api/v1/tokens: metadata, never a token.
func (h tokensHandlers) list(c *gin.Context) {
	list, err := h.b.List(c.Request.Context())
	if err != nil {
		h.s.writeError(c, err)
		return
	}
	if list == nil {
		list = []actors.AgentToken{}
	}
	c.JSON(http.StatusOK, gin.H{"tokens": list})
}

// revoke handles DELETE /api/v1/tokens/{name}: 204 once the token opens nothing and its
// MCP sessions are closed.
func (h tokensHandlers) revoke(c *gin.Context) {
	if err := h.b.Revoke(c.Request.Context(), c.Param("name")); err != nil {
		h.s.writeError(c, err)
		return
	}
	c.Status(http.StatusNoContent)
}

// AgentToken returns the caller a valid agent token stands for (Credential its name, Scope
// its scope), counting the use; false when the token is unknown, revoked or expired, or
// no token backend is mounted.
func (s *Server) AgentToken(ctx context.Context, token string) (actors.Caller, bool) {
	if s.opts.Tokens == nil {
		return actors.Caller{}, false
	}
	return s.opts.Tokens.Verify(ctx, token, true)
}

// AgentTokenFrom returns the agent token a request presents in Authorization: Bearer or
// X-API-Key ("" if none). Never ?apikey=: an agent's token does not belong in URLs, which
// end up in histories and logs.
func AgentTokenFrom(r *http.Request) string {
	k := r.Header.Get("X-API-Key")
	if !actors.IsAgentToken(k) {
		k = bearer(r)
	}
	if !actors.IsAgentToken(k) {
		return ""
	}
	return k
}

// errAgentTokenHere refuses a valid agent token outside the MCP endpoints.
var errAgentTokenHere = errorf(codeForbidden, "agent tokens are for the MCP endpoints only (/mcp and /mcp/server/{name}); use the API key here")

// refuseAgentToken answers 403 when the request's credential is a valid agent token: it
// is known, but opens nothing of the keyed routes (the REST API, /events, /metrics).
func (s *Server) refuseAgentToken(c *gin.Context) bool {
	key := APIKeyFrom(c.Request)
	if s.opts.Tokens == nil || !actors.IsAgentToken(key) {
		return false
	}
	if _, ok := s.opts.Tokens.Verify(c.Request.Context(), key, false); !ok {
		return false
	}
	s.writeError(c, errAgentTokenHere)
	return true
}
