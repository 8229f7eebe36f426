package actors

import (
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/config"
)

// Requests the registry answers. Each gets exactly one reply on every path: a reply value
// for most, callToolReply for the call path (which the upstream
// actor answers directly).
type (
	listServers struct {
		Versioned bool // answer a ServerList instead of a bare slice
		// Scope, when set (an agent token's), keeps only the servers it allows.
		Scope Scope
	}
	getServer struct{ Name string }
	getStatus struct{}
	// recountStatus answers [2]Status: the kept counts and a fresh count over every row,
	// taken in one message, so tests can check that the counts are kept right.
	recountStatus struct{}
	setEnabled    struct {
		Name    string
		Enabled bool
	}
	setQuarantined struct {
		Name        string
		Quarantined bool
	}
	restartServer struct{ Name string }
	bulkOp        struct {
		Op  string
		Sel Selection
	}
	getServerTools struct{ Name string }
	searchTools    struct {
		Query string
		Limit int
		// Scope, when set, keeps only the tools it allows (and counts only those).
		Scope Scope
	}
	searchResult struct {
		Hits  []ToolHit
		Total int
	}
	callTool struct {
		Name    string // "server:tool"
		Args    any
		Meta    *mcp.Meta
		Timeout time.Duration // 0: the config's call_tool_timeout
		// Progress receives the call's progress notifications when Meta asks for them.
		Progress ProgressSink
		// Scope, when set, refuses a tool outside it before anything reaches the upstream.
		Scope Scope
	}
	getConfig   struct{}
	applyConfig struct {
		Config *config.Config // parsed, possibly with Redacted placeholders
		Source string         // config.SourceAPI or config.SourceFile
	}
	shutdownAll struct{}

	// reply is the answer to most registry requests: a value or an error.
	reply struct {
		v   any
		err error
	}
)
