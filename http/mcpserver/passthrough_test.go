package mcpserver

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/passthrough"
	"github.com/mcpproxy/mcpproxy/actors/store"
	"github.com/mcpproxy/mcpproxy/actors/upstream"
)

// fakeUp is an in-memory upstream for the relay: serve answers requests (it may use h to
// send the agent notifications and requests first), and everything the agent side sends is
// recorded.
type fakeUp struct {
	h     upstream.RawHandlers
	serve func(ctx context.Context, f *fakeUp, method string, params json.RawMessage) (json.RawMessage, *upstream.RPCError, error)
	ids   atomic.Int64
	done  chan struct{}
	once  sync.Once

	mu   sync.Mutex
	got  []string // "method params", in order
	wake chan struct{}
}

func (f *fakeUp) record(method string, params json.RawMessage) {
	f.mu.Lock()
	f.got = append(f.got, method+" "+string(params))
	close(f.wake)
	f.wake = make(chan struct{})
	f.mu.Unlock()
}

func (f *fakeUp) NewID() int64 { return f.ids.Add(1) }

func (f *fakeUp) Call(ctx context.Context, _ int64, method string, params json.RawMessage) (json.RawMessage, *upstream.RPCError, error) {
	f.record(method, params)
	select {
	case <-f.done:
		return nil, nil, upstream.ErrConnLost
	default:
	}
	return f.serve(ctx, f, method, params)
}

func (f *fakeUp) Notify(_ context.Context, method string, params json.RawMessage) error {
	f.record(method, params)
	return nil
}

func (f *fakeUp) SetProtocolVersion(string) {}
func (f *fakeUp) Done() <-chan struct{}     { return f.done }
func (f *fakeUp) Close() error {
	f.once.Do(func() { close(f.done) })
	return nil
}

func (f *fakeUp) closed() bool {
	select {
	case <-f.done:
		return true
	default:
		return false
	}
}

// waitGot waits until the agent side has sent something that starts with prefix, and
// returns it.
func (f *fakeUp) waitGot(t *testing.T, prefix string) string {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		f.mu.Lock()
		for _, g := range f.got {
			if strings.HasPrefix(g, prefix) {
				f.mu.Unlock()
				return g
			}
		}
		wake := f.wake
		f.mu.Unlock()
		select {
		case <-wake:
		case <-deadline:
			t.Fatalf("the upstream never got %q (got %q)", prefix, f.all())
		}
	}
}

func (f *fakeUp) all() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.got)
}

// hang blocks a request until the call is cancelled or the connection closes.
func hang(ctx context.Context, f *fakeUp) (json.RawMessage, *upstream.RPCError, error) {
	select {
	case <-ctx.Done():
		return nil, nil, ctx.Err()
	case <-f.done:
		return nil, nil, upstream.ErrConnLost
	}
}

// fakeServer is the backend and dialer of a passthrough test: one server "up" whose access
// (gen or error) the test can change, as the registry would, and the connections dialled
// to it. Like the registry, it tells the sessions actor (revoke) when a change ends the
// server's sessions: a quarantine or other refusal, or a new gen (a config change).
type fakeServer struct {
	fakeBackend
	serve   func(ctx context.Context, f *fakeUp, method string, params json.RawMessage) (json.RawMessage, *upstream.RPCError, error)
	timeout time.Duration

	mu      sync.Mutex
	access  error
	genNow  int
	epoch   int // the registry's generation: it rises with every change
	ups     []*fakeUp
	dialErr error
	dialed  chan *fakeUp
	revoke  func(actors.RevokePassthrough)
}

func newFakeServer(serve func(ctx context.Context, f *fakeUp, method string, params json.RawMessage) (json.RawMessage, *upstream.RPCError, error)) *fakeServer {
	s := &fakeServer{serve: serve, timeout: 10 * time.Second, genNow: 1, dialed: make(chan *fakeUp, 100)}
	s.target = func(name string) (actors.PassthroughTarget, error) {
		if name != "up" {
			return actors.PassthroughTarget{}, actors.Errorf(actors.CodeNotFound, "server %q not found", name)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.access != nil {
			return actors.PassthroughTarget{}, s.access
		}
		return actors.PassthroughTarget{Timeout: s.timeout, Gen: s.epoch}, nil
	}
	s.check = func(name string) error {
		if name != "up" {
			return actors.Errorf(actors.CodeNotFound, "server %q not found", name)
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.access
	}
	return s
}

// set changes the server's access and gen; like the registry, it revokes the server's
// sessions before it returns when the change ends them.
func (s *fakeServer) set(gen int, access error) {
	s.mu.Lock()
	old := s.genNow
	s.genNow, s.access = gen, access
	s.epoch++
	epoch, revoke := s.epoch, s.revoke
	s.mu.Unlock()
	var why error
	switch {
	case access != nil:
		why = access
	case gen != old:
		why = actors.Errorf(actors.CodeNotFound, `server "up" was reconfigured; initialize a new session`)
	}
	if why != nil && revoke != nil {
		revoke(actors.RevokePassthrough{Server: "up", Gen: epoch, Err: why})
	}
}

func (s *fakeServer) dial(_ context.Context, _ actors.PassthroughTarget, h upstream.RawHandlers) (passthrough.Upstream, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dialErr != nil {
		return nil, s.dialErr
	}
	f := &fakeUp{h: h, serve: s.serve, done: make(chan struct{}), wake: make(chan struct{})}
	s.ups = append(s.ups, f)
	s.dialed <- f
	return f, nil
}

func (s *fakeServer) lastUp(t *testing.T) *fakeUp {
	t.Helper()
	select {
	case f := <-s.dialed:
		return f
	case <-time.After(10 * time.Second):
		t.Fatal("no upstream was dialled")
		return nil
	}
}

// fakeInit answers initialize with the version the agent asked for.
func fakeInit(params json.RawMessage) json.RawMessage {
	var p struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	_ = json.Unmarshal(params, &p)
	return json.RawMessage(fmt.Sprintf(`{"protocolVersion":%q,"capabilities":{"tools":{"listChanged":true},"prompts":{},"resources":{"subscribe":true},"logging":{},"completions":{},"x-vendor":{"a":1}},"serverInfo":{"name":"fake","version":"9"},"instructions":"hello"}`, p.ProtocolVersion))
}

func servePT(t *testing.T, s *fakeServer, so actors.SessionsOptions, o Options) (*Endpoint, string) {
	t.Helper()
	so.Dial = s.dial
	so.Store = &memStore{}
	o.Logger = slog.New(slog.DiscardHandler)
	e, url, sys := serveWith(t, &s.fakeBackend, so, o)
	pid := sessionsOf(e).PID()
	s.mu.Lock()
	s.revoke = func(m actors.RevokePassthrough) { sys.Root.Send(pid, m) }
	s.mu.Unlock()
	return e, url
}

// sampler, rooter and elicitor are the agent's answers to server-to-client requests.
type sampler struct{}

func (sampler) CreateMessage(_ context.Context, req mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	tc, _ := mcp.AsTextContent(req.Messages[0].Content)
	return &mcp.CreateMessageResult{SamplingMessage: mcp.SamplingMessage{Role: mcp.RoleAssistant,
		Content: mcp.NewTextContent("sampled: " + tc.Text)}, Model: "agent-model"}, nil
}

type rooter struct{}

func (rooter) ListRoots(context.Context, mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
	return &mcp.ListRootsResult{Roots: []mcp.Root{{URI: "file:///work", Name: "work"}}}, nil
}

type elicitor struct{}

func (elicitor) Elicit(context.Context, mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionAccept,
		Content: map[string]any{"name": "Ada"}}}, nil
}

// TestPassthroughForwards drives the relay with mcp-go's client: the agent's initialize
// (its capabilities) reaches the upstream; log and progress notifications arrive before the
// result of the call they belong to, with the agent's token; sampling, roots and
// elicitation requests are answered by the agent and the answers reach the upstream;
// prompts, resources, subscriptions, completions and setLevel pass; list_changed and
// resources/updated sent outside a request reach the GET stream; closing the client closes
// the session's upstream connection.
func TestPassthroughForwards(t *testing.T) {
	noLeaks(t)
	fs := newFakeServer(func(ctx context.Context, f *fakeUp, method string, params json.RawMessage) (json.RawMessage, *upstream.RPCError, error) {
		switch method {
		case "initialize":
			return fakeInit(params), nil, nil
		case "tools/call":
			var p struct {
				Name string `json:"name"`
				Meta struct {
					Token json.RawMessage `json:"progressToken"`
				} `json:"_meta"`
			}
			_ = json.Unmarshal(params, &p)
			switch p.Name {
			case "work":
				f.h.Notification("notifications/message", json.RawMessage(`{"level":"info","data":"working"}`))
				f.h.Notification("notifications/progress", json.RawMessage(`{"progressToken":`+string(p.Meta.Token)+`,"progress":1,"total":2}`))
				res, rpcErr := f.h.Request(ctx, json.RawMessage(`"s-1"`), "sampling/createMessage",
					json.RawMessage(`{"messages":[{"role":"user","content":{"type":"text","text":"q"}}],"maxTokens":5}`))
				if rpcErr != nil {
					return nil, rpcErr, nil
				}
				return json.RawMessage(`{"content":[{"type":"text","text":` + strconvQuote(string(res)) + `}]}`), nil, nil
			case "roots", "elicit":
				m, q := "roots/list", json.RawMessage(nil)
				if p.Name == "elicit" {
					m, q = "elicitation/create", json.RawMessage(`{"message":"who?","requestedSchema":{"type":"object","properties":{"name":{"type":"string"}}}}`)
				}
				res, rpcErr := f.h.Request(ctx, json.RawMessage(`7`), m, q)
				if rpcErr != nil {
					return nil, rpcErr, nil
				}
				return json.RawMessage(`{"content":[{"type":"text","text":` + strconvQuote(string(res)) + `}]}`), nil, nil
			}
		case "prompts/get":
			return json.RawMessage(`{"description":"d","messages":[{"role":"user","content":{"type":"text","text":"prompt text"}}]}`), nil, nil
		case "resources/read":
			return json.RawMessage(`{"contents":[{"uri":"test://r","mimeType":"text/plain","text":"resource text"}]}`), nil, nil
		case "completion/complete":
			return json.RawMessage(`{"completion":{"values":["alpha","beta"],"total":2,"hasMore":false}}`), nil, nil
		case "resources/subscribe", "logging/setLevel":
			return json.RawMessage(`{}`), nil, nil
		}
		return nil, &upstream.RPCError{Code: mcp.METHOD_NOT_FOUND, Message: method}, nil
	})
	e, url := servePT(t, fs, actors.SessionsOptions{}, Options{})

	tr, err := transport.NewStreamableHTTP(url+"/mcp/server/up?apikey="+testKey, transport.WithContinuousListening(),
		transport.WithHTTPLogger(slog.New(slog.DiscardHandler)), transport.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	c := client.NewClient(tr, client.WithSamplingHandler(sampler{}), client.WithRootsHandler(rooter{}), client.WithElicitationHandler(elicitor{}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var noteMu sync.Mutex
	var notes []string
	sessionWide := make(chan string, 10)
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		data, _ := json.Marshal(n.Params)
		switch n.Method {
		case "notifications/tools/list_changed", "notifications/resources/updated":
			sessionWide <- n.Method + " " + string(data)
		default:
			noteMu.Lock()
			notes = append(notes, n.Method+" "+string(data))
			noteMu.Unlock()
		}
	})
	init := mcp.InitializeRequest{}
	init.Params.ClientInfo = mcp.Implementation{Name: "forwarding-agent", Version: "3.2.1"}
	ir, err := c.Initialize(ctx, init)
	if err != nil {
		t.Fatal(err)
	}
	if ir.ServerInfo.Name != "fake" || ir.Instructions != "hello" || ir.Capabilities.Logging == nil {
		t.Errorf("initialize result %+v", ir)
	}
	up := fs.lastUp(t)
	got := up.waitGot(t, "initialize ")
	for _, want := range []string{`"sampling":{`, `"roots":{`, `"elicitation":{`, `"name":"forwarding-agent"`} {
		if !strings.Contains(got, want) {
			t.Errorf("the upstream's initialize lacks %s: %s", want, got)
		}
	}
	up.waitGot(t, "notifications/initialized")
	if s, err := sessionsOf(e).Session(ctx, tr.GetSessionId()); err != nil || s.ClientName != "forwarding-agent" || s.Endpoint != "/mcp/server/up" {
		t.Errorf("session record %+v %v", s, err)
	}

	t.Run("notifications then sampling", func(t *testing.T) {
		req := mcp.CallToolRequest{}
		req.Params.Name = "work"
		req.Params.Meta = &mcp.Meta{ProgressToken: "agent-token"}
		res, err := c.CallTool(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if txt := text(res); !strings.Contains(txt, `"model":"agent-model"`) || !strings.Contains(txt, "sampled: q") {
			t.Fatalf("result %q, want the agent's sampling answer", txt)
		}
		noteMu.Lock()
		defer noteMu.Unlock()
		if len(notes) != 2 || !strings.HasPrefix(notes[0], "notifications/message") ||
			!strings.HasPrefix(notes[1], "notifications/progress") || !strings.Contains(notes[1], `"progressToken":"agent-token"`) {
			t.Fatalf("notifications before the result: %q", notes)
		}
	})
	for _, tc := range []struct{ tool, want string }{
		{"roots", `"uri":"file:///work"`},
		{"elicit", `"action":"accept"`},
	} {
		t.Run(tc.tool, func(t *testing.T) {
			if txt := text(call(t, c, tc.tool, nil)); !strings.Contains(txt, tc.want) {
				t.Fatalf("%s = %q, want %s", tc.tool, txt, tc.want)
			}
		})
	}
	t.Run("prompts resources completions logging", func(t *testing.T) {
		gp := mcp.GetPromptRequest{}
		gp.Params.Name = "p"
		gp.Params.Arguments = map[string]string{"city": "Paris"}
		if pr, err := c.GetPrompt(ctx, gp); err != nil || len(pr.Messages) != 1 {
			t.Fatalf("prompts/get %+v %v", pr, err)
		}
		up.waitGot(t, `prompts/get {"name":"p","arguments":{"city":"Paris"}`)
		rr := mcp.ReadResourceRequest{}
		rr.Params.URI = "test://r"
		if res, err := c.ReadResource(ctx, rr); err != nil || len(res.Contents) != 1 {
			t.Fatalf("resources/read %+v %v", res, err)
		}
		sr := mcp.SubscribeRequest{}
		sr.Params.URI = "test://r"
		if err := c.Subscribe(ctx, sr); err != nil {
			t.Fatal(err)
		}
		up.waitGot(t, `resources/subscribe {"uri":"test://r"`)
		cr := mcp.CompleteRequest{}
		cr.Params.Ref = mcp.PromptReference{Type: "ref/prompt", Name: "p"}
		cr.Params.Argument.Name, cr.Params.Argument.Value = "city", "a"
		if res, err := c.Complete(ctx, cr); err != nil || !slices.Equal(res.Completion.Values, []string{"alpha", "beta"}) {
			t.Fatalf("completion %+v %v", res, err)
		}
		sl := mcp.SetLevelRequest{}
		sl.Params.Level = mcp.LoggingLevelDebug
		if err := c.SetLevel(ctx, sl); err != nil {
			t.Fatal(err)
		}
		up.waitGot(t, `logging/setLevel {"level":"debug"`)
	})
	t.Run("session-wide notifications on the GET stream", func(t *testing.T) {
		up.h.Notification("notifications/tools/list_changed", nil)
		up.h.Notification("notifications/resources/updated", json.RawMessage(`{"uri":"test://r"}`))
		// (mcp-go's client adds an empty _meta when it decodes.)
		for _, want := range []struct{ method, has string }{{"notifications/tools/list_changed", ""}, {"notifications/resources/updated", `"uri":"test://r"`}} {
			select {
			case got := <-sessionWide:
				if !strings.HasPrefix(got, want.method) || !strings.Contains(got, want.has) {
					t.Errorf("got %q, want %s with %s", got, want.method, want.has)
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("%s did not reach the agent", want.method)
			}
		}
	})

	if n := e.PassthroughSessions(); n != 1 {
		t.Errorf("PassthroughSessions = %d, want 1", n)
	}
	_ = c.Close()
	select {
	case <-up.done:
	case <-time.After(10 * time.Second):
		t.Fatal("closing the client did not close the session's upstream connection")
	}
	waitUntil(t, "the session to be forgotten", func() bool { return e.PassthroughSessions() == 0 })
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// rawAgent speaks the streamable HTTP transport by hand, to check bytes and statuses.
type rawAgent struct {
	t   *testing.T
	url string
	sid string
}

type rawReply struct {
	status int
	ctype  string
	header http.Header
	body   []byte   // for JSON answers
	events []string // data of SSE events, for event streams
}

func (a *rawAgent) post(body, accept string, headers ...string) rawReply {
	a.t.Helper()
	req, err := http.NewRequest("POST", a.url, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", accept)
	req.Header.Set("X-API-Key", testKey)
	if a.sid != "" {
		req.Header.Set("Mcp-Session-Id", a.sid)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	r := rawReply{status: resp.StatusCode, ctype: resp.Header.Get("Content-Type"), header: resp.Header}
	if strings.HasPrefix(r.ctype, "text/event-stream") {
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				r.events = append(r.events, d)
			}
		}
		return r
	}
	r.body, _ = io.ReadAll(resp.Body)
	return r
}

const both = "application/json, text/event-stream"

// TestPassthroughRaw checks the relay byte by byte: a newer protocol is lowered to the
// latest session-oriented one, results (unknown fields, schema keywords, characters JSON
// encoders like to escape) and errors (with data) come back as the upstream wrote them,
// unknown methods pass, JSON-only clients and batches are served, an agent's cancellation
// reaches the upstream under the upstream's id, and a timeout cancels upstream.
func TestPassthroughRaw(t *testing.T) {
	noLeaks(t)
	const tools = `{"tools":[{"name":"t","inputSchema":{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","anyOf":[{"required":["a"]}],"x-unknown":"<&>"},"x-tool-extra":{"é":"ü"}}],"x-list-extra":true}`
	cancelled := make(chan error, 1)
	sawAsk := make(chan struct{})
	fs := newFakeServer(func(ctx context.Context, f *fakeUp, method string, params json.RawMessage) (json.RawMessage, *upstream.RPCError, error) {
		switch method {
		case "initialize":
			return fakeInit(params), nil, nil
		case "tools/list":
			return json.RawMessage(tools), nil, nil
		case "x-vendor/thing", "ping":
			return json.RawMessage(`{"echo":` + string(params) + `}`), nil, nil
		case "prompts/get":
			return nil, &upstream.RPCError{Code: -32602, Message: "no such prompt", Data: json.RawMessage(`{"name":"nope"}`)}, nil
		case "completion/complete":
			// The upstream asks the agent, then changes its mind once the agent has seen
			// the request (sawAsk).
			go func() {
				<-sawAsk
				f.h.Notification("notifications/cancelled", json.RawMessage(`{"requestId":"s-9","reason":"changed my mind"}`))
			}()
			_, rpcErr := f.h.Request(ctx, json.RawMessage(`"s-9"`), "sampling/createMessage", json.RawMessage(`{"messages":[],"maxTokens":1}`))
			return json.RawMessage(`{"completion":{"values":[` + strconvQuote(rpcErr.Message) + `]}}`), nil, nil
		case "tools/call", "resources/read":
			res, rpcErr, err := hang(ctx, f)
			if method == "tools/call" {
				cancelled <- err
			}
			return res, rpcErr, err
		}
		return nil, &upstream.RPCError{Code: mcp.METHOD_NOT_FOUND, Message: method}, nil
	})
	_, url := servePT(t, fs, actors.SessionsOptions{}, Options{})
	a := &rawAgent{t: t, url: url + "/mcp/server/up"}

	t.Run("no session", func(t *testing.T) {
		for _, tc := range []struct {
			body string
			code int
		}{
			{`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, mcp.INVALID_REQUEST},
			{`{"jsonrpc":"2.0","id":1,"method":"server/discover"}`, mcp.METHOD_NOT_FOUND},
		} {
			r := a.post(tc.body, both)
			if r.status != 400 || !strings.Contains(string(r.body), fmt.Sprintf(`"code":%d`, tc.code)) {
				t.Errorf("%s: %d %s", tc.body, r.status, r.body)
			}
		}
		r := (&rawAgent{t: t, url: url + "/mcp/server/nope"}).post(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, both)
		if r.status != 404 {
			t.Errorf("unknown server: %d %s", r.status, r.body)
		}
	})

	r := a.post(`{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2026-07-28","capabilities":{"x-cap":{}},"clientInfo":{"name":"raw","version":"1"}}}`, both)
	a.sid = r.header.Get("Mcp-Session-Id")
	if r.status != 200 || a.sid == "" || !strings.HasPrefix(r.ctype, "application/json") {
		t.Fatalf("initialize: %d %q %s", r.status, a.sid, r.body)
	}
	if want := `{"jsonrpc":"2.0","id":"init","result":` + string(fakeInit(json.RawMessage(`{"protocolVersion":"2025-11-25"}`))) + `}`; string(r.body) != want {
		t.Fatalf("initialize answer\n%s\nwant\n%s", r.body, want)
	}
	up := fs.lastUp(t)
	if got := up.waitGot(t, "initialize "); !strings.Contains(got, `"protocolVersion":"2025-11-25"`) || !strings.Contains(got, `"x-cap":{}`) {
		t.Errorf("the upstream's initialize: %s", got)
	}
	if r := a.post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`, both); r.status != 202 {
		t.Fatalf("initialized: %d", r.status)
	}

	t.Run("second initialize", func(t *testing.T) {
		if r := a.post(`{"jsonrpc":"2.0","id":9,"method":"initialize","params":{}}`, both); r.status != 400 {
			t.Errorf("initialize within a session: %d %s", r.status, r.body)
		}
	})
	t.Run("bad protocol header", func(t *testing.T) {
		if r := a.post(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, both, "MCP-Protocol-Version", "1999-01-01"); r.status != 400 {
			t.Errorf("%d %s", r.status, r.body)
		}
	})
	t.Run("tools/list verbatim as an event", func(t *testing.T) {
		r := a.post(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, both)
		want := `{"jsonrpc":"2.0","id":2,"result":` + tools + `}`
		if r.status != 200 || len(r.events) != 1 || r.events[0] != want {
			t.Fatalf("%d %q\nwant %s", r.status, r.events, want)
		}
	})
	t.Run("JSON-only client", func(t *testing.T) {
		r := a.post(`{"jsonrpc":"2.0","id":3,"method":"tools/list"}`, "application/json")
		if want := `{"jsonrpc":"2.0","id":3,"result":` + tools + `}`; r.status != 200 || string(r.body) != want {
			t.Fatalf("%d %s", r.status, r.body)
		}
	})
	t.Run("unknown method and error data", func(t *testing.T) {
		r := a.post(`{"jsonrpc":"2.0","id":4,"method":"x-vendor/thing","params":{"k":[1,"two"]}}`, "application/json")
		if want := `{"jsonrpc":"2.0","id":4,"result":{"echo":{"k":[1,"two"]}}}`; string(r.body) != want {
			t.Errorf("vendor method: %s", r.body)
		}
		r = a.post(`{"jsonrpc":"2.0","id":5,"method":"prompts/get","params":{"name":"nope"}}`, "application/json")
		if want := `{"jsonrpc":"2.0","id":5,"error":{"code":-32602,"message":"no such prompt","data":{"name":"nope"}}}`; string(r.body) != want {
			t.Errorf("error: %s", r.body)
		}
	})
	t.Run("batch", func(t *testing.T) {
		r := a.post(`[{"jsonrpc":"2.0","id":6,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/roots/list_changed"},{"jsonrpc":"2.0","id":7,"method":"x-vendor/thing"}]`, both)
		slices.Sort(r.events)
		if len(r.events) != 2 || !strings.Contains(r.events[0], `"id":6`) || !strings.Contains(r.events[1], `"id":7`) {
			t.Errorf("batch events %q, want the answers to 6 and 7", r.events)
		}
		up.waitGot(t, "notifications/roots/list_changed")
	})
	t.Run("cancel", func(t *testing.T) {
		done := make(chan rawReply, 1)
		go func() {
			done <- a.post(`{"jsonrpc":"2.0","id":"c1","method":"tools/call","params":{"name":"slow"}}`, both)
		}()
		up.waitGot(t, `tools/call {"name":"slow"}`)
		if r := a.post(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"c1","reason":"user"}}`, both); r.status != 202 {
			t.Fatalf("cancel: %d", r.status)
		}
		got := up.waitGot(t, "notifications/cancelled ")
		var p struct {
			RequestID json.RawMessage `json:"requestId"`
			Reason    string          `json:"reason"`
		}
		_ = json.Unmarshal([]byte(strings.TrimPrefix(got, "notifications/cancelled ")), &p)
		var id int64
		if json.Unmarshal(p.RequestID, &id) != nil || id < 1 || p.Reason != "user" {
			t.Errorf("the upstream's cancellation %s: want its own numeric id and the reason", got)
		}
		if err := <-cancelled; !errors.Is(err, context.Canceled) {
			t.Errorf("the upstream call ended with %v, want cancelled", err)
		}
		if r := <-done; r.status != 200 || len(r.events) != 0 {
			t.Errorf("the cancelled request's stream: %d %q, want no answer", r.status, r.events)
		}
	})
	t.Run("upstream cancels its own request", func(t *testing.T) {
		req, _ := http.NewRequest("POST", a.url, strings.NewReader(`{"jsonrpc":"2.0","id":8,"method":"completion/complete","params":{}}`))
		req.Header.Set("Accept", both)
		req.Header.Set("X-API-Key", testKey)
		req.Header.Set("Mcp-Session-Id", a.sid)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var events []string
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				events = append(events, d)
				if len(events) == 1 {
					close(sawAsk)
				}
			}
		}
		if len(events) != 3 || events[0] != `{"jsonrpc":"2.0","id":"s-9","method":"sampling/createMessage","params":{"messages":[],"maxTokens":1}}` ||
			events[1] != `{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":"s-9","reason":"changed my mind"}}` ||
			!strings.Contains(events[2], `"values":["cancelled by the server"]`) {
			t.Fatalf("events %q: want the request, its cancellation, and the answer", events)
		}
	})
	t.Run("timeout", func(t *testing.T) {
		fs.mu.Lock()
		fs.timeout = 200 * time.Millisecond
		fs.mu.Unlock()
		b := &rawAgent{t: t, url: a.url}
		r := b.post(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`, both)
		b.sid = r.header.Get("Mcp-Session-Id")
		bup := fs.lastUp(t)
		r = b.post(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"slow"}}`, "application/json")
		if !strings.Contains(string(r.body), `"isError":true`) || !strings.Contains(string(r.body), "timed out after 200ms") {
			t.Errorf("tools/call past the timeout: %s", r.body)
		}
		<-cancelled
		bup.waitGot(t, `notifications/cancelled {"reason":"timed out after 200ms","requestId":`)
		r = b.post(`{"jsonrpc":"2.0","id":3,"method":"resources/read","params":{"uri":"x"}}`, "application/json")
		if !strings.Contains(string(r.body), fmt.Sprintf(`"code":%d`, passthrough.CodeRequestTimeout)) {
			t.Errorf("resources/read past the timeout: %s", r.body)
		}
	})
}

// TestPassthroughRefusals: the registry's verdict holds for live sessions (quarantine or a
// config change closes them at once, connection and all, and the agent's next request is
// told why, also for an agent that only listens), a lost upstream ends its session,
// refused initializes get the REST statuses, and messages sent while no GET stream is open
// wait for the next one.
func TestPassthroughRefusals(t *testing.T) {
	noLeaks(t)
	fs := newFakeServer(func(ctx context.Context, f *fakeUp, method string, params json.RawMessage) (json.RawMessage, *upstream.RPCError, error) {
		if method == "initialize" {
			return fakeInit(params), nil, nil
		}
		return json.RawMessage(`{"content":[{"type":"text","text":"ok"}]}`), nil, nil
	})
	_, url := servePT(t, fs, actors.SessionsOptions{}, Options{})
	start := func() (*rawAgent, *fakeUp) {
		a := &rawAgent{t: t, url: url + "/mcp/server/up"}
		r := a.post(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`, both)
		if r.status != 200 {
			t.Fatalf("initialize: %d %s", r.status, r.body)
		}
		a.sid = r.header.Get("Mcp-Session-Id")
		return a, fs.lastUp(t)
	}
	call := `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"x"}}`

	t.Run("quarantined mid-session", func(t *testing.T) {
		a, up := start()
		fs.set(1, actors.Errorf(actors.CodeConflict, `server "up" is quarantined; approve it before using it`))
		defer fs.set(1, nil)
		r := a.post(call, "application/json")
		if !strings.Contains(string(r.body), `"isError":true`) || !strings.Contains(string(r.body), "quarantined") {
			t.Fatalf("tools/call: %s", r.body)
		}
		if !up.closed() {
			t.Fatal("the quarantined server's session connection is still open")
		}
		if slices.ContainsFunc(up.all(), func(s string) bool { return strings.HasPrefix(s, "tools/call") }) {
			t.Fatal("the call reached the quarantined upstream")
		}
		if r := a.post(call, "application/json"); r.status != 404 {
			t.Fatalf("after: %d %s", r.status, r.body)
		}
	})
	t.Run("reconfigured", func(t *testing.T) {
		a, up := start()
		fs.set(2, nil)
		r := a.post(`{"jsonrpc":"2.0","id":2,"method":"prompts/list"}`, "application/json")
		if !strings.Contains(string(r.body), `"error"`) || !strings.Contains(string(r.body), "reconfigured") || !up.closed() {
			t.Fatalf("prompts/list after a config change: %s (closed %v)", r.body, up.closed())
		}
	})
	t.Run("closed while listening", func(t *testing.T) {
		_, up := start()
		fs.set(3, nil)
		select {
		case <-up.done:
		case <-time.After(10 * time.Second):
			t.Fatal("a session whose server changed was not closed")
		}
	})
	t.Run("upstream lost", func(t *testing.T) {
		a, up := start()
		_ = up.Close()
		waitUntil(t, "the session to close", func() bool { return a.post(call, "application/json").status == 404 })
	})
	t.Run("backlog for the next GET stream", func(t *testing.T) {
		a, up := start()
		up.h.Notification("notifications/message", json.RawMessage(`{"level":"info","data":"early"}`))
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "GET", a.url, nil)
		req.Header.Set("X-API-Key", testKey)
		req.Header.Set("Mcp-Session-Id", a.sid)
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				if !strings.Contains(d, `"data":"early"`) {
					t.Fatalf("first event %s", d)
				}
				return
			}
		}
		t.Fatal("the GET stream ended without the early message")
	})
	t.Run("refused initialize", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			access error
			dial   error
			status int
		}{
			{"quarantined", actors.Errorf(actors.CodeConflict, "quarantined"), nil, 409},
			{"not ready", actors.Errorf(actors.CodeUnavailable, "connecting"), nil, 503},
			{"dial fails", nil, errors.New("no such command"), 502},
		} {
			fs.set(1, tc.access)
			fs.mu.Lock()
			fs.dialErr = tc.dial
			fs.mu.Unlock()
			r := (&rawAgent{t: t, url: url + "/mcp/server/up"}).post(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18"}}`, both)
			if r.status != tc.status {
				t.Errorf("%s: %d %s, want %d", tc.name, r.status, r.body, tc.status)
			}
		}
		fs.set(1, nil)
		fs.mu.Lock()
		fs.dialErr = nil
		fs.mu.Unlock()
	})
}

// TestPassthroughSessionBound: past PassthroughSessions the least recently active idle
// session is closed to make room; when all are busy a new one is refused; shutdown closes
// every session's connection.
func TestPassthroughSessionBound(t *testing.T) {
	noLeaks(t)
	fs := newFakeServer(func(ctx context.Context, f *fakeUp, method string, params json.RawMessage) (json.RawMessage, *upstream.RPCError, error) {
		if method == "initialize" {
			return fakeInit(params), nil, nil
		}
		return hang(ctx, f)
	})
	e, url := servePT(t, fs, actors.SessionsOptions{PassthroughSessions: 2}, Options{})
	start := func() (*rawAgent, rawReply) {
		a := &rawAgent{t: t, url: url + "/mcp/server/up"}
		r := a.post(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`, both)
		a.sid = r.header.Get("Mcp-Session-Id")
		return a, r
	}
	a1, _ := start()
	up1 := fs.lastUp(t)
	a2, _ := start()
	up2 := fs.lastUp(t)
	// a2 was active last, so a1 goes.
	if r := a2.post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`, both); r.status != 202 {
		t.Fatal(r.status)
	}
	a3, r := start()
	if r.status != 200 {
		t.Fatalf("third session: %d %s", r.status, r.body)
	}
	up3 := fs.lastUp(t)
	if !up1.closed() || up2.closed() {
		t.Fatalf("evicted: first %v second %v, want the first", up1.closed(), up2.closed())
	}
	if r := a1.post(`{"jsonrpc":"2.0","id":2,"method":"ping"}`, both); r.status != 404 {
		t.Errorf("evicted session: %d", r.status)
	}
	// Both remaining sessions busy: no room.
	var wg sync.WaitGroup
	for _, a := range []*rawAgent{a2, a3} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a.post(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"slow"}}`, both)
		}()
	}
	up2.waitGot(t, "tools/call")
	up3.waitGot(t, "tools/call")
	if _, r := start(); r.status != 503 {
		t.Errorf("all busy: %d %s, want 503", r.status, r.body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	e.Close(ctx)
	wg.Wait()
	if !up2.closed() || !up3.closed() || e.PassthroughSessions() != 0 {
		t.Fatalf("after Close: %v %v %d", up2.closed(), up3.closed(), e.PassthroughSessions())
	}
}

// TestPassthroughHeartbeat: an open GET stream gets keepalive comments, which find dead
// connections.
func TestPassthroughHeartbeat(t *testing.T) {
	noLeaks(t)
	fs := newFakeServer(func(ctx context.Context, f *fakeUp, method string, params json.RawMessage) (json.RawMessage, *upstream.RPCError, error) {
		return fakeInit(params), nil, nil
	})
	_, url := servePT(t, fs, actors.SessionsOptions{}, Options{Heartbeat: 20 * time.Millisecond})
	a := &rawAgent{t: t, url: url + "/mcp/server/up"}
	r := a.post(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}`, both)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", a.url, nil)
	req.Header.Set("X-API-Key", testKey)
	req.Header.Set("Mcp-Session-Id", r.header.Get("Mcp-Session-Id"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	beats := 0
	for beats < 2 && sc.Scan() {
		if sc.Text() == ": keepalive" {
			beats++
		}
	}
	if beats < 2 {
		t.Fatalf("%d keepalives on the GET stream before it ended, want 2", beats)
	}
}

// TestPassthroughIdle: a session idle past IdleTTL is closed with its upstream connection,
// and its record says closed.
func TestPassthroughIdle(t *testing.T) {
	noLeaks(t)
	fs := newFakeServer(func(ctx context.Context, f *fakeUp, method string, params json.RawMessage) (json.RawMessage, *upstream.RPCError, error) {
		return fakeInit(params), nil, nil
	})
	e, url := servePT(t, fs, actors.SessionsOptions{IdleTTL: 100 * time.Millisecond}, Options{})
	a := &rawAgent{t: t, url: url + "/mcp/server/up"}
	r := a.post(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"idle","version":"1"}}}`, both)
	sid := r.header.Get("Mcp-Session-Id")
	up := fs.lastUp(t)
	select {
	case <-up.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the idle session's upstream connection was not closed")
	}
	waitUntil(t, "the session to be forgotten", func() bool { return e.PassthroughSessions() == 0 })
	if s, err := sessionsOf(e).Session(context.Background(), sid); err != nil || s.Status != store.SessionClosed || s.ClientName != "idle" {
		t.Fatalf("session record %+v %v", s, err)
	}
}
