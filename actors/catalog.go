package actors

import (
	"context"
	"encoding/json"
	"regexp"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/actors/activity"
	"github.com/mcpproxy/mcpproxy/actors/upstream"
)

// The registry's part in the aggregation of prompts and resources on /mcp and /mcp/all:
// each row keeps its upstream's latest catalog (upstream_catalog.go learns it), and the
// registry keeps the URI map (uris, tmpls: which servers list each resource URI and each
// resource template), from which it decides the URI agents see and routes every request
// that names one.
//
// # Names
//
// A prompt is listed as server+separator+prompt, like a direct tool (the endpoint adds the
// separator, tool_name_separator). A resource keeps its own URI when no other configured
// server lists the same URI; when several do, each is listed as
// NamespacedURI(server, uri), "mcpproxy://<server>/<uri>", and so is a resource template
// that several servers offer. The map counts every configured server that has a catalog,
// reachable or not, so that a URI does not change its name (under an agent's
// subscription) when another server connects or is quarantined. A URI that matches no
// listed resource is routed by the templates: the one unnamespaced template that matches
// it, or, under mcpproxy://<server>/, that server's.
//
// # Rules
//
// Everything that holds for call_tool holds here, in the same order: an agent token's scope
// first (so that a token learns nothing beyond it), then the server must be reachable
// (known, enabled, not quarantined, ready), then the prompt or resource must be in its
// catalog; the request then goes to the upstream actor, which answers the caller
// directly, bounded by call_tool_timeout. A quarantined, disabled or not-ready server's
// prompts and resources are not listed and are refused.
//
// A token's scope applies by server: its servers decide which servers' prompts and
// resources it sees and uses. Its tool globs and read_only narrow tools only, since they
// name tools and readOnlyHint, which prompts and resources do not have; prompts/get,
// resources/read, completion/complete and subscriptions read and change nothing upstream.
// A URI of a server outside the scope is answered as one no server lists. A refusal's
// activity reason for a prompt or URI the server does not list is unknown_tool, the
// reason the activity log already has for "not in the server's list".

// CatalogScheme is the scheme of namespaced URIs (NamespacedURI).
const CatalogScheme = "mcpproxy"

// NamespacedURI is how a resource URI (or template) that several servers list is listed
// for server: "mcpproxy://<server>/<uri>", the server's own URI unchanged after the slash.
func NamespacedURI(server, uri string) string {
	return CatalogScheme + "://" + server + "/" + uri
}

// CatalogEntry is one prompt, resource or template as agents see it: Key is the URI as
// listed (prompts: the server's own name; the endpoint namespaces it), Raw the server's
// own name or URI, Def its definition as the server wrote it.
type CatalogEntry struct {
	Server string
	Key    string
	Raw    string
	Def    json.RawMessage
}

// CatalogView is the catalog of every server agents may reach now, sorted by server.
type CatalogView struct {
	Prompts, Resources, Templates []CatalogEntry
}

// CatalogRequest is one agent request to an upstream's catalog. Method is prompts/get
// (Server and Prompt name it), resources/read (URI, as listed) or completion/complete
// (RefType "ref/prompt" with Server and Prompt, or "ref/resource" with URI). Params are
// the request's other params (arguments, argument, context); the registry adds the name,
// uri or ref the server knows.
type CatalogRequest struct {
	Method         string
	Server, Prompt string
	URI            string
	RefType        string
	Params         map[string]any
}

type (
	listCatalog    struct{ Scope Scope }
	catalogRequest struct {
		CatalogRequest
		Scope Scope
	}
	subscribeRequest struct {
		URI, Key string
		Sink     ResourceSink
		Scope    Scope
	}
	unsubscribeRequest struct {
		URI, Key string
		Scope    Scope
	}
	// dropSubscriber ends every subscription of an agent session that has ended; one-way.
	dropSubscriber struct{ Key string }
)

// uriTemplate is one resource template the map knows: its pattern and the servers offering it.
type uriTemplate struct {
	re      *regexp.Regexp
	servers map[string]bool
}

// setCatalog replaces a row's catalog (nil: the row is gone) and updates the URI map.
func (r *registry) setCatalog(name string, rw *row, cat *Catalog) {
	if old := rw.catalog; old != nil {
		for _, it := range old.Resources {
			if s := r.uris[it.Key]; s != nil {
				delete(s, name)
				if len(s) == 0 {
					delete(r.uris, it.Key)
				}
			}
		}
		for _, it := range old.Templates {
			if t := r.tmpls[it.Key]; t != nil {
				delete(t.servers, name)
				if len(t.servers) == 0 {
					delete(r.tmpls, it.Key)
				}
			}
		}
	}
	rw.catalog = cat
	if cat == nil {
		return
	}
	if r.uris == nil {
		r.uris, r.tmpls = map[string]map[string]bool{}, map[string]*uriTemplate{}
	}
	for _, it := range cat.Resources {
		if r.uris[it.Key] == nil {
			r.uris[it.Key] = map[string]bool{}
		}
		r.uris[it.Key][name] = true
	}
	for _, it := range cat.Templates {
		t := r.tmpls[it.Key]
		if t == nil {
			var parsed mcp.URITemplate
			quoted, _ := json.Marshal(it.Key)
			if json.Unmarshal(quoted, &parsed) != nil {
				continue // not a URI template: listed, but matches nothing
			}
			t = &uriTemplate{re: parsed.Regexp(), servers: map[string]bool{}}
			r.tmpls[it.Key] = t
		}
		t.servers[name] = true
	}
}

// listedURI is the URI agents see for server's resource uri.
func (r *registry) listedURI(server, uri string) string {
	if len(r.uris[uri]) > 1 {
		return NamespacedURI(server, uri)
	}
	return uri
}

// listedTemplate is the template agents see for server's template.
func (r *registry) listedTemplate(server, tmpl string) string {
	if t := r.tmpls[tmpl]; t != nil && len(t.servers) > 1 {
		return NamespacedURI(server, tmpl)
	}
	return tmpl
}

// resolveURI finds the server and its own URI for a URI an agent names: a listed resource,
// a listed template (completion refs name them), or a URI one template matches.
func (r *registry) resolveURI(listed string) (server, uri string, ok bool) {
	if rest, found := strings.CutPrefix(listed, CatalogScheme+"://"); found {
		server, uri, _ = strings.Cut(rest, "/")
		if rw := r.rows[server]; rw != nil && rw.catalog != nil && uri != "" {
			if r.uris[uri][server] || r.tmpls[uri] != nil && r.tmpls[uri].servers[server] {
				return server, uri, true
			}
			for _, it := range rw.catalog.Templates {
				if t := r.tmpls[it.Key]; t != nil && t.re.MatchString(uri) {
					return server, uri, true
				}
			}
		}
	}
	if owners := r.uris[listed]; len(owners) == 1 {
		for s := range owners {
			return s, listed, true
		}
	}
	if t := r.tmpls[listed]; t != nil && len(t.servers) == 1 {
		for s := range t.servers {
			return s, listed, true
		}
	}
	found := 0
	for _, t := range r.tmpls {
		if len(t.servers) == 1 && t.re.MatchString(listed) {
			for s := range t.servers {
				server = s
			}
			found++
		}
	}
	if found == 1 {
		return server, listed, true
	}
	return "", "", false
}

// catalogVisible is the row of a server whose catalog caller may use now, or why not.
func (r *registry) catalogVisible(scope Scope, server string) (*row, error) {
	if scope != nil && !scope.AllowsServer(server) {
		return nil, ErrServerOutOfScope(server)
	}
	rw, err := r.unreachable(server)
	if err != nil {
		return nil, err
	}
	if rw.catalog == nil {
		return nil, Errorf(CodeNotFound, "server %q offers no prompts or resources", server)
	}
	return rw, nil
}

func (r *registry) listCatalog(ctx actor.Context, m listCatalog) {
	var v CatalogView
	for _, name := range r.names() {
		rw := r.rows[name]
		if rw.catalog == nil {
			continue
		}
		if _, err := r.catalogVisible(m.Scope, name); err != nil {
			continue
		}
		for _, it := range rw.catalog.Prompts {
			v.Prompts = append(v.Prompts, CatalogEntry{Server: name, Key: it.Key, Raw: it.Key, Def: it.Def})
		}
		for _, it := range rw.catalog.Resources {
			v.Resources = append(v.Resources, CatalogEntry{Server: name, Key: r.listedURI(name, it.Key), Raw: it.Key, Def: it.Def})
		}
		for _, it := range rw.catalog.Templates {
			v.Templates = append(v.Templates, CatalogEntry{Server: name, Key: r.listedTemplate(name, it.Key), Raw: it.Key, Def: it.Def})
		}
	}
	ctx.Respond(reply{v: v})
}

// routeCatalog finds the server a request is for and the params the server is to get.
func (r *registry) routeCatalog(m catalogRequest) (*row, string, map[string]any, error) {
	params := make(map[string]any, len(m.Params)+1)
	for k, v := range m.Params {
		params[k] = v
	}
	byURI := m.Method == string(mcp.MethodResourcesRead) || m.RefType == "ref/resource"
	server, uri := m.Server, ""
	if byURI {
		s, u, ok := r.resolveURI(m.URI)
		if !ok || m.Scope != nil && !m.Scope.AllowsServer(s) {
			// A URI of a server outside the token's scope is as unknown as one nobody lists.
			return nil, "", nil, Errorf(CodeNotFound, "no server lists resource %q", m.URI).refused(activity.ReasonUnknownTool)
		}
		server, uri = s, u
	}
	rw, err := r.catalogVisible(m.Scope, server)
	if err != nil {
		return nil, "", nil, err
	}
	if !byURI && !hasItem(rw.catalog.Prompts, m.Prompt) {
		return nil, "", nil, Errorf(CodeNotFound, "server %q has no prompt %q", server, m.Prompt).refused(activity.ReasonUnknownTool)
	}
	switch {
	case m.Method == string(mcp.MethodCompletionComplete) && byURI:
		params["ref"] = map[string]any{"type": "ref/resource", "uri": uri}
	case m.Method == string(mcp.MethodCompletionComplete):
		params["ref"] = map[string]any{"type": "ref/prompt", "name": m.Prompt}
	case byURI:
		params["uri"] = uri
	default:
		params["name"] = m.Prompt
	}
	return rw, server, params, nil
}

func hasItem(items []upstream.Item, key string) bool {
	for _, it := range items {
		if it.Key == key {
			return true
		}
	}
	return false
}

func (r *registry) catalogRequest(ctx actor.Context, m catalogRequest) {
	switch m.Method {
	case string(mcp.MethodPromptsGet), string(mcp.MethodResourcesRead), string(mcp.MethodCompletionComplete):
	default:
		ctx.Respond(catalogReply{Err: Errorf(CodeInvalidArgument, "method %q is not a catalog request", m.Method)})
		return
	}
	rw, server, params, err := r.routeCatalog(m)
	if err != nil {
		ctx.Respond(catalogReply{Server: server, Err: err})
		return
	}
	ctx.RequestWithCustomSender(rw.pid, catalogCall{Server: server, Method: m.Method, Params: params, Timeout: r.eff.Timeout()}, ctx.Sender())
}

func (r *registry) subscribeRequest(ctx actor.Context, m subscribeRequest) {
	server, uri, ok := r.resolveURI(m.URI)
	if !ok || m.Scope != nil && !m.Scope.AllowsServer(server) {
		ctx.Respond(reply{err: Errorf(CodeNotFound, "no server lists resource %q", m.URI)})
		return
	}
	rw, err := r.catalogVisible(m.Scope, server)
	if err != nil {
		ctx.Respond(reply{err: err})
		return
	}
	if !rw.catalog.Subscribe {
		ctx.Respond(reply{err: Errorf(CodeInvalidArgument, "server %q does not support resource subscriptions", server)})
		return
	}
	if r.subscribers == nil {
		r.subscribers = map[string]map[string]bool{}
	}
	if r.subscribers[m.Key] == nil {
		r.subscribers[m.Key] = map[string]bool{}
	}
	r.subscribers[m.Key][server] = true
	ctx.RequestWithCustomSender(rw.pid, subscribeResource{URI: uri, Listed: m.URI, Key: m.Key, Sink: m.Sink, Timeout: r.eff.Timeout()}, ctx.Sender())
}

func (r *registry) unsubscribeRequest(ctx actor.Context, m unsubscribeRequest) {
	server, uri, ok := r.resolveURI(m.URI)
	rw := r.rows[server]
	if !ok || rw == nil || rw.pid == nil || (m.Scope != nil && !m.Scope.AllowsServer(server)) {
		ctx.Respond(reply{}) // nothing to end: unsubscribing is idempotent
		return
	}
	ctx.RequestWithCustomSender(rw.pid, unsubscribeResource{URI: uri, Key: m.Key}, ctx.Sender())
}

// dropSubscriber tells the upstream actors a session subscribed through that it has ended.
func (r *registry) dropSubscriber(ctx actor.Context, m dropSubscriber) {
	for server := range r.subscribers[m.Key] {
		if rw := r.rows[server]; rw != nil && rw.pid != nil {
			ctx.Send(rw.pid, m)
		}
	}
	delete(r.subscribers, m.Key)
}

// Catalog lists the prompts, resources and templates of every server the caller may reach
// now (CallerFrom(ctx): an agent token sees only its servers').
func (c *Client) Catalog(ctx context.Context) (CatalogView, error) {
	return askValue[CatalogView](c, ctx, listCatalog{Scope: callerScope(ctx)})
}

// CatalogCall makes one catalog request for the caller, with the rules of CallTool; it
// returns the upstream's raw result, the server it went to ("" when it was not routed)
// and how long the upstream took.
func (c *Client) CatalogCall(ctx context.Context, req CatalogRequest) (json.RawMessage, string, time.Duration, error) {
	wait := maxCallWait
	if _, ok := ctx.Deadline(); ok {
		wait = timeoutOf(ctx)
	}
	res, err := c.ask(ctx, catalogRequest{CatalogRequest: req, Scope: callerScope(ctx)}, wait)
	if err != nil {
		return nil, "", 0, err
	}
	rep, ok := res.(catalogReply)
	if !ok {
		return nil, "", 0, Errorf(CodeInternal, "internal error: unexpected reply %T", res)
	}
	return rep.Result, rep.Server, rep.Took, rep.Err
}

// SubscribeResource subscribes the agent session key to the resource uri (as listed):
// sink is told of every notifications/resources/updated until UnsubscribeResource, the
// session's end (sink reports it) or the server's quarantine.
func (c *Client) SubscribeResource(ctx context.Context, uri, key string, sink ResourceSink) error {
	_, err := askValue[any](c, ctx, subscribeRequest{URI: uri, Key: key, Sink: sink, Scope: callerScope(ctx)})
	return err
}

// DropSubscriber ends every subscription of the agent session key, which has ended. It
// does not wait.
func (c *Client) DropSubscriber(key string) {
	c.sys.Root.Send(c.registry, dropSubscriber{Key: key})
}

// UnsubscribeResource ends key's subscription to uri; unknown ones are no error.
func (c *Client) UnsubscribeResource(ctx context.Context, uri, key string) error {
	_, err := askValue[any](c, ctx, unsubscribeRequest{URI: uri, Key: key, Scope: callerScope(ctx)})
	return err
}
