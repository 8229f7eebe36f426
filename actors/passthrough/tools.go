package passthrough

import (
	"encoding/json"
	"fmt"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/actors/upstream"
)

// ToolRules is what the registry decided about a server's tools (tool-level trust), as a
// passthrough session applies it to its own connection's tools: a tool is shown and may be
// called only when it is not disabled, it has a pin, and the definition this session saw
// has the pinned hash. The registry sends new rules (SetRules, through the sessions actor)
// whenever they change; the maps are never changed once sent.
type ToolRules struct {
	// Enforced is set by the registry; the zero ToolRules (a session opened without one,
	// in tests) hides nothing.
	Enforced bool
	// Ver orders the rules of one server: the sessions actor keeps the newest.
	Ver uint64
	// Pins is the approved definition hash of each tool by name; nil when the server has
	// no pins at all (every tool awaits review).
	Pins map[string]string
	// Held are the tools the shared connection lists with a definition other than the
	// pinned one (changed); a call is refused even before this session listed them.
	Held map[string]bool
	// Disabled are the server's disabled_tools.
	Disabled map[string]bool
}

// Unapproved tells the owner which tools this session's connection listed that await
// review (new or changed, not disabled), with their definitions, so that the registry can
// show and approve tools the shared connection never lists (a server may offer some tools,
// such as sampling ones, only to clients that declare the capability).
type Unapproved struct {
	Server string
	Tools  map[string]upstream.Definition
}

// SetRules replaces a session's ToolRules (from the sessions actor; no reply). The agent
// is told with notifications/tools/list_changed, since what it may see has changed.
type SetRules struct{ Rules ToolRules }

// Refusal says why the agent may not see or call tool name, "" when it may. hash is the
// tool's definition hash as this session last listed it, "" when it has not.
func (r ToolRules) Refusal(name, hash string) string {
	pin, pinned := r.Pins[name]
	switch {
	case !r.Enforced:
		return ""
	case r.Disabled[name]:
		return fmt.Sprintf("tool %q is disabled", name)
	case !pinned:
		return fmt.Sprintf("tool %q is new and awaits review", name)
	case r.Held[name] || (hash != "" && hash != pin):
		return fmt.Sprintf("tool %q changed since it was approved and awaits review", name)
	}
	return ""
}

// toolRefusal is the session's tool visibility predicate: why the agent may not see
// (tools/list) or call (tools/call) tool name, "" when it may. It is the one place that
// decides, so that a list and a call agree; a rule that hides tools for another reason
// adds its check here.
func (s *session) toolRefusal(name string) string {
	if why := s.rules.Refusal(name, s.seen[name]); why != "" {
		return why
	}
	return s.scopeRefusal(name)
}

// refuseCall answers a tools/call the predicate refuses, with a JSON-RPC error; nil when
// the call may go upstream.
func (s *session) refuseCall(c *call) []byte {
	if c.method != string(mcp.MethodToolsCall) {
		return nil
	}
	var p struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(c.params, &p)
	why := s.toolRefusal(p.Name)
	if why == "" {
		return nil
	}
	data, err := Encode(Wire{JSONRPC: "2.0", ID: c.agentID, Error: &upstream.RPCError{Code: CodeRefused,
		Message: fmt.Sprintf("tools/call on %q refused: %s", s.o.Server, why)}})
	if err != nil {
		return nil
	}
	return data
}

// filterTools takes the tools the predicate refuses out of a tools/list result, and notes
// each listed tool's definition hash for the calls that follow. Other fields (nextCursor,
// _meta) pass unchanged; a result that is not a tool list passes as it is.
func (s *session) filterTools(result json.RawMessage) json.RawMessage {
	var res struct {
		Tools []json.RawMessage `json:"tools"`
	}
	if json.Unmarshal(result, &res) != nil || res.Tools == nil {
		return result
	}
	if s.seen == nil {
		s.seen, s.readOnly = map[string]string{}, map[string]bool{}
	}
	kept := make([]json.RawMessage, 0, len(res.Tools))
	var unapproved map[string]upstream.Definition
	for _, raw := range res.Tools {
		var t struct {
			Name        string             `json:"name"`
			Annotations mcp.ToolAnnotation `json:"annotations"`
		}
		def, err := upstream.ToolDefinition(raw)
		if err != nil || json.Unmarshal(raw, &t) != nil {
			continue // a tool it cannot read is not shown
		}
		s.seen[t.Name] = def.Hash
		ro := t.Annotations.ReadOnlyHint
		s.readOnly[t.Name] = ro != nil && *ro
		if s.toolRefusal(t.Name) == "" {
			kept = append(kept, raw)
		} else if s.rules.Enforced && !s.rules.Disabled[t.Name] && len(unapproved) < maxUnapproved {
			if unapproved == nil {
				unapproved = map[string]upstream.Definition{}
			}
			unapproved[t.Name] = def
		}
	}
	if len(unapproved) > 0 && s.parent != nil {
		s.sys.Root.Send(s.parent, Unapproved{Server: s.o.Server, Tools: unapproved})
	}
	out, err := setField(result, "tools", kept)
	if err != nil {
		return result
	}
	return out
}

// maxUnapproved bounds the tools one listing reports as awaiting review.
const maxUnapproved = 1000

// setRules takes new rules and tells the agent its tool list may have changed.
func (s *session) setRules(r ToolRules) {
	if r.Ver < s.rules.Ver {
		return
	}
	s.rules = r
	if s.stopped || s.up == nil {
		return
	}
	msg, err := Encode(Wire{JSONRPC: "2.0", Method: string(mcp.MethodNotificationToolsListChanged)})
	if err == nil {
		s.route(string(mcp.MethodNotificationToolsListChanged), nil, msg)
	}
}
