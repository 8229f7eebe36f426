package mcpserver

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/activity"
	"github.com/mcpproxy/mcpproxy/config"
)

// Prompts and resources: /mcp (in both modes) and /mcp/all list the prompts, resources and
// resource templates of every server agents may reach now, as the registry's catalog
// (actors/catalog.go) has them: a prompt as server+separator+prompt (tool_name_separator,
// like a direct tool), a resource and a template under the URI the registry's URI map
// gives (its own, or mcpproxy://<server>/<uri> when several servers list it), each
// definition otherwise as its server wrote it. prompts/get, resources/read and
// completion/complete go to the registry, which routes them by name or URI with the rules
// of call_tool (scope, quarantine, readiness, call_tool_timeout); prompts/get and
// resources/read are recorded in the activity log like a tool call (Method and Name say
// which); completion/complete is not, on purpose: a client asks it at each keystroke of an
// argument, it reads nothing and changes nothing, and its records would crowd out the
// calls the log is for. resources/subscribe and unsubscribe are forwarded to the server's upstream
// actor, which subscribes once on its shared connection and passes
// notifications/resources/updated back to each subscribed agent session, under the URI
// that agent knows. The copy in the mcp-go servers is rebuilt when the hub says the
// servers changed (as the direct tools are), and mcp-go then sends
// notifications/prompts/list_changed or notifications/resources/list_changed to every
// session. An agent token sees only its servers' prompts and resources (WithPromptFilter,
// and the list hooks for resources and templates); the registry refuses the rest.

// catalogSet is one snapshot of the listed catalog: which server each listed prompt,
// resource and template is of (and the prompt's own name); replaced whole.
type catalogSet struct {
	prompts   map[string]directTool // listed name -> server, the server's own name
	resources map[string]string     // listed URI -> server
	templates map[string]string     // listed template -> server
	// fingerprints of each kind, so that only a kind that changed is replaced (and its
	// list_changed sent).
	fpPrompts, fpResources, fpTemplates string
}

// catalogServers are the options the catalog adds to an endpoint's mcp-go server.
func (e *Endpoint) catalogOptions() []server.ServerOption {
	return []server.ServerOption{
		server.WithPromptCapabilities(true),
		server.WithResourceCapabilities(true, true),
		server.WithCompletions(),
		server.WithPromptCompletionProvider(catalogCompletions{e}),
		server.WithResourceCompletionProvider(catalogCompletions{e}),
		server.WithPromptFilter(e.promptScopeFilter),
		server.WithResourceRecovery(),
	}
}

// catalogHooks add the catalog's hooks: subscriptions, and a token's scope on the
// resource lists.
func (e *Endpoint) catalogHooks(hooks *server.Hooks) {
	hooks.AddOnRequestInitialization(e.onSubscription)
	hooks.AddOnUnregisterSession(func(_ context.Context, s server.ClientSession) {
		e.opts.Backend.DropSubscriber(s.SessionID())
	})
	hooks.AddAfterListResources(func(ctx context.Context, _ any, _ *mcp.ListResourcesRequest, res *mcp.ListResourcesResult) {
		if res != nil {
			res.Resources = scoped(ctx, res.Resources, func(r mcp.Resource) string { return e.catalogSet().resources[r.URI] })
		}
	})
	hooks.AddAfterListResourceTemplates(func(ctx context.Context, _ any, _ *mcp.ListResourceTemplatesRequest, res *mcp.ListResourceTemplatesResult) {
		if res != nil {
			res.ResourceTemplates = scoped(ctx, res.ResourceTemplates, func(t mcp.ResourceTemplate) string {
				if t.URITemplate == nil {
					return ""
				}
				return e.catalogSet().templates[t.URITemplate.Raw()]
			})
		}
	})
}

// scoped keeps the items whose server the caller's scope allows.
func scoped[T any](ctx context.Context, items []T, serverOf func(T) string) []T {
	caller, ok := actors.CallerFrom(ctx)
	if !ok || caller.Scope == nil {
		return items
	}
	out := items[:0:0]
	for _, it := range items {
		if caller.AllowsServer(serverOf(it)) {
			out = append(out, it)
		}
	}
	return out
}

func (e *Endpoint) catalogSet() *catalogSet {
	if s := e.catalog.Load(); s != nil {
		return s
	}
	return &catalogSet{}
}

func (e *Endpoint) promptScopeFilter(ctx context.Context, prompts []mcp.Prompt) []mcp.Prompt {
	return scoped(ctx, prompts, func(p mcp.Prompt) string { return e.catalogSet().prompts[p.Name].server })
}

// fingerprint sums what agents see of a list.
func fingerprint(sep string, entries []actors.CatalogEntry) string {
	sum := sha256.New()
	sum.Write([]byte(sep))
	for _, c := range entries {
		fmt.Fprintf(sum, "\x00%s\x00%s\x00%s\x00%s", c.Server, c.Key, c.Raw, c.Def)
	}
	return hex.EncodeToString(sum.Sum(nil))
}

// refreshCatalog lists the registry's catalog and replaces, in both mcp-go servers, each
// kind that changed.
func (e *Endpoint) refreshCatalog(sep string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := e.opts.Backend.Catalog(ctx)
	if err != nil {
		e.log.Warn("catalog: listing the registry's prompts and resources", "err", err)
		return
	}
	cur := e.catalogSet()
	next := &catalogSet{prompts: cur.prompts, resources: cur.resources, templates: cur.templates,
		fpPrompts: fingerprint(sep, v.Prompts), fpResources: fingerprint("", v.Resources), fpTemplates: fingerprint("", v.Templates)}
	var apply []func(*server.MCPServer)
	if next.fpPrompts != cur.fpPrompts {
		prompts := e.catalogPrompts(sep, v.Prompts, next)
		apply = append(apply, func(s *server.MCPServer) { s.SetPrompts(prompts...) })
	}
	if next.fpResources != cur.fpResources {
		resources := e.catalogResources(v.Resources, next)
		apply = append(apply, func(s *server.MCPServer) { s.SetResources(resources...) })
	}
	if next.fpTemplates != cur.fpTemplates {
		templates := e.catalogTemplates(v.Templates, next)
		apply = append(apply, func(s *server.MCPServer) { s.SetResourceTemplates(templates...) })
	}
	if len(apply) == 0 {
		return
	}
	e.catalog.Store(next)
	for _, f := range apply {
		f(e.main)
		f(e.all)
	}
}

func (e *Endpoint) catalogPrompts(sep string, entries []actors.CatalogEntry, set *catalogSet) []server.ServerPrompt {
	set.prompts = make(map[string]directTool, len(entries))
	out := make([]server.ServerPrompt, 0, len(entries))
	for _, c := range entries {
		name := c.Server + sep + c.Raw
		var p mcp.Prompt
		if _, taken := set.prompts[name]; taken || json.Unmarshal(c.Def, &p) != nil {
			e.log.Debug("catalog: prompt left out (name taken or definition refused)", "server", c.Server, "prompt", c.Raw)
			continue
		}
		p.Name = name
		t := directTool{server: c.Server, raw: c.Raw}
		set.prompts[name] = t
		out = append(out, server.ServerPrompt{Prompt: p, Handler: e.getPrompt(t)})
	}
	return out
}

func (e *Endpoint) catalogResources(entries []actors.CatalogEntry, set *catalogSet) []server.ServerResource {
	set.resources = make(map[string]string, len(entries))
	out := make([]server.ServerResource, 0, len(entries))
	for _, c := range entries {
		var r mcp.Resource
		if _, taken := set.resources[c.Key]; taken || json.Unmarshal(c.Def, &r) != nil {
			e.log.Debug("catalog: resource left out (URI taken or definition refused)", "server", c.Server, "uri", c.Raw)
			continue
		}
		r.URI = c.Key
		set.resources[c.Key] = c.Server
		out = append(out, server.ServerResource{Resource: r, Handler: e.readResource})
	}
	return out
}

func (e *Endpoint) catalogTemplates(entries []actors.CatalogEntry, set *catalogSet) []server.ServerResourceTemplate {
	set.templates = make(map[string]string, len(entries))
	out := make([]server.ServerResourceTemplate, 0, len(entries))
	for _, c := range entries {
		var t mcp.ResourceTemplate
		var listed mcp.URITemplate
		quoted, _ := json.Marshal(c.Key)
		if _, taken := set.templates[c.Key]; taken || json.Unmarshal(c.Def, &t) != nil || json.Unmarshal(quoted, &listed) != nil {
			e.log.Debug("catalog: template left out (taken or definition refused)", "server", c.Server, "template", c.Raw)
			continue
		}
		t.URITemplate = &listed
		set.templates[c.Key] = c.Server
		out = append(out, server.ServerResourceTemplate{Template: t, Handler: e.readResource})
	}
	return out
}

// getPrompt is the handler of one listed prompt.
func (e *Endpoint) getPrompt(t directTool) server.PromptHandlerFunc {
	return func(ctx context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		rec := e.newRecord(ctx)
		rec.Method, rec.Server, rec.Name = string(mcp.MethodPromptsGet), t.server, t.raw
		params := map[string]any{}
		if len(req.Params.Arguments) > 0 {
			params["arguments"] = req.Params.Arguments
			rec.Arguments = encodeArguments(req.Params.Arguments)
		}
		raw, err := e.catalogCall(ctx, &rec, actors.CatalogRequest{Method: rec.Method, Server: t.server, Prompt: t.raw, Params: params})
		if err != nil {
			return nil, err
		}
		res, err := mcp.ParseGetPromptResult(&raw)
		if err != nil {
			err = actors.Errorf(actors.CodeUpstream, "prompts/get to %s: bad result: %v", t.server, err)
			e.recordFailure(rec, err)
			return nil, err
		}
		e.recordOK(rec, len(raw))
		return res, nil
	}
}

// readResource is the handler of every listed resource and template: the registry routes
// the URI.
func (e *Endpoint) readResource(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	rec := e.newRecord(ctx)
	rec.Method, rec.Name = string(mcp.MethodResourcesRead), req.Params.URI
	raw, err := e.catalogCall(ctx, &rec, actors.CatalogRequest{Method: rec.Method, URI: req.Params.URI})
	if err != nil {
		return nil, err
	}
	res, err := mcp.ParseReadResourceResult(&raw)
	if err != nil {
		err = actors.Errorf(actors.CodeUpstream, "resources/read to %s: bad result: %v", rec.Server, err)
		e.recordFailure(rec, err)
		return nil, err
	}
	e.recordOK(rec, len(raw))
	// Contents under a namespaced URI name it as the agent asked.
	if own, ok := strings.CutPrefix(req.Params.URI, actors.NamespacedURI(rec.Server, "")); ok {
		for i, c := range res.Contents {
			switch c := c.(type) {
			case mcp.TextResourceContents:
				if c.URI == own {
					c.URI = req.Params.URI
					res.Contents[i] = c
				}
			case mcp.BlobResourceContents:
				if c.URI == own {
					c.URI = req.Params.URI
					res.Contents[i] = c
				}
			}
		}
	}
	return res.Contents, nil
}

// catalogCall sends a catalog request to the registry and records a failure; rec learns the
// server it went to.
func (e *Endpoint) catalogCall(ctx context.Context, rec *activity.Record, req actors.CatalogRequest) (json.RawMessage, error) {
	raw, srv, took, err := e.opts.Backend.CatalogCall(ctx, req)
	if srv != "" {
		rec.Server = srv
	}
	rec.Upstream = took
	if err == nil && len(raw) == 0 {
		err = actors.Errorf(actors.CodeUpstream, "%s returned no result", req.Method)
	}
	if err != nil {
		e.recordFailure(*rec, err)
		return nil, err
	}
	return raw, nil
}

// recordOK records a catalog request the upstream answered.
func (e *Endpoint) recordOK(rec activity.Record, size int) {
	rec.Outcome, rec.ResultBytes = activity.OutcomeOK, size
	e.finish(rec)
}

// catalogCompletions routes completion/complete: a prompt by its listed name, a resource
// template by its listed URI.
type catalogCompletions struct{ e *Endpoint }

func (c catalogCompletions) CompletePromptArgument(ctx context.Context, name string, arg mcp.CompleteArgument, cc mcp.CompleteContext) (*mcp.Completion, error) {
	t, ok := c.e.catalogSet().prompts[name]
	if !ok {
		return nil, actors.Errorf(actors.CodeNotFound, "prompt %q not found", name)
	}
	return c.complete(ctx, actors.CatalogRequest{RefType: "ref/prompt", Server: t.server, Prompt: t.raw}, arg, cc)
}

func (c catalogCompletions) CompleteResourceArgument(ctx context.Context, uri string, arg mcp.CompleteArgument, cc mcp.CompleteContext) (*mcp.Completion, error) {
	return c.complete(ctx, actors.CatalogRequest{RefType: "ref/resource", URI: uri}, arg, cc)
}

func (c catalogCompletions) complete(ctx context.Context, req actors.CatalogRequest, arg mcp.CompleteArgument, cc mcp.CompleteContext) (*mcp.Completion, error) {
	req.Method = string(mcp.MethodCompletionComplete)
	req.Params = map[string]any{"argument": arg}
	if len(cc.Arguments) > 0 {
		req.Params["context"] = cc
	}
	raw, _, _, err := c.e.opts.Backend.CatalogCall(ctx, req)
	if err != nil {
		return nil, err
	}
	var res mcp.CompleteResult
	if err := json.Unmarshal(raw, &res); err != nil {
		return nil, actors.Errorf(actors.CodeUpstream, "completion/complete: bad result: %v", err)
	}
	return &res.Completion, nil
}

// resourceSink is one agent session's subscription sink: notifications/resources/updated
// go to that session on the endpoint's mcp-go server.
type resourceSink struct {
	srv     *server.MCPServer
	session string
}

var _ actors.ResourceSink = resourceSink{}

// Updated sends the notification without blocking (mcp-go drops it when the session's queue
// is full); false once the session is gone.
func (s resourceSink) Updated(uri string) bool {
	err := s.srv.SendNotificationToSpecificClient(s.session, mcp.MethodNotificationResourceUpdated, map[string]any{"uri": uri})
	return !errors.Is(err, server.ErrSessionNotFound)
}

// onSubscription forwards resources/subscribe and unsubscribe before mcp-go acknowledges
// them (an error here is the agent's answer). mcp-go calls it for every request.
func (e *Endpoint) onSubscription(ctx context.Context, _ any, message any) error {
	raw, ok := message.(json.RawMessage)
	if !ok || !strings.Contains(string(raw), "resources/") {
		return nil
	}
	var req struct {
		Method string `json:"method"`
		Params struct {
			URI string `json:"uri"`
		} `json:"params"`
	}
	if json.Unmarshal(raw, &req) != nil || req.Params.URI == "" {
		return nil
	}
	session, srv := server.ClientSessionFromContext(ctx), server.ServerFromContext(ctx)
	if session == nil || srv == nil {
		return nil
	}
	switch req.Method {
	case string(mcp.MethodResourcesSubscribe):
		return e.opts.Backend.SubscribeResource(ctx, req.Params.URI, session.SessionID(), resourceSink{srv: srv, session: session.SessionID()})
	case string(mcp.MethodResourcesUnsubscribe):
		return e.opts.Backend.UnsubscribeResource(ctx, req.Params.URI, session.SessionID())
	}
	return nil
}

// separator is the live tool_name_separator.
func (e *Endpoint) separator() string {
	if e.httpSrv != nil && e.httpSrv.Settings().ToolNameSeparator != "" {
		return e.httpSrv.Settings().ToolNameSeparator
	}
	return config.DefaultToolNameSeparator
}
