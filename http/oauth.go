package http

import (
	"context"
	"html"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/mcpproxy/mcpproxy/actors"
)

// OAuthBackend answers the OAuth login routes (actors.Client implements it).
type OAuthBackend interface {
	Login(ctx context.Context, name string) (actors.LoginStart, error)
	Logout(ctx context.Context, name string) error
	CompleteLogin(ctx context.Context, state, code, errCode string) (actors.LoginDone, error)
	Server(ctx context.Context, name string) (actors.Server, error)
}

var _ OAuthBackend = (*actors.Client)(nil)

type oauthHandlers struct {
	s *Server
	b OAuthBackend
}

// login handles POST /api/v1/servers/{name}/login: {"authorization_url": ...}.
func (h oauthHandlers) login(c *gin.Context) {
	if _, err := ReadBody(c, maxBody); err != nil {
		h.s.writeError(c, err)
		return
	}
	res, err := h.b.Login(c.Request.Context(), c.Param("name"))
	if err != nil {
		h.s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}

// logout handles POST /api/v1/servers/{name}/logout: revokes and deletes the tokens and
// answers the server.
func (h oauthHandlers) logout(c *gin.Context) {
	if _, err := ReadBody(c, maxBody); err != nil {
		h.s.writeError(c, err)
		return
	}
	ctx := c.Request.Context()
	if err := h.b.Logout(ctx, c.Param("name")); err != nil {
		h.s.writeError(c, err)
		return
	}
	srv, err := h.b.Server(ctx, c.Param("name"))
	h.s.writeServer(c, srv, err)
}

// callback handles GET /oauth/callback: the end of a login, shown to the user's browser
// as a short page. It never echoes the code or the state.
func (h oauthHandlers) callback(c *gin.Context) {
	q := c.Request.URL.Query()
	done, err := h.b.CompleteLogin(c.Request.Context(), q.Get("state"), q.Get("code"), q.Get("error"))
	c.Header("Cache-Control", "no-store")
	c.Header("Referrer-Policy", "no-referrer")
	if err != nil {
		c.Data(StatusOf(err), "text/html; charset=utf-8", []byte("<!doctype html><title>mcpproxy login failed</title><p>Login failed: "+
			html.EscapeString(err.Error())+"</p>"))
		return
	}
	c.Data(http.StatusOK, "text/html; charset=utf-8", []byte("<!doctype html><title>mcpproxy login</title><p>Logged in to "+
		html.EscapeString(done.Server)+". You can close this tab.</p>"))
}
