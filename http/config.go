package http

import (
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/config"
)

// maxConfigBody is the body limit of config validate and apply, larger than maxBody because
// configs with hundreds of servers are legitimate.
const maxConfigBody = 8 << 20

// getConfig handles GET /api/v1/config: the running config with secrets redacted.
func (s *Server) getConfig(c *gin.Context) {
	cfg, err := s.opts.Backend.Config(c.Request.Context())
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, gin.H{"config": config.Redact(cfg), "path": s.opts.ConfigPath})
}

// parseConfigBody reads a config from the body; field errors come back as a list.
func parseConfigBody(c *gin.Context) (*config.Config, []config.FieldError, error) {
	data, err := ReadBody(c, maxConfigBody)
	if err != nil {
		return nil, nil, err
	}
	cfg, errs := config.Parse(data)
	return cfg, errs, nil
}

// validateConfig handles POST /api/v1/config/validate.
func (s *Server) validateConfig(c *gin.Context) {
	cfg, errs, err := parseConfigBody(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	if len(errs) == 0 {
		cur, err := s.opts.Backend.Config(c.Request.Context())
		if err != nil {
			s.writeError(c, err)
			return
		}
		_, _, errs = config.Check(cur, cfg, config.SourceAPI)
	}
	if errs == nil {
		errs = []config.FieldError{}
	}
	c.JSON(http.StatusOK, gin.H{"valid": len(errs) == 0, "errors": errs})
}

// applyConfig handles POST /api/v1/config/apply.
func (s *Server) applyConfig(c *gin.Context) {
	cfg, errs, err := parseConfigBody(c)
	if err != nil {
		s.writeError(c, err)
		return
	}
	if len(errs) > 0 {
		s.writeError(c, &actors.Error{Code: actors.CodeInvalidArgument, Message: "config is not valid", Fields: errs})
		return
	}
	res, err := s.opts.Backend.Apply(c.Request.Context(), cfg, config.SourceAPI)
	if err != nil {
		s.writeError(c, err)
		return
	}
	c.JSON(http.StatusOK, res)
}
