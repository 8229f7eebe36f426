package passthrough

import (
	"encoding/json"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/actors/upstream"
)

// This file is the session's visibility predicate (Options.Visible): which of the server's
// tools the agent may see in tools/list and call with tools/call. An agent token's scope
// decides it (actors.Scope); nil shows everything and costs nothing. Other rules that hide
// tools add their own predicate beside this one.

// visible reports whether the agent may see and call tool; readOnly is the tool's
// readOnlyHint, as the server's tools/list answers said (or the registry's list, before
// this session listed them).
func (s *session) visible(tool string) bool {
	if s.o.Visible == nil {
		return true
	}
	ro, ok := s.readOnly[tool]
	if !ok {
		ro = s.o.Target.ReadOnly[tool]
	}
	return s.o.Visible(tool, ro)
}

// callRefusal says why a tools/call may not go upstream, "" if it may.
func (s *session) callRefusal(params json.RawMessage) string {
	if s.o.Visible == nil {
		return ""
	}
	var p struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(params, &p)
	if s.visible(p.Name) {
		return ""
	}
	return fmt.Sprintf("the agent token does not allow tool %q of server %q", p.Name, s.o.Server)
}

// refuse answers a request that callRefusal stopped, with a JSON-RPC error: it never
// reaches the upstream.
func (s *session) refuse(c *call) {
	data, err := Encode(Wire{JSONRPC: "2.0", ID: c.agentID, Error: &upstream.RPCError{Code: CodeRefused, Message: c.refusal}})
	if err != nil {
		data = nil
	}
	s.finishCall(c, data)
}

// filterTools keeps, in a tools/list result, the tools the agent may see, and notes each
// tool's readOnlyHint for the calls that follow. The other fields (nextCursor, _meta) and
// the kept tools pass unchanged.
func (s *session) filterTools(result json.RawMessage) json.RawMessage {
	if s.o.Visible == nil {
		return result
	}
	var page map[string]json.RawMessage
	if json.Unmarshal(result, &page) != nil {
		return result
	}
	var tools []json.RawMessage
	if json.Unmarshal(page["tools"], &tools) != nil {
		return result
	}
	if s.readOnly == nil {
		s.readOnly = map[string]bool{}
	}
	kept := make([]json.RawMessage, 0, len(tools))
	for _, raw := range tools {
		var t struct {
			Name        string             `json:"name"`
			Annotations mcp.ToolAnnotation `json:"annotations"`
		}
		if json.Unmarshal(raw, &t) != nil {
			continue // a tool it cannot read is not shown
		}
		ro := t.Annotations.ReadOnlyHint
		s.readOnly[t.Name] = ro != nil && *ro
		if s.visible(t.Name) {
			kept = append(kept, raw)
		}
	}
	out, err := json.Marshal(kept)
	if err != nil {
		return result
	}
	page["tools"] = out
	if data, err := Encode(page); err == nil {
		return data
	}
	return result
}
