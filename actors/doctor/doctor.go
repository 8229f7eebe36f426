// Package doctor runs mcpproxy's health checks: is the config valid, are the data dir (and
// every file in it), the socket and the key files private, does every ${secret:} and ${env:}
// reference resolve, does a secret go on a command line (args), is every stdio command on
// PATH, which servers are in error (with a suggested fix), is Docker
// there when isolation is on, which servers wait in quarantine, and which servers have tools
// awaiting review (changed since their approval, or new).
//
// The checks are plain functions of an Input, so the running daemon (GET /api/v1/doctor) and
// `mcpproxy doctor` without a daemon run the same code; what is unknown without a daemon (live
// server states) is simply left out of the Input.
//
// # Usage
//
//	rep := doctor.Run(ctx, doctor.Input{Config: cfg, ConfigPath: p, DataDir: dir, ...})
//	if !rep.Healthy { ... }
//
// # Concurrency
//
// Run may be called from many goroutines; it only reads its Input and the file system, and
// calls the Input's functions.
package doctor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/store"
	"github.com/mcpproxy/mcpproxy/actors/upstream"
	"github.com/mcpproxy/mcpproxy/config"
)

// Status is the outcome of one check.
type Status string

// Check outcomes. Only Fail makes a report unhealthy; Warn is for what deserves a look but
// does not stop the proxy from doing its job (a server waiting in quarantine).
const (
	OK   Status = "ok"
	Warn Status = "warn"
	Fail Status = "fail"
)

// Check names, in the order Run reports them.
const (
	CheckDaemon            = "daemon"
	CheckConfig            = "config"
	CheckDataDir           = "data_dir"
	CheckDataDirFiles      = "data_dir_files"
	CheckSocket            = "socket"
	CheckSecretsKey        = "secrets_key"
	CheckConfigPermissions = "config_permissions"
	CheckReferences        = "references"
	CheckSecretArgs        = "secret_args"
	CheckCommands          = "commands"
	CheckServers           = "servers"
	CheckDocker            = "docker"
	CheckQuarantine        = "quarantine"
	CheckToolReview        = "tool_review"
)

// Check is one finding. A check name may appear more than once, once per problem found.
type Check struct {
	Name    string `json:"name"`
	Status  Status `json:"status"`
	Message string `json:"message"`
	// Fix is what to do about a warn or fail, empty for ok.
	Fix string `json:"fix"`
}

// Report is the doctor's answer.
type Report struct {
	// Healthy is true when no check failed.
	Healthy bool    `json:"healthy"`
	Checks  []Check `json:"checks"`
}

// Input is what the checks look at. Leave a field zero when it is unknown; the check that
// needs it then says so or is skipped, as documented per field.
type Input struct {
	// DaemonRunning says the checks run inside (or against) a running daemon. When false,
	// DaemonNote says why none answered.
	DaemonRunning bool
	DaemonNote    string

	// ConfigPath is the config file.
	ConfigPath string
	// Config is the config to check (normalised by Run); nil when it could not be loaded.
	Config *config.Config
	// ConfigErrors are the validation errors of the config file: with a running daemon, those
	// of the last edit it refused (it keeps running the previous config).
	ConfigErrors []config.FieldError
	// ConfigErr is a config file that cannot be read or parsed at all.
	ConfigErr error

	// DataDir holds the config, the store, the socket and the secrets key.
	DataDir string
	// SocketPath is checked when it exists. Default <DataDir>/mcpproxy.sock.
	SocketPath string
	// SecretsKeyPath is checked when it exists. Default <DataDir>/secrets.key.
	SecretsKeyPath string

	// Secret says whether a stored secret can be read: nil error when it can, an error that
	// wraps store.ErrNotFound when it is missing, another error when it cannot be read.
	// Nil: secret references are not checked, and SecretsNote says why.
	Secret      func(name string) error
	SecretsNote string
	// LookupEnv is the daemon's environment, for ${env:} references and PATH. Default
	// os.LookupEnv.
	LookupEnv func(string) (string, bool)

	// Servers are the live server states; nil without a daemon (the servers check is then
	// skipped and quarantine is read from the config).
	Servers []actors.Server

	// Docker probes the Docker engine; nil skips the Docker check.
	Docker func(ctx context.Context) upstream.DockerStatus
}

// Run runs every check and returns the report. ctx bounds the Docker probe.
func Run(ctx context.Context, in Input) Report {
	if in.LookupEnv == nil {
		in.LookupEnv = os.LookupEnv
	}
	if in.SocketPath == "" && in.DataDir != "" {
		in.SocketPath = filepath.Join(in.DataDir, "mcpproxy.sock")
	}
	if in.SecretsKeyPath == "" && in.DataDir != "" {
		in.SecretsKeyPath = filepath.Join(in.DataDir, "secrets.key")
	}
	var cfg *config.Config
	if in.Config != nil {
		cfg = in.Config.Clone()
		cfg.Normalize()
	}
	r := &run{in: in, cfg: cfg}
	r.daemon()
	r.config()
	r.dataDir()
	r.dataDirFiles()
	r.privateFile(CheckSocket, in.SocketPath, "socket", 0o600)
	r.privateFile(CheckSecretsKey, in.SecretsKeyPath, "secrets key file", 0o600)
	r.configPermissions()
	r.references()
	r.secretArgs()
	r.commands()
	r.servers()
	r.docker(ctx)
	r.quarantine()
	r.toolReview()
	rep := Report{Healthy: true, Checks: r.checks}
	for _, c := range r.checks {
		if c.Status == Fail {
			rep.Healthy = false
		}
	}
	return rep
}

type run struct {
	in     Input
	cfg    *config.Config
	checks []Check
	// dirReachable says the data dir exists and lets other users in (any group or other
	// bit), so that open files in it are readable now, not only once the dir is opened.
	dirReachable bool
	// missingRefs maps "secret:NAME" and "env:NAME" to the fix already suggested, so that a
	// server in error because of it gets the same advice.
	missingRefs map[string]string
}

func (r *run) add(name string, st Status, fix, format string, args ...any) {
	r.checks = append(r.checks, Check{Name: name, Status: st, Message: fmt.Sprintf(format, args...), Fix: fix})
}

func (r *run) daemon() {
	if r.in.DaemonRunning {
		r.add(CheckDaemon, OK, "", "the daemon is running")
		return
	}
	note := r.in.DaemonNote
	if note == "" {
		note = "no daemon is running"
	}
	r.add(CheckDaemon, Warn, "start it with `mcpproxy serve`", "%s; checks of live server states were skipped", note)
}

func (r *run) config() {
	path := r.in.ConfigPath
	switch {
	case r.in.ConfigErr != nil:
		r.add(CheckConfig, Fail, "fix the file (it must be JSON with an mcpServers list) and run `mcpproxy doctor` again",
			"config %s cannot be loaded: %v", path, r.in.ConfigErr)
	case len(r.in.ConfigErrors) > 0 && r.in.DaemonRunning:
		r.add(CheckConfig, Fail, "correct the fields listed; the daemon applies the file as soon as it is valid",
			"the last edit of %s is invalid, so the daemon keeps running the previous config: %s", path, fieldErrors(r.in.ConfigErrors))
	case len(r.in.ConfigErrors) > 0:
		r.add(CheckConfig, Fail, "correct the fields listed and run `mcpproxy doctor` again",
			"config %s is invalid: %s", path, fieldErrors(r.in.ConfigErrors))
	case r.cfg == nil:
		r.add(CheckConfig, Warn, "`mcpproxy serve` creates it on first start", "config %s does not exist yet", path)
	default:
		r.add(CheckConfig, OK, "", "config %s is valid (%d servers)", path, len(r.cfg.Servers))
	}
}

func fieldErrors(errs []config.FieldError) string {
	parts := make([]string, 0, len(errs))
	for _, e := range errs {
		parts = append(parts, e.Field+": "+e.Message)
	}
	return strings.Join(parts, "; ")
}

// ownedByOther reports whether info belongs to another user than this process's.
func ownedByOther(info fs.FileInfo) bool {
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) != os.Getuid()
}

func (r *run) dataDir() {
	dir := r.in.DataDir
	if dir == "" {
		return
	}
	info, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		r.add(CheckDataDir, Warn, "`mcpproxy serve` creates it (mode 0700)", "data dir %s does not exist yet", dir)
		return
	case err != nil:
		r.add(CheckDataDir, Fail, "check the path and its parent directories", "data dir %s: %v", dir, err)
		return
	case !info.IsDir():
		r.add(CheckDataDir, Fail, "remove the file or choose another --data-dir", "data dir %s is not a directory", dir)
		return
	}
	mode := info.Mode().Perm()
	r.dirReachable = mode&0o077 != 0
	switch {
	case mode&0o077 != 0:
		r.add(CheckDataDir, Fail, fmt.Sprintf("chmod 700 %s", shellQuote(dir)),
			"data dir %s has mode %04o: other users can reach the config (API key), the secrets key and the store", dir, mode)
	case ownedByOther(info):
		r.add(CheckDataDir, Warn, fmt.Sprintf("chown it to the user that runs mcpproxy: chown -R $(id -u) %s", shellQuote(dir)),
			"data dir %s belongs to another user", dir)
	default:
		r.add(CheckDataDir, OK, "", "data dir %s has mode %04o", dir, mode)
	}
}

// maxDataDirEntries bounds the walk of dataDirFiles, so that a doctor run stays quick on a
// data dir someone filled with a huge tree.
const maxDataDirEntries = 10_000

// dataDirFiles looks for files and dirs inside the data dir that other users may use (any
// group or other bit). The daemon keeps everything it writes there private and tightens
// what it finds at start, so one is a file copied in or chmodded since. It fails when the
// data dir lets others in too (the file is readable now) and warns when the dir is private
// (it is readable once the dir is opened). The socket, the secrets key and the config have
// checks of their own and are left to them. A few names are given, relative to the dir.
func (r *run) dataDirFiles() {
	dir := r.in.DataDir
	if dir == "" {
		return
	}
	if info, err := os.Stat(dir); err != nil || !info.IsDir() {
		return // the data_dir check said why
	}
	own := map[string]bool{r.in.SocketPath: true, r.in.SecretsKeyPath: true, r.in.ConfigPath: true}
	var open []string
	seen, truncated := 0, false
	_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || path == dir || own[path] {
			return nil
		}
		if seen++; seen > maxDataDirEntries {
			truncated = true
			return filepath.SkipAll
		}
		if !d.Type().IsRegular() && !d.IsDir() {
			return nil // a symlink's mode says nothing; a socket is checked by name
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		if mode := info.Mode().Perm(); mode&0o077 != 0 {
			rel, _ := filepath.Rel(dir, path)
			open = append(open, fmt.Sprintf("%s (%04o)", rel, mode))
		}
		return nil
	})
	if len(open) == 0 {
		note := ""
		if truncated {
			note = fmt.Sprintf(" (the first %d entries)", maxDataDirEntries)
		}
		r.add(CheckDataDirFiles, OK, "", "no file in data dir %s is open to other users%s", dir, note)
		return
	}
	names := open
	if len(names) > 3 {
		names = append(names[:3:3], fmt.Sprintf("and %d more", len(open)-3))
	}
	fix := fmt.Sprintf("chmod -R go-rwx %s", shellQuote(dir))
	if r.dirReachable {
		r.add(CheckDataDirFiles, Fail, fix, "%d of the files in data dir %s are open to other users, who can reach them: %s",
			len(open), dir, strings.Join(names, ", "))
		return
	}
	r.add(CheckDataDirFiles, Warn, fix+"   (the daemon also does it at start)",
		"%d of the files in data dir %s are open to other users, readable should the dir be opened: %s",
		len(open), dir, strings.Join(names, ", "))
}

// privateFile checks that a file only its owner may read has mode want (or stricter). A
// missing file is fine: it is created with the right mode.
func (r *run) privateFile(check, path, what string, want fs.FileMode) {
	if path == "" {
		return
	}
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if check == CheckSocket && r.in.DaemonRunning {
			r.add(check, Fail, "restart the daemon; it creates the socket at start", "the daemon's socket %s is missing", path)
		}
		return
	case err != nil:
		r.add(check, Fail, "check the path", "%s %s: %v", what, path, err)
		return
	}
	mode := info.Mode().Perm()
	if mode&^want != 0 {
		r.add(check, Fail, fmt.Sprintf("chmod %o %s", want, shellQuote(path)),
			"%s %s has mode %04o; want %04o (only its owner may use it)", what, path, mode, want)
		return
	}
	r.add(check, OK, "", "%s %s has mode %04o", what, path, mode)
}

func (r *run) configPermissions() {
	if r.cfg == nil || r.in.ConfigPath == "" {
		return
	}
	info, err := os.Stat(r.in.ConfigPath)
	if err != nil {
		return
	}
	if mode := info.Mode().Perm(); mode&0o077 != 0 && r.cfg.APIKey != "" {
		r.add(CheckConfigPermissions, Warn, fmt.Sprintf("chmod 600 %s", shellQuote(r.in.ConfigPath)),
			"config %s holds the API key and has mode %04o: other users can read it", r.in.ConfigPath, mode)
	}
}

func (r *run) references() {
	if r.cfg == nil {
		return
	}
	r.missingRefs = map[string]string{}
	checked, problems := 0, 0
	secretsSkipped := false
	for _, sc := range r.cfg.Servers {
		secrets, envs := sc.References()
		// A disabled server does not start, so a reference it cannot resolve waits for it.
		st := Fail
		if !sc.IsEnabled() {
			st = Warn
		}
		for _, name := range secrets {
			if r.in.Secret == nil {
				secretsSkipped = true
				continue
			}
			checked++
			err := r.in.Secret(name)
			if err == nil {
				continue
			}
			problems++
			fix := fmt.Sprintf("mcpproxy secrets set %s   (reads the value from stdin; servers that use it restart)", name)
			if errors.Is(err, store.ErrNotFound) {
				r.missingRefs["secret:"+name] = fix
				r.add(CheckReferences, st, fix, "server %s references ${secret:%s}, which is not set", sc.Name, name)
			} else {
				r.add(CheckReferences, st, fix, "server %s references ${secret:%s}, which cannot be read: %v", sc.Name, name, err)
			}
		}
		for _, name := range envs {
			checked++
			if _, ok := r.in.LookupEnv(name); ok {
				continue
			}
			problems++
			fix := fmt.Sprintf("set %s in the environment of `mcpproxy serve` and restart the daemon, or store it with `mcpproxy secrets set %s` and write ${secret:%s}", name, name, name)
			r.missingRefs["env:"+name] = fix
			where := "the daemon's environment"
			if !r.in.DaemonRunning {
				where = "this shell's environment (no daemon runs to ask)"
			}
			r.add(CheckReferences, st, fix, "server %s references ${env:%s}, which is not set in %s", sc.Name, name, where)
		}
	}
	if secretsSkipped {
		note := r.in.SecretsNote
		if note == "" {
			note = "the secrets store is not available"
		}
		r.add(CheckReferences, Warn, "start the daemon and run `mcpproxy doctor` again", "${secret:} references were not checked: %s", note)
	}
	if problems == 0 && !secretsSkipped {
		r.add(CheckReferences, OK, "", "all %d ${secret:} and ${env:} references resolve", checked)
	}
}

// secretArgs warns about ${secret:} references in args: a process's command line is
// readable by every local user (/proc/PID/cmdline, ps), and for an isolated server the
// docker client's command line carries them too. Environment variables are not: mcpproxy
// passes env to the child only (and to a container by name, -e KEY). It is a warning, not
// a failure: the server works, it just does not keep the secret.
func (r *run) secretArgs() {
	if r.cfg == nil {
		return
	}
	for i, sc := range r.cfg.Servers {
		names := sc.ArgSecrets()
		if len(names) == 0 {
			continue
		}
		refs := make([]string, len(names))
		env := make([]string, len(names))
		for k, n := range names {
			refs[k] = "${secret:" + n + "}"
			env[k] = fmt.Sprintf("%q: %q", n, "${secret:"+n+"}")
		}
		r.add(CheckSecretArgs, Warn,
			fmt.Sprintf("pass it through the environment instead: in mcpServers[%d] write \"env\": {%s} and remove it from args (most MCP servers read their tokens from environment variables)",
				i, strings.Join(env, ", ")),
			"server %s puts %s in its args: the value is on the process's command line, which every local user can read (/proc/PID/cmdline)",
			sc.Name, strings.Join(refs, ", "))
	}
}

func (r *run) commands() {
	if r.cfg == nil {
		return
	}
	path, _ := r.in.LookupEnv("PATH")
	checked, missing := 0, 0
	for i, sc := range r.cfg.Servers {
		if sc.Protocol != config.ProtocolStdio || !sc.IsEnabled() || r.cfg.IsolationFor(sc) != nil {
			continue // remotes have no command; an isolated command lives in its image
		}
		checked++
		childPath := path
		if p, ok := sc.Env["PATH"]; ok {
			childPath = p // the server's own PATH replaces the daemon's (upstream.ChildEnv)
		}
		if _, err := upstream.LookPath(sc.Command, sc.WorkingDir, childPath); err != nil {
			missing++
			r.add(CheckCommands, Fail, fmt.Sprintf("install %s, or write its full path in mcpServers[%d].command", sc.Command, i),
				"server %s: %v", sc.Name, err)
		}
	}
	if missing == 0 {
		r.add(CheckCommands, OK, "", "all %d stdio commands found", checked)
	}
}

// refErrRE reads config.ReferenceError's message back out of a server's last_error: the
// API carries errors as text, and a missing reference deserves its exact fix.
var refErrRE = regexp.MustCompile(`\b(secret|env) "([^"]+)" not found`)

// suggest proposes a fix for a server in error from what is known about it.
func (r *run) suggest(s actors.Server) string {
	if m := refErrRE.FindStringSubmatch(s.LastError); m != nil {
		if fix, ok := r.missingRefs[m[1]+":"+m[2]]; ok {
			return fix
		}
		if m[1] == "secret" {
			return fmt.Sprintf("mcpproxy secrets set %s", m[2])
		}
		return fmt.Sprintf("set %s in the environment of `mcpproxy serve` and restart the daemon", m[2])
	}
	e := strings.ToLower(s.LastError)
	switch {
	case s.Isolated && (strings.Contains(e, "docker") || strings.Contains(e, "container")):
		return "start the Docker engine, or turn isolation off for this server; then `mcpproxy servers restart " + s.Name + "`"
	case strings.Contains(e, "not found in path") || strings.Contains(e, "no such file"):
		return fmt.Sprintf("install %q or write its full path in the config", s.Command)
	case strings.Contains(e, "401") || strings.Contains(e, "403") || strings.Contains(e, "unauthorized") || strings.Contains(e, "forbidden"):
		return "check the credentials the server's headers send (store them with `mcpproxy secrets set`)"
	case strings.Contains(e, "connection refused") || strings.Contains(e, "no such host") || strings.Contains(e, "timeout") || strings.Contains(e, "deadline"):
		if s.URL != "" {
			return fmt.Sprintf("check that %s is up and reachable from this machine", s.URL)
		}
		return "check that the server starts and answers MCP initialize on stdio"
	case s.Command != "":
		return fmt.Sprintf("run the command by hand to see why it fails: %s", strings.Join(append([]string{s.Command}, s.Args...), " "))
	default:
		return "check the server's entry in the config, then `mcpproxy servers restart " + s.Name + "`"
	}
}

// serverConfig is the configured entry of a server, if the config is known.
func (r *run) serverConfig(name string) (config.ServerConfig, bool) {
	if r.in.Config == nil {
		return config.ServerConfig{}, false
	}
	return r.in.Config.Server(name)
}

func (r *run) servers() {
	if r.in.Servers == nil {
		return
	}
	bad := 0
	for _, s := range r.in.Servers {
		if s.State == actors.StateNeedsAuth {
			// Not broken: waiting for the user. A warning that says how to log in.
			bad++
			fix := "mcpproxy servers login " + s.Name + " (or the dashboard's Log in button)"
			if sc, ok := r.serverConfig(s.Name); ok && sc.OAuth.SelfGrant() {
				// No login for a server that gets its tokens itself: its grant failed.
				fix = "see why the grant failed in `mcpproxy servers logs " + s.Name + "`; fix its client credentials"
				if sc.OAuth.Grant == config.GrantIDJAG {
					fix += " or renew the ID token secret (`mcpproxy secrets set NAME`), which retries at once"
				}
			}
			r.add(CheckServers, Warn, fix, "server %s needs an OAuth login: %s", s.Name, s.LastError)
			continue
		}
		if s.State != actors.StateError && s.State != actors.StateBackoff {
			continue
		}
		bad++
		since := ""
		if s.ErrorSince != nil {
			since = fmt.Sprintf(" since %s", s.ErrorSince.UTC().Format(time.RFC3339))
		}
		r.add(CheckServers, Fail, r.suggest(s), "server %s is in %s%s after %d attempts: %s", s.Name, s.State, since, s.RetryCount, s.LastError)
	}
	if bad == 0 {
		r.add(CheckServers, OK, "", "%d servers, none in error", len(r.in.Servers))
	}
}

func (r *run) docker(ctx context.Context) {
	if r.cfg == nil || r.in.Docker == nil {
		return
	}
	var isolated []string
	for _, sc := range r.cfg.Servers {
		if sc.IsEnabled() && r.cfg.IsolationFor(sc) != nil {
			isolated = append(isolated, sc.Name)
		}
	}
	if len(isolated) == 0 {
		r.add(CheckDocker, OK, "", "no server runs in Docker")
		return
	}
	st := r.in.Docker(ctx)
	if !st.Available {
		r.add(CheckDocker, Fail, "start the Docker engine, or turn isolation off (docker_isolation.enabled, or isolation.enabled on the server)",
			"Docker isolation is on for %s, but Docker is not available: %s", strings.Join(isolated, ", "), st.Error)
		return
	}
	r.add(CheckDocker, OK, "", "Docker %s is available for %d isolated servers", st.Version, len(isolated))
}

func (r *run) quarantine() {
	var names []string
	switch {
	case r.in.Servers != nil:
		for _, s := range r.in.Servers {
			if s.Quarantined {
				names = append(names, s.Name)
			}
		}
	case r.cfg != nil:
		for _, sc := range r.cfg.Servers {
			if sc.IsQuarantined() {
				names = append(names, sc.Name)
			}
		}
	default:
		return
	}
	slices.Sort(names)
	for _, n := range names {
		r.add(CheckQuarantine, Warn,
			fmt.Sprintf("review its tools (`GET /api/v1/servers/%s/tools`), then approve it with `mcpproxy servers unquarantine %s`", n, n),
			"server %s is quarantined: agents cannot see or call its tools until it is approved", n)
	}
	if len(names) == 0 {
		r.add(CheckQuarantine, OK, "", "no server waits in quarantine")
	}
}

// toolReview warns about the tools of approved servers held back because they changed
// since their approval or are new (tool-level trust). It needs the live servers: without a
// daemon it is skipped.
func (r *run) toolReview() {
	if r.in.Servers == nil {
		return
	}
	n := 0
	for _, s := range r.in.Servers {
		if s.ToolsAwaitingReview == 0 {
			continue
		}
		n++
		r.add(CheckToolReview, Warn,
			fmt.Sprintf("see what changed with `mcpproxy tools review %s`, then approve with `mcpproxy tools approve %s TOOL...` (or --all)", s.Name, s.Name),
			"server %s has %d tools awaiting review (changed since their approval, or new): agents cannot see or call them", s.Name, s.ToolsAwaitingReview)
	}
	if n == 0 {
		r.add(CheckToolReview, OK, "", "no tool awaits review")
	}
}

// shellQuote quotes a path for a command the user may paste.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`;&|<>()*?[]#~!{}") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
