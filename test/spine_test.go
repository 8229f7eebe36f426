package test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/actors"
)

// directToolCount lists the fixture's tools without the proxy, the truth tools_count must match.
func directToolCount(t *testing.T, args ...string) int {
	t.Helper()
	c, err := client.NewStdioMCPClient(fixtureBin(t), nil, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := c.Initialize(ctx, mcp.InitializeRequest{}); err != nil {
		t.Fatal(err)
	}
	res, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return len(res.Tools)
}

// TestUpstreamsOfEveryTransportReachReady starts the fixture over stdio, streamable HTTP and
// SSE, server-everything over stdio, and one server whose command does not exist.
func TestUpstreamsOfEveryTransportReachReady(t *testing.T) {
	httpURL, _ := startFixtureHTTP(t, "http")
	sseURL, _ := startFixtureHTTP(t, "sse")
	node, args := everythingCmd(t)
	p := startProxy(t, servers(
		stdioFixture(t, "fx-stdio"),
		map[string]any{"name": "fx-http", "url": httpURL, "quarantined": false},
		map[string]any{"name": "fx-sse", "url": sseURL, "protocol": "sse", "quarantined": false},
		map[string]any{"name": "everything", "command": node, "args": args, "quarantined": false},
		map[string]any{"name": "missing", "command": "/nonexistent/mcp-server-nope"},
	))
	want := directToolCount(t)
	for _, name := range []string{"fx-stdio", "fx-http", "fx-sse"} {
		s := p.waitState(name, 30*time.Second, actors.StateReady)
		if s.ToolsCount != want || !s.Connected || s.ConnectedAt == nil {
			t.Errorf("%s: tools_count %d connected %v connected_at %v, want %d tools", name, s.ToolsCount, s.Connected, s.ConnectedAt, want)
		}
	}
	ev := p.waitState("everything", 60*time.Second, actors.StateReady)
	var tools actors.ServerTools
	p.do("GET", "/api/v1/servers/everything/tools", nil, &tools)
	if ev.ToolsCount != len(tools.Tools) || !hasTool(tools.Tools, "everything:echo") || !hasTool(tools.Tools, "everything:get-sum") {
		t.Errorf("everything: tools_count %d, listed %d, want echo and get-sum", ev.ToolsCount, len(tools.Tools))
	}

	var first actors.Server
	waitFor(t, 20*time.Second, "missing to retry twice", func() bool {
		first = p.server("missing")
		return first.RetryCount >= 2
	})
	if first.State != actors.StateError && first.State != actors.StateBackoff && first.State != actors.StateConnecting {
		t.Errorf("missing: state %s", first.State)
	}
	if !strings.Contains(first.LastError, "not found") || !strings.Contains(first.LastError, "mcp-server-nope") {
		t.Errorf("missing: last_error %q does not say what is wrong", first.LastError)
	}
	waitFor(t, 20*time.Second, "retry_count to grow", func() bool { return p.server("missing").RetryCount > first.RetryCount })

	var st struct {
		Servers actors.StatusServers `json:"servers"`
		Tools   actors.StatusTools   `json:"tools"`
	}
	p.do("GET", "/api/v1/status", nil, &st)
	if st.Servers.Total != 5 || st.Servers.Connected != 4 || st.Servers.Errored != 1 || st.Servers.Quarantined != 1 {
		t.Errorf("status servers = %+v", st.Servers)
	}
	if st.Tools.Total != 3*want+ev.ToolsCount {
		t.Errorf("status tools.total = %d, want %d", st.Tools.Total, 3*want+ev.ToolsCount)
	}
}

func hasTool(tools []actors.ServerTool, name string) bool {
	for _, t := range tools {
		if t.Name == name {
			return true
		}
	}
	return false
}

// marker makes a stdio fixture's command line unique to one test, so /proc can find it.
func marker(t *testing.T) string {
	return fmt.Sprintf("mk%d", time.Now().UnixNano())
}

// TestKilledStdioUpstreamComesBack kills a stdio upstream with SIGKILL; it must return to
// ready by itself with a new process.
func TestKilledStdioUpstreamComesBack(t *testing.T) {
	mk := marker(t)
	p := startProxy(t, servers(stdioFixture(t, "fx", "--name", mk)))
	p.waitState("fx", 20*time.Second, actors.StateReady)
	pids := processesWithArg(mk)
	if len(pids) != 1 {
		t.Fatalf("want one fixture process, got %v", pids)
	}
	if err := syscall.Kill(pids[0], syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	lastErr := ""
	waitFor(t, 20*time.Second, "fx to notice the kill", func() bool {
		lastErr = p.server("fx").LastError
		return lastErr != ""
	})
	if !strings.Contains(lastErr, "signal: killed") {
		t.Errorf("last_error %q does not say the process was killed", lastErr)
	}
	p.waitState("fx", 30*time.Second, actors.StateReady)
	now := processesWithArg(mk)
	if len(now) != 1 || now[0] == pids[0] {
		t.Fatalf("after recovery want one new process, got %v (killed %d)", now, pids[0])
	}
}

// TestFlagsRoundTripAndPersist disables, enables and quarantines, and checks that the flags
// survive a daemon restart on the same data dir.
func TestFlagsRoundTripAndPersist(t *testing.T) {
	dir := t.TempDir()
	mk := marker(t)
	p := startProxyIn(t, dir, servers(stdioFixture(t, "a", "--name", mk), stdioFixture(t, "b", "--name", mk)))
	p.waitState("a", 20*time.Second, actors.StateReady)
	p.waitState("b", 20*time.Second, actors.StateReady)

	var out struct {
		Server actors.Server `json:"server"`
	}
	if code, body := p.do("POST", "/api/v1/servers/a/disable", nil, &out); code != 200 || out.Server.Enabled {
		t.Fatalf("disable: %d %s", code, body)
	}
	p.waitState("a", 10*time.Second, actors.StateDisabled)
	if n := len(processesWithArg(mk)); n != 1 {
		t.Errorf("after disabling a, %d fixture processes run, want 1", n)
	}
	// Idempotent.
	if code, _ := p.do("POST", "/api/v1/servers/a/disable", nil, &out); code != 200 || out.Server.State != actors.StateDisabled {
		t.Errorf("second disable: %d %+v", code, out.Server)
	}
	if code, body := p.do("POST", "/api/v1/servers/b/quarantine", map[string]bool{"quarantined": true}, &out); code != 200 || !out.Server.Quarantined {
		t.Fatalf("quarantine: %d %s", code, body)
	}
	var hits struct {
		Tools []actors.ToolHit `json:"tools"`
		Total int              `json:"total"`
	}
	p.do("GET", "/api/v1/tools?q=b:echo", nil, &hits)
	if hits.Total != 0 || len(hits.Tools) != 0 {
		t.Errorf("quarantined and disabled servers' tools are searchable: %+v", hits)
	}
	p.Stop()

	p2 := startProxyIn(t, dir, nil)
	if s := p2.server("a"); s.Enabled || s.State != actors.StateDisabled {
		t.Errorf("after restart a = %+v, want disabled", s)
	}
	if s := p2.server("b"); !s.Quarantined {
		t.Errorf("after restart b is not quarantined")
	}
	p2.waitState("b", 20*time.Second, actors.StateReady)
	p2.do("POST", "/api/v1/servers/a/enable", nil, &out)
	p2.do("POST", "/api/v1/servers/b/quarantine", map[string]bool{"quarantined": false}, &out)
	p2.waitState("a", 20*time.Second, actors.StateReady)
	p2.do("GET", "/api/v1/tools?q=echo&limit=10", nil, &hits)
	if !hitNamed(hits.Tools, "a:echo") || !hitNamed(hits.Tools, "b:echo") {
		t.Errorf("after enable and approve, search lacks a:echo or b:echo: %+v", hits.Tools)
	}
	p2.Stop()
	p3 := startProxyIn(t, dir, nil)
	if s := p3.server("a"); !s.Enabled {
		t.Errorf("enable did not persist")
	}
	if s := p3.server("b"); s.Quarantined {
		t.Errorf("unquarantine did not persist")
	}
}

func hitNamed(hits []actors.ToolHit, name string) bool {
	for _, h := range hits {
		if h.Name == name {
			return true
		}
	}
	return false
}

// TestBulkOperationsCount checks the counts of every bulk operation.
func TestBulkOperationsCount(t *testing.T) {
	off := stdioFixture(t, "c")
	off["enabled"] = false
	p := startProxy(t, servers(stdioFixture(t, "a"), stdioFixture(t, "b"), off))
	p.waitState("a", 20*time.Second, actors.StateReady)
	p.waitState("b", 20*time.Second, actors.StateReady)

	check := func(op string, want actors.BulkResult) {
		t.Helper()
		var got actors.BulkResult
		if code, body := p.do("POST", "/api/v1/servers/"+op, nil, &got); code != 200 {
			t.Fatalf("%s: %d %s", op, code, body)
		}
		if got.Total != want.Total || got.Successful != want.Successful || got.Skipped != want.Skipped || got.Failed != want.Failed {
			t.Errorf("%s = %+v, want %+v", op, got, want)
		}
	}
	check("reconnect", actors.BulkResult{Total: 3, Skipped: 3})
	check("restart_all", actors.BulkResult{Total: 3, Successful: 2, Skipped: 1})
	p.waitState("a", 20*time.Second, actors.StateReady)
	p.waitState("b", 20*time.Second, actors.StateReady)
	check("enable_all", actors.BulkResult{Total: 3, Successful: 1, Skipped: 2})
	p.waitState("c", 20*time.Second, actors.StateReady)
	check("disable_all", actors.BulkResult{Total: 3, Successful: 3})
	for _, n := range []string{"a", "b", "c"} {
		p.waitState(n, 20*time.Second, actors.StateDisabled)
	}
	check("restart_all", actors.BulkResult{Total: 3, Skipped: 3})
}

// TestErrorsAndGuards covers the error envelope and the guards: 409, 404, 400, 401, 403,
// 405, 413, and the Unix socket without a key.
func TestErrorsAndGuards(t *testing.T) {
	off := stdioFixture(t, "off")
	off["enabled"] = false
	p := startProxy(t, servers(off))
	type envelope struct {
		Error string `json:"error"`
		Code  string `json:"code"`
	}
	cases := []struct {
		name, method, path string
		body               any
		headers            map[string]string
		status             int
		code               string
	}{
		{"restart disabled", "POST", "/api/v1/servers/off/restart", nil, nil, 409, "CONFLICT"},
		{"unknown server", "GET", "/api/v1/servers/nope", nil, nil, 404, "NOT_FOUND"},
		{"unknown server action", "POST", "/api/v1/servers/nope/enable", nil, nil, 404, "NOT_FOUND"},
		{"bad body", "POST", "/api/v1/servers/off/quarantine", "{bad", nil, 400, "INVALID_ARGUMENT"},
		{"missing body", "POST", "/api/v1/servers/off/quarantine", nil, nil, 400, "INVALID_ARGUMENT"},
		{"wrong type", "POST", "/api/v1/servers/off/quarantine", `{"quarantined":"yes"}`, nil, 400, "INVALID_ARGUMENT"},
		{"bad limit", "GET", "/api/v1/tools?limit=0", nil, nil, 400, "INVALID_ARGUMENT"},
		{"huge limit", "GET", "/api/v1/tools?limit=1001", nil, nil, 400, "INVALID_ARGUMENT"},
		{"no key", "GET", "/api/v1/servers", nil, map[string]string{}, 401, "UNAUTHORIZED"},
		{"wrong key", "GET", "/api/v1/servers", nil, map[string]string{"X-API-Key": "nope"}, 401, "UNAUTHORIZED"},
		{"wrong host", "GET", "/api/v1/servers", nil, map[string]string{"X-API-Key": p.Key, "Host": "evil.example:8080"}, 403, "FORBIDDEN"},
		{"cross-site origin", "GET", "/api/v1/servers", nil, map[string]string{"X-API-Key": p.Key, "Origin": "http://evil.example"}, 403, "FORBIDDEN"},
		{"unknown route", "GET", "/api/v1/nope", nil, nil, 404, "NOT_FOUND"},
		{"wrong method", "PUT", "/api/v1/servers", nil, nil, 405, "METHOD_NOT_ALLOWED"},
		{"too large", "POST", "/api/v1/servers/off/quarantine", `{"quarantined":true,"x":"` + strings.Repeat("a", 1<<20) + `"}`, nil, 413, "PAYLOAD_TOO_LARGE"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := c.headers
			if h == nil {
				h = map[string]string{"X-API-Key": p.Key}
			}
			var e envelope
			code, body := p.doWith(c.method, c.path, c.body, &e, h)
			if code != c.status || e.Code != c.code || e.Error == "" {
				t.Errorf("%s %s = %d %s, want %d %s", c.method, c.path, code, body, c.status, c.code)
			}
			if strings.Contains(string(body), p.Key) {
				t.Errorf("response contains the API key")
			}
		})
	}
	for _, h := range []map[string]string{{"Authorization": "Bearer " + p.Key}, {}} {
		path := "/api/v1/status"
		if len(h) == 0 {
			path += "?apikey=" + p.Key
		}
		if code, body := p.doWith("GET", path, nil, nil, h); code != 200 {
			t.Errorf("key by %v: %d %s", h, code, body)
		}
	}
	if code, _ := p.doWith("GET", "/healthz", nil, nil, map[string]string{}); code != 200 {
		t.Errorf("healthz without a key: %d", code)
	}
	resp, err := p.socketClient().Get("http://mcpproxy/api/v1/servers")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("socket without key: %d", resp.StatusCode)
	}
	st, err := os.Stat(p.Socket)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("socket mode: %v %v", st.Mode(), err)
	}
	if st, err := os.Stat(p.DataDir); err != nil || st.Mode().Perm()&0o077 != 0 {
		t.Errorf("data dir mode: %v %v", st.Mode(), err)
	}
}

// TestNoUpstreamSurvivesSIGTERM stops the daemon binary with SIGTERM and checks /proc for
// any fixture process left behind.
func TestNoUpstreamSurvivesSIGTERM(t *testing.T) {
	mk := marker(t)
	dir := t.TempDir()
	p := startProxyProcess(t, dir, servers(stdioFixture(t, "a", "--name", mk), stdioFixture(t, "b", "--name", mk), stdioFixture(t, "c", "--name", mk)))
	for _, n := range []string{"a", "b", "c"} {
		p.waitState(n, 30*time.Second, actors.StateReady)
	}
	if n := len(processesWithArg(mk)); n != 3 {
		t.Fatalf("%d fixture processes, want 3", n)
	}
	p.Stop()
	if code := p.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("daemon exit status %d after SIGTERM\n%s", code, p.Log())
	}
	if left := processesWithArg(mk); len(left) != 0 {
		t.Fatalf("processes left after SIGTERM: %v", left)
	}
	if _, err := os.Stat(filepath.Join(dir, "mcpproxy.sock")); !os.IsNotExist(err) {
		t.Errorf("socket left behind: %v", err)
	}
}

// TestNoUpstreamSurvivesKill9 kills the daemon itself with SIGKILL: Pdeathsig must take the
// children down with it.
func TestNoUpstreamSurvivesKill9(t *testing.T) {
	mk := marker(t)
	p := startProxyProcess(t, t.TempDir(), servers(stdioFixture(t, "a", "--name", mk), stdioFixture(t, "b", "--name", mk)))
	p.waitState("a", 30*time.Second, actors.StateReady)
	p.waitState("b", 30*time.Second, actors.StateReady)
	if err := p.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = p.Cmd.Wait()
	waitFor(t, 10*time.Second, "children to die with the daemon", func() bool { return len(processesWithArg(mk)) == 0 })
}

// TestUpstreamSeesOnlyItsConfiguredEnvironment checks with the fixture's env tool and
// server-everything's get-env that neither the API key nor other parent variables reach an
// upstream, while the variables its config names do.
func TestUpstreamSeesOnlyItsConfiguredEnvironment(t *testing.T) {
	t.Setenv("MCPPROXY_API_KEY", "parent-key-must-not-leak-0123456789")
	t.Setenv("PARENT_ONLY_SECRET", "parent-secret-value")
	fx := stdioFixture(t, "fx")
	fx["env"] = map[string]string{"CONFIGURED_VAR": "configured-value"}
	node, args := everythingCmd(t)
	p := startProxy(t, servers(fx, map[string]any{"name": "everything", "command": node, "args": args, "quarantined": false,
		"env": map[string]string{"CONFIGURED_VAR": "configured-value"}}))
	p.waitState("fx", 20*time.Second, actors.StateReady)
	p.waitState("everything", 60*time.Second, actors.StateReady)
	for _, tool := range []string{"fx:env", "everything:get-env"} {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		res, err := p.D.Client.CallTool(ctx, tool, map[string]any{}, nil, 0, nil)
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", tool, err)
		}
		text := ""
		for _, c := range res.Content {
			if tc, ok := mcp.AsTextContent(c); ok {
				text += tc.Text
			}
		}
		for _, bad := range []string{"parent-key-must-not-leak", "PARENT_ONLY_SECRET", "MCPPROXY_API_KEY", p.Key} {
			if strings.Contains(text, bad) {
				t.Errorf("%s: upstream sees %q", tool, bad)
			}
		}
		if !strings.Contains(text, "configured-value") || !strings.Contains(text, "PATH") {
			t.Errorf("%s: configured variable or PATH missing:\n%s", tool, text)
		}
	}
}

// TestInvalidConfigExitsTwo starts the binary on a config with an unknown field: it must exit
// with status 2, name the field, and leave the file as it was.
func TestInvalidConfigExitsTwo(t *testing.T) {
	dir := t.TempDir()
	bad := `{"mcpServers":[{"name":"a","comand":"x"}]}`
	path := writeConfig(t, dir, bad)
	cmd := execCommand(filepath.Join(binaries(t), "mcpproxy"), "serve", "--data-dir", dir, "--listen", "127.0.0.1:0")
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 2 {
		t.Fatalf("exit status %d (%v), want 2\n%s", code, err, out)
	}
	if !strings.Contains(string(out), "mcpServers[0].comand") {
		t.Errorf("message does not name the field:\n%s", out)
	}
	if data, _ := os.ReadFile(path); string(data) != bad {
		t.Errorf("config file was changed:\n%s", data)
	}
}

// TestGeneratedKeyPrintedOnce checks that the first start generates, saves and prints the
// key with the dashboard URL, and the second start prints nothing of it.
func TestGeneratedKeyPrintedOnce(t *testing.T) {
	dir := t.TempDir()
	p := startProxyProcess(t, dir, nil)
	if len(p.Key) != 64 {
		t.Fatalf("generated key %q is not 32 bytes of hex", p.Key)
	}
	waitFor(t, 5*time.Second, "the key message", func() bool { return strings.Contains(p.Log(), "/?apikey="+p.Key) })
	p.Stop()
	p2 := startProxyProcess(t, dir, nil)
	if p2.Key != p.Key {
		t.Errorf("key changed across restarts")
	}
	if code, _ := p2.do("GET", "/api/v1/status", nil, nil); code != 200 {
		t.Errorf("status with the saved key: %d", code)
	}
	if strings.Contains(p2.Log(), p.Key) {
		t.Errorf("second start printed the key:\n%s", p2.Log())
	}
}

// TestServerListFollowsChanges guards the cached JSON of GET /api/v1/servers: every change
// must show in the list, not only in the single-server route.
func TestServerListFollowsChanges(t *testing.T) {
	p := startProxy(t, servers(stdioFixture(t, "a")))
	list := func() actors.Server {
		var out struct {
			Servers []actors.Server `json:"servers"`
		}
		if code, body := p.do("GET", "/api/v1/servers", nil, &out); code != 200 || len(out.Servers) != 1 {
			t.Fatalf("GET servers: %d %s", code, body)
		}
		return out.Servers[0]
	}
	waitFor(t, 20*time.Second, "a ready in the list", func() bool { return list().State == actors.StateReady })
	first := list()
	p.do("POST", "/api/v1/servers/a/disable", nil, nil)
	waitFor(t, 20*time.Second, "a disabled in the list", func() bool { return list().State == actors.StateDisabled })
	p.do("POST", "/api/v1/servers/a/quarantine", map[string]bool{"quarantined": true}, nil)
	if s := list(); !s.Quarantined || s.Enabled || first.Quarantined {
		t.Errorf("list after quarantine = %+v", s)
	}
}

// TestNoGrandchildSurvivesKill9 runs the fixture behind a shell wrapper (as npx or uvx do):
// after kill -9 of the daemon, the wrapper and the fixture it started must both be gone.
func TestNoGrandchildSurvivesKill9(t *testing.T) {
	mk := marker(t)
	wrapped := map[string]any{"name": "wrapped", "command": "/bin/sh", "quarantined": false,
		// A background loop that ignores stdin stands for the grandchildren npx leaves.
		"args": []string{"-c", "sh -c 'while :; do sleep 1; done' " + mk + " & exec " + fixtureBin(t) + " --name " + mk}}
	p := startProxyProcess(t, t.TempDir(), servers(wrapped))
	p.waitState("wrapped", 30*time.Second, actors.StateReady)
	if n := len(processesWithArg(mk)); n < 2 {
		t.Fatalf("want the loop and the fixture running, found %d processes", n)
	}
	if err := p.Cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = p.Cmd.Wait()
	waitFor(t, 10*time.Second, "the wrapper and its child to die with the daemon", func() bool { return len(processesWithArg(mk)) == 0 })
}

// TestDisableWhileConnectingLeavesNoProcess disables a server whose start is slow (a shell
// that waits before it becomes the fixture): the process must not outlive the disable, even
// though the connect in flight succeeds after the server's actor is gone.
func TestDisableWhileConnectingLeavesNoProcess(t *testing.T) {
	mk := marker(t)
	slow := map[string]any{"name": "slow", "command": "/bin/sh", "quarantined": false,
		"args": []string{"-c", "sleep 1.5; exec " + fixtureBin(t) + " --name " + mk, mk}}
	p := startProxy(t, servers(slow))
	waitFor(t, 10*time.Second, "the slow server's process", func() bool { return len(processesWithArg(mk)) > 0 })
	if s := p.server("slow"); s.State != actors.StateConnecting {
		t.Fatalf("state %s, want connecting while the shell waits", s.State)
	}
	p.do("POST", "/api/v1/servers/slow/disable", nil, nil)
	p.waitState("slow", 10*time.Second, actors.StateDisabled)
	waitFor(t, 10*time.Second, "no process of the disabled server", func() bool { return len(processesWithArg(mk)) == 0 })
}

// TestRemoteUpstreamGoneIsNoticed stops a streamable-HTTP upstream: no process exit or broken
// stream tells the proxy, so its health check must move the server out of ready.
func TestRemoteUpstreamGoneIsNoticed(t *testing.T) {
	url, cmd := startFixtureHTTP(t, "http")
	p := startProxy(t, servers(map[string]any{"name": "remote", "url": url, "quarantined": false}))
	p.waitState("remote", 20*time.Second, actors.StateReady)
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	s := p.waitState("remote", 20*time.Second, actors.StateError, actors.StateBackoff, actors.StateConnecting)
	waitFor(t, 20*time.Second, "a last_error", func() bool { s = p.server("remote"); return s.LastError != "" })
	if s.Connected {
		t.Errorf("remote still connected after its server went away: %+v", s)
	}
}
