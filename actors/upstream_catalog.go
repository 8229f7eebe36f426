package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/actors/activity"
	"github.com/mcpproxy/mcpproxy/actors/upstream"
)

// This file is the upstream actor's part in the aggregation of prompts and resources
// (/mcp and /mcp/all): it learns the server's catalog (prompts, resources, templates) at
// connect, when the server advertises the capability, and again on
// notifications/prompts/list_changed or notifications/resources/list_changed (coalesced
// as tools are: a doorbell, one re-list in flight and at most one queued); it makes the
// catalog requests the registry forwards (catalogCall); and it owns the resource
// subscriptions of the agents on its shared connection: one upstream resources/subscribe
// per URI however many agents subscribed, each agent's sink told of
// notifications/resources/updated under the URI it subscribed to, renewed after a
// reconnect, dropped when the server is quarantined (clearSubscriptions) or the agent's
// session is gone (dropSubscriber from the registry when it ends, or its sink says so).

// Catalog is an upstream's prompts, resources and resource templates (upstream.Catalog).
type Catalog = upstream.Catalog

// ResourceSink is where one agent session's notifications/resources/updated go.
// Updated is called on the upstream actor's goroutine and must not block; it returns false
// when the session is gone, and the subscription is then dropped.
type ResourceSink interface {
	Updated(uri string) bool
}

type (
	// catalogCall is one request of an agent to the server's catalog: prompts/get,
	// resources/read or completion/complete, with params as the upstream is to get them
	// (names and URIs as the server wrote them). The reply is a catalogReply to the sender.
	catalogCall struct {
		Server  string
		Method  string
		Params  any
		Timeout time.Duration
	}
	catalogReply struct {
		Server string
		Result json.RawMessage
		Err    error
		Took   time.Duration
	}
	// subscribeResource subscribes an agent session (Key) to URI (as the server names
	// it); Listed is the URI the agent knows, which its notifications carry. Answered with a
	// reply once the upstream accepted (the first subscriber) or at once.
	subscribeResource struct {
		URI, Listed, Key string
		Sink             ResourceSink
		Timeout          time.Duration
	}
	// unsubscribeResource ends one session's subscription; answered with a reply.
	unsubscribeResource struct{ URI, Key string }
	// clearSubscriptions drops every agent's subscription (the server was quarantined).
	clearSubscriptions struct{}

	catalogChanged struct {
		gen  int
		bell *atomic.Bool
	}
	catalogListed struct {
		gen int
		cat Catalog
		err error
	}
	resourceUpdated struct {
		gen int
		uri string
	}
	// subscribed is the upstream's answer to the first subscribe of a URI.
	subscribed struct {
		gen    int
		uri    string
		err    error
		caller *actor.PID
	}
)

// subscription is one subscribed URI on the shared connection: the agents' sinks by key,
// each with the URI that agent knows.
type subscription struct {
	sinks  map[string]subscriber
	active bool // the upstream accepted resources/subscribe on this connection
}

type subscriber struct {
	sink   ResourceSink
	listed string
}

// onCatalogMessage handles the catalog's messages; false if m is not one of them.
func (u *upstreamActor) onCatalogMessage(ctx actor.Context, m any) bool {
	switch m := m.(type) {
	case catalogCall:
		u.catalogCall(ctx, m)
	case catalogChanged:
		u.onCatalogChanged(m)
	case catalogListed:
		u.onCatalogListed(m)
	case resourceUpdated:
		u.onResourceUpdated(m)
	case subscribeResource:
		u.subscribe(ctx, m)
	case unsubscribeResource:
		u.unsubscribe(ctx, m)
	case dropSubscriber:
		for uri, s := range u.subs {
			delete(s.sinks, m.Key)
			if len(s.sinks) == 0 {
				u.dropSubscription(uri)
			}
		}
	case clearSubscriptions:
		for uri := range u.subs {
			u.dropSubscription(uri)
		}
	case subscribed:
		u.onSubscribed(m)
	default:
		return false
	}
	return true
}

// catalogNotification routes the connection's catalog notifications to the actor (from
// the connection's goroutine); false if n is not one of them.
func catalogNotification(sys *actor.ActorSystem, self *actor.PID, gen int, bell *atomic.Bool, n mcp.JSONRPCNotification) bool {
	switch n.Method {
	case string(mcp.MethodNotificationPromptsListChanged), string(mcp.MethodNotificationResourcesListChanged):
		if bell.CompareAndSwap(false, true) {
			sys.Root.Send(self, catalogChanged{gen: gen, bell: bell})
		}
	case mcp.MethodNotificationResourceUpdated:
		if uri, ok := n.Params.AdditionalFields["uri"].(string); ok && uri != "" {
			sys.Root.Send(self, resourceUpdated{gen: gen, uri: uri})
		}
	default:
		return false
	}
	return true
}

// listCatalogAtConnect lists the catalog of a new connection (in the connect goroutine);
// a server whose catalog cannot be listed still serves its tools, so the error is logged
// and the catalog left empty.
func listCatalogAtConnect(ctx context.Context, p upstreamProps, conn *upstream.Conn) Catalog {
	cat, err := conn.ListCatalog(ctx)
	if err != nil {
		p.logger.Warn("listing prompts and resources failed", "server", p.name, "err", err)
		return Catalog{}
	}
	return cat
}

func (u *upstreamActor) onCatalogChanged(m catalogChanged) {
	if m.bell != nil {
		m.bell.Store(false)
	}
	if m.gen != u.gen {
		return
	}
	if u.state == StateConnecting {
		u.recatalog = true
		return
	}
	if u.state != StateReady {
		return
	}
	if u.catalogListing {
		u.catalogAgain = true
		return
	}
	u.catalogListing = true
	gen, self, sys, conn := u.gen, u.self, u.sys, u.conn
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cat, err := conn.ListCatalog(ctx)
		sys.Root.Send(self, catalogListed{gen: gen, cat: cat, err: err})
	}()
}

func (u *upstreamActor) onCatalogListed(m catalogListed) {
	if m.gen != u.gen || u.state != StateReady {
		return
	}
	u.catalogListing = false
	if m.err != nil {
		u.p.logger.Warn("re-list prompts and resources failed", "server", u.p.name, "err", u.scrub.Scrub(m.err.Error()))
	} else {
		u.reportCatalog(m.cat)
	}
	if u.catalogAgain {
		u.catalogAgain = false
		u.onCatalogChanged(catalogChanged{gen: u.gen})
	}
}

// reportCatalog sends the registry the current status with a new catalog.
func (u *upstreamActor) reportCatalog(cat Catalog) {
	u.pendingCatalog = &cat
	u.report(nil)
}

// catalogCall makes one catalog request in a goroutine, bounded by its timeout, and
// answers the sender directly, as call does for tools.
func (u *upstreamActor) catalogCall(ctx actor.Context, m catalogCall) {
	if u.state != StateReady || u.conn == nil {
		ctx.Respond(catalogReply{Server: m.Server, Err: Errorf(CodeUnavailable, "server %q is not ready (state %s)", u.p.name, u.state).refused(activity.ReasonNotReady)})
		return
	}
	conn, sys, sender, name := u.conn, u.sys, ctx.Sender(), u.p.name
	go func() {
		cctx, cancel := context.WithTimeout(context.Background(), m.Timeout)
		defer cancel()
		began := time.Now()
		res, err := conn.Request(cctx, m.Method, m.Params)
		sys.Root.Send(sender, catalogReply{Server: m.Server, Result: res, Err: upstreamRequestErr(name, m.Method, m.Timeout, err), Took: time.Since(began)})
	}()
}

// upstreamRequestErr types the error of a request to the upstream: a timeout, or the
// upstream's failure (already scrubbed by the connection).
func upstreamRequestErr(server, method string, timeout time.Duration, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, context.DeadlineExceeded):
		return Errorf(CodeTimeout, "%s to %s timed out after %s", method, server, timeout)
	default:
		return &Error{Code: CodeUpstream, Message: fmt.Sprintf("%s to %s failed: %s", method, server, err.Error())}
	}
}

func (u *upstreamActor) subscribe(ctx actor.Context, m subscribeResource) {
	if u.state != StateReady || u.conn == nil {
		ctx.Respond(reply{err: Errorf(CodeUnavailable, "server %q is not ready (state %s)", u.p.name, u.state)})
		return
	}
	if u.subs == nil {
		u.subs = map[string]*subscription{}
	}
	s := u.subs[m.URI]
	if s == nil {
		s = &subscription{sinks: map[string]subscriber{}}
		u.subs[m.URI] = s
	}
	s.sinks[m.Key] = subscriber{sink: m.Sink, listed: m.Listed}
	if s.active {
		ctx.Respond(reply{})
		return
	}
	u.sendSubscribe(m.URI, m.Timeout, ctx.Sender())
}

// sendSubscribe asks the upstream to subscribe to uri; the answer comes back as subscribed,
// which answers caller (nil: a renewal after a reconnect, which answers nobody).
func (u *upstreamActor) sendSubscribe(uri string, timeout time.Duration, caller *actor.PID) {
	conn, sys, self, gen, name := u.conn, u.sys, u.self, u.gen, u.p.name
	go func() {
		cctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		_, err := conn.Request(cctx, string(mcp.MethodResourcesSubscribe), map[string]any{"uri": uri})
		sys.Root.Send(self, subscribed{gen: gen, uri: uri, err: upstreamRequestErr(name, string(mcp.MethodResourcesSubscribe), timeout, err), caller: caller})
	}()
}

func (u *upstreamActor) onSubscribed(m subscribed) {
	answer := func(err error) {
		if m.caller != nil {
			u.sys.Root.Send(m.caller, reply{err: err})
		}
	}
	s := u.subs[m.uri]
	switch {
	case m.gen != u.gen:
		answer(Errorf(CodeUnavailable, "server %q reconnected meanwhile; subscribe again", u.p.name))
	case m.err != nil:
		if s != nil && !s.active && m.caller != nil {
			u.dropSubscription(m.uri)
		}
		answer(m.err)
	case s == nil:
		// Everyone left meanwhile: the upstream need not keep it.
		u.sendUnsubscribe(m.uri)
		answer(nil)
	default:
		s.active = true
		answer(nil)
	}
}

func (u *upstreamActor) unsubscribe(ctx actor.Context, m unsubscribeResource) {
	if s := u.subs[m.URI]; s != nil {
		delete(s.sinks, m.Key)
		if len(s.sinks) == 0 {
			u.dropSubscription(m.URI)
		}
	}
	ctx.Respond(reply{})
}

// dropSubscription forgets uri and, if the upstream had accepted it, unsubscribes there.
func (u *upstreamActor) dropSubscription(uri string) {
	s := u.subs[uri]
	delete(u.subs, uri)
	if s != nil && s.active {
		u.sendUnsubscribe(uri)
	}
}

func (u *upstreamActor) sendUnsubscribe(uri string) {
	if u.state != StateReady || u.conn == nil {
		return
	}
	conn := u.conn
	go func() {
		cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, _ = conn.Request(cctx, string(mcp.MethodResourcesUnsubscribe), map[string]any{"uri": uri})
	}()
}

func (u *upstreamActor) onResourceUpdated(m resourceUpdated) {
	if m.gen != u.gen {
		return
	}
	s := u.subs[m.uri]
	if s == nil {
		return
	}
	for key, sub := range s.sinks {
		if !sub.sink.Updated(sub.listed) {
			delete(s.sinks, key)
		}
	}
	if len(s.sinks) == 0 {
		u.dropSubscription(m.uri)
	}
}

// resubscribe renews every subscription on a new connection (the old one's are gone).
func (u *upstreamActor) resubscribe() {
	for uri, s := range u.subs {
		s.active = false
		u.sendSubscribe(uri, 30*time.Second, nil)
	}
}
