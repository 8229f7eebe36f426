package daemon

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/doctor"
	"github.com/mcpproxy/mcpproxy/actors/store"
	"github.com/mcpproxy/mcpproxy/actors/upstream"
	"github.com/mcpproxy/mcpproxy/config"
	mhttp "github.com/mcpproxy/mcpproxy/http"
)

// ops implements the HTTP operations and secrets backends (info, diagnostics, doctor,
// Docker status, secrets) over the daemon's store, registry and hub, and owns the Docker
// adapter that runs isolated servers.
type ops struct {
	d      *Daemon
	docker *upstream.Docker
	// isolation is the running config's docker_isolation, swapped after every apply, so that
	// the command wrapper (on connect goroutines) reads it without asking the registry.
	isolation atomic.Pointer[config.DockerIsolation]
}

var (
	_ mhttp.OpsBackend     = (*ops)(nil)
	_ mhttp.SecretsBackend = (*ops)(nil)
)

func newOps(d *Daemon) *ops {
	o := &ops{d: d}
	iso := d.Config.DockerIsolation
	o.isolation.Store(&iso)
	o.docker = &upstream.Docker{
		Logger: d.Logger,
		Isolation: func(sc config.ServerConfig) *config.Isolation {
			return (&config.Config{DockerIsolation: *o.isolation.Load()}).IsolationFor(sc)
		},
	}
	// A Docker probe that a request started may still run; shutdown waits for it.
	d.stoppers = append(d.stoppers, o.docker.Wait)
	return o
}

// configApplied picks up settings of an applied (normalised) config.
func (o *ops) configApplied(c *config.Config) {
	iso := c.DockerIsolation
	o.isolation.Store(&iso)
}

// Info answers GET /api/v1/info.
func (o *ops) Info(context.Context) (mhttp.Info, error) {
	d := o.d
	version := d.opts.Version
	if version == "" {
		version = "dev"
	}
	base := "http://" + displayAddr(d.Addr())
	return mhttp.Info{
		Version: version, Commit: commit(), GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH,
		PID: os.Getpid(), StartedAt: d.Started.UTC(), Listen: d.Addr(), DataDir: d.DataDir,
		ConfigPath: d.ConfigPath, SocketPath: d.SocketPath,
		Endpoints: map[string]string{
			"api": base + "/api/v1", "mcp": base + "/mcp", "events": base + "/events",
			"swagger": base + "/swagger/", "dashboard": base + "/", "socket": "unix://" + d.SocketPath,
		},
	}, nil
}

// commit is the VCS revision the binary was built from ("-dirty" when the tree had changes),
// empty when the build did not record one.
func commit() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev == "" {
		return ""
	}
	return rev + dirty
}

// Diagnostics answers GET /api/v1/diagnostics.
func (o *ops) Diagnostics(ctx context.Context) (mhttp.Diagnostics, error) {
	d := o.d
	servers, err := d.Client.Servers(ctx)
	if err != nil {
		return mhttp.Diagnostics{}, err
	}
	events, err := actors.NewHubClient(d.System, d.Hub).Stats(ctx)
	if err != nil {
		return mhttp.Diagnostics{}, err
	}
	out := mhttp.Diagnostics{
		ServersInError: []mhttp.ServerInError{},
		Goroutines:     runtime.NumGoroutine(),
		Events:         events,
		Store:          mhttp.StoreStats{DiskSize: d.Store.DiskSize()},
		Uptime:         int64(time.Since(d.Started).Seconds()),
	}
	for _, s := range servers {
		if s.State != actors.StateDisabled {
			out.Actors.Upstreams++
		}
		if s.State == actors.StateError || s.State == actors.StateBackoff {
			out.ServersInError = append(out.ServersInError, mhttp.ServerInError{
				Name: s.Name, State: s.State, LastError: s.LastError, RetryCount: s.RetryCount, Since: s.ErrorSince,
			})
		}
	}
	for _, bucket := range d.System.ProcessRegistry.LocalPIDs.LocalPIDs {
		out.Actors.Total += bucket.Count()
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	out.Memory = mhttp.Memory{
		HeapAlloc: ms.HeapAlloc, HeapInuse: ms.HeapInuse, HeapSys: ms.HeapSys, Sys: ms.Sys,
		NumGC: ms.NumGC, RSS: rss(),
	}
	return out, nil
}

// rss reads the resident set size from /proc/self/status (VmRSS, in kB); 0 when unknown.
func rss() uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) >= 1 {
				if kb, err := strconv.ParseUint(f[0], 10, 64); err == nil {
					return kb * 1024
				}
			}
		}
	}
	return 0
}

// Doctor answers GET /api/v1/doctor: the checks of package doctor with the daemon's live
// view (running config, last invalid edit, store, environment, server states).
func (o *ops) Doctor(ctx context.Context) (doctor.Report, error) {
	d := o.d
	cfg, err := d.Client.Config(ctx)
	if err != nil {
		return doctor.Report{}, err
	}
	servers, err := d.Client.Servers(ctx)
	if err != nil {
		return doctor.Report{}, err
	}
	var editErrs []config.FieldError
	if p := d.ConfigErrors.Load(); p != nil {
		editErrs = *p
	}
	return doctor.Run(ctx, doctor.Input{
		DaemonRunning: true,
		ConfigPath:    d.ConfigPath, Config: cfg, ConfigErrors: editErrs,
		DataDir: d.DataDir, SocketPath: d.SocketPath, SecretsKeyPath: filepath.Join(d.DataDir, "secrets.key"),
		Secret: func(name string) error {
			_, err := d.Store.SecretValue(name)
			return err
		},
		LookupEnv: os.LookupEnv,
		Servers:   servers,
		Docker:    o.docker.Status,
	}), nil
}

// DockerStatus answers GET /api/v1/docker/status.
func (o *ops) DockerStatus(ctx context.Context) (mhttp.DockerStatus, error) {
	cfg, err := o.d.Client.Config(ctx)
	if err != nil {
		return mhttp.DockerStatus{}, err
	}
	cfg.Normalize()
	out := mhttp.DockerStatus{
		DockerStatus: o.docker.Status(ctx),
		Isolation: mhttp.DockerIsolation{
			Enabled: cfg.DockerIsolation.Enabled, DefaultImage: cfg.DockerIsolation.DefaultImage,
		},
		IsolatedServers: []string{},
	}
	for _, sc := range cfg.Servers {
		if cfg.IsolationFor(sc) != nil {
			out.IsolatedServers = append(out.IsolatedServers, sc.Name)
		}
	}
	slices.Sort(out.IsolatedServers)
	return out, nil
}

// secretError turns a store error into an API error: NOT_FOUND for a missing secret; other
// failures stay internal (logged, shown as "internal error").
func secretError(name string, err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return actors.Errorf(actors.CodeNotFound, "secret %q not found", name)
	}
	return fmt.Errorf("secret %q: %w", name, err)
}

// users maps each secret name to the servers whose config references it.
func (o *ops) users(ctx context.Context) (map[string][]string, *config.Config, error) {
	cfg, err := o.d.Client.Config(ctx)
	if err != nil {
		return nil, nil, err
	}
	m := map[string][]string{}
	for _, sc := range cfg.Servers {
		secrets, _ := sc.References()
		for _, s := range secrets {
			m[s] = append(m[s], sc.Name)
		}
	}
	for _, names := range m {
		slices.Sort(names)
	}
	return m, cfg, nil
}

func toSecret(m store.SecretMeta, usedBy []string) mhttp.Secret {
	if usedBy == nil {
		usedBy = []string{}
	}
	return mhttp.Secret{Name: m.Name, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt, UsedBy: usedBy}
}

// Secrets answers GET /api/v1/secrets.
func (o *ops) Secrets(ctx context.Context) ([]mhttp.Secret, error) {
	users, _, err := o.users(ctx)
	if err != nil {
		return nil, err
	}
	list, err := o.d.Store.ListSecrets()
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	out := make([]mhttp.Secret, 0, len(list))
	for _, m := range list {
		out = append(out, toSecret(m, users[m.Name]))
	}
	return out, nil
}

// Secret answers GET /api/v1/secrets/{name}.
func (o *ops) Secret(ctx context.Context, name string) (mhttp.Secret, error) {
	users, _, err := o.users(ctx)
	if err != nil {
		return mhttp.Secret{}, err
	}
	m, err := o.d.Store.Secret(name)
	if err != nil {
		return mhttp.Secret{}, secretError(name, err)
	}
	return toSecret(m, users[name]), nil
}

// SetSecret answers PUT /api/v1/secrets/{name}.
func (o *ops) SetSecret(ctx context.Context, name, value string) (mhttp.Secret, bool, []string, error) {
	_, err := o.d.Store.Secret(name)
	created := errors.Is(err, store.ErrNotFound)
	m, err := o.d.Store.SetSecret(name, value)
	if err != nil {
		return mhttp.Secret{}, false, nil, secretError(name, err)
	}
	o.d.Logger.Info("secret stored", "secret", name, "created", created)
	restarted, usedBy, err := o.restartUsers(ctx, name)
	if err != nil {
		return mhttp.Secret{}, false, nil, err
	}
	return toSecret(m, usedBy), created, restarted, nil
}

// DeleteSecret answers DELETE /api/v1/secrets/{name}.
func (o *ops) DeleteSecret(ctx context.Context, name string) ([]string, error) {
	if err := o.d.Store.DeleteSecret(name); err != nil {
		return nil, secretError(name, err)
	}
	o.d.Logger.Info("secret deleted", "secret", name)
	restarted, _, err := o.restartUsers(ctx, name)
	return restarted, err
}

// restartUsers restarts the enabled servers that reference the secret, so they pick up its
// new value (or, deleted, report it missing). Disabled servers read it when enabled.
func (o *ops) restartUsers(ctx context.Context, name string) (restarted, usedBy []string, err error) {
	users, cfg, err := o.users(ctx)
	if err != nil {
		return nil, nil, err
	}
	usedBy = users[name]
	restarted = []string{}
	for _, server := range usedBy {
		sc, ok := cfg.Server(server)
		if !ok || !sc.IsEnabled() {
			continue
		}
		if _, err := o.d.Client.Restart(ctx, server); err != nil {
			if actors.ErrorCode(err) == actors.CodeConflict || actors.ErrorCode(err) == actors.CodeNotFound {
				continue // disabled or removed meanwhile
			}
			return nil, nil, err
		}
		restarted = append(restarted, server)
	}
	if len(restarted) > 0 {
		o.d.Logger.Info("restarted servers after a secret change", "secret", name, "servers", restarted)
	}
	return restarted, usedBy, nil
}
