package test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"go.uber.org/goleak"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/store"
)

// everythingServer is a config entry for @modelcontextprotocol/server-everything over stdio.
func everythingServer(t testing.TB, name string) map[string]any {
	node, args := everythingCmd(t)
	return map[string]any{"name": name, "command": node, "args": args, "quarantined": false}
}

// dialMCP connects mark3labs/mcp-go's client to url (streamable HTTP) and initializes it as
// clientName. The client is closed at cleanup.
func dialMCP(t testing.TB, url string, headers map[string]string, clientName string, opts ...transport.StreamableHTTPCOption) *client.Client {
	t.Helper()
	c, err := newMCP(url, headers, clientName, opts...)
	if err != nil {
		t.Fatalf("connect %s: %v", url, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newMCP(url string, headers map[string]string, clientName string, opts ...transport.StreamableHTTPCOption) (*client.Client, error) {
	quiet := slog.New(slog.DiscardHandler)
	opts = append([]transport.StreamableHTTPCOption{transport.WithHTTPHeaders(headers),
		transport.WithHTTPLogger(quiet), transport.WithLogger(quiet)}, opts...)
	c, err := client.NewStreamableHttpClient(url, opts...)
	if err != nil {
		return nil, err
	}
	if err := c.Start(context.Background()); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req := mcp.InitializeRequest{}
	req.Params.ClientInfo = mcp.Implementation{Name: clientName, Version: "1.2.3"}
	if _, err := c.Initialize(ctx, req); err != nil {
		_ = c.Close()
		return nil, err
	}
	return c, nil
}

// mcpKey is the header that carries the proxy's key.
func (p *proxy) mcpKey() map[string]string { return map[string]string{"X-API-Key": p.Key} }

// callTool calls tool name with args on c, bounded by 60 s.
func callTool(t testing.TB, c *client.Client, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("tools/call %s: %v", name, err)
	}
	return res
}

// viaProxy calls an upstream tool through /mcp's call_tool.
func viaProxy(t testing.TB, c *client.Client, tool string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	return callTool(t, c, "call_tool", map[string]any{"name": tool, "arguments": args})
}

// textOf joins the text content of a result.
func textOf(res *mcp.CallToolResult) string {
	var parts []string
	for _, c := range res.Content {
		if tc, ok := mcp.AsTextContent(c); ok {
			parts = append(parts, tc.Text)
		}
	}
	return strings.Join(parts, "\n")
}

func toolNames(t testing.TB, c *client.Client) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	names := make([]string, len(res.Tools))
	for i, tool := range res.Tools {
		names[i] = tool.Name
	}
	slices.Sort(names)
	return names
}

// session fetches one session from the REST API.
func (p *proxy) session(id string) (store.Session, int) {
	p.t.Helper()
	var out struct {
		Session store.Session `json:"session"`
	}
	code, _ := p.do("GET", "/api/v1/sessions/"+id, nil, &out)
	return out.Session, code
}

// TestMCPGoClient drives /mcp and the passthrough endpoint with mark3labs/mcp-go's client:
// tools, calls to server-everything and to the fixture (structured content, images, tool
// errors), search, the server list, and the session record.
func TestMCPGoClient(t *testing.T) {
	p := startProxy(t, servers(stdioFixture(t, "fx"), everythingServer(t, "everything")))
	p.waitState("fx", 30*time.Second, actors.StateReady)
	p.waitState("everything", 60*time.Second, actors.StateReady)
	c := dialMCP(t, p.URL+"/mcp", p.mcpKey(), "go-e2e")
	// mcp-go's client tries the stateless 2026-07-28 protocol first; /mcp answers that it
	// speaks only session-oriented revisions, and the client falls back to initialize.
	if v := c.ProtocolVersion(); mcp.IsModernProtocol(v) || c.GetSessionId() == "" {
		t.Fatalf("negotiated %q with session %q, want a legacy revision with a session", v, c.GetSessionId())
	}

	if got, want := toolNames(t, c), []string{"call_tool", "retrieve_tools", "upstream_servers"}; !slices.Equal(got, want) {
		t.Fatalf("/mcp tools = %v, want %v", got, want)
	}

	calls := []struct {
		name, tool string
		args       map[string]any
		check      func(*mcp.CallToolResult) error
	}{
		{"everything echo", "everything:echo", map[string]any{"message": "hello"}, wantText("Echo: hello")},
		{"everything get-sum", "everything:get-sum", map[string]any{"a": 2, "b": 40}, wantText("The sum of 2 and 40 is 42.")},
		{"fixture add structured", "fx:add", map[string]any{"a": 1.5, "b": 2}, func(r *mcp.CallToolResult) error {
			if r.IsError || textOf(r) != "3.5" {
				return fmt.Errorf("got %+v", r)
			}
			sc, _ := json.Marshal(r.StructuredContent)
			if string(sc) != `{"sum":3.5}` {
				return fmt.Errorf("structuredContent = %s", sc)
			}
			return nil
		}},
		{"fixture image", "fx:image", nil, func(r *mcp.CallToolResult) error {
			if len(r.Content) != 1 {
				return fmt.Errorf("content = %+v", r.Content)
			}
			img, ok := mcp.AsImageContent(r.Content[0])
			if !ok || img.MIMEType != "image/png" || img.Data == "" {
				return fmt.Errorf("content = %+v", r.Content[0])
			}
			return nil
		}},
		{"fixture tool error passes unchanged", "fx:fail", map[string]any{"message": "boom"}, func(r *mcp.CallToolResult) error {
			if !r.IsError || textOf(r) != "boom" {
				return fmt.Errorf("got isError=%v %q", r.IsError, textOf(r))
			}
			return nil
		}},
	}
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.check(viaProxy(t, c, tc.tool, tc.args)); err != nil {
				t.Fatal(err)
			}
		})
	}

	t.Run("retrieve_tools", func(t *testing.T) {
		res := callTool(t, c, "retrieve_tools", map[string]any{"query": "sum of two numbers", "limit": 5})
		var out struct {
			Tools []struct {
				Name        string          `json:"name"`
				InputSchema json.RawMessage `json:"inputSchema"`
				Score       float64         `json:"score"`
				Matched     []string        `json:"matched"`
			} `json:"tools"`
		}
		if err := json.Unmarshal([]byte(textOf(res)), &out); err != nil || res.IsError {
			t.Fatalf("retrieve_tools: %v %s", err, textOf(res))
		}
		if len(out.Tools) == 0 || len(out.Tools) > 5 {
			t.Fatalf("got %d tools", len(out.Tools))
		}
		var names []string
		for _, tool := range out.Tools {
			names = append(names, tool.Name)
			if len(tool.InputSchema) == 0 || tool.Score <= 0 || len(tool.Matched) == 0 {
				t.Errorf("hit %s lacks schema, score or matched fields: %+v", tool.Name, tool)
			}
		}
		if !slices.Contains(names, "everything:get-sum") || !slices.Contains(names, "fx:add") {
			t.Fatalf("hits %v lack everything:get-sum and fx:add", names)
		}
	})

	// The tool's title and the server's instructions (from initialize) reach the index.
	t.Run("retrieve_tools title and instructions", func(t *testing.T) {
		for _, tc := range []struct{ query, tool, field, title string }{
			{"pause for a moment", "fx:sleep", "title", "Pause for a moment"},
			{"deterministic", "fx:echo", "instructions", ""},
		} {
			res := callTool(t, c, "retrieve_tools", map[string]any{"query": tc.query, "limit": 50})
			var out struct {
				Tools []struct {
					Name    string   `json:"name"`
					Title   string   `json:"title"`
					Matched []string `json:"matched"`
				} `json:"tools"`
			}
			if err := json.Unmarshal([]byte(textOf(res)), &out); err != nil || res.IsError {
				t.Fatalf("retrieve_tools %q: %v %s", tc.query, err, textOf(res))
			}
			i := slices.IndexFunc(out.Tools, func(h struct {
				Name    string   `json:"name"`
				Title   string   `json:"title"`
				Matched []string `json:"matched"`
			}) bool {
				return h.Name == tc.tool
			})
			if i < 0 {
				t.Fatalf("%q: no %s among %+v", tc.query, tc.tool, out.Tools)
			}
			if h := out.Tools[i]; !slices.Contains(h.Matched, tc.field) || h.Title != tc.title {
				t.Errorf("%q: %s has title %q and matched %v, want title %q and %q matched", tc.query, tc.tool, h.Title, h.Matched, tc.title, tc.field)
			}
		}
	})

	t.Run("upstream_servers", func(t *testing.T) {
		res := callTool(t, c, "upstream_servers", nil)
		var out struct {
			Servers []actors.Server `json:"servers"`
		}
		if err := json.Unmarshal([]byte(textOf(res)), &out); err != nil || len(out.Servers) != 2 {
			t.Fatalf("upstream_servers: %v %s", err, textOf(res))
		}
		for _, s := range out.Servers {
			if s.State != actors.StateReady || s.ToolsCount == 0 {
				t.Errorf("server %+v", s)
			}
		}
	})

	t.Run("passthrough", func(t *testing.T) {
		pt := dialMCP(t, p.URL+"/mcp/server/everything", p.mcpKey(), "go-e2e-passthrough")
		names := toolNames(t, pt)
		for _, want := range []string{"echo", "get-sum"} {
			if !slices.Contains(names, want) {
				t.Fatalf("passthrough tools %v lack %s", names, want)
			}
		}
		if r := callTool(t, pt, "echo", map[string]any{"message": "direct"}); textOf(r) != "Echo: direct" {
			t.Fatalf("echo: %+v", r)
		}
		if r := callTool(t, pt, "get-sum", map[string]any{"a": 1, "b": 2}); textOf(r) != "The sum of 1 and 2 is 3." {
			t.Fatalf("get-sum: %+v", r)
		}
		fx := dialMCP(t, p.URL+"/mcp/server/fx", p.mcpKey(), "go-e2e-passthrough")
		if r := callTool(t, fx, "add", map[string]any{"a": 1, "b": 2}); textOf(r) != "3" || r.StructuredContent == nil {
			t.Fatalf("fx add: %+v", r)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		req := mcp.CallToolRequest{}
		req.Params.Name = "no_such_tool"
		if _, err := fx.CallTool(ctx, req); err == nil {
			t.Fatal("calling an unknown tool on the passthrough succeeded")
		}
	})

	t.Run("session recorded", func(t *testing.T) {
		id := c.GetSessionId()
		if id == "" {
			t.Fatal("no session id")
		}
		s, code := p.session(id)
		// 5 call_tool + 3 retrieve_tools + upstream_servers
		if code != 200 || s.ClientName != "go-e2e" || s.ClientVersion != "1.2.3" || s.Status != store.SessionActive ||
			s.ToolCalls != 9 || s.Endpoint != "/mcp" || s.StartedAt.IsZero() || s.LastActivity.Before(s.StartedAt) {
			t.Fatalf("session = %d %+v", code, s)
		}
		var list struct {
			Sessions []store.Session `json:"sessions"`
		}
		if code, body := p.do("GET", "/api/v1/sessions", nil, &list); code != 200 {
			t.Fatalf("list sessions: %d %s", code, body)
		}
		var passthrough int
		for _, s := range list.Sessions {
			if s.ClientName == "go-e2e-passthrough" {
				passthrough++
				if !strings.HasPrefix(s.Endpoint, "/mcp/server/") || s.ToolCalls == 0 {
					t.Errorf("passthrough session %+v", s)
				}
			}
		}
		if passthrough != 2 {
			t.Fatalf("sessions = %+v, want two passthrough sessions", list.Sessions)
		}
		if _, code := p.session("no-such-session"); code != 404 {
			t.Fatalf("unknown session: %d", code)
		}
	})
}

// wantText checks that a result is a success whose text is want.
func wantText(want string) func(*mcp.CallToolResult) error {
	return func(r *mcp.CallToolResult) error {
		if r.IsError || textOf(r) != want {
			return fmt.Errorf("got isError=%v %q, want %q", r.IsError, textOf(r), want)
		}
		return nil
	}
}

// runMCPScript runs a Node client script of test/ (the official TypeScript SDK) with the
// proxy's URL and key, bounded by limit, and returns what it printed.
func runMCPScript(t *testing.T, p *proxy, script string, limit time.Duration) []byte {
	t.Helper()
	node, _ := everythingCmd(t)
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(repoRoot(), "test", script), p.URL, p.Key)
	cmd.Dir = filepath.Join(repoRoot(), "test")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("%s: %v\n%s\n%s", script, err, out, stderr)
	}
	return out
}

// TestMCPTypeScriptClient drives the same endpoints with the official TypeScript SDK
// (test/mcp_client.mjs), key by header on /mcp and by ?apikey= on the passthrough.
func TestMCPTypeScriptClient(t *testing.T) {
	p := startProxy(t, servers(everythingServer(t, "everything")))
	p.waitState("everything", 60*time.Second, actors.StateReady)
	out := runMCPScript(t, p, "mcp_client.mjs", 60*time.Second)
	var got struct {
		SessionID string   `json:"sessionId"`
		Tools     []string `json:"tools"`
		Echo      string   `json:"echo"`
		Sum       string   `json:"sum"`
		Retrieved []string `json:"retrieved"`
		PtSession string   `json:"ptSessionId"`
		PtTools   []string `json:"ptTools"`
		PtEcho    string   `json:"ptEcho"`
		PtSum     string   `json:"ptSum"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("decoding %s: %v", out, err)
	}
	slices.Sort(got.Tools)
	checks := []struct {
		name string
		ok   bool
	}{
		{"tools", slices.Equal(got.Tools, []string{"call_tool", "retrieve_tools", "upstream_servers"})},
		{"echo", got.Echo == "Echo: hello from ts"},
		{"get-sum", got.Sum == "The sum of 2 and 40 is 42."},
		{"retrieve", slices.Contains(got.Retrieved, "everything:get-sum")},
		{"passthrough tools", slices.Contains(got.PtTools, "echo") && slices.Contains(got.PtTools, "get-sum")},
		{"passthrough echo", got.PtEcho == "Echo: direct"},
		{"passthrough get-sum", got.PtSum == "The sum of 1 and 2 is 3."},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: got %+v", c.name, got)
		}
	}
	// The script ended its /mcp session with DELETE and left the passthrough one open.
	s, code := p.session(got.SessionID)
	if code != 200 || s.ClientName != "ts-e2e" || s.ClientVersion != "9.9.9" || s.ToolCalls != 3 || s.Status != store.SessionClosed {
		t.Errorf("TS session = %d %+v", code, s)
	}
	s, code = p.session(got.PtSession)
	if code != 200 || s.ClientName != "ts-e2e-passthrough" || s.ToolCalls != 2 || s.Endpoint != "/mcp/server/everything" {
		t.Errorf("TS passthrough session = %d %+v", code, s)
	}
}

// TestMCPRefusals covers what the proxy refuses: quarantined (and nothing reaches the
// upstream), disabled, unknown server, unknown tool, bad names, on both endpoints.
func TestMCPRefusals(t *testing.T) {
	p := startProxy(t, servers(stdioFixture(t, "fx"), stdioFixture(t, "off")))
	p.waitState("fx", 30*time.Second, actors.StateReady)
	p.waitState("off", 30*time.Second, actors.StateReady)
	if code, body := p.do("POST", "/api/v1/servers/fx/quarantine", map[string]any{"quarantined": true}, nil); code != 200 {
		t.Fatalf("quarantine: %d %s", code, body)
	}
	if code, body := p.do("POST", "/api/v1/servers/off/disable", nil, nil); code != 200 {
		t.Fatalf("disable: %d %s", code, body)
	}
	c := dialMCP(t, p.URL+"/mcp", p.mcpKey(), "refusals")
	cases := []struct {
		name, tool string
		want       string
	}{
		{"quarantined", "fx:echo", `server "fx" is quarantined`},
		{"disabled", "off:echo", `server "off" is disabled`},
		{"unknown server", "nope:echo", `server "nope" not found`},
		{"bad name", "echo", `must be "server:tool"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res := viaProxy(t, c, tc.tool, map[string]any{"text": "x"})
			if !res.IsError || !strings.Contains(textOf(res), tc.want) {
				t.Fatalf("got isError=%v %q, want an error containing %q", res.IsError, textOf(res), tc.want)
			}
		})
	}
	t.Run("passthrough", func(t *testing.T) {
		for _, tc := range []struct {
			server string
			status int
		}{{"fx", 409}, {"off", 409}, {"nope", 404}} {
			code, body := p.doWith("POST", "/mcp/server/"+tc.server, initializeBody, nil,
				map[string]string{"X-API-Key": p.Key, "Accept": "application/json, text/event-stream"})
			if code != tc.status {
				t.Errorf("%s: %d %s, want %d", tc.server, code, body, tc.status)
			}
		}
	})
	if code, body := p.do("POST", "/api/v1/servers/fx/quarantine", map[string]any{"quarantined": false}, nil); code != 200 {
		t.Fatalf("unquarantine: %d %s", code, body)
	}
	t.Run("unknown tool", func(t *testing.T) {
		res := viaProxy(t, c, "fx:nope", nil)
		if !res.IsError || !strings.Contains(textOf(res), `has no tool "nope"`) {
			t.Fatalf("got %q", textOf(res))
		}
	})
	// The fixture counts every call that reached it: the refused ones did not.
	if res := viaProxy(t, c, "fx:calls", nil); res.IsError || textOf(res) != "0" {
		t.Fatalf("calls before = %q, want 0", textOf(res))
	}
}

// initializeBody is a minimal initialize request, for raw HTTP checks.
const initializeBody = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}`

// TestMCPTimeout: a call that outlives call_tool_timeout gives a timeout error and the
// upstream stays usable.
func TestMCPTimeout(t *testing.T) {
	cfg := servers(stdioFixture(t, "fx"))
	cfg["call_tool_timeout"] = "1s"
	p := startProxy(t, cfg)
	p.waitState("fx", 30*time.Second, actors.StateReady)
	c := dialMCP(t, p.URL+"/mcp", p.mcpKey(), "timeouts")

	res := viaProxy(t, c, "fx:sleep", map[string]any{"ms": 20000})
	if !res.IsError || !strings.Contains(textOf(res), "timed out") {
		t.Fatalf("sleep past the timeout: isError=%v %q", res.IsError, textOf(res))
	}
	if res := viaProxy(t, c, "fx:echo", map[string]any{"text": "still here"}); textOf(res) != "still here" {
		t.Fatalf("after the timeout: %q", textOf(res))
	}
}

// TestMCPUpstreamDiesMidCall: an upstream killed while a call is in flight gives the agent an
// error at once, not after call_tool_timeout (2 minutes here).
func TestMCPUpstreamDiesMidCall(t *testing.T) {
	p := startProxy(t, servers(stdioFixture(t, "fx")))
	p.waitState("fx", 30*time.Second, actors.StateReady)
	c := dialMCP(t, p.URL+"/mcp", p.mcpKey(), "death")

	// The progress tool sends its first notification at once and then waits: once the
	// client has it, the call is in flight at the upstream, and the upstream is killed.
	pid, err := strconv.Atoi(textOf(viaProxy(t, c, "fx:pid", nil)))
	if err != nil || pid <= 1 {
		t.Fatalf("fixture pid: %v %d", err, pid)
	}
	inFlight := make(chan struct{})
	var once sync.Once
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == string(mcp.MethodNotificationProgress) && n.Params.AdditionalFields["progressToken"] == "death" {
			once.Do(func() { close(inFlight) })
		}
	})
	type result struct {
		res *mcp.CallToolResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		req := mcp.CallToolRequest{}
		req.Params.Name = "call_tool"
		req.Params.Arguments = map[string]any{"name": "fx:progress", "arguments": map[string]any{"steps": 2, "interval_ms": 60000}}
		req.Params.Meta = &mcp.Meta{ProgressToken: "death"}
		res, err := c.CallTool(ctx, req)
		done <- result{res, err}
	}()
	select {
	case <-inFlight:
	case r := <-done:
		t.Fatalf("progress call ended early: %+v %v", r.res, r.err)
	case <-time.After(30 * time.Second):
		t.Fatal("no progress notification reached the agent")
	}
	killed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the call hangs after its upstream was killed")
	}
	if r.err != nil || !r.res.IsError || !strings.Contains(textOf(r.res), "fx:progress failed") {
		t.Fatalf("call to a killed upstream: %+v %v", r.res, r.err)
	}
	t.Logf("error %q %s after the kill", textOf(r.res), time.Since(killed))
	// The server recovers: the registry reconnects it.
	p.waitState("fx", 30*time.Second, actors.StateReady)
	if res := viaProxy(t, c, "fx:echo", map[string]any{"text": "back"}); textOf(res) != "back" {
		t.Fatalf("after reconnect: %q", textOf(res))
	}
}

// TestMCPConcurrentCallsOverlap: four 500 ms sleeps on one upstream, issued together, run
// at the same time. Run one after another, each would end at least 500 ms after the
// previous one; together, all four end within one sleep's length of each other.
func TestMCPConcurrentCallsOverlap(t *testing.T) {
	p := startProxy(t, servers(stdioFixture(t, "fx")))
	p.waitState("fx", 30*time.Second, actors.StateReady)
	c := dialMCP(t, p.URL+"/mcp", p.mcpKey(), "overlap")
	const n, sleep = 4, 500 * time.Millisecond
	starts, ends := make([]time.Time, n), make([]time.Time, n)
	errs := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			starts[i] = time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			req := mcp.CallToolRequest{}
			req.Params.Name = "call_tool"
			req.Params.Arguments = map[string]any{"name": "fx:sleep", "arguments": map[string]any{"ms": sleep.Milliseconds()}}
			res, err := c.CallTool(ctx, req)
			ends[i] = time.Now()
			if err != nil || res.IsError {
				errs[i] = fmt.Sprint(err, res)
			}
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != "" {
			t.Fatalf("call %d: %s", i, errs[i])
		}
		if d := ends[i].Sub(starts[i]); d < sleep {
			t.Fatalf("call %d took %s, less than the sleep", i, d)
		}
	}
	first, last := slices.MinFunc(ends, time.Time.Compare), slices.MaxFunc(ends, time.Time.Compare)
	if spread := last.Sub(first); spread >= sleep {
		t.Fatalf("the calls ended %s apart: they ran one after another", spread)
	}
}

// TestMCPPassthroughNotifications: progress with the agent's own token, and the upstream's
// tools/list_changed reach an agent on /mcp/server/{name}.
func TestMCPPassthroughNotifications(t *testing.T) {
	p := startProxy(t, servers(stdioFixture(t, "fx")))
	p.waitState("fx", 30*time.Second, actors.StateReady)
	c := dialMCP(t, p.URL+"/mcp/server/fx", p.mcpKey(), "notifications", transport.WithContinuousListening())
	var mu sync.Mutex
	var progress []float64
	listChanged := make(chan struct{}, 10)
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		switch n.Method {
		case string(mcp.MethodNotificationProgress):
			if n.Params.AdditionalFields["progressToken"] == "agent-token" {
				mu.Lock()
				progress = append(progress, n.Params.AdditionalFields["progress"].(float64))
				mu.Unlock()
			}
		case string(mcp.MethodNotificationToolsListChanged):
			listChanged <- struct{}{}
		}
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	req := mcp.CallToolRequest{}
	req.Params.Name = "progress"
	req.Params.Arguments = map[string]any{"steps": 3}
	req.Params.Meta = &mcp.Meta{ProgressToken: "agent-token"}
	if res, err := c.CallTool(ctx, req); err != nil || textOf(res) != "done" {
		t.Fatalf("progress: %+v %v", res, err)
	}
	waitFor(t, 10*time.Second, "three progress notifications", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(progress) == 3
	})
	mu.Lock()
	// mcp-go's server hands a session's notifications to whichever of its streams (this
	// call's POST stream or the GET stream) takes them first, so their order is not kept
	// across the two; each must arrive once.
	slices.Sort(progress)
	if !slices.Equal(progress, []float64{1, 2, 3}) {
		t.Errorf("progress = %v", progress)
	}
	mu.Unlock()

	if res := callTool(t, c, "add_tool", map[string]any{"name": "dynamic"}); res.IsError {
		t.Fatalf("add_tool: %q", textOf(res))
	}
	select {
	case <-listChanged:
	case <-time.After(20 * time.Second):
		t.Fatal("no tools/list_changed reached the agent")
	}
	// The new tool exists only in this session's own process; like any tool without a pin
	// it is held back (tool-level trust): left out of tools/list, its call refused.
	if names := toolNames(t, c); slices.Contains(names, "dynamic") || !slices.Contains(names, "echo") {
		t.Fatalf("tools after add_tool: %v", names)
	}
	dyn := mcp.CallToolRequest{}
	dyn.Params.Name = "dynamic"
	if _, err := c.CallTool(ctx, dyn); err == nil || !strings.Contains(err.Error(), "awaits review") {
		t.Fatalf("dynamic before review: %v", err)
	}

	// Progress through /mcp's call_tool comes back with the agent's token as well.
	m := dialMCP(t, p.URL+"/mcp", p.mcpKey(), "notifications")
	var got []any
	m.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method == string(mcp.MethodNotificationProgress) {
			mu.Lock()
			got = append(got, n.Params.AdditionalFields["progressToken"])
			mu.Unlock()
		}
	})
	req = mcp.CallToolRequest{}
	req.Params.Name = "call_tool"
	req.Params.Arguments = map[string]any{"name": "fx:progress", "arguments": map[string]any{"steps": 2}}
	req.Params.Meta = &mcp.Meta{ProgressToken: 7}
	if res, err := m.CallTool(ctx, req); err != nil || textOf(res) != "done" {
		t.Fatalf("call_tool progress: %+v %v", res, err)
	}
	waitFor(t, 10*time.Second, "two progress notifications on /mcp", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 2
	})
	mu.Lock()
	defer mu.Unlock()
	for _, tok := range got {
		if tok != float64(7) {
			t.Fatalf("progress tokens = %v, want the agent's 7", got)
		}
	}
}

// TestMCPAuthAndOrigin: no key 401 (unless require_mcp_auth is off), a foreign Origin 403,
// ?apikey= works.
func TestMCPAuthAndOrigin(t *testing.T) {
	p := startProxy(t, servers(stdioFixture(t, "fx")))
	p.waitState("fx", 30*time.Second, actors.StateReady)
	accept := "application/json, text/event-stream"
	cases := []struct {
		name, path string
		headers    map[string]string
		status     int
		code       string
	}{
		{"no key", "/mcp", map[string]string{"Accept": accept}, 401, "UNAUTHORIZED"},
		{"wrong key", "/mcp", map[string]string{"Accept": accept, "X-API-Key": "wrong"}, 401, "UNAUTHORIZED"},
		{"no key passthrough", "/mcp/server/fx", map[string]string{"Accept": accept}, 401, "UNAUTHORIZED"},
		{"foreign origin", "/mcp", map[string]string{"Accept": accept, "X-API-Key": p.Key, "Origin": "http://evil.example"}, 403, "FORBIDDEN"},
		{"foreign host", "/mcp", map[string]string{"Accept": accept, "X-API-Key": p.Key, "Host": "evil.example"}, 403, "FORBIDDEN"},
		{"bearer", "/mcp", map[string]string{"Accept": accept, "Authorization": "Bearer " + p.Key}, 200, ""},
		{"local origin", "/mcp", map[string]string{"Accept": accept, "X-API-Key": p.Key, "Origin": "http://localhost:3000"}, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var out struct {
				Code string `json:"code"`
			}
			code, body := p.doWith("POST", tc.path, initializeBody, &out, tc.headers)
			if code != tc.status || out.Code != tc.code {
				t.Fatalf("%d %s, want %d %s", code, body, tc.status, tc.code)
			}
		})
	}
	t.Run("apikey query", func(t *testing.T) {
		c := dialMCP(t, p.URL+"/mcp/server/fx?apikey="+p.Key, nil, "query-key")
		if r := callTool(t, c, "echo", map[string]any{"text": "q"}); textOf(r) != "q" {
			t.Fatalf("echo: %q", textOf(r))
		}
	})
	t.Run("mcp-go's closing DELETE ends the session", func(t *testing.T) {
		// mcp-go sends it without the X-API-Key header; the live session id suffices.
		c, err := newMCP(p.URL+"/mcp", p.mcpKey(), "closer")
		if err != nil {
			t.Fatal(err)
		}
		id := c.GetSessionId()
		_ = c.Close()
		if s, code := p.session(id); code != 200 || s.Status != store.SessionClosed {
			t.Fatalf("after Close: %d %+v", code, s)
		}
		code, _ := p.doWith("DELETE", "/mcp", nil, nil, map[string]string{"Mcp-Session-Id": "not-a-session"})
		if code != 401 {
			t.Fatalf("DELETE of an unknown session without a key: %d", code)
		}
	})
	t.Run("unknown session", func(t *testing.T) {
		code, body := p.doWith("POST", "/mcp", `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, nil,
			map[string]string{"Accept": accept, "X-API-Key": p.Key, "Mcp-Session-Id": "nope"})
		if code != 404 {
			t.Fatalf("%d %s", code, body)
		}
	})

	open := servers(stdioFixture(t, "fx"))
	open["require_mcp_auth"] = false
	q := startProxy(t, open)
	q.waitState("fx", 30*time.Second, actors.StateReady)
	c := dialMCP(t, q.URL+"/mcp", nil, "no-key")
	if r := viaProxy(t, c, "fx:echo", map[string]any{"text": "open"}); textOf(r) != "open" {
		t.Fatalf("echo without a key: %q", textOf(r))
	}
	if code, _ := q.doWith("GET", "/api/v1/sessions", nil, nil, nil); code != 401 {
		t.Fatalf("the REST API must still need the key: %d", code)
	}
}

// TestMCPIdleSessionClosed: a session idle past the TTL is closed, recorded as closed, and
// its id no longer works.
func TestMCPIdleSessionClosed(t *testing.T) {
	t.Setenv("MCPPROXY_MCP_SESSION_IDLE_TTL", "300ms")
	p := startProxy(t, servers(stdioFixture(t, "fx")))
	p.waitState("fx", 30*time.Second, actors.StateReady)
	c := dialMCP(t, p.URL+"/mcp", p.mcpKey(), "idle")
	viaProxy(t, c, "fx:echo", map[string]any{"text": "x"})
	id := c.GetSessionId()
	waitFor(t, 10*time.Second, "the idle session to close", func() bool {
		s, code := p.session(id)
		return code == 200 && s.Status == store.SessionClosed && s.ToolCalls == 1 && s.ClientName == "idle"
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.ListTools(ctx, mcp.ListToolsRequest{}); err == nil {
		t.Fatal("a closed session still answers")
	}
}

// TestMCPSessionsSurviveRestart: sessions are in the store; after a restart the old ones are
// listed as closed.
func TestMCPSessionsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	p := startProxyIn(t, dir, servers(stdioFixture(t, "fx")))
	p.waitState("fx", 30*time.Second, actors.StateReady)
	c := dialMCP(t, p.URL+"/mcp", p.mcpKey(), "before-restart")
	viaProxy(t, c, "fx:echo", map[string]any{"text": "x"})
	id := c.GetSessionId()
	_ = c.Close()
	p.Stop()
	q := startProxyIn(t, dir, nil)
	s, code := q.session(id)
	if code != 200 || s.Status != store.SessionClosed || s.ClientName != "before-restart" || s.ToolCalls != 1 {
		t.Fatalf("session after restart = %d %+v", code, s)
	}
}

// TestMCPShutdownLeavesNoGoroutines: open sessions on both endpoints (one with a GET stream,
// one mid-call with progress) end with the daemon, and nothing is left running.
func TestMCPShutdownLeavesNoGoroutines(t *testing.T) {
	binaries(t)
	before := goleak.IgnoreCurrent()
	p := startProxy(t, servers(stdioFixture(t, "fx")))
	p.waitState("fx", 30*time.Second, actors.StateReady)
	main, err := newMCP(p.URL+"/mcp", p.mcpKey(), "leak")
	if err != nil {
		t.Fatal(err)
	}
	pt, err := newMCP(p.URL+"/mcp/server/fx", p.mcpKey(), "leak", transport.WithContinuousListening())
	if err != nil {
		t.Fatal(err)
	}
	viaProxy(t, main, "fx:echo", map[string]any{"text": "x"})
	req := mcp.CallToolRequest{}
	req.Params.Name = "progress"
	req.Params.Arguments = map[string]any{"steps": 2}
	req.Params.Meta = &mcp.Meta{ProgressToken: 1}
	if _, err := pt.CallTool(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	p.Stop()
	_ = main.Close()
	_ = pt.Close()
	goleak.VerifyNone(t, before, goleak.IgnoreTopFunction("internal/poll.runtime_pollWait"),
		// A message that reaches an actor after it stopped (a connection-lost notice racing
		// the upstream's stop) starts protoactor's dead-letter log throttle, a goroutine that
		// ends by itself one throttle period later.
		goleak.IgnoreTopFunction("github.com/asynkron/protoactor-go/actor.NewDeadLetter.NewThrottle.func4.1"))
}

// TestMCPProgressRoutedPerCall: two agents call the same upstream through /mcp at once with
// the same progress token; each gets exactly its own call's notifications, with its own
// token, and all of them before the call's answer (the upstream actor routes them by the
// token it sent upstream and answers the call only after them).
func TestMCPProgressRoutedPerCall(t *testing.T) {
	p := startProxy(t, servers(stdioFixture(t, "fx")))
	p.waitState("fx", 30*time.Second, actors.StateReady)
	type agent struct {
		c     *client.Client
		mu    sync.Mutex
		steps []float64
	}
	agents := []*agent{{}, {}}
	for i, a := range agents {
		a.c = dialMCP(t, p.URL+"/mcp", p.mcpKey(), fmt.Sprintf("progress-%d", i))
		a.c.OnNotification(func(n mcp.JSONRPCNotification) {
			if n.Method != string(mcp.MethodNotificationProgress) {
				return
			}
			if tok := n.Params.AdditionalFields["progressToken"]; tok != "same" {
				t.Errorf("agent %d got progress with token %v", i, tok)
			}
			a.mu.Lock()
			a.steps = append(a.steps, n.Params.AdditionalFields["progress"].(float64))
			a.mu.Unlock()
		})
	}
	var wg sync.WaitGroup
	for i, a := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			req := mcp.CallToolRequest{}
			req.Params.Name = "call_tool"
			req.Params.Arguments = map[string]any{"name": "fx:progress", "arguments": map[string]any{"steps": 3, "interval_ms": 20}}
			req.Params.Meta = &mcp.Meta{ProgressToken: "same"}
			res, err := a.c.CallTool(ctx, req)
			if err != nil || res.IsError {
				t.Errorf("agent %d: %+v %v", i, res, err)
				return
			}
			a.mu.Lock()
			defer a.mu.Unlock()
			if len(a.steps) != 3 {
				t.Errorf("agent %d had %v progress steps when its answer came, want 3", i, a.steps)
			}
		}()
	}
	wg.Wait()
}
