package upstream

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpproxy/mcpproxy/config"
)

// TestListToolsKeepsSchemasAndFollowsCursors lists 25 tools in pages of 10 from an mcp-go
// server over streamable HTTP; a schema with keys mcp-go's typed tool would drop (anyOf,
// $schema) must come back as sent.
func TestListToolsKeepsSchemasAndFollowsCursors(t *testing.T) {
	s := server.NewMCPServer("paged", "1", server.WithToolCapabilities(true), server.WithPaginationLimit(10))
	raw := json.RawMessage(`{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","anyOf":[{"required":["a"]},{"required":["b"]}],"properties":{"a":{"type":"string"},"b":{"type":"number"}}}`)
	s.AddTool(mcp.NewToolWithRawSchema("odd", "a tool whose schema uses anyOf", raw), nil)
	for i := range 24 {
		s.AddTool(mcp.NewTool(fmt.Sprintf("t%02d", i), mcp.WithDescription("plain")), nil)
	}
	ts := httptest.NewServer(server.NewStreamableHTTPServer(s))
	defer ts.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := Dial(ctx, config.ServerConfig{Name: "paged", Protocol: "http", URL: ts.URL + "/mcp"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	tools, err := conn.ListTools(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(tools) != 25 {
		t.Fatalf("listed %d tools, want 25 over three pages", len(tools))
	}
	for _, tool := range tools {
		if tool.Name != "odd" {
			continue
		}
		for _, key := range []string{`"anyOf"`, `"$schema"`} {
			if !strings.Contains(string(tool.InputSchema), key) {
				t.Errorf("schema lost %s: %s", key, tool.InputSchema)
			}
		}
		return
	}
	t.Fatal("tool odd not listed")
}

// TestToolDefinitionIsCanonical: key order, spacing and unknown fields do not change a
// definition's hash; a change in any definition field does; numbers are kept as written.
func TestToolDefinitionIsCanonical(t *testing.T) {
	a, err := ToolDefinition(json.RawMessage(`{"name":"t","description":"d <b>","inputSchema":{"type":"object","properties":{"n":{"type":"number","maximum":1.0}}},"_meta":{"x":1},"title":null}`))
	if err != nil {
		t.Fatal(err)
	}
	b, err := ToolDefinition(json.RawMessage(` { "inputSchema" : { "properties":{"n":{"maximum":1.0,"type":"number"}},"type":"object"}, "description":"d <b>", "name":"t" }`))
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash != b.Hash || string(a.JSON) != string(b.JSON) {
		t.Fatalf("same definition, different canonical forms:\n%s\n%s", a.JSON, b.JSON)
	}
	if want := `{"description":"d <b>","inputSchema":{"properties":{"n":{"maximum":1.0,"type":"number"}},"type":"object"},"name":"t"}`; string(a.JSON) != want {
		t.Errorf("canonical JSON = %s, want %s", a.JSON, want)
	}
	for _, changed := range []string{
		`{"name":"t","description":"d <b>!","inputSchema":{"type":"object","properties":{"n":{"type":"number","maximum":1.0}}}}`,
		`{"name":"t","title":"T","description":"d <b>","inputSchema":{"type":"object","properties":{"n":{"type":"number","maximum":1.0}}}}`,
		`{"name":"t","description":"d <b>","inputSchema":{"type":"object","properties":{"n":{"type":"number","maximum":2}}}}`,
		`{"name":"t","description":"d <b>","inputSchema":{"type":"object","properties":{"n":{"type":"number","maximum":1.0}}},"outputSchema":{"type":"object"}}`,
		`{"name":"t","description":"d <b>","inputSchema":{"type":"object","properties":{"n":{"type":"number","maximum":1.0}}},"annotations":{"readOnlyHint":true}}`,
	} {
		c, err := ToolDefinition(json.RawMessage(changed))
		if err != nil {
			t.Fatal(err)
		}
		if c.Hash == a.Hash {
			t.Errorf("changed definition %s has the same hash", changed)
		}
	}
}
