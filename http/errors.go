package http

import (
	"errors"
	"net/http"

	"github.com/gin-gonic/gin"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/config"
)

// Codes that only the HTTP layer decides.
const (
	codeUnauthorized     actors.Code = "UNAUTHORIZED"
	codeForbidden                    = actors.CodeForbidden
	codeMethodNotAllowed actors.Code = "METHOD_NOT_ALLOWED"
	codePayloadTooLarge  actors.Code = "PAYLOAD_TOO_LARGE"
	codeRequestTimeout   actors.Code = "REQUEST_TIMEOUT"
)

// statusOf is the one table that maps error codes to HTTP statuses (API.md).
var statusOf = map[actors.Code]int{
	actors.CodeInvalidArgument: http.StatusBadRequest,
	codeUnauthorized:           http.StatusUnauthorized,
	codeForbidden:              http.StatusForbidden,
	actors.CodeNotFound:        http.StatusNotFound,
	codeMethodNotAllowed:       http.StatusMethodNotAllowed,
	actors.CodeConflict:        http.StatusConflict,
	codePayloadTooLarge:        http.StatusRequestEntityTooLarge,
	codeRequestTimeout:         http.StatusRequestTimeout,
	actors.CodeInternal:        http.StatusInternalServerError,
	actors.CodeUpstream:        http.StatusBadGateway,
	actors.CodeUnavailable:     http.StatusServiceUnavailable,
	actors.CodeTimeout:         http.StatusGatewayTimeout,
}

// errorBody is the envelope of every error response.
type errorBody struct {
	Error  string              `json:"error"`
	Code   actors.Code         `json:"code"`
	Errors []config.FieldError `json:"errors,omitempty"`
}

// StatusOf returns the HTTP status for err, the one mapping every handler goes through.
func StatusOf(err error) int {
	if s, ok := statusOf[actors.ErrorCode(err)]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// writeError writes err as the error envelope. Internal errors are logged with their detail
// and shown as "internal error".
//
// A 401 and a 408 also close the connection (Connection: close): a client without the key
// gets nothing more on it, and after a body that did not arrive in time, whatever is still
// on the wire cannot be told from the next request. An error answered before the body was
// read closes it too, without waiting for the body (refuseUnread).
func (s *Server) writeError(c *gin.Context, err error) {
	code := actors.ErrorCode(err)
	status := StatusOf(err)
	if status == http.StatusUnauthorized || status == http.StatusRequestTimeout {
		c.Header("Connection", "close")
	}
	refuseUnread(c)
	body := errorBody{Error: err.Error(), Code: code}
	var ae *actors.Error
	if errors.As(err, &ae) {
		body.Errors = ae.Fields
	}
	if code == actors.CodeInternal {
		s.log.Error("internal error", "method", c.Request.Method, "path", c.FullPath(), "err", err)
		body.Error = "internal error"
	}
	c.AbortWithStatusJSON(status, body)
}

func errorf(code actors.Code, format string, args ...any) error {
	return actors.Errorf(code, format, args...)
}
