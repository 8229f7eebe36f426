package mcpserver

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
	"github.com/r3labs/sse/v2"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/config"
)

// Direct tools: /mcp/all (and /mcp with "mcp_mode": "direct") lists every tool agents may
// reach now, each as itself under the name server+separator+tool, beside the proxy's own
// three tools. The set is the registry's: the tools its index holds, which are those of
// ready, enabled, unquarantined servers that tool-level trust lets through (no pending or
// changed tool, no disabled one). The endpoint keeps a copy in its mcp-go server, rebuilt
// when the hub publishes a change (servers.changed, tools.indexed, config.reloaded: a server
// ready or quarantined, a tool approved or disabled, a new separator); mcp-go then sends
// notifications/tools/list_changed to every session of the server. A call goes through
// Backend.CallTool like call_tool's, so every rule of that path holds (quarantine, trust,
// token scope, timeout, activity record): the copy only names and describes the tools.
//
// One mcp-go server serves both routes, so a session's tools/list is the same wherever it
// connected; a token's scope filters each tools/list (WithToolFilter reads the Caller the
// key check put in the request context). mcp-go applies the same filter to tools/call, so a
// tool outside the scope is "not found" there; the registry would refuse it anyway.

// EventSource is where the endpoint learns that the set of tools changed: the hub.
// *actors.HubClient implements it.
type EventSource interface {
	Subscribe(ctx context.Context, after uint64, replay bool, out actors.EventStreams) (*actors.Subscription, error)
	SubscriberReady(id string)
}

var _ EventSource = (*actors.HubClient)(nil)

// directTool is what the endpoint needs of one listed upstream tool: where a call goes and
// what a token's scope is asked about it.
type directTool struct {
	server, raw string
	readOnly    bool
	// hash is the definition's (actors.Tool.Hash): the same name and hash at the next
	// refresh keep the tool as mcp-go holds it.
	hash string
}

// directSet is one snapshot of the listed upstream tools, by listed name; replaced whole.
type directSet struct {
	tools       map[string]directTool
	fingerprint string
}

// changeEvents are the hub's events after which the set may have changed.
var changeEvents = map[string]bool{"servers.changed": true, "tools.indexed": true, "config.reloaded": true}

// eventSignal is the EventStreams the endpoint subscribes with: it keeps no event, only
// that one that matters arrived (a buffered channel of one, so a burst makes one refresh).
type eventSignal chan struct{}

func (s eventSignal) TryPublish(_ string, ev *sse.Event) bool {
	if ev != nil && changeEvents[string(ev.Event)] {
		select {
		case s <- struct{}{}:
		default:
		}
	}
	return true
}

func (s eventSignal) StreamExists(string) bool { return true }

// maxDirectTools bounds one listing of the registry's tools.
const maxDirectTools = 1 << 20

// syncDirect keeps the direct tools in step with the registry until the endpoint closes.
func (e *Endpoint) syncDirect() {
	defer close(e.syncDone)
	signal := eventSignal(make(chan struct{}, 1))
	for {
		var dropped <-chan struct{}
		var sub *actors.Subscription
		if e.opts.Events != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			s, err := e.opts.Events.Subscribe(ctx, 0, false, signal)
			cancel()
			if err != nil {
				e.log.Warn("direct tools: subscribing to events", "err", err)
			} else {
				sub = s
				e.opts.Events.SubscriberReady(s.ID())
				dropped = s.Dropped().Done()
			}
		}
		e.refreshDirect()
		for resubscribe := false; !resubscribe; {
			select {
			case <-e.done:
				if sub != nil {
					sub.End()
				}
				return
			case <-signal:
				e.refreshDirect()
			case <-e.directWake:
				e.refreshDirect()
			case <-dropped:
				sub.End()
				resubscribe = true
			}
		}
	}
}

// useDirect turns the direct tools on at the first request that serves them (/mcp/all, and
// /mcp in mcp_mode direct) and waits, at most until ctx ends, for their first listing, so
// that the first session already finds every tool.
func (e *Endpoint) useDirect(ctx context.Context) {
	if !e.syncing.Load() {
		return // not attached: nothing would list them
	}
	if e.directOn.CompareAndSwap(false, true) {
		select {
		case e.directWake <- struct{}{}:
		default:
		}
	}
	select {
	case <-e.directReady:
	case <-ctx.Done():
	case <-e.done:
	}
}

// refreshDirect lists the registry's tools and, when they differ from the listed ones,
// replaces the mcp-go server's tools (which tells the sessions).
//
// Until someone asks for the direct tools (useDirect) it refreshes the catalog alone: the
// direct set is every reachable tool again as an mcp-go tool (about 8 MB with 10,000
// tools), and listing it on every change of every server costs the daemon CPU in
// proportion to the number of tools each time a server becomes ready; a proxy used
// through /mcp in search mode needs none of it.
func (e *Endpoint) refreshDirect() {
	sep := e.separator()
	e.refreshCatalog(sep)
	if !e.directOn.Load() {
		return
	}
	defer e.readyOnce.Do(func() { close(e.directReady) })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	hits, _, err := e.opts.Backend.SearchTools(ctx, "", maxDirectTools)
	if err != nil {
		e.log.Warn("direct tools: listing the registry's tools", "err", err)
		return
	}
	sort.Slice(hits, func(i, j int) bool { return hits[i].Name < hits[j].Name })
	sum := sha256.New()
	sum.Write([]byte(sep))
	for _, h := range hits {
		fmt.Fprintf(sum, "\x00%s\x00%s\x00%s", h.Server, h.Raw, h.Hash)
	}
	fp := hex.EncodeToString(sum.Sum(nil))
	if cur := e.direct.Load(); cur != nil && cur.fingerprint == fp {
		return
	}
	set := &directSet{tools: make(map[string]directTool, len(hits)), fingerprint: fp}
	prev := e.direct.Load()
	if prev == nil {
		prev = &directSet{}
	}
	// A tool listed before under the same name with the same definition hash is kept as
	// mcp-go holds it: while 100 servers become ready one after another, each refresh
	// would otherwise decode, check and hand over every tool again (10,000 at the end).
	var fresh []server.ServerTool
	changed := false
	for _, h := range hits {
		name := h.Server + sep + h.Raw
		if !config.ValidToolName(name) {
			e.log.Debug("direct tools: name outside MCP's tool-name rules, left out", "server", h.Server, "tool", h.Raw)
			continue
		}
		if _, taken := set.tools[name]; taken {
			// "a__b" + "c" and "a" + "b__c": the first keeps the name.
			e.log.Debug("direct tools: name taken, left out", "server", h.Server, "tool", h.Raw)
			continue
		}
		t := directTool{server: h.Server, raw: h.Raw, readOnly: h.ReadOnly(), hash: h.Hash}
		old, listed := prev.tools[name]
		if listed && old == t && t.hash != "" {
			set.tools[name] = t
			continue
		}
		tool, ok := directDefinition(name, h.Tool)
		if !ok || !acceptedByMCPGo(tool) {
			e.log.Debug("direct tools: definition refused, left out", "server", h.Server, "tool", h.Raw)
			continue
		}
		changed = changed || listed
		set.tools[name] = t
		fresh = append(fresh, server.ServerTool{Tool: tool, Handler: e.directCall(t)})
	}
	var gone []string
	for name := range prev.tools {
		if _, still := set.tools[name]; !still {
			gone = append(gone, name)
		}
	}
	e.direct.Store(set)
	// One change of mcp-go's tools per refresh, so sessions get one list_changed: only
	// tools added, or only tools gone, touch just those; anything else replaces the set.
	switch {
	case e.directListed && !changed && len(gone) == 0:
		if len(fresh) > 0 {
			e.all.AddTools(fresh...)
		}
	case e.directListed && !changed && len(fresh) == 0:
		e.all.DeleteTools(gone...)
	default:
		tools := e.mainTools()
		for name, t := range set.tools {
			if t.hash != "" && prev.tools[name] == t {
				if kept := e.all.GetTool(name); kept != nil {
					tools = append(tools, *kept)
				}
			}
		}
		e.all.SetTools(append(tools, fresh...)...)
		e.directListed = true
	}
}

// directDefinition is the tool as its server wrote it (the canonical definition the
// registry pins: title, description, input and output schemas, annotations) under name.
func directDefinition(name string, t actors.Tool) (mcp.Tool, bool) {
	var def struct {
		Title, Description                     string
		InputSchema, OutputSchema, Annotations json.RawMessage
	}
	if len(t.Def) > 0 {
		fields, ok := topLevel(t.Def)
		if !ok {
			return mcp.Tool{}, false
		}
		for key, dst := range map[string]*string{"title": &def.Title, "description": &def.Description} {
			if raw := fields[key]; raw != nil && json.Unmarshal(raw, dst) != nil {
				return mcp.Tool{}, false
			}
		}
		def.InputSchema, def.OutputSchema, def.Annotations = fields["inputSchema"], fields["outputSchema"], fields["annotations"]
	} else {
		def.Title, def.Description, def.InputSchema, def.Annotations = t.Title, t.Description, t.InputSchema, t.Annotations
	}
	tool := mcp.Tool{Name: name, Title: def.Title, Description: def.Description,
		RawInputSchema: def.InputSchema, RawOutputSchema: def.OutputSchema}
	if len(tool.RawInputSchema) == 0 {
		tool.RawInputSchema = json.RawMessage(`{"type":"object"}`)
	}
	if len(def.Annotations) > 0 {
		if err := json.Unmarshal(def.Annotations, &tool.Annotations); err != nil {
			return mcp.Tool{}, false
		}
	}
	return tool, true
}

// topLevel splits a JSON object into its members' values, each a slice of obj itself: the
// schemas mcp-go lists share the registry's copy of the definition instead of holding one
// more (10,000 tools: a few MB of heap, twice that of RSS).
func topLevel(obj json.RawMessage) (map[string]json.RawMessage, bool) {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	fields := map[string]json.RawMessage{}
	for dec.More() {
		tok, err := dec.Token()
		key, isKey := tok.(string)
		if err != nil || !isKey {
			return nil, false
		}
		from := dec.InputOffset()
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return nil, false
		}
		to := dec.InputOffset()
		fields[key] = bytes.TrimLeft(obj[from:to:to], " \t\r\n:")
	}
	return fields, true
}

// acceptedByMCPGo reports whether mcp-go takes the tool: SetTools panics on a definition it
// refuses (x-mcp-header annotations that break SEP-2243), which an upstream may send.
func acceptedByMCPGo(tool mcp.Tool) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	server.NewMCPServer("check", "0").AddTool(tool, nil)
	return true
}

// directCall is the handler of one listed upstream tool: the call goes to the registry as
// call_tool's does, and is recorded the same way.
func (e *Endpoint) directCall(t directTool) server.ToolHandlerFunc {
	return func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		rec := e.newRecord(ctx)
		rec.Server, rec.Tool = t.server, t.raw
		var args any = map[string]any{}
		if v := req.Params.Arguments; v != nil {
			rec.Arguments = encodeArguments(v)
			if _, isObject := v.(map[string]any); !isObject {
				return e.refuse(rec, "arguments must be an object"), nil
			}
			args = v
		}
		return e.forwardRecorded(ctx, rec, t.server, t.raw, args, req.Params.Meta), nil
	}
}

// scopeFilter is the tools/list filter of the direct server: a caller with a token's scope
// sees the proxy's own tools and the upstream tools its scope allows.
func (e *Endpoint) scopeFilter(ctx context.Context, tools []mcp.Tool) []mcp.Tool {
	caller, ok := actors.CallerFrom(ctx)
	if !ok || caller.Scope == nil {
		return tools
	}
	set := e.direct.Load()
	if set == nil {
		set = &directSet{}
	}
	out := tools[:0:0]
	for _, t := range tools {
		d, upstreamTool := set.tools[t.Name]
		if !upstreamTool || caller.AllowsTool(d.server, d.raw, d.readOnly) {
			out = append(out, t)
		}
	}
	return out
}

const directInstructions = "mcpproxy connects you to the tools of many MCP servers. " +
	"Every tool is listed as itself, named \"server" + config.DefaultToolNameSeparator + "tool\" (unless the proxy's " +
	"tool_name_separator says otherwise); call it directly. retrieve_tools searches them, " +
	"call_tool calls one by \"server:tool\", and upstream_servers shows which servers are connected."
