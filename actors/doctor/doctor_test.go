package doctor

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/store"
	"github.com/mcpproxy/mcpproxy/actors/upstream"
	"github.com/mcpproxy/mcpproxy/config"
)

func boolp(b bool) *bool { return &b }

// setup is a healthy starting point: a private data dir, a command that exists, a secret and
// an env variable that resolve.
type setup struct {
	dir string
	in  Input
}

func newSetup(t *testing.T) *setup {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bin, "mcp-server"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("unix", filepath.Join(dir, "mcpproxy.sock"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	if err := os.Chmod(filepath.Join(dir, "mcpproxy.sock"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "mcp_config.json")
	if err := os.WriteFile(cfgPath, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"PATH": bin, "REGION": "eu"}
	return &setup{dir: dir, in: Input{
		DaemonRunning: true,
		ConfigPath:    cfgPath,
		Config: &config.Config{APIKey: "k", Servers: []config.ServerConfig{{
			Name: "good", Command: "mcp-server", Quarantined: boolp(false),
			Env: map[string]string{"TOKEN": "${secret:TOKEN}", "REGION": "${env:REGION}"},
		}}},
		DataDir: dir,
		Secret: func(name string) error {
			if name == "TOKEN" {
				return nil
			}
			return fmt.Errorf("secret %q: %w", name, store.ErrNotFound)
		},
		LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok },
		Servers:   []actors.Server{{Name: "good", State: actors.StateReady, Enabled: true}},
		Docker: func(context.Context) upstream.DockerStatus {
			return upstream.DockerStatus{Error: "Cannot connect to the Docker daemon"}
		},
	}}
}

func find(rep Report, name string, st Status) []Check {
	var out []Check
	for _, c := range rep.Checks {
		if (name == "" || c.Name == name) && c.Status == st {
			out = append(out, c)
		}
	}
	return out
}

func TestRun(t *testing.T) {
	tests := []struct {
		name    string
		change  func(t *testing.T, s *setup)
		healthy bool
		check   string
		status  Status
		message string // part of the check's message
		fix     string // part of its fix
	}{
		{
			name: "healthy", change: func(*testing.T, *setup) {}, healthy: true,
			check: CheckReferences, status: OK, message: "all 2",
		},
		{
			name: "missing secret",
			change: func(_ *testing.T, s *setup) {
				s.in.Config.Servers[0].Env["OTHER"] = "${secret:MISSING}"
			},
			check: CheckReferences, status: Fail, message: "${secret:MISSING}", fix: "mcpproxy secrets set MISSING",
		},
		{
			name: "missing env variable",
			change: func(_ *testing.T, s *setup) {
				s.in.Config.Servers[0].Args = []string{"--region", "${env:NOPE}"}
			},
			check: CheckReferences, status: Fail, message: "${env:NOPE}", fix: "set NOPE",
		},
		{
			name: "missing reference of a disabled server only warns",
			change: func(_ *testing.T, s *setup) {
				s.in.Config.Servers = append(s.in.Config.Servers, config.ServerConfig{
					Name: "off", Command: "mcp-server", Enabled: boolp(false), Quarantined: boolp(false),
					Env: map[string]string{"T": "${secret:MISSING}"},
				})
			},
			healthy: true, check: CheckReferences, status: Warn, message: "server off",
		},
		{
			name: "secret in args warns and says to use env",
			change: func(_ *testing.T, s *setup) {
				s.in.Config.Servers[0].Args = []string{"--token=${secret:TOKEN}", "${env:REGION}"}
			},
			healthy: true, check: CheckSecretArgs, status: Warn,
			message: "server good puts ${secret:TOKEN} in its args", fix: `"env": {"TOKEN": "${secret:TOKEN}"}`,
		},
		{
			name: "missing command",
			change: func(_ *testing.T, s *setup) {
				s.in.Config.Servers[0].Command = "no-such-mcp-server"
			},
			check: CheckCommands, status: Fail, message: `"no-such-mcp-server" not found in PATH`, fix: "mcpServers[0].command",
		},
		{
			name: "isolated command is not looked up on the host, but Docker must be there",
			change: func(_ *testing.T, s *setup) {
				s.in.Config.Servers[0].Command = "only-in-image"
				s.in.Config.Servers[0].Isolation = &config.Isolation{Enabled: true}
			},
			check: CheckDocker, status: Fail, message: "Cannot connect to the Docker daemon", fix: "start the Docker engine",
		},
		{
			name: "data dir readable by others",
			change: func(t *testing.T, s *setup) {
				if err := os.Chmod(s.dir, 0o755); err != nil {
					t.Fatal(err)
				}
			},
			check: CheckDataDir, status: Fail, message: "mode 0755", fix: "chmod 700",
		},
		{
			name: "file open to others in a private data dir warns",
			change: func(t *testing.T, s *setup) {
				writeFile(t, filepath.Join(s.dir, "db", "000001.log"), 0o644)
			},
			healthy: true, check: CheckDataDirFiles, status: Warn, message: "1 of the files in data dir", fix: "chmod -R go-rwx",
		},
		{
			name: "files open to others in an open data dir fail, a few named",
			change: func(t *testing.T, s *setup) {
				for i := range 5 {
					writeFile(t, filepath.Join(s.dir, "db", fmt.Sprintf("00000%d.sst", i)), 0o604)
				}
				if err := os.Chmod(s.dir, 0o711); err != nil {
					t.Fatal(err)
				}
			},
			check: CheckDataDirFiles, status: Fail, message: "db/000000.sst (0604), db/000001.sst (0604), db/000002.sst (0604), and 2 more", fix: "chmod -R go-rwx",
		},
		{
			name: "socket open to everyone",
			change: func(t *testing.T, s *setup) {
				if err := os.Chmod(filepath.Join(s.dir, "mcpproxy.sock"), 0o666); err != nil {
					t.Fatal(err)
				}
			},
			check: CheckSocket, status: Fail, message: "mode 0666", fix: "chmod 600",
		},
		{
			name: "secrets key readable by group",
			change: func(t *testing.T, s *setup) {
				if err := os.WriteFile(filepath.Join(s.dir, "secrets.key"), []byte("x"), 0o640); err != nil {
					t.Fatal(err)
				}
			},
			check: CheckSecretsKey, status: Fail, message: "mode 0640", fix: "chmod 600",
		},
		{
			name: "invalid config edit",
			change: func(_ *testing.T, s *setup) {
				s.in.ConfigErrors = []config.FieldError{{Field: "mcpServers[0].command", Message: "command (stdio) or url (http, sse) is required"}}
			},
			check: CheckConfig, status: Fail, message: "keeps running the previous config", fix: "correct the fields",
		},
		{
			name: "server in error gets the fix for its missing secret",
			change: func(_ *testing.T, s *setup) {
				since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
				s.in.Servers = append(s.in.Servers, actors.Server{
					Name: "broken", State: actors.StateBackoff, RetryCount: 3, ErrorSince: &since,
					LastError: `secret "GH_TOKEN" not found`,
				})
			},
			check: CheckServers, status: Fail, message: "since 2026-01-02T03:04:05Z", fix: "mcpproxy secrets set GH_TOKEN",
		},
		{
			name: "a server waiting for a login is told to log in",
			change: func(_ *testing.T, s *setup) {
				s.in.Servers = append(s.in.Servers, actors.Server{Name: "gh", State: actors.StateNeedsAuth, LastError: "login required"})
			},
			healthy: true, check: CheckServers, status: Warn, message: "server gh needs an OAuth login", fix: "mcpproxy servers login gh",
		},
		{
			name: "an id_jag server in needs_auth is told to renew its ID token, not to log in",
			change: func(_ *testing.T, s *setup) {
				s.in.Config.Servers = append(s.in.Config.Servers, config.ServerConfig{Name: "ent", URL: "https://mcp.example/mcp",
					OAuth: &config.OAuth{Grant: config.GrantIDJAG, ClientID: "c", IdP: &config.IdP{Issuer: "https://idp.example", ClientID: "i", IDToken: "${secret:TOKEN}"}}})
				s.in.Servers = append(s.in.Servers, actors.Server{Name: "ent", State: actors.StateNeedsAuth, LastError: "login required"})
			},
			healthy: true, check: CheckServers, status: Warn, message: "server ent", fix: "renew the ID token secret",
		},
		{
			name: "quarantined server is a warning",
			change: func(_ *testing.T, s *setup) {
				s.in.Servers[0].Quarantined = true
			},
			healthy: true, check: CheckQuarantine, status: Warn, message: "server good is quarantined", fix: "unquarantine good",
		},
		{
			name: "tools awaiting review are a warning",
			change: func(_ *testing.T, s *setup) {
				s.in.Servers[0].ToolsAwaitingReview = 2
			},
			healthy: true, check: CheckToolReview, status: Warn, message: "server good has 2 tools awaiting review", fix: "mcpproxy tools review good",
		},
		{
			name: "without a daemon, secrets are not checked and quarantine comes from the config",
			change: func(_ *testing.T, s *setup) {
				s.in.DaemonRunning, s.in.Servers, s.in.Secret = false, nil, nil
				s.in.SecretsNote = "no store"
				s.in.Config.Servers[0].Quarantined = nil
			},
			healthy: true, check: CheckReferences, status: Warn, message: "not checked: no store",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSetup(t)
			tt.change(t, s)
			rep := Run(context.Background(), s.in)
			if rep.Healthy != tt.healthy {
				t.Errorf("healthy = %v, want %v; checks: %+v", rep.Healthy, tt.healthy, rep.Checks)
			}
			found := find(rep, tt.check, tt.status)
			ok := false
			for _, c := range found {
				if strings.Contains(c.Message, tt.message) && strings.Contains(c.Fix, tt.fix) {
					ok = true
				}
			}
			if !ok {
				t.Fatalf("no %s check with status %s, message ~%q and fix ~%q; checks: %+v", tt.check, tt.status, tt.message, tt.fix, rep.Checks)
			}
			if tt.healthy {
				if f := find(rep, "", Fail); len(f) > 0 {
					t.Fatalf("healthy report has failures: %+v", f)
				}
			}
		})
	}
}

func TestRunHealthyHasNoProblems(t *testing.T) {
	s := newSetup(t)
	rep := Run(context.Background(), s.in)
	for _, c := range rep.Checks {
		if c.Status != OK {
			t.Errorf("check %+v is not ok on a good setup", c)
		}
		if c.Message == "" {
			t.Errorf("check %s has no message", c.Name)
		}
	}
	for _, name := range []string{CheckDaemon, CheckConfig, CheckDataDir, CheckDataDirFiles, CheckReferences, CheckCommands, CheckServers, CheckDocker, CheckQuarantine, CheckToolReview} {
		if len(find(rep, name, OK)) == 0 {
			t.Errorf("no ok %s check: %+v", name, rep.Checks)
		}
	}
}

// The socket, the secrets key and the config have checks of their own: an open one is not
// reported again among the data dir's files.
func TestDataDirFilesLeavesOwnChecks(t *testing.T) {
	s := newSetup(t)
	writeFile(t, filepath.Join(s.dir, "secrets.key"), 0o644)
	for _, name := range []string{"mcpproxy.sock", "mcp_config.json"} {
		if err := os.Chmod(filepath.Join(s.dir, name), 0o666); err != nil {
			t.Fatal(err)
		}
	}
	rep := Run(context.Background(), s.in)
	if len(find(rep, CheckDataDirFiles, OK)) != 1 {
		t.Errorf("data_dir_files reported the files with their own checks: %+v", rep.Checks)
	}
	for _, name := range []string{CheckSocket, CheckSecretsKey} {
		if len(find(rep, name, Fail)) != 1 {
			t.Errorf("no failing %s check: %+v", name, rep.Checks)
		}
	}
}

// writeFile writes a small file with mode, creating its dir (0700).
func writeFile(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("x"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // WriteFile's mode is less the umask
		t.Fatal(err)
	}
}

func TestShellQuote(t *testing.T) {
	for in, want := range map[string]string{
		"/home/u/.mcpproxy": "/home/u/.mcpproxy",
		"/tmp/a b":          "'/tmp/a b'",
		"/tmp/it's":         `'/tmp/it'\''s'`,
	} {
		if got := shellQuote(in); got != want {
			t.Errorf("shellQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSecretArgsOnlyForSecretsInArgs(t *testing.T) {
	s := newSetup(t)
	// Secrets in env, and ${env:} in args, stay off the warning.
	s.in.Config.Servers[0].Args = []string{"${env:REGION}", "--verbose"}
	if got := find(Run(context.Background(), s.in), CheckSecretArgs, Warn); len(got) != 0 {
		t.Fatalf("warned: %+v", got)
	}
	s.in.Config.Servers[0].Args = []string{"--a=${secret:B}", "${secret:A}", "--again=${secret:B}"}
	got := find(Run(context.Background(), s.in), CheckSecretArgs, Warn)
	if len(got) != 1 || !strings.Contains(got[0].Message, "${secret:A}, ${secret:B}") || !strings.Contains(got[0].Message, "/proc/PID/cmdline") {
		t.Fatalf("checks: %+v", got)
	}
}
