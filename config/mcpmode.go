package config

import "regexp"

// What /mcp offers (Config.MCPMode).
const (
	// MCPModeSearch: the proxy's own three tools, through which agents search and call.
	MCPModeSearch = "search"
	// MCPModeDirect: every reachable tool listed as itself, named server+separator+tool,
	// beside the proxy's own three.
	MCPModeDirect = "direct"
)

// DefaultToolNameSeparator joins server and tool names on /mcp/all.
const DefaultToolNameSeparator = "__"

// MaxToolNameSeparator bounds the separator's length.
const MaxToolNameSeparator = 8

// ToolNamePattern is what MCP allows as a tool name (spec 2025-11-25: 1 to 128 of
// A-Z a-z 0-9 _ - .). A namespaced name that does not match (an upstream tool whose own
// name breaks the rule, or is too long once prefixed) is left out of /mcp/all.
const ToolNamePattern = `^[A-Za-z0-9_.-]{1,128}$`

var toolNameRE = MustNameMatcher(ToolNamePattern)

// ValidToolName reports whether name is a tool name MCP allows.
func ValidToolName(name string) bool { return toolNameRE.MatchString(name) }

var separatorRE = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// ValidToolNameSeparator reports whether sep may join server and tool names: only tool-name
// characters, so the joined name stays a valid tool name, and at most MaxToolNameSeparator.
func ValidToolNameSeparator(sep string) bool {
	return len(sep) <= MaxToolNameSeparator && separatorRE.MatchString(sep)
}
