package test

import "testing"

// TestMCPDeleteUnknownSessionIs404: ending a session that does not exist (or has expired)
// must say so, on /mcp as on the passthrough endpoint, rather than report success.
func TestMCPDeleteUnknownSessionIs404(t *testing.T) {
	p := startProxy(t, servers())
	for _, path := range []string{"/mcp", "/mcp/server/nope"} {
		var e struct {
			Code string `json:"code"`
		}
		code, body := p.doWith("DELETE", path, nil, &e, map[string]string{"X-API-Key": p.Key, "Mcp-Session-Id": "no-such-session"})
		if code != 404 || e.Code != "NOT_FOUND" {
			t.Errorf("DELETE %s with an unknown session = %d %s, want 404 NOT_FOUND", path, code, body)
		}
	}
}
