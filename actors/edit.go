package actors

import (
	"encoding/json"
	"fmt"
	"slices"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcpproxy/mcpproxy/config"
)

// Edits of one server (POST, PATCH and DELETE /api/v1/servers...).
const (
	EditAdd    = "add"
	EditUpdate = "update"
	EditRemove = "remove"
	EditImport = "import"
)

// editServer adds, changes or removes one server entry. It is a config apply of the
// current config with that one entry changed, made in one registry turn so that no other
// change can come between reading the config and applying it: unchanged servers keep
// their connections and processes, and the events are the apply's (servers.changed with
// added, updated or removed, and config.reloaded).
type editServer struct {
	Op    string
	Name  string
	Entry config.ServerConfig // EditAdd: the new entry, decoded by config.ParseServer
	Patch json.RawMessage     // EditUpdate: a JSON merge patch of the entry
	// EditImport: entries to add, each quarantined; names in use are skipped.
	Entries []config.ServerConfig
}

// ImportResult says what an import added and which names it skipped because a server of
// that name exists.
type ImportResult struct {
	Added   []string `json:"added"`
	Skipped []string `json:"skipped"`
}

// EditResult is the answer to a server edit: the server as it is now (for a removal, as it
// was), and the apply's summary.
type EditResult struct {
	Server Server
	Apply  ApplyResult
}

// edit answers editServer. Add and update are answered once the config is saved; remove
// once the config is saved and the server's processes are gone (its actor terminated).
// Field errors name the entry's own fields ("command"), as config.ParseServer does.
func (r *registry) edit(ctx actor.Context, m editServer) {
	i, exists := r.at[m.Name]
	next := *r.cfg
	switch m.Op {
	case EditImport:
		r.importEntries(ctx, m.Entries)
		return
	case EditAdd:
		if exists {
			ctx.Respond(reply{err: Errorf(CodeConflict, "server %q already exists", m.Name)})
			return
		}
		if _, stopping := r.rows[m.Name]; stopping {
			ctx.Respond(reply{err: Errorf(CodeConflict, "server %q is still being removed; try again", m.Name)})
			return
		}
		if m.Entry.Quarantined == nil {
			// New servers are quarantined until approved, and the file says so.
			m.Entry.Quarantined = boolPtr(true)
		}
		i = len(r.cfg.Servers)
		next.Servers = append(slices.Clone(r.cfg.Servers), m.Entry)
	case EditUpdate, EditRemove:
		if !exists {
			ctx.Respond(reply{err: Errorf(CodeNotFound, "server %q not found", m.Name)})
			return
		}
		next.Servers = slices.Clone(r.cfg.Servers)
		if m.Op == EditRemove {
			next.Servers = slices.Delete(next.Servers, i, i+1)
			break
		}
		entry, errs := config.PatchServer(r.cfg.Servers[i], m.Patch)
		if len(errs) > 0 {
			ctx.Respond(reply{err: EntryInvalid(errs)})
			return
		}
		next.Servers[i] = entry
	default:
		ctx.Respond(reply{err: Errorf(CodeInvalidArgument, "unknown edit %q", m.Op)})
		return
	}
	before := r.rows[m.Name]
	res, err := r.applyNext(ctx, &next, config.SourceAPI)
	if err != nil {
		ctx.Respond(reply{err: EntryInvalid(config.EntryErrors(err.Fields, i))})
		return
	}
	rw, still := r.rows[m.Name]
	if !still {
		rw = before // removed at once: it ran no process
	}
	out := EditResult{Server: r.view(m.Name, rw), Apply: res}
	if m.Op == EditRemove && still {
		// Still stopping: answered from removed, once the process is gone.
		rw.gone = append(rw.gone, ctx.Sender())
		rw.goneReply = reply{v: out}
		return
	}
	r.persist(ctx.Sender(), reply{v: out})
}

// answerRemoval answers the removals that waited for a row's processes to be gone, once the
// config is saved.
func (r *registry) answerRemoval(rw *row) {
	for _, to := range rw.gone {
		r.persist(to, rw.goneReply)
	}
	rw.gone = nil
}

// importEntries adds every entry whose name is free, quarantined whatever it says, in one
// apply; the answer comes once the config is saved.
func (r *registry) importEntries(ctx actor.Context, entries []config.ServerConfig) {
	res := ImportResult{Added: []string{}, Skipped: []string{}}
	next := *r.cfg
	next.Servers = slices.Clone(r.cfg.Servers)
	seen := map[string]bool{}
	for _, e := range entries {
		_, inUse := r.rows[e.Name]
		if _, inCfg := r.at[e.Name]; inCfg || inUse || seen[e.Name] {
			res.Skipped = append(res.Skipped, e.Name)
			continue
		}
		seen[e.Name] = true
		e.Quarantined = boolPtr(true)
		next.Servers = append(next.Servers, e)
		res.Added = append(res.Added, e.Name)
	}
	if len(res.Added) == 0 {
		ctx.Respond(reply{v: res})
		return
	}
	if _, err := r.applyNext(ctx, &next, config.SourceAPI); err != nil {
		ctx.Respond(reply{err: err})
		return
	}
	r.persist(ctx.Sender(), reply{v: res})
}

// EntryInvalid is the INVALID_ARGUMENT error of a server entry that does not validate: the
// message names the first field, Fields lists them all.
func EntryInvalid(errs []config.FieldError) *Error {
	msg := "server entry is not valid"
	if len(errs) > 0 {
		msg += ": " + errs[0].Field + ": " + errs[0].Message
		if len(errs) > 1 {
			msg += fmt.Sprintf(" (and %d more)", len(errs)-1)
		}
	}
	return &Error{Code: CodeInvalidArgument, Message: msg, Fields: errs}
}
