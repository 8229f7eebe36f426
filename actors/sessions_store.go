package actors

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcpproxy/mcpproxy/actors/store"
)

// sessionJob is one piece of store work for the session writer, done in the order queued:
// the puts first, then a prune, a listing (merged with the live views the actor took when
// it queued the job) or a lookup, whose answer goes to `to`; or else msg goes to `to` once
// the puts are on disk.
type sessionJob struct {
	puts  []store.Session
	prune bool
	list  bool
	live  []store.Session
	get   string
	to    *actor.PID
	msg   any
}

// runSessionWriter does the sessions actor's store I/O off its mailbox, one job at a time,
// until jobs is closed. Reads run here too, so that a listing sees every write queued
// before it.
func runSessionWriter(st SessionStore, keep int, sys *actor.ActorSystem, log *slog.Logger, jobs <-chan sessionJob, done chan<- struct{}) {
	defer close(done)
	for job := range jobs {
		for _, s := range job.puts {
			if err := st.PutSession(s); err != nil {
				log.Warn("saving MCP session failed", "session", s.ID, "err", err)
			}
		}
		if job.prune {
			if err := st.PruneSessions(keep); err != nil {
				log.Warn("pruning MCP sessions failed", "err", err)
			}
		}
		if job.to == nil {
			continue
		}
		msg := job.msg
		switch {
		case job.list:
			stored, err := st.ListSessions()
			if err != nil {
				msg = reply{err: fmt.Errorf("list sessions: %w", err)}
			} else {
				msg = reply{v: mergeSessions(stored, job.live)}
			}
		case job.get != "":
			s, err := st.GetSession(job.get)
			switch {
			case err == nil:
				msg = reply{v: s}
			case errors.Is(err, store.ErrNotFound):
				msg = reply{err: Errorf(CodeNotFound, "session %q not found", job.get)}
			default:
				msg = reply{err: fmt.Errorf("get session: %w", err)}
			}
		}
		sys.Root.Send(job.to, msg)
	}
}

// closeStaleSessions marks the sessions that were active when the previous daemon stopped
// (or crashed) as closed, since their ids are no longer accepted, and prunes old closed
// ones.
func closeStaleSessions(st SessionStore, keep int, log *slog.Logger) {
	old, err := st.ListSessions()
	if err != nil {
		log.Warn("listing stored MCP sessions failed", "err", err)
		return
	}
	for _, s := range old {
		if s.Status == store.SessionClosed {
			continue
		}
		s.Status = store.SessionClosed
		if err := st.PutSession(s); err != nil {
			log.Warn("closing stale MCP session failed", "session", s.ID, "err", err)
		}
	}
	if err := st.PruneSessions(keep); err != nil {
		log.Warn("pruning MCP sessions failed", "err", err)
	}
}
