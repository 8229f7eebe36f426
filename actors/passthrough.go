package actors

import (
	"context"
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"
)

// LogValue keeps the target's config, which holds the server's resolved secrets, out of
// logs; see passthrough.Target.String.
func (r passthroughTargetReply) LogValue() slog.Value {
	return slog.GroupValue(slog.String("target", r.Target.String()), slog.Any("err", r.Err))
}

// Registry requests of the passthrough endpoint.
type (
	// getPassthroughTarget asks for a reachable server's PassthroughTarget; the reply is a
	// passthroughTargetReply.
	getPassthroughTarget struct{ Name string }
	// checkPassthrough asks whether a server may be used through the passthrough at all
	// (it exists, is enabled and not quarantined), for a request that names no session.
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
	// Gen is the registry's generation now: a revocation sent later names a higher one, so
	// a session dialled with this target ends then, even if it is still opening.
	target := PassthroughTarget{Dial: r.dialOptions(), Timeout: r.eff.Timeout(), Gen: r.gen, Tools: r.rules(m.Name, rw), ReadOnly: make(map[string]bool, len(rw.tools))}
	for _, t := range rw.tools {
		target.ReadOnly[t.Raw] = t.ReadOnly()
	}
	resolve, sender, sys, name, tokens := r.resolver(), ctx.Sender(), r.sys, m.Name, r.tokensFor(m.Name)
	self := ctx.Self()
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
			if cfg.OAuth.SelfGrant() {
				target.Dial.Regrant = regrantHook(sys, self, name)
			}
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
	ctx.Respond(reply{err: r.passthroughRefusal(m.Name)})
}

// passthroughRefusal says why the passthrough may not use a server, nil if it may.
func (r *registry) passthroughRefusal(name string) error {
	rw, ok := r.rows[name]
	switch {
	case !ok:
		return Errorf(CodeNotFound, "server %q not found", name)
	case rw.cfg.IsQuarantined():
		return Errorf(CodeConflict, "server %q is quarantined; approve it before using it", name)
	case !rw.cfg.IsEnabled():
		return Errorf(CodeConflict, "server %q is disabled", name)
	}
	return nil
}

// revokePassthrough ends the passthrough sessions of a server that may no longer be used
// as they were dialled: quarantined, disabled, removed, or reconfigured (err says which).
// It runs before the registry answers the request that caused it, and every passthrough
// request passes through the sessions actor, so none reaches those sessions after the
// answer. A restart of the shared connection leaves them be: they do not depend on it.
func (r *registry) revokePassthrough(ctx actor.Context, name string, err error) {
	if r.opts.Sessions == nil {
		return
	}
	r.gen++
	ctx.Send(r.opts.Sessions, RevokePassthrough{Server: name, Gen: r.gen, Err: err})
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

// CheckPassthrough says whether a server may be used through the passthrough (it exists, is
// enabled and not quarantined), for a request that names no session.
func (c *Client) CheckPassthrough(ctx context.Context, name string) error {
	_, err := askValue[any](c, ctx, checkPassthrough{Name: name})
	return err
}
