package http

import (
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/mcpproxy/mcpproxy/actors"
)

// TestStatusOf pins the one code -> status table of API.md, for coded errors as they come
// from the actors, wrapped ones, and errors without a code.
func TestStatusOf(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want int
	}{
		{"invalid argument", actors.Errorf(actors.CodeInvalidArgument, "bad"), http.StatusBadRequest},
		{"unauthorized", errorf(codeUnauthorized, "no key"), http.StatusUnauthorized},
		{"forbidden", errorf(codeForbidden, "host"), http.StatusForbidden},
		{"not found", actors.Errorf(actors.CodeNotFound, "nope"), http.StatusNotFound},
		{"method not allowed", errorf(codeMethodNotAllowed, "DELETE"), http.StatusMethodNotAllowed},
		{"conflict", actors.Errorf(actors.CodeConflict, "disabled"), http.StatusConflict},
		{"payload too large", errorf(codePayloadTooLarge, "big"), http.StatusRequestEntityTooLarge},
		{"request timeout", errorf(codeRequestTimeout, "slow body"), http.StatusRequestTimeout},
		{"internal", actors.Errorf(actors.CodeInternal, "bug"), http.StatusInternalServerError},
		{"upstream", actors.Errorf(actors.CodeUpstream, "upstream said no"), http.StatusBadGateway},
		{"unavailable", actors.Errorf(actors.CodeUnavailable, "shutting down"), http.StatusServiceUnavailable},
		{"timeout", actors.Errorf(actors.CodeTimeout, "slow"), http.StatusGatewayTimeout},
		{"wrapped keeps its code", fmt.Errorf("context: %w", actors.Errorf(actors.CodeNotFound, "x")), http.StatusNotFound},
		{"config errors", &actors.Error{Code: actors.CodeInvalidArgument, Message: "config is not valid"}, http.StatusBadRequest},
		{"plain error is internal", errors.New("boom"), http.StatusInternalServerError},
		{"unknown code is internal", actors.Errorf("NO_SUCH_CODE", "x"), http.StatusInternalServerError},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := StatusOf(c.err); got != c.want {
				t.Errorf("StatusOf(%v) = %d, want %d", c.err, got, c.want)
			}
		})
	}
	// Every code in the table is covered above, so a code added to the table without a test
	// shows up here.
	covered := map[int]bool{}
	for _, c := range cases {
		covered[c.want] = true
	}
	for code, status := range statusOf {
		if !covered[status] {
			t.Errorf("code %s (%d) has no case", code, status)
		}
	}
}
