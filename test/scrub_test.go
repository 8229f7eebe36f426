package test

// End-to-end tests of scrubbing: a value a server's ${secret:} or ${env:} reference resolved
// to, and a credential written into a server's URL, must not leave the daemon, whichever way
// the server fails: not in the REST API, /events (live or replayed), the MCP endpoint's
// tools and passthrough, the daemon's log, or any file of the data dir.

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/doctor"
	"github.com/mcpproxy/mcpproxy/actors/store"
	"github.com/mcpproxy/mcpproxy/config"
)

// leakAgent is the client name of the test's passthrough agent; the echoing remote fails
// its initialize (and only its: the daemon's own connection must come up).
const leakAgent = "leak-agent"

// echoingRemote is a hostile streamable-HTTP upstream (mcp-go's server with one tool, echo)
// that answers some requests with an error page quoting the request's URL and Authorization
// header, as misconfigured gateways do: every tools/call, and the initialize of leakAgent.
func echoingRemote(t *testing.T) string {
	t.Helper()
	s := server.NewMCPServer("echoing", "1.0.0")
	s.AddTool(mcp.NewTool("echo", mcp.WithDescription("echoes nothing: its calls are refused")),
		func(_ context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("unreachable"), nil
		})
	mcpHandler := server.NewStreamableHTTPServer(s)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			var m struct {
				Method string `json:"method"`
				Params struct {
					ClientInfo struct {
						Name string `json:"name"`
					} `json:"clientInfo"`
				} `json:"params"`
			}
			_ = json.Unmarshal(body, &m)
			if m.Method == "tools/call" || (m.Method == "initialize" && m.Params.ClientInfo.Name == leakAgent) {
				http.Error(w, "gateway refused "+r.URL.String()+" with "+r.Header.Get("Authorization"), http.StatusBadGateway)
				return
			}
		}
		mcpHandler.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL + "/mcp"
}

// TestNoSecretLeavesTheProcess runs a daemon process at debug level with servers that fail
// while their secrets are resolved: remotes on a closed port whose URL query carries a
// secret (one quarantined, one over SSE), a stdio command that prints its env and args
// secrets and an ${env:} value on stderr and exits, a remote with a literal password and
// query token in its URL, and a remote that quotes its request URL and Authorization header
// in error pages (for call_tool and for a passthrough session's initialize). It then reads
// every answer, event, log line and data file for the values.
func TestNoSecretLeavesTheProcess(t *testing.T) {
	const (
		tokValue    = "url-query-secret-1f2e"
		hdrValue    = "header-secret-3d4c"
		envValue    = "env-secret-5b6a"
		argValue    = "arg-secret-7988"
		envRefValue = "env-ref-value-a1b2"
		litPass     = "literal-pass-c3d4"
		litQuery    = "literal-query-e5f6"
	)
	values := []string{tokValue, hdrValue, envValue, argValue, envRefValue, litPass, litQuery}
	t.Setenv("MCPPROXY_SCRUB_ENV", envRefValue) // the daemon process inherits it
	remote := echoingRemote(t)
	dir := t.TempDir()
	p := startProxyProcessDebug(t, dir, servers(
		map[string]any{"name": "urltok", "url": "http://127.0.0.1:1/mcp?token=${secret:TOK}", "quarantined": true,
			"headers": map[string]string{"Authorization": "Bearer ${secret:HDR}"}},
		map[string]any{"name": "ssetok", "protocol": "sse", "url": "http://127.0.0.1:1/sse?token=${secret:TOK}", "quarantined": false},
		map[string]any{"name": "stderr", "command": "sh", "quarantined": false,
			"args": []string{"-c", `echo "token=$T env=$E arg=$1" >&2; exit 1`, "sh", "${secret:ARG}"},
			"env":  map[string]string{"T": "${secret:ENV}", "E": "${env:MCPPROXY_SCRUB_ENV}"}},
		map[string]any{"name": "literal", "url": "http://user:" + litPass + "@127.0.0.1:1/mcp?key=" + litQuery, "quarantined": false},
		map[string]any{"name": "echoing", "url": remote + "?token=${secret:TOK}", "quarantined": false,
			"headers": map[string]string{"Authorization": "Bearer ${secret:HDR}"}},
	))
	live := openSSE(t, p, "/events", map[string]string{"X-API-Key": p.Key})
	for name, v := range map[string]string{"TOK": tokValue, "HDR": hdrValue, "ENV": envValue, "ARG": argValue} {
		if code, body := p.do("PUT", "/api/v1/secrets/"+name, map[string]string{"value": v}, nil); code/100 != 2 {
			t.Fatalf("PUT secret %s: %d %s", name, code, body)
		}
	}

	// Each failure must have happened with its secrets resolved, and show the redaction
	// where the value would be; otherwise this test would prove nothing.
	failsWith := map[string]string{
		"urltok":  "token=" + config.Redacted,
		"ssetok":  "token=" + config.Redacted,
		"stderr":  "token=" + config.Redacted + " env=" + config.Redacted + " arg=" + config.Redacted,
		"literal": "key=" + config.Redacted,
	}
	for name, want := range failsWith {
		waitFor(t, 60*time.Second, name+" to fail showing "+want, func() bool {
			s := p.server(name)
			return (s.State == actors.StateError || s.State == actors.StateBackoff) && strings.Contains(s.LastError, want)
		})
	}
	p.waitState("echoing", 30*time.Second, actors.StateReady)

	var answers []string
	record := func(what string, body []byte) { answers = append(answers, what+": "+string(body)) }
	get := func(path string) []byte {
		code, body := p.do("GET", path, nil, nil)
		if code/100 != 2 {
			t.Errorf("GET %s: %d %s", path, code, body)
		}
		record("GET "+path, body)
		return body
	}
	for _, path := range []string{"/api/v1/servers", "/api/v1/servers/urltok", "/api/v1/servers/ssetok",
		"/api/v1/servers/stderr", "/api/v1/servers/literal", "/api/v1/servers/echoing", "/api/v1/servers/echoing/tools",
		"/api/v1/config", "/api/v1/status", "/api/v1/info", "/api/v1/diagnostics", "/api/v1/tools?q=echo",
		"/api/v1/secrets", "/api/v1/secrets/TOK"} {
		get(path)
	}

	// The doctor names the failures (with their scrubbed errors) and warns about the
	// secret in args.
	var rep doctor.Report
	if err := json.Unmarshal(get("/api/v1/doctor"), &rep); err != nil {
		t.Fatal(err)
	}
	argWarned := false
	for _, c := range rep.Checks {
		if c.Name == doctor.CheckSecretArgs && c.Status == doctor.Warn && strings.Contains(c.Message, "server stderr puts ${secret:ARG} in its args") {
			argWarned = true
		}
	}
	if !argWarned {
		t.Errorf("the doctor does not warn about ${secret:ARG} in args: %+v", rep.Checks)
	}

	// The MCP endpoint: upstream_servers, and call_tool on the remote that quotes its URL.
	c := dialMCP(t, p.URL+"/mcp", p.mcpKey(), "scrub-test")
	for _, call := range []struct {
		tool string
		args map[string]any
	}{{"upstream_servers", nil}, {"call_tool", map[string]any{"name": "echoing:echo", "arguments": map[string]any{}}}} {
		res := callTool(t, c, call.tool, call.args)
		data, _ := json.Marshal(res)
		record("MCP "+call.tool, data)
		if call.tool == "call_tool" && (!res.IsError || !strings.Contains(textOf(res), "gateway refused") || !strings.Contains(textOf(res), config.Redacted)) {
			t.Errorf("call_tool on the echoing remote: %s", data)
		}
	}

	// A passthrough session dials its own connection, and the remote refuses it quoting
	// the URL and header.
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"` + leakAgent + `","version":"1"}}}`
	code, body := p.doWith("POST", "/mcp/server/echoing", init, nil, map[string]string{"X-API-Key": p.Key,
		"Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
	record("passthrough initialize", body)
	if code == 200 || !strings.Contains(string(body), "gateway refused") || !strings.Contains(string(body), config.Redacted) {
		t.Errorf("passthrough initialize through the echoing remote: %d %s", code, body)
	}

	// Events: the live stream so far, and the whole log replayed.
	liveEvents := live.waitEvents(10*time.Second, "servers.changed events of the failures", func(evs []sseEvent) bool {
		return strings.Contains(describeEvents(evs), "servers.changed")
	})
	replay := openSSE(t, p, "/events", map[string]string{"X-API-Key": p.Key, "Last-Event-ID": "0"})
	lastID := eventID(t, liveEvents[len(liveEvents)-1])
	replayed := replay.waitEvents(10*time.Second, "the replay to reach the live stream's last event", func(evs []sseEvent) bool {
		return len(evs) > 0 && eventID(t, evs[len(evs)-1]) >= lastID
	})
	sawRedacted := false
	for _, evs := range [][]sseEvent{live.Events(), replayed} {
		for _, e := range evs {
			answers = append(answers, "event "+e.ID+" "+e.Name+": "+e.Data)
			sawRedacted = sawRedacted || strings.Contains(e.Data, config.Redacted)
		}
	}
	if !sawRedacted {
		t.Errorf("no event carries a scrubbed error; the failures were not published")
	}
	p.Stop()

	// The event log as the store reads it back (pebble compresses sstable blocks, so raw
	// bytes alone could miss a value).
	st, err := store.Open(filepath.Join(dir, "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := st.EventsAfter(0, 0)
	st.Close()
	if err != nil || len(stored) == 0 {
		t.Fatalf("stored events: %d, %v", len(stored), err)
	}
	for _, e := range stored {
		answers = append(answers, "stored event "+e.Name+": "+string(e.Data))
	}

	logText := p.Log()
	if !strings.Contains(logText, "level=DEBUG") || !strings.Contains(logText, "upstream failed") {
		t.Fatalf("the daemon did not log the failures at debug level:\n%s", logText)
	}
	for _, v := range values {
		for _, a := range answers {
			if i := strings.Index(a, v); i >= 0 {
				t.Errorf("%q leaked in %s", v, a[:min(len(a), 120)])
			}
		}
		if i := strings.Index(logText, v); i >= 0 {
			t.Errorf("%q leaked in the log: ...%s...", v, logText[max(0, i-200):min(len(logText), i+50)])
		}
		_ = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			data, err := os.ReadFile(path)
			if err != nil {
				return nil
			}
			// The config file holds the literal URL credentials by design (it is the
			// user's own, mode 0600); nothing else may.
			if filepath.Base(path) == config.FileName && (v == litPass || v == litQuery) {
				return nil
			}
			if bytes.Contains(data, []byte(v)) {
				t.Errorf("%q is in %s", v, path)
			}
			return nil
		})
	}
}

// TestURLCredentialsRedacted: a password and query token written into a server's URL are
// redacted in GET /api/v1/config and the server objects, and sending the redacted config
// back keeps them (as redacted env and header values are kept).
func TestURLCredentialsRedacted(t *testing.T) {
	const rawURL = "http://alice:pa55-w0rd@127.0.0.1:9/mcp?api_key=k3y-value&mode=fast"
	const shown = "http://alice:" + config.Redacted + "@127.0.0.1:9/mcp?api_key=" + config.Redacted + "&mode=" + config.Redacted
	p := startProxy(t, servers(map[string]any{"name": "creds", "url": rawURL, "enabled": false}))

	cfg, _, body := p.getConfig()
	if got := serverList(t, cfg)[0]["url"]; got != shown {
		t.Errorf("GET /api/v1/config url = %v, want %s", got, shown)
	}
	if strings.Contains(string(body), "pa55-w0rd") || strings.Contains(string(body), "k3y-value") {
		t.Errorf("GET /api/v1/config: %s", body)
	}
	if s := p.server("creds"); s.URL != shown {
		t.Errorf("server url = %q, want %q", s.URL, shown)
	}
	_, listBody := p.do("GET", "/api/v1/servers", nil, nil)
	if strings.Contains(string(listBody), "pa55-w0rd") || strings.Contains(string(listBody), "k3y-value") {
		t.Errorf("GET /api/v1/servers: %s", listBody)
	}

	// The redacted config sent back, with the server enabled, keeps the credentials.
	serverList(t, cfg)[0]["enabled"] = true
	if code, res, body := p.apply(cfg); code != 200 || !res.Applied {
		t.Fatalf("apply the redacted config: %d %s", code, body)
	}
	var onDisk struct {
		Servers []config.ServerConfig `json:"mcpServers"`
	}
	if err := json.Unmarshal(p.readConfigFile(), &onDisk); err != nil || len(onDisk.Servers) != 1 || onDisk.Servers[0].URL != rawURL {
		t.Fatalf("config file after the apply: %+v, %v", onDisk.Servers, err)
	}
	// A placeholder with nothing to keep is refused, naming the field.
	serverList(t, cfg)[0]["url"] = "http://bob:" + config.Redacted + "@127.0.0.1:9/mcp"
	if code, res, body := p.apply(cfg); code != 400 || !hasField(res.Errors, "mcpServers[0].url") {
		t.Fatalf("apply with a password placeholder for another user: %d %s", code, body)
	}
}
