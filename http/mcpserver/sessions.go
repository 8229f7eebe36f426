package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/mark3labs/mcp-go/server"
)

// errNoSession is why mcp-go refuses a request with an unknown or closed session id.
var errNoSession = errors.New("session not found")

// validateTimeout bounds Validate's question to the sessions actor (mcp-go gives it no
// context).
const validateTimeout = 10 * time.Second

// idManager is the mcp-go SessionIdManager of one endpoint: ids come from the sessions
// actor, and only live sessions of this endpoint validate.
type idManager struct {
	s        Sessions
	endpoint string
	handler  http.Handler // the endpoint's mcp-go handler, for purge
}

var (
	_ server.SessionIdManager         = (*idManager)(nil)
	_ server.SessionIdManagerResolver = (*idManager)(nil)
)

// checkedKey marks, in a request's context, the session id serveMain has just checked with
// the sessions actor (Begin).
type checkedKey struct{}

// ResolveSessionIdManager is how mcp-go gets the manager for a request: for one whose
// session serveMain has just checked, a manager that does not ask the sessions actor again
// in Validate (one round trip less per request).
func (m *idManager) ResolveSessionIdManager(r *http.Request) server.SessionIdManager {
	if r != nil {
		if id, ok := r.Context().Value(checkedKey{}).(string); ok {
			return checkedManager{idManager: m, id: id}
		}
	}
	return m
}

// checkedManager is idManager for a request whose session id was checked just before.
type checkedManager struct {
	*idManager
	id string
}

func (c checkedManager) Validate(id string) (bool, error) {
	if id != "" && id == c.id {
		return false, nil
	}
	return c.idManager.Validate(id)
}

// Generate is called by mcp-go for an initialize request.
func (m *idManager) Generate() string { return m.s.NewSession(m.endpoint) }

// Validate is called by mcp-go for every other POST. For a request that serveMain checked
// (Begin) it is checkedManager's; this one asks the sessions actor, for any other caller.
func (m *idManager) Validate(id string) (bool, error) {
	if id == "" {
		return false, errNoSession
	}
	ctx, cancel := context.WithTimeout(context.Background(), validateTimeout)
	defer cancel()
	if !m.s.Live(ctx, id, m.endpoint) {
		return false, fmt.Errorf("session %q: %w", id, errNoSession)
	}
	return false, nil
}

// Terminate is called by mcp-go for a client's DELETE and when it closes its sessions.
func (m *idManager) Terminate(id string) (bool, error) {
	m.s.Terminate(id, m.endpoint)
	return false, nil
}

// purge makes mcp-go forget a session the sessions actor closed because it idled out:
// mcp-go has no exported call for that, but its DELETE handling does exactly this cleanup
// (and calls Terminate, which finds the session already closed).
func (m *idManager) purge(id string) {
	if m.handler == nil {
		return
	}
	req, err := http.NewRequest(http.MethodDelete, "/", http.NoBody)
	if err != nil {
		return
	}
	req.Header.Set(server.HeaderKeySessionID, id)
	m.handler.ServeHTTP(discardWriter{h: http.Header{}}, req)
}

// discardWriter is a ResponseWriter that drops the response of an internal request.
type discardWriter struct{ h http.Header }

func (w discardWriter) Header() http.Header         { return w.h }
func (w discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (w discardWriter) WriteHeader(int)             {}
