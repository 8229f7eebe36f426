package actors

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcpproxy/mcpproxy/actors/upstream"
	"github.com/mcpproxy/mcpproxy/config"
)

// PassthroughTarget is what /mcp/server/{name} needs to open a connection of its own to a
// server for one agent session (see "Passthrough sessions" in doc.go).
type PassthroughTarget struct {
	// Config is the server's config with ${secret:} and ${env:} references expanded and its
	// Docker isolation fixed, as its upstream actor dials it.
	Config config.ServerConfig
	// Dial holds the daemon's dial options (logger, client info, Docker wrapper) and the
	// Scrubber of the resolved config, so that the session's errors are scrubbed as the
	// shared connection's are.
	Dial upstream.Options
	// Timeout is call_tool_timeout: it bounds each request forwarded to the upstream.
	Timeout time.Duration
	// Gen identifies the server's running configuration; it changes when the server's
	// upstream actor is replaced (a config change), and sessions dialled with an older one
	// end.
	Gen int
}

// String and LogValue keep the resolved config, which holds the server's secrets, out of
// anything that prints a target (protoactor logs an undelivered reply with %+v).
func (t PassthroughTarget) String() string {
	return fmt.Sprintf("PassthroughTarget{server %q, gen %d}", t.Config.Name, t.Gen)
}

// LogValue: see String.
func (t PassthroughTarget) LogValue() slog.Value { return slog.StringValue(t.String()) }

// LogValue keeps the target's config out of logs; see PassthroughTarget.String.
func (r passthroughTargetReply) LogValue() slog.Value {
	return slog.GroupValue(slog.String("target", r.Target.String()), slog.Any("err", r.Err))
}

// Registry requests of the passthrough endpoint.
type (
	// getPassthroughTarget asks for a reachable server's PassthroughTarget; the reply is a
	// passthroughTargetReply.
	getPassthroughTarget struct{ Name string }
	// checkPassthrough asks whether an agent session may still use a server (it exists,
	// is enabled and not quarantined); the reply carries its Gen.
	checkPassthrough struct{ Name string }

	passthroughTargetReply struct {
		Target PassthroughTarget
		Err    error
	}
)

// passthroughTarget answers getPassthroughTarget. The server must be reachable as for a
// tool call (known, enabled, not quarantined, ready). The config is prepared here as spawn
// prepares it for the upstream actor; references are expanded in a goroutine, because
// secrets are read from the store, and the reply is sent from there.
func (r *registry) passthroughTarget(ctx actor.Context, m getPassthroughTarget) {
	rw, err := r.unreachable(m.Name)
	if err != nil {
		ctx.Respond(passthroughTargetReply{Err: err})
		return
	}
	cfg := r.eff.Prepared(rw.cfg)
	target := PassthroughTarget{Dial: r.dialOptions(), Timeout: r.eff.Timeout(), Gen: rw.childGen}
	resolve, sender, sys, name, tokens := r.resolver(), ctx.Sender(), r.sys, m.Name, r.tokensFor(m.Name)
	go func() {
		resolved, scrub, err := resolve(cfg)
		if err != nil {
			sys.Root.Send(sender, passthroughTargetReply{Err: Errorf(CodeUnavailable, "server %q: %v", name, err)})
			return
		}
		target.Config = resolved
		if ts := tokens; ts != nil && (cfg.Protocol == "http" || cfg.Protocol == "sse") {
			// The session's own connection carries the server's OAuth token too.
			target.Dial.Tokens = ts
			if tok, _ := ts.Get(); tok != nil {
				scrub = scrub.With(tok.Values()...)
			}
		}
		target.Dial.Scrub = scrub
		sys.Root.Send(sender, passthroughTargetReply{Target: target})
	}()
}

// checkPassthroughAccess answers checkPassthrough. Readiness is not required: a session's
// own connection does not depend on the shared one.
func (r *registry) checkPassthroughAccess(ctx actor.Context, m checkPassthrough) {
	rw, ok := r.rows[m.Name]
	switch {
	case !ok:
		ctx.Respond(reply{err: Errorf(CodeNotFound, "server %q not found", m.Name)})
	case rw.cfg.IsQuarantined():
		ctx.Respond(reply{err: Errorf(CodeConflict, "server %q is quarantined; approve it before using it", m.Name)})
	case !rw.cfg.IsEnabled():
		ctx.Respond(reply{err: Errorf(CodeConflict, "server %q is disabled", m.Name)})
	default:
		ctx.Respond(reply{v: rw.childGen})
	}
}

// PassthroughTarget returns what the passthrough endpoint needs to dial its own connection
// to a reachable server; it fails like CallTool for quarantined, disabled, unknown or
// not-ready servers.
func (c *Client) PassthroughTarget(ctx context.Context, name string) (PassthroughTarget, error) {
	res, err := c.ask(ctx, getPassthroughTarget{Name: name}, timeoutOf(ctx))
	if err != nil {
		return PassthroughTarget{}, err
	}
	switch rep := res.(type) {
	case passthroughTargetReply:
		return rep.Target, rep.Err
	case reply: // the registry's panic recovery
		return PassthroughTarget{}, rep.err
	default:
		return PassthroughTarget{}, Errorf(CodeInternal, "internal error: unexpected reply %T", res)
	}
}

// PassthroughGen says whether an agent session may still use a server, and returns the
// Gen of its running configuration (compare it with the target's).
func (c *Client) PassthroughGen(ctx context.Context, name string) (int, error) {
	return askValue[int](c, ctx, checkPassthrough{Name: name})
}
