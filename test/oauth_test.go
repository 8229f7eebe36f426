package test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcpproxy/mcpproxy/actors"
)

// oauthUpstream is a real MCP server (mcp-go, streamable HTTP) behind a bearer check, with
// its own authorization server on the same origin: protected resource metadata, RFC 8414
// metadata, dynamic registration, authorize (which redirects at once, as a user who
// approves would), token (authorization_code with PKCE, refresh_token with rotation) and
// revocation. Access tokens live accessTTL; everything it issued is recorded, so tests can
// look for the values where they must not be.
type oauthUpstream struct {
	t   *testing.T
	srv *httptest.Server

	mu         sync.Mutex
	accessTTL  time.Duration
	access     map[string]time.Time // token -> expiry
	refresh    map[string]bool
	codes      map[string]string // code -> code_challenge
	issued     []string
	authorizes int
	refreshes  int
	revoked    int
	// jags are the ID-JAGs an identity provider issued for this server (oauth_idjag_test.go),
	// each good once in a jwt-bearer grant by jagClient; bearerGrants counts those grants.
	jags         map[string]bool
	jagClient    [2]string
	bearerGrants int
	// ccClient is the client the client_credentials grant accepts (none: that grant is
	// refused); ccGrants counts those grants, rejected the MCP requests answered 401.
	ccClient [2]string
	ccGrants int
	rejected int
}

func newOAuthUpstream(t *testing.T, accessTTL time.Duration) *oauthUpstream {
	u := &oauthUpstream{t: t, accessTTL: accessTTL, access: map[string]time.Time{}, refresh: map[string]bool{}, codes: map[string]string{}}
	ms := server.NewMCPServer("oauth-upstream", "1.0.0", server.WithToolCapabilities(false))
	ms.AddTool(mcp.NewTool("whoami", mcp.WithDescription("says hello to a logged-in caller")),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultText("hello, logged-in caller"), nil
		})
	mcpH := server.NewStreamableHTTPServer(ms)
	var sseH http.Handler // legacy HTTP+SSE on /sse and /message, made once the URL is known
	mux := http.NewServeMux()
	for _, res := range []string{"/mcp", "/sse"} {
		mux.HandleFunc("/.well-known/oauth-protected-resource"+res, func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, 200, map[string]any{"resource": u.srv.URL + res, "authorization_servers": []string{u.srv.URL}})
		})
	}
	mux.HandleFunc("/.well-known/oauth-authorization-server", func(w http.ResponseWriter, r *http.Request) {
		b := u.srv.URL
		writeJSON(w, 200, map[string]any{"issuer": b, "authorization_endpoint": b + "/authorize", "token_endpoint": b + "/token",
			"registration_endpoint": b + "/register", "revocation_endpoint": b + "/revoke", "response_types_supported": []string{"code"},
			"code_challenge_methods_supported": []string{"S256"}, "token_endpoint_auth_methods_supported": []string{"none"},
			"scopes_supported": []string{"read", "offline_access"}})
	})
	mux.HandleFunc("/register", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 201, map[string]any{"client_id": "client-1", "token_endpoint_auth_method": "none"})
	})
	mux.HandleFunc("/authorize", func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if res := q.Get("resource"); q.Get("code_challenge_method") != "S256" || res != u.srv.URL+"/mcp" && res != u.srv.URL+"/sse" {
			http.Error(w, "bad request", 400)
			return
		}
		code := u.newSecret("code")
		u.mu.Lock()
		u.codes[code] = q.Get("code_challenge")
		u.authorizes++
		u.mu.Unlock()
		http.Redirect(w, r, q.Get("redirect_uri")+"?code="+code+"&state="+url.QueryEscape(q.Get("state")), http.StatusFound)
	})
	mux.HandleFunc("/token", u.token)
	mux.HandleFunc("/revoke", func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		u.mu.Lock()
		delete(u.refresh, r.PostForm.Get("token"))
		delete(u.access, r.PostForm.Get("token"))
		u.revoked++
		u.mu.Unlock()
		w.WriteHeader(200)
	})
	bearer := func(res string, next func() http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			tok, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			u.mu.Lock()
			exp, ok := u.access[tok]
			u.mu.Unlock()
			if !ok || time.Now().After(exp) {
				u.mu.Lock()
				u.rejected++
				u.mu.Unlock()
				w.Header().Set("WWW-Authenticate", `Bearer resource_metadata="`+u.srv.URL+`/.well-known/oauth-protected-resource`+res+`", scope="read"`)
				http.Error(w, `{"error":"invalid_token"}`, http.StatusUnauthorized)
				return
			}
			next().ServeHTTP(w, r)
		})
	}
	mux.Handle("/mcp", bearer("/mcp", func() http.Handler { return mcpH }))
	mux.Handle("/sse", bearer("/sse", func() http.Handler { return sseH }))
	mux.Handle("/message", bearer("/sse", func() http.Handler { return sseH }))
	u.srv = httptest.NewServer(mux)
	sseH = server.NewSSEServer(ms, server.WithBaseURL(u.srv.URL))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *oauthUpstream) newSecret(kind string) string {
	u.mu.Lock()
	defer u.mu.Unlock()
	v := fmt.Sprintf("%s-%d-%x", kind, len(u.issued), sha256.Sum256([]byte(fmt.Sprint(time.Now().UnixNano(), kind))))[:40]
	u.issued = append(u.issued, v)
	return v
}

func (u *oauthUpstream) token(w http.ResponseWriter, r *http.Request) {
	_ = r.ParseForm()
	f := r.PostForm
	switch f.Get("grant_type") {
	case "authorization_code":
		u.mu.Lock()
		challenge, ok := u.codes[f.Get("code")]
		delete(u.codes, f.Get("code"))
		u.mu.Unlock()
		sum := sha256.Sum256([]byte(f.Get("code_verifier")))
		if !ok || base64.RawURLEncoding.EncodeToString(sum[:]) != challenge || !strings.HasPrefix(f.Get("resource"), u.srv.URL+"/") {
			writeJSON(w, 400, map[string]any{"error": "invalid_grant"})
			return
		}
	case "refresh_token":
		u.mu.Lock()
		ok := u.refresh[f.Get("refresh_token")]
		delete(u.refresh, f.Get("refresh_token")) // rotation: each refresh token is good once
		u.refreshes++
		u.mu.Unlock()
		// A refresh names the resource again (RFC 8707 section 2.2); one that does not
		// is refused, so "refresh after expiry" fails without it.
		if !ok || !strings.HasPrefix(f.Get("resource"), u.srv.URL+"/") {
			writeJSON(w, 400, map[string]any{"error": "invalid_grant"})
			return
		}
	case "urn:ietf:params:oauth:grant-type:jwt-bearer":
		id, secret, _ := r.BasicAuth()
		u.mu.Lock()
		ok := u.jags[f.Get("assertion")] && [2]string{id, secret} == u.jagClient
		delete(u.jags, f.Get("assertion"))
		u.bearerGrants++
		u.mu.Unlock()
		u.accessOnly(w, ok)
		return
	case "client_credentials":
		id, secret, _ := r.BasicAuth()
		u.mu.Lock()
		ok := u.ccClient[0] != "" && [2]string{id, secret} == u.ccClient && strings.HasPrefix(f.Get("resource"), u.srv.URL+"/")
		u.ccGrants++
		u.mu.Unlock()
		u.accessOnly(w, ok)
		return
	default:
		writeJSON(w, 400, map[string]any{"error": "unsupported_grant_type"})
		return
	}
	at, rt := u.newSecret("access"), u.newSecret("refresh")
	u.mu.Lock()
	ttl := u.accessTTL
	u.access[at] = time.Now().Add(ttl)
	u.refresh[rt] = true
	u.mu.Unlock()
	writeJSON(w, 200, map[string]any{"access_token": at, "refresh_token": rt, "token_type": "Bearer",
		"expires_in": int(ttl / time.Second), "scope": "read offline_access"})
}

// accessOnly answers a grant without a user: an access token only (when it expires the
// client runs the grant again), or invalid_grant when the grant was not ok.
func (u *oauthUpstream) accessOnly(w http.ResponseWriter, ok bool) {
	if !ok {
		writeJSON(w, 400, map[string]any{"error": "invalid_grant"})
		return
	}
	at := u.newSecret("access")
	u.mu.Lock()
	ttl := u.accessTTL
	u.access[at] = time.Now().Add(ttl)
	u.mu.Unlock()
	writeJSON(w, 200, map[string]any{"access_token": at, "token_type": "Bearer", "expires_in": int(ttl / time.Second), "scope": "read"})
}

// revokeAll forgets every token, as an authorization server does when the user revokes the
// grant.
func (u *oauthUpstream) revokeAll() {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.access, u.refresh = map[string]time.Time{}, map[string]bool{}
}

func (u *oauthUpstream) counts() (authorizes, refreshes, revoked int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.authorizes, u.refreshes, u.revoked
}

func (u *oauthUpstream) secrets() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return append([]string(nil), u.issued...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// login starts a login through the API and follows the authorization URL as a browser
// would, ending at the daemon's callback; it returns the callback's status and the URL.
func (p *proxy) login(t *testing.T, name string) (int, string) {
	t.Helper()
	var ls struct {
		URL string `json:"authorization_url"`
	}
	if code, body := p.do("POST", "/api/v1/servers/"+name+"/login", nil, &ls); code != 200 {
		t.Fatalf("login: %d %s", code, body)
	}
	resp, err := http.Get(ls.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Request.URL.String()
}

// TestOAuthLogin drives a whole login against a real OAuth-protected upstream: needs_auth
// without a token (and no retry storm), login, callback, ready with tools called through
// /mcp; the callback refuses a replayed and a forged state; an expired access token is
// refreshed without a new login; a revoked grant leads back to needs_auth; logout revokes
// and deletes; no token value appears in any answer, event, log line or data file.
func TestOAuthLogin(t *testing.T) {
	up := newOAuthUpstream(t, time.Hour)
	dir := t.TempDir()
	p := startProxyProcess(t, dir, servers(map[string]any{"name": "remote", "url": up.srv.URL + "/mcp", "protocol": "http", "quarantined": false}))
	ev := openSSE(t, p, "/events", keyHeader(p))

	s := p.waitState("remote", 20*time.Second, actors.StateNeedsAuth)
	if s.Auth == nil || !s.Auth.Required || s.Auth.LoggedIn {
		t.Fatalf("auth before login: %+v", s.Auth)
	}
	// No backoff loop: the state stays needs_auth and the retry count does not grow.
	if s2 := p.server("remote"); s2.State != actors.StateNeedsAuth || s2.RetryCount != s.RetryCount {
		t.Fatalf("needs_auth is not stable: %+v then %+v", s, s2)
	}

	if _, body := p.do("GET", "/api/v1/doctor", nil, nil); !strings.Contains(string(body), "server remote needs an OAuth login") {
		t.Errorf("the doctor does not report the login: %s", body)
	}

	code, callback := p.login(t, "remote")
	if code != 200 {
		t.Fatalf("callback answered %d", code)
	}
	s = p.waitState("remote", 20*time.Second, actors.StateReady)
	if s.Auth == nil || !s.Auth.LoggedIn || s.Auth.ExpiresAt == nil || strings.Join(s.Auth.Scopes, " ") != "read offline_access" {
		t.Fatalf("auth after login: %+v", s.Auth)
	}
	ev.waitEvents(10*time.Second, "servers.changed reason auth", func(evs []sseEvent) bool {
		for _, e := range evs {
			if e.Name == "servers.changed" && strings.Contains(e.Data, `"reason":"auth"`) {
				return true
			}
		}
		return false
	})
	c := dialMCP(t, p.URL+"/mcp", p.mcpKey(), "oauth-test")
	if got := textOf(viaProxy(t, c, "remote:whoami", map[string]any{})); got != "hello, logged-in caller" {
		t.Fatalf("call: %q", got)
	}

	t.Run("sse", func(t *testing.T) {
		// The same flow for a legacy HTTP+SSE server, added by an apply.
		var cfg struct {
			Config map[string]any `json:"config"`
		}
		p.do("GET", "/api/v1/config", nil, &cfg)
		list := cfg.Config["mcpServers"].([]any)
		cfg.Config["mcpServers"] = append(list, map[string]any{"name": "remote-sse", "url": up.srv.URL + "/sse", "protocol": "sse", "quarantined": false})
		if code, body := p.do("POST", "/api/v1/config/apply", cfg.Config, nil); code != 200 {
			t.Fatalf("apply: %d %s", code, body)
		}
		p.waitState("remote-sse", 20*time.Second, actors.StateNeedsAuth)
		if code, _ := p.login(t, "remote-sse"); code != 200 {
			t.Fatalf("callback %d", code)
		}
		p.waitState("remote-sse", 20*time.Second, actors.StateReady)
		if got := textOf(viaProxy(t, c, "remote-sse:whoami", map[string]any{})); got != "hello, logged-in caller" {
			t.Fatalf("sse call: %q", got)
		}
	})

	t.Run("passthrough", func(t *testing.T) {
		// A session of /mcp/server/{name} has its own connection, with the token too.
		pc := dialMCP(t, p.URL+"/mcp/server/remote", p.mcpKey(), "oauth-passthrough")
		if got := textOf(callTool(t, pc, "whoami", map[string]any{})); got != "hello, logged-in caller" {
			t.Fatalf("passthrough call: %q", got)
		}
	})

	t.Run("state once", func(t *testing.T) {
		// The same redirect again (a replay), and a state never issued (a forgery).
		for _, u := range []string{callback, p.URL + "/oauth/callback?state=forged&code=whatever"} {
			resp, err := http.Get(u)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 400 {
				t.Errorf("%s: %d, want 400", u, resp.StatusCode)
			}
		}
		if p.server("remote").State != actors.StateReady {
			t.Error("a refused callback changed the server")
		}
	})

	t.Run("refresh after expiry", func(t *testing.T) {
		// Tokens from now on expire at once: the next request refreshes before sending
		// (the token is within the refresh margin), without a new authorization.
		up.mu.Lock()
		up.accessTTL = time.Second
		up.mu.Unlock()
		auth0, ref0, _ := up.counts()
		p.do("POST", "/api/v1/servers/remote/logout", nil, nil)
		p.waitState("remote", 20*time.Second, actors.StateNeedsAuth)
		if code, _ := p.login(t, "remote"); code != 200 {
			t.Fatalf("callback %d", code)
		}
		p.waitState("remote", 20*time.Second, actors.StateReady)
		if got := textOf(viaProxy(t, c, "remote:whoami", map[string]any{})); got != "hello, logged-in caller" {
			t.Fatalf("call after expiry: %q", got)
		}
		auth1, ref1, _ := up.counts()
		if ref1 <= ref0 || auth1 != auth0+1 {
			t.Fatalf("refreshes %d -> %d, authorizations %d -> %d: want a refresh and only the one login", ref0, ref1, auth0, auth1)
		}
	})

	t.Run("revoked grant", func(t *testing.T) {
		up.revokeAll()
		// The next request gets 401, the refresh is refused: needs_auth, logged out.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req := mcp.CallToolRequest{}
		req.Params.Name = "call_tool"
		req.Params.Arguments = map[string]any{"name": "remote:whoami", "arguments": map[string]any{}}
		res, err := c.CallTool(ctx, req)
		if err == nil && !res.IsError {
			t.Fatalf("a call with a revoked grant succeeded")
		}
		s := p.waitState("remote", 20*time.Second, actors.StateNeedsAuth)
		waitFor(t, 10*time.Second, "logged_in false", func() bool {
			s = p.server("remote")
			return s.Auth != nil && !s.Auth.LoggedIn
		})
	})

	t.Run("logout", func(t *testing.T) {
		if code, _ := p.login(t, "remote"); code != 200 {
			t.Fatalf("callback %d", code)
		}
		p.waitState("remote", 20*time.Second, actors.StateReady)
		_, _, rev0 := up.counts()
		var out struct {
			Server actors.Server `json:"server"`
		}
		if code, body := p.do("POST", "/api/v1/servers/remote/logout", nil, &out); code != 200 {
			t.Fatalf("logout: %d %s", code, body)
		}
		if _, _, rev1 := up.counts(); rev1 != rev0+1 {
			t.Errorf("logout revoked %d times, want 1", rev1-rev0)
		}
		p.waitState("remote", 20*time.Second, actors.StateNeedsAuth)
	})

	t.Run("cli", func(t *testing.T) {
		// servers login prints the URL and waits; following it (as the browser would)
		// completes the login and the command reports it. servers logout undoes it.
		cmd := exec.Command(filepath.Join(binaries(t), "mcpproxy"), "--data-dir", dir, "servers", "login", "remote", "--no-browser")
		stdout, _ := cmd.StdoutPipe()
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stdout)
		var out strings.Builder
		followed := false
		for sc.Scan() {
			line := sc.Text()
			out.WriteString(line + "\n")
			if u := strings.TrimSpace(line); !followed && strings.HasPrefix(u, "http") {
				followed = true
				resp, err := http.Get(u)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
			}
		}
		if err := cmd.Wait(); err != nil || !strings.Contains(out.String(), "Logged in to remote") {
			t.Fatalf("servers login: %v\n%s", err, out.String())
		}
		if s := p.server("remote"); s.Auth == nil || !s.Auth.LoggedIn {
			t.Fatalf("after the CLI login: %+v", s.Auth)
		}
		if r := cliOK(t, dir, "servers", "logout", "remote"); !strings.Contains(r.stdout, "server remote") {
			t.Fatalf("servers logout: %+v", r)
		}
		p.waitState("remote", 20*time.Second, actors.StateNeedsAuth)
	})

	t.Run("url change drops the tokens", func(t *testing.T) {
		if code, _ := p.login(t, "remote"); code != 200 {
			t.Fatalf("callback %d", code)
		}
		p.waitState("remote", 20*time.Second, actors.StateReady)
		var cfg struct {
			Config map[string]any `json:"config"`
		}
		p.do("GET", "/api/v1/config", nil, &cfg)
		for _, e := range cfg.Config["mcpServers"].([]any) {
			if m := e.(map[string]any); m["name"] == "remote" {
				m["url"] = up.srv.URL + "/mcp?v=2"
			}
		}
		if code, body := p.do("POST", "/api/v1/config/apply", cfg.Config, nil); code != 200 {
			t.Fatalf("apply: %d %s", code, body)
		}
		s := p.waitState("remote", 20*time.Second, actors.StateNeedsAuth)
		if s.Auth == nil || s.Auth.LoggedIn {
			t.Fatalf("tokens of the old URL still count: %+v", s.Auth)
		}
	})

	// No token value anywhere the daemon shows or writes.
	assertNothingShows(t, p, ev, dir, []string{"/api/v1/servers", "/api/v1/servers/remote", "/api/v1/servers/remote/tools",
		"/api/v1/config", "/api/v1/status", "/api/v1/diagnostics", "/api/v1/doctor", "/api/v1/sessions"}, up.secrets())
}

// assertNothingShows fails t for each secret found in the daemon's log, the events ev
// received, the answers of the GET routes and (when dir is not empty) every file under
// the data dir: where a token or credential must never appear.
func assertNothingShows(t *testing.T, p *proxy, ev *sseStream, dir string, routes []string, secrets []string) {
	t.Helper()
	haystacks := map[string]string{"log": p.Log(), "events": eventsText(ev.Events())}
	for _, route := range routes {
		_, body := p.do("GET", route, nil, nil)
		haystacks[route] = string(body)
	}
	if dir != "" {
		_ = filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if b, err := os.ReadFile(path); err == nil {
					haystacks[path] = string(b)
				}
			}
			return nil
		})
	}
	for _, secret := range secrets {
		for where, text := range haystacks {
			if strings.Contains(text, secret) {
				t.Errorf("%s shows %s", where, secret[:12])
			}
		}
	}
}

func eventsText(evs []sseEvent) string {
	var b strings.Builder
	for _, e := range evs {
		b.WriteString(e.Name + " " + e.Data + "\n")
	}
	return b.String()
}

// TestDashboardOAuthLogin runs dashboard_login.spec.mjs: the dashboard's Log in button on a
// needs_auth row logs in through a new tab and the row turns ready live; the needs_auth row
// of a client_credentials server whose grant is refused (the authorization server knows no
// such client) offers no Log in but says that the server logs in by itself, as the view's
// auth.grant tells.
func TestDashboardOAuthLogin(t *testing.T) {
	browser, node := chromiumPath(t), playwrightNode(t)
	up := newOAuthUpstream(t, time.Hour)
	p := startProxy(t, servers(map[string]any{"name": "remote", "url": up.srv.URL + "/mcp", "protocol": "http", "quarantined": false},
		map[string]any{"name": "machine", "url": up.srv.URL + "/mcp", "protocol": "http", "quarantined": false,
			"oauth": map[string]any{"grant": "client_credentials", "client_id": "unknown-client", "client_secret": "not-a-known-secret"}}))
	if s := p.waitState("remote", 20*time.Second, actors.StateNeedsAuth); s.Auth == nil || s.Auth.Grant != "authorization_code" {
		t.Fatalf("auth of a server a user logs in to: %+v", s.Auth)
	}
	if s := p.waitState("machine", 20*time.Second, actors.StateNeedsAuth); s.Auth == nil || s.Auth.Grant != "client_credentials" {
		t.Fatalf("auth of a client_credentials server: %+v", s.Auth)
	}
	runSpecOutput(t, node, "dashboard_login.spec.mjs", "DASH_URL="+p.URL, "DASH_KEY="+p.Key, "DASH_CHROMIUM="+browser, "DASH_USER_DATA="+t.TempDir())
	if s := p.server("remote"); s.State != actors.StateReady || s.Auth == nil || !s.Auth.LoggedIn {
		t.Fatalf("after the dashboard login: %+v", s)
	}
}
