package actors

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcpproxy/mcpproxy/actors/search"
	"github.com/mcpproxy/mcpproxy/actors/upstream"
	"github.com/mcpproxy/mcpproxy/config"
)

// RegistryOptions configure the registry actor. Config and ConfigPath are required.
type RegistryOptions struct {
	// Config is the running config, normalised. The registry owns it from now on.
	Config *config.Config
	// ConfigPath is where flag changes and applies are saved.
	ConfigPath string
	// Secret looks up a stored secret by name for ${secret:NAME}. Default: none exist.
	Secret func(name string) (string, bool)
	// Hub receives domain events (Event). Nil means no events are published.
	Hub *actor.PID
	// Logger default discards.
	Logger *slog.Logger
	// BeforeSave is called with the exact bytes before the registry writes the config file,
	// so the file watcher can recognise the proxy's own writes.
	BeforeSave func(data []byte)
	// Dial is the base for every upstream connection (client info, wrappers). Its
	// MaxMessageBytes is replaced by the config's max_message_bytes.
	Dial upstream.Options
	// BackoffBase overrides the first reconnect delay (default 1 s).
	BackoffBase time.Duration
	// HealthEvery is how often remote upstreams are pinged while ready (default 30 s).
	HealthEvery time.Duration
	// OnApplied is called (on the registry's goroutine; it must not block) with a copy of
	// the config after every apply, so the HTTP layer can pick up live settings.
	OnApplied func(*config.Config)
	// OAuth keeps remote servers' OAuth tokens and client registrations (the store). Nil:
	// no OAuth (a 401 is an error like any other).
	OAuth OAuthStore
	// OAuthRedirectURI is the daemon's GET /oauth/callback URL.
	OAuthRedirectURI string

	systemSend func(to *actor.PID, msg any)
}

// Event is a domain event for the hub: Name is the SSE event name, Data its JSON payload.
type Event struct {
	Name string
	Data json.RawMessage
}

// Reasons of a servers.changed event.
const (
	ReasonState         = "state"
	ReasonEnabled       = "enabled"
	ReasonDisabled      = "disabled"
	ReasonQuarantined   = "quarantined"
	ReasonUnquarantined = "unquarantined"
	ReasonRestart       = "restart"
	ReasonAdded         = "added"
	ReasonRemoved       = "removed"
	ReasonAuth          = "auth"
)

// row is the registry's record of one configured server.
type row struct {
	cfg      config.ServerConfig
	pid      *actor.PID // the upstream actor, nil when none runs
	childGen int
	st       upstreamStatus
	since    time.Time // when the server entered error/backoff
	tools    []Tool    // the upstream's latest list, kept while quarantined for review
	// afterStop says what to do once the running actor has terminated: respawn (restart
	// after a config change) or drop the row (removed from config).
	respawn, remove bool
}

// registry owns the server table, the config and the tool index. See doc.go.
type registry struct {
	opts  RegistryOptions
	cfg   *config.Config // as in the file: what is saved
	eff   *config.Config // cfg normalised: what runs
	rows  map[string]*row
	index *search.Index
	saves chan saveJob
	gen   int

	// version increases with every message that may change a server's view (see Receive).
	version uint64

	restartQueue []string
	restarting   map[string]bool
	shutdown     *actor.PID // who asked for shutdownAll; answered when all children are gone
	closing      bool       // set by shutdownAll: nothing is spawned again
	savesDone    chan struct{}
	sys          *actor.ActorSystem
	log          *slog.Logger
	oauth        *actor.PID // the oauth actor (oauth_actor.go), spawned on first login
}

// NewRegistryProps returns the props of the registry actor.
func NewRegistryProps(opts RegistryOptions) *actor.Props {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Secret == nil {
		opts.Secret = func(string) (string, bool) { return "", false }
	}
	return actor.PropsFromProducer(func() actor.Actor {
		return &registry{opts: opts, log: opts.Logger}
	}, actor.WithSupervisor(actor.NewOneForOneStrategy(10, 10*time.Second, actor.DefaultDecider)))
}

type saveJob struct {
	cfg   *config.Config
	to    *actor.PID
	reply any
}

// Receive dispatches. A panic here would restart the registry and stop every upstream, so
// a bug is caught, logged and answered as an internal error instead.
func (r *registry) Receive(ctx actor.Context) {
	defer func() {
		if p := recover(); p != nil {
			r.log.Error("registry bug", "panic", p, "stack", string(debug.Stack()))
			if ctx.Sender() != nil {
				ctx.Respond(reply{err: Errorf(CodeInternal, "internal error")})
			}
		}
	}()
	switch ctx.Message().(type) {
	case listServers, getServer, getStatus, getServerTools, searchTools, callTool, getUpstreamConn, getConfig,
		getPassthroughTarget, checkPassthrough, getSecretUsers:
	default:
		// Anything else may change a server's view; readers cache by this number.
		r.version++
	}
	switch m := ctx.Message().(type) {
	case *actor.Started:
		r.start(ctx)
	case *actor.Stopping:
		// Pending config writes finish before the registry is gone, so nothing is lost.
		if r.saves != nil {
			close(r.saves)
			r.saves = nil
			<-r.savesDone
		}
	case *actor.Terminated:
		r.onTerminated(ctx, m)
	case upstreamStatus:
		r.onStatus(ctx, m)
	case listServers:
		if m.Versioned {
			ctx.Respond(reply{v: ServerList{Version: r.version, Servers: r.servers()}})
		} else {
			ctx.Respond(reply{v: r.servers()})
		}
	case getServer:
		if row, err := r.row(m.Name); err != nil {
			ctx.Respond(reply{err: err})
		} else {
			ctx.Respond(reply{v: r.view(m.Name, row)})
		}
	case getStatus:
		ctx.Respond(reply{v: r.status()})
	case setEnabled:
		r.setEnabled(ctx, m)
	case setQuarantined:
		r.setQuarantined(ctx, m)
	case restartServer:
		r.restart(ctx, m)
	case bulkOp:
		r.bulk(ctx, m)
	case getServerTools:
		r.serverTools(ctx, m)
	case searchTools:
		r.search(ctx, m)
	case callTool:
		r.callTool(ctx, m)
	case getUpstreamConn:
		r.upstreamConn(ctx, m)
	case getPassthroughTarget:
		r.passthroughTarget(ctx, m)
	case checkPassthrough:
		r.checkPassthroughAccess(ctx, m)
	case getConfig:
		ctx.Respond(reply{v: r.cfg.Clone()})
	case getSecretUsers:
		ctx.Respond(reply{v: r.cfg.SecretUsers()})
	case restartSecretUsers:
		r.restartSecretUsers(ctx, m)
	case applyConfig:
		r.apply(ctx, m)
	case shutdownAll:
		r.shutdownAll(ctx)
	default:
		r.receiveOAuth(ctx, m)
	}
}

func (r *registry) start(ctx actor.Context) {
	r.cfg = r.opts.Config
	r.eff = r.cfg.Clone()
	r.eff.Normalize()
	r.rows = map[string]*row{}
	r.index = search.NewIndex()
	r.restarting = map[string]bool{}
	r.sys = ctx.ActorSystem()
	r.opts.systemSend = func(to *actor.PID, msg any) { r.sys.Root.Send(to, msg) }
	saves, done, opts, sys := make(chan saveJob, 64), make(chan struct{}), r.opts, r.sys
	r.saves, r.savesDone = saves, done
	go func() {
		defer close(done)
		runSaver(opts, sys, saves)
	}()
	for _, sc := range r.eff.Servers {
		rw := &row{cfg: sc}
		r.rows[sc.Name] = rw
		if sc.IsEnabled() {
			r.spawn(ctx, sc.Name, rw)
		} else {
			rw.st.State = StateDisabled
		}
	}
}

// runSaver writes config snapshots in order, one at a time, outside the registry's mailbox,
// and answers the request that caused each write once it is on disk.
func runSaver(opts RegistryOptions, sys *actor.ActorSystem, jobs <-chan saveJob) {
	for job := range jobs {
		data, err := config.Marshal(job.cfg)
		if err == nil && opts.BeforeSave != nil {
			opts.BeforeSave(data)
		}
		if err == nil {
			_, err = config.Save(opts.ConfigPath, job.cfg)
		}
		if err != nil {
			opts.Logger.Error("saving config failed", "path", opts.ConfigPath, "err", err)
		}
		if job.to == nil {
			continue
		}
		if err != nil {
			sys.Root.Send(job.to, reply{err: Errorf(CodeInternal, "saving config failed")})
		} else {
			sys.Root.Send(job.to, job.reply)
		}
	}
}

// persist queues a write of the current config; the reply goes to `to` after the write.
func (r *registry) persist(to *actor.PID, rep any) {
	if r.saves == nil {
		if to != nil {
			r.opts.systemSend(to, reply{err: Errorf(CodeUnavailable, "shutting down")})
		}
		return
	}
	r.saves <- saveJob{cfg: r.cfg.Clone(), to: to, reply: rep}
}

func (r *registry) spawn(ctx actor.Context, name string, rw *row) {
	r.gen++
	rw.childGen = r.gen
	dial := r.dialOptions()
	cfg := r.eff.Prepared(rw.cfg)
	props := actor.PropsFromProducer(newUpstreamActor(upstreamProps{
		name: name, childGen: rw.childGen, cfg: cfg, resolve: r.resolver(),
		dial: dial, logger: r.log, backoffBase: r.opts.BackoffBase, healthEvery: r.opts.HealthEvery,
		tokens: r.tokensFor(name),
	}))
	pid, err := ctx.SpawnNamed(props, fmt.Sprintf("up-%s-%d", name, rw.childGen))
	if err != nil {
		rw.st = upstreamStatus{Name: name, State: StateError, LastError: "spawn: " + err.Error()}
		return
	}
	rw.pid = pid
	rw.st.State = StateConnecting
	rw.since = time.Time{}
}

// dialOptions are the options of a new upstream connection: the daemon's, with the
// registry's logger by default and the running config's max_message_bytes.
func (r *registry) dialOptions() upstream.Options {
	dial := r.opts.Dial
	if dial.Logger == nil {
		dial.Logger = r.log
	}
	dial.MaxMessageBytes = r.eff.MessageLimit()
	return dial
}

// resolver expands references when a server starts: ${secret:NAME} from the store,
// ${env:NAME} from the daemon's environment. The Scrubber it returns with the config is
// what every error and log line about the connection is scrubbed with.
func (r *registry) resolver() func(config.ServerConfig) (config.ServerConfig, *config.Scrubber, error) {
	secret := r.opts.Secret
	return func(sc config.ServerConfig) (config.ServerConfig, *config.Scrubber, error) {
		return sc.Resolve(secret, os.LookupEnv)
	}
}

func (r *registry) row(name string) (*row, error) {
	rw, ok := r.rows[name]
	if !ok {
		return nil, Errorf(CodeNotFound, "server %q not found", name)
	}
	return rw, nil
}

func (r *registry) view(name string, rw *row) Server {
	sc := rw.cfg
	s := Server{
		Name: name, Protocol: sc.Protocol, Enabled: sc.IsEnabled(), Quarantined: sc.IsQuarantined(),
		State: rw.st.State, LastError: rw.st.LastError, RetryCount: rw.st.RetryCount,
		ToolsCount: len(rw.tools), PID: rw.st.PID,
		Isolated: r.eff.IsolationFor(sc) != nil, Auth: rw.st.Auth,
	}
	if s.State == "" {
		s.State = StateConnecting
	}
	s.Connected = s.State == StateReady
	if s.Connected && !rw.st.ConnectedAt.IsZero() {
		t := rw.st.ConnectedAt
		s.ConnectedAt = &t
	}
	if s.State == StateError || s.State == StateBackoff {
		t := rw.since
		s.ErrorSince = &t
	}
	if sc.Protocol == "stdio" {
		s.Command = sc.Command
		s.Args = slices.Clone(sc.Args)
		if s.Args == nil {
			s.Args = []string{}
		}
	} else {
		s.URL = config.RedactURL(sc.URL)
	}
	return s
}

func (r *registry) names() []string {
	names := make([]string, 0, len(r.rows))
	for n := range r.rows {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (r *registry) servers() []Server {
	out := make([]Server, 0, len(r.rows))
	for _, n := range r.names() {
		out = append(out, r.view(n, r.rows[n]))
	}
	return out
}

func (r *registry) status() Status {
	var s Status
	for n, rw := range r.rows {
		v := r.view(n, rw)
		s.Servers.Total++
		if v.Connected {
			s.Servers.Connected++
		}
		if v.Quarantined {
			s.Servers.Quarantined++
		}
		if !v.Enabled {
			s.Servers.Disabled++
		}
		if v.State == StateError || v.State == StateBackoff {
			s.Servers.Errored++
		}
	}
	s.Tools.Total = r.index.Len()
	return s
}

// changed publishes servers.changed for one server.
func (r *registry) changed(ctx actor.Context, name, reason string) {
	rw, ok := r.rows[name]
	if !ok {
		return
	}
	r.publish(ctx, "servers.changed", map[string]any{"reason": reason, "server": r.view(name, rw)})
}

func (r *registry) publish(ctx actor.Context, name string, payload any) {
	if r.opts.Hub == nil {
		return
	}
	data, err := json.Marshal(payload)
	if err != nil {
		r.log.Error("marshal event", "event", name, "err", err)
		return
	}
	ctx.Send(r.opts.Hub, Event{Name: name, Data: data})
}

// reindex brings the search index in line with one server: its tools are searchable only
// while it is enabled, ready and not quarantined.
func (r *registry) reindex(ctx actor.Context, name string) {
	rw := r.rows[name]
	reachable := rw != nil && rw.cfg.IsEnabled() && !rw.cfg.IsQuarantined() && rw.st.State == StateReady
	before := r.index.ServerLen(name)
	if reachable {
		docs := make([]search.Doc, len(rw.tools))
		for i, t := range rw.tools {
			docs[i] = search.Doc{Server: name, Tool: t.Raw, Description: t.Description}
		}
		r.index.SetServer(name, docs)
	} else {
		if before == 0 {
			return
		}
		r.index.RemoveServer(name)
	}
	r.publish(ctx, "tools.indexed", map[string]any{
		"total": r.index.Len(), "server": name, "server_tools": r.index.ServerLen(name),
	})
}

func (r *registry) onStatus(ctx actor.Context, m upstreamStatus) {
	rw, ok := r.rows[m.Name]
	if !ok || rw.childGen != m.ChildGen || rw.pid == nil || rw.st.State == StateStopping {
		return // from an actor that has been replaced or is being stopped
	}
	prev, prevAuth := rw.st.State, rw.st.Auth
	switch m.State {
	case StateError, StateBackoff:
		// since is when the server first failed; retries pass through connecting and must
		// not reset it.
		if rw.since.IsZero() {
			rw.since = time.Now().UTC()
		}
	case StateReady:
		rw.since = time.Time{}
	}
	toolsChanged := m.Tools != nil
	// A server that is not ready keeps its last list for review; the index drops it below.
	if toolsChanged {
		rw.tools = m.Tools
	}
	m.Tools = nil
	rw.st = m
	r.changed(ctx, m.Name, ReasonState)
	if !prevAuth.equal(m.Auth) {
		r.changed(ctx, m.Name, ReasonAuth)
	}
	r.maybeSelfLogin(ctx, m.Name, prev, m)
	if toolsChanged || prev != m.State {
		r.reindex(ctx, m.Name)
	}
	if r.restarting[m.Name] && m.State != StateConnecting {
		delete(r.restarting, m.Name)
		r.pumpRestarts(ctx)
	}
}

func (r *registry) onTerminated(ctx actor.Context, m *actor.Terminated) {
	for _, name := range r.names() {
		rw := r.rows[name]
		if rw.pid == nil || !rw.pid.Equal(m.Who) {
			continue
		}
		rw.pid = nil
		rw.st = upstreamStatus{Name: name, State: StateDisabled}
		if r.restarting[name] {
			delete(r.restarting, name)
			r.pumpRestarts(ctx)
		}
		switch {
		case rw.remove:
			r.reindex(ctx, name)
			delete(r.rows, name)
			r.publish(ctx, "servers.changed", map[string]any{"reason": ReasonRemoved, "server": r.view(name, rw)})
		case !r.closing && (rw.respawn || rw.cfg.IsEnabled()):
			rw.respawn = false
			r.reindex(ctx, name)
			r.spawn(ctx, name, rw)
			r.changed(ctx, name, ReasonState)
		default:
			r.reindex(ctx, name)
			r.changed(ctx, name, ReasonState)
		}
		break
	}
	r.maybeFinishShutdown(ctx)
}

// stopChild moves a running server to stopping; the actor kills its processes and the
// Terminated message finishes the transition.
func (r *registry) stopChild(ctx actor.Context, name string, rw *row) {
	if rw.pid == nil {
		return
	}
	rw.st = upstreamStatus{Name: name, State: StateStopping}
	ctx.Stop(rw.pid)
}

// setFlags records a server's flags in both the file config and the running one.
func (r *registry) setFlags(name string, set func(sc *config.ServerConfig)) {
	for _, c := range []*config.Config{r.cfg, r.eff} {
		for i := range c.Servers {
			if c.Servers[i].Name == name {
				set(&c.Servers[i])
			}
		}
	}
}

func boolPtr(b bool) *bool { return &b }

// enable turns a server on; it reports whether anything changed.
func (r *registry) enable(ctx actor.Context, name string, rw *row, on bool) bool {
	if rw.cfg.IsEnabled() == on {
		return false
	}
	rw.cfg.Enabled = boolPtr(on)
	r.setFlags(name, func(sc *config.ServerConfig) { sc.Enabled = boolPtr(on) })
	if on {
		if r.closing {
			// shutting down: the flag is saved, nothing starts
		} else if rw.pid == nil {
			r.spawn(ctx, name, rw)
		} else {
			rw.respawn = true // still stopping: start again once it is gone
		}
		r.changed(ctx, name, ReasonEnabled)
	} else {
		rw.respawn = false
		r.stopChild(ctx, name, rw)
		if rw.pid == nil {
			rw.st = upstreamStatus{Name: name, State: StateDisabled}
		}
		r.reindex(ctx, name)
		r.changed(ctx, name, ReasonDisabled)
	}
	return true
}

func (r *registry) setEnabled(ctx actor.Context, m setEnabled) {
	rw, err := r.row(m.Name)
	if err != nil {
		ctx.Respond(reply{err: err})
		return
	}
	if !r.enable(ctx, m.Name, rw, m.Enabled) {
		ctx.Respond(reply{v: r.view(m.Name, rw)})
		return
	}
	r.persist(ctx.Sender(), reply{v: r.view(m.Name, rw)})
}

func (r *registry) setQuarantined(ctx actor.Context, m setQuarantined) {
	rw, err := r.row(m.Name)
	if err != nil {
		ctx.Respond(reply{err: err})
		return
	}
	if rw.cfg.IsQuarantined() == m.Quarantined {
		ctx.Respond(reply{v: r.view(m.Name, rw)})
		return
	}
	rw.cfg.Quarantined = boolPtr(m.Quarantined)
	r.setFlags(m.Name, func(sc *config.ServerConfig) { sc.Quarantined = boolPtr(m.Quarantined) })
	r.reindex(ctx, m.Name)
	reason := ReasonUnquarantined
	if m.Quarantined {
		reason = ReasonQuarantined
	}
	r.changed(ctx, m.Name, reason)
	r.persist(ctx.Sender(), reply{v: r.view(m.Name, rw)})
}

func (r *registry) restart(ctx actor.Context, m restartServer) {
	rw, err := r.row(m.Name)
	if err != nil {
		ctx.Respond(reply{err: err})
		return
	}
	if !rw.cfg.IsEnabled() {
		ctx.Respond(reply{err: Errorf(CodeConflict, "server %q is disabled; enable it first", m.Name)})
		return
	}
	r.restartNow(ctx, m.Name, rw)
	ctx.Respond(reply{v: r.view(m.Name, rw)})
}

func (r *registry) restartNow(ctx actor.Context, name string, rw *row) {
	if rw.pid == nil {
		r.spawn(ctx, name, rw)
	} else {
		ctx.Send(rw.pid, restartUpstream{})
		rw.st.State = StateConnecting
	}
	r.reindex(ctx, name)
	r.changed(ctx, name, ReasonRestart)
}

// Bulk operations.
const (
	BulkEnableAll  = "enable_all"
	BulkDisableAll = "disable_all"
	BulkRestartAll = "restart_all"
	BulkReconnect  = "reconnect"
)

func (r *registry) bulk(ctx actor.Context, m bulkOp) {
	res := BulkResult{Errors: map[string]string{}}
	dirty := false
	for _, name := range r.names() {
		rw := r.rows[name]
		res.Total++
		switch m.Op {
		case BulkEnableAll, BulkDisableAll:
			if r.enable(ctx, name, rw, m.Op == BulkEnableAll) {
				res.Successful++
				dirty = true
			} else {
				res.Skipped++
			}
		case BulkRestartAll:
			if !rw.cfg.IsEnabled() {
				res.Skipped++
				continue
			}
			res.Successful++
			if !r.restarting[name] && !slices.Contains(r.restartQueue, name) {
				r.restartQueue = append(r.restartQueue, name)
			}
		case BulkReconnect:
			if !rw.cfg.IsEnabled() || rw.st.State == StateReady || rw.st.State == StateConnecting {
				res.Skipped++
				continue
			}
			res.Successful++
			if rw.pid == nil {
				r.spawn(ctx, name, rw)
			} else {
				ctx.Send(rw.pid, reconnectUpstream{})
			}
		default:
			ctx.Respond(reply{err: Errorf(CodeInvalidArgument, "unknown bulk operation %q", m.Op)})
			return
		}
	}
	r.pumpRestarts(ctx)
	if dirty {
		r.persist(ctx.Sender(), reply{v: res})
		return
	}
	ctx.Respond(reply{v: res})
}

// pumpRestarts starts queued restarts while fewer than restart_concurrency are connecting.
func (r *registry) pumpRestarts(ctx actor.Context) {
	limit := r.eff.RestartConcurrency
	if limit <= 0 {
		limit = config.DefaultRestartConcurrency
	}
	for len(r.restartQueue) > 0 && len(r.restarting) < limit {
		name := r.restartQueue[0]
		r.restartQueue = r.restartQueue[1:]
		rw, ok := r.rows[name]
		if !ok || !rw.cfg.IsEnabled() {
			continue
		}
		r.restarting[name] = true
		r.restartNow(ctx, name, rw)
	}
}

func (r *registry) serverTools(ctx actor.Context, m getServerTools) {
	rw, err := r.row(m.Name)
	if err != nil {
		ctx.Respond(reply{err: err})
		return
	}
	tools := slices.Clone(rw.tools)
	if tools == nil {
		tools = []Tool{}
	}
	ctx.Respond(reply{v: ServerTools{Server: m.Name, Quarantined: rw.cfg.IsQuarantined(), Tools: tools}})
}

func (r *registry) tool(server, raw string) (Tool, bool) {
	rw, ok := r.rows[server]
	if !ok {
		return Tool{}, false
	}
	for _, t := range rw.tools {
		if t.Raw == raw {
			return t, true
		}
	}
	return Tool{}, false
}

func (r *registry) search(ctx actor.Context, m searchTools) {
	var hits []search.Hit
	if strings.TrimSpace(m.Query) == "" {
		hits = r.index.All(m.Limit)
	} else {
		hits = r.index.Search(m.Query, m.Limit)
	}
	out := make([]ToolHit, 0, len(hits))
	for _, h := range hits {
		if t, ok := r.tool(h.Server, h.Tool); ok {
			out = append(out, ToolHit{Tool: t, Score: h.Score})
		}
	}
	ctx.Respond(reply{v: searchResult{Hits: out, Total: r.index.Len()}})
}

// unreachable says why a server's tools cannot be used now, or returns its row.
func (r *registry) unreachable(name string) (*row, error) {
	rw, ok := r.rows[name]
	switch {
	case !ok:
		return nil, Errorf(CodeNotFound, "server %q not found", name)
	case rw.cfg.IsQuarantined():
		return nil, Errorf(CodeConflict, "server %q is quarantined; approve it before calling its tools", name)
	case !rw.cfg.IsEnabled():
		return nil, Errorf(CodeConflict, "server %q is disabled", name)
	case rw.st.State != StateReady || rw.pid == nil:
		msg := fmt.Sprintf("server %q is not ready (state %s)", name, rw.st.State)
		if rw.st.LastError != "" {
			msg += ": " + rw.st.LastError
		}
		return nil, Errorf(CodeUnavailable, "%s", msg)
	}
	return rw, nil
}

func (r *registry) callTool(ctx actor.Context, m callTool) {
	server, tool, ok := strings.Cut(m.Name, ":")
	if !ok || server == "" || tool == "" {
		ctx.Respond(callToolReply{Err: Errorf(CodeInvalidArgument, "tool name %q must be \"server:tool\"", m.Name)})
		return
	}
	rw, err := r.unreachable(server)
	if err != nil {
		ctx.Respond(callToolReply{Err: err})
		return
	}
	if _, ok := r.tool(server, tool); !ok {
		ctx.Respond(callToolReply{Err: Errorf(CodeNotFound, "server %q has no tool %q", server, tool)})
		return
	}
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = r.eff.Timeout()
	}
	ctx.RequestWithCustomSender(rw.pid, callUpstreamTool{Tool: tool, Args: m.Args, Meta: m.Meta, Timeout: timeout}, ctx.Sender())
}

func (r *registry) upstreamConn(ctx actor.Context, m getUpstreamConn) {
	rw, err := r.unreachable(m.Name)
	if err != nil {
		ctx.Respond(withUpstreamConnReply{Err: err})
		return
	}
	ctx.RequestWithCustomSender(rw.pid, withUpstreamConn{}, ctx.Sender())
}

func (r *registry) shutdownAll(ctx actor.Context) {
	r.shutdown = ctx.Sender()
	r.closing = true
	r.restartQueue = nil
	for _, name := range r.names() {
		rw := r.rows[name]
		rw.respawn = false
		if rw.pid != nil {
			r.stopChild(ctx, name, rw)
			r.changed(ctx, name, ReasonState)
		}
	}
	r.maybeFinishShutdown(ctx)
}

func (r *registry) maybeFinishShutdown(ctx actor.Context) {
	if r.shutdown == nil {
		return
	}
	for _, rw := range r.rows {
		if rw.pid != nil {
			return
		}
	}
	ctx.Send(r.shutdown, reply{})
	r.shutdown = nil
}
