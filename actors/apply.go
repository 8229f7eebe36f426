package actors

import (
	"slices"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcpproxy/mcpproxy/config"
)

// apply replaces the running config with a new one as a diff: added servers start, removed
// ones stop (their processes killed), changed ones restart, and unchanged ones are not
// touched, so their connections and processes stay. An apply from the API is saved before
// the reply; one from the file watcher is not written back (the file already says it).
//
// The config is checked by config.Check ("********" keeps a value only from the API).
func (r *registry) apply(ctx actor.Context, m applyConfig) {
	res, err := r.applyNext(ctx, m.Config, m.Source)
	if err != nil {
		ctx.Respond(reply{err: err})
		return
	}
	if m.Source == config.SourceFile {
		ctx.Respond(reply{v: res})
		return
	}
	r.persist(ctx.Sender(), reply{v: res})
}

// applyNext checks a config and runs it as a diff against the running one (see apply); the
// caller answers and saves. A config that does not check is an INVALID_ARGUMENT error with
// the field errors, and changes nothing.
func (r *registry) applyNext(ctx actor.Context, incoming *config.Config, source string) (ApplyResult, *Error) {
	next, eff, errs := config.Check(r.cfg, incoming, source)
	if len(errs) > 0 {
		return ApplyResult{}, &Error{Code: CodeInvalidArgument, Message: "config is not valid", Fields: errs}
	}
	diff := config.Compare(r.eff, eff)
	limitChanged := r.eff.MessageLimit() != eff.MessageLimit()
	r.cfg, r.eff = next, eff
	r.at = positions(next)
	// The new entries by name: looking each one up in the list would make an apply of n
	// servers O(n^2).
	byName := make(map[string]config.ServerConfig, len(eff.Servers))
	for _, sc := range eff.Servers {
		byName[sc.Name] = sc
	}
	if limitChanged {
		// Running upstreams keep their connections; the next one each makes (a reconnect
		// after a failure, a restart) uses the new limit. Servers spawned below get it from
		// dialOptions.
		for _, rw := range r.rows {
			if rw.pid != nil {
				ctx.Send(rw.pid, setMessageLimit{Bytes: eff.MessageLimit()})
			}
		}
	}

	for _, name := range diff.Removed {
		rw := r.rows[name]
		r.revokePassthrough(ctx, name, Errorf(CodeNotFound, "server %q not found", name))
		if rw.pid == nil {
			r.removed(ctx, name, rw)
			continue
		}
		rw.remove, rw.respawn = true, false
		r.stopChild(ctx, name, rw)
		// Its tools leave the index now, not when the process is gone: the reply to this
		// apply must not find a removed server searchable.
		r.reindex(ctx, name)
		r.changed(ctx, name, ReasonState)
	}
	for _, name := range diff.Added {
		sc := byName[name]
		rw := &row{cfg: sc, st: upstreamStatus{Name: name, State: StateDisabled}}
		r.addRow(name, rw)
		if sc.IsEnabled() && !r.closing {
			r.spawn(ctx, name, rw)
		}
		r.changed(ctx, name, ReasonAdded)
	}
	for _, name := range diff.Changed {
		sc := byName[name]
		rw := r.rows[name]
		rw.cfg = sc
		rw.extra = nil // a new definition lists its own tools
		r.revokePassthrough(ctx, name, Errorf(CodeNotFound, "server %q was reconfigured; initialize a new session", name))
		switch {
		case rw.pid != nil:
			rw.respawn = sc.IsEnabled()
			r.stopChild(ctx, name, rw)
		case sc.IsEnabled() && !r.closing:
			r.spawn(ctx, name, rw)
		default:
			rw.st = upstreamStatus{Name: name, State: StateDisabled}
		}
		r.reindex(ctx, name)
		r.changed(ctx, name, ReasonUpdated)
	}
	for _, name := range diff.FlagsChanged {
		sc := byName[name]
		rw := r.rows[name]
		quarantineChanged := rw.cfg.IsQuarantined() != sc.IsQuarantined()
		wantEnabled := sc.IsEnabled()
		rw.cfg.Quarantined = sc.Quarantined
		r.enable(ctx, name, rw, wantEnabled)
		rw.cfg = sc
		if quarantineChanged && !sc.IsQuarantined() {
			r.approveServer(name, rw)
		}
		// disabled_tools may have changed too; the index and the passthrough follow.
		r.reindex(ctx, name)
		r.retrust(ctx, name, true)
		if quarantineChanged {
			reason := ReasonUnquarantined
			if sc.IsQuarantined() {
				reason = ReasonQuarantined
				r.revokePassthrough(ctx, name, r.passthroughRefusal(name))
			}
			r.changed(ctx, name, reason)
		}
	}
	if r.opts.OnApplied != nil {
		r.opts.OnApplied(r.eff.Clone(), source)
	}
	// A server whose definition and flags both changed is in both lists; the API names it
	// once. The event and the reply say the same.
	changed := append(slices.Clone(diff.Changed), diff.FlagsChanged...)
	slices.Sort(changed)
	changed = slices.Compact(changed)
	r.publish(ctx, "config.reloaded", configReloadedData{
		Source: source, Path: r.opts.ConfigPath,
		Added: nonNil(diff.Added), Removed: nonNil(diff.Removed), Changed: nonNil(changed),
	})
	return ApplyResult{
		Applied: true, Added: nonNil(diff.Added), Removed: nonNil(diff.Removed), Changed: nonNil(changed),
		Unchanged: nonNil(diff.Unchanged), RestartRequired: nonNil(diff.RestartRequired),
	}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
