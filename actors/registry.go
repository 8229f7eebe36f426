package actors

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcpproxy/mcpproxy/actors/activity"
	"github.com/mcpproxy/mcpproxy/actors/passthrough"
	"github.com/mcpproxy/mcpproxy/actors/search"
	"github.com/mcpproxy/mcpproxy/actors/store"
	"github.com/mcpproxy/mcpproxy/actors/upstream"
	"github.com/mcpproxy/mcpproxy/config"
)

// RegistryOptions configure the registry actor. Config and ConfigPath are required.
type RegistryOptions struct {
	// Config is the running config, normalised. The registry owns it from now on.
	Config *config.Config
	// Observer counts the upstreams' restarts, reconnects and backoff (metrics); nil
	// counts nothing.
	Observer UpstreamObserver
	// ConfigPath is where flag changes and applies are saved.
	ConfigPath string
	// Secret looks up a stored secret by name for ${secret:NAME}. Default: none exist.
	Secret func(name string) (string, bool)
	// Hub receives domain events (Event). Nil means no events are published.
	Hub *actor.PID
	// Operations is the operations actor (operations.go), told of every bulk operation and
	// of every change of a server's row after it. Nil follows none.
	Operations *actor.PID
	// Sessions is the sessions actor, told (RevokePassthrough) when a server's passthrough
	// sessions must end. Nil means there are none.
	Sessions *actor.PID
	// Logger default discards.
	Logger *slog.Logger
	// BeforeSave is called with the exact bytes before the registry writes the config file,
	// so the file watcher can recognise the proxy's own writes.
	BeforeSave func(data []byte)
	// AfterSave is called with the same bytes once the write has landed or failed.
	AfterSave func(data []byte)
	// Dial is the base for every upstream connection (client info, wrappers). Its
	// MaxMessageBytes is replaced by the config's max_message_bytes.
	Dial upstream.Options
	// BackoffBase overrides the first reconnect delay (default 1 s).
	BackoffBase time.Duration
	// HealthEvery is how often remote upstreams are pinged while ready (default 30 s).
	HealthEvery time.Duration
	// OnApplied is called (on the registry's goroutine; it must not block) with a copy of
	// the config and the apply's source after every apply, before its events are published,
	// so the HTTP layer can pick up live settings and the daemon can forget the errors of an
	// edit the file no longer holds.
	OnApplied func(cfg *config.Config, source string)
	// StartConcurrency bounds how many upstream actors may be in their first connect at
	// once (default DefaultStartConcurrency); see registry.spawn.
	StartConcurrency int
	// OAuth keeps remote servers' OAuth tokens and client registrations (the store). Nil:
	// no OAuth (a 401 is an error like any other).
	OAuth OAuthStore
	// OAuthRedirectURI is the daemon's GET /oauth/callback URL.
	OAuthRedirectURI string
	// Pins keeps the tool pins of tool-level trust (the store). Nil: pins live in memory
	// only, lost with the daemon.
	Pins PinStore
	// Pending keeps a config write durable before the file is written (the store; see
	// config.Pending), so that a flag change is answered after one synced record rather
	// than the file's two journal commits. Nil: every request waits for the file.
	Pending PendingStore
	// ReleaseMemory is called (on the registry's goroutine; it must not block) when a burst
	// of connects has settled (registry_settle.go). Default: debug.FreeOSMemory on a
	// goroutine of its own.
	ReleaseMemory func()

	systemSend func(to *actor.PID, msg any)
}

// PendingStore keeps the one pending config write (config.Pending, encoded): set, synced,
// before the file is written; cleared once it is.
type PendingStore interface {
	SetConfigPending(value []byte) error
	ClearConfigPending() error
}

// DefaultStartConcurrency is RegistryOptions.StartConcurrency's default: enough that a
// hundred stdio servers (B6) start together as before, few enough that 10,000 do not dial
// at once (with 10,000 at once, one GET /api/v1/status waited 9 s behind the apply in B10).
const DefaultStartConcurrency = 128

// Event is a domain event for the hub: Name is the SSE event name; its JSON payload is Data,
// or, when Data is nil, Payload as the hub encodes it. The registry sends Payload (plain
// values, copied), so that encoding the 20,000 events of a 10,000-server tear-down costs the
// hub's goroutine, not the registry's (encoding was most of its work per removed server).
type Event struct {
	Name    string
	Data    json.RawMessage
	Payload any
}

// JSON returns the event's payload as JSON.
func (e Event) JSON() ([]byte, error) {
	if e.Data != nil || e.Payload == nil {
		return e.Data, nil
	}
	return json.Marshal(e.Payload)
}

// The payloads of the registry's events. Fields are in the order of their JSON names, as
// the maps they replace were encoded.
type (
	serversChangedData struct {
		Reason string `json:"reason"`
		Server Server `json:"server"`
	}
	toolsIndexedData struct {
		Server      string `json:"server"`
		ServerTools int    `json:"server_tools"`
		Total       int    `json:"total"`
	}
	configReloadedData struct {
		Added   []string `json:"added"`
		Changed []string `json:"changed"`
		Path    string   `json:"path"`
		Removed []string `json:"removed"`
		Source  string   `json:"source"`
	}
)

// Reasons of a servers.changed event.
const (
	ReasonState         = "state"
	ReasonEnabled       = "enabled"
	ReasonDisabled      = "disabled"
	ReasonQuarantined   = "quarantined"
	ReasonUnquarantined = "unquarantined"
	ReasonRestart       = "restart"
	// ReasonUpdated: the server's definition changed (PATCH, or a config apply); it
	// reconnects with the new one.
	ReasonUpdated = "updated"
	ReasonAdded   = "added"
	ReasonRemoved = "removed"
	ReasonAuth    = "auth"
)

// row is the registry's record of one configured server.
type row struct {
	cfg      config.ServerConfig
	pid      *actor.PID // the upstream actor, nil when none runs
	childGen int
	// restarts counts the restartUpstream messages sent to the running actor; its reports
	// carry the count it has seen, so a report it sent before the latest restart (which the
	// mailbox's priorities let arrive after the restart's answer) is dropped.
	restarts int
	st       upstreamStatus
	since    time.Time // when the server entered error/backoff
	tools    []Tool    // the upstream's latest list, kept while quarantined for review (setTools)
	// toolAt indexes a long tools list by the tools' own names (toolNamed); nil until the
	// first lookup needs it, and again whenever the list is replaced.
	toolAt map[string]int
	// catalog is the upstream's latest prompts, resources and templates (catalog.go).
	catalog *Catalog
	// afterStop says what to do once the running actor has terminated: respawn (restart
	// after a config change) or drop the row (removed from config).
	respawn, remove bool
	// waiting is set while the row is in startQueue, waiting for a start slot.
	waiting bool
	// review is the set of tools held back, as a signature (trust.go retrust); awaiting
	// is its size.
	review   string
	awaiting int
	// extra are tools only passthrough sessions listed, for review (trust.go reviewed).
	extra map[string]Tool
	// counted is this row's share of registry.counts as of its last recount.
	counted tally
	// gone are the removals (DELETE /api/v1/servers/{name}) waiting for the row's actor
	// to terminate, answered with goneReply from removed.
	gone      []*actor.PID
	goneReply reply
}

// tally counts rows by what GET /api/v1/status shows. The registry keeps one for all rows,
// updated as each row changes, so that status is O(1) and not a walk over every server.
type tally struct {
	total, connected, quarantined, disabled, errored, awaiting int
}

func (t *tally) add(o tally, sign int) {
	t.total += sign * o.total
	t.connected += sign * o.connected
	t.quarantined += sign * o.quarantined
	t.disabled += sign * o.disabled
	t.errored += sign * o.errored
	t.awaiting += sign * o.awaiting
}

// tallyOf is one row's share of the counts, by the same rules as view.
func tallyOf(rw *row) tally {
	t := tally{total: 1, awaiting: rw.awaiting}
	if rw.st.State == StateReady {
		t.connected = 1
	}
	if rw.cfg.IsQuarantined() {
		t.quarantined = 1
	}
	if !rw.cfg.IsEnabled() {
		t.disabled = 1
	}
	if rw.st.State == StateError || rw.st.State == StateBackoff {
		t.errored = 1
	}
	return t
}

// registry owns the server table, the config and the tool index. See doc.go.
//
// # Cost
//
// No message may cost time in proportion to the number of servers when it concerns one
// server: a tear-down of n servers is n Terminated messages, and O(n) each made it O(n^2)
// (10,000 servers froze the registry for half a minute). So the registry keeps what such
// messages need as indices, updated as rows change: the child pid to its row (byChild), the
// status counts (counts), the number of running children (running), the position of each
// server in the config lists (at), the members of the restart queue (queued), and the sorted
// names, rebuilt only when a list is asked for after rows were added or removed. Walks over
// all rows are left to the messages about all of them: list, bulk operations, apply and
// shutdown.
type registry struct {
	opts RegistryOptions
	// dispatcher runs the registry's mailbox (warmDispatcher); stopped when the registry is.
	dispatcher *warmDispatcher
	cfg        *config.Config // as in the file: what is saved
	eff        *config.Config // cfg normalised: what runs
	rows       map[string]*row
	index      *search.Index
	saves      chan saveJob
	gen        int

	// Events wait until the config change they follow is on disk (see flushTurn): turn
	// collects the events of the message being handled; heldEvents are those waiting for a save,
	// each tagged with the number of the newest save queued when it was published; saveSeq
	// numbers the saves queued, savedSeq is the newest the saver has reported written.
	turn              []Event
	heldEvents        []heldEvent
	saveSeq, savedSeq uint64

	// uris and tmpls are the URI map of the catalogs (catalog.go): the servers listing
	// each resource URI and each resource template.
	uris  map[string]map[string]bool
	tmpls map[string]*uriTemplate
	// subscribers are the servers each agent session (by key) subscribed to resources of,
	// told when the session ends (dropSubscriber).
	subscribers map[string]map[string]bool

	counts  tally             // the sum of every row's counted
	byChild map[string]string // a running upstream actor's pid.Id -> its server
	running int               // upstream actors spawned and not yet terminated
	// at is each server's position in cfg.Servers, which is also its position in
	// eff.Servers (eff is a normalised clone of cfg, in the same order).
	at map[string]int
	// sorted is every row's name, sorted; nil after a row was added or removed.
	sorted []string
	// toStop are the children to stop, waiting for stopChildren; stops are the children
	// that have terminated, waiting for finishStops.
	toStop, stops []*actor.PID
	// starting maps the servers whose upstream actor is in its first connect to that
	// actor's childGen; startQueue holds the rows waiting for a slot (see spawn).
	starting   map[string]int
	startQueue []string
	// burst counts the connects begun since nothing was last connecting, burstSeq every
	// connect begun, which dates a due release (registry_settle.go).
	burst    int
	burstSeq uint64

	// restartPace is how many bulk restarts may connect at once (registry_restart.go).
	restartPace restartPacer

	// version increases with every message that may change a server's view (see Receive).
	version uint64

	restartQueue []string
	queued       map[string]bool // the names in restartQueue
	restarting   map[string]bool
	shutdown     *actor.PID // who asked for shutdownAll; answered when all children are gone
	closing      bool       // set by shutdownAll: nothing is spawned again
	savesDone    chan struct{}
	sys          *actor.ActorSystem
	log          *slog.Logger
	oauth        *actor.PID // the oauth actor (oauth_actor.go), spawned on first login

	// pins are the approved tool definitions by server and tool (trust.go); pinWrites are
	// the changes not yet handed to the saver; rulesVer numbers the passthrough's rules.
	pins      map[string]map[string]store.ToolPin
	pinWrites []store.PinChange
	rulesVer  uint64
	pinsLost  bool       // the store's pins could not be read at start
	logs      *actor.PID // the logs actor (logs.go), the servers' logs
}

// NewRegistryProps returns the props of the registry actor.
func NewRegistryProps(opts RegistryOptions) *actor.Props {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Secret == nil {
		opts.Secret = func(string) (string, bool) { return "", false }
	}
	if opts.StartConcurrency <= 0 {
		opts.StartConcurrency = DefaultStartConcurrency
	}
	if opts.ReleaseMemory == nil {
		opts.ReleaseMemory = releaseMemory
	}
	dispatcher := newWarmDispatcher(registryThroughput, registryLinger)
	return actor.PropsFromProducer(func() actor.Actor {
		return &registry{opts: opts, log: opts.Logger, dispatcher: dispatcher}
	}, actor.WithSupervisor(actor.NewOneForOneStrategy(10, 10*time.Second, actor.DefaultDecider)),
		// A priority mailbox, so that requests overtake the children's status reports (see
		// upstreamStatus.GetPriority).
		actor.WithMailbox(actor.UnboundedPriority()),
		actor.WithDispatcher(dispatcher))
}

// GetPriority puts the upstream actors' reports below every request in the registry's
// mailbox (protoactor's priority mailbox; requests have the default). 10,000 servers that
// fail together send 30,000 reports in a burst; a GET /api/v1/status queued behind them
// would wait for all of them. A request that overtakes a report sees the server as it was
// a moment earlier, which is what it would have seen had it come a moment earlier.
func (upstreamStatus) GetPriority() int8 { return actor.DefaultPriority - 1 }

// saveJob is one write of the saver: a config snapshot (nil: the config is unchanged)
// and tool pin changes, answered once both are on disk.
type saveJob struct {
	seq   uint64
	cfg   *config.Config
	pins  []store.PinChange
	to    *actor.PID
	reply any
	// flags says the write only changes flags (enable, quarantine, a tool's switch): its
	// answer may go once the write is durable as a pending record, before the file holds
	// it (runSaver). An apply or an edit waits for the file, which its caller may read next.
	flags bool
}

// heldEvent is an event waiting for save number after to be on disk.
type heldEvent struct {
	after uint64
	ev    Event
}

// configSaved is the saver's report that the saves up to number seq are written (or have
// failed, which their requests were told); the events held behind them go to the hub.
type configSaved struct{ seq uint64 }

// Receive dispatches. A panic here would restart the registry and stop every upstream, so
// a bug is caught, logged and answered as an internal error instead.
func (r *registry) Receive(ctx actor.Context) {
	defer r.flushTurn(ctx) // after survivePanic: a turn that panicked still publishes
	defer survivePanic(ctx, r.log, "registry")
	switch ctx.Message().(type) {
	case listServers, getServer, getStatus, recountStatus, getServerTools, searchTools, callTool, getConfig,
		listCatalog, catalogRequest, subscribeRequest, unsubscribeRequest, dropSubscriber,
		getPassthroughTarget, checkPassthrough, getSecretUsers, getLogs, followLogs, configSaved:
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
		r.savedSeq = r.saveSeq // every save has been written: nothing is held any more
	case *actor.Stopped:
		r.dispatcher.Stop()
	case configSaved:
		r.savedSeq = max(r.savedSeq, m.seq)
	case releaseDue:
		r.onReleaseDue(m)
	case *actor.Terminated:
		r.stopped(ctx, m.Who)
	case finishStops:
		r.finishStops(ctx)
	case stopChildren:
		r.stopChildren(ctx)
	case upstreamStatus:
		r.onStatus(ctx, m)
	case listServers:
		switch {
		case m.Versioned:
			ctx.Respond(reply{v: ServerList{Version: r.version, Servers: r.servers()}})
		case m.Scope != nil:
			ctx.Respond(reply{v: slices.DeleteFunc(r.servers(), func(s Server) bool { return !m.Scope.AllowsServer(s.Name) })})
		default:
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
	case recountStatus:
		ctx.Respond(reply{v: [2]Status{r.status(), r.recount()}})
	case setEnabled:
		r.setEnabled(ctx, m)
	case setQuarantined:
		r.setQuarantined(ctx, m)
	case restartServer:
		r.restart(ctx, m)
	case bulkOp:
		r.bulk(ctx, m)
	case getOperation:
		// the operations actor answers the caller itself
		if r.opts.Operations == nil {
			ctx.Respond(reply{err: Errorf(CodeNotFound, "operation %q not found (unknown or expired)", m.ID)})
		} else {
			ctx.Forward(r.opts.Operations)
		}
	case getServerTools:
		r.serverTools(ctx, m)
	case approveTools:
		r.approve(ctx, m)
	case setToolDisabled:
		r.disableTool(ctx, m)
	case searchTools:
		r.search(ctx, m)
	case callTool:
		r.callTool(ctx, m)
	case listCatalog:
		r.listCatalog(ctx, m)
	case catalogRequest:
		r.catalogRequest(ctx, m)
	case subscribeRequest:
		r.subscribeRequest(ctx, m)
	case unsubscribeRequest:
		r.unsubscribeRequest(ctx, m)
	case dropSubscriber:
		r.dropSubscriber(ctx, m)
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
	case editServer:
		r.edit(ctx, m)
	case getLogs:
		r.forwardLogs(ctx, m.Server)
	case followLogs:
		r.forwardLogs(ctx, m.Server)
	case shutdownAll:
		r.shutdownAll(ctx)
	case passthrough.Unapproved:
		r.sessionTools(ctx, m)
	default:
		r.receiveOAuth(ctx, m)
	}
	if len(r.pinWrites) > 0 {
		// Pins changed by a message that saves nothing else (a first listing, an apply
		// from the file): written now, in order with the config saves.
		r.save(nil, nil, false, false)
	}
}

func (r *registry) start(ctx actor.Context) {
	r.cfg = r.opts.Config
	r.eff = r.cfg.Clone()
	r.eff.Normalize()
	r.rows = map[string]*row{}
	r.byChild = map[string]string{}
	r.starting = map[string]int{}
	r.queued = map[string]bool{}
	r.at = positions(r.cfg)
	r.index = search.NewIndex()
	r.restarting = map[string]bool{}
	r.sys = ctx.ActorSystem()
	r.opts.systemSend = func(to *actor.PID, msg any) { r.sys.Root.Send(to, msg) }
	r.loadPins()
	if pid, err := ctx.SpawnNamed(newLogsProps(), "logs"); err == nil {
		r.logs = pid
	} else {
		r.log.Error("server logs unavailable", "err", err)
	}
	saves, done, opts, sys := make(chan saveJob, 64), make(chan struct{}), r.opts, r.sys
	r.saves, r.savesDone = saves, done
	go func() {
		defer close(done)
		runSaver(opts, sys, ctx.Self(), saves)
	}()
	for _, sc := range r.eff.Servers {
		rw := &row{cfg: sc}
		r.addRow(sc.Name, rw)
		if sc.IsEnabled() {
			r.spawn(ctx, sc.Name, rw)
		} else {
			rw.st.State = StateDisabled
		}
		r.recountRow(rw)
	}
}

// positions maps each server's name to its index in c.Servers.
func positions(c *config.Config) map[string]int {
	at := make(map[string]int, len(c.Servers))
	for i, sc := range c.Servers {
		at[sc.Name] = i
	}
	return at
}

// addRow puts a new row in the table.
func (r *registry) addRow(name string, rw *row) {
	r.rows[name] = rw
	r.sorted = nil
	r.recountRow(rw)
}

// dropRow takes a row out of the table and the counts.
func (r *registry) dropRow(name string, rw *row) {
	r.counts.add(rw.counted, -1)
	rw.counted = tally{}
	delete(r.rows, name)
	r.sorted = nil
}

// recountRow brings the counts in line with one row after it changed. changed calls it, so
// every change that is published is counted; the few that publish nothing call it
// themselves.
func (r *registry) recountRow(rw *row) {
	r.counts.add(rw.counted, -1)
	rw.counted = tallyOf(rw)
	r.counts.add(rw.counted, 1)
}

// runSaver writes config snapshots in order, one at a time, outside the registry's mailbox,
// and answers the request that caused each write once it is durable.
//
// Each snapshot holds every change before it, so the snapshots that queued up while one was
// being written are folded into one write of the newest, and all their requests are
// answered after it: a burst of n single-server changes costs as many writes of the whole
// file as the disk has time for, not n.
//
// For a batch of flag changes alone (saveJob.flags), durable means in the store as a
// config.Pending (opts.Pending), one synced record: the requests are answered and the
// registry told (configSaved) right then, and the file is written after, before the next
// batch is taken; any other batch is durable once the file holds it. A crash in between leaves the Pending,
// which the next start replays onto the file (config.Replay). Without opts.Pending, or if
// the record cannot be written, the requests wait for the file itself.
//
// The registry hears of each write (configSaved) after its requests have been answered, and
// only then publishes the events of those changes, so the answer is not queued behind the
// fan-out of its own event to every /events subscriber.
func runSaver(opts RegistryOptions, sys *actor.ActorSystem, registry *actor.PID, jobs <-chan saveJob) {
	batch := make([]saveJob, 0, cap(jobs))
	for job := range jobs {
		batch = append(batch[:0], job)
	drain:
		for {
			select {
			case j, ok := <-jobs:
				if !ok {
					break drain
				}
				batch = append(batch, j)
			default:
				break drain
			}
		}
		// The pins first, all of the batch's changes in order: an approval answered after
		// the config write is durable with its pins.
		var pins []store.PinChange
		var cfg *config.Config
		for _, j := range batch {
			pins = append(pins, j.pins...)
			if j.cfg != nil {
				cfg = j.cfg
			}
		}
		var err error
		var data []byte
		what := "saving tool pins failed"
		if len(pins) > 0 && opts.Pins != nil {
			if err = opts.Pins.WritePins(pins); err != nil {
				opts.Logger.Error("saving tool pins failed", "err", err)
			}
		}
		pending := false
		if cfg != nil && err == nil {
			if data, err = config.Prepare(cfg); err != nil {
				what = "saving config failed"
				opts.Logger.Error("saving config failed", "path", opts.ConfigPath, "err", err)
			} else if onlyFlags(batch) {
				pending = recordPending(opts, data)
			}
		}
		answer := func() {
			for _, j := range batch {
				switch {
				case j.to == nil:
				case err != nil:
					sys.Root.Send(j.to, reply{err: Errorf(CodeInternal, "%s", what)})
				default:
					sys.Root.Send(j.to, j.reply)
				}
			}
			sys.Root.Send(registry, configSaved{seq: batch[len(batch)-1].seq})
		}
		if pending {
			answer()
		}
		if data != nil && err == nil {
			if opts.BeforeSave != nil {
				opts.BeforeSave(data)
			}
			werr := config.WriteFileAtomic(opts.ConfigPath, data)
			if werr != nil {
				// Answered already, the change is kept by the Pending, which the next
				// write (of a newer snapshot) replaces and a restart replays.
				opts.Logger.Error("saving config failed", "path", opts.ConfigPath, "err", werr)
			} else if pending {
				if cerr := opts.Pending.ClearConfigPending(); cerr != nil {
					opts.Logger.Warn("clearing the pending config write failed", "err", cerr)
				}
			}
			if !pending {
				err, what = werr, "saving config failed"
			}
			if opts.AfterSave != nil {
				opts.AfterSave(data)
			}
		}
		if !pending {
			answer()
		}
		clear(batch) // let the snapshots be collected
	}
}

// onlyFlags reports whether every job of the batch that writes the config changes flags
// alone (saveJob.flags). A job of pins alone does not count: its pins are written before
// anyone is answered, so it must not hold a disable batched with it back until the file is
// written (the tool pins of a server's first connection often are).
func onlyFlags(batch []saveJob) bool {
	for _, j := range batch {
		if j.cfg != nil && !j.flags {
			return false
		}
	}
	return true
}

// recordPending makes the config write of data durable in opts.Pending before the file is
// written; false when there is no store for it or the record could not be written (then
// the file itself must be on disk before anyone is answered).
func recordPending(opts RegistryOptions, data []byte) bool {
	if opts.Pending == nil {
		return false
	}
	p, err := config.NewPending(opts.ConfigPath, data)
	if err == nil {
		var raw []byte
		if raw, err = p.Encode(); err == nil {
			err = opts.Pending.SetConfigPending(raw)
		}
	}
	if err != nil {
		opts.Logger.Warn("pending config write not recorded; answering after the file", "err", err)
		return false
	}
	return true
}

// persist queues a write of the current config (and of the pin changes not yet written);
// the reply goes to `to` after the write.
func (r *registry) persist(to *actor.PID, rep any) { r.save(to, rep, true, false) }

// persistFlags is persist for a change of flags alone, answered once it is durable
// (saveJob.flags).
func (r *registry) persistFlags(to *actor.PID, rep any) { r.save(to, rep, true, true) }

// save queues a write of the pin changes not yet written and, with cfg, of the config.
func (r *registry) save(to *actor.PID, rep any, cfg, flags bool) {
	if r.saves == nil {
		r.pinWrites = nil // shutting down: Stopping has closed the saver
		if to != nil {
			r.opts.systemSend(to, reply{err: Errorf(CodeUnavailable, "shutting down")})
		}
		return
	}
	r.saveSeq++
	job := saveJob{seq: r.saveSeq, pins: r.pinWrites, to: to, reply: rep, flags: flags}
	r.pinWrites = nil
	if cfg {
		job.cfg = r.snapshot()
	}
	r.saves <- job
}

// snapshot copies cfg for the saver, sharing everything but the server list. That is safe
// because the registry never changes a config in place except through setFlags, which
// assigns new flag pointers into its own list, and the saver only reads; and it keeps a save
// of 10,000 servers a copy of one slice here rather than 10,000 deep copies on the
// registry's goroutine (the saver's Marshal makes its own deep copy, off the mailbox).
func (r *registry) snapshot() *config.Config {
	c := *r.cfg
	c.Servers = slices.Clone(r.cfg.Servers)
	return &c
}

// spawn starts a row's upstream actor, or queues the row (state connecting) while
// StartConcurrency actors are in their first connect: an apply of 10,000 servers would
// otherwise start 10,000 dials at once, whose goroutines starve the registry's own (its
// apply took seconds of wall time for a fifth of a second of work). A slot is freed when the
// actor first reports a state other than connecting, or terminates. Later reconnects are
// the actors' own, spread by their jittered backoff.
func (r *registry) spawn(ctx actor.Context, name string, rw *row) {
	if rw.waiting {
		return // keeps its place in the queue, and starts with the row's config then
	}
	if len(r.starting) >= r.opts.StartConcurrency {
		rw.waiting = true
		rw.st = upstreamStatus{Name: name, State: StateConnecting}
		rw.since = time.Time{}
		r.startQueue = append(r.startQueue, name)
		return
	}
	r.startNow(ctx, name, rw)
}

// pumpStarts starts waiting rows while start slots are free. A row that was disabled or
// removed while waiting is skipped.
func (r *registry) pumpStarts(ctx actor.Context) {
	for len(r.startQueue) > 0 && len(r.starting) < r.opts.StartConcurrency && !r.closing {
		name := r.startQueue[0]
		r.startQueue[0] = ""
		r.startQueue = r.startQueue[1:]
		rw := r.rows[name]
		if rw == nil || !rw.waiting {
			continue
		}
		rw.waiting = false
		if !rw.cfg.IsEnabled() || rw.pid != nil {
			continue
		}
		r.startNow(ctx, name, rw)
		r.recountRow(rw) // a failed spawn is an error
	}
	if len(r.startQueue) == 0 {
		r.startQueue = nil
	}
}

// startDone frees the start slot of name's actor of generation childGen, if it holds one.
func (r *registry) startDone(ctx actor.Context, name string, childGen int) {
	if gen, ok := r.starting[name]; ok && gen == childGen {
		delete(r.starting, name)
		r.pumpStarts(ctx)
		r.maybeSettle(ctx)
	}
}

func (r *registry) startNow(ctx actor.Context, name string, rw *row) {
	r.gen++
	rw.childGen = r.gen
	rw.restarts = 0
	dial := r.dialOptions()
	cfg := r.eff.Prepared(rw.cfg)
	props := actor.PropsFromProducer(newUpstreamActor(upstreamProps{
		name: name, childGen: rw.childGen, cfg: cfg, resolve: r.resolver(),
		dial: dial, logger: r.log, backoffBase: r.opts.BackoffBase, healthEvery: r.opts.HealthEvery,
		tokens: r.tokensFor(name), observer: r.opts.Observer,
		logs: r.logs,
	}))
	pid, err := ctx.SpawnNamed(props, fmt.Sprintf("up-%s-%d", name, rw.childGen))
	if err != nil {
		rw.st = upstreamStatus{Name: name, State: StateError, LastError: "spawn: " + err.Error()}
		return
	}
	rw.pid = pid
	r.byChild[pid.Id] = name
	r.running++
	r.starting[name] = rw.childGen
	r.connectBegun()
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
		Isolated: r.eff.IsolationFor(sc) != nil, Auth: rw.st.Auth, ToolsAwaitingReview: rw.awaiting,
	}
	if rw.st.Auth != nil {
		a := *rw.st.Auth // the upstream's report is shared; the view gets its own copy
		a.Grant = config.GrantAuthorizationCode
		if sc.OAuth.SelfGrant() {
			a.Grant = sc.OAuth.Grant
		}
		s.Auth = &a
	}
	if s.State == "" {
		s.State = StateConnecting
	}
	s.Connected = s.State == StateReady
	if s.Connected && !rw.st.ConnectedAt.IsZero() {
		t := rw.st.ConnectedAt
		s.ConnectedAt = &t
	}
	if s.Connected {
		s.ProtocolVersion = rw.st.ProtocolVersion
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

// names returns every row's name, sorted. The slice is shared until rows are added or
// removed (which make a new one), so callers must not change it.
func (r *registry) names() []string {
	if r.sorted == nil {
		r.sorted = make([]string, 0, len(r.rows))
		for n := range r.rows {
			r.sorted = append(r.sorted, n)
		}
		sort.Strings(r.sorted)
	}
	return r.sorted
}

func (r *registry) servers() []Server {
	out := make([]Server, 0, len(r.rows))
	for _, n := range r.names() {
		out = append(out, r.view(n, r.rows[n]))
	}
	return out
}

// status is the summary from the counts kept as rows change.
func (r *registry) status() Status {
	c := r.counts
	return Status{
		Servers: StatusServers{Total: c.total, Connected: c.connected, Quarantined: c.quarantined, Disabled: c.disabled, Errored: c.errored},
		Tools:   StatusTools{Total: r.index.Len(), AwaitingReview: c.awaiting},
	}
}

// recount is status counted afresh from every server's view, for tests that check the kept
// counts against it.
func (r *registry) recount() Status {
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
		s.Tools.AwaitingReview += v.ToolsAwaitingReview
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
	r.recountRow(rw)
	v := r.view(name, rw)
	r.publish(ctx, "servers.changed", serversChangedData{Reason: reason, Server: v})
	if r.opts.Operations != nil {
		ctx.Send(r.opts.Operations, opServerState{Name: name, State: v.State, LastError: v.LastError})
	}
}

// removed takes a row out of the table and publishes its removal.
func (r *registry) removed(ctx actor.Context, name string, rw *row) {
	r.reindex(ctx, name)
	r.setCatalog(name, rw, nil)
	r.unpin(name)
	rw.awaiting = 0
	r.dropRow(name, rw)
	r.publish(ctx, "servers.changed", serversChangedData{Reason: ReasonRemoved, Server: r.view(name, rw)})
	if r.opts.Operations != nil {
		ctx.Send(r.opts.Operations, opServerState{Name: name, Removed: true})
	}
	r.answerRemoval(rw)
	if r.logs != nil {
		ctx.Send(r.logs, dropLogs{Server: name})
	}
}

// publish queues an event for the hub, which encodes it; flushTurn sends it at the end of
// the message.
func (r *registry) publish(_ actor.Context, name string, payload any) {
	if r.opts.Hub == nil {
		return
	}
	r.turn = append(r.turn, Event{Name: name, Payload: payload})
}

// flushTurn sends the hub the events that may go, in the order they were published, at the
// end of every message. An event is published once what it shows is durable: the events
// of a message that queued a config write (a flag change, an apply), and every event after
// them, wait until the saver reports that write on disk (configSaved), so that a subscriber
// never sees a change that a crash could still undo, and the request is answered before
// its event fans out to a thousand subscribers (which took the CPU the answer needed: a
// disable was answered in 73 ms). Events that follow no pending write go at once.
func (r *registry) flushTurn(ctx actor.Context) {
	if len(r.turn) > 0 {
		if r.savedSeq < r.saveSeq || len(r.heldEvents) > 0 {
			for _, ev := range r.turn {
				r.heldEvents = append(r.heldEvents, heldEvent{after: r.saveSeq, ev: ev})
			}
		} else {
			for _, ev := range r.turn {
				ctx.Send(r.opts.Hub, ev)
			}
		}
		clear(r.turn)
		r.turn = r.turn[:0]
		if cap(r.turn) > 1024 {
			r.turn = nil // an apply of thousands: do not keep its array
		}
	}
	n := 0
	for n < len(r.heldEvents) && r.heldEvents[n].after <= r.savedSeq {
		ctx.Send(r.opts.Hub, r.heldEvents[n].ev)
		n++
	}
	if n > 0 {
		clear(r.heldEvents[:n])
		r.heldEvents = r.heldEvents[n:]
		if len(r.heldEvents) == 0 {
			r.heldEvents = nil
		}
	}
}

// SearchDoc is the tool as the search index sees it: everything the upstream says about it
// and its server.
func (t Tool) SearchDoc() search.Doc {
	return search.Doc{Server: t.Server, Tool: t.Raw, Title: t.Title, Description: t.Description,
		InputSchema: t.InputSchema, Annotations: t.Annotations, Instructions: t.Instructions}
}

// reindex brings the search index in line with one server: its tools are searchable only
// while it is enabled, ready and not quarantined, and then only those agents may use (not
// held back for review, not disabled; see trust.go). An enabled, unquarantined server that
// is not ready is hidden rather than removed (search.Index.HideServer), removed once it is
// disabled, quarantined or gone.
func (r *registry) reindex(ctx actor.Context, name string) {
	rw := r.rows[name]
	reachable := rw != nil && rw.cfg.IsEnabled() && !rw.cfg.IsQuarantined() && rw.st.State == StateReady
	before := r.index.ServerLen(name)
	if reachable {
		docs := make([]search.Doc, 0, len(rw.tools))
		for _, t := range rw.tools {
			if r.agentTool(name, rw, t) {
				docs = append(docs, t.SearchDoc())
			}
		}
		r.index.SetServer(name, docs)
	} else {
		if rw != nil && rw.cfg.IsEnabled() && !rw.cfg.IsQuarantined() {
			// Meant to be reachable (restarting, reconnecting, failing for now): hidden, so
			// that coming back with the same tools costs no re-analysis of them.
			r.index.HideServer(name)
		} else {
			r.index.RemoveServer(name) // hidden ones too, which ServerLen does not count
		}
		if before == 0 {
			return
		}
	}
	r.publish(ctx, "tools.indexed", toolsIndexedData{Total: r.index.Len(), Server: name, ServerTools: r.index.ServerLen(name)})
}

func (r *registry) onStatus(ctx actor.Context, m upstreamStatus) {
	if m.State != StateConnecting {
		r.startDone(ctx, m.Name, m.ChildGen)
	}
	rw, ok := r.rows[m.Name]
	if !ok || rw.childGen != m.ChildGen || rw.pid == nil || rw.st.State == StateStopping {
		return // from an actor that has been replaced or is being stopped
	}
	if m.Restarts != rw.restarts {
		// Sent before the actor took the latest restart: requests overtake reports in the
		// mailbox, so it can arrive after the restart set connecting, and would show the
		// old connection as ready.
		return
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
	toolsChanged, pinned := m.Tools != nil, false
	// A server that is not ready keeps its last list for review; the index drops it below.
	if toolsChanged {
		rw.setTools(m.Tools)
		pinned = r.listed(m.Name, rw)
	}
	m.Tools = nil
	if m.Catalog != nil {
		r.setCatalog(m.Name, rw, m.Catalog)
		m.Catalog = nil
	}
	rw.st = m
	r.changed(ctx, m.Name, ReasonState)
	if !prevAuth.equal(m.Auth) {
		r.changed(ctx, m.Name, ReasonAuth)
	}
	r.maybeSelfLogin(ctx, m.Name, prev, m)
	if toolsChanged || prev != m.State {
		r.reindex(ctx, m.Name)
	}
	if toolsChanged {
		r.retrust(ctx, m.Name, pinned)
	}
	if m.State != StateConnecting {
		r.restartDone(ctx, m.Name, m.State)
	}
}

// finishStops is the registry's message to itself that finishes queued stops; it has the
// priority of the children's reports, below requests.
type finishStops struct{}

// GetPriority puts finishStops below requests, like the reports.
func (finishStops) GetPriority() int8 { return actor.DefaultPriority - 1 }

// stopBatch is how many stops one finishStops finishes before requests get their turn.
const stopBatch = 128

// stopped queues the stop of a child that has terminated. Terminated is a system message,
// which protoactor delivers before any request: a tear-down of 10,000 servers is 10,000 of
// them in a burst, and finishing each at once (the row's removal or respawn, its events)
// kept every request waiting until the last. So the Terminated only queues the pid, and
// finishStops finishes stopBatch of them at a time, with requests in between. Until then
// the row stays stopping, which refuses calls and counts as running for shutdown.
func (r *registry) stopped(ctx actor.Context, who *actor.PID) {
	if who == nil {
		return
	}
	r.stops = append(r.stops, who)
	if len(r.stops) == 1 {
		ctx.Send(ctx.Self(), finishStops{})
	}
}

func (r *registry) finishStops(ctx actor.Context) {
	n := min(len(r.stops), stopBatch)
	for _, who := range r.stops[:n] {
		r.onTerminated(ctx, who)
	}
	clear(r.stops[:n])
	r.stops = r.stops[n:]
	if len(r.stops) > 0 {
		ctx.Send(ctx.Self(), finishStops{})
	} else {
		r.stops = nil
	}
}

// onTerminated finishes a stop: the row of the actor that has gone is found by its pid
// (byChild), not by a walk over all rows, because a tear-down of n servers brings n of
// these.
func (r *registry) onTerminated(ctx actor.Context, who *actor.PID) {
	name, ok := r.byChild[who.Id]
	if !ok {
		return
	}
	delete(r.byChild, who.Id)
	r.running--
	rw := r.rows[name]
	if rw != nil && rw.pid != nil && rw.pid.Equal(who) {
		r.startDone(ctx, name, rw.childGen)
		rw.pid = nil
		rw.st = upstreamStatus{Name: name, State: StateDisabled}
		r.restartDone(ctx, name, StateDisabled)
		switch {
		case rw.remove:
			r.removed(ctx, name, rw)
		case !r.closing && (rw.respawn || rw.cfg.IsEnabled()):
			rw.respawn = false
			r.reindex(ctx, name)
			r.spawn(ctx, name, rw)
			r.changed(ctx, name, ReasonState)
		default:
			r.reindex(ctx, name)
			r.changed(ctx, name, ReasonState)
		}
	}
	r.maybeFinishShutdown(ctx)
}

// stopChild moves a running server to stopping; its actor is stopped by the next
// stopChildren batch, kills its processes, and the Terminated message finishes the
// transition.
//
// The actors are stopped stopBatch at a time, with requests in between: stopping 10,000 at
// once in an apply made 10,000 goroutines runnable in one go, and the registry's own
// goroutine, preempted behind them, took most of a second for that one message.
func (r *registry) stopChild(ctx actor.Context, name string, rw *row) {
	if rw.pid == nil {
		return
	}
	rw.st = upstreamStatus{Name: name, State: StateStopping}
	r.toStop = append(r.toStop, rw.pid)
	if len(r.toStop) == 1 {
		ctx.Send(ctx.Self(), stopChildren{})
	}
}

// stopChildren is the registry's message to itself that stops queued children; it has the
// priority of the children's reports, below requests.
type stopChildren struct{}

// GetPriority puts stopChildren below requests, like the reports.
func (stopChildren) GetPriority() int8 { return actor.DefaultPriority - 1 }

func (r *registry) stopChildren(ctx actor.Context) {
	n := min(len(r.toStop), stopBatch)
	for _, pid := range r.toStop[:n] {
		ctx.Stop(pid)
	}
	clear(r.toStop[:n])
	r.toStop = r.toStop[n:]
	if len(r.toStop) > 0 {
		ctx.Send(ctx.Self(), stopChildren{})
	} else {
		r.toStop = nil
	}
}

// setFlags records a server's flags in both the file config and the running one. set must
// assign new pointers, not write through the old ones: snapshots handed to the saver share
// them.
func (r *registry) setFlags(name string, set func(sc *config.ServerConfig)) {
	i, ok := r.at[name]
	if !ok {
		return
	}
	for _, c := range []*config.Config{r.cfg, r.eff} {
		if i < len(c.Servers) && c.Servers[i].Name == name {
			set(&c.Servers[i])
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
		r.revokePassthrough(ctx, name, Errorf(CodeConflict, "server %q is disabled", name))
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
	r.persistFlags(ctx.Sender(), reply{v: r.view(m.Name, rw)})
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
	if !m.Quarantined {
		r.approveServer(m.Name, rw)
	}
	r.reindex(ctx, m.Name)
	r.retrust(ctx, m.Name, true)
	reason := ReasonUnquarantined
	if m.Quarantined {
		reason = ReasonQuarantined
		r.revokePassthrough(ctx, m.Name, r.passthroughRefusal(m.Name))
		if rw.pid != nil {
			// Its resources are no longer the agents' to follow.
			ctx.Send(rw.pid, clearSubscriptions{})
		}
	}
	r.changed(ctx, m.Name, reason)
	r.persistFlags(ctx.Sender(), reply{v: r.view(m.Name, rw)})
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

// restartChild tells the running actor of rw to restart its connection.
func (r *registry) restartChild(ctx actor.Context, rw *row) {
	rw.restarts++
	ctx.Send(rw.pid, restartUpstream{Seq: rw.restarts})
}

func (r *registry) restartNow(ctx actor.Context, name string, rw *row) {
	if rw.pid == nil {
		r.spawn(ctx, name, rw)
	} else {
		r.restartChild(ctx, rw)
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
	switch m.Op {
	case BulkEnableAll, BulkDisableAll, BulkRestartAll, BulkReconnect:
	default:
		ctx.Respond(reply{err: Errorf(CodeInvalidArgument, "unknown bulk operation %q", m.Op)})
		return
	}
	names, err := r.selectServers(m.Sel)
	if err != nil {
		ctx.Respond(reply{err: err})
		return
	}
	res := BulkResult{Errors: map[string]string{}, Operation: newOperationID()}
	outcomes := make([]OperationServer, 0, len(names))
	// The operation is started before anything changes, so the operations actor sees every
	// state change of its servers (see operations.go).
	for _, name := range names {
		outcomes = append(outcomes, OperationServer{Name: name, Status: r.bulkOutcome(m.Op, r.rows[name])})
	}
	if r.opts.Operations != nil {
		ctx.Send(r.opts.Operations, opStart{ID: res.Operation, Op: m.Op, Servers: outcomes})
	}
	dirty := false
	for i, name := range names {
		rw := r.rows[name]
		res.Total++
		if outcomes[i].Status == OpSkipped {
			res.Skipped++
			continue
		}
		res.Successful++
		switch m.Op {
		case BulkEnableAll, BulkDisableAll:
			r.enable(ctx, name, rw, m.Op == BulkEnableAll)
			dirty = true
		case BulkRestartAll:
			if !r.restarting[name] && !r.queued[name] {
				r.restartQueue = append(r.restartQueue, name)
				r.queued[name] = true
			}
		case BulkReconnect:
			if rw.pid == nil {
				r.spawn(ctx, name, rw)
				r.changed(ctx, name, ReasonState)
			} else {
				ctx.Send(rw.pid, reconnectUpstream{})
			}
		}
	}
	if dirty {
		r.persistFlags(ctx.Sender(), reply{v: res})
		return
	}
	// Answered before any restart begins: the answer never waits on them (registry_restart.go).
	ctx.Respond(reply{v: res})
	r.pumpRestarts(ctx)
}

// bulkOutcome is where a server starts in a bulk operation: skipped when the operation
// does not apply to it (today's rules), ready for a disable (done in this turn), pending
// otherwise. A skipped server's reason is not kept: the rules are the spec's.
func (r *registry) bulkOutcome(op string, rw *row) string {
	enabled := rw.cfg.IsEnabled()
	switch op {
	case BulkEnableAll:
		if enabled {
			return OpSkipped
		}
	case BulkDisableAll:
		if !enabled {
			return OpSkipped
		}
		return OpReady
	case BulkRestartAll:
		if !enabled {
			return OpSkipped
		}
	case BulkReconnect:
		if !enabled || rw.st.State == StateReady || rw.st.State == StateConnecting {
			return OpSkipped
		}
	}
	return OpPending
}

// selectServers is the subset a bulk operation acts on, in name order: every given
// selector narrows it (names, glob, states); none selects all. Unknown names are
// CodeNotFound naming them all; a bad glob or state is CodeInvalidArgument naming the field.
func (r *registry) selectServers(sel Selection) ([]string, error) {
	if sel.Match != "" {
		if _, err := path.Match(sel.Match, ""); err != nil {
			return nil, Errorf(CodeInvalidArgument, "match: %q is not a valid glob", sel.Match)
		}
	}
	for _, st := range sel.State {
		if !slices.Contains(selectableStates, State(st)) {
			return nil, Errorf(CodeInvalidArgument, "state: unknown state %q (one of %v)", st, selectableStates)
		}
	}
	pool := r.names()
	if sel.Servers != nil {
		var unknown []string
		for _, n := range sel.Servers {
			if _, ok := r.rows[n]; !ok {
				unknown = append(unknown, n)
			}
		}
		if len(unknown) > 0 {
			return nil, Errorf(CodeNotFound, "unknown servers: %s", strings.Join(unknown, ", "))
		}
		pool = slices.Clone(sel.Servers)
		slices.Sort(pool)
		pool = slices.Compact(pool)
	}
	out := make([]string, 0, len(pool))
	for _, n := range pool {
		if sel.Match != "" {
			if ok, _ := path.Match(sel.Match, n); !ok {
				continue
			}
		}
		if len(sel.State) > 0 && !slices.Contains(sel.State, string(r.rows[n].st.State)) {
			continue
		}
		out = append(out, n)
	}
	return out, nil
}

func (r *registry) tool(server, raw string) (Tool, bool) {
	rw, ok := r.rows[server]
	if !ok {
		return Tool{}, false
	}
	return rw.toolNamed(raw)
}

// scannedTools is the longest tools list toolNamed scans rather than indexes.
const scannedTools = 16

// setTools replaces the row's tools list (its only writer, so that toolAt stays true).
func (rw *row) setTools(tools []Tool) {
	rw.tools = tools
	rw.toolAt = nil
}

// toolNamed returns the first of the row's tools with the own name raw. A long list is
// looked up in a map of its names, built on first use: a scoped search looks up every one
// of a server's hits, and a session's listing is checked tool by tool against the shared
// one, so a scan each time would cost the square of a length that the upstream chooses.
func (rw *row) toolNamed(raw string) (Tool, bool) {
	if len(rw.tools) <= scannedTools {
		for _, t := range rw.tools {
			if t.Raw == raw {
				return t, true
			}
		}
		return Tool{}, false
	}
	if rw.toolAt == nil {
		rw.toolAt = make(map[string]int, len(rw.tools))
		for i, t := range rw.tools {
			if _, dup := rw.toolAt[t.Raw]; !dup { // the first, as a scan finds
				rw.toolAt[t.Raw] = i
			}
		}
	}
	if i, ok := rw.toolAt[raw]; ok {
		return rw.tools[i], true
	}
	return Tool{}, false
}

func (r *registry) search(ctx actor.Context, m searchTools) {
	limit := m.Limit
	if m.Scope != nil {
		// Ranked over every tool, then cut to the scope: the best limit tools the caller
		// may use, not the allowed ones among the best limit.
		limit = r.index.Len()
	}
	var hits []search.Hit
	if strings.TrimSpace(m.Query) == "" {
		hits = r.index.All(limit)
	} else {
		hits = r.index.Search(m.Query, limit)
	}
	out := make([]ToolHit, 0, min(len(hits), m.Limit))
	for _, h := range hits {
		if len(out) == m.Limit {
			break
		}
		if t, ok := r.tool(h.Server, h.Tool); ok && (m.Scope == nil || m.Scope.AllowsTool(t.Server, t.Raw, t.ReadOnly())) {
			out = append(out, ToolHit{Tool: t, Score: h.Score, Matched: h.Fields.Names()})
		}
	}
	total := r.index.Len()
	if m.Scope != nil {
		total = r.toolsInScope(m.Scope)
	}
	ctx.Respond(reply{v: searchResult{Hits: out, Total: total}})
}

// toolsInScope counts the indexed tools that scope allows.
func (r *registry) toolsInScope(scope Scope) int {
	n := 0
	for name, rw := range r.rows {
		if !scope.AllowsServer(name) || r.index.ServerLen(name) == 0 {
			continue
		}
		for _, t := range rw.tools {
			if scope.AllowsTool(name, t.Raw, t.ReadOnly()) {
				n++
			}
		}
	}
	return n
}

// unreachable says why a server's tools cannot be used now, or returns its row.
func (r *registry) unreachable(name string) (*row, error) {
	rw, ok := r.rows[name]
	switch {
	case !ok:
		return nil, Errorf(CodeNotFound, "server %q not found", name).refused(activity.ReasonUnknownServer)
	case rw.cfg.IsQuarantined():
		return nil, Errorf(CodeConflict, "server %q is quarantined; approve it before calling its tools", name).refused(activity.ReasonQuarantined)
	case !rw.cfg.IsEnabled():
		return nil, Errorf(CodeConflict, "server %q is disabled", name).refused(activity.ReasonDisabled)
	case rw.st.State != StateReady || rw.pid == nil:
		msg := fmt.Sprintf("server %q is not ready (state %s)", name, rw.st.State)
		if rw.st.LastError != "" {
			msg += ": " + rw.st.LastError
		}
		return nil, Errorf(CodeUnavailable, "%s", msg).refused(activity.ReasonNotReady)
	}
	return rw, nil
}

// forwardLogs hands a log request about a known server to the logs actor, which answers
// the caller.
func (r *registry) forwardLogs(ctx actor.Context, name string) {
	if _, err := r.row(name); err != nil {
		ctx.Respond(reply{err: err})
		return
	}
	if r.logs == nil {
		ctx.Respond(reply{err: Errorf(CodeUnavailable, "server logs are unavailable")})
		return
	}
	ctx.Forward(r.logs)
}

func (r *registry) callTool(ctx actor.Context, m callTool) {
	server, tool, ok := strings.Cut(m.Name, ":")
	if !ok || server == "" || tool == "" {
		ctx.Respond(callToolReply{Err: Errorf(CodeInvalidArgument, "tool name %q must be \"server:tool\"", m.Name).refused(activity.ReasonInvalid)})
		return
	}
	if m.Scope != nil {
		// Before anything else, so that a token learns nothing of what lies outside it.
		t, _ := r.tool(server, tool)
		if err := scopeRefusal(m.Scope, server, tool, t.ReadOnly()); err != nil {
			ctx.Respond(callToolReply{Err: err})
			return
		}
	}
	rw, err := r.unreachable(server)
	if err != nil {
		ctx.Respond(callToolReply{Err: err})
		return
	}
	t, ok := r.tool(server, tool)
	if !ok {
		ctx.Respond(callToolReply{Err: Errorf(CodeNotFound, "server %q has no tool %q", server, tool).refused(activity.ReasonUnknownTool)})
		return
	}
	if err := r.toolRefusal(server, rw, t); err != nil {
		ctx.Respond(callToolReply{Err: err})
		return
	}
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = r.eff.Timeout()
	}
	ctx.RequestWithCustomSender(rw.pid, callUpstreamTool{Tool: tool, Args: m.Args, Meta: m.Meta, Timeout: timeout, Progress: m.Progress}, ctx.Sender())
}

func (r *registry) shutdownAll(ctx actor.Context) {
	r.shutdown = ctx.Sender()
	r.closing = true
	r.restartQueue = nil
	clear(r.queued)
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
	if r.shutdown == nil || r.running > 0 {
		return
	}
	ctx.Send(r.shutdown, reply{})
	r.shutdown = nil
}
