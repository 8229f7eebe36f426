package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mcpproxy/mcpproxy/config"
)

// ContainerPrefix starts the name of every container mcpproxy runs; the rest is the server
// name, so a server always maps to the same container and a stale one can be removed by name.
const ContainerPrefix = "mcpproxy-"

// ContainerName is the stable container name of an isolated server.
func ContainerName(server string) string { return ContainerPrefix + server }

// dockerClientEnv are the daemon's variables the docker client needs to find its engine. They
// configure the client, not the container: nothing reaches the container unless the server's
// env names it.
var dockerClientEnv = []string{"DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG", "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY", "DOCKER_API_VERSION"}

// RunArgs returns the arguments after "docker" that run a stdio server in a container:
//
//	run -i --rm --init --name mcpproxy-<server> --label mcpproxy.server=<server>
//	    --network none -e KEY ... <image> <command> <args...>
//
// Environment variables are passed by name only (-e KEY), so their values travel in the docker
// client's environment and never show on a command line (ps). The network is "none" unless the
// server's isolation names one. The server's working_dir is not mounted: a container sees only
// its image.
func RunArgs(cfg config.ServerConfig, iso config.Isolation) []string {
	network := iso.Network
	if network == "" {
		network = "none"
	}
	args := []string{
		"run", "-i", "--rm", "--init",
		"--name", ContainerName(cfg.Name),
		"--label", "mcpproxy.server=" + cfg.Name,
		"--network", network,
	}
	for _, k := range slices.Sorted(maps.Keys(cfg.Env)) {
		args = append(args, "-e", k)
	}
	args = append(args, iso.Image, cfg.Command)
	return append(args, cfg.Args...)
}

// DockerStatus says whether a Docker engine answers.
type DockerStatus struct {
	Available bool `json:"available"`
	// Version is the engine's version, empty when no engine answered.
	Version string `json:"version"`
	// ClientVersion is the docker client's version, when the client runs.
	ClientVersion string `json:"client_version,omitempty"`
	// Error says why Docker is not available; empty when it is.
	Error string `json:"error"`
	// CheckedAt is when the probe ran (results are cached briefly).
	CheckedAt time.Time `json:"checked_at"`
}

// Docker runs isolated stdio servers with the docker client and probes the engine.
//
// # Usage
//
//	dk := &upstream.Docker{Logger: logger}
//	dialOpts.CommandWrapper = dk.Wrap
//	st := dk.Status(ctx)
//
// # Concurrency
//
// All methods may be called from many goroutines. Status runs at most one probe at a time
// and shares its result with concurrent callers.
type Docker struct {
	// Path is the docker client; default "docker" found on the daemon's PATH.
	Path string
	// Logger default discards.
	Logger *slog.Logger
	// ProbeTimeout bounds `docker version`. Default 3 s.
	ProbeTimeout time.Duration
	// CacheFor is how long a probe result is reused. Default 10 s.
	CacheFor time.Duration
	// RemoveTimeout bounds `docker rm -f`. Default 10 s.
	RemoveTimeout time.Duration

	mu       sync.Mutex
	cached   *DockerStatus
	inflight chan struct{}
}

func (d *Docker) logger() *slog.Logger {
	if d.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return d.Logger
}

func durationOr(v, def time.Duration) time.Duration {
	if v > 0 {
		return v
	}
	return def
}

// client resolves the docker client against the daemon's PATH, so that a server's own PATH
// (meant for the container) cannot hide it, by the same rule as a stdio command (LookPath).
// When it is missing, "docker" is returned and the
// start fails with "command "docker" not found in PATH".
func (d *Docker) client() string {
	name := d.Path
	if name == "" {
		name = "docker"
	}
	if p, err := LookPath(name, "", os.Getenv("PATH")); err == nil {
		return p
	}
	return name
}

// IsolationFor returns how cfg runs in Docker, nil when it runs on the host. It reads only
// cfg.Isolation, which the registry fixes when it starts a server (config.Config.Prepared), so
// the wrapper needs no copy of the global docker_isolation setting.
func (d *Docker) IsolationFor(cfg config.ServerConfig) *config.Isolation {
	if d == nil || cfg.EffectiveProtocol() != config.ProtocolStdio || cfg.Isolation == nil || !cfg.Isolation.Enabled {
		return nil
	}
	return cfg.Isolation
}

// Wrap is an Options.CommandWrapper: an isolated stdio server becomes `docker run ...` (see
// RunArgs); others are returned unchanged. A container left over under the server's name
// (after a crash) is removed first, so the name is free. The docker client gets env (PATH,
// HOME and the server's variables, for -e KEY) plus the daemon's DOCKER_* client settings.
func (d *Docker) Wrap(cfg config.ServerConfig, env []string) (string, []string, []string) {
	iso := d.IsolationFor(cfg)
	if iso == nil {
		return cfg.Command, cfg.Args, env
	}
	ctx, cancel := context.WithTimeout(context.Background(), durationOr(d.RemoveTimeout, 10*time.Second))
	defer cancel()
	d.Remove(ctx, cfg.Name)
	childEnv := slices.Clone(env)
	have := map[string]bool{}
	for _, kv := range env {
		k, _, _ := strings.Cut(kv, "=")
		have[k] = true
	}
	for _, k := range dockerClientEnv {
		if v, ok := os.LookupEnv(k); ok && !have[k] {
			childEnv = append(childEnv, k+"="+v)
		}
	}
	slices.Sort(childEnv)
	return d.client(), RunArgs(cfg, *iso), childEnv
}

// AfterStop removes an isolated server's container once its docker client is gone, in case
// the container outlived the client (a SIGKILLed client leaves it running until its stdin
// closes). It is meant for a hook that runs after a stdio connection closed; other servers
// are left alone.
func (d *Docker) AfterStop(cfg config.ServerConfig) {
	if d.IsolationFor(cfg) == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), durationOr(d.RemoveTimeout, 10*time.Second))
	defer cancel()
	d.Remove(ctx, cfg.Name)
}

// Remove force-removes the server's container (`docker rm -f mcpproxy-<server>`). A container
// that does not exist is not an error worth reporting, so failures are only logged.
func (d *Docker) Remove(ctx context.Context, server string) {
	cmd := exec.CommandContext(ctx, d.client(), "rm", "-f", ContainerName(server))
	cmd.Env = d.clientEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		d.logger().Debug("docker rm", "server", server, "err", err, "output", strings.TrimSpace(string(out)))
	}
}

// clientEnv is the environment of docker commands mcpproxy runs itself (rm, version): the
// minimal base plus the docker client settings.
func (d *Docker) clientEnv() []string {
	env := ChildEnv(nil)
	for _, k := range dockerClientEnv {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// Status reports whether a Docker engine answers, running `docker version` (bounded by
// ProbeTimeout) at most once per CacheFor. ctx bounds only the wait; a probe already running
// finishes for the next caller.
func (d *Docker) Status(ctx context.Context) DockerStatus {
	d.mu.Lock()
	if d.cached != nil && time.Since(d.cached.CheckedAt) < durationOr(d.CacheFor, 10*time.Second) {
		st := *d.cached
		d.mu.Unlock()
		return st
	}
	wait := d.inflight
	if wait == nil {
		wait = make(chan struct{})
		d.inflight = wait
		go func() {
			st := d.probe()
			d.mu.Lock()
			d.cached = &st
			d.inflight = nil
			d.mu.Unlock()
			close(wait)
		}()
	}
	d.mu.Unlock()
	select {
	case <-wait:
		d.mu.Lock()
		defer d.mu.Unlock()
		return *d.cached
	case <-ctx.Done():
		return DockerStatus{Error: "docker status: " + ctx.Err().Error(), CheckedAt: time.Now().UTC()}
	}
}

// Wait returns once no probe is running (or ctx is done), so that a daemon shutting down
// leaves no goroutine behind.
func (d *Docker) Wait(ctx context.Context) {
	d.mu.Lock()
	wait := d.inflight
	d.mu.Unlock()
	if wait == nil {
		return
	}
	select {
	case <-wait:
	case <-ctx.Done():
	}
}

// versionOutput is the part of `docker version --format '{{json .}}'` mcpproxy reads; Server
// is null when the client cannot reach an engine.
type versionOutput struct {
	Client *struct {
		Version string `json:"Version"`
	} `json:"Client"`
	Server *struct {
		Version string `json:"Version"`
	} `json:"Server"`
}

func (d *Docker) probe() DockerStatus {
	st := DockerStatus{CheckedAt: time.Now().UTC()}
	timeout := durationOr(d.ProbeTimeout, 3*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	path := d.client()
	if !strings.Contains(path, "/") {
		st.Error = fmt.Sprintf("docker client %q not found in PATH", path)
		return st
	}
	cmd := exec.CommandContext(ctx, path, "version", "--format", "{{json .}}")
	cmd.Env = d.clientEnv()
	cmd.WaitDelay = time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var out versionOutput
	parsed := json.Unmarshal(bytes.TrimSpace(firstLine(stdout.Bytes())), &out) == nil
	if parsed && out.Client != nil {
		st.ClientVersion = out.Client.Version
	}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		st.Error = fmt.Sprintf("docker version did not answer within %s", timeout)
	case runErr == nil && parsed && out.Server != nil:
		st.Available = true
		st.Version = out.Server.Version
	default:
		msg := strings.TrimSpace(stderr.String())
		if msg == "" && runErr != nil {
			msg = runErr.Error()
		}
		if msg == "" {
			msg = "no Docker engine answered"
		}
		st.Error = lastLine(msg)
	}
	return st
}

func firstLine(b []byte) []byte {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i]
	}
	return b
}

// lastLine keeps the last non-empty line of a client's error output (the docker client
// repeats its message), clipped for an API response.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	msg := strings.TrimSpace(lines[len(lines)-1])
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	return msg
}
