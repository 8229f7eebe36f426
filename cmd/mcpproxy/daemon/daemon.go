// Package daemon wires mcpproxy together: config, store, actor system, HTTP server on TCP and
// on the Unix socket, and the config file watcher. cmd/mcpproxy's serve command and the
// end-to-end tests start exactly this wiring (tests on 127.0.0.1:0 with a temp data dir).
//
// # Usage
//
//	d, err := daemon.Start(ctx, daemon.Options{DataDir: dir, Listen: "127.0.0.1:0"})
//	defer d.Shutdown(context.Background())
//
// Shutdown order (ARCHITECTURE.md): stop accepting, cancel the HTTP base context (ends
// /events and /mcp streams), http.Server.Shutdown, end the MCP sessions (waiting for the
// passthrough sessions' processes), stop every upstream (killing process groups, in
// parallel), stop the sessions actor, the registry and the hub, close the store, shut the
// actor system down.
package daemon

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/activity"
	"github.com/mcpproxy/mcpproxy/actors/metrics"
	"github.com/mcpproxy/mcpproxy/actors/passthrough"
	"github.com/mcpproxy/mcpproxy/actors/store"
	"github.com/mcpproxy/mcpproxy/actors/upstream"
	"github.com/mcpproxy/mcpproxy/config"
	mhttp "github.com/mcpproxy/mcpproxy/http"
	"github.com/mcpproxy/mcpproxy/http/mcpserver"
)

// Options configure Start. The zero value starts with the defaults of API.md.
type Options struct {
	// ConfigPath default <DataDir>/mcp_config.json.
	ConfigPath string
	// DataDir default: the config's data_dir, else ~/.mcpproxy.
	DataDir string
	// Listen overrides the config's listen (and MCPPROXY_LISTEN).
	Listen string
	// Logger default discards.
	Logger *slog.Logger
	// Out receives the one-time message with a generated API key. Default os.Stdout.
	Out io.Writer
	// Version is reported by the API and sent to upstreams as the client version; default
	// "dev" (Start fills it in once for everything it wires).
	Version string
	// BackoffBase overrides the first reconnect delay of upstreams (tests).
	BackoffBase time.Duration
	// HealthEvery overrides how often remote upstreams are pinged (default 30 s; tests).
	HealthEvery time.Duration
	// HeaderTimeout and ReadTimeout bound reading a request's headers and the whole
	// request (defaults mhttp.DefaultHeaderTimeout, 10 s, and mhttp.DefaultReadTimeout,
	// 30 s).
	HeaderTimeout, ReadTimeout time.Duration
	// EventsKeepAlive and MCPHeartbeat override the interval of /events keepalives and of
	// pings on MCP GET streams (defaults 10 s and 30 s; tests).
	EventsKeepAlive, MCPHeartbeat time.Duration
}

// Daemon is one running mcpproxy.
type Daemon struct {
	opts       Options
	Logger     *slog.Logger
	Config     *config.Config // as loaded at start (the registry owns the live one)
	ConfigPath string
	DataDir    string
	SocketPath string
	Started    time.Time

	Store    *store.Store
	System   *actor.ActorSystem
	Registry *actor.PID
	Hub      *actor.PID
	Client   *actors.Client
	// Sessions is the sessions actor's client: the MCP session table and the passthrough
	// sessions.
	Sessions *actors.SessionsClient
	// Activity is the activity log's client (actors/activity): every tool call agents make.
	Activity *activity.Client
	// Metrics is the daemon's Prometheus registry, served at /metrics.
	Metrics *metrics.Metrics
	// Tokens is the tokens actor's client: the agent tokens.
	Tokens *actors.TokensClient
	HTTP   *mhttp.Server

	// Watcher follows the config file; ConfigErrors holds the errors of the last invalid
	// edit (nil when the file is valid), for the doctor.
	watcher      atomic.Pointer[config.Watcher]
	ConfigErrors atomic.Pointer[[]config.FieldError]

	generatedKey bool
	fileConfig   *config.Config // as in the file, for the registry to own and save
	loaded       []byte         // the file's bytes when it was loaded
	// stoppers run after the HTTP servers stopped and before the upstreams stop (MCP
	// sessions, event streams).
	stoppers []func(context.Context)

	// ops answers info, diagnostics, doctor and Docker status, and owns the Docker adapter
	// that runs isolated servers (doctor_ops.go).
	ops *ops

	listener net.Listener
	unixLn   net.Listener
	srv      *http.Server
	unixSrv  *http.Server
	cancel   context.CancelFunc
	ready    atomic.Bool
	stopOnce sync.Once
	stopErr  error
	served   sync.WaitGroup
}

// Addr is the TCP address the daemon listens on.
func (d *Daemon) Addr() string { return d.listener.Addr().String() }

// URL is the base URL of the TCP listener.
func (d *Daemon) URL() string { return "http://" + d.Addr() }

// APIKey is the key clients must present.
func (d *Daemon) APIKey() string { return d.Config.APIKey }

// Start makes the data dir private (or refuses it, datadir.go), loads (or creates) the
// config, opens the store, starts the actors and both listeners, and returns once requests
// are served. Upstreams connect in the background. An invalid config returns a
// *config.ValidationError and changes nothing on disk (but the data dir's modes).
func Start(ctx context.Context, opts Options) (*Daemon, error) {
	if opts.Version == "" {
		opts.Version = "dev"
	}
	d := &Daemon{opts: opts, Started: time.Now()}
	d.Logger = opts.Logger
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Out == nil {
		opts.Out = os.Stdout
		d.opts.Out = os.Stdout
	}
	if err := d.loadConfig(); err != nil {
		return nil, err
	}
	st, err := store.Open(filepath.Join(d.DataDir, "db"), store.Options{Logger: d.Logger})
	if err != nil {
		return nil, fmt.Errorf("open store: %w", err)
	}
	d.Store = st
	if err := st.OpenSecrets(filepath.Join(d.DataDir, "secrets.key")); err != nil {
		st.Close()
		return nil, fmt.Errorf("open secrets: %w", err)
	}
	if err := d.replayPendingConfig(); err != nil {
		st.Close()
		return nil, err
	}
	if err := d.listen(); err != nil {
		st.Close()
		return nil, err
	}
	d.startActors()
	d.startHTTP()
	if err := d.watch(); err != nil {
		d.Logger.Warn("config file not watched", "err", err)
	} else if data, err := os.ReadFile(d.ConfigPath); err == nil && !bytes.Equal(data, d.loaded) {
		// Edited between loading and watching: the watcher took the edit as its baseline.
		d.onConfigFile(data)
	}
	d.ready.Store(true)
	return d, nil
}

// replayPendingConfig finishes the config write a crash cut short: one that was answered
// (durable in the store as a config.Pending) before the file was written. It runs once the
// store is open, which is after the config was first loaded (the config may name the data
// dir), so a replayed file is loaded again; the data dir stays the one already chosen. A
// file edited while the daemon was down wins: the pending write is dropped and logged.
func (d *Daemon) replayPendingConfig() error {
	raw, err := d.Store.ConfigPending()
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		// A record that does not open (another secrets key) cannot be replayed; the file
		// stands as it is.
		d.Logger.Warn("pending config write unreadable, dropped", "err", err)
		return d.Store.ClearConfigPending()
	}
	p, err := config.DecodePending(raw)
	if err != nil {
		d.Logger.Warn("pending config write undecodable, dropped", "err", err)
		return d.Store.ClearConfigPending()
	}
	outcome, err := config.Replay(d.ConfigPath, p)
	if err != nil {
		return err
	}
	switch outcome {
	case config.ReplayWritten:
		d.Logger.Warn("config: finished a write that the last run answered but did not write to the file", "path", d.ConfigPath)
		d.opts.DataDir = d.DataDir // chosen already: the store is open there
		if err := d.loadConfig(); err != nil {
			return err
		}
	case config.ReplaySuperseded:
		d.Logger.Warn("config: the file was edited while the daemon was down; the last run's unwritten change is dropped", "path", d.ConfigPath)
	}
	return d.Store.ClearConfigPending()
}

func defaultDataDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ".mcpproxy"
	}
	return filepath.Join(home, ".mcpproxy")
}

func (d *Daemon) loadConfig() error {
	d.DataDir = d.opts.DataDir
	d.ConfigPath = d.opts.ConfigPath
	if d.DataDir == "" && d.ConfigPath != "" {
		// The config may name the data dir; read it before deciding.
		if cfg, err := config.Load(d.ConfigPath); err == nil && cfg.DataDir != "" {
			d.DataDir = cfg.DataDir
		}
	}
	if d.DataDir == "" {
		d.DataDir = defaultDataDir()
	}
	if err := os.MkdirAll(d.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	// An existing dir keeps its mode through MkdirAll.
	if err := privateDataDir(d.DataDir, d.Logger); err != nil {
		return err
	}
	if d.ConfigPath == "" {
		d.ConfigPath = filepath.Join(d.DataDir, config.FileName)
	}
	config.RemoveStaleTemps(d.ConfigPath)
	fileCfg, _, err := config.LoadOrCreate(d.ConfigPath)
	if err != nil {
		return err
	}
	cfg := fileCfg.Clone()
	cfg.Normalize()
	switch {
	case d.opts.Listen != "":
		cfg.Listen = d.opts.Listen
	case os.Getenv("MCPPROXY_LISTEN") != "":
		cfg.Listen = os.Getenv("MCPPROXY_LISTEN")
	}
	if cfg.APIKey == "" {
		cfg.APIKey = os.Getenv("MCPPROXY_API_KEY")
	}
	generated := false
	if cfg.APIKey == "" {
		cfg.APIKey = newKey()
		generated = true
		// Save the key into the file; only the key is added, the listen override is not.
		fileCfg.APIKey = cfg.APIKey
		if _, err := config.Save(d.ConfigPath, fileCfg); err != nil {
			return fmt.Errorf("save generated API key: %w", err)
		}
	}
	d.Config = cfg
	d.fileConfig = fileCfg
	d.loaded, _ = os.ReadFile(d.ConfigPath)
	d.SocketPath = filepath.Join(d.DataDir, "mcpproxy.sock")
	d.generatedKey = generated
	return nil
}

func newKey() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b)
}

func (d *Daemon) listen() error {
	ln, err := net.Listen("tcp", d.Config.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", d.Config.Listen, err)
	}
	d.listener = ln
	// A socket file left by a daemon that died is stale: pebble's lock already proved that
	// no other daemon uses this data dir.
	_ = os.Remove(d.SocketPath)
	uln, err := net.Listen("unix", d.SocketPath)
	if err != nil {
		ln.Close()
		return fmt.Errorf("listen on %s: %w", d.SocketPath, err)
	}
	if err := os.Chmod(d.SocketPath, 0o600); err != nil {
		ln.Close()
		uln.Close()
		return fmt.Errorf("chmod socket: %w", err)
	}
	d.unixLn = uln
	if d.generatedKey {
		fmt.Fprintf(d.opts.Out, "mcpproxy: generated an API key and saved it in %s\nDashboard: http://%s/?apikey=%s\n",
			d.ConfigPath, displayAddr(ln.Addr().String()), d.Config.APIKey)
	}
	return nil
}

func displayAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err == nil && (host == "" || host == "0.0.0.0" || host == "::") {
		return net.JoinHostPort("127.0.0.1", port)
	}
	return addr
}

func (d *Daemon) startActors() {
	pl := d.Logger.With("lib", "protoactor")
	d.System = actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return pl.WithGroup("actor")
	}))
	d.Hub = d.System.Root.Spawn(actors.NewHubProps(actors.HubOptions{Store: d.Store, Logger: d.Logger, KeepAlive: d.opts.EventsKeepAlive}))
	d.ops = newOps(d)
	d.startMetrics()
	d.startActivity()
	// The MCP session table and the passthrough sessions; MCPPROXY_MCP_SESSION_IDLE_TTL (a
	// Go duration) overrides how long an idle session lives. The registry is asked for
	// passthrough targets once it runs (d.Client is set below, before anything is served).
	idle, _ := time.ParseDuration(os.Getenv("MCPPROXY_MCP_SESSION_IDLE_TTL"))
	sessions, err := actors.SpawnSessions(d.System, actors.SessionsOptions{Store: d.Store, Logger: d.Logger, IdleTTL: idle,
		Activity: d.Activity.Record,
		Target: func(ctx context.Context, name string) (actors.PassthroughTarget, error) {
			return d.Client.PassthroughTarget(ctx, name)
		},
		Unapproved: func(u passthrough.Unapproved) { d.Client.ReportSessionTools(u) }})
	if err != nil {
		panic(err) // a fresh actor system has no sessions actor yet
	}
	d.Sessions = sessions
	// The agent tokens; a revoked or expired one has the sessions actor close its sessions.
	tokens, err := actors.SpawnTokens(d.System, actors.TokensOptions{Store: d.Store, Sessions: sessions.PID(), Logger: d.Logger})
	if err != nil {
		panic(err) // a fresh actor system has no tokens actor yet
	}
	d.Tokens = tokens
	// The progress of bulk operations, which the registry keeps informed.
	ops, err := actors.SpawnOperations(d.System, actors.OperationsOptions{Hub: d.Hub, Logger: d.Logger})
	if err != nil {
		panic(err) // a fresh actor system has no operations actor yet
	}
	reg, err := d.System.Root.SpawnNamed(actors.NewRegistryProps(actors.RegistryOptions{
		Config: d.fileConfig, ConfigPath: d.ConfigPath, Hub: d.Hub, Sessions: sessions.PID(), Logger: d.Logger,
		Operations: ops.PID(),
		Observer:   d.Metrics,
		Secret: func(name string) (string, bool) {
			v, err := d.Store.SecretValue(name)
			return v, err == nil
		},
		BeforeSave: func(data []byte) {
			if w := d.watcher.Load(); w != nil {
				w.Expect(data)
			}
		},
		AfterSave: func(data []byte) {
			if w := d.watcher.Load(); w != nil {
				w.Wrote(data)
			}
			// The file now holds what the proxy wrote: an invalid edit it had is gone.
			d.ConfigErrors.Store(nil)
		},
		OnApplied: func(c *config.Config, source string) {
			if source == config.SourceFile {
				// The file's edit is running; cleared here, before the apply's events go
				// out, so that no one told of the reload still finds the doctor reporting
				// the edit before it.
				d.ConfigErrors.Store(nil)
			}
			if d.HTTP != nil {
				if c.APIKey == "" {
					c.APIKey = d.Config.APIKey // the key came from MCPPROXY_API_KEY
				}
				d.HTTP.SetSettings(mhttp.SettingsFrom(c))
			}
			d.Activity.Configure(c.Activity)
		},
		Dial: upstream.Options{Logger: d.Logger, ClientName: "mcpproxy", ClientVersion: d.opts.Version,
			CommandWrapper: d.ops.docker.Wrap, AfterClose: d.ops.docker.AfterStop},
		BackoffBase: d.opts.BackoffBase, HealthEvery: d.opts.HealthEvery,
		OAuth: d.Store, Pins: d.Store, Pending: d.Store, OAuthRedirectURI: "http://" + displayAddr(d.Addr()) + "/oauth/callback",
	}), "registry")
	if err != nil {
		panic(err) // a fresh actor system has no registry yet
	}
	d.Registry = reg
	d.Client = actors.NewClient(d.System, reg)
}

func (d *Daemon) startHTTP() {
	host, _, _ := net.SplitHostPort(d.Addr())
	ip := net.ParseIP(host)
	// The MCP endpoints for agents; their sessions are the sessions actor's.
	mcpEP := mcpserver.New(mcpserver.Options{Backend: d.Client, Sessions: d.Sessions, Logger: d.Logger,
		Version: d.opts.Version, Heartbeat: d.opts.MCPHeartbeat, Activity: d.Activity,
		Events: actors.NewHubClient(d.System, d.Hub)})
	d.stoppers = append(d.stoppers, mcpEP.Close)
	d.HTTP = mhttp.New(mhttp.Options{
		Backend: d.Client, Settings: mhttp.SettingsFrom(d.Config), Version: d.opts.Version,
		ConfigPath: d.ConfigPath, Logger: d.Logger, Ready: d.ready.Load,
		Loopback: ip != nil && ip.IsLoopback() || host == "localhost", Started: d.Started,
		// /events: cancelling the base context ends every stream before Shutdown (the
		// streams taken off net/http see it through ConnContext), and the hub drops
		// stalled subscribers itself; the stopper below waits for the ended streams.
		Events:        actors.NewHubClient(d.System, d.Hub),
		Ops:           d.ops,
		Secrets:       actors.NewSecrets(d.Store, d.Client, d.Logger),
		Sessions:      d.Sessions,
		MCP:           mcpEP,
		OAuth:         d.Client,
		Activity:      d.Activity,
		Metrics:       d.Metrics,
		Tokens:        d.Tokens,
		HeaderTimeout: d.opts.HeaderTimeout, ReadTimeout: d.opts.ReadTimeout,
	})
	d.stoppers = append(d.stoppers, d.HTTP.WaitEvents)
	base, cancel := context.WithCancel(context.Background())
	d.cancel = cancel
	header, read := d.HTTP.Bounds()
	mk := func() *http.Server {
		return &http.Server{
			Handler: d.HTTP.Handler(),
			// ReadTimeout bounds the request, not the response: net/http lifts it once the
			// body is read, so /events and MCP streams stay open (http/bodies.go).
			ReadHeaderTimeout: header,
			ReadTimeout:       read,
			IdleTimeout:       2 * time.Minute,
			BaseContext:       func(net.Listener) context.Context { return base },
			ConnContext:       mhttp.ConnContext,
			ErrorLog:          slog.NewLogLogger(d.Logger.Handler(), slog.LevelDebug),
		}
	}
	d.srv, d.unixSrv = mk(), mk()
	for _, p := range []struct {
		s  *http.Server
		ln net.Listener
	}{{d.srv, d.listener}, {d.unixSrv, d.unixLn}} {
		d.served.Add(1)
		go func() {
			defer d.served.Done()
			if err := p.s.Serve(p.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				d.Logger.Error("http server stopped", "err", err)
			}
		}()
	}
}

// watch follows the config file: a valid edit is applied as a diff (source "file"), an
// invalid one keeps the running config and is remembered for the doctor.
func (d *Daemon) watch() error {
	w, err := config.NewWatcher(d.ConfigPath, d.onConfigFile, d.Logger)
	if err != nil {
		return err
	}
	d.watcher.Store(w)
	return nil
}

func (d *Daemon) onConfigFile(data []byte) {
	// Parse finds syntax and type errors; the registry's apply runs the rest of the checks
	// (config.Check) and answers their field errors.
	cfg, errs := config.Parse(data)
	if len(errs) > 0 {
		d.ConfigErrors.Store(&errs)
		d.Logger.Error("config file edit is invalid; keeping the running config", "path", d.ConfigPath,
			"errors", (&config.ValidationError{Errors: errs}).Error())
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := d.Client.Apply(ctx, cfg, config.SourceFile); err != nil {
		var ae *actors.Error
		if errors.As(err, &ae) && len(ae.Fields) > 0 {
			fields := ae.Fields
			d.ConfigErrors.Store(&fields)
		}
		d.Logger.Error("applying config file edit failed; keeping the running config", "err", err)
		return
	}
	d.ConfigErrors.Store(nil)
}

// Shutdown stops everything in order, bounded by ctx (give it about 10 s). It is safe to
// call more than once.
func (d *Daemon) Shutdown(ctx context.Context) error {
	d.stopOnce.Do(func() { d.stopErr = d.shutdown(ctx) })
	return d.stopErr
}

func (d *Daemon) shutdown(ctx context.Context) error {
	defer func() {
		if p := recover(); p != nil {
			d.Logger.Error("shutdown panic", "panic", p, "stack", string(debug.Stack()))
		}
	}()
	d.ready.Store(false)
	var errs []error
	if w := d.watcher.Load(); w != nil {
		errs = append(errs, w.Close())
	}
	d.cancel()
	errs = append(errs, d.srv.Shutdown(ctx), d.unixSrv.Shutdown(ctx))
	d.served.Wait()
	for _, stop := range d.stoppers {
		stop(ctx)
	}
	if err := d.Client.Shutdown(ctx); err != nil {
		errs = append(errs, fmt.Errorf("stopping upstreams: %w", err))
	}
	// The sessions actor goes first: its last records are written before the store closes,
	// and the registry no longer has sessions to revoke. Then the activity log, which has
	// the last calls' records (the passthrough sessions' among them) to write. The tokens
	// actor writes the last uses it has coalesced as it stops.
	for _, pid := range []*actor.PID{d.Sessions.PID(), d.Activity.PID(), d.Tokens.PID(), d.Registry, d.Hub} {
		if pid == nil {
			continue // the activity log is off (MCPPROXY_ACTIVITY=off)
		}
		// PoisonFuture's own timeout is 10 s; ctx is the bound that counts.
		done := make(chan struct{})
		f := d.System.Root.PoisonFuture(pid)
		go func() { _ = f.Wait(); close(done) }()
		select {
		case <-done:
		case <-ctx.Done():
			errs = append(errs, fmt.Errorf("stopping %s: %w", pid.Id, ctx.Err()))
		}
	}
	errs = append(errs, d.Store.Close())
	d.System.Shutdown()
	_ = os.Remove(d.SocketPath)
	return errors.Join(errs...)
}
