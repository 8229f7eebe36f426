package http

import (
	"context"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/mcpproxy/mcpproxy/actors/store"
)

// SessionSource is what the session routes need: the sessions actor's client
// (*actors.SessionsClient). Session returns an error with actors.CodeNotFound for an
// unknown id.
type SessionSource interface {
	Sessions(ctx context.Context) ([]store.Session, error)
	Session(ctx context.Context, id string) (store.Session, error)
}

type sessionHandlers struct {
	s   *Server
	src SessionSource
}

// list handles GET /api/v1/sessions: every recorded MCP session, newest first.
func (h sessionHandlers) list(c *gin.Context) {
	sessions, err := h.src.Sessions(c.Request.Context())
	if err != nil {
		h.s.writeError(c, err)
		return
	}
	if sessions == nil {
		sessions = []store.Session{}
	}
	c.JSON(http.StatusOK, gin.H{"sessions": sessions})
}

// get handles GET /api/v1/sessions/{id}.
func (h sessionHandlers) get(c *gin.Context) {
	sess, err := h.src.Session(c.Request.Context(), c.Param("id"))
	if err != nil {
		h.s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"session": sess})
}
