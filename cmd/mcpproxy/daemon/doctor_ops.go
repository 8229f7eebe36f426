package daemon

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/doctor"
	"github.com/mcpproxy/mcpproxy/actors/upstream"
	"github.com/mcpproxy/mcpproxy/config"
	mhttp "github.com/mcpproxy/mcpproxy/http"
)

// ops answers the operations routes (info, diagnostics, doctor, Docker status) by gathering
// what the daemon knows about itself (addresses, paths, the last invalid config edit) and
// asking the packages that own the rest: the registry (actors.Client), the hub, the store,
// package doctor and the Docker adapter it owns, which runs isolated servers.
type ops struct {
	d      *Daemon
	docker *upstream.Docker
}

var _ mhttp.OpsBackend = (*ops)(nil)

func newOps(d *Daemon) *ops {
	o := &ops{d: d, docker: &upstream.Docker{Logger: d.Logger}}
	// A Docker probe that a request started may still run; shutdown waits for it.
	d.stoppers = append(d.stoppers, o.docker.Wait)
	return o
}

// Info answers GET /api/v1/info.
func (o *ops) Info(context.Context) (mhttp.Info, error) {
	d := o.d
	base := "http://" + displayAddr(d.Addr())
	return mhttp.Info{
		Version: d.opts.Version, Commit: commit(), GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH,
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
func (o *ops) Diagnostics(ctx context.Context) (actors.Diagnostics, error) {
	d := o.d
	return d.Client.Diagnostics(ctx, actors.NewHubClient(d.System, d.Hub), d.Store, d.Started)
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
		IsolatedServers: cfg.IsolatedServers(),
	}
	return out, nil
}
