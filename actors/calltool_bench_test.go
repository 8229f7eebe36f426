package actors

import (
	"testing"

	"github.com/mcpproxy/mcpproxy/config"
)

// BenchmarkCallTool is one tool call through the registry to a stdio fixture and back, the
// actor part of what B1 adds to a call (no HTTP, no MCP server):
//
//	go test -run '^$' -bench CallTool -count 5 ./actors/
func BenchmarkCallTool(b *testing.B) {
	h := startRegistry(b, &config.Config{Servers: []config.ServerConfig{fixtureServer(b, "a", false)}})
	h.waitState(b, "a", StateReady)
	args := map[string]any{"text": "hi"}
	b.ResetTimer()
	for b.Loop() {
		res, err := h.c.CallTool(ctxT(b), "a:echo", args, nil, 0, nil)
		if err != nil || res == nil || res.IsError {
			b.Fatalf("call: %v %+v", err, res)
		}
	}
}
