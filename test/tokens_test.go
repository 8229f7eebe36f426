package test

import (
	"bytes"
	"context"
	"encoding/json"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/actors"
	"github.com/mcpproxy/mcpproxy/actors/store"
	"github.com/mcpproxy/mcpproxy/cmd/mcpproxy/daemon"
)

// createToken makes an agent token through the REST API and returns it with its metadata.
func (p *proxy) createToken(spec map[string]any) actors.CreatedToken {
	p.t.Helper()
	var out actors.CreatedToken
	if code, body := p.do("POST", "/api/v1/tokens", spec, &out); code != 201 {
		p.t.Fatalf("POST /api/v1/tokens %v: %d %s", spec, code, body)
	}
	if !strings.HasPrefix(out.Token, actors.AgentTokenPrefix) {
		p.t.Fatalf("token %q does not start with %s", out.Token, actors.AgentTokenPrefix)
	}
	return out
}

func bearerOf(tok string) map[string]string {
	return map[string]string{"Authorization": "Bearer " + tok}
}

// retrieved runs retrieve_tools and returns the names of the hits and the total.
func retrieved(t *testing.T, c *client.Client, query string) ([]string, int) {
	t.Helper()
	res := callTool(t, c, "retrieve_tools", map[string]any{"query": query, "limit": 50})
	var out struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
		Total int `json:"total"`
	}
	if err := json.Unmarshal([]byte(textOf(res)), &out); err != nil {
		t.Fatalf("retrieve_tools answer %q: %v", textOf(res), err)
	}
	var names []string
	for _, h := range out.Tools {
		names = append(names, h.Name)
	}
	slices.Sort(names)
	return names, out.Total
}

func serverNamesVia(t *testing.T, c *client.Client) []string {
	t.Helper()
	var out struct {
		Servers []actors.Server `json:"servers"`
	}
	res := callTool(t, c, "upstream_servers", nil)
	if err := json.Unmarshal([]byte(textOf(res)), &out); err != nil {
		t.Fatalf("upstream_servers answer %q: %v", textOf(res), err)
	}
	var names []string
	for _, s := range out.Servers {
		names = append(names, s.Name)
	}
	return names
}

// wantToolError checks that a call_tool result is a tool error containing want.
func wantToolError(t *testing.T, res *mcp.CallToolResult, want string) {
	t.Helper()
	if !res.IsError || !strings.Contains(textOf(res), want) {
		t.Errorf("result %v %q, want a tool error containing %q", res.IsError, textOf(res), want)
	}
}

// TestTokensScope drives /mcp and /mcp/server/{name} with agent tokens against two fixture
// upstreams: the three /mcp tools show and call only what the scope allows (servers, tool
// globs, read-only), the passthrough refuses a server outside it (403), filters tools/list
// and refuses tools/call of other tools; the REST API, /events and the sessions of others
// are refused; sessions name the token.
func TestTokensScope(t *testing.T) {
	p := startProxy(t, servers(stdioFixture(t, "fx"), stdioFixture(t, "other")))
	p.waitState("fx", 20*time.Second, actors.StateReady)
	p.waitState("other", 20*time.Second, actors.StateReady)
	narrow := p.createToken(map[string]any{"name": "narrow", "servers": []string{"fx"}, "tools": []string{"fx:echo", "fx:ad?"}})
	ro := p.createToken(map[string]any{"name": "ro", "servers": []string{"*"}, "read_only": true})
	if narrow.Tools[1] != "fx:ad?" || narrow.ReadOnly || narrow.CreatedAt.IsZero() || narrow.LastUsedAt != nil {
		t.Errorf("created token metadata %+v", narrow.AgentToken)
	}

	t.Run("mcp", func(t *testing.T) {
		c := dialMCP(t, p.URL+"/mcp", bearerOf(narrow.Token), "narrow-agent")
		names, total := retrieved(t, c, "echo text add numbers process id")
		if !slices.Equal(names, []string{"fx:add", "fx:echo"}) || total != 2 {
			t.Errorf("retrieve_tools with the narrow token: %v (total %d), want [fx:add fx:echo] (2)", names, total)
		}
		if got := serverNamesVia(t, c); !slices.Equal(got, []string{"fx"}) {
			t.Errorf("upstream_servers with the narrow token: %v, want [fx]", got)
		}
		if res := viaProxy(t, c, "fx:echo", map[string]any{"text": "hi"}); res.IsError || textOf(res) != "hi" {
			t.Errorf("call_tool fx:echo: %v %q", res.IsError, textOf(res))
		}
		wantToolError(t, viaProxy(t, c, "fx:pid", nil), `the agent token does not allow tool "fx:pid"`)
		wantToolError(t, viaProxy(t, c, "other:echo", map[string]any{"text": "x"}), `the agent token does not allow server "other"`)
		// A server that does not exist is refused the same way: nothing is learned of it.
		wantToolError(t, viaProxy(t, c, "nope:echo", nil), `the agent token does not allow server "nope"`)

		// The session names the token, and no other credential may use it.
		sess, code := p.session(c.GetSessionId())
		if code != 200 || sess.Credential != "narrow" || sess.ClientName != "narrow-agent" {
			t.Errorf("session of the narrow token: %d %+v", code, sess)
		}
		for _, h := range []map[string]string{bearerOf(ro.Token), p.mcpKey()} {
			h["Mcp-Session-Id"] = c.GetSessionId()
			if code, body := p.doWith("POST", "/mcp", `{"jsonrpc":"2.0","id":9,"method":"tools/list"}`, nil, h); code != 403 {
				t.Errorf("another credential on the narrow token's session: %d %s, want 403", code, body)
			}
		}

		r := dialMCP(t, p.URL+"/mcp", map[string]string{"X-API-Key": ro.Token}, "ro-agent")
		names, _ = retrieved(t, r, "add a tool remove a tool echo")
		if slices.Contains(names, "fx:add_tool") || slices.Contains(names, "fx:remove_tool") || !slices.Contains(names, "fx:echo") || !slices.Contains(names, "other:echo") {
			t.Errorf("retrieve_tools with the read-only token: %v", names)
		}
		if got := serverNamesVia(t, r); !slices.Equal(got, []string{"fx", "other"}) {
			t.Errorf("upstream_servers with the read-only token: %v", got)
		}
		wantToolError(t, viaProxy(t, r, "fx:add_tool", map[string]any{"name": "x"}), "read-only")
		if res := viaProxy(t, r, "other:add", map[string]any{"a": 1, "b": 2}); res.IsError {
			t.Errorf("call_tool other:add with the read-only token: %q", textOf(res))
		}

		// The admin key still sees everything.
		a := dialMCP(t, p.URL+"/mcp", p.mcpKey(), "admin-agent")
		if names, _ := retrieved(t, a, "add a tool"); !slices.Contains(names, "fx:add_tool") {
			t.Errorf("retrieve_tools with the API key: %v", names)
		}
	})

	t.Run("passthrough", func(t *testing.T) {
		code, _, out := rawPostWith(t, p.URL+"/mcp/server/other", bearerOf(narrow.Token), rawInit)
		if code != 403 || !strings.Contains(strings.Join(out, ""), `does not allow server \"other\"`) {
			t.Errorf("passthrough to a server outside the scope: %d %v, want 403", code, out)
		}
		c := dialMCP(t, p.URL+"/mcp/server/fx", bearerOf(narrow.Token), "narrow-pt")
		if got := toolNames(t, c); !slices.Equal(got, []string{"add", "echo"}) {
			t.Errorf("passthrough tools/list with the narrow token: %v, want [add echo]", got)
		}
		if res := callTool(t, c, "echo", map[string]any{"text": "through"}); textOf(res) != "through" {
			t.Errorf("passthrough echo: %q", textOf(res))
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		req := mcp.CallToolRequest{}
		req.Params.Name = "pid"
		if res, err := c.CallTool(ctx, req); err == nil || !strings.Contains(err.Error(), `does not allow tool "pid"`) {
			t.Errorf("passthrough tools/call pid with the narrow token: %v, %v; want a JSON-RPC error", res, err)
		}
		if sess, _ := p.session(c.GetSessionId()); sess.Credential != "narrow" {
			t.Errorf("passthrough session credential %q, want narrow", sess.Credential)
		}

		r := dialMCP(t, p.URL+"/mcp/server/fx", bearerOf(ro.Token), "ro-pt")
		got := toolNames(t, r)
		if slices.Contains(got, "add_tool") || slices.Contains(got, "remove_tool") || !slices.Contains(got, "echo") {
			t.Errorf("passthrough tools/list with the read-only token: %v", got)
		}
		req.Params.Name, req.Params.Arguments = "remove_tool", map[string]any{"name": "echo"}
		if _, err := r.CallTool(ctx, req); err == nil {
			t.Error("passthrough remove_tool with the read-only token was not refused")
		}
		if got := toolNames(t, r); !slices.Contains(got, "echo") {
			t.Errorf("remove_tool reached the upstream: tools now %v", got)
		}
	})

	t.Run("rest", func(t *testing.T) {
		for _, path := range []string{"/api/v1/servers", "/api/v1/tokens", "/events", "/api/v1/status"} {
			for _, h := range []map[string]string{bearerOf(narrow.Token), {"X-API-Key": narrow.Token}} {
				var e struct{ Error, Code string }
				code, body := p.doWith("GET", path, nil, &e, h)
				if code != 403 || e.Code != "FORBIDDEN" || !strings.Contains(e.Error, "MCP endpoints only") {
					t.Errorf("GET %s with an agent token: %d %s, want 403 FORBIDDEN", path, code, body)
				}
			}
		}
		if code, body := p.doWith("GET", "/events?apikey="+narrow.Token, nil, nil, map[string]string{}); code != 403 {
			t.Errorf("GET /events?apikey=<agent token>: %d %s, want 403", code, body)
		}
		if code, _ := p.doWith("POST", "/api/v1/tokens", map[string]any{"name": "escalate", "servers": []string{"*"}}, nil, bearerOf(narrow.Token)); code != 403 {
			t.Errorf("an agent token creating a token: %d, want 403", code)
		}
		// A made-up token is not an agent token: 401, on REST and MCP alike.
		fake := map[string]string{"Authorization": "Bearer " + actors.AgentTokenPrefix + "made-up"}
		if code, _ := p.doWith("GET", "/api/v1/status", nil, nil, fake); code != 401 {
			t.Errorf("a made-up agent token on REST: %d, want 401", code)
		}
		if code, _, _ := rawPostWith(t, p.URL+"/mcp", fake, rawInit); code != 401 {
			t.Errorf("a made-up agent token on /mcp: %d, want 401", code)
		}
	})

	t.Run("validation", func(t *testing.T) {
		for _, c := range []struct {
			spec  map[string]any
			code  int
			field string
		}{
			{map[string]any{"name": "narrow", "servers": []string{"fx"}}, 409, ""},
			{map[string]any{"name": "x", "servers": []string{}}, 400, "servers"},
			{map[string]any{"name": "x"}, 400, "servers"},
			{map[string]any{"name": "bad name", "servers": []string{"fx"}}, 400, "name"},
			{map[string]any{"name": "admin", "servers": []string{"fx"}}, 400, "name"},
			{map[string]any{"name": "x", "servers": []string{"fx:echo"}}, 400, "servers[0]"},
			{map[string]any{"name": "x", "servers": []string{"fx"}, "tools": []string{"echo"}}, 400, "tools[0]"},
			{map[string]any{"name": "x", "servers": []string{"fx"}, "tools": []string{"fx:echo", "other:*"}}, 400, "tools[1]"},
			{map[string]any{"name": "x", "servers": []string{"fx"}, "expires_at": "2001-01-01T00:00:00Z"}, 400, "expires_at"},
			{map[string]any{"name": "x", "servers": []string{"fx"}, "scope": "all"}, 400, ""},
		} {
			var e struct {
				Code   string              `json:"code"`
				Errors []map[string]string `json:"errors"`
			}
			code, body := p.do("POST", "/api/v1/tokens", c.spec, &e)
			if code != c.code || (c.field != "" && (len(e.Errors) == 0 || e.Errors[0]["field"] != c.field)) {
				t.Errorf("POST tokens %v: %d %s, want %d naming %q", c.spec, code, body, c.code, c.field)
			}
		}
		var list struct {
			Tokens []actors.AgentToken `json:"tokens"`
		}
		_, body := p.do("GET", "/api/v1/tokens", nil, &list)
		if len(list.Tokens) != 2 || list.Tokens[0].Name != "narrow" || list.Tokens[1].Name != "ro" || list.Tokens[0].LastUsedAt == nil {
			t.Errorf("GET tokens: %s", body)
		}
		if bytes.Contains(body, []byte(narrow.Token)) || bytes.Contains(body, []byte(`"token"`)) {
			t.Errorf("GET tokens shows a token: %s", body)
		}
	})
}

// rawPostWith is rawPost with headers.
func rawPostWith(t *testing.T, url string, headers map[string]string, body string) (int, string, []string) {
	t.Helper()
	return rawPostHeaders(t, url, "", body, headers)
}

// TestTokensRevokeAndExpiry: revoking a token, and its expiry, close its open sessions on
// both endpoints at once (the passthrough session's process goes too), and the next request
// is 401; an expired token stays listed as expired.
func TestTokensRevokeAndExpiry(t *testing.T) {
	p := startProxy(t, servers(stdioFixture(t, "fx")))
	p.waitState("fx", 20*time.Second, actors.StateReady)

	open := func(tok string) (main, pt *client.Client, ptPID int) {
		main = dialMCP(t, p.URL+"/mcp", bearerOf(tok), "agent")
		pt = dialMCP(t, p.URL+"/mcp/server/fx", bearerOf(tok), "agent-pt")
		pid, err := strconv.Atoi(textOf(callTool(t, pt, "pid", nil)))
		if err != nil || !processAlive(pid) {
			t.Fatalf("passthrough pid: %v", err)
		}
		return main, pt, pid
	}
	closed := func(ids ...string) bool {
		for _, id := range ids {
			if s, _ := p.session(id); s.Status != store.SessionClosed {
				return false
			}
		}
		return true
	}
	refused := func(c *client.Client, what string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if _, err := c.ListTools(ctx, mcp.ListToolsRequest{}); err == nil {
			t.Errorf("%s: a request after the token ended was served", what)
		}
	}

	tok := p.createToken(map[string]any{"name": "short", "servers": []string{"fx"}})
	main, pt, pid := open(tok.Token)
	if code, body := p.do("DELETE", "/api/v1/tokens/short", nil, nil); code != 204 {
		t.Fatalf("DELETE token: %d %s", code, body)
	}
	// Closed when the DELETE answers, not some time later.
	if !closed(main.GetSessionId(), pt.GetSessionId()) {
		t.Errorf("sessions of the revoked token still open after the DELETE answered")
	}
	waitFor(t, 10*time.Second, "the passthrough process of the revoked token to end", func() bool { return !processAlive(pid) })
	refused(main, "/mcp after revoke")
	refused(pt, "passthrough after revoke")
	h := bearerOf(tok.Token)
	h["Mcp-Session-Id"] = main.GetSessionId()
	if code, _ := p.doWith("POST", "/mcp", `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil, h); code != 401 {
		t.Errorf("the revoked token's next request: %d, want 401", code)
	}

	// Expiry: a timer in the tokens actor ends it, with no request to notice.
	exp := p.createToken(map[string]any{"name": "soon", "servers": []string{"fx"}, "expires_at": time.Now().Add(3 * time.Second).Format(time.RFC3339Nano)})
	main, pt, pid = open(exp.Token)
	waitFor(t, 15*time.Second, "the sessions of the expired token to close", func() bool { return closed(main.GetSessionId(), pt.GetSessionId()) })
	waitFor(t, 10*time.Second, "the passthrough process of the expired token to end", func() bool { return !processAlive(pid) })
	refused(main, "/mcp after expiry")
	if code, _ := p.doWith("GET", "/api/v1/status", nil, nil, bearerOf(exp.Token)); code != 401 {
		t.Errorf("an expired token on REST: %d, want 401", code)
	}
	var list struct {
		Tokens []actors.AgentToken `json:"tokens"`
	}
	p.do("GET", "/api/v1/tokens", nil, &list)
	if len(list.Tokens) != 1 || list.Tokens[0].Name != "soon" || !list.Tokens[0].Expired {
		t.Errorf("tokens after expiry: %+v, want soon, expired", list.Tokens)
	}
}

// TestTokensNeverInClear: a token created and used is in no file of the data dir and in no
// log line (debug level), and it stays valid across a restart of the daemon, with its last
// use kept.
func TestTokensNeverInClear(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	logs := &syncBuffer{}
	debugLog := func(o *daemon.Options) {
		o.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	p := startProxyIn(t, dir, servers(stdioFixture(t, "fx")), debugLog)
	p.waitState("fx", 20*time.Second, actors.StateReady)
	tok := p.createToken(map[string]any{"name": "kept", "servers": []string{"fx"}})
	c := dialMCP(t, p.URL+"/mcp", bearerOf(tok.Token), "agent")
	if res := viaProxy(t, c, "fx:echo", map[string]any{"text": "before"}); textOf(res) != "before" {
		t.Fatalf("call before the restart: %q", textOf(res))
	}
	pt := dialMCP(t, p.URL+"/mcp/server/fx", bearerOf(tok.Token), "agent-pt")
	toolNames(t, pt)
	p.doWith("GET", "/api/v1/status", nil, nil, bearerOf(tok.Token)) // refused, and logged
	_ = c.Close()
	_ = pt.Close()
	p.Stop()

	secret := tok.Token[len(actors.AgentTokenPrefix):]
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.Type()&fs.ModeType != 0 {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, []byte(secret)) {
			t.Errorf("the token is in %s in clear", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(logs.String(), secret) {
		t.Error("the token is in the daemon's log")
	}
	if !strings.Contains(logs.String(), "agent token created") {
		t.Error("the log does not record the token's creation (is the log captured?)")
	}

	q := startProxyIn(t, dir, nil, debugLog)
	q.waitState("fx", 20*time.Second, actors.StateReady)
	var list struct {
		Tokens []actors.AgentToken `json:"tokens"`
	}
	q.do("GET", "/api/v1/tokens", nil, &list)
	if len(list.Tokens) != 1 || list.Tokens[0].LastUsedAt == nil {
		t.Errorf("tokens after the restart: %+v, want kept with its last use", list.Tokens)
	}
	c = dialMCP(t, q.URL+"/mcp", bearerOf(tok.Token), "agent")
	if res := viaProxy(t, c, "fx:echo", map[string]any{"text": "after"}); textOf(res) != "after" {
		t.Errorf("call after the restart: %v %q", res.IsError, textOf(res))
	}
}
