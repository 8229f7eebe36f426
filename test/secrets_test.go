package test

// End-to-end tests of secrets: the /api/v1/secrets routes, ${secret:NAME} resolution when a
// server starts (a missing secret is an error that names it; a change restarts the users),
// and that a secret value never shows up where it should not: API responses, the daemon's
// log at debug level, the config file, the store's files, or an upstream that does not ask
// for it.

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/upstream/guard"
)

// secretMeta is a secret as the API shows it.
type secretMeta struct {
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	UsedBy    []string  `json:"used_by"`
}

type secretAnswer struct {
	Secret    secretMeta `json:"secret"`
	Restarted []string   `json:"restarted"`
}

// putSecret stores a secret and returns the status and answer.
func (p *proxy) putSecret(name, value string) (int, secretAnswer) {
	p.t.Helper()
	var out secretAnswer
	code, body := p.do("PUT", "/api/v1/secrets/"+name, map[string]string{"value": value}, nil)
	if code/100 == 2 {
		if err := json.Unmarshal(body, &out); err != nil {
			p.t.Fatalf("PUT secret %s: %q: %v", name, body, err)
		}
	}
	return code, out
}

func TestSecretsAPI(t *testing.T) {
	p := startProxy(t, servers(
		map[string]any{"name": "user-a", "command": fixtureBin(t), "enabled": false, "env": map[string]string{"K": "${secret:API_TOKEN}"}},
		map[string]any{"name": "user-b", "url": "http://127.0.0.1:9/mcp", "enabled": false, "headers": map[string]string{"Authorization": "Bearer ${secret:API_TOKEN}"}},
	))
	const value = "api-secret-value-8d0c"

	code, created := p.putSecret("API_TOKEN", value)
	if code != http.StatusCreated || created.Secret.Name != "API_TOKEN" || !slices.Equal(created.Secret.UsedBy, []string{"user-a", "user-b"}) ||
		created.Secret.CreatedAt.IsZero() || len(created.Restarted) != 0 {
		t.Fatalf("PUT new secret: %d %+v", code, created)
	}
	code, replaced := p.putSecret("API_TOKEN", value+"-2")
	if code != http.StatusOK || !replaced.Secret.CreatedAt.Equal(created.Secret.CreatedAt) || replaced.Secret.UpdatedAt.Before(created.Secret.UpdatedAt) {
		t.Fatalf("PUT existing secret: %d %+v (first %+v)", code, replaced, created)
	}
	p.putSecret("UNUSED", "unused-value-77")

	var list struct {
		Secrets []secretMeta `json:"secrets"`
	}
	if code, body := p.do("GET", "/api/v1/secrets", nil, &list); code != 200 || len(list.Secrets) != 2 ||
		list.Secrets[0].Name != "API_TOKEN" || list.Secrets[1].Name != "UNUSED" || list.Secrets[1].UsedBy == nil || len(list.Secrets[1].UsedBy) != 0 {
		t.Fatalf("GET secrets: %d %s", code, body)
	}
	var one secretAnswer
	if code, body := p.do("GET", "/api/v1/secrets/API_TOKEN", nil, &one); code != 200 || one.Secret.Name != "API_TOKEN" ||
		!slices.Equal(one.Secret.UsedBy, []string{"user-a", "user-b"}) {
		t.Fatalf("GET secret: %d %s", code, body)
	}

	tests := []struct {
		name, method, path string
		body               any
		status             int
		code               string
	}{
		{"unknown secret", "GET", "/api/v1/secrets/NOPE", nil, 404, "NOT_FOUND"},
		{"delete unknown", "DELETE", "/api/v1/secrets/NOPE", nil, 404, "NOT_FOUND"},
		{"bad name", "PUT", "/api/v1/secrets/bad%20name", map[string]string{"value": "v"}, 400, "INVALID_ARGUMENT"},
		{"no body", "PUT", "/api/v1/secrets/X", nil, 400, "INVALID_ARGUMENT"},
		{"no value", "PUT", "/api/v1/secrets/X", map[string]string{}, 400, "INVALID_ARGUMENT"},
		{"empty value", "PUT", "/api/v1/secrets/X", map[string]string{"value": ""}, 400, "INVALID_ARGUMENT"},
		{"NUL in value", "PUT", "/api/v1/secrets/X", map[string]string{"value": "a\x00b"}, 400, "INVALID_ARGUMENT"},
		{"unknown field", "PUT", "/api/v1/secrets/X", map[string]string{"value": "v", "extra": "1"}, 400, "INVALID_ARGUMENT"},
		{"value too large", "PUT", "/api/v1/secrets/X", map[string]string{"value": strings.Repeat("x", 2<<20)}, 413, "PAYLOAD_TOO_LARGE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var e struct {
				Error string `json:"error"`
				Code  string `json:"code"`
			}
			code, body := p.do(tt.method, tt.path, tt.body, &e)
			if code != tt.status || e.Code != tt.code || e.Error == "" {
				t.Fatalf("%s %s: %d %s, want %d %s", tt.method, tt.path, code, body, tt.status, tt.code)
			}
		})
	}
	if code, body := p.do("GET", "/api/v1/secrets/X", nil, nil); code != 404 {
		t.Errorf("a rejected PUT stored something: %d %s", code, body)
	}
	if code, _ := p.doWith("GET", "/api/v1/secrets", nil, nil, nil); code != 401 {
		t.Errorf("GET secrets without a key: %d, want 401", code)
	}

	if code, body := p.do("DELETE", "/api/v1/secrets/API_TOKEN", nil, nil); code != http.StatusNoContent || len(body) != 0 {
		t.Fatalf("DELETE: %d %q", code, body)
	}
	if code, _ := p.do("GET", "/api/v1/secrets/API_TOKEN", nil, nil); code != 404 {
		t.Fatalf("GET after DELETE: %d", code)
	}
}

// envVars parses the fixture's env tool output (KEY=VALUE lines).
func envVars(text string) map[string]string {
	vars := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if k, v, ok := strings.Cut(line, "="); ok {
			vars[k] = v
		}
	}
	return vars
}

func TestSecretResolutionAndRestart(t *testing.T) {
	p := startProxy(t, servers(
		withEnv(stdioFixture(t, "user"), map[string]string{"TOKEN": "${secret:RUN_TOKEN}"}),
		map[string]any{"name": "off", "command": fixtureBin(t), "enabled": false, "quarantined": false,
			"args": []string{"--name", "off", "${secret:RUN_TOKEN}"}},
		stdioFixture(t, "bystander"),
	))
	s := p.waitState("user", 20*time.Second, actors.StateError, actors.StateBackoff)
	if !strings.Contains(s.LastError, `secret "RUN_TOKEN" not found`) {
		t.Fatalf("last_error = %q, want it to name the missing secret", s.LastError)
	}
	p.waitState("bystander", 20*time.Second, actors.StateReady)
	bystanderPID := serverPID(t, p, "bystander")

	code, ans := p.putSecret("RUN_TOKEN", "first-value-1a2b")
	if code != 201 || !slices.Equal(ans.Restarted, []string{"user"}) || !slices.Equal(ans.Secret.UsedBy, []string{"off", "user"}) {
		t.Fatalf("PUT: %d %+v; want user restarted (off is disabled)", code, ans)
	}
	p.waitState("user", 20*time.Second, actors.StateReady)
	if got := envVars(callText(t, p, "user:env", map[string]any{}))["TOKEN"]; got != "first-value-1a2b" {
		t.Fatalf("TOKEN in the upstream = %q", got)
	}

	firstPID := serverPID(t, p, "user")
	if code, ans := p.putSecret("RUN_TOKEN", "second-value-3c4d"); code != 200 || !slices.Equal(ans.Restarted, []string{"user"}) {
		t.Fatalf("PUT again: %d %+v", code, ans)
	}
	waitFor(t, 20*time.Second, "user to restart with the new value", func() bool {
		s := p.server("user")
		return s.State == actors.StateReady && serverPID(t, p, "user") != firstPID
	})
	if got := envVars(callText(t, p, "user:env", map[string]any{}))["TOKEN"]; got != "second-value-3c4d" {
		t.Fatalf("TOKEN after the change = %q", got)
	}
	if serverPID(t, p, "bystander") != bystanderPID {
		t.Errorf("a server that does not use the secret was restarted")
	}

	if code, body := p.do("DELETE", "/api/v1/secrets/RUN_TOKEN", nil, nil); code != 204 {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	waitFor(t, 20*time.Second, "user to fail naming the deleted secret", func() bool {
		s := p.server("user")
		return (s.State == actors.StateError || s.State == actors.StateBackoff) && strings.Contains(s.LastError, `secret "RUN_TOKEN" not found`)
	})
}

// TestSecretReachesOnlyItsUpstream runs server-everything with one secret in its env and asks
// it (get-env) what arrived: that variable, and nothing of the daemon's environment or of
// other secrets.
func TestSecretReachesOnlyItsUpstream(t *testing.T) {
	const canary = "daemon-env-canary-6e1a"
	t.Setenv("MCPPROXY_TEST_CANARY", canary)
	node, args := everythingCmd(t)
	p := startProxy(t, servers(map[string]any{
		"name": "everything", "command": node, "args": args, "quarantined": false,
		"env": map[string]string{"MY_SECRET": "${secret:EVERYTHING_TOKEN}"},
	}))
	p.putSecret("OTHER_SECRET", "other-secret-value-9f9f")
	if code, _ := p.putSecret("EVERYTHING_TOKEN", "everything-secret-4d4d"); code != 201 {
		t.Fatalf("PUT: %d", code)
	}
	p.waitState("everything", 60*time.Second, actors.StateReady)
	out := callText(t, p, "everything:get-env", map[string]any{})
	var env map[string]string
	if err := json.Unmarshal([]byte(out), &env); err != nil {
		t.Fatalf("get-env answered %q: %v", out, err)
	}
	if env["MY_SECRET"] != "everything-secret-4d4d" {
		t.Fatalf("MY_SECRET = %q in %v", env["MY_SECRET"], env)
	}
	if _, err := strconv.ParseUint(env[guard.MarkEnv], 10, 64); err != nil {
		t.Errorf("%s = %q: want the number the guard tells its servers apart by", guard.MarkEnv, env[guard.MarkEnv])
	}
	for k, v := range env {
		if k != "PATH" && k != "HOME" && k != "MY_SECRET" && k != guard.MarkEnv {
			t.Errorf("the upstream got %s=%q, which its config does not pass", k, v)
		}
		if strings.Contains(v, canary) || strings.Contains(v, "other-secret-value-9f9f") {
			t.Errorf("the upstream got a value it should not have: %s=%q", k, v)
		}
	}
}

// startProxyProcessDebug is startProxyProcess with --log-level debug, so that the test sees
// every log line the daemon can write.
func startProxyProcessDebug(t testing.TB, dir string, cfg any) *proxy {
	t.Helper()
	if cfg != nil {
		writeConfig(t, dir, cfg)
	}
	cmd := exec.Command(filepath.Join(binaries(t), "mcpproxy"), "serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--log-level", "debug")
	stderr := &syncBuffer{}
	cmd.Stderr, cmd.Stdout = stderr, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, DataDir: dir, Socket: filepath.Join(dir, "mcpproxy.sock"), Cmd: cmd, stderr: stderr, client: &http.Client{Timeout: 30 * time.Second}}
	t.Cleanup(func() { p.Stop() })
	waitFor(t, 20*time.Second, "daemon to listen", func() bool {
		if m := listenRE.FindStringSubmatch(stderr.String()); m != nil {
			p.URL = "http://" + m[1]
			return true
		}
		return false
	})
	p.Key = readKey(t, dir)
	return p
}

// TestSecretValuesNeverLeak drives a daemon process at debug level through every way a secret
// is used (set, resolve at start, change and restart, failures, delete) and checks that the
// value is in no API response, no log line, not in the config file and not in plain text in
// the store.
func TestSecretValuesNeverLeak(t *testing.T) {
	dir := t.TempDir()
	values := []string{"leak-check-value-0a1b2c", "leak-check-value-3d4e5f", "leak-check-header-6a7b8c"}
	fx := fixtureBin(t)
	p := startProxyProcessDebug(t, dir, servers(
		map[string]any{"name": "envuser", "command": fx, "args": []string{"--name", "envuser"}, "quarantined": false,
			"env": map[string]string{"TOKEN": "${secret:LEAK_TOKEN}"}},
		map[string]any{"name": "arguser", "command": fx, "args": []string{"--name", "arguser", "--bogus-flag=${secret:LEAK_TOKEN}"}, "quarantined": false},
		map[string]any{"name": "remote", "url": "http://127.0.0.1:9/mcp", "quarantined": false,
			"headers": map[string]string{"Authorization": "Bearer ${secret:LEAK_HEADER}"}},
	))
	var bodies []string
	get := func(path string) {
		code, body := p.do("GET", path, nil, nil)
		if code/100 != 2 {
			t.Errorf("GET %s: %d %s", path, code, body)
		}
		bodies = append(bodies, string(body))
	}
	for _, v := range values[:2] {
		code, body := p.do("PUT", "/api/v1/secrets/LEAK_TOKEN", map[string]string{"value": v}, nil)
		if code/100 != 2 {
			t.Fatalf("PUT: %d %s", code, body)
		}
		bodies = append(bodies, string(body))
		p.waitState("envuser", 20*time.Second, actors.StateReady)
	}
	code, body := p.do("PUT", "/api/v1/secrets/LEAK_HEADER", map[string]string{"value": values[2]}, nil)
	if code != 201 {
		t.Fatalf("PUT header secret: %d %s", code, body)
	}
	bodies = append(bodies, string(body))
	// The arg user fails (the fixture rejects the flag) and the remote is unreachable: both
	// errors are in the API and the log.
	p.waitState("arguser", 20*time.Second, actors.StateError, actors.StateBackoff)
	p.waitState("remote", 20*time.Second, actors.StateError, actors.StateBackoff)
	for _, path := range []string{"/api/v1/servers", "/api/v1/servers/envuser", "/api/v1/servers/arguser", "/api/v1/servers/remote",
		"/api/v1/config", "/api/v1/secrets", "/api/v1/secrets/LEAK_TOKEN", "/api/v1/status", "/api/v1/info",
		"/api/v1/diagnostics", "/api/v1/doctor", "/api/v1/docker/status", "/api/v1/tools?q=echo"} {
		get(path)
	}
	if code, body := p.do("POST", "/api/v1/servers/envuser/restart", nil, nil); code != 200 {
		t.Fatalf("restart: %d %s", code, body)
	}
	p.waitState("envuser", 20*time.Second, actors.StateReady)
	if code, _ := p.do("DELETE", "/api/v1/secrets/LEAK_TOKEN", nil, nil); code != 204 {
		t.Fatalf("DELETE: %d", code)
	}
	p.waitState("envuser", 20*time.Second, actors.StateError, actors.StateBackoff)
	get("/api/v1/servers/envuser")
	get("/api/v1/diagnostics")
	p.Stop()

	logText := p.Log()
	if !strings.Contains(logText, "level=DEBUG") {
		t.Fatalf("the daemon did not log at debug level:\n%s", logText)
	}
	cfgFile, err := os.ReadFile(filepath.Join(dir, "mcp_config.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		for i, b := range bodies {
			if strings.Contains(b, v) {
				t.Errorf("API response %d contains a secret value: %s", i, b)
			}
		}
		if i := strings.Index(logText, v); i >= 0 {
			t.Errorf("the log contains a secret value: ...%s...", logText[max(0, i-200):min(len(logText), i+50)])
		}
		if strings.Contains(string(cfgFile), v) {
			t.Errorf("the config file contains a secret value")
		}
		_ = filepath.WalkDir(filepath.Join(dir, "db"), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			if data, err := os.ReadFile(path); err == nil && strings.Contains(string(data), v) {
				t.Errorf("store file %s holds a secret value in plain text", path)
			}
			return nil
		})
	}
}
