package actors

import (
	"context"
	"encoding/json"
	"slices"
	"strings"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcpproxy/mcpproxy/actors/passthrough"
	"github.com/mcpproxy/mcpproxy/actors/store"
	"github.com/mcpproxy/mcpproxy/config"
)

// Tool-level trust: quarantine is one decision per server; the pins are one per tool. The
// registry owns the pins (r.pins: the approved definition and hash of each tool, by server;
// the store holds them durably under tp/<server>, written by the saver goroutine with the
// config, so an answer that approves comes after both are on disk).
//
//   - A server is pinned when it is approved: leaving quarantine pins its current tools
//     (replacing older pins); a server that is not quarantined and has no pins at all (added
//     with "quarantined": false, or from before tool pins existed) pins its first listing.
//     Leaving quarantine before any listing drops the pins, so the first listing pins.
//   - A tool of a pinned server that is not quarantined is approved when its definition
//     hash equals its pin, changed when it differs, pending when it has no pin. Changed
//     and pending tools are held back: out of the index, refused by callTool, hidden and
//     refused on the passthrough. A removed tool simply goes (its pin stays; should it come
//     back as it was, it is approved). A quarantined server's tools show their approval
//     against the pins, but only the whole server awaits review.
//   - disabled_tools (config) hides and refuses single tools whatever their approval.
//
// Every change of the set of held-back tools of a server publishes servers.changed with
// reason tools_review, counts in status (tools.awaiting_review) and goes to the sessions
// actor (PassthroughTools) with the pins and disabled_tools.

// Approval states of a tool (GET /api/v1/servers/{name}/tools).
const (
	ApprovalApproved = "approved"
	ApprovalPending  = "pending"
	ApprovalChanged  = "changed"
)

// ReasonToolsReview is the servers.changed reason when the set of a server's tools that
// await review changes.
const ReasonToolsReview = "tools_review"

// PinStore keeps the tool pins (actors/store implements it).
type PinStore interface {
	AllPins() (map[string]map[string]store.ToolPin, error)
	WritePins([]store.PinChange) error
}

// ServerTool is one tool in a server's own list: the Tool, its canonical definition, its
// approval and whether it is disabled; for a changed tool, the pinned definition.
type ServerTool struct {
	Tool
	Definition json.RawMessage `json:"definition"`
	Approval   string          `json:"approval"`
	Previous   json.RawMessage `json:"previous,omitempty"`
	Disabled   bool            `json:"disabled"`
}

// Requests of tool-level trust.
type (
	// approveTools pins the current definitions of Tools (or of all tools).
	approveTools struct {
		Name  string
		Tools []string
		All   bool
	}
	// setToolDisabled adds Tool to the server's disabled_tools or takes it out.
	setToolDisabled struct {
		Name, Tool string
		Disabled   bool
	}
)

// maxExtra bounds the tools of one server that only passthrough sessions listed.
const maxExtra = 1000

// reviewed is every tool of a server under review: the shared connection's list, then the
// tools only passthrough sessions listed (rw.extra: a server may offer some tools, such as
// sampling ones, only to clients that declare the capability), by name.
func (r *registry) reviewed(rw *row) []Tool {
	if len(rw.extra) == 0 {
		return rw.tools
	}
	out := slices.Clone(rw.tools)
	var extra []Tool
	for name, t := range rw.extra {
		if _, listed := rw.toolNamed(name); !listed {
			extra = append(extra, t)
		}
	}
	slices.SortFunc(extra, func(a, b Tool) int { return strings.Compare(a.Raw, b.Raw) })
	return append(out, extra...)
}

// sessionTools takes the tools a passthrough session listed that await review and keeps
// those the shared connection does not list, so they can be reviewed and approved.
func (r *registry) sessionTools(ctx actor.Context, m passthrough.Unapproved) {
	rw := r.rows[m.Server]
	if rw == nil || rw.cfg.IsQuarantined() {
		return
	}
	changed := false
	for name, def := range m.Tools {
		if _, listed := rw.toolNamed(name); listed {
			continue // the shared listing governs it
		}
		if old, ok := rw.extra[name]; ok && old.Hash == def.Hash {
			continue
		}
		if rw.extra == nil {
			rw.extra = map[string]Tool{}
		}
		if _, ok := rw.extra[name]; !ok && len(rw.extra) >= maxExtra {
			continue
		}
		var f struct {
			Description string          `json:"description"`
			InputSchema json.RawMessage `json:"inputSchema"`
			Annotations json.RawMessage `json:"annotations"`
		}
		_ = json.Unmarshal(def.JSON, &f)
		if len(f.InputSchema) == 0 {
			f.InputSchema = json.RawMessage(`{"type":"object"}`)
		}
		rw.extra[name] = Tool{Name: m.Server + ":" + name, Server: m.Server, Raw: name, Description: f.Description,
			InputSchema: f.InputSchema, Annotations: f.Annotations, Def: def.JSON, Hash: def.Hash}
		changed = true
	}
	if changed {
		r.retrust(ctx, m.Server, false)
	}
}

// ReportSessionTools hands the registry the tools a passthrough session listed that await
// review (no reply).
func (c *Client) ReportSessionTools(u passthrough.Unapproved) { c.sys.Root.Send(c.registry, u) }

// loadPins reads every server's pins at start, once, before any request is served.
func (r *registry) loadPins() {
	r.pins = map[string]map[string]store.ToolPin{}
	if r.opts.Pins == nil {
		return
	}
	all, err := r.opts.Pins.AllPins()
	if err != nil {
		// Without its pins every approved server's tools would be held back; the daemon
		// still runs, and says why.
		r.log.Error("loading tool pins failed; tools of approved servers await review", "err", err)
		r.pinsLost = true
		return
	}
	r.pins = all
}

// approval is the approval state of one of a server's listed tools.
func (r *registry) approval(name string, t Tool) string {
	pins, ok := r.pins[name]
	if !ok {
		return ApprovalPending
	}
	p, ok := pins[t.Raw]
	switch {
	case !ok:
		return ApprovalPending
	case p.Hash != t.Hash:
		return ApprovalChanged
	}
	return ApprovalApproved
}

// held reports whether a tool of a server that is not quarantined awaits review.
func (r *registry) held(name string, rw *row, t Tool) bool {
	return !rw.cfg.IsQuarantined() && r.approval(name, t) != ApprovalApproved
}

// agentTool reports whether agents may see and call the tool (the server's own checks
// aside): it is neither held back nor disabled.
func (r *registry) agentTool(name string, rw *row, t Tool) bool {
	return !rw.cfg.ToolDisabled(t.Raw) && !r.held(name, rw, t)
}

// toolRefusal says why an agent may not call a listed tool, nil when it may.
func (r *registry) toolRefusal(name string, rw *row, t Tool) error {
	if rw.cfg.ToolDisabled(t.Raw) {
		return Errorf(CodeConflict, "tool %q of server %q is disabled", t.Raw, name)
	}
	switch r.approval(name, t) {
	case ApprovalChanged:
		return Errorf(CodeConflict, "tool %q of server %q changed since it was approved and awaits review; approve it before calling it", t.Raw, name)
	case ApprovalPending:
		return Errorf(CodeConflict, "tool %q of server %q is new and awaits review; approve it before calling it", t.Raw, name)
	}
	return nil
}

// pinTools pins tools of a server (replace: the pins of every other tool go) and queues
// the write for the next save.
func (r *registry) pinTools(name string, tools []Tool, replace bool) {
	next := map[string]store.ToolPin{}
	if old := r.pins[name]; !replace {
		for k, p := range old {
			next[k] = p
		}
	}
	set := make(map[string]store.ToolPin, len(tools))
	for _, t := range tools {
		p := store.ToolPin{Hash: t.Hash, Def: t.Def}
		next[t.Raw], set[t.Raw] = p, p
	}
	r.pins[name] = next
	r.pinWrites = append(r.pinWrites, store.PinChange{Server: name, Set: set, Replace: replace})
}

// unpin drops a server's pins (it is removed, or left quarantine before any listing).
func (r *registry) unpin(name string) {
	if _, ok := r.pins[name]; !ok {
		return
	}
	delete(r.pins, name)
	r.pinWrites = append(r.pinWrites, store.PinChange{Server: name, Delete: true})
}

// approveServer pins what a server lists as it leaves quarantine.
func (r *registry) approveServer(name string, rw *row) {
	if rw.tools == nil {
		r.unpin(name) // nothing listed yet: the first listing is pinned
		return
	}
	r.pinTools(name, rw.tools, true)
}

// listed handles a server's new tool list, and reports whether it pinned it: a server that
// is not quarantined and has no pins pins it (unless the pins could not be read: then nothing is pinned behind the
// user's back, and every tool awaits review).
func (r *registry) listed(name string, rw *row) (pinned bool) {
	pins, ok := r.pins[name]
	if !ok && !rw.cfg.IsQuarantined() && rw.tools != nil && !r.pinsLost {
		r.pinTools(name, rw.tools, true)
		return true
	}
	// A pin read from the store holds its own copy of the definition; when the tool lists
	// the same hash, the bytes are the same, so the pin keeps the tool's copy instead (after
	// a restart of a daemon with 10,000 approved tools, some MB of heap).
	for _, t := range rw.tools {
		if p, ok := pins[t.Raw]; ok && p.Hash == t.Hash && len(t.Def) > 0 {
			pins[t.Raw] = store.ToolPin{Hash: t.Hash, Def: t.Def}
		}
	}
	return false
}

// retrust brings what depends on a server's trust in line after its tools, pins, flags or
// disabled_tools changed: the count of tools awaiting review, the tools_review event, and
// the passthrough's rules (sent when the held set changed, or always with force, for a
// change of pins or disabled_tools). The caller reindexes.
func (r *registry) retrust(ctx actor.Context, name string, force bool) {
	rw := r.rows[name]
	if rw == nil {
		return
	}
	var held []string
	for _, t := range r.reviewed(rw) {
		if r.held(name, rw, t) {
			held = append(held, t.Raw+"\x00"+r.approval(name, t))
		}
	}
	slices.Sort(held)
	sig := strings.Join(held, "\x01")
	changed := sig != rw.review
	rw.review, rw.awaiting = sig, len(held)
	if changed {
		r.changed(ctx, name, ReasonToolsReview)
	}
	if changed || force {
		r.pushRules(ctx, name, rw)
	}
}

// rules are a server's tool rules for the passthrough.
func (r *registry) rules(name string, rw *row) passthrough.ToolRules {
	tr := passthrough.ToolRules{Enforced: true, Ver: r.rulesVer}
	if pins, ok := r.pins[name]; ok {
		tr.Pins = make(map[string]string, len(pins))
		for k, p := range pins {
			tr.Pins[k] = p.Hash
		}
	}
	for _, t := range r.reviewed(rw) {
		if r.held(name, rw, t) && r.approval(name, t) == ApprovalChanged {
			if tr.Held == nil {
				tr.Held = map[string]bool{}
			}
			tr.Held[t.Raw] = true
		}
	}
	if len(rw.cfg.DisabledTools) > 0 {
		tr.Disabled = make(map[string]bool, len(rw.cfg.DisabledTools))
		for _, t := range rw.cfg.DisabledTools {
			tr.Disabled[t] = true
		}
	}
	return tr
}

// pushRules sends a server's new tool rules to the sessions actor.
func (r *registry) pushRules(ctx actor.Context, name string, rw *row) {
	if r.opts.Sessions == nil {
		return
	}
	r.rulesVer++
	ctx.Send(r.opts.Sessions, PassthroughTools{Server: name, Rules: r.rules(name, rw)})
}

// serverToolList is a server's own tool list with approval, definitions and the switch.
func (r *registry) serverToolList(name string, rw *row) ServerTools {
	tools := r.reviewed(rw)
	out := ServerTools{Server: name, Quarantined: rw.cfg.IsQuarantined(), Tools: make([]ServerTool, 0, len(tools))}
	for _, t := range tools {
		st := ServerTool{Tool: t, Definition: t.Def, Approval: r.approval(name, t), Disabled: rw.cfg.ToolDisabled(t.Raw)}
		if st.Approval == ApprovalChanged {
			st.Previous = r.pins[name][t.Raw].Def
		}
		if !rw.cfg.IsQuarantined() && st.Approval != ApprovalApproved {
			out.AwaitingReview++
		}
		out.Tools = append(out.Tools, st)
	}
	return out
}

func (r *registry) serverTools(ctx actor.Context, m getServerTools) {
	rw, err := r.row(m.Name)
	if err != nil {
		ctx.Respond(reply{err: err})
		return
	}
	ctx.Respond(reply{v: r.serverToolList(m.Name, rw)})
}

// approve answers approveTools: the pins are written (with the config save that follows
// them in order) before the answer.
func (r *registry) approve(ctx actor.Context, m approveTools) {
	rw, err := r.row(m.Name)
	if err != nil {
		ctx.Respond(reply{err: err})
		return
	}
	if rw.cfg.IsQuarantined() {
		ctx.Respond(reply{err: Errorf(CodeConflict, "server %q is quarantined: approve the server (POST /api/v1/servers/%s/quarantine with {\"quarantined\": false}), which approves all its tools", m.Name, m.Name)})
		return
	}
	var pick []Tool
	tools := r.reviewed(rw)
	if m.All {
		pick = tools
	} else {
		if len(m.Tools) == 0 {
			ctx.Respond(reply{err: Errorf(CodeInvalidArgument, "tools: name at least one tool, or say {\"all\": true}")})
			return
		}
		for _, n := range m.Tools {
			i := slices.IndexFunc(tools, func(t Tool) bool { return t.Raw == n })
			if i < 0 {
				ctx.Respond(reply{err: Errorf(CodeInvalidArgument, "tools: server %q lists no tool %q", m.Name, n)})
				return
			}
			pick = append(pick, tools[i])
		}
	}
	r.pinTools(m.Name, pick, m.All)
	r.reindex(ctx, m.Name)
	r.retrust(ctx, m.Name, true)
	r.save(ctx.Sender(), reply{v: r.serverToolList(m.Name, rw)}, false, false)
}

// disableTool answers setToolDisabled; the config is saved before the answer. A tool must
// be listed by the server, or (to enable it) be in disabled_tools.
func (r *registry) disableTool(ctx actor.Context, m setToolDisabled) {
	rw, err := r.row(m.Name)
	if err != nil {
		ctx.Respond(reply{err: err})
		return
	}
	listed := slices.ContainsFunc(r.reviewed(rw), func(t Tool) bool { return t.Raw == m.Tool })
	if !listed && !(rw.cfg.ToolDisabled(m.Tool) && !m.Disabled) {
		ctx.Respond(reply{err: Errorf(CodeNotFound, "server %q lists no tool %q", m.Name, m.Tool)})
		return
	}
	if rw.cfg.ToolDisabled(m.Tool) == m.Disabled {
		ctx.Respond(reply{v: r.serverToolList(m.Name, rw)})
		return
	}
	// A new slice: the saver's snapshots share the old one.
	next := slices.DeleteFunc(slices.Clone(rw.cfg.DisabledTools), func(t string) bool { return t == m.Tool })
	if m.Disabled {
		next = append(next, m.Tool)
	}
	if len(next) == 0 {
		next = nil
	}
	rw.cfg.DisabledTools = next
	r.setFlags(m.Name, func(sc *config.ServerConfig) { sc.DisabledTools = next })
	r.reindex(ctx, m.Name)
	r.retrust(ctx, m.Name, true)
	r.persistFlags(ctx.Sender(), reply{v: r.serverToolList(m.Name, rw)})
}

// ApproveTools pins the current definitions of a server's tools (all of them with all):
// they are approved, and come back to search, call_tool and the passthrough.
func (c *Client) ApproveTools(ctx context.Context, name string, tools []string, all bool) (ServerTools, error) {
	return askValue[ServerTools](c, ctx, approveTools{Name: name, Tools: tools, All: all})
}

// SetToolDisabled disables or enables one tool of a server (disabled_tools) and saves it.
func (c *Client) SetToolDisabled(ctx context.Context, name, tool string, disabled bool) (ServerTools, error) {
	return askValue[ServerTools](c, ctx, setToolDisabled{Name: name, Tool: tool, Disabled: disabled})
}
