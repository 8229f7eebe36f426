package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/actors/activity"
	"github.com/mcpproxy/mcpproxy/actors/oauth"
	"github.com/mcpproxy/mcpproxy/actors/upstream"
	"github.com/mcpproxy/mcpproxy/config"
)

// Backoff bounds for reconnecting a failed upstream: the first retry waits about
// backoffBase, each further failure doubles it (with ±20% jitter) up to backoffCap.
const (
	backoffBase = time.Second
	backoffCap  = 5 * time.Minute
)

// upstreamProps configures one upstream actor.
type upstreamProps struct {
	name     string
	childGen int
	cfg      config.ServerConfig
	// resolve expands ${secret:} and ${env:} references and returns the Scrubber of the
	// resolved values; it runs in the connect goroutine because it reads the store.
	resolve func(config.ServerConfig) (config.ServerConfig, *config.Scrubber, error)
	dial    upstream.Options
	logger  *slog.Logger
	// backoffBase overrides the first retry delay (tests).
	backoffBase time.Duration
	// healthEvery is how often a remote (http, sse) upstream is pinged while ready; a ping
	// that fails counts as a lost connection. Default 30 s.
	healthEvery time.Duration
	// tokens is the server's OAuth token store (remote servers; nil: no OAuth).
	tokens oauth.TokenStore
	// observer counts restarts, reconnects and backoff; nil counts nothing.
	observer UpstreamObserver
	// logs is the logs actor: the server's stderr and the actor's messages about it go
	// there (nil: nowhere).
	logs *actor.PID
}

// UpstreamObserver is told what an upstream actor's life cycle does, for the metrics
// (*metrics.Metrics implements it). Its methods are called from the actor's goroutine and
// must not block.
type UpstreamObserver interface {
	UpstreamRestarted(server string)
	UpstreamReconnecting(server string)
	UpstreamBackoff(server string, delay time.Duration)
}

func (u *upstreamActor) observe(fn func(o UpstreamObserver)) {
	if u.p.observer != nil {
		fn(u.p.observer)
	}
}

// upstreamActor owns one upstream's connection, process, tool list, state and backoff timer.
// Connecting, listing and calling run in goroutines that report back with generation-tagged
// messages; a result whose generation is not current is stale and dropped (its connection
// closed).
type upstreamActor struct {
	p      upstreamProps
	sys    *actor.ActorSystem
	self   *actor.PID
	parent *actor.PID

	// restarts is the Seq of the last restartUpstream, echoed in reports.
	restarts   int
	gen        int  // bumps on every (re)connect attempt
	genStore   *int // where gen is kept across restarts of this actor
	state      State
	conn       *upstream.Conn
	retryCount int
	lastError  string
	connected  time.Time
	retry      *time.Timer
	// relist is set when list_changed arrives while connecting: the list taken during the
	// connect may predate it, so it is listed again once ready.
	relist bool
	// listing is set while a re-list runs, listAgain when list_changed arrived during it.
	// However many notifications an upstream sends, at most one re-list is in flight and
	// one waits behind it; the waiting one starts after the notifications that caused it,
	// so the last list taken is at least as new as the last notification.
	listing, listAgain bool
	// dialing is the connect attempt in flight, if any.
	dialing *attempt
	// listed is the last tool list reported, whose tools the next listing reuses for the
	// same bytes (listTools). Its elements are never changed: the registry holds the
	// same slice.
	listed []Tool
	// closing are the closes running in the background (a connection a restart dropped, a
	// dial a newer one superseded, a late connection of a stale dial), each closed when its
	// processes are gone. The next connect waits for them, so that e.g. the old container's
	// removal cannot hit the new one (Docker isolation names containers after the server),
	// and so does shutdown, so that no process of the server outlives its actor.
	closing []chan struct{}
	// progress routes the progress notifications of calls in flight to their agents, by
	// the token the proxy sent upstream (progress.go).
	progress     map[string]progressRoute
	nextProgress uint64
	// scrub holds the secrets of the last resolve; last_error and log fields pass through
	// it (the connection scrubs its own errors too; this is the last line).
	scrub *config.Scrubber
	// auth is the server's OAuth status (remote servers with a token store), challenge the
	// last login request it made (see upstream_auth.go).
	auth      *AuthStatus
	challenge *oauth.AuthRequiredError
	authURL   *string // the resolved URL the tokens must be bound to
	// The catalog (upstream_catalog.go): recatalog, catalogListing and catalogAgain
	// coalesce its re-lists as relist, listing and listAgain do the tools';
	// pendingCatalog is a new catalog for the next report; subs are the agents' resource
	// subscriptions by the URI the server knows.
	recatalog, catalogListing, catalogAgain bool
	pendingCatalog                          *Catalog
	subs                                    map[string]*subscription
}

// attempt is one connect in flight. It is shared with the goroutine that dials, because the
// actor may stop before that goroutine is done: a connection that succeeds after the actor
// is gone would otherwise reach only dead letters, and its process would live on.
type attempt struct {
	cancel context.CancelFunc
	mu     sync.Mutex
	done   bool // set by the actor when it stops: the goroutine closes what it gets
	conn   *upstream.Conn
	// ended is closed when the dial goroutine returns, after it has closed whatever it
	// dialled and could not deliver: a stopping actor waits for it so that no process of
	// an abandoned dial outlives the actor.
	ended chan struct{}
}

// deliver hands a new connection to the actor; false means the actor has stopped and the
// caller must close it.
func (a *attempt) deliver(conn *upstream.Conn) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.done {
		return false
	}
	a.conn = conn
	return true
}

// abandon is called when the actor stops; it returns a connection delivered but not yet
// taken by the actor (its connectDone is still in the mailbox, which stopping discards).
func (a *attempt) abandon() *upstream.Conn {
	a.cancel()
	a.mu.Lock()
	defer a.mu.Unlock()
	a.done = true
	conn := a.conn
	a.conn = nil
	return conn
}

// take marks the delivered connection as the actor's own.
func (a *attempt) take() {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.conn = nil
}

func newUpstreamActor(p upstreamProps) actor.Producer {
	// The generation outlives a supervisor restart (which makes a fresh instance under the
	// same PID), so late results of the old instance's goroutines stay stale.
	gen := new(int)
	return func() actor.Actor { return &upstreamActor{p: p, genStore: gen} }
}

// Messages the upstream actor handles, besides lifecycle ones.
type (
	// restartUpstream drops the connection, resets backoff and connects again. Seq is the
	// registry's count of restarts sent to this actor, echoed in every later report.
	restartUpstream struct{ Seq int }
	// reconnectUpstream connects now if the upstream is not ready.
	reconnectUpstream struct{}
	// callUpstreamTool calls a tool; the reply is a callToolReply to the sender.
	callUpstreamTool struct {
		Tool     string
		Args     any
		Meta     *mcp.Meta
		Timeout  time.Duration
		Progress ProgressSink // nil: the caller wants no progress
	}
	callToolReply struct {
		Result *mcp.CallToolResult
		Err    error
		// Took is how long the upstream took (0 when the call never reached it).
		Took time.Duration
	}
	connectDone struct {
		gen   int
		conn  *upstream.Conn
		tools []Tool
		cat   Catalog
		err   error
		scrub *config.Scrubber // a pointer: a dead letter logged with %+v shows an address
		auth  *AuthStatus
		url   *string // the resolved URL (it may hold secrets; a pointer for the same reason)
	}
	connLost struct {
		gen int
		err error
	}
	retryDue     struct{ gen int }
	toolsChanged struct {
		gen int
		// bell is the connection's doorbell: set by the notification handler when it sends
		// a toolsChanged, cleared by the actor when it takes one, so a flood of
		// notifications leaves at most one toolsChanged in the mailbox. Nil for the actor's
		// own relist.
		bell *atomic.Bool
	}
	// setMessageLimit changes max_message_bytes for connections made from now on.
	setMessageLimit struct{ Bytes int }
	toolsListed     struct {
		gen   int
		tools []Tool
		err   error
	}
)

// upstreamStatus is what an upstream actor reports to the registry on every change.
type upstreamStatus struct {
	Name        string
	ChildGen    int
	State       State
	LastError   string
	RetryCount  int
	ConnectedAt time.Time
	PID         int
	// Tools is set (non-nil) when the tool list changed.
	Tools []Tool
	// Catalog is set (non-nil) when the prompts, resources or templates changed.
	Catalog *Catalog
	// Auth is the OAuth status (nil: the server does not use OAuth); Challenge the login
	// request of a needs_auth server (what the login asks for).
	Auth      *AuthStatus
	Challenge *oauth.AuthRequiredError
	// Restarts is the Seq of the last restartUpstream the actor took (see row.restarts).
	Restarts int
	// ProtocolVersion is the MCP revision the ready connection speaks ("" in any other state).
	ProtocolVersion string
}

func (u *upstreamActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		u.sys, u.self, u.parent = ctx.ActorSystem(), ctx.Self(), ctx.Parent()
		u.gen = *u.genStore
		u.connect()
	case *actor.Stopping, *actor.Restarting:
		u.observe(func(o UpstreamObserver) { o.UpstreamBackoff(u.p.name, 0) })
		u.shutdown()
		u.logf("stopped")
		*u.genStore = u.gen
	case connectDone:
		u.onConnectDone(m)
	case connLost:
		u.onConnLost(m)
	case retryDue:
		if m.gen == u.gen && u.state == StateBackoff {
			u.observe(func(o UpstreamObserver) { o.UpstreamReconnecting(u.p.name); o.UpstreamBackoff(u.p.name, 0) })
			u.connect()
		}
	case toolsChanged:
		u.onToolsChanged(m)
	case toolsListed:
		u.onToolsListed(m)
	case setMessageLimit:
		u.p.dial.MaxMessageBytes = m.Bytes
	case restartUpstream:
		u.restarts = m.Seq
		u.observe(func(o UpstreamObserver) { o.UpstreamRestarted(u.p.name); o.UpstreamBackoff(u.p.name, 0) })
		u.logf("restart requested")
		u.dropConn()
		u.retryCount = 0
		u.connect()
	case reconnectUpstream:
		if u.state != StateReady && u.state != StateConnecting {
			u.observe(func(o UpstreamObserver) { o.UpstreamReconnecting(u.p.name); o.UpstreamBackoff(u.p.name, 0) })
			u.connect()
		}
	case authChanged:
		u.onAuthChanged(m)
	case authRead:
		u.onAuthRead(m)
	case callUpstreamTool:
		u.call(ctx, m)
	case progressNotified:
		u.onProgress(m)
	case progressCallDone:
		delete(u.progress, m.key)
		u.sys.Root.Send(m.caller, m.reply)
	default:
		u.onCatalogMessage(ctx, m)
	}
}

// logf adds one of the daemon's own messages to the server's log, scrubbed like
// last_error.
func (u *upstreamActor) logf(format string, args ...any) {
	if u.p.logs == nil || u.sys == nil {
		return
	}
	u.sys.Root.Send(u.p.logs, appendLogs{Server: u.p.name, Stream: LogProxy, Lines: []string{u.scrub.Scrub(fmt.Sprintf(format, args...))}})
}

// report sends the current status to the registry.
func (u *upstreamActor) report(tools []Tool) {
	pid, revision := 0, ""
	if u.conn != nil {
		pid = u.conn.PID
		if u.state == StateReady {
			revision = u.conn.Client.ProtocolVersion()
		}
	}
	if tools != nil {
		u.listed = tools
	}
	u.sys.Root.Send(u.parent, upstreamStatus{
		Name: u.p.name, ChildGen: u.p.childGen, State: u.state, LastError: u.lastError,
		RetryCount: u.retryCount, ConnectedAt: u.connected, PID: pid, Tools: tools,
		Catalog: u.pendingCatalog, Auth: u.auth, Challenge: u.challenge, Restarts: u.restarts,
		ProtocolVersion: revision,
	})
	u.pendingCatalog = nil
}

func (u *upstreamActor) connect() {
	u.stopRetry()
	u.gen++
	u.relist, u.listing, u.listAgain = false, false, false
	u.recatalog, u.catalogListing, u.catalogAgain = false, false, false
	gen, self, sys := u.gen, u.self, u.sys
	u.state = StateConnecting
	u.report(nil)
	u.logf("connecting (attempt %d)", u.retryCount+1)
	p := u.p
	if u.dialing != nil {
		// A newer attempt supersedes one still in flight (restart while connecting); the
		// old one's goroutine closes whatever it dialled before it ends.
		if conn := u.dialing.abandon(); conn != nil {
			u.inBackground(func() { conn.Close() })
		}
		u.track(u.dialing.ended)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	at := &attempt{cancel: cancel, ended: make(chan struct{})}
	u.dialing = at
	prev, parent, listed := slices.Clone(u.closing), u.parent, u.listed
	go func() {
		defer close(at.ended)
		defer cancel()
		for _, closed := range prev {
			select {
			case <-closed:
			case <-ctx.Done():
			}
		}
		if err := ctx.Err(); err != nil {
			// Abandoned (or out of time) before it dialled: it must start no process. A
			// stale gen's answer is dropped; a current one's fails the attempt.
			sys.Root.Send(self, connectDone{gen: gen, err: fmt.Errorf("connect: %w", err)})
			return
		}
		cfg, scrub, err := p.resolve(p.cfg)
		if err != nil {
			sys.Root.Send(self, connectDone{gen: gen, err: err})
			return
		}
		opts := p.dial
		opts.Scrub = scrub
		if cfg.ProtocolVersion != "" {
			opts.ProtocolVersion = cfg.ProtocolVersion // the server's own pin
		}
		if p.tokens != nil && (cfg.Protocol == "http" || cfg.Protocol == "sse") {
			opts.Tokens = p.tokens
			opts.OnAuthChange = func() { sys.Root.Send(self, authChanged{gen: gen}) }
			if cfg.OAuth.SelfGrant() {
				// renewed before expiry by the oauth actor, so no call meets the 401
				opts.Regrant = regrantHook(sys, parent, p.name)
			}
			if tok, _ := p.tokens.Get(); tok != nil {
				scrub = scrub.With(tok.Values()...)
				opts.Scrub = scrub
				if tok.URL != cfg.URL {
					// The server's URL changed: its tokens were for another resource.
					_ = p.tokens.Put(&oauth.Tokens{URL: cfg.URL})
				}
			}
		}
		if p.logs != nil {
			name, logs := p.name, p.logs
			opts.OnStderr = func(lines []string) {
				sys.Root.Send(logs, appendLogs{Server: name, Stream: LogStderr, Lines: lines})
			}
		}
		bell, catalogBell := new(atomic.Bool), new(atomic.Bool)
		opts.OnNotification = func(n mcp.JSONRPCNotification) {
			switch {
			case catalogNotification(sys, self, gen, catalogBell, n):
			case n.Method == string(mcp.MethodNotificationToolsListChanged) && bell.CompareAndSwap(false, true):
				sys.Root.Send(self, toolsChanged{gen: gen, bell: bell})
			case n.Method == string(mcp.MethodNotificationProgress):
				sys.Root.Send(self, progressNotified{gen: gen, params: n.Params.AdditionalFields})
			}
		}
		conn, err := upstream.Dial(ctx, cfg, opts)
		auth, url := readAuth(p.tokens, cfg, err), &cfg.URL
		if err != nil {
			sys.Root.Send(self, connectDone{gen: gen, err: err, scrub: scrub, auth: auth, url: url})
			return
		}
		tools, err := listTools(ctx, p.name, conn, listed)
		if err != nil {
			if lost := conn.Err(); errors.Is(lost, oauth.ErrAuthRequired) {
				// initialize was open but listing needs a login (or a wider scope)
				sys.Root.Send(self, connectDone{gen: gen, err: lost, scrub: conn.Scrubber(), auth: readAuth(p.tokens, cfg, lost), url: url})
				conn.Close()
				return
			}
			conn.Close()
			sys.Root.Send(self, connectDone{gen: gen, err: fmt.Errorf("list tools: %w", err), scrub: conn.Scrubber()})
			return
		}
		cat := listCatalogAtConnect(ctx, p, conn)
		if !at.deliver(conn) {
			conn.Close()
			return
		}
		// The connection's Scrubber: it grows with every token the connection's OAuth
		// transport refreshes (actors/upstream auth.go).
		sys.Root.Send(self, connectDone{gen: gen, conn: conn, tools: tools, cat: cat, scrub: conn.Scrubber(), auth: auth, url: url})
	}()
}

func (u *upstreamActor) onConnectDone(m connectDone) {
	if u.dialing != nil && m.gen == u.gen {
		u.dialing.take()
		u.dialing = nil
	}
	if m.gen != u.gen {
		if m.conn != nil {
			conn := m.conn
			u.inBackground(func() { conn.Close() })
		}
		return
	}
	if m.scrub != nil {
		u.scrub = m.scrub
	}
	if m.auth != nil {
		u.auth, u.authURL = m.auth, m.url
	}
	if m.err != nil {
		if u.needsAuth(m.err) {
			return
		}
		u.fail(m.err)
		return
	}
	u.challenge = nil
	u.conn = m.conn
	u.state = StateReady
	u.lastError = ""
	u.retryCount = 0
	u.connected = time.Now().UTC()
	if m.tools == nil {
		m.tools = []Tool{}
	}
	u.pendingCatalog = &m.cat
	u.report(m.tools)
	u.resubscribe()
	if u.recatalog {
		u.recatalog = false
		u.onCatalogChanged(catalogChanged{gen: u.gen})
	}
	if m.conn.PID > 0 {
		u.logf("connected: %d tools (pid %d)", len(m.tools), m.conn.PID)
	} else {
		u.logf("connected: %d tools", len(m.tools))
	}
	if u.relist {
		u.relist = false
		u.onToolsChanged(toolsChanged{gen: u.gen})
	}
	gen, self, sys, conn := u.gen, u.self, u.sys, m.conn
	go func() {
		<-conn.Done()
		sys.Root.Send(self, connLost{gen: gen, err: conn.Err()})
	}()
	if u.p.cfg.Protocol == "http" || u.p.cfg.Protocol == "sse" {
		// A remote that goes away is noticed by no process exit and, over streamable HTTP,
		// by no broken stream: only a request that fails tells.
		go pingWhileUp(conn, u.p.healthEvery, func(err error) {
			sys.Root.Send(self, connLost{gen: gen, err: err})
		})
	}
}

func (u *upstreamActor) onConnLost(m connLost) {
	if m.gen != u.gen || u.state != StateReady {
		return
	}
	u.dropConn()
	err := m.err
	if err == nil {
		err = errors.New("connection lost")
	}
	if u.needsAuth(err) {
		u.refreshAuth()
		return
	}
	u.fail(err)
}

// fail records an error, reports error and then backoff, and schedules the next attempt.
func (u *upstreamActor) fail(err error) {
	u.retryCount++
	u.lastError = u.scrub.Scrub(err.Error())
	u.state = StateError
	u.report(nil)
	u.p.logger.Warn("upstream failed", "server", u.p.name, "err", u.lastError, "retry", u.retryCount)
	delay := backoffDelay(u.p.backoffBase, u.retryCount)
	u.observe(func(o UpstreamObserver) { o.UpstreamBackoff(u.p.name, delay) })
	u.logf("failed: %s; retrying in %s", u.lastError, delay.Round(10*time.Millisecond))
	u.state = StateBackoff
	u.report(nil)
	gen, self, sys := u.gen, u.self, u.sys
	u.retry = time.AfterFunc(delay, func() { sys.Root.Send(self, retryDue{gen: gen}) })
}

// backoffDelay is base·2^(n-1) capped at backoffCap, with ±20% jitter so that many servers
// failing together do not retry in lockstep.
func backoffDelay(base time.Duration, failures int) time.Duration {
	if base <= 0 {
		base = backoffBase
	}
	d := base
	for i := 1; i < failures && d < backoffCap; i++ {
		d *= 2
	}
	d = min(d, backoffCap)
	jitter := 0.8 + 0.4*rand.Float64()
	return time.Duration(float64(d) * jitter)
}

func (u *upstreamActor) onToolsChanged(m toolsChanged) {
	if m.bell != nil {
		// Cleared before anything else: a notification from now on rings again, and is
		// then covered by the queued re-list below.
		m.bell.Store(false)
	}
	if m.gen != u.gen {
		return
	}
	if u.state == StateConnecting {
		u.relist = true
		return
	}
	if u.state != StateReady {
		return
	}
	if u.listing {
		u.listAgain = true
		return
	}
	u.startList()
}

// startList re-lists the tools in a goroutine; its result comes back as toolsListed.
func (u *upstreamActor) startList() {
	u.listing = true
	gen, self, sys, conn, name, listed := u.gen, u.self, u.sys, u.conn, u.p.name, u.listed
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		tools, err := listTools(ctx, name, conn, listed)
		sys.Root.Send(self, toolsListed{gen: gen, tools: tools, err: err})
	}()
}

func (u *upstreamActor) onToolsListed(m toolsListed) {
	if m.gen != u.gen || u.state != StateReady {
		return
	}
	u.listing = false
	if m.err != nil {
		u.p.logger.Warn("re-list tools failed", "server", u.p.name, "err", u.scrub.Scrub(m.err.Error()))
	} else {
		if m.tools == nil {
			m.tools = []Tool{}
		}
		u.report(m.tools)
	}
	if u.listAgain {
		u.listAgain = false
		u.startList()
	}
}

func (u *upstreamActor) call(ctx actor.Context, m callUpstreamTool) {
	sender := ctx.Sender()
	if u.state != StateReady || u.conn == nil {
		ctx.Respond(callToolReply{Err: Errorf(CodeUnavailable, "server %q is not ready (state %s)", u.p.name, u.state).refused(activity.ReasonNotReady)})
		return
	}
	meta, progressKey := u.routeProgress(m.Meta, m.Progress)
	c := upstreamCall{conn: u.conn, server: u.p.name, tool: m.Tool, args: m.Args, meta: meta, timeout: m.Timeout}
	if progressKey == "" {
		// The caller makes the call on its own goroutine (Client.CallTool): no goroutine
		// of ours to start and no reply to hand back, two hand-offs fewer per call.
		ctx.Respond(callLease{call: c})
		return
	}
	sys, self := u.sys, u.self
	go func() {
		// Its progress is routed through this actor, which forgets the route when told
		// the call is done.
		sys.Root.Send(self, progressCallDone{key: progressKey, caller: sender, reply: c.run(context.Background())})
	}()
}

// callLease answers a tool call that needs nothing more of the upstream actor (no progress
// to route): the ready connection, for the caller to make the call with (upstreamCall.run).
// The actor still owns the connection; a call on one it has just closed fails as any call
// cut off by a close does.
type callLease struct{ call upstreamCall }

// upstreamCall is one tool call on a connection.
type upstreamCall struct {
	conn         *upstream.Conn
	server, tool string
	args         any
	meta         *mcp.Meta
	timeout      time.Duration
}

// run makes the call, bounded by the call's timeout and by ctx, and gives its reply: the
// errors as CallTool's callers know them (timeouts, the message limit, scrubbed upstream
// errors).
func (c upstreamCall) run(ctx context.Context) callToolReply {
	cctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = c.tool
	req.Params.Arguments = c.args
	req.Params.Meta = c.meta
	began := time.Now()
	res, err := c.conn.Client.CallTool(cctx, req)
	took := time.Since(began)
	if err != nil {
		if lost := c.conn.Err(); errors.Is(lost, upstream.ErrMessageTooLarge) {
			// The answer was cut at the limit; mcp-go's own error may quote it.
			err = lost
		}
		switch {
		case ctx.Err() != nil:
			// The caller gave up (its deadline, or it went away), as an ask would report.
			err = Errorf(CodeTimeout, "the proxy did not answer in time")
		case errors.Is(err, context.DeadlineExceeded):
			err = Errorf(CodeTimeout, "call to %s:%s timed out after %s", c.server, c.tool, c.timeout)
		default:
			err = &Error{Code: CodeUpstream, Message: fmt.Sprintf("call to %s:%s failed: %s", c.server, c.tool, c.conn.Scrubber().Scrub(err.Error()))}
		}
	}
	return callToolReply{Result: res, Err: err, Took: took}
}

func (u *upstreamActor) stopRetry() {
	if u.retry != nil {
		u.retry.Stop()
		u.retry = nil
	}
}

// dropConn closes the connection in the background; the process group is killed there.
func (u *upstreamActor) dropConn() {
	if u.conn != nil {
		conn := u.conn
		u.inBackground(func() { conn.Close() })
		u.conn = nil
	}
}

// inBackground runs a close on its own goroutine and tracks it (see closing).
func (u *upstreamActor) inBackground(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	u.track(done)
}

// isClosed reports whether ch is closed, without waiting.
func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// track adds a background close to closing, forgetting those already done.
func (u *upstreamActor) track(done chan struct{}) {
	u.closing = slices.DeleteFunc(u.closing, isClosed)
	u.closing = append(u.closing, done)
}

// shutdown runs in Stopping and Restarting. It closes the connection synchronously (bounded
// by upstream.Conn.Close, about 1.5 s at worst) on purpose: when the registry sees this actor
// terminated, the server's processes must already be gone.
func (u *upstreamActor) shutdown() {
	u.stopRetry()
	u.gen++
	deadline := time.Now().Add(shutdownWait)
	if u.dialing != nil {
		if conn := u.dialing.abandon(); conn != nil {
			conn.Close()
		}
		// A dial in flight may have started a process already; cancelled, it closes what
		// it made (bounded by Conn.Close) and returns.
		waitBounded(u.dialing.ended, time.Until(deadline))
		u.dialing = nil
	}
	if u.conn != nil {
		u.conn.Close()
		u.conn = nil
	}
	// What was closing in the background (a connection a restart dropped, superseded
	// dials) must be gone too.
	for _, closed := range u.closing {
		waitBounded(closed, time.Until(deadline))
	}
	u.closing = nil
}

// shutdownWait bounds how long a stopping actor waits for background closes: Conn.Close
// takes about 1.5 s at worst, and a cancelled dial returns within that plus its close.
const shutdownWait = 5 * time.Second

// waitBounded waits until ch is closed or d has passed.
func waitBounded(ch <-chan struct{}, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	}
}

// listTools lists an upstream's tools and converts them to our Tool, keeping each tool's
// schema and annotations as the JSON the upstream sent (canonical: slices of its definition), and the server's instructions
// from its initialize answer (bounded: they are indexed, not shown).
//
// prev is the server's last listing, whose tools are reused for the same bytes rather than
// read again (upstream.Conn.ListToolsKnown).
func listTools(ctx context.Context, server string, conn *upstream.Conn, prev []Tool) ([]Tool, error) {
	var known func([32]byte) bool
	var prevAt map[[32]byte]int
	if len(prev) > 0 {
		prevAt = make(map[[32]byte]int, len(prev))
		for i, t := range prev {
			prevAt[t.Sum] = i
		}
		known = func(sum [32]byte) bool { _, ok := prevAt[sum]; return ok }
	}
	listed, err := conn.ListToolsKnown(ctx, known)
	if err != nil {
		return nil, err
	}
	instructions := ""
	if conn.Init != nil {
		instructions = conn.Init.Instructions
		if len(instructions) > maxInstructions {
			instructions = strings.ToValidUTF8(instructions[:maxInstructions], "")
		}
	}
	tools := make([]Tool, 0, len(listed))
	for _, t := range listed {
		if t.Known {
			out := prev[prevAt[t.Sum]]
			out.Instructions = instructions // the server's, which a new connection may change
			tools = append(tools, out)
			continue
		}
		out := Tool{Name: server + ":" + t.Name, Server: server, Title: t.Title, Description: t.Description, Raw: t.Name,
			InputSchema: t.InputSchema, Annotations: t.Annotations, Instructions: instructions, Def: t.Def.JSON, Hash: t.Def.Hash,
			Sum: t.Sum}
		if len(out.InputSchema) == 0 {
			out.InputSchema = json.RawMessage(`{"type":"object"}`)
		}
		if string(out.Annotations) == "{}" {
			out.Annotations = nil
		}
		tools = append(tools, out)
	}
	return tools, nil
}

// maxInstructions bounds the server instructions kept for the index.
const maxInstructions = 16 << 10

// pingWhileUp pings a remote upstream every interval until its connection is closed, and
// reports the first failed ping.
func pingWhileUp(conn *upstream.Conn, every time.Duration, lost func(error)) {
	if every <= 0 {
		every = 30 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-conn.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), min(every, 10*time.Second))
		err := conn.Client.Ping(ctx)
		cancel()
		if err != nil {
			select {
			case <-conn.Done():
				// closed on purpose meanwhile; nothing to report
			default:
				lost(fmt.Errorf("health check failed: %w", err))
			}
			return
		}
	}
}
