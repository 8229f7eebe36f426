package test

// End-to-end tests of the command line: the built mcpproxy binary's status, servers, tools,
// sessions, secrets and doctor commands against a daemon process over its Unix socket
// (tables and --json), and what they do when no daemon runs.

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/doctor"
)

// cliResult is one run of the CLI.
type cliResult struct {
	stdout, stderr string
	code           int
}

// runCLI runs `mcpproxy --data-dir dir args...` with stdin and returns its output and exit
// status.
func runCLI(t testing.TB, dir, stdin string, args ...string) cliResult {
	t.Helper()
	cmd := exec.Command(filepath.Join(binaries(t), "mcpproxy"), append([]string{"--data-dir", dir}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	res := cliResult{stdout: out.String(), stderr: errOut.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("mcpproxy %v: %v", args, err)
	}
	return res
}

// cliOK runs the CLI and fails the test unless it exits 0.
func cliOK(t testing.TB, dir string, args ...string) cliResult {
	t.Helper()
	res := runCLI(t, dir, "", args...)
	if res.code != 0 {
		t.Fatalf("mcpproxy %v: exit %d\nstdout: %s\nstderr: %s", args, res.code, res.stdout, res.stderr)
	}
	return res
}

// cliJSON runs the CLI with --json and decodes its output.
func cliJSON(t testing.TB, dir string, out any, args ...string) {
	t.Helper()
	res := cliOK(t, dir, append(args, "--json")...)
	if err := json.Unmarshal([]byte(res.stdout), out); err != nil {
		t.Fatalf("mcpproxy %v --json: %q: %v", args, res.stdout, err)
	}
}

func TestCLIAgainstDaemon(t *testing.T) {
	dir := t.TempDir()
	// t.TempDir makes the directory 0755 under the usual umask; a data dir is private.
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	p := startProxyProcess(t, dir, servers(
		stdioFixture(t, "alpha"),
		map[string]any{"name": "beta", "command": fixtureBin(t), "args": []string{"--name", "beta"}}, // quarantined
	))
	p.waitState("alpha", 20*time.Second, actors.StateReady)

	t.Run("status", func(t *testing.T) {
		var st struct {
			Status  string               `json:"status"`
			Version string               `json:"version"`
			Servers actors.StatusServers `json:"servers"`
		}
		cliJSON(t, dir, &st, "status")
		if st.Status != "running" || st.Servers.Total != 2 || st.Servers.Quarantined != 1 || st.Version == "" {
			t.Fatalf("status --json = %+v", st)
		}
		out := cliOK(t, dir, "status").stdout
		for _, want := range []string{"is running", "servers:   2 total", p.URL[len("http://"):]} {
			if !strings.Contains(out, want) {
				t.Errorf("status output lacks %q:\n%s", want, out)
			}
		}
	})

	t.Run("servers", func(t *testing.T) {
		var list struct {
			Servers []actors.Server `json:"servers"`
		}
		cliJSON(t, dir, &list, "servers", "list")
		if len(list.Servers) != 2 || list.Servers[0].Name != "alpha" || list.Servers[1].Name != "beta" || !list.Servers[1].Quarantined {
			t.Fatalf("servers list --json = %+v", list.Servers)
		}
		table := cliOK(t, dir, "servers", "list").stdout
		if !strings.HasPrefix(table, "NAME") || !strings.Contains(table, "\nalpha ") || !strings.Contains(table, "\nbeta ") {
			t.Errorf("servers list table:\n%s", table)
		}

		var one struct {
			Server actors.Server `json:"server"`
		}
		cliJSON(t, dir, &one, "servers", "quarantine", "alpha")
		if one.Server.Name != "alpha" || !one.Server.Quarantined {
			t.Fatalf("quarantine alpha: %+v", one.Server)
		}
		cliJSON(t, dir, &one, "servers", "unquarantine", "alpha")
		if one.Server.Quarantined {
			t.Fatalf("unquarantine alpha: %+v", one.Server)
		}
		if out := cliOK(t, dir, "servers", "quarantine", "beta", "--off").stdout; !strings.Contains(out, "server beta:") || !strings.Contains(out, "quarantined false") {
			t.Fatalf("quarantine --off beta: %q", out)
		}
		if p.server("beta").Quarantined {
			t.Fatal("beta is still quarantined")
		}

		cliJSON(t, dir, &one, "servers", "disable", "alpha")
		if one.Server.Enabled {
			t.Fatalf("disable alpha: %+v", one.Server)
		}
		p.waitState("alpha", 20*time.Second, actors.StateDisabled)
		res := runCLI(t, dir, "", "servers", "restart", "alpha")
		if res.code != 1 || !strings.Contains(res.stderr, "disabled") || !strings.Contains(res.stderr, "CONFLICT") {
			t.Fatalf("restart of a disabled server: %+v", res)
		}
		cliJSON(t, dir, &one, "servers", "enable", "alpha")
		if !one.Server.Enabled {
			t.Fatalf("enable alpha: %+v", one.Server)
		}
		p.waitState("alpha", 20*time.Second, actors.StateReady)
		cliJSON(t, dir, &one, "servers", "restart", "alpha")
		if one.Server.State != actors.StateConnecting {
			t.Fatalf("restart alpha: state %s, want connecting", one.Server.State)
		}
		p.waitState("alpha", 20*time.Second, actors.StateReady)

		res = runCLI(t, dir, "", "servers", "enable", "no-such-server")
		if res.code != 1 || !strings.Contains(res.stderr, "not found") {
			t.Fatalf("enable of an unknown server: %+v", res)
		}
		if res := runCLI(t, dir, "", "servers", "enable"); res.code == 0 {
			t.Fatalf("enable without a name succeeded: %+v", res)
		}
	})

	t.Run("tools", func(t *testing.T) {
		p.waitState("beta", 20*time.Second, actors.StateReady)
		var hits struct {
			Tools []actors.ToolHit `json:"tools"`
			Total int              `json:"total"`
		}
		cliJSON(t, dir, &hits, "tools", "search", "echo", "back", "--limit", "2")
		if len(hits.Tools) != 2 || hits.Total == 0 || !strings.HasSuffix(hits.Tools[0].Name, ":echo") {
			t.Fatalf("tools search --json = %+v", hits)
		}
		table := cliOK(t, dir, "tools", "search", "echo").stdout
		if !strings.HasPrefix(table, "TOOL") || !strings.Contains(table, "alpha:echo") {
			t.Errorf("tools search table:\n%s", table)
		}
	})

	t.Run("tool trust", func(t *testing.T) {
		if out := cliOK(t, dir, "tools", "review").stdout; !strings.Contains(out, "no tool awaits review") {
			t.Errorf("tools review with nothing to review:\n%s", out)
		}
		c := dialMCP(t, p.URL+"/mcp", p.mcpKey(), "cli-test")
		viaProxy(t, c, "alpha:add_tool", map[string]any{"name": "fresh"})
		waitFor(t, 20*time.Second, "the new tool awaiting review", func() bool { return p.server("alpha").ToolsAwaitingReview == 1 })
		out := cliOK(t, dir, "tools", "review").stdout
		if !strings.Contains(out, "server alpha: 1 of") || !strings.Contains(out, "fresh") || !strings.Contains(out, "pending") {
			t.Errorf("tools review:\n%s", out)
		}
		var review struct {
			Servers []actors.ServerTools `json:"servers"`
		}
		cliJSON(t, dir, &review, "tools", "review")
		if len(review.Servers) != 1 || review.Servers[0].Server != "alpha" || review.Servers[0].AwaitingReview != 1 {
			t.Errorf("tools review --json = %+v", review)
		}
		if res := runCLI(t, dir, "", "tools", "approve", "alpha"); res.code == 0 || !strings.Contains(res.stderr, "--all") {
			t.Errorf("approve without tools: %+v", res)
		}
		if res := runCLI(t, dir, "", "tools", "approve", "alpha", "nope"); res.code != 1 || !strings.Contains(res.stderr, "nope") {
			t.Errorf("approve of an unknown tool: %+v", res)
		}
		if out := cliOK(t, dir, "tools", "approve", "alpha", "fresh").stdout; !strings.Contains(out, "approved: server alpha has 0 tools awaiting review") {
			t.Errorf("tools approve: %q", out)
		}
		if out := cliOK(t, dir, "tools", "disable", "alpha", "echo").stdout; !strings.Contains(out, "disabled") {
			t.Errorf("tools disable: %q", out)
		}
		if res := viaProxy(t, c, "alpha:echo", map[string]any{"text": "x"}); !res.IsError || !strings.Contains(textOf(res), "disabled") {
			t.Errorf("call of a tool disabled by the CLI: %q", textOf(res))
		}
		var one actors.ServerTools
		cliJSON(t, dir, &one, "tools", "enable", "alpha", "echo")
		for _, tool := range one.Tools {
			if tool.Disabled {
				t.Errorf("after tools enable, %s is disabled", tool.Name)
			}
		}
		if out := cliOK(t, dir, "tools", "review", "alpha", "--all").stdout; !strings.Contains(out, "echo") || !strings.Contains(out, "approved") {
			t.Errorf("tools review alpha --all:\n%s", out)
		}
	})

	t.Run("sessions", func(t *testing.T) {
		var s struct {
			Sessions []map[string]any `json:"sessions"`
		}
		cliJSON(t, dir, &s, "sessions", "list")
		if s.Sessions == nil {
			t.Fatalf("sessions list --json has no sessions array")
		}
		if out := cliOK(t, dir, "sessions", "list").stdout; out == "" {
			t.Fatal("sessions list printed nothing")
		}
	})

	t.Run("tokens", func(t *testing.T) {
		out := cliOK(t, dir, "tokens", "create", "cli-agent", "--servers", "alpha,gam*", "--tools", "alpha:echo", "--tools", "alpha:ad?", "--read-only", "--expires", "720h").stdout
		m := regexp.MustCompile(`(?m)^  (mcpa_\S+)$`).FindStringSubmatch(out)
		if m == nil || !strings.Contains(out, "shown only now") || !strings.Contains(out, "read-only") || !strings.Contains(out, "expires:") {
			t.Fatalf("tokens create output:\n%s", out)
		}
		// The token works on /mcp, with its scope.
		c := dialMCP(t, p.URL+"/mcp", map[string]string{"Authorization": "Bearer " + m[1]}, "cli-agent")
		if res := viaProxy(t, c, "alpha:echo", map[string]any{"text": "cli"}); textOf(res) != "cli" {
			t.Errorf("the CLI's token calling alpha:echo: %q", textOf(res))
		}
		if res := viaProxy(t, c, "alpha:pid", nil); !res.IsError {
			t.Error("the CLI's token called a tool outside its scope")
		}
		var list struct {
			Tokens []actors.AgentToken `json:"tokens"`
		}
		cliJSON(t, dir, &list, "tokens", "list")
		if len(list.Tokens) != 1 || tokenScopeString(list.Tokens[0]) != "alpha,gam* alpha:echo,alpha:ad? true" || list.Tokens[0].ExpiresAt == nil ||
			list.Tokens[0].ExpiresAt.Before(time.Now().Add(719*time.Hour)) {
			t.Fatalf("tokens list --json = %+v", list.Tokens)
		}
		table := cliOK(t, dir, "tokens", "list").stdout
		if !strings.HasPrefix(table, "NAME") || !strings.Contains(table, "\ncli-agent ") || strings.Contains(table, m[1]) {
			t.Errorf("tokens list table:\n%s", table)
		}
		if res := runCLI(t, dir, "", "tokens", "create", "cli-agent", "--servers", "alpha"); res.code == 0 || !strings.Contains(res.stderr, "CONFLICT") {
			t.Errorf("creating a duplicate: %+v", res)
		}
		if res := runCLI(t, dir, "", "tokens", "create", "other"); res.code == 0 || !strings.Contains(res.stderr, "servers") {
			t.Errorf("creating without --servers: %+v", res)
		}
		if out := cliOK(t, dir, "tokens", "revoke", "cli-agent").stdout; !strings.Contains(out, "revoked") {
			t.Errorf("tokens revoke: %q", out)
		}
		if res := runCLI(t, dir, "", "tokens", "revoke", "cli-agent"); res.code == 0 || !strings.Contains(res.stderr, "NOT_FOUND") {
			t.Errorf("revoking twice: %+v", res)
		}
		if out := cliOK(t, dir, "tokens", "list").stdout; !strings.Contains(out, "no agent tokens") {
			t.Errorf("tokens list after revoke: %q", out)
		}
	})

	t.Run("secrets", func(t *testing.T) {
		const value = "cli-secret-value-2e2e"
		res := runCLI(t, dir, value+"\n", "secrets", "set", "CLI_TOKEN")
		if res.code != 0 || !strings.Contains(res.stdout, "secret CLI_TOKEN stored") {
			t.Fatalf("secrets set: %+v", res)
		}
		var list struct {
			Secrets []secretMeta `json:"secrets"`
		}
		cliJSON(t, dir, &list, "secrets", "list")
		if len(list.Secrets) != 1 || list.Secrets[0].Name != "CLI_TOKEN" {
			t.Fatalf("secrets list --json = %+v", list)
		}
		table := cliOK(t, dir, "secrets", "list")
		if !strings.Contains(table.stdout, "CLI_TOKEN") || strings.Contains(table.stdout, value) {
			t.Fatalf("secrets list table: %q", table.stdout)
		}
		if code, body := p.do("GET", "/api/v1/secrets/CLI_TOKEN", nil, nil); code != 200 || strings.Contains(string(body), value) {
			t.Fatalf("GET secret: %d %s", code, body)
		}
		// A value is never taken from the command line.
		if res := runCLI(t, dir, "", "secrets", "set", "ARGV_TOKEN", "value-on-argv"); res.code == 0 {
			t.Fatalf("secrets set accepted a value argument: %+v", res)
		}
		if res := runCLI(t, dir, "", "secrets", "set", "EMPTY_TOKEN"); res.code != 1 || !strings.Contains(res.stderr, "empty value") {
			t.Fatalf("secrets set with empty stdin: %+v", res)
		}
		if code, _ := p.do("GET", "/api/v1/secrets/ARGV_TOKEN", nil, nil); code != 404 {
			t.Fatal("a secret was stored from argv")
		}
		if res := runCLI(t, dir, "", "secrets", "delete", "CLI_TOKEN"); res.code != 0 || !strings.Contains(res.stdout, "deleted") {
			t.Fatalf("secrets delete: %+v", res)
		}
		if res := runCLI(t, dir, "", "secrets", "delete", "CLI_TOKEN"); res.code != 1 || !strings.Contains(res.stderr, "not found") {
			t.Fatalf("secrets delete of a missing secret: %+v", res)
		}
	})

	t.Run("doctor", func(t *testing.T) {
		var rep doctor.Report
		cliJSON(t, dir, &rep, "doctor")
		if !rep.Healthy || len(rep.Checks) == 0 {
			t.Fatalf("doctor --json on a good setup: %+v", rep)
		}
		if out := cliOK(t, dir, "doctor").stdout; !strings.Contains(out, "healthy: 0 failed") {
			t.Errorf("doctor output:\n%s", out)
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		defer os.Chmod(dir, 0o700)
		res := runCLI(t, dir, "", "doctor")
		if res.code != 1 || !strings.Contains(res.stdout, "FAIL  data_dir") || !strings.Contains(res.stdout, "chmod 700") {
			t.Fatalf("doctor with a bad permission: %+v", res)
		}
		res = runCLI(t, dir, "", "doctor", "--json")
		if res.code != 1 || json.Unmarshal([]byte(res.stdout), &rep) != nil || rep.Healthy {
			t.Fatalf("doctor --json with a bad permission: %+v", res)
		}
	})
}

func TestCLIWithoutDaemon(t *testing.T) {
	dir := t.TempDir()
	writeConfig(t, dir, servers(
		withEnv(stdioFixture(t, "needs"), map[string]string{"TOKEN": "${secret:EARLY_TOKEN}"}),
		map[string]any{"name": "nocmd", "command": "no-such-mcp-command-for-cli", "quarantined": false},
	))

	res := runCLI(t, dir, "", "status")
	if res.code != 1 || !strings.Contains(res.stderr, "no mcpproxy daemon is running") || !strings.Contains(res.stderr, "mcpproxy serve") {
		t.Fatalf("status without a daemon: %+v", res)
	}
	if res := runCLI(t, dir, "", "servers", "list"); res.code != 1 || !strings.Contains(res.stderr, "no mcpproxy daemon is running") {
		t.Fatalf("servers list without a daemon: %+v", res)
	}

	res = runCLI(t, dir, "", "doctor", "--json")
	var rep doctor.Report
	if res.code != 1 || !strings.Contains(res.stderr, "no daemon is running") || json.Unmarshal([]byte(res.stdout), &rep) != nil {
		t.Fatalf("doctor without a daemon: %+v", res)
	}
	if !hasCheck(rep, doctor.CheckDaemon, doctor.Warn, "no daemon", "mcpproxy serve") ||
		!hasCheck(rep, doctor.CheckCommands, doctor.Fail, "no-such-mcp-command-for-cli", "install") ||
		!hasCheck(rep, doctor.CheckReferences, doctor.Fail, "${secret:EARLY_TOKEN}", "mcpproxy secrets set EARLY_TOKEN") {
		t.Fatalf("doctor without a daemon: %+v", rep.Checks)
	}

	// Secrets can be set before the first start; the daemon then finds them.
	res = runCLI(t, dir, "early-value-5c5c\n", "secrets", "set", "EARLY_TOKEN")
	if res.code != 0 || !strings.Contains(res.stderr, "no daemon is running") {
		t.Fatalf("secrets set without a daemon: %+v", res)
	}
	var list struct {
		Secrets []secretMeta `json:"secrets"`
	}
	cliJSON(t, dir, &list, "secrets", "list")
	if len(list.Secrets) != 1 || list.Secrets[0].Name != "EARLY_TOKEN" || len(list.Secrets[0].UsedBy) != 1 || list.Secrets[0].UsedBy[0] != "needs" {
		t.Fatalf("secrets list without a daemon: %+v", list)
	}
	res = runCLI(t, dir, "", "doctor", "--json")
	if json.Unmarshal([]byte(res.stdout), &rep) != nil || !hasCheck(rep, doctor.CheckReferences, doctor.OK, "resolve", "") {
		t.Fatalf("doctor after setting the secret: %+v", res)
	}

	p := startProxyIn(t, dir, nil)
	p.waitState("needs", 20*time.Second, actors.StateReady)
	if out := cliOK(t, dir, "servers", "list").stdout; !strings.Contains(out, "needs") || !strings.Contains(out, "ready") {
		t.Fatalf("servers list with the daemon up:\n%s", out)
	}
	// The value is stdin minus its trailing newline.
	if got := envVars(callText(t, p, "needs:env", map[string]any{}))["TOKEN"]; got != "early-value-5c5c" {
		t.Fatalf("TOKEN = %q, want the value piped to secrets set", got)
	}
}

// tokenScopeString is a token's servers, tools and read_only in one line.
func tokenScopeString(t actors.AgentToken) string {
	return strings.Join(t.Servers, ",") + " " + strings.Join(t.Tools, ",") + " " + strconv.FormatBool(t.ReadOnly)
}
