package http

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/mcpproxy/mcpproxy/actors"
)

// The routes of tool-level trust: approving a server's tools and switching one off or on.
// GET /api/v1/servers/{name}/tools (routes.go) shows their approval.

type approveToolsRequest struct {
	Tools []string `json:"tools"`
	All   *bool    `json:"all"`
}

// approveTools handles POST /api/v1/servers/{name}/tools/approve with {"tools": [...]} or
// {"all": true}.
func (s *Server) approveTools(c *gin.Context) {
	var req approveToolsRequest
	if err := bindJSON(c, &req, maxBody, true); err != nil {
		s.writeError(c, err)
		return
	}
	all := req.All != nil && *req.All
	switch {
	case all && len(req.Tools) > 0:
		s.writeError(c, errorf(actors.CodeInvalidArgument, "tools: give either tools or {\"all\": true}, not both"))
		return
	case !all && len(req.Tools) == 0:
		s.writeError(c, errorf(actors.CodeInvalidArgument, "tools: name the tools to approve, or say {\"all\": true}"))
		return
	}
	res, err := s.opts.Backend.ApproveTools(c.Request.Context(), c.Param("name"), req.Tools, all)
	s.writeTools(c, res, err)
}

// setToolDisabled handles POST /api/v1/servers/{name}/tools/{tool}/disable and /enable.
func (s *Server) setToolDisabled(disabled bool) gin.HandlerFunc {
	return func(c *gin.Context) {
		if _, err := ReadBody(c, maxBody); err != nil {
			s.writeError(c, err)
			return
		}
		res, err := s.opts.Backend.SetToolDisabled(c.Request.Context(), c.Param("name"), c.Param("tool"), disabled)
		s.writeTools(c, res, err)
	}
}

func (s *Server) writeTools(c *gin.Context, res actors.ServerTools, err error) {
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}
