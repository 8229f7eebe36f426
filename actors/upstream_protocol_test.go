package actors

import (
	"context"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpproxy/mcpproxy/config"
)

// TestServerProtocolVersion: a server's protocol_version is the revision the daemon
// proposes in its initialize; without one it proposes the default, 2025-11-25; and the
// server's view shows the revision agreed on.
func TestServerProtocolVersion(t *testing.T) {
	proposed := func() (string, *atomic.Value) {
		var got atomic.Value
		hooks := &server.Hooks{}
		hooks.AddBeforeInitialize(func(_ context.Context, _ any, req *mcp.InitializeRequest) {
			got.Store(req.Params.ProtocolVersion)
		})
		s := server.NewMCPServer("s", "1", server.WithToolCapabilities(true), server.WithHooks(hooks))
		s.AddTool(mcp.NewTool("echo", mcp.WithDescription("echo")), nil)
		ts := httptest.NewServer(server.NewStreamableHTTPServer(s))
		t.Cleanup(ts.Close)
		return ts.URL + "/mcp", &got
	}
	pinnedURL, pinned := proposed()
	defaultURL, byDefault := proposed()
	h := startRegistry(t, &config.Config{Servers: []config.ServerConfig{
		{Name: "pinned", Protocol: "http", URL: pinnedURL, ProtocolVersion: "2025-06-18", Quarantined: boolPtr(false)},
		{Name: "default", Protocol: "http", URL: defaultURL, Quarantined: boolPtr(false)},
	}})
	// The servers' views say what they speak.
	if v := h.waitState(t, "pinned", StateReady); v.ProtocolVersion != "2025-06-18" {
		t.Errorf("pinned server's view says it speaks %q", v.ProtocolVersion)
	}
	if v := h.waitState(t, "default", StateReady); v.ProtocolVersion != mcp.ProtocolVersion20251125 {
		t.Errorf("default server's view says it speaks %q", v.ProtocolVersion)
	}
	if got, _ := pinned.Load().(string); got != "2025-06-18" {
		t.Errorf("pinned server was offered %q, want 2025-06-18", got)
	}
	if got, _ := byDefault.Load().(string); got != mcp.ProtocolVersion20251125 {
		t.Errorf("server without protocol_version was offered %q, want %s", got, mcp.ProtocolVersion20251125)
	}
}
