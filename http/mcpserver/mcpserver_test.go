package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
	"go.uber.org/goleak"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/search"
	"github.com/mcpproxy/mcpproxy/actors/store"
	mhttp "github.com/mcpproxy/mcpproxy/http"
)

// fakeBackend answers like the registry would, from function fields; a nil field fails.
type fakeBackend struct {
	search  func(query string, limit int) ([]actors.ToolHit, int, error)
	servers func() ([]actors.Server, error)
	call    func(ctx context.Context, name string, args any, meta *mcp.Meta) (*mcp.CallToolResult, error)
	// target and check answer the passthrough's questions; nil fields know no server.
	target func(name string) (actors.PassthroughTarget, error)
	check  func(name string) error
	// direct, when set, answers the endpoint's listing of the direct tools; listings and
	// catalogs count the calls.
	direct   func() []actors.ToolHit
	listings atomic.Int32
	catalogs atomic.Int32
}

var _ Backend = (*fakeBackend)(nil)

func (f *fakeBackend) SearchTools(_ context.Context, q string, limit int) ([]actors.ToolHit, int, error) {
	if q == "" && limit == maxDirectTools {
		// The endpoint lists the direct tools (direct.go) once /mcp/all is asked for.
		f.listings.Add(1)
		if f.direct != nil {
			hits := f.direct()
			return hits, len(hits), nil
		}
		return nil, 0, nil
	}
	return f.search(q, limit)
}

func (f *fakeBackend) Servers(context.Context) ([]actors.Server, error) { return f.servers() }

func (f *fakeBackend) CallTool(ctx context.Context, name string, args any, meta *mcp.Meta, _ time.Duration, _ actors.ProgressSink) (*mcp.CallToolResult, error) {
	return f.call(ctx, name, args, meta)
}

func (f *fakeBackend) PassthroughTarget(_ context.Context, name string) (actors.PassthroughTarget, error) {
	if f.target == nil {
		return actors.PassthroughTarget{}, actors.Errorf(actors.CodeNotFound, "server %q not found", name)
	}
	return f.target(name)
}

// The catalog is empty: the endpoint lists it whatever the test is about; the e2e tests
// (test/mcp_catalog_test.go) drive it against real servers.
func (f *fakeBackend) Catalog(context.Context) (actors.CatalogView, error) {
	f.catalogs.Add(1)
	return actors.CatalogView{}, nil
}

func (f *fakeBackend) CatalogCall(_ context.Context, req actors.CatalogRequest) (json.RawMessage, string, time.Duration, error) {
	return nil, "", 0, actors.Errorf(actors.CodeNotFound, "no server lists %q", req.URI+req.Prompt)
}

func (f *fakeBackend) SubscribeResource(_ context.Context, uri, _ string, _ actors.ResourceSink) error {
	return actors.Errorf(actors.CodeNotFound, "no server lists resource %q", uri)
}

func (f *fakeBackend) UnsubscribeResource(context.Context, string, string) error { return nil }

func (f *fakeBackend) DropSubscriber(string) {}

func (f *fakeBackend) CheckPassthrough(_ context.Context, name string) error {
	if f.check == nil {
		return actors.Errorf(actors.CodeNotFound, "server %q not found", name)
	}
	return f.check(name)
}

// memStore is an in-memory actors.SessionStore.
type memStore struct {
	mu sync.Mutex
	m  map[string]store.Session
}

func (s *memStore) PutSession(v store.Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]store.Session{}
	}
	s.m[v.ID] = v
	return nil
}

func (s *memStore) GetSession(id string) (store.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.m[id]
	if !ok {
		return v, store.ErrNotFound
	}
	return v, nil
}

func (s *memStore) ListSessions() ([]store.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []store.Session
	for _, v := range s.m {
		out = append(out, v)
	}
	return out, nil
}

func (s *memStore) PruneSessions(int) error { return nil }

const testKey = "test-key"

// noLeaks checks, after every other cleanup of the test, that no goroutine was left behind.
func noLeaks(t *testing.T) {
	opt := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, opt) })
}

// serve mounts an Endpoint on a test HTTP server and returns its URL. Its sessions actor
// runs in an actor system of the test's own, with st as its store and the backend's
// passthrough target.
func serve(t *testing.T, b *fakeBackend, st actors.SessionStore, o Options) (*Endpoint, string) {
	e, url, _ := serveWith(t, b, actors.SessionsOptions{Store: st}, o)
	return e, url
}

// serveWith is serve with the sessions actor's options (Target and Logger are filled in);
// it also returns the actor system.
func serveWith(t *testing.T, b *fakeBackend, so actors.SessionsOptions, o Options) (*Endpoint, string, *actor.ActorSystem) {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	so.Target = func(ctx context.Context, name string) (actors.PassthroughTarget, error) {
		return b.PassthroughTarget(ctx, name)
	}
	if so.Logger == nil {
		so.Logger = quiet
	}
	sessions, err := actors.SpawnSessions(sys, so)
	if err != nil {
		t.Fatal(err)
	}
	o.Backend, o.Sessions = b, sessions
	e := New(o)
	s := mhttp.New(mhttp.Options{Backend: nil, Settings: mhttp.Settings{APIKey: testKey, RequireMCPAuth: true},
		MCP: e, Sessions: sessions})
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ts.Close()
		e.Close(context.Background())
		_ = sys.Root.PoisonFuture(sessions.PID()).Wait()
		sys.Shutdown()
	})
	return e, ts.URL, sys
}

// sessionsOf is the sessions actor's client of an endpoint started by serve.
func sessionsOf(e *Endpoint) *actors.SessionsClient { return e.sessions.(*actors.SessionsClient) }

func connect(t *testing.T, url, name string) *client.Client {
	t.Helper()
	c, err := client.NewStreamableHttpClient(url, transport.WithHTTPHeaders(map[string]string{"X-API-Key": testKey}))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	req := mcp.InitializeRequest{}
	req.Params.ClientInfo = mcp.Implementation{Name: name, Version: "0.1"}
	if _, err := c.Initialize(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	return c
}

func call(t *testing.T, c *client.Client, name string, args map[string]any) *mcp.CallToolResult {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	res, err := c.CallTool(context.Background(), req)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return res
}

func text(r *mcp.CallToolResult) string {
	var out []string
	for _, c := range r.Content {
		if tc, ok := mcp.AsTextContent(c); ok {
			out = append(out, tc.Text)
		}
	}
	return strings.Join(out, "\n")
}

// TestCallToolMapsErrors: the upstream's result comes back unchanged; every error the
// proxy decides becomes a tool error that names it; bad input never reaches the backend.
func TestCallToolMapsErrors(t *testing.T) {
	noLeaks(t)
	var got struct {
		name string
		args any
	}
	b := &fakeBackend{call: func(_ context.Context, name string, args any, _ *mcp.Meta) (*mcp.CallToolResult, error) {
		got.name, got.args = name, args
		switch name {
		case "up:ok":
			return &mcp.CallToolResult{Content: []mcp.Content{mcp.NewTextContent("fine")}, StructuredContent: map[string]any{"n": 1.0}}, nil
		case "up:err":
			return mcp.NewToolResultError("the upstream's own error"), nil
		case "q:x":
			return nil, actors.Errorf(actors.CodeConflict, `server "q" is quarantined`)
		case "slow:x":
			return nil, actors.Errorf(actors.CodeTimeout, "call to slow:x timed out after 1s")
		case "gone:x":
			return nil, errors.New("plain failure")
		}
		return nil, actors.Errorf(actors.CodeNotFound, "no such thing")
	}}
	_, url := serve(t, b, nil, Options{})
	c := connect(t, url+"/mcp", "unit")
	cases := []struct {
		name     string
		args     map[string]any
		isError  bool
		text     string
		backend  string // the name the backend saw, "" if it must not be called
		argsSeen string
	}{
		{"success unchanged", map[string]any{"name": "up:ok", "arguments": map[string]any{"a": 1.0}}, false, "fine", "up:ok", `{"a":1}`},
		{"upstream tool error unchanged", map[string]any{"name": "up:err"}, true, "the upstream's own error", "up:err", `{}`},
		{"quarantined", map[string]any{"name": "q:x"}, true, `server "q" is quarantined`, "q:x", `{}`},
		{"timeout", map[string]any{"name": "slow:x"}, true, "timed out", "slow:x", `{}`},
		{"uncoded error", map[string]any{"name": "gone:x"}, true, "plain failure", "gone:x", `{}`},
		{"no colon", map[string]any{"name": "x"}, true, `must be "server:tool"`, "", ""},
		{"empty tool", map[string]any{"name": "up:"}, true, `must be "server:tool"`, "", ""},
		{"arguments not an object", map[string]any{"name": "up:ok", "arguments": []any{1}}, true, "arguments must be an object", "", ""},
		{"missing name", map[string]any{}, true, "name", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got.name, got.args = "", nil
			res := call(t, c, "call_tool", tc.args)
			if res.IsError != tc.isError || !strings.Contains(text(res), tc.text) {
				t.Fatalf("isError=%v %q, want %v %q", res.IsError, text(res), tc.isError, tc.text)
			}
			if got.name != tc.backend {
				t.Fatalf("backend saw %q, want %q", got.name, tc.backend)
			}
			if tc.backend != "" {
				if a, _ := json.Marshal(got.args); string(a) != tc.argsSeen {
					t.Fatalf("backend args %s, want %s", a, tc.argsSeen)
				}
			}
		})
	}
	if res := call(t, c, "call_tool", map[string]any{"name": "up:ok"}); res.StructuredContent == nil {
		t.Fatal("structured content lost")
	}
}

// TestRetrieveToolsLimits: the default limit is the settings' tools_limit, an explicit one
// is passed on, and bad ones are refused without searching.
func TestRetrieveToolsLimits(t *testing.T) {
	noLeaks(t)
	var seen []int
	b := &fakeBackend{search: func(q string, limit int) ([]actors.ToolHit, int, error) {
		seen = append(seen, limit)
		hit := actors.ToolHit{Tool: actors.Tool{Name: "s:t", Server: "s", Raw: "t", Description: "draft a note",
			InputSchema: json.RawMessage(`{"type":"object","properties":{"recipient":{"type":"string"}}}`)}, Score: 2.5}
		if q != "x" {
			// What actors.Client.SearchTools explains (registry_test.go, "hits explain themselves").
			hit.Matched = search.Explain(q, hit.SearchDoc())
		}
		return []actors.ToolHit{hit}, 7, nil
	}}
	_, url := serve(t, b, nil, Options{})
	c := connect(t, url+"/mcp", "unit")
	res := call(t, c, "retrieve_tools", map[string]any{"query": "x"})
	var out struct {
		Tools []foundTool `json:"tools"`
		Total int         `json:"total"`
	}
	if err := json.Unmarshal([]byte(text(res)), &out); err != nil {
		t.Fatal(err)
	}
	if out.Total != 7 || len(out.Tools) != 1 || out.Tools[0].Name != "s:t" || out.Tools[0].Score != 2.5 ||
		string(out.Tools[0].InputSchema) != `{"type":"object","properties":{"recipient":{"type":"string"}}}` {
		t.Fatalf("result %+v", out)
	}
	if out.Tools[0].Matched != nil {
		t.Errorf("query x matched %v", out.Tools[0].Matched)
	}
	// Each hit says which of its fields the query matched, as the backend explained it.
	res = call(t, c, "retrieve_tools", map[string]any{"query": "note for a recipient"})
	if err := json.Unmarshal([]byte(text(res)), &out); err != nil {
		t.Fatal(err)
	}
	if got := out.Tools[0].Matched; !slices.Equal(got, []string{"description", "parameters"}) {
		t.Errorf("matched %v, want [description parameters]", got)
	}
	call(t, c, "retrieve_tools", map[string]any{"query": "x", "limit": 3})
	for _, bad := range []any{0, 1001, 2.5, "5"} {
		if res := call(t, c, "retrieve_tools", map[string]any{"query": "x", "limit": bad}); !res.IsError {
			t.Errorf("limit %v accepted", bad)
		}
	}
	if res := call(t, c, "retrieve_tools", map[string]any{"query": "  "}); !res.IsError {
		t.Error("blank query accepted")
	}
	if !slices.Equal(seen, []int{15, 15, 3}) {
		t.Fatalf("limits seen %v, want [15 15 3]", seen)
	}
}

// TestSessionLifecycle: a session is recorded with its client and calls, persisted, closed
// by DELETE, and refused afterwards; the session routes show it.
func TestSessionLifecycle(t *testing.T) {
	noLeaks(t)
	st := &memStore{}
	st.PutSession(store.Session{ID: "old", Status: store.SessionActive, StartedAt: time.Unix(1, 0)})
	b := &fakeBackend{call: func(context.Context, string, any, *mcp.Meta) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText("ok"), nil
	}}
	e, url, _ := serveWith(t, b, actors.SessionsOptions{Store: st, FlushInterval: 50 * time.Millisecond}, Options{})
	if s, _ := st.GetSession("old"); s.Status != store.SessionClosed {
		t.Fatalf("a session left active by an earlier run is %q", s.Status)
	}
	c := connect(t, url+"/mcp", "lifecycle")
	call(t, c, "call_tool", map[string]any{"name": "a:b"})
	call(t, c, "call_tool", map[string]any{"name": "a:b"})
	id := c.GetSessionId()
	s, err := sessionsOf(e).Session(context.Background(), id)
	if err != nil || s.ClientName != "lifecycle" || s.ClientVersion != "0.1" || s.ToolCalls != 2 || s.Status != store.SessionActive {
		t.Fatalf("live session %+v %v", s, err)
	}
	// The sessions actor writes changed records every FlushInterval.
	waitUntil(t, "the session to be written", func() bool {
		s, _ := st.GetSession(id)
		return s.ToolCalls == 2 && s.ClientName == "lifecycle"
	})

	req, _ := http.NewRequest(http.MethodGet, url+"/api/v1/sessions", nil)
	req.Header.Set("X-API-Key", testKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Sessions []store.Session `json:"sessions"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if len(list.Sessions) != 2 || list.Sessions[0].ID != id || list.Sessions[1].ID != "old" {
		t.Fatalf("listed %+v, want the new session first, then the old one", list.Sessions)
	}

	// DELETE ends it: it is stored as closed and its id is refused.
	del, _ := http.NewRequest(http.MethodDelete, url+"/mcp", nil)
	del.Header.Set("X-API-Key", testKey)
	del.Header.Set("Mcp-Session-Id", id)
	resp, err = http.DefaultClient.Do(del)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if s, _ := st.GetSession(id); s.Status != store.SessionClosed || s.ToolCalls != 2 {
		t.Fatalf("after DELETE the store has %+v", s)
	}
	if _, err := c.ListTools(context.Background(), mcp.ListToolsRequest{}); err == nil {
		t.Fatal("a closed session still answers")
	}
	if _, err := sessionsOf(e).Session(context.Background(), "nope"); actors.ErrorCode(err) != actors.CodeNotFound {
		t.Fatalf("unknown session: %v", err)
	}
}

// TestSessionIdleAndStreams: a session idles out only with no request in flight and no
// open stream; closing a session ends its streams and makes mcp-go forget it; its id is
// refused afterwards, and one endpoint's ids are refused on another.
func TestSessionIdleAndStreams(t *testing.T) {
	noLeaks(t)
	st := &memStore{}
	quiet := slog.New(slog.DiscardHandler)
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	sessions, err := actors.SpawnSessions(sys, actors.SessionsOptions{Store: st, Logger: quiet,
		IdleTTL: 100 * time.Millisecond, FlushInterval: time.Hour, KeepClosed: 10})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = sys.Root.PoisonFuture(sessions.PID()).Wait()
		sys.Shutdown()
	})
	purged := make(chan string, 4)
	m := &idManager{s: sessions, endpoint: "/mcp", handler: http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		purged <- r.Header.Get("Mcp-Session-Id")
	})}
	sessions.OnIdleClose("/mcp", m.purge)
	ctx := context.Background()
	busy, idle := m.Generate(), m.Generate()
	streamDone, err := sessions.Begin(ctx, busy, "/mcp")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sessions.Begin(ctx, busy, "/mcp/server/x"); err == nil {
		t.Fatal("a /mcp session was accepted on another endpoint")
	}
	select {
	case id := <-purged:
		if id != idle {
			t.Fatalf("purged %q, want the idle session", id)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the idle session was not closed")
	}
	waitUntil(t, "the idle session to be stored closed", func() bool {
		s, _ := st.GetSession(idle)
		return s.Status == store.SessionClosed
	})
	if terminated, err := m.Validate(idle); err == nil && !terminated {
		t.Fatal("a closed session still validates")
	}
	select {
	case <-streamDone:
		t.Fatal("the session with an open stream was closed")
	default:
	}
	if _, err := m.Validate(busy); err != nil {
		t.Fatalf("the busy session does not validate: %v", err)
	}

	// A DELETE (mcp-go calls Terminate) ends the open stream, and the record is written
	// before Terminate returns.
	if _, err := m.Terminate(busy); err != nil {
		t.Fatal(err)
	}
	select {
	case <-streamDone:
	case <-time.After(5 * time.Second):
		t.Fatal("closing the session did not end its stream")
	}
	sessions.End(busy)
	if _, err := sessions.Begin(ctx, busy, "/mcp"); err == nil {
		t.Fatal("a terminated session was accepted")
	}
	if s, _ := st.GetSession(busy); s.Status != store.SessionClosed {
		t.Fatalf("stored terminated session %+v", s)
	}
}

// TestHTTPRefusals: what the wrapper answers before mcp-go sees a request.
func TestHTTPRefusals(t *testing.T) {
	noLeaks(t)
	_, url := serve(t, &fakeBackend{}, nil, Options{MaxBody: 1024})
	init := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}`
	key := map[string]string{"X-API-Key": testKey}
	cases := []struct {
		name, method, path, body string
		headers                  map[string]string
		status                   int
		code                     string
	}{
		{"no key", "POST", "/mcp", init, nil, 401, "UNAUTHORIZED"},
		{"body too large", "POST", "/mcp", `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"` + strings.Repeat("a", 2048) + `"}}`, key, 413, "PAYLOAD_TOO_LARGE"},
		{"GET without a session", "GET", "/mcp", "", key, 400, "INVALID_ARGUMENT"},
		{"unknown session", "POST", "/mcp", `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, map[string]string{"X-API-Key": testKey, "Mcp-Session-Id": "nope"}, 404, "NOT_FOUND"},
		{"unknown session stream", "GET", "/mcp", "", map[string]string{"X-API-Key": testKey, "Mcp-Session-Id": "nope"}, 404, "NOT_FOUND"},
		{"unknown server", "POST", "/mcp/server/nope", init, key, 404, "NOT_FOUND"},
		{"initialize", "POST", "/mcp", init, key, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, url+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Accept", "application/json, text/event-stream")
			for k, v := range tc.headers {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var body struct {
				Code string `json:"code"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&body)
			if resp.StatusCode != tc.status || body.Code != tc.code {
				t.Fatalf("%d %q, want %d %q", resp.StatusCode, body.Code, tc.status, tc.code)
			}
		})
	}
}

// TestDirectToolsListedOnFirstUse: the endpoint keeps its catalog in step from the start,
// but lists the registry's tools for the direct server only once /mcp/all is asked for;
// the first session there already finds them.
func TestDirectToolsListedOnFirstUse(t *testing.T) {
	b := &fakeBackend{direct: func() []actors.ToolHit {
		return []actors.ToolHit{{Tool: actors.Tool{Name: "fx:echo", Server: "fx", Raw: "echo", Description: "echoes",
			InputSchema: json.RawMessage(`{"type":"object"}`), Hash: "h1"}}}
	}}
	_, url := serve(t, b, nil, Options{})
	deadline := time.Now().Add(10 * time.Second)
	for b.catalogs.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the endpoint never listed the catalog")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := b.listings.Load(); n != 0 {
		t.Fatalf("the direct tools were listed %d times before anyone asked for them", n)
	}
	c := connect(t, url+"/mcp/all", "direct")
	res, err := c.ListTools(context.Background(), mcp.ListToolsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, tool := range res.Tools {
		found = found || tool.Name == "fx__echo"
	}
	if !found || b.listings.Load() == 0 {
		t.Fatalf("the first /mcp/all session lists %d tools without fx__echo (%d listings)", len(res.Tools), b.listings.Load())
	}
}
