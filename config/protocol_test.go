package config

import (
	"slices"
	"testing"

	"github.com/mark3labs/mcp-go/mcp"
)

// TestProtocolVersionsAreMCPGos: protocol_version accepts exactly the revisions mcp-go
// speaks, so that a pinned revision is one the client can talk.
func TestProtocolVersionsAreMCPGos(t *testing.T) {
	if !slices.Equal(ProtocolVersions, mcp.ValidProtocolVersions) {
		t.Fatalf("ProtocolVersions = %v, mcp-go speaks %v", ProtocolVersions, mcp.ValidProtocolVersions)
	}
}

// TestParseProtocolVersion: the field is read from a server entry and written back; a
// value of the wrong type is a field error.
func TestParseProtocolVersion(t *testing.T) {
	c, errs := Parse([]byte(`{"mcpServers": [{"name": "a", "url": "https://x.example/mcp", "protocol_version": "2025-06-18"}]}`))
	if len(errs) > 0 || c.Servers[0].ProtocolVersion != "2025-06-18" {
		t.Fatalf("parsed %+v, errors %v", c, errs)
	}
	if _, errs := Parse([]byte(`{"mcpServers": [{"name": "a", "command": "x", "protocol_version": 20250618}]}`)); len(errs) != 1 || errs[0].Field != "mcpServers[0].protocol_version" {
		t.Fatalf("a number for protocol_version: errors %v, want one on the field", errs)
	}
}
