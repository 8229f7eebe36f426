package actors

import (
	"context"
	"net/http/httptest"
	"reflect"
	"testing"
	"time"
	"unsafe"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpproxy/mcpproxy/actors/upstream"
	"github.com/mcpproxy/mcpproxy/config"
)

// TestListToolsReusesKnownTools: a listing given the last one reuses each tool whose bytes
// are unchanged (the same Tool, its definition not read again), reads a changed one, gives
// every tool the connection's instructions, and comes out equal to a listing that reads
// every tool.
func TestListToolsReusesKnownTools(t *testing.T) {
	s := server.NewMCPServer("s", "1", server.WithToolCapabilities(true), server.WithInstructions("use me"))
	s.AddTool(mcp.NewTool("a", mcp.WithDescription("first"), mcp.WithString("x")), nil)
	s.AddTool(mcp.NewTool("b", mcp.WithDescription("second")), nil)
	ts := httptest.NewServer(server.NewStreamableHTTPServer(s))
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := upstream.Dial(ctx, config.ServerConfig{Name: "s", Protocol: "http", URL: ts.URL + "/mcp"}, upstream.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	first, err := listTools(ctx, "s", conn, nil)
	if err != nil || len(first) != 2 {
		t.Fatalf("first listing: %v %+v", err, first)
	}
	if first[0].Raw != "a" {
		first[0], first[1] = first[1], first[0]
	}
	if first[0].Sum == first[1].Sum || first[0].Sum == ([32]byte{}) {
		t.Fatalf("sums not set apart: %x %x", first[0].Sum, first[1].Sum)
	}
	s.AddTool(mcp.NewTool("b", mcp.WithDescription("second, changed")), nil)
	prev := []Tool{first[0], first[1]}
	prev[0].Instructions = "what an earlier connection said"
	again, err := listTools(ctx, "s", conn, prev)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := listTools(ctx, "s", conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(again, fresh) {
		t.Fatalf("a listing that reuses tools differs from one that reads them:\n%+v\n%+v", again, fresh)
	}
	byName := map[string]Tool{}
	for _, tool := range again {
		byName[tool.Raw] = tool
	}
	if a := byName["a"]; unsafe.SliceData(a.Def) != unsafe.SliceData(first[0].Def) || a.Instructions != "use me" {
		t.Errorf("unchanged tool a was read again (or kept old instructions %q)", a.Instructions)
	}
	if b := byName["b"]; b.Description != "second, changed" || unsafe.SliceData(b.Def) == unsafe.SliceData(first[1].Def) {
		t.Errorf("changed tool b = %+v, want it read again", b)
	}
}
