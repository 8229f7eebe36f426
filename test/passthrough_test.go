package test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/upstream"
	"github.com/mcpproxy/mcpproxy/config"
)

// agentAnswers are what the test's agent answers to the upstream's requests.
type agentAnswers struct{}

func (agentAnswers) CreateMessage(_ context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	var prompt string
	if len(req.Messages) > 0 {
		if tc, ok := mcp.AsTextContent(req.Messages[0].Content); ok {
			prompt = tc.Text
		}
	}
	return &mcp.CreateMessageResult{SamplingMessage: mcp.SamplingMessage{Role: mcp.RoleAssistant,
		Content: mcp.NewTextContent("the agent's answer to: " + prompt)}, Model: "e2e-agent-model", StopReason: "endTurn"}, nil
}

func (agentAnswers) ListRoots(context.Context, mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
	return &mcp.ListRootsResult{Roots: []mcp.Root{{URI: "file:///e2e/workspace", Name: "e2e-root"}}}, nil
}

func (agentAnswers) Elicit(context.Context, mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionDecline}}, nil
}

// agent is an mcp-go client on a passthrough endpoint with the notifications it received.
type agent struct {
	*client.Client
	mu    sync.Mutex
	notes []mcp.JSONRPCNotification
	wake  chan struct{}
}

// dialAgent connects an agent to url; capable agents declare sampling, roots and
// elicitation (and answer them with agentAnswers). It listens on the GET stream.
func dialAgent(t *testing.T, url, name string, capable bool) *agent {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	tr, err := transport.NewStreamableHTTP(url, transport.WithContinuousListening(),
		transport.WithHTTPLogger(quiet), transport.WithLogger(quiet))
	if err != nil {
		t.Fatal(err)
	}
	var opts []client.ClientOption
	if capable {
		opts = append(opts, client.WithSamplingHandler(agentAnswers{}), client.WithRootsHandler(agentAnswers{}),
			client.WithElicitationHandler(agentAnswers{}))
	}
	a := &agent{Client: client.NewClient(tr, opts...), wake: make(chan struct{})}
	a.OnNotification(func(n mcp.JSONRPCNotification) {
		a.mu.Lock()
		a.notes = append(a.notes, n)
		close(a.wake)
		a.wake = make(chan struct{})
		a.mu.Unlock()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.Close() })
	init := mcp.InitializeRequest{}
	init.Params.ClientInfo = mcp.Implementation{Name: name, Version: "1.0.0"}
	if _, err := a.Initialize(ctx, init); err != nil {
		t.Fatalf("initialize %s: %v", url, err)
	}
	return a
}

// waitNote waits for a notification that match accepts and returns it.
func (a *agent) waitNote(t *testing.T, timeout time.Duration, what string, match func(mcp.JSONRPCNotification) bool) mcp.JSONRPCNotification {
	t.Helper()
	deadline := time.After(timeout)
	for {
		a.mu.Lock()
		for _, n := range a.notes {
			if match(n) {
				a.mu.Unlock()
				return n
			}
		}
		wake := a.wake
		a.mu.Unlock()
		select {
		case <-wake:
		case <-deadline:
			t.Fatalf("no %s within %s", what, timeout)
		}
	}
}

func (a *agent) count(match func(mcp.JSONRPCNotification) bool) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, x := range a.notes {
		if match(x) {
			n++
		}
	}
	return n
}

func toolNamesOf(t *testing.T, c *client.Client) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := c.ListTools(ctx, mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, tool := range res.Tools {
		names = append(names, tool.Name)
	}
	return names
}

// serverProcesses lists the live server-everything processes whose environment holds kv
// ("KEY=value"); wrappers the daemon may put around a server do not count.
func serverProcesses(kv string) []int {
	var out []int
	for _, pid := range processesWithEnv(kv) {
		cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
		if err == nil && strings.Contains(string(cmdline), "server-everything") {
			out = append(out, pid)
		}
	}
	return out
}

// processesWithEnv lists live pids whose environment holds kv ("KEY=value").
func processesWithEnv(kv string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil || !slices.Contains(strings.Split(string(env), "\x00"), kv) {
			continue
		}
		if processAlive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// TestPassthroughEverything uses @modelcontextprotocol/server-everything through
// /mcp/server/everything with mcp-go's client: the agent's capabilities reach the upstream
// (which offers its sampling, elicitation and roots tools only to capable clients), and
// sampling, elicitation and roots requests are answered by the agent that made the call;
// progress carries the agent's token; logging/setLevel and log messages, prompts,
// completions, resources, templates, subscriptions and resources/updated all pass. Each
// session has its own server process, gone when the session ends.
func TestPassthroughEverything(t *testing.T) {
	marker := "MCPPROXY_PT_E2E=" + strconv.Itoa(os.Getpid())
	key, val, _ := strings.Cut(marker, "=")
	// Registered before the proxy, so it runs after the proxy has stopped.
	t.Cleanup(func() {
		waitFor(t, 10*time.Second, "every server process to end", func() bool { return len(processesWithEnv(marker)) == 0 })
	})
	entry := everythingServer(t, "everything")
	entry["env"] = map[string]string{key: val}
	p := startProxy(t, servers(entry))
	p.waitState("everything", 90*time.Second, actors.StateReady)
	url := p.URL + "/mcp/server/everything?apikey=" + p.Key
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()

	capable := dialAgent(t, url, "capable-agent", true)
	plain := dialAgent(t, url, "plain-agent", false)
	if n := len(serverProcesses(marker)); n != 3 {
		t.Errorf("%d server processes, want 3: the shared one and one per session", n)
	}

	t.Run("capabilities decide the tools", func(t *testing.T) {
		// The tools only a capable client is offered are not on the shared connection, so
		// the server's approval did not pin them (tool-level trust): the capable agent's
		// first listing hides them and hands them to the review; approved, they show.
		sampling := []string{"trigger-sampling-request", "trigger-elicitation-request", "get-roots-list"}
		if first := toolNamesOf(t, capable.Client); slices.Contains(first, sampling[0]) {
			t.Errorf("a tool never approved is listed: %v", first)
		}
		waitFor(t, 20*time.Second, "the capable agent's tools awaiting review", func() bool {
			return p.server("everything").ToolsAwaitingReview == len(sampling)
		})
		if code, body := p.do("POST", "/api/v1/servers/everything/tools/approve", map[string]any{"tools": sampling}, nil); code != 200 {
			t.Fatalf("approve the capable agent's tools: %d %s", code, body)
		}
		withCaps, without := toolNamesOf(t, capable.Client), toolNamesOf(t, plain.Client)
		for _, tool := range []string{"trigger-sampling-request", "trigger-elicitation-request", "get-roots-list"} {
			if !slices.Contains(withCaps, tool) {
				t.Errorf("the capable agent lacks %s: %v", tool, withCaps)
			}
			if slices.Contains(without, tool) {
				t.Errorf("the plain agent has %s", tool)
			}
		}
	})
	t.Run("sampling", func(t *testing.T) {
		res := callTool(t, capable.Client, "trigger-sampling-request", map[string]any{"prompt": "two plus two", "maxTokens": 10})
		if txt := textOf(res); res.IsError || !strings.Contains(txt, "e2e-agent-model") || !strings.Contains(txt, "the agent's answer to: ") {
			t.Fatalf("sampling result %q", txt)
		}
	})
	t.Run("elicitation", func(t *testing.T) {
		res := callTool(t, capable.Client, "trigger-elicitation-request", map[string]any{})
		if txt := textOf(res); res.IsError || !strings.Contains(txt, "decline") {
			t.Fatalf("elicitation result %q", txt)
		}
	})
	t.Run("roots", func(t *testing.T) {
		res := callTool(t, capable.Client, "get-roots-list", map[string]any{})
		if txt := textOf(res); !strings.Contains(txt, "file:///e2e/workspace") {
			t.Fatalf("roots result %q", txt)
		}
	})
	t.Run("progress", func(t *testing.T) {
		req := mcp.CallToolRequest{}
		req.Params.Name = "trigger-long-running-operation"
		req.Params.Arguments = map[string]any{"duration": 0.3, "steps": 3}
		req.Params.Meta = &mcp.Meta{ProgressToken: "e2e-progress"}
		if _, err := capable.CallTool(ctx, req); err != nil {
			t.Fatal(err)
		}
		isMine := func(n mcp.JSONRPCNotification) bool {
			return n.Method == string(mcp.MethodNotificationProgress) && n.Params.AdditionalFields["progressToken"] == "e2e-progress"
		}
		waitFor(t, 10*time.Second, "three progress notifications", func() bool { return capable.count(isMine) == 3 })
	})
	t.Run("logging", func(t *testing.T) {
		sl := mcp.SetLevelRequest{}
		sl.Params.Level = mcp.LoggingLevelDebug
		if err := capable.SetLevel(ctx, sl); err != nil {
			t.Fatal(err)
		}
		callTool(t, capable.Client, "toggle-simulated-logging", map[string]any{})
		capable.waitNote(t, 15*time.Second, "log message", func(n mcp.JSONRPCNotification) bool {
			// server-everything picks a level at random; its alert text is spelled
			// "Alert level-message", the others "<Level>-level message".
			data := fmt.Sprint(n.Params.AdditionalFields["data"])
			return n.Method == string(mcp.MethodNotificationMessage) &&
				(strings.Contains(data, "-level message") || strings.Contains(data, "level-message"))
		})
		callTool(t, capable.Client, "toggle-simulated-logging", map[string]any{})
	})
	t.Run("prompts and completions", func(t *testing.T) {
		pl, err := capable.ListPrompts(ctx, mcp.ListPromptsRequest{})
		if err != nil || !slices.ContainsFunc(pl.Prompts, func(p mcp.Prompt) bool { return p.Name == "args-prompt" }) {
			t.Fatalf("prompts/list %+v %v", pl, err)
		}
		gp := mcp.GetPromptRequest{}
		gp.Params.Name = "args-prompt"
		gp.Params.Arguments = map[string]string{"city": "Lisbon"}
		res, err := capable.GetPrompt(ctx, gp)
		if err != nil || len(res.Messages) == 0 {
			t.Fatalf("prompts/get %+v %v", res, err)
		}
		if tc, _ := mcp.AsTextContent(res.Messages[0].Content); !strings.Contains(tc.Text, "Lisbon") {
			t.Errorf("prompt text %q", tc.Text)
		}
		cr := mcp.CompleteRequest{}
		cr.Params.Ref = mcp.PromptReference{Type: "ref/prompt", Name: "completable-prompt"}
		cr.Params.Argument.Name, cr.Params.Argument.Value = "department", "En"
		comp, err := capable.Complete(ctx, cr)
		if err != nil || !slices.Equal(comp.Completion.Values, []string{"Engineering"}) {
			t.Fatalf("completion/complete %+v %v", comp, err)
		}
	})
	t.Run("resources and subscriptions", func(t *testing.T) {
		rl, err := capable.ListResources(ctx, mcp.ListResourcesRequest{})
		if err != nil || len(rl.Resources) == 0 {
			t.Fatalf("resources/list %+v %v", rl, err)
		}
		tl, err := capable.ListResourceTemplates(ctx, mcp.ListResourceTemplatesRequest{})
		if err != nil || len(tl.ResourceTemplates) == 0 {
			t.Fatalf("resources/templates/list %+v %v", tl, err)
		}
		const uri = "demo://resource/dynamic/text/1"
		rr := mcp.ReadResourceRequest{}
		rr.Params.URI = uri
		if res, err := capable.ReadResource(ctx, rr); err != nil || len(res.Contents) == 0 {
			t.Fatalf("resources/read %+v %v", res, err)
		}
		sr := mcp.SubscribeRequest{}
		sr.Params.URI = uri
		if err := capable.Subscribe(ctx, sr); err != nil {
			t.Fatal(err)
		}
		callTool(t, capable.Client, "toggle-subscriber-updates", map[string]any{})
		capable.waitNote(t, 15*time.Second, "resources/updated", func(n mcp.JSONRPCNotification) bool {
			return n.Method == string(mcp.MethodNotificationResourceUpdated) && n.Params.AdditionalFields["uri"] == uri
		})
		callTool(t, capable.Client, "toggle-subscriber-updates", map[string]any{})
		ur := mcp.UnsubscribeRequest{}
		ur.Params.URI = uri
		if err := capable.Unsubscribe(ctx, ur); err != nil {
			t.Fatal(err)
		}
	})

	_ = plain.Close()
	waitFor(t, 10*time.Second, "the plain agent's server process to end", func() bool { return len(serverProcesses(marker)) == 2 })
}

// rawPost sends one JSON-RPC body to a passthrough endpoint and returns the status, the
// session id header and the data of each SSE event (or the JSON body as one element).
func rawPost(t *testing.T, url, sid, body string) (int, string, []string) {
	t.Helper()
	return rawPostHeaders(t, url, sid, body, nil)
}

// rawPostHeaders is rawPost with extra request headers (a credential).
func rawPostHeaders(t *testing.T, url, sid, body string, headers map[string]string) (int, string, []string) {
	t.Helper()
	req, err := http.NewRequest("POST", url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
	}
	resp, err := (&http.Client{Timeout: 60 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out []string
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(make([]byte, 1<<20), 16<<20)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				out = append(out, d)
			}
		}
	} else if data, _ := io.ReadAll(resp.Body); len(data) > 0 {
		out = append(out, string(data))
	}
	return resp.StatusCode, resp.Header.Get("Mcp-Session-Id"), out
}

const rawInit = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw-e2e","version":"1"}}}`

// resultOf decodes the result of the last answer.
func resultOf(t *testing.T, answers []string) json.RawMessage {
	t.Helper()
	if len(answers) == 0 {
		t.Fatal("no answer")
	}
	var m struct {
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal([]byte(answers[len(answers)-1]), &m); err != nil || len(m.Error) > 0 {
		t.Fatalf("answer %s: %v", answers[len(answers)-1], err)
	}
	return m.Result
}

// TestPassthroughFixture uses the test fixture (stdio and streamable HTTP) through
// /mcp/server/{name}: tools/list is what the server sends, byte for byte in meaning; each
// session runs its own process; a cancelled request ends at once and the session goes on;
// call_tool_timeout holds; quarantine in the middle of a session refuses the next request,
// ends the session and its process, and nothing reaches the upstream.
func TestPassthroughFixture(t *testing.T) {
	httpURL, _ := startFixtureHTTP(t, "http")
	cfg := servers(stdioFixture(t, "fx"), map[string]any{"name": "remote", "url": httpURL, "protocol": "http", "quarantined": false})
	cfg["call_tool_timeout"] = "2s"
	p := startProxy(t, cfg)
	shared := p.waitState("fx", 30*time.Second, actors.StateReady)
	p.waitState("remote", 30*time.Second, actors.StateReady)
	url := p.URL + "/mcp/server/fx?apikey=" + p.Key

	code, sid, answers := rawPost(t, url, "", rawInit)
	if code != 200 || sid == "" {
		t.Fatalf("initialize: %d %q %v", code, sid, answers)
	}
	rawPost(t, url, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)

	t.Run("tools/list as the server sends it", func(t *testing.T) {
		_, _, answers := rawPost(t, url, sid, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
		via := resultOf(t, answers)
		direct := directToolsList(t, fixtureBin(t), "fx")
		var a, b any
		_ = json.Unmarshal(via, &a)
		_ = json.Unmarshal(direct, &b)
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("tools/list through the proxy differs from the server's:\n%s\n%s", via, direct)
		}
	})
	var sessionPID int
	t.Run("own process", func(t *testing.T) {
		_, _, answers := rawPost(t, url, sid, `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"pid","arguments":{}}}`)
		var res mcp.CallToolResult
		_ = json.Unmarshal(resultOf(t, answers), &res)
		sessionPID, _ = strconv.Atoi(textOf(&res))
		if sessionPID == 0 || sessionPID == shared.PID || !processAlive(sessionPID) {
			t.Fatalf("session pid %d, shared %d", sessionPID, shared.PID)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		done := make(chan []string, 1)
		start := time.Now()
		go func() {
			_, _, a := rawPost(t, url, sid, `{"jsonrpc":"2.0","id":"slow","method":"tools/call","params":{"name":"sleep","arguments":{"ms":20000}}}`)
			done <- a
		}()
		// The call must be in flight before it can be cancelled; the fixture counts calls
		// when they start.
		polls := 0
		waitFor(t, 10*time.Second, "the sleep to start", func() bool {
			_, _, a := rawPost(t, url, sid, `{"jsonrpc":"2.0","id":"n","method":"tools/call","params":{"name":"calls","arguments":{}}}`)
			var res mcp.CallToolResult
			_ = json.Unmarshal(resultOf(t, a), &res)
			n, _ := strconv.Atoi(textOf(&res))
			polls++
			return n >= 1+polls // pid, the earlier polls, and the sleep once it started
		})
		rawPost(t, url, sid, `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"slow","reason":"e2e"}}`)
		select {
		case a := <-done:
			if len(a) != 0 {
				t.Errorf("the cancelled call answered %q", a)
			}
			if time.Since(start) > 10*time.Second {
				t.Errorf("the cancelled call took %s", time.Since(start))
			}
		case <-time.After(15 * time.Second):
			t.Fatal("the cancelled call's stream did not end")
		}
	})
	t.Run("timeout", func(t *testing.T) {
		_, _, answers := rawPost(t, url, sid, `{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"sleep","arguments":{"ms":20000}}}`)
		if r := string(resultOf(t, answers)); !strings.Contains(r, `"isError":true`) || !strings.Contains(r, "timed out after 2s") {
			t.Fatalf("sleep past call_tool_timeout: %s", r)
		}
		_, _, answers = rawPost(t, url, sid, `{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"echo","arguments":{"text":"still here"}}}`)
		if r := string(resultOf(t, answers)); !strings.Contains(r, "still here") {
			t.Fatalf("after the timeout: %s", r)
		}
	})
	t.Run("streamable HTTP upstream with progress", func(t *testing.T) {
		a := dialAgent(t, p.URL+"/mcp/server/remote?apikey="+p.Key, "remote-agent", false)
		req := mcp.CallToolRequest{}
		req.Params.Name = "progress"
		req.Params.Arguments = map[string]any{"steps": 2}
		req.Params.Meta = &mcp.Meta{ProgressToken: 42}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if res, err := a.CallTool(ctx, req); err != nil || textOf(res) != "done" {
			t.Fatalf("progress: %+v %v", res, err)
		}
		waitFor(t, 10*time.Second, "two progress notifications", func() bool {
			return a.count(func(n mcp.JSONRPCNotification) bool {
				return n.Method == string(mcp.MethodNotificationProgress) && n.Params.AdditionalFields["progressToken"] == float64(42)
			}) == 2
		})
	})
	t.Run("quarantine mid-session", func(t *testing.T) {
		if code, body := p.do("POST", "/api/v1/servers/fx/quarantine", map[string]any{"quarantined": true}, nil); code != 200 {
			t.Fatalf("quarantine: %d %s", code, body)
		}
		_, _, answers := rawPost(t, url, sid, `{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"echo","arguments":{"text":"x"}}}`)
		if r := string(resultOf(t, answers)); !strings.Contains(r, `"isError":true`) || !strings.Contains(r, "quarantined") {
			t.Fatalf("call while quarantined: %s", r)
		}
		waitFor(t, 10*time.Second, "the session's process to end", func() bool { return !processAlive(sessionPID) })
		if code, _, _ := rawPost(t, url, sid, `{"jsonrpc":"2.0","id":7,"method":"ping"}`); code != 404 {
			t.Errorf("the closed session answered %d", code)
		}
		if code, _, _ := rawPost(t, url, "", rawInit); code != 409 {
			t.Errorf("initialize while quarantined: %d", code)
		}
		if code, body := p.do("POST", "/api/v1/servers/fx/quarantine", map[string]any{"quarantined": false}, nil); code != 200 {
			t.Fatalf("unquarantine: %d %s", code, body)
		}
	})
}

// directToolsList asks the fixture for tools/list over a raw stdio connection of its own.
func directToolsList(t *testing.T, bin, name string) json.RawMessage {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := upstream.DialRaw(ctx, config.ServerConfig{Name: name, Protocol: "stdio", Command: bin, Args: []string{"--name", name}},
		upstream.Options{}, upstream.RawHandlers{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, rpcErr, err := c.Call(ctx, c.NewID(), "initialize", json.RawMessage(`{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"direct","version":"1"}}`)); err != nil || rpcErr != nil {
		t.Fatalf("direct initialize: %v %v", err, rpcErr)
	}
	_ = c.Notify(ctx, "notifications/initialized", nil)
	res, rpcErr, err := c.Call(ctx, c.NewID(), "tools/list", nil)
	if err != nil || rpcErr != nil {
		t.Fatalf("direct tools/list: %v %v", err, rpcErr)
	}
	return res
}
