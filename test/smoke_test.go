package test

import (
	"testing"
	"time"

	"github.com/mcpproxy/mcpproxy/actors"
)

// TestSmokeStdioFixtureReady is the shortest end-to-end path: one stdio fixture reaches
// ready with its tools and shows up in search.
func TestSmokeStdioFixtureReady(t *testing.T) {
	p := startProxy(t, servers(stdioFixture(t, "fx")))
	s := p.waitState("fx", 20*time.Second, actors.StateReady)
	if s.ToolsCount < 5 {
		t.Fatalf("tools_count = %d, want the fixture's tools", s.ToolsCount)
	}
	var res struct {
		Tools []actors.ToolHit `json:"tools"`
	}
	if code, body := p.do("GET", "/api/v1/tools?q=echo", nil, &res); code != 200 || len(res.Tools) == 0 || res.Tools[0].Name != "fx:echo" {
		t.Fatalf("search echo: %d %s", code, body)
	}
}
