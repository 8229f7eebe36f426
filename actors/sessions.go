package actors

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/actors/activity"
	"github.com/mcpproxy/mcpproxy/actors/passthrough"
	"github.com/mcpproxy/mcpproxy/actors/store"
	"github.com/mcpproxy/mcpproxy/actors/upstream"
)

// Defaults of SessionsOptions.
const (
	DefaultSessionIdleTTL    = 30 * time.Minute
	DefaultSessionFlush      = 2 * time.Second
	DefaultKeepClosedSession = 1000
	// DefaultPassthroughSessions bounds the agent sessions (each with its own upstream
	// connection) of one server on /mcp/server/{name}.
	DefaultPassthroughSessions = 32
)

// targetTimeout bounds asking the registry for a passthrough target.
const targetTimeout = 30 * time.Second

// SessionStore is the part of the pebble store the sessions actor uses. *store.Store
// implements it.
type SessionStore interface {
	PutSession(store.Session) error
	GetSession(id string) (store.Session, error)
	ListSessions() ([]store.Session, error)
	PruneSessions(keep int) error
}

var _ SessionStore = (*store.Store)(nil)

// SessionsOptions configure the sessions actor. The zero value works: sessions kept in
// memory only, idle ones closed after DefaultSessionIdleTTL, changed records written every
// DefaultSessionFlush, DefaultKeepClosedSession closed ones kept, DefaultPassthroughSessions
// per passthrough server, and no passthrough at all (Target nil: every server is unknown).
type SessionsOptions struct {
	// Store keeps the session records. Nil keeps them in memory only.
	Store  SessionStore
	Logger *slog.Logger
	// IdleTTL closes a session that has had no request in flight, no open stream and no
	// request for this long. Negative never closes idle sessions.
	IdleTTL time.Duration
	// FlushInterval is how often changed session records are written.
	FlushInterval time.Duration
	// KeepClosed is how many closed sessions the store keeps.
	KeepClosed int
	// PassthroughSessions bounds the sessions of one server on /mcp/server/{name}, each of
	// which has a connection (for stdio, a process) of its own; when a new one would pass
	// it, the least recently active idle session is closed to make room, and when all are
	// busy the new one is refused.
	PassthroughSessions int
	// Target asks the registry whether a server may be used through the passthrough, and
	// how to dial it (Client.PassthroughTarget). It runs in a goroutine of its own.
	Target func(ctx context.Context, server string) (PassthroughTarget, error)
	// Dial opens a passthrough session's connection. Default passthrough.DialRaw.
	Dial passthrough.DialFunc
	// Activity takes the activity records of the passthrough sessions' requests
	// (tools/call, resources/read, prompts/get); nil records none.
	Activity func(activity.Record)
	// Unapproved hands the tools a passthrough session saw awaiting review to the registry
	// (Client.ReportSessionTools); it must not block. Nil drops them.
	Unapproved func(passthrough.Unapproved)
}

// PassthroughTarget is what /mcp/server/{name} needs to open a connection of its own to a
// server for one agent session (see "Passthrough sessions" in doc.go).
type PassthroughTarget = passthrough.Target

// RevokePassthrough tells the sessions actor that the passthrough sessions of Server may
// no longer use it: the registry sends it when the server is quarantined, disabled,
// removed or reconfigured, before it answers the request that caused it, so no later
// request reaches those sessions. Every session (and every one still opening) whose target
// has a Gen below Gen closes with its connection; the agent's next request gets Err (see
// RevokedError). Targets handed out later carry Gen or more and are not affected.
type RevokePassthrough struct {
	Server string
	Gen    int
	Err    error
}

// IgnoreDeadLetterLogging: the registry may revoke while the sessions actor stops.
func (RevokePassthrough) IgnoreDeadLetterLogging() {}

// PassthroughTools tells the sessions actor a server's new tool rules (tool-level trust):
// the registry sends it whenever the pins, the held-back tools or disabled_tools of the
// server change. The sessions actor keeps the newest rules of each server for the sessions
// it opens after (a target may have been given before the change) and hands them to the
// server's open sessions, which hide and refuse tools by them from then on.
type PassthroughTools struct {
	Server string
	Rules  passthrough.ToolRules
}

// IgnoreDeadLetterLogging: see RevokePassthrough.
func (PassthroughTools) IgnoreDeadLetterLogging() {}

// RevokedError refuses the first request of a passthrough session that the registry
// closed (RevokePassthrough); later ones get CodeNotFound like any closed session. Err says
// why and carries the code (CodeConflict for quarantine and disable, CodeNotFound for
// removal and a config change).
type RevokedError struct{ Err error }

func (e *RevokedError) Error() string { return e.Err.Error() }
func (e *RevokedError) Unwrap() error { return e.Err }

// Messages of the sessions actor (see SessionsClient for each).
type (
	newSession struct{ ID, Endpoint string }
	setClient  struct {
		ID   string
		Info mcp.Implementation
	}
	countCall struct{ ID string }
	// bindCredential records the credential an /mcp session was initialized with.
	bindCredential struct{ ID, Credential string }
	// beginRequest carries the request's credential: a session answers only the
	// credential it is bound to (see credentialMismatch).
	beginRequest  struct{ ID, Endpoint, Credential string }
	beginReply    struct{ Done <-chan struct{} }
	endRequest    struct{ ID string }
	sessionLive   struct{ ID, Endpoint string }
	terminate     struct{ ID, Endpoint string }
	registerPurge struct {
		Endpoint string
		Purge    func(id string)
	}

	openPassthrough struct {
		ID, Server, Endpoint string
		Init                 json.RawMessage
		Info                 mcp.Implementation
		// Credential and Scope are the opener's (Caller): the session is bound to the
		// credential and shows only what the scope allows.
		Credential string
		Scope      Scope
	}
	openReply struct {
		Result json.RawMessage
		RPCErr *upstream.RPCError
		Err    error
	}
	abandonOpen     struct{ ID string }
	passthroughPost struct {
		ID, Endpoint, Credential string
		Msgs                     []passthrough.Message
		Out                      *passthrough.Stream
	}
	passthroughListen struct {
		ID, Endpoint, Credential string
		Out                      *passthrough.Stream
	}
	passthroughEnd struct {
		ID  string
		Out *passthrough.Stream
	}
	deletePassthrough struct{ ID, Endpoint string }
	countPassthrough  struct{}

	// closeCredential closes every session of an agent token (revoked or expired); the
	// answer comes once their records are written and their connections closing.
	closeCredential struct{ Name, Reason string }

	listSessions struct{}
	getSession   struct{ ID string }
	// awaitServerGone is answered once no passthrough session of Server has a connection
	// left (after the registry revoked them: DELETE /api/v1/servers/{name}).
	awaitServerGone  struct{ Server string }
	closeAllSessions struct{}

	targetReady struct {
		ID     string
		Target PassthroughTarget
		Err    error
	}
	sessionsTick struct{}
)

func (targetReady) IgnoreDeadLetterLogging()  {}
func (sessionsTick) IgnoreDeadLetterLogging() {}

// sessionRec is one MCP session of either endpoint. A passthrough session (pt) also has an
// actor (pid) from its spawn until it has terminated.
type sessionRec struct {
	id, endpoint string
	started      time.Time
	last         time.Time
	calls        int64
	clientName   string
	clientVer    string
	credential   string // the credential the session was opened with (Caller.Credential)
	scope        Scope  // passthrough: the opener's scope, for the session actor
	closed       bool
	closedAt     time.Time
	dirty        bool            // changed since the last write
	inflight     int             // /mcp: requests in flight, streams included
	done         chan struct{}   // /mcp: closed with the session, which ends its streams
	open         map[any]bool    // passthrough: the streams (POSTs and GET) being written
	reason       string          // why it was closed
	pt           bool            // a passthrough session
	server       string          // passthrough: the server
	pid          *actor.PID      // passthrough: the session actor while it runs
	opening      bool            // passthrough: not opened yet, not listed
	opener       *actor.PID      // passthrough: the initialize waiting for its answer
	openRep      *openReply      // passthrough: what the opener gets once the actor is gone
	init         json.RawMessage // passthrough: the agent's initialize params, until spawned
	target       PassthroughTarget
	haveTarget   bool
	abandoned    bool         // the opener gave up
	revoked      error        // the registry's reason, for the agent's next request
	told         bool         // revoked has been answered once
	tellTo       *actor.PID   // the request waiting to be told revoked
	waiters      []*actor.PID // DELETEs waiting for the actor to terminate
}

func (r *sessionRec) busy() bool { return r.inflight > 0 || len(r.open) > 0 }

func (r *sessionRec) view() store.Session {
	status := store.SessionActive
	if r.closed {
		status = store.SessionClosed
	}
	return store.Session{
		ID: r.id, ClientName: r.clientName, ClientVersion: r.clientVer, Status: status,
		StartedAt: r.started, LastActivity: r.last.UTC(), ToolCalls: r.calls, Endpoint: r.endpoint,
		Credential: r.credential,
	}
}

// sessions is the actor that owns the MCP session table. See doc.go.
type sessions struct {
	opts    SessionsOptions
	log     *slog.Logger
	sys     *actor.ActorSystem
	self    *actor.PID
	recs    map[string]*sessionRec
	byPID   map[string]*sessionRec
	queue   map[string][]string              // passthrough opens waiting for a slot, by server, oldest first
	revoked map[string]revocation            // the latest revocation of each server
	tools   map[string]passthrough.ToolRules // the newest tool rules of each server
	purge   map[string]func(id string)
	seq     int // numbers the Docker containers of passthrough sessions
	closing bool
	// closeWaiters are the closeAllSessions requests, answered once every session actor
	// has terminated and the records are written.
	closeWaiters []*actor.PID
	// goneWaiters are the awaitServerGone requests by server, answered from onTerminated.
	goneWaiters map[string][]*actor.PID
	jobs        chan sessionJob
	written     chan struct{}
	stopTick    chan struct{}
	lastFlush   time.Time
	lastPrune   time.Time
}

type revocation struct {
	gen int
	err error
}

// NewSessionsProps returns the props of the sessions actor. Its children, the passthrough
// session actors, are stopped (not restarted) when they fail: a restart would dial again
// behind the agent's back.
func NewSessionsProps(opts SessionsOptions) *actor.Props {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.IdleTTL == 0 {
		opts.IdleTTL = DefaultSessionIdleTTL
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultSessionFlush
	}
	if opts.KeepClosed <= 0 {
		opts.KeepClosed = DefaultKeepClosedSession
	}
	if opts.PassthroughSessions <= 0 {
		opts.PassthroughSessions = DefaultPassthroughSessions
	}
	if opts.Dial == nil {
		opts.Dial = passthrough.DialRaw
	}
	log := opts.Logger
	return actor.PropsFromProducer(func() actor.Actor {
		return &sessions{opts: opts, log: log}
	}, actor.WithSupervisor(actor.NewOneForOneStrategy(0, 0, func(reason any) actor.Directive {
		log.Error("passthrough session bug", "panic", reason)
		return actor.StopDirective
	})))
}

// Receive dispatches. A panic here would restart the actor and close every session, so a
// bug is caught, logged and answered as an internal error instead.
func (t *sessions) Receive(ctx actor.Context) {
	defer survivePanic(ctx, t.log, "sessions")
	switch m := ctx.Message().(type) {
	case *actor.Started:
		t.start(ctx)
	case *actor.Stopping:
		// The children stop next; nothing may be spawned after that, or the actor would
		// wait for that child for ever.
		t.stopTicker()
		t.refuseOpens(Errorf(CodeUnavailable, "the proxy is shutting down"))
	case *actor.Stopped, *actor.Restarting:
		t.stopTicker()
		t.finish()
	case *actor.Terminated:
		t.onTerminated(ctx, m.Who)
	case sessionsTick:
		t.tick(time.Now())

	case newSession:
		t.create(m)
	case setClient:
		if r := t.recs[m.ID]; r != nil {
			r.clientName, r.clientVer, r.dirty = m.Info.Name, m.Info.Version, true
		}
	case bindCredential:
		if r := t.recs[m.ID]; r != nil && !r.pt && r.credential == "" {
			r.credential, r.dirty = m.Credential, true
		}
	case closeCredential:
		t.closeCredential(ctx, m)
	case countCall:
		if r := t.recs[m.ID]; r != nil && !r.closed {
			r.calls++
			r.last, r.dirty = time.Now(), true
		}
	case beginRequest:
		t.begin(ctx, m)
	case endRequest:
		if r := t.recs[m.ID]; r != nil && !r.pt && r.inflight > 0 {
			r.inflight--
			r.last, r.dirty = time.Now(), true
		}
	case sessionLive:
		r := t.recs[m.ID]
		ctx.Respond(reply{v: r != nil && !r.closed && !r.opening && r.endpoint == m.Endpoint})
	case terminate:
		if r := t.recs[m.ID]; r != nil && !r.pt && r.endpoint == m.Endpoint {
			t.closeRec(r, "ended by the agent")
		}
		// Answered once the record is written: a DELETE's answer means the session is closed.
		t.write(sessionJob{to: ctx.Sender(), msg: reply{}})
	case registerPurge:
		if t.purge == nil {
			t.purge = map[string]func(string){}
		}
		t.purge[m.Endpoint] = m.Purge

	case openPassthrough:
		t.openPT(ctx, m)
	case targetReady:
		t.onTarget(ctx, m)
	case passthrough.Opened:
		t.onOpened(m)
	case passthrough.OpenFailed:
		if r := t.recs[m.ID]; r != nil && r.opening && !r.closed {
			r.openRep = &openReply{Err: Errorf(CodeUpstream, "%v", m.Err)}
			t.closeRec(r, "the connection could not be opened")
		}
	case passthrough.Unapproved:
		if t.opts.Unapproved != nil {
			t.opts.Unapproved(m)
		}
	case passthrough.Lost:
		if r := t.recs[m.ID]; r != nil {
			t.closeRec(r, "the server's connection was lost")
		}
	case abandonOpen:
		t.abandon(m.ID)
	case passthroughPost:
		if r := t.ptRequest(ctx, m.ID, m.Endpoint, m.Credential, m.Out); r != nil {
			for _, msg := range m.Msgs {
				if msg.IsRequest() && msg.Method == string(mcp.MethodToolsCall) {
					r.calls++
				}
			}
			ctx.RequestWithCustomSender(r.pid, passthrough.Post{Msgs: m.Msgs, Out: m.Out, Credential: m.Credential}, ctx.Sender())
		}
	case passthroughListen:
		if r := t.ptRequest(ctx, m.ID, m.Endpoint, m.Credential, m.Out); r != nil {
			ctx.RequestWithCustomSender(r.pid, passthrough.Listen{Out: m.Out}, ctx.Sender())
		}
	case passthroughEnd:
		if r := t.recs[m.ID]; r != nil && r.open[m.Out] {
			delete(r.open, m.Out)
			r.last, r.dirty = time.Now(), true
			if r.pid != nil && !r.closed {
				ctx.Send(r.pid, passthrough.Done{Out: m.Out})
			}
		}
	case deletePassthrough:
		t.deletePT(ctx, m)
	case RevokePassthrough:
		t.revoke(m)
	case PassthroughTools:
		t.setTools(ctx, m)
	case countPassthrough:
		n := 0
		for _, r := range t.recs {
			if r.pt && !r.opening && !r.closed {
				n++
			}
		}
		ctx.Respond(reply{v: n})

	case listSessions:
		t.list(ctx)
	case getSession:
		t.get(ctx, m.ID)
	case closeAllSessions:
		t.closeAll(ctx)
	case awaitServerGone:
		if t.serverLive(m.Server) {
			t.goneWaiters[m.Server] = append(t.goneWaiters[m.Server], ctx.Sender())
		} else {
			ctx.Respond(reply{})
		}
	}
}

// start closes the records that a previous daemon left active (their ids are no longer
// accepted), prunes old closed ones, and starts the record writer and the ticker. It reads
// the store synchronously, once, before any request is served.
func (t *sessions) start(ctx actor.Context) {
	t.sys, t.self = ctx.ActorSystem(), ctx.Self()
	t.recs, t.byPID = map[string]*sessionRec{}, map[string]*sessionRec{}
	t.goneWaiters = map[string][]*actor.PID{}
	t.queue, t.revoked = map[string][]string{}, map[string]revocation{}
	t.tools = map[string]passthrough.ToolRules{}
	t.lastFlush, t.lastPrune = time.Now(), time.Now()
	if st := t.opts.Store; st != nil {
		closeStaleSessions(st, t.opts.KeepClosed, t.log)
		t.jobs, t.written = make(chan sessionJob, 64), make(chan struct{})
		go runSessionWriter(st, t.opts.KeepClosed, t.sys, t.log, t.jobs, t.written)
	}
	sweep := t.opts.FlushInterval
	if ttl := t.opts.IdleTTL; ttl > 0 {
		sweep = min(sweep, max(ttl/4, 50*time.Millisecond), time.Minute)
	}
	stop, sys, self := make(chan struct{}), t.sys, t.self
	t.stopTick = stop
	go func() {
		tk := time.NewTicker(sweep)
		defer tk.Stop()
		for {
			select {
			case <-tk.C:
				sys.Root.Send(self, sessionsTick{})
			case <-stop:
				return
			}
		}
	}()
}

func (t *sessions) stopTicker() {
	if t.stopTick != nil {
		close(t.stopTick)
		t.stopTick = nil
	}
}

// finish runs once every session actor is gone: every session still open is recorded as
// closed, and the writer has written everything before the actor is gone.
func (t *sessions) finish() {
	var puts []store.Session
	for _, r := range t.recs {
		if !r.opening && (!r.closed || r.dirty) {
			r.closed = true
			puts = append(puts, r.view())
		}
	}
	t.recs = map[string]*sessionRec{}
	if t.jobs != nil {
		if len(puts) > 0 {
			t.jobs <- sessionJob{puts: puts}
		}
		close(t.jobs)
		<-t.written
		t.jobs = nil
	}
}

// write queues records for the store.
func (t *sessions) write(job sessionJob) {
	if t.jobs == nil {
		if job.to != nil {
			t.sys.Root.Send(job.to, job.msg)
		}
		return
	}
	t.jobs <- job
}

// tick closes idle sessions, forgets old tombstones, writes changed records every
// FlushInterval and prunes the store every hour.
func (t *sessions) tick(now time.Time) {
	if ttl := t.opts.IdleTTL; ttl > 0 {
		limit := now.Add(-ttl)
		for _, r := range t.recs {
			if r.closed || r.opening || r.busy() || !r.last.Before(limit) {
				continue
			}
			if fn := t.purge[r.endpoint]; fn != nil && !r.pt {
				// The transport keeps state of its own (mcp-go for /mcp): it forgets the
				// session too, off this mailbox.
				go fn(r.id)
			}
			t.closeRec(r, "idle")
		}
	}
	tombstones := t.opts.IdleTTL
	if tombstones <= 0 {
		tombstones = DefaultSessionIdleTTL
	}
	for id, r := range t.recs {
		if r.closed && r.pid == nil && r.tellTo == nil && now.Sub(r.closedAt) > tombstones {
			delete(t.recs, id)
		}
	}
	if now.Sub(t.lastFlush) >= t.opts.FlushInterval {
		t.lastFlush = now
		t.flush(nil, nil)
	}
	if now.Sub(t.lastPrune) >= time.Hour {
		t.lastPrune = now
		t.write(sessionJob{prune: true})
	}
}

// flush writes every changed live record, then sends msg to `to` (if set).
func (t *sessions) flush(to *actor.PID, msg any) {
	var puts []store.Session
	for _, r := range t.recs {
		if r.dirty && !r.opening {
			r.dirty = false
			puts = append(puts, r.view())
		}
	}
	if len(puts) > 0 || to != nil {
		t.write(sessionJob{puts: puts, to: to, msg: msg})
	}
}

// create records a new /mcp session (mcp-go minted it through SessionsClient.NewSession).
func (t *sessions) create(m newSession) {
	if t.closing || t.recs[m.ID] != nil {
		return
	}
	now := time.Now()
	t.recs[m.ID] = &sessionRec{id: m.ID, endpoint: m.Endpoint, started: now.UTC(), last: now, done: make(chan struct{}), dirty: true}
}

// begin accounts for a request of an /mcp session, so that it is not idle while the
// request (or stream) lasts; the reply's Done channel is closed when the session closes.
func (t *sessions) begin(ctx actor.Context, m beginRequest) {
	r := t.recs[m.ID]
	if r == nil || r.pt || r.closed || r.endpoint != m.Endpoint {
		ctx.Respond(reply{err: notFound(m.ID)})
		return
	}
	if r.credential == "" {
		r.credential = m.Credential
	} else if credentialMismatch(r.credential, m.Credential) {
		ctx.Respond(reply{err: errOtherCredential(m.ID)})
		return
	}
	r.inflight++
	r.last, r.dirty = time.Now(), true
	ctx.Respond(beginReply{Done: r.done})
}

// credentialMismatch reports whether a request with credential got may not use a session
// bound to bound: an agent token's session answers only that token, and a token may not
// take over a session opened with another credential. (The API key and no credential stay
// interchangeable, as require_mcp_auth may change under a live session.)
func credentialMismatch(bound, got string) bool {
	isToken := func(c string) bool { return c != "" && c != CredentialAdmin && c != CredentialNone }
	return bound != got && (isToken(bound) || isToken(got))
}

func errOtherCredential(id string) error {
	return Errorf(CodeForbidden, "MCP session %q belongs to another credential", id)
}

// closeCredential closes every session of an agent token that was revoked or expired,
// at once: an /mcp session's streams end and mcp-go forgets it, a passthrough session's
// connection closes. The agent's next request is refused by the key check (401).
func (t *sessions) closeCredential(ctx actor.Context, m closeCredential) {
	err := Errorf(CodeForbidden, "%s", m.Reason)
	n := 0
	for _, r := range t.recs {
		if r.closed || r.credential != m.Name {
			continue
		}
		n++
		switch {
		case r.pt && r.opening && r.pid == nil: // waiting for its target or a slot
			t.refuseOpen(r, err)
		case r.pt && r.opening:
			r.openRep = &openReply{Err: err}
			t.closeRec(r, m.Reason)
		case r.pt:
			t.closeRec(r, m.Reason)
		default:
			if fn := t.purge[r.endpoint]; fn != nil {
				go fn(r.id) // mcp-go's own state of the session, off this mailbox
			}
			t.closeRec(r, m.Reason)
		}
	}
	if n > 0 {
		t.log.Info("closed the MCP sessions of an agent token", "token", m.Name, "sessions", n, "reason", m.Reason)
	}
	// Answered after the closed records are written.
	t.write(sessionJob{to: ctx.Sender(), msg: reply{}})
}

func notFound(id string) error {
	return Errorf(CodeNotFound, "MCP session %q not found or closed; initialize a new one", id)
}

// closeRec closes a session: its record is written as closed, an /mcp session's streams
// end, a passthrough session's actor is told to stop (its connection closes before it
// terminates, and whoever waits for that is answered then).
func (t *sessions) closeRec(r *sessionRec, reason string) {
	if r.closed {
		return
	}
	r.closed, r.closedAt, r.reason = true, time.Now(), reason
	if r.done != nil {
		close(r.done)
		r.done = nil
	}
	if !r.opening {
		r.dirty = false
		t.write(sessionJob{puts: []store.Session{r.view()}})
	}
	if r.pid != nil {
		t.sys.Root.Send(r.pid, passthrough.Close{Reason: reason})
		return
	}
	t.forget(r)
}

// forget answers whoever waited for a closed session to be gone, and drops its record
// unless it is a tombstone: a session the registry revoked keeps its reason for the
// agent's next request.
func (t *sessions) forget(r *sessionRec) {
	if r.opener != nil {
		rep := openReply{Err: Errorf(CodeUnavailable, "the session closed before it opened")}
		if r.openRep != nil {
			rep = *r.openRep
		}
		t.sys.Root.Send(r.opener, rep)
		r.opener = nil
	}
	for _, w := range r.waiters {
		t.write(sessionJob{to: w, msg: reply{}}) // after the closed record is written
	}
	r.waiters = nil
	if r.tellTo != nil {
		t.sys.Root.Send(r.tellTo, reply{err: &RevokedError{Err: r.revoked}})
		r.tellTo, r.told = nil, true
	}
	if r.revoked == nil || r.told {
		delete(t.recs, r.id)
	}
}

func (t *sessions) onTerminated(ctx actor.Context, who *actor.PID) {
	r := t.byPID[who.Id]
	if r == nil {
		return
	}
	delete(t.byPID, who.Id)
	r.pid = nil
	switch {
	case r.closed:
		t.forget(r)
	case t.closing:
		// Stopped with the sessions actor.
		if r.opening && r.openRep == nil {
			r.openRep = &openReply{Err: Errorf(CodeUnavailable, "the proxy is shutting down")}
		}
		t.closeRec(r, "the proxy is shutting down")
	default:
		// It stopped by itself: a bug in it, already logged by the supervisor.
		if r.opening && r.openRep == nil {
			r.openRep = &openReply{Err: Errorf(CodeInternal, "internal error")}
		}
		t.closeRec(r, "the session stopped")
	}
	t.pump(ctx, r.server)
	t.maybeFinishClose()
	if ws := t.goneWaiters[r.server]; len(ws) > 0 && !t.serverLive(r.server) {
		for _, w := range ws {
			ctx.Send(w, reply{})
		}
		delete(t.goneWaiters, r.server)
	}
}

// serverLive reports whether a passthrough session of server still has its actor (and so
// its connection). It walks the table: it is asked once per server removal.
func (t *sessions) serverLive(server string) bool {
	for _, r := range t.recs {
		if r.pt && r.server == server && r.pid != nil {
			return true
		}
	}
	return false
}

// list answers with every recorded session, newest first: the open ones as they are now,
// and the closed ones from the store (read by the writer, after the writes queued before).
func (t *sessions) list(ctx actor.Context) {
	var live []store.Session
	for _, r := range t.recs {
		if !r.opening {
			live = append(live, r.view())
		}
	}
	if t.jobs == nil {
		ctx.Respond(reply{v: mergeSessions(nil, live)})
		return
	}
	t.jobs <- sessionJob{list: true, live: live, to: ctx.Sender()}
}

func (t *sessions) get(ctx actor.Context, id string) {
	if r := t.recs[id]; r != nil && !r.opening {
		ctx.Respond(reply{v: r.view()})
		return
	}
	if t.jobs == nil {
		ctx.Respond(reply{err: Errorf(CodeNotFound, "session %q not found", id)})
		return
	}
	t.jobs <- sessionJob{get: id, to: ctx.Sender()}
}

// closeAll ends every session for shutdown and refuses new ones; the answer comes once
// every passthrough connection is closed and every record written.
func (t *sessions) closeAll(ctx actor.Context) {
	shutting := Errorf(CodeUnavailable, "the proxy is shutting down")
	t.refuseOpens(shutting)
	for _, r := range t.recs {
		switch {
		case r.closed:
		case r.opening:
			r.openRep = &openReply{Err: shutting}
			t.closeRec(r, "the proxy is shutting down")
		default:
			t.closeRec(r, "the proxy is shutting down")
		}
	}
	t.closeWaiters = append(t.closeWaiters, ctx.Sender())
	t.maybeFinishClose()
}

// refuseOpens stops taking sessions: opens that have no actor yet are refused with err.
func (t *sessions) refuseOpens(err error) {
	t.closing = true
	for _, r := range t.recs {
		if r.opening && r.pid == nil {
			t.refuseOpen(r, err)
		}
	}
	t.queue = map[string][]string{}
}

func (t *sessions) maybeFinishClose() {
	if len(t.closeWaiters) == 0 || len(t.byPID) > 0 {
		return
	}
	for _, w := range t.closeWaiters {
		t.flush(w, reply{})
	}
	t.closeWaiters = nil
}

// mergeSessions lays the live views over the stored records and sorts them newest first.
func mergeSessions(stored, live []store.Session) []store.Session {
	byID := make(map[string]int, len(stored))
	for i, s := range stored {
		byID[s.ID] = i
	}
	for _, v := range live {
		if i, ok := byID[v.ID]; ok {
			stored[i] = v
		} else {
			stored = append(stored, v)
		}
	}
	if stored == nil {
		stored = []store.Session{}
	}
	slices.SortFunc(stored, func(a, b store.Session) int {
		if c := b.StartedAt.Compare(a.StartedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return stored
}
func (closeCredential) IgnoreDeadLetterLogging() {}
