package test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/config"
)

type serverAnswer struct {
	Server actors.Server `json:"server"`
}

// TestManageServersRoundTrip adds, patches and deletes a server over REST: each change is
// in the file, survives a restart, publishes servers.changed with its reason, and leaves
// the other server's process alone.
func TestManageServersRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	p := startProxyIn(t, dir, servers(stdioFixture(t, "keep")))
	p.waitState("keep", 20*time.Second, actors.StateReady)
	keepPID := serverPID(t, p, "keep")
	s := openSSE(t, p, "/events", keyHeader(p))
	defer s.Close()

	entry := map[string]any{"name": "added", "command": fixtureBin(t), "args": []string{"--name", "added"}}
	var got serverAnswer
	if code, body := p.do("POST", "/api/v1/servers", entry, &got); code != 201 {
		t.Fatalf("POST /api/v1/servers: %d %s", code, body)
	}
	if got.Server.Name != "added" || !got.Server.Quarantined {
		t.Errorf("added server %+v, want quarantined", got.Server)
	}
	if code, body := p.do("POST", "/api/v1/servers", entry, nil); code != 409 || !strings.Contains(string(body), "CONFLICT") {
		t.Errorf("duplicate POST: %d %s, want 409 CONFLICT", code, body)
	}
	p.waitState("added", 20*time.Second, actors.StateReady)
	addedPID := serverPID(t, p, "added")
	if got := p.namesOnDisk(); !slices.Equal(got, []string{"keep", "added"}) {
		t.Errorf("file has %v after add", got)
	}

	// An explicit "quarantined": false is kept.
	open := map[string]any{"name": "open", "command": fixtureBin(t), "args": []string{"--name", "open"}, "quarantined": false}
	if code, body := p.do("POST", "/api/v1/servers", open, &got); code != 201 || got.Server.Quarantined {
		t.Errorf("POST quarantined:false: %d %s", code, body)
	}

	patch := map[string]any{"env": map[string]string{"PATCHED": "yes"}}
	if code, body := p.do("PATCH", "/api/v1/servers/added", patch, &got); code != 200 || got.Server.Name != "added" {
		t.Fatalf("PATCH: %d %s", code, body)
	}
	if code, body := p.do("PATCH", "/api/v1/servers/nosuch", patch, nil); code != 404 {
		t.Errorf("PATCH unknown: %d %s, want 404", code, body)
	}
	p.waitState("added", 20*time.Second, actors.StateReady)
	waitFor(t, 10*time.Second, "the patched server's new process", func() bool {
		return serverPID(t, p, "added") != addedPID
	})
	if got := serverPID(t, p, "keep"); got != keepPID {
		t.Errorf("keep's process changed on add/patch: %d -> %d", keepPID, got)
	}

	evs := s.waitEvents(10*time.Second, "added and updated", func(evs []sseEvent) bool {
		return hasReason(t, evs, "added", actors.ReasonAdded) && hasReason(t, evs, "added", actors.ReasonUpdated)
	})
	if hasReason(t, evs, "keep", actors.ReasonUpdated) || hasReason(t, evs, "keep", actors.ReasonRestart) {
		t.Errorf("keep was touched: %s", describeEvents(evs))
	}

	// Persisted: a restart on the same data dir has the entry with its patch.
	p.Stop()
	p = startProxyIn(t, dir, nil)
	cfg, errs := config.Parse(p.readConfigFile())
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	sc, ok := cfg.Server("added")
	if !ok || sc.Env["PATCHED"] != "yes" || !sc.IsQuarantined() {
		t.Fatalf("after restart added = %+v (found %v)", sc, ok)
	}
	p.waitState("added", 20*time.Second, actors.StateReady)
	p.waitState("keep", 20*time.Second, actors.StateReady)
	keepPID, addedPID = serverPID(t, p, "keep"), serverPID(t, p, "added")
	s2 := openSSE(t, p, "/events", keyHeader(p))
	defer s2.Close()

	if code, body := p.do("DELETE", "/api/v1/servers/added", nil, &got); code != 200 || got.Server.Name != "added" {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	// The answer comes after the process is gone.
	if processAlive(addedPID) {
		t.Errorf("added's process %d still runs after DELETE answered", addedPID)
	}
	if code, _ := p.do("GET", "/api/v1/servers/added", nil, nil); code != 404 {
		t.Errorf("GET removed server: %d, want 404", code)
	}
	if code, _ := p.do("DELETE", "/api/v1/servers/added", nil, nil); code != 404 {
		t.Errorf("second DELETE: %d, want 404", code)
	}
	if got := p.namesOnDisk(); !slices.Equal(got, []string{"keep", "open"}) {
		t.Errorf("file has %v after delete", got)
	}
	if got := serverPID(t, p, "keep"); got != keepPID {
		t.Errorf("keep's process changed on delete: %d -> %d", keepPID, got)
	}
	s2.waitEvents(10*time.Second, "removed", func(evs []sseEvent) bool { return hasReason(t, evs, "added", actors.ReasonRemoved) })
}

func hasReason(t testing.TB, evs []sseEvent, server, reason string) bool {
	for _, e := range evs {
		if c, ok := decodeChanged(t, e); ok && c.Server.Name == server && c.Reason == reason {
			return true
		}
	}
	return false
}

// TestManageServersBadEntries: entries that do not validate are 400 with the field named,
// and change nothing.
func TestManageServersBadEntries(t *testing.T) {
	p := startProxy(t, servers(stdioFixture(t, "keep")))
	before := string(p.readConfigFile())
	cases := []struct {
		name, method, path string
		body               any
		field              string
	}{
		{"no command", "POST", "/api/v1/servers", map[string]any{"name": "x"}, "command"},
		{"typo", "POST", "/api/v1/servers", map[string]any{"name": "x", "comand": "y"}, "comand"},
		{"bad name", "POST", "/api/v1/servers", map[string]any{"name": "a b", "command": "y"}, "name"},
		{"no name", "POST", "/api/v1/servers", map[string]any{"command": "y"}, "name"},
		{"wrong type", "POST", "/api/v1/servers", map[string]any{"name": "x", "command": "y", "args": "z"}, "args"},
		{"both", "POST", "/api/v1/servers", map[string]any{"name": "x", "command": "y", "url": "http://h/"}, "url"},
		{"not json", "POST", "/api/v1/servers", "{", "$"},
		{"rename", "PATCH", "/api/v1/servers/keep", map[string]any{"name": "other"}, "name"},
		{"patch breaks", "PATCH", "/api/v1/servers/keep", map[string]any{"url": "http://h/"}, "url"},
		{"patch type", "PATCH", "/api/v1/servers/keep", map[string]any{"env": map[string]any{"A": 1}}, "env.A"},
		{"patch not object", "PATCH", "/api/v1/servers/keep", []any{1}, "$"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var e applyResponse
			code, body := p.do(c.method, c.path, c.body, &e)
			if code != 400 || e.Code != "INVALID_ARGUMENT" {
				t.Fatalf("%d %s, want 400 INVALID_ARGUMENT", code, body)
			}
			if !slices.ContainsFunc(e.Errors, func(fe config.FieldError) bool { return fe.Field == c.field }) {
				t.Errorf("errors %+v do not name %q", e.Errors, c.field)
			}
			if !strings.Contains(e.Error, c.field) {
				t.Errorf("message %q does not name %q", e.Error, c.field)
			}
		})
	}
	if after := string(p.readConfigFile()); after != before {
		t.Errorf("bad entries changed the file:\n%s", after)
	}
	var list struct {
		Servers []actors.Server `json:"servers"`
	}
	p.do("GET", "/api/v1/servers", nil, &list)
	if len(list.Servers) != 1 {
		t.Errorf("servers after bad entries: %+v", list.Servers)
	}
}

type logsAnswer struct {
	Server string           `json:"server"`
	Lines  []actors.LogLine `json:"lines"`
}

// TestServerLogs: a stdio server that fails writes to stderr; its log has those lines and
// the daemon's own (failed, retrying), scrubbed of the secret its args resolve to; follow
// streams new lines as SSE.
func TestServerLogs(t *testing.T) {
	t.Setenv("MANAGE_LOG_TOKEN", "tok-5f0c9a1e7b")
	script := `echo "starting with token $1" >&2; echo "fatal: cannot open database" >&2; exit 3`
	p := startProxy(t, servers(map[string]any{
		"name": "broken", "command": "/bin/sh", "args": []string{"-c", script, "sh", "${env:MANAGE_LOG_TOKEN}"},
	}))
	var out logsAnswer
	waitFor(t, 20*time.Second, "the failure in the log", func() bool {
		if code, body := p.do("GET", "/api/v1/servers/broken/logs?tail=50", nil, &out); code != 200 {
			t.Fatalf("logs: %d %s", code, body)
		}
		return hasLine(out.Lines, actors.LogStderr, "fatal: cannot open database") && hasLine(out.Lines, actors.LogProxy, "failed:")
	})
	for _, l := range out.Lines {
		if strings.Contains(l.Text, "tok-5f0c9a1e7b") {
			t.Errorf("log line shows the secret: %q", l.Text)
		}
	}
	if !hasLine(out.Lines, actors.LogStderr, "starting with token") {
		t.Errorf("no scrubbed first line in %+v", out.Lines)
	}
	if code, _ := p.do("GET", "/api/v1/servers/broken/logs?tail=2", nil, &out); code != 200 || len(out.Lines) != 2 {
		t.Errorf("tail=2 gave %d lines", len(out.Lines))
	}
	for _, q := range []string{"tail=-1", "tail=x", "tail=100000", "follow=maybe"} {
		if code, body := p.do("GET", "/api/v1/servers/broken/logs?"+q, nil, nil); code != 400 {
			t.Errorf("?%s: %d %s, want 400", q, code, body)
		}
	}
	if code, _ := p.do("GET", "/api/v1/servers/nosuch/logs", nil, nil); code != 404 {
		t.Errorf("unknown server's logs: %d, want 404", code)
	}

	s := openSSE(t, p, "/api/v1/servers/broken/logs?follow=true&tail=1", keyHeader(p))
	defer s.Close()
	if s.Resp.StatusCode != 200 || !strings.HasPrefix(s.Resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("follow: %d %s", s.Resp.StatusCode, s.Resp.Header.Get("Content-Type"))
	}
	s.waitCount(1, 5*time.Second)
	// The server keeps failing and retrying: new lines arrive on the stream.
	evs := s.waitEvents(20*time.Second, "new lines", func(evs []sseEvent) bool {
		n := 0
		for _, e := range evs {
			var l actors.LogLine
			if e.Name == "log" && json.Unmarshal([]byte(e.Data), &l) == nil && strings.Contains(l.Text, "fatal: cannot open database") {
				n++
			}
		}
		return n >= 1 && len(evs) >= 3
	})
	for _, e := range evs {
		if strings.Contains(e.Data, "tok-5f0c9a1e7b") {
			t.Errorf("followed line shows the secret: %s", e.Data)
		}
	}
	// Removing the server ends the stream.
	if code, body := p.do("DELETE", "/api/v1/servers/broken", nil, nil); code != 200 {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	waitFor(t, 10*time.Second, "the stream to end", func() bool { ended, _ := s.Ended(); return ended })
}

func hasLine(lines []actors.LogLine, stream, text string) bool {
	return slices.ContainsFunc(lines, func(l actors.LogLine) bool { return l.Stream == stream && strings.Contains(l.Text, text) })
}

// TestImportSamples posts a sample of each client's format to POST /api/v1/servers/import:
// the runnable servers are added quarantined, names in use are skipped, the rest are listed
// with the field to fix.
func TestImportSamples(t *testing.T) {
	p := startProxy(t, servers(map[string]any{"name": "keep", "command": "true", "enabled": false}))
	type importAnswer struct {
		Format  string   `json:"format"`
		Added   []string `json:"added"`
		Skipped []string `json:"skipped"`
		Errors  []struct {
			Server, Field, Message string
		} `json:"errors"`
	}
	cases := []struct {
		file, query, format string
		added, skipped      []string
		errServer, errField string
	}{
		{"claude_desktop_config.json", "?format=claude-desktop", "claude-desktop", []string{"filesystem", "github"}, []string{"keep"}, "broken", "command"},
		{"cursor_mcp.json", "", "cursor", []string{"linear", "context7", "puppeteer"}, []string{}, "", ""},
		{"vscode_mcp.json", "", "vscode", []string{"fetch"}, []string{"github"}, "perplexity", "env.PERPLEXITY_API_KEY"},
		{"codex_config.toml", "?format=auto", "codex", []string{"docs", "figma", "paused"}, []string{}, "bad", ""},
	}
	for _, c := range cases {
		var out importAnswer
		data := readTestdata(t, filepath.Join("import", c.file))
		if code, body := p.do("POST", "/api/v1/servers/import"+c.query, data, &out); code != 200 {
			t.Fatalf("import %s: %d %s", c.file, code, body)
		}
		if out.Format != c.format || !slices.Equal(out.Added, c.added) || !slices.Equal(out.Skipped, c.skipped) {
			t.Errorf("import %s: %+v, want %s added %v skipped %v", c.file, out, c.format, c.added, c.skipped)
		}
		if c.errServer != "" && !slices.ContainsFunc(out.Errors, func(e struct{ Server, Field, Message string }) bool {
			return e.Server == c.errServer && e.Field == c.errField
		}) {
			t.Errorf("import %s: errors %+v lack %s %s", c.file, out.Errors, c.errServer, c.errField)
		}
	}
	var list struct {
		Servers []actors.Server `json:"servers"`
	}
	p.do("GET", "/api/v1/servers", nil, &list)
	for _, s := range list.Servers {
		if s.Name != "keep" && !s.Quarantined {
			t.Errorf("imported %s is not quarantined", s.Name)
		}
	}
	if len(list.Servers) != 1+2+3+1+3 {
		t.Errorf("%d servers after the imports", len(list.Servers))
	}
	if names := p.namesOnDisk(); len(names) != len(list.Servers) {
		t.Errorf("file has %v", names)
	}
	if code, _ := p.do("POST", "/api/v1/servers/import?format=word", "{}", nil); code != 400 {
		t.Errorf("unknown format: %d, want 400", code)
	}
	if code, _ := p.do("POST", "/api/v1/servers/import", `{"nothing": 1}`, nil); code != 400 {
		t.Errorf("a file without servers: %d, want 400", code)
	}
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	return mustReadFile(t, filepath.Join(repoRoot(), "test", "testdata", name))
}

// TestManageCLI drives servers add, show, edit, logs (and -f), import, remove and connect
// against a daemon process over its socket.
func TestManageCLI(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	p := startProxyProcess(t, dir, servers(stdioFixture(t, "alpha")))
	p.waitState("alpha", 20*time.Second, actors.StateReady)

	// The fixture's name is a marker, so that gamma's processes are told from any other.
	gammaMark := marker(t) + "-gamma"
	out := cliOK(t, dir, "servers", "add", "gamma", "--env", "A=1", "--approve", "--", fixtureBin(t), "--name", gammaMark).stdout
	if !strings.Contains(out, "added server gamma") || strings.Contains(out, "quarantined") {
		t.Errorf("add: %q", out)
	}
	if res := runCLI(t, dir, "", "servers", "add", "gamma", "--", "true"); res.code == 0 || !strings.Contains(res.stderr, "already exists") {
		t.Errorf("duplicate add: %+v", res)
	}
	if res := runCLI(t, dir, "", "servers", "add", "bad", "--env", "NOEQUALS"); res.code == 0 || !strings.Contains(res.stderr, "NAME=VALUE") {
		t.Errorf("bad --env: %+v", res)
	}
	if res := runCLI(t, dir, "", "servers", "add", "bad"); res.code == 0 || !strings.Contains(res.stderr, "command") {
		t.Errorf("add without command or url: %+v", res)
	}
	out = cliOK(t, dir, "servers", "add", "remote", "--url", "http://127.0.0.1:1/mcp", "--header", "X-Token=abc").stdout
	if !strings.Contains(out, "quarantined") {
		t.Errorf("remote add does not say quarantined: %q", out)
	}
	p.waitState("gamma", 20*time.Second, actors.StateReady)

	show := cliOK(t, dir, "servers", "show", "gamma").stdout
	for _, want := range []string{"name", "gamma", "state", "ready", "gamma:echo", "tools ("} {
		if !strings.Contains(show, want) {
			t.Errorf("show lacks %q:\n%s", want, show)
		}
	}

	cliOK(t, dir, "servers", "edit", "gamma", "--env", "B=2")
	cfg, errs := config.Parse(p.readConfigFile())
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if sc, _ := cfg.Server("gamma"); sc.Env["A"] != "1" || sc.Env["B"] != "2" || sc.IsQuarantined() {
		t.Errorf("after edit gamma = %+v", sc)
	}
	if sc, _ := cfg.Server("remote"); sc.Headers["X-Token"] != "abc" || !sc.IsQuarantined() {
		t.Errorf("remote = %+v", sc)
	}
	cliOK(t, dir, "servers", "edit", "gamma", "--unset-env", "A")
	cfg, _ = config.Parse(p.readConfigFile())
	if sc, _ := cfg.Server("gamma"); sc.Env["A"] != "" || sc.Env["B"] != "2" {
		t.Errorf("after --unset-env gamma = %+v", sc)
	}
	if res := runCLI(t, dir, "", "servers", "edit", "gamma"); res.code == 0 {
		t.Errorf("edit with nothing to change succeeded")
	}
	p.waitState("gamma", 20*time.Second, actors.StateReady)

	logs := cliOK(t, dir, "servers", "logs", "gamma", "--tail", "50").stdout
	if !strings.Contains(logs, "connected:") || !strings.Contains(logs, "proxy") {
		t.Errorf("logs:\n%s", logs)
	}

	// -f prints new lines as they come: a restart's.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	follow := exec.CommandContext(ctx, filepath.Join(binaries(t), "mcpproxy"), "--data-dir", dir, "servers", "logs", "gamma", "-f", "--tail", "0")
	stdout, err := follow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := follow.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	// The follower is registered once the daemon answered its request; restart until a
	// restart's line shows up (the first restart may come before the follow is in place).
	got := false
	for attempt := 0; attempt < 10 && !got; attempt++ {
		cliOK(t, dir, "servers", "restart", "gamma")
		deadline := time.After(3 * time.Second)
	wait:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					t.Fatal("logs -f ended")
				}
				if strings.Contains(l, "restart requested") {
					got = true
					break wait
				}
			case <-deadline:
				break wait
			}
		}
	}
	if !got {
		t.Error("logs -f printed no restart line")
	}
	_ = follow.Process.Kill()
	_ = follow.Wait()

	imp := cliOK(t, dir, "servers", "import", filepath.Join(repoRoot(), "test", "testdata", "import", "vscode_mcp.json")).stdout
	for _, want := range []string{"as vscode", "added (quarantined): fetch, github (2)", "perplexity.env.PERPLEXITY_API_KEY", "${input:perplexity-key}"} {
		if !strings.Contains(imp, want) {
			t.Errorf("import output lacks %q:\n%s", want, imp)
		}
	}
	// --from reads the client's file at its usual path under HOME.
	home := t.TempDir()
	cursorPath := filepath.Join(home, ".cursor", "mcp.json")
	if err := os.MkdirAll(filepath.Dir(cursorPath), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(cursorPath, []byte(`{"mcpServers": {"fetch": {"command": "uvx"}, "fromhome": {"command": "uvx", "args": ["x"]}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	fromCmd := exec.Command(filepath.Join(binaries(t), "mcpproxy"), "--data-dir", dir, "servers", "import", "--from", "cursor")
	fromCmd.Env = append(os.Environ(), "HOME="+home)
	fromOut, err := fromCmd.CombinedOutput()
	if err != nil || !strings.Contains(string(fromOut), "added (quarantined): fromhome (1)") || !strings.Contains(string(fromOut), "skipped (name in use): fetch (1)") {
		t.Errorf("import --from cursor: %v\n%s", err, fromOut)
	}

	// connect writes the proxy's entry and keeps the others.
	clientFile := filepath.Join(t.TempDir(), "mcp.json")
	if err := os.WriteFile(clientFile, []byte(`{"mcpServers": {"other": {"command": "uvx", "args": ["y"]}}, "theme": "dark"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	out = cliOK(t, dir, "connect", "cursor", "--path", clientFile).stdout
	if !strings.Contains(out, clientFile) || !strings.Contains(out, ".bak-") {
		t.Errorf("connect output: %q", out)
	}
	var written struct {
		MCPServers map[string]struct {
			Command string            `json:"command"`
			URL     string            `json:"url"`
			Headers map[string]string `json:"headers"`
		} `json:"mcpServers"`
		Theme string `json:"theme"`
	}
	if err := json.Unmarshal(mustReadFile(t, clientFile), &written); err != nil {
		t.Fatal(err)
	}
	e := written.MCPServers["mcpproxy"]
	if e.URL != p.URL+"/mcp" || e.Headers["X-API-Key"] != p.Key || written.MCPServers["other"].Command != "uvx" || written.Theme != "dark" {
		t.Errorf("connected file: %+v", written)
	}
	snippet := cliOK(t, dir, "connect", "codex", "--print").stdout
	if !strings.Contains(snippet, "[mcp_servers.mcpproxy]") || !strings.Contains(snippet, p.URL+"/mcp") || !strings.Contains(snippet, p.Key) {
		t.Errorf("connect codex --print:\n%s", snippet)
	}
	if res := runCLI(t, dir, "", "connect", "emacs"); res.code == 0 {
		t.Error("connect to an unknown client succeeded")
	}

	if n := len(processesWithArg(gammaMark)); n == 0 {
		t.Fatal("no gamma process before remove")
	}
	out = cliOK(t, dir, "servers", "remove", "gamma").stdout
	if !strings.Contains(out, "removed server gamma") {
		t.Errorf("remove: %q", out)
	}
	if code, _ := p.do("GET", "/api/v1/servers/gamma", nil, nil); code != 404 {
		t.Errorf("gamma still there after remove: %d", code)
	}
	if pids := processesWithArg(gammaMark); len(pids) > 0 {
		t.Errorf("gamma's processes outlive its removal: %s", describeProcesses(pids))
	}
	if res := runCLI(t, dir, "", "servers", "rm", "gamma"); res.code == 0 || !strings.Contains(res.stderr, "not found") {
		t.Errorf("second remove: %+v", res)
	}
}

func mustReadFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// TestDeleteServerEndsPassthrough: DELETE answers once the server's passthrough sessions'
// own processes are gone too, not only the shared connection's.
func TestDeleteServerEndsPassthrough(t *testing.T) {
	p := startProxy(t, servers(stdioFixture(t, "keep"), stdioFixture(t, "fx")))
	shared := p.waitState("fx", 30*time.Second, actors.StateReady)
	p.waitState("keep", 30*time.Second, actors.StateReady)
	keepPID := serverPID(t, p, "keep")
	url := p.URL + "/mcp/server/fx?apikey=" + p.Key
	code, sid, answers := rawPost(t, url, "", rawInit)
	if code != 200 || sid == "" {
		t.Fatalf("initialize: %d %q %v", code, sid, answers)
	}
	rawPost(t, url, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	_, _, answers = rawPost(t, url, sid, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"pid","arguments":{}}}`)
	var res mcp.CallToolResult
	_ = json.Unmarshal(resultOf(t, answers), &res)
	sessionPID, _ := strconv.Atoi(textOf(&res))
	if sessionPID == 0 || sessionPID == shared.PID || !processAlive(sessionPID) {
		t.Fatalf("session pid %d, shared %d", sessionPID, shared.PID)
	}
	sharedPID := serverPID(t, p, "fx")
	if code, body := p.do("DELETE", "/api/v1/servers/fx", nil, nil); code != 200 {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	if processAlive(sessionPID) || processAlive(sharedPID) {
		t.Errorf("after DELETE: session process alive %v, shared alive %v", processAlive(sessionPID), processAlive(sharedPID))
	}
	if got := serverPID(t, p, "keep"); got != keepPID {
		t.Errorf("keep's process changed: %d -> %d", keepPID, got)
	}
	// The agent's next request is refused with the reason, then the session is unknown.
	if _, _, answers := rawPost(t, url, sid, `{"jsonrpc":"2.0","id":4,"method":"tools/list"}`); len(answers) != 1 || !strings.Contains(answers[0], `"error"`) || !strings.Contains(answers[0], "not found") {
		t.Errorf("first request after DELETE: %v", answers)
	}
	if code, _, _ := rawPost(t, url, sid, `{"jsonrpc":"2.0","id":5,"method":"tools/list"}`); code != 404 {
		t.Errorf("second request after DELETE: %d, want 404", code)
	}
}

// TestDeleteWhileConnectingLeavesNoProcess removes a server whose start is slow (a shell
// that waits before it becomes the fixture), and one just restarted: when DELETE answers,
// no process of theirs is left, not even the one an abandoned connect had started (the
// upstream actor waits for its dial to close what it made).
func TestDeleteWhileConnectingLeavesNoProcess(t *testing.T) {
	mk := marker(t)
	slow := map[string]any{"name": "slow", "command": "/bin/sh", "quarantined": false,
		"args": []string{"-c", "sleep 3; exec " + fixtureBin(t) + " --name " + mk, mk + "-slow"}}
	quick := map[string]any{"name": "quick", "command": fixtureBin(t), "quarantined": false,
		"args": []string{"--name", mk + "-quick"}}
	p := startProxy(t, servers(slow, quick))
	waitFor(t, 10*time.Second, "the slow server's process", func() bool { return len(processesWithArg(mk+"-slow")) > 0 })
	if s := p.server("slow"); s.State != actors.StateConnecting {
		t.Fatalf("state %s, want connecting while the shell waits", s.State)
	}
	if code, body := p.do("DELETE", "/api/v1/servers/slow", nil, nil); code != 200 {
		t.Fatalf("DELETE slow: %d %s", code, body)
	}
	if left := processesWithArg(mk + "-slow"); len(left) > 0 {
		t.Errorf("the slow server's processes %v outlive its DELETE", left)
	}

	p.waitState("quick", 20*time.Second, actors.StateReady)
	if code, body := p.do("POST", "/api/v1/servers/quick/restart", nil, nil); code != 200 {
		t.Fatalf("restart quick: %d %s", code, body)
	}
	if code, body := p.do("DELETE", "/api/v1/servers/quick", nil, nil); code != 200 {
		t.Fatalf("DELETE quick: %d %s", code, body)
	}
	if left := processesWithArg(mk + "-quick"); len(left) > 0 {
		t.Errorf("the restarted server's processes %v outlive its DELETE", left)
	}

	// Restarts while connecting supersede dials that have started processes already; the
	// DELETE's answer waits for those too, not only for the last dial.
	again := map[string]any{"name": "again", "command": "/bin/sh", "quarantined": false,
		"args": []string{"-c", "sleep 3; exec " + fixtureBin(t) + " --name " + mk, mk + "-again"}}
	if code, body := p.do("POST", "/api/v1/servers", again, nil); code != 201 && code != 200 {
		t.Fatalf("POST again: %d %s", code, body)
	}
	seen := map[int]bool{}
	for i := 1; i <= 2; i++ {
		waitFor(t, 10*time.Second, "a process of the next dial", func() bool {
			fresh := false
			for _, pid := range processesWithArg(mk + "-again") {
				fresh = fresh || !seen[pid]
				seen[pid] = true
			}
			return fresh
		})
		if code, body := p.do("POST", "/api/v1/servers/again/restart", nil, nil); code != 200 {
			t.Fatalf("restart %d of again: %d %s", i, code, body)
		}
	}
	if code, body := p.do("DELETE", "/api/v1/servers/again", nil, nil); code != 200 {
		t.Fatalf("DELETE again: %d %s", code, body)
	}
	if left := processesWithArg(mk + "-again"); len(left) > 0 {
		t.Errorf("the processes %v of dials superseded by restarts outlive the DELETE", left)
	}
}
