package test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/actors"
)

// testIdP is an enterprise identity provider on httptest: OpenID Connect discovery and a
// token endpoint that does the RFC 8693 exchange of SEP-990, turning an ID token it accepts
// into an ID-JAG that up's authorization server accepts (once). It records the ID tokens it
// was sent.
type testIdP struct {
	srv *httptest.Server
	up  *oauthUpstream

	mu    sync.Mutex
	valid map[string]bool // ID tokens not expired
	seen  []string
	jags  []string
}

func newTestIdP(t *testing.T, up *oauthUpstream) *testIdP {
	p := &testIdP{up: up, valid: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"issuer": p.srv.URL, "token_endpoint": p.srv.URL + "/token",
			"grant_types_supported": []string{"urn:ietf:params:oauth:grant-type:token-exchange"}})
	})
	mux.HandleFunc("/token", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		f := r.PostForm
		p.mu.Lock()
		defer p.mu.Unlock()
		p.seen = append(p.seen, f.Get("subject_token"))
		if f.Get("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange" ||
			f.Get("subject_token_type") != "urn:ietf:params:oauth:token-type:id_token" ||
			f.Get("requested_token_type") != "urn:ietf:params:oauth:token-type:id-jag" ||
			f.Get("audience") != up.srv.URL || f.Get("resource") != up.srv.URL+"/mcp" || f.Get("client_id") != "idp-client" {
			writeJSON(w, 400, map[string]any{"error": "invalid_request"})
			return
		}
		if !p.valid[f.Get("subject_token")] {
			writeJSON(w, 400, map[string]any{"error": "invalid_grant", "error_description": "expired ID token " + f.Get("subject_token")})
			return
		}
		jag := up.newSecret("idjag")
		p.jags = append(p.jags, jag)
		up.mu.Lock()
		up.jags[jag] = true
		up.mu.Unlock()
		writeJSON(w, 200, map[string]any{"access_token": jag, "issued_token_type": "urn:ietf:params:oauth:token-type:id-jag", "token_type": "N_A"})
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

// accept makes id the one ID token the IdP accepts (the previous one expired).
func (p *testIdP) accept(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.valid = map[string]bool{id: true}
}

func (p *testIdP) sent() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.seen)
}

// TestOAuthIDJAG drives the id_jag grant (enterprise-managed authorization) end to end: the
// server waits for its secrets, then gets its tokens by itself (ID token exchanged at the
// IdP, ID-JAG presented at the authorization server), with no login possible; renewing the
// ID token secret leaves a ready server alone; an expired access token makes the daemon run
// the grant again with the secret's new value; an ID token the IdP refuses leaves the server
// in needs_auth with the reason in its log, until a renewed ID token brings it back; no ID
// token, ID-JAG, access token or client secret appears in any answer, event, log or file.
func TestOAuthIDJAG(t *testing.T) {
	up := newOAuthUpstream(t, time.Hour)
	const clientSecret = "xaa-client-secret-0123456789"
	up.jags, up.jagClient = map[string]bool{}, [2]string{"xaa-client", clientSecret}
	idp := newTestIdP(t, up)
	const idt1, idt2, idt3 = "id-token-one-abcdefghijkl", "id-token-two-abcdefghijkl", "id-token-three-abcdefghij"
	idp.accept(idt1)
	dir := t.TempDir()
	p := startProxyProcess(t, dir, servers(map[string]any{"name": "ent", "url": up.srv.URL + "/mcp", "protocol": "http", "quarantined": false,
		"oauth": map[string]any{"grant": "id_jag", "client_id": "xaa-client", "client_secret": "${secret:XAA_SECRET}",
			"idp": map[string]any{"issuer": idp.srv.URL, "client_id": "idp-client", "id_token": "${secret:IDT}"}}}))
	ev := openSSE(t, p, "/events", keyHeader(p))
	setSecret := func(name, value string) []string {
		t.Helper()
		var out struct {
			Restarted []string `json:"restarted"`
		}
		if code, body := p.do("PUT", "/api/v1/secrets/"+name, map[string]string{"value": value}, &out); code/100 != 2 {
			t.Fatalf("set secret %s: %d %s", name, code, body)
		}
		return out.Restarted
	}
	setSecret("XAA_SECRET", clientSecret)
	setSecret("IDT", idt1)
	s := p.waitState("ent", 30*time.Second, actors.StateReady)
	if s.Auth == nil || !s.Auth.Required || !s.Auth.LoggedIn || s.Auth.ExpiresAt == nil {
		t.Fatalf("auth after the grant: %+v", s.Auth)
	}
	if got := idp.sent(); !slices.Equal(got, []string{idt1}) {
		t.Fatalf("the IdP was sent %d exchanges, want one with the first ID token", len(got))
	}
	c := dialMCP(t, p.URL+"/mcp", p.mcpKey(), "idjag-test")
	if got := textOf(viaProxy(t, c, "ent:whoami", map[string]any{})); got != "hello, logged-in caller" {
		t.Fatalf("call: %q", got)
	}
	if code, body := p.do("POST", "/api/v1/servers/ent/login", nil, nil); code != 409 || !strings.Contains(string(body), "id_jag") {
		t.Errorf("login of a self-granting server: %d %s", code, body)
	}

	// call runs whoami through /mcp; a failed call (the access token expired) is retried
	// once the server is ready again.
	call := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req := mcp.CallToolRequest{}
		req.Params.Name = "call_tool"
		req.Params.Arguments = map[string]any{"name": "ent:whoami", "arguments": map[string]any{}}
		res, err := c.CallTool(ctx, req)
		if err == nil && !res.IsError {
			return textOf(res)
		}
		return ""
	}

	t.Run("renewed ID token, expired access token", func(t *testing.T) {
		// The SSO session renewed the ID token: the ready server keeps its connection.
		idp.accept(idt2)
		if restarted := setSecret("IDT", idt2); slices.Contains(restarted, "ent") {
			t.Errorf("renewing the ID token restarted the ready server: %v", restarted)
		}
		if st := p.server("ent").State; st != actors.StateReady {
			t.Errorf("state %s after renewing the ID token", st)
		}
		up.revokeAll() // the access token expires
		if got := call(); got != "" {
			t.Fatalf("a call with an expired token answered %q", got)
		}
		// The failed call's answer may come before the registry has heard that the server
		// lost its token (it still says ready), so wait for a call to succeed, not for the
		// state.
		waitFor(t, 30*time.Second, "a call to succeed after the new grant", func() bool { return call() == "hello, logged-in caller" })
		if got := idp.sent(); !slices.Equal(got, []string{idt1, idt2}) {
			t.Fatalf("exchanges %d, want the second with the renewed ID token", len(got))
		}
	})

	t.Run("expired ID token", func(t *testing.T) {
		idp.accept("") // idt2 expires too, and nothing renews it yet
		up.revokeAll()
		if got := call(); got != "" {
			t.Fatalf("a call with an expired token answered %q", got)
		}
		p.waitState("ent", 30*time.Second, actors.StateNeedsAuth)
		waitFor(t, 20*time.Second, "the refused grant in the server's log", func() bool {
			_, body := p.do("GET", "/api/v1/servers/ent/logs", nil, nil)
			return strings.Contains(string(body), "oauth grant failed") && strings.Contains(string(body), "invalid_grant")
		})
		if st := p.server("ent").State; st != actors.StateNeedsAuth {
			t.Fatalf("state %s with an expired ID token", st)
		}
		// A renewed ID token brings it back at once: the server was not ready, so the
		// secret restarts it, and the budget of grants starts over.
		idp.accept(idt3)
		if restarted := setSecret("IDT", idt3); !slices.Contains(restarted, "ent") {
			t.Errorf("the renewed ID token did not restart the waiting server: %v", restarted)
		}
		p.waitState("ent", 30*time.Second, actors.StateReady)
		if got := call(); got != "hello, logged-in caller" {
			t.Fatalf("call after the renewed ID token: %q", got)
		}
		if got := idp.sent(); got[len(got)-1] != idt3 {
			t.Fatalf("the last exchange did not use the renewed ID token")
		}
	})

	// No credential of the flow anywhere the daemon shows or writes.
	secrets := append(up.secrets(), idt1, idt2, idt3, clientSecret)
	assertNothingShows(t, p, ev, dir, []string{"/api/v1/servers", "/api/v1/servers/ent", "/api/v1/servers/ent/tools", "/api/v1/servers/ent/logs",
		"/api/v1/config", "/api/v1/status", "/api/v1/diagnostics", "/api/v1/doctor", "/api/v1/secrets"}, secrets)
	var cfg struct {
		Config struct {
			Servers []json.RawMessage `json:"mcpServers"`
		} `json:"config"`
	}
	p.do("GET", "/api/v1/config", nil, &cfg)
	if len(cfg.Config.Servers) != 1 || !strings.Contains(string(cfg.Config.Servers[0]), `"id_token":"${secret:IDT}"`) {
		t.Errorf("the config view lost the idp: %s", cfg.Config.Servers)
	}
}
