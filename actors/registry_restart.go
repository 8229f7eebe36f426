package actors

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcpproxy/mcpproxy/config"
)

// Bulk restarts (restart_all) are paced by a window that adapts, like TCP's slow start:
// restart_concurrency restarts begin at once, each one that comes back ready lets one more
// begin beside the one that takes its slot (so the window doubles every round while they
// succeed), and one that fails halves the window, never below restart_concurrency. The
// ceiling is the first-connect bound (RegistryOptions.StartConcurrency, 128), which a start
// of the same servers would use anyway.
//
// Why not a fixed window: with 8 at a time, 100 servers take 13 rounds of stop and start
// one after the other, while starting them directly is one round; measured, restart_all
// took 2.5-4x the time of starting the same 100 servers. Why not a fixed window of 128:
// a restart of servers that all fail at once (a broken shared dependency) would then fork
// 128 processes per round of backoff; the halving keeps such a bulk at restart_concurrency.
//
// The POST is answered before the first restart begins (registry.bulk): its answer depends
// on nothing the restarts do. Each restart's stop runs in the background (dropConn); only
// its connect holds a slot.

// restartPacer is the registry's window of bulk restarts that may connect at once. Zero is
// idle: the next bulk starts again from restart_concurrency.
type restartPacer struct {
	window int
}

// limit is the window for base (restart_concurrency) and ceiling (at least base).
func (p *restartPacer) limit(base, ceiling int) int {
	ceiling = max(ceiling, base)
	p.window = min(max(p.window, base), ceiling)
	return p.window
}

// done records one restart's end: ready grows the window by one, error or backoff halves it
// (limit keeps it at base or above); any other end (disabled, removed, needs_auth) says
// nothing about the load and leaves it.
func (p *restartPacer) done(st State) {
	switch st {
	case StateReady:
		p.window++
	case StateError, StateBackoff:
		p.window /= 2
	}
}

// restartBounds are restart_concurrency (the window's floor) and its ceiling.
func (r *registry) restartBounds() (base, ceiling int) {
	base = r.eff.RestartConcurrency
	if base <= 0 {
		base = config.DefaultRestartConcurrency
	}
	return base, max(base, r.opts.StartConcurrency)
}

// restartDone is called when a server's connect ends in st (or its actor terminated): if it
// was a bulk restart, its slot is freed, the window learns from st, and queued restarts go.
func (r *registry) restartDone(ctx actor.Context, name string, st State) {
	if !r.restarting[name] {
		return
	}
	delete(r.restarting, name)
	r.restartPace.done(st)
	r.pumpRestarts(ctx)
	r.maybeSettle(ctx)
}

// pumpRestarts starts queued restarts while fewer than the window are connecting; once none
// is queued or connecting the window goes back to idle.
func (r *registry) pumpRestarts(ctx actor.Context) {
	base, ceiling := r.restartBounds()
	for len(r.restartQueue) > 0 && len(r.restarting) < r.restartPace.limit(base, ceiling) {
		name := r.restartQueue[0]
		r.restartQueue[0] = ""
		r.restartQueue = r.restartQueue[1:]
		delete(r.queued, name)
		rw, ok := r.rows[name]
		if !ok || !rw.cfg.IsEnabled() {
			continue
		}
		r.restarting[name] = true
		if rw.pid != nil {
			r.connectBegun() // one without an actor is spawned, and counted there
		}
		r.restartNow(ctx, name, rw)
	}
	if len(r.restartQueue) == 0 {
		r.restartQueue = nil
		if len(r.restarting) == 0 {
			r.restartPace = restartPacer{}
		}
	}
}
