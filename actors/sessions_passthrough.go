package actors

import (
	"context"
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcpproxy/mcpproxy/actors/passthrough"
)

// This file is the sessions actor's part of the passthrough: opening a session (the
// registry's target, a slot, the session actor), the bound per server and eviction, the
// requests of live sessions, DELETE, and the registry's revocations. The session actor
// itself is actors/passthrough.

// openPT starts an agent session on /mcp/server/{name}: the registry is asked for the
// target (in a goroutine, which reports targetReady); a slot is found (onTarget, pump);
// the session actor dials and sends the agent's initialize, and the opener is answered
// when it reports (onOpened, or forget for a failure).
func (t *sessions) openPT(ctx actor.Context, m openPassthrough) {
	switch {
	case t.closing:
		ctx.Respond(openReply{Err: Errorf(CodeUnavailable, "the proxy is shutting down")})
		return
	case t.opts.Target == nil:
		ctx.Respond(openReply{Err: Errorf(CodeNotFound, "server %q not found", m.Server)})
		return
	case t.recs[m.ID] != nil:
		ctx.Respond(openReply{Err: Errorf(CodeInternal, "internal error: session id in use")})
		return
	}
	if m.Scope != nil && !m.Scope.AllowsServer(m.Server) {
		ctx.Respond(openReply{Err: ErrServerOutOfScope(m.Server)})
		return
	}
	now := time.Now()
	t.recs[m.ID] = &sessionRec{id: m.ID, endpoint: m.Endpoint, started: now.UTC(), last: now, pt: true,
		server: m.Server, opening: true, opener: ctx.Sender(), init: m.Init, clientName: m.Info.Name,
		clientVer: m.Info.Version, open: map[any]bool{}, dirty: true, credential: m.Credential, scope: m.Scope}
	target, sys, self, id, server := t.opts.Target, t.sys, t.self, m.ID, m.Server
	go func() {
		tctx, cancel := context.WithTimeout(context.Background(), targetTimeout)
		tg, err := target(tctx, server)
		cancel()
		sys.Root.Send(self, targetReady{ID: id, Target: tg, Err: err})
	}()
}

// refuseOpen answers an opener that gets no session and forgets it.
func (t *sessions) refuseOpen(r *sessionRec, err error) {
	if r.opener != nil {
		t.sys.Root.Send(r.opener, openReply{Err: err})
		r.opener = nil
	}
	delete(t.recs, r.id)
}

func (t *sessions) onTarget(ctx actor.Context, m targetReady) {
	r := t.recs[m.ID]
	if r == nil || !r.opening || r.haveTarget {
		return
	}
	rv := t.revoked[r.server]
	switch {
	case r.abandoned:
		delete(t.recs, r.id)
	case m.Err != nil:
		t.refuseOpen(r, m.Err)
	case t.closing:
		t.refuseOpen(r, Errorf(CodeUnavailable, "the proxy is shutting down"))
	case m.Target.Gen < rv.gen:
		t.refuseOpen(r, rv.err)
	default:
		r.target, r.haveTarget = m.Target, true
		t.queue[r.server] = append(t.queue[r.server], r.id)
		t.pump(ctx, r.server)
	}
}

// slots counts a server's session actors: all of them, and those closing.
func (t *sessions) slots(server string) (running, closing int) {
	for _, r := range t.recs {
		if r.pt && r.server == server && r.pid != nil {
			running++
			if r.closed {
				closing++
			}
		}
	}
	return running, closing
}

// pump starts the opens waiting for a slot of server. A server has PassthroughSessions
// slots; a closing session holds its slot until its actor (and so its process) is gone.
// When none is free, the least recently active idle session is closed to make room; when
// all are busy, the open is refused.
func (t *sessions) pump(ctx actor.Context, server string) {
	q := t.queue[server]
	bound := t.opts.PassthroughSessions
	for len(q) > 0 {
		r := t.recs[q[0]]
		if r == nil || !r.opening || r.pid != nil || r.closed {
			q = q[1:]
			continue
		}
		running, closing := t.slots(server)
		if running < bound {
			q = q[1:]
			t.spawn(ctx, r)
			continue
		}
		if closing >= len(q) {
			break // the slots of the sessions closing now go to these
		}
		victim := t.idleVictim(server)
		if victim == nil {
			q = q[1:]
			t.refuseOpen(r, Errorf(CodeUnavailable, "server %q has %d passthrough sessions, all busy; try again later", server, bound))
			continue
		}
		t.log.Info("closing the least recently used passthrough session to make room", "server", server, "session", victim.id)
		t.closeRec(victim, "evicted: too many sessions for this server")
	}
	if len(q) == 0 {
		delete(t.queue, server)
	} else {
		t.queue[server] = q
	}
}

// idleVictim is the open session of server with no request in flight and the oldest
// activity.
func (t *sessions) idleVictim(server string) *sessionRec {
	var victim *sessionRec
	for _, r := range t.recs {
		if !r.pt || r.server != server || r.pid == nil || r.closed || r.opening || r.busy() {
			continue
		}
		if victim == nil || r.last.Before(victim.last) {
			victim = r
		}
	}
	return victim
}

// spawn starts a session actor. Docker names a server's container after the server, so a
// session's own gets a name of its own.
func (t *sessions) spawn(ctx actor.Context, r *sessionRec) {
	target := r.target
	if iso := target.Config.Isolation; iso != nil && iso.Enabled {
		t.seq++
		target.Config.Name = fmt.Sprintf("%s-pt%d", r.server, t.seq)
	}
	if newer, ok := t.tools[r.server]; ok && newer.Ver > target.Tools.Ver {
		target.Tools = newer
	}
	pid := ctx.Spawn(passthrough.NewProps(passthrough.Options{
		ID: r.id, Server: r.server, Target: target, Init: r.init, Dial: t.opts.Dial, Logger: t.log,
		Activity: t.opts.Activity,
		Visible:  scopeVisible(r.scope, r.server),
	}))
	r.init = nil
	r.pid = pid
	t.byPID[pid.Id] = r
}

func (t *sessions) onOpened(m passthrough.Opened) {
	r := t.recs[m.ID]
	if r == nil || !r.opening || r.closed {
		return // closed meanwhile: its close answers the opener
	}
	if m.Error != nil {
		r.openRep = &openReply{RPCErr: m.Error}
		t.closeRec(r, "the server refused the initialize")
		return
	}
	r.opening = false
	r.last, r.dirty = time.Now(), true
	t.sys.Root.Send(r.opener, openReply{Result: m.Result})
	r.opener = nil
}

// abandon is the opener giving up (its context ended): the session, which the agent will
// never learn the id of, is closed.
func (t *sessions) abandon(id string) {
	r := t.recs[id]
	if r == nil || !r.pt {
		return
	}
	if r.opener != nil {
		t.sys.Root.Send(r.opener, openReply{Err: Errorf(CodeTimeout, "request cancelled")})
		r.opener = nil
	}
	r.abandoned = true
	switch {
	case r.pid != nil || !r.opening:
		t.closeRec(r, "the client gave up")
	case r.haveTarget: // waiting for a slot
		delete(t.recs, id)
	}
	// Still waiting for its target: onTarget drops it.
}

// ptRequest accounts for a request of a live passthrough session and returns it; for any
// other it answers the caller (a revoked session's first request gets the reason, once
// its connection is closed) and returns nil.
func (t *sessions) ptRequest(ctx actor.Context, id, endpoint, credential string, out *passthrough.Stream) *sessionRec {
	r := t.recs[id]
	if r == nil || !r.pt || r.opening || r.endpoint != endpoint {
		ctx.Respond(reply{err: notFound(id)})
		return nil
	}
	if credentialMismatch(r.credential, credential) {
		ctx.Respond(reply{err: errOtherCredential(id)})
		return nil
	}
	if r.closed {
		switch {
		case r.revoked == nil || r.told || r.tellTo != nil:
			ctx.Respond(reply{err: notFound(id)})
		case r.pid != nil:
			r.tellTo = ctx.Sender()
		default:
			r.told = true
			ctx.Respond(reply{err: &RevokedError{Err: r.revoked}})
			delete(t.recs, id)
		}
		return nil
	}
	r.open[out] = true
	r.last, r.dirty = time.Now(), true
	return r
}

// deletePT ends a passthrough session for the agent's DELETE; the answer comes once its
// connection is closed.
func (t *sessions) deletePT(ctx actor.Context, m deletePassthrough) {
	r := t.recs[m.ID]
	if r == nil || !r.pt || r.opening || r.endpoint != m.Endpoint {
		ctx.Respond(reply{err: notFound(m.ID)})
		return
	}
	if r.closed {
		if r.revoked == nil || r.told || r.tellTo != nil {
			ctx.Respond(reply{err: notFound(m.ID)})
			return
		}
		// Revoked before the agent heard of it: the DELETE ends it for the agent.
		r.told = true
		if r.pid == nil {
			delete(t.recs, m.ID)
			ctx.Respond(reply{})
			return
		}
		r.waiters = append(r.waiters, ctx.Sender())
		return
	}
	r.waiters = append(r.waiters, ctx.Sender())
	t.closeRec(r, "ended by the agent")
}

// revoke closes the passthrough sessions of a server the registry no longer lets them use.
func (t *sessions) revoke(m RevokePassthrough) {
	err := m.Err
	if err == nil {
		err = Errorf(CodeConflict, "server %q can no longer be used", m.Server)
	}
	if m.Gen > t.revoked[m.Server].gen {
		t.revoked[m.Server] = revocation{gen: m.Gen, err: err}
	}
	for _, r := range t.recs {
		if !r.pt || r.server != m.Server || r.closed || !r.haveTarget || r.target.Gen >= m.Gen {
			continue
		}
		switch {
		case r.pid == nil: // waiting for a slot
			t.refuseOpen(r, err)
		case r.opening:
			r.openRep = &openReply{Err: err}
			t.closeRec(r, err.Error())
		default:
			r.revoked = err
			t.closeRec(r, err.Error())
		}
	}
}

// setTools keeps a server's newest tool rules and hands them to its open sessions (those
// still opening get them too: they apply them once open).
func (t *sessions) setTools(ctx actor.Context, m PassthroughTools) {
	if old, ok := t.tools[m.Server]; ok && old.Ver > m.Rules.Ver {
		return
	}
	t.tools[m.Server] = m.Rules
	for _, r := range t.recs {
		if r.pt && r.server == m.Server && r.pid != nil && !r.closed {
			ctx.Send(r.pid, passthrough.SetRules{Rules: m.Rules})
		}
	}
}

// ErrServerOutOfScope refuses a server outside an agent token's scope (CodeForbidden).
func ErrServerOutOfScope(server string) error {
	return Errorf(CodeForbidden, "the agent token does not allow server %q", server)
}

// scopeVisible is the passthrough session's visibility predicate for an agent token's
// scope (nil for none: everything is visible).
func scopeVisible(scope Scope, server string) func(tool string, readOnly bool) bool {
	if scope == nil {
		return nil
	}
	return func(tool string, readOnly bool) bool { return scope.AllowsTool(server, tool, readOnly) }
}
