package test

import (
	"strings"
	"testing"
	"time"

	"github.com/mcpproxy/mcpproxy/actors"
)

// TestOAuthClientCredentialsRenewal drives a client_credentials server whose access tokens
// live 4 seconds (no refresh token): the daemon gets the first one itself, and each time
// the token has run out, the next call_tool through /mcp succeeds the first time, because
// the token was granted again before the request went out: no request meets a 401, the
// connection is kept (no restart, no needs_auth), and the server view says the server logs
// in by itself. No token or the client secret shows in the log, events or answers.
func TestOAuthClientCredentialsRenewal(t *testing.T) {
	up := newOAuthUpstream(t, 4*time.Second)
	const secret = "cc-client-secret-0123456789"
	up.ccClient = [2]string{"cc-client", secret}
	p := startProxyProcess(t, t.TempDir(), servers(map[string]any{"name": "svc", "url": up.srv.URL + "/mcp", "protocol": "http", "quarantined": false,
		"oauth": map[string]any{"grant": "client_credentials", "client_id": "cc-client", "client_secret": secret}}))
	ev := openSSE(t, p, "/events", keyHeader(p))
	s := p.waitState("svc", 30*time.Second, actors.StateReady)
	if s.Auth == nil || !s.Auth.LoggedIn || s.Auth.Grant != "client_credentials" {
		t.Fatalf("auth after the first grant: %+v", s.Auth)
	}
	c := dialMCP(t, p.URL+"/mcp", p.mcpKey(), "regrant-test")
	if got := textOf(viaProxy(t, c, "svc:whoami", map[string]any{})); got != "hello, logged-in caller" {
		t.Fatalf("first call: %q", got)
	}
	counts := func() (grants, rejected int) {
		up.mu.Lock()
		defer up.mu.Unlock()
		return up.ccGrants, up.rejected
	}
	// Wait until the token the server view shows (the one the connection holds; the first
	// call may have renewed it already) has expired at the upstream too. One expiry only:
	// with the first grant and a renewal the first call may have made, that is the budget
	// of three grants a minute.
	waitFor(t, 30*time.Second, "the access token to expire", func() bool {
		s := p.server("svc")
		return s.Auth != nil && s.Auth.ExpiresAt != nil && time.Now().After(s.Auth.ExpiresAt.Add(100*time.Millisecond))
	})
	grants0, rejected0 := counts()
	if got := textOf(viaProxy(t, c, "svc:whoami", map[string]any{})); got != "hello, logged-in caller" {
		t.Fatalf("call after expiry: %q", got)
	}
	grants1, rejected1 := counts()
	if grants1 != grants0+1 || rejected1 != rejected0 {
		t.Fatalf("after expiry: grants %d -> %d, 401s %d -> %d; want one new grant and no 401", grants0, grants1, rejected0, rejected1)
	}
	if s := p.server("svc"); s.State != actors.StateReady || s.RetryCount != 0 {
		t.Fatalf("after the renewal: %+v", s)
	}
	for _, e := range ev.Events() {
		if e.Name == "servers.changed" && strings.Contains(e.Data, `"needs_auth"`) && strings.Contains(e.Data, `"logged_in":true`) {
			t.Errorf("the server went to needs_auth after its first grant: %s", e.Data)
		}
	}
	if !strings.Contains(p.Log(), "oauth tokens renewed before expiry") {
		t.Error("the daemon's log does not tell of the renewals")
	}
	assertNothingShows(t, p, ev, "", []string{"/api/v1/servers", "/api/v1/servers/svc", "/api/v1/servers/svc/logs", "/api/v1/config"},
		append(up.secrets(), secret))
}
