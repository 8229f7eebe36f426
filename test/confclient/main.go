// Command confclient is the client the official MCP conformance suite drives in client
// mode (conformance client --command "confclient" --scenario S): the suite starts a scenario
// server and runs `confclient <server-url>`. It starts the real daemon (in-process, the same
// wiring as mcpproxy serve) on 127.0.0.1:0 with the scenario's URL as an http upstream,
// logs in headlessly when the server goes to needs_auth (it follows the authorization URL;
// the scenario's authorization server redirects straight to the daemon's /oauth/callback),
// and calls the upstream's tools through /mcp (call_tool), or, for the elicitation
// scenario, through /mcp/server/{name} with an agent that accepts the defaults.
//
// MCP_CONFORMANCE_SCENARIO names the scenario; MCP_CONFORMANCE_CONTEXT (JSON) carries a
// pre-registered client_id and client_secret (or private key), which go into the server's
// oauth config, and for enterprise-managed authorization the identity provider's issuer,
// client id and the user's ID token (an oauth "grant": "id_jag" with the ID token in a
// secret).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/mcpproxy/mcpproxy/cmd/mcpproxy/daemon"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: confclient <server-url>")
		os.Exit(2)
	}
	if err := run(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "confclient:", err)
		os.Exit(1)
	}
}

func run(serverURL string) error {
	scenario := os.Getenv("MCP_CONFORMANCE_SCENARIO")
	var cctx struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
		// PrivateKeyPEM and SigningAlgorithm: a client that authenticates by
		// private_key_jwt (auth/client-credentials-jwt).
		PrivateKeyPEM    string `json:"private_key_pem"`
		SigningAlgorithm string `json:"signing_algorithm"`
		// The enterprise identity provider (auth/cross-app-access-complete-flow): the
		// user's ID token from an SSO login there, its issuer and token endpoint, and the
		// daemon's client at it.
		IdPClientID      string `json:"idp_client_id"`
		IdPIDToken       string `json:"idp_id_token"`
		IdPIssuer        string `json:"idp_issuer"`
		IdPTokenEndpoint string `json:"idp_token_endpoint"`
	}
	_ = json.Unmarshal([]byte(os.Getenv("MCP_CONFORMANCE_CONTEXT")), &cctx)

	dir, err := os.MkdirTemp("", "confclient-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	// A client ID metadata document URL, as a user who hosts one would configure it; the
	// daemon uses it only where the authorization server supports such documents.
	oauthCfg := map[string]any{"client_metadata_url": "https://conformance-test.local/client-metadata.json"}
	if cctx.ClientID != "" {
		oauthCfg["client_id"] = cctx.ClientID
		if cctx.ClientSecret != "" {
			oauthCfg["client_secret"] = cctx.ClientSecret
		}
	}
	if cctx.PrivateKeyPEM != "" {
		oauthCfg["private_key"] = cctx.PrivateKeyPEM
		oauthCfg["signing_alg"] = cctx.SigningAlgorithm
	}
	selfLogin := strings.HasPrefix(scenario, "auth/client-credentials")
	if selfLogin {
		// The machine-to-machine extension: the client was given credentials to use
		// without a user.
		oauthCfg["grant"] = "client_credentials"
	}
	if cctx.IdPIDToken != "" {
		// Enterprise-managed authorization: the daemon exchanges the ID token at the IdP
		// (found from its issuer) by itself. The ID token is a secret, stored below through
		// the secrets API, as an outside process that follows the SSO session would.
		selfLogin = true
		oauthCfg["grant"] = "id_jag"
		oauthCfg["idp"] = map[string]any{"issuer": cctx.IdPIssuer, "client_id": cctx.IdPClientID,
			"id_token": "${secret:" + idTokenSecret + "}"}
	}
	cfg := map[string]any{"mcpServers": []any{map[string]any{
		"name": "up", "url": serverURL, "protocol": "http", "quarantined": false, "oauth": oauthCfg,
	}}}
	b, _ := json.Marshal(cfg)
	if err := os.WriteFile(filepath.Join(dir, "mcp_config.json"), b, 0o600); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	d, err := daemon.Start(context.Background(), daemon.Options{DataDir: dir, Listen: "127.0.0.1:0", Out: io.Discard,
		Logger: logger, BackoffBase: 200 * time.Millisecond})
	if err != nil {
		return fmt.Errorf("start daemon: %w", err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		_ = d.Shutdown(ctx)
	}()
	// A client_credentials server logs in by itself (the daemon runs the grant when the
	// server asks); the client only waits for it.
	c := &api{base: d.URL(), key: d.APIKey(), hc: &http.Client{Timeout: 20 * time.Second}, selfLogin: selfLogin}
	if cctx.IdPIDToken != "" {
		// Setting the secret restarts the server, which was waiting for it.
		b, _ := json.Marshal(map[string]string{"value": cctx.IdPIDToken})
		if _, err := c.send("PUT", "/api/v1/secrets/"+idTokenSecret, b, nil); err != nil {
			return err
		}
	}
	if err := c.waitReady(); err != nil {
		return err
	}
	if scenario == "elicitation-sep1034-client-defaults" {
		return callDirect(c)
	}
	return callViaMCP(c)
}

type api struct {
	base, key string
	hc        *http.Client
	// selfLogin: the daemon gets the tokens itself; never ask for a login.
	selfLogin bool
}

// idTokenSecret names the secret that holds the IdP's ID token.
const idTokenSecret = "IDP_ID_TOKEN"

func (a *api) do(method, path string, out any) (int, error) { return a.send(method, path, nil, out) }

// send makes one API request with an optional JSON body; out gets a 2xx answer.
func (a *api) send(method, path string, body []byte, out any) (int, error) {
	req, _ := http.NewRequest(method, a.base+path, bytes.NewReader(body))
	req.Header.Set("X-API-Key", a.key)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(answer, out); err != nil {
			return resp.StatusCode, err
		}
	}
	if resp.StatusCode/100 != 2 {
		return resp.StatusCode, fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, strings.TrimSpace(string(answer)))
	}
	return resp.StatusCode, nil
}

type server struct {
	State     string `json:"state"`
	LastError string `json:"last_error"`
}

// waitReady waits (bounded) for the upstream to be ready, logging in whenever it needs it
// (at most five times: a scope step-up is a new login).
func (a *api) waitReady() error {
	// Within the suite's 30 s per scenario: a server that ends the test (scope-retry-limit
	// answers 410 once the client has tried enough) is given up on in time.
	deadline := time.Now().Add(20 * time.Second)
	logins := 0
	for time.Now().Before(deadline) {
		var s struct {
			Server server `json:"server"`
		}
		if _, err := a.do("GET", "/api/v1/servers/up", &s); err != nil {
			return err
		}
		switch s.Server.State {
		case "ready":
			return nil
		case "needs_auth":
			if a.selfLogin {
				break
			}
			if logins++; logins > 5 {
				return errors.New("still needs a login after five")
			}
			if err := a.login(); err != nil {
				return err
			}
			continue
		case "error", "backoff":
			fmt.Fprintln(os.Stderr, "confclient: upstream:", s.Server.LastError)
		}
		time.Sleep(100 * time.Millisecond) // polling the REST API, bounded by deadline
	}
	return errors.New("the upstream did not become ready")
}

// login asks the daemon for the authorization URL and follows it as a browser would; the
// scenario's authorization server redirects straight to the daemon's callback.
func (a *api) login() error {
	var ls struct {
		URL string `json:"authorization_url"`
	}
	if _, err := a.do("POST", "/api/v1/servers/up/login", &ls); err != nil {
		return err
	}
	resp, err := a.hc.Get(ls.URL)
	if err != nil {
		return fmt.Errorf("follow authorization url: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != 200 {
		return fmt.Errorf("login: %d %s", resp.StatusCode, body)
	}
	// The server restarts with its tokens; wait until it has left needs_auth.
	for range 100 {
		var s struct {
			Server server `json:"server"`
		}
		if _, err := a.do("GET", "/api/v1/servers/up", &s); err != nil {
			return err
		}
		if s.Server.State != "needs_auth" {
			return nil
		}
		time.Sleep(50 * time.Millisecond) // bounded poll
	}
	return nil
}

// needsAuth says whether the upstream waits for a login now (polled briefly: the failed
// call and the state change arrive separately).
func (a *api) needsAuth() bool {
	for range 20 {
		var s struct {
			Server server `json:"server"`
		}
		if _, err := a.do("GET", "/api/v1/servers/up", &s); err == nil && s.Server.State == "needs_auth" {
			return true
		}
		time.Sleep(50 * time.Millisecond) // bounded poll
	}
	return false
}

func (a *api) tools() ([]string, error) {
	var st struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
	}
	if _, err := a.do("GET", "/api/v1/servers/up/tools", &st); err != nil {
		return nil, err
	}
	var out []string
	for _, t := range st.Tools {
		out = append(out, strings.TrimPrefix(t.Name, "up:"))
	}
	return out, nil
}

func args(tool string) map[string]any {
	if tool == "add_numbers" {
		return map[string]any{"a": 2, "b": 3}
	}
	return map[string]any{}
}

// callViaMCP calls every tool of the upstream through /mcp's call_tool.
func callViaMCP(a *api) error {
	tools, err := a.tools()
	if err != nil {
		return err
	}
	tr, err := transport.NewStreamableHTTP(a.base+"/mcp", transport.WithHTTPHeaders(map[string]string{"X-API-Key": a.key}))
	if err != nil {
		return err
	}
	c := client.NewClient(tr)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		return err
	}
	defer c.Close()
	init := mcp.InitializeRequest{}
	init.Params.ClientInfo = mcp.Implementation{Name: "confclient", Version: "1"}
	init.Params.ProtocolVersion = mcp.LATEST_PROTOCOL_VERSION
	if _, err := c.Initialize(ctx, init); err != nil {
		return err
	}
	for _, t := range tools {
		req := mcp.CallToolRequest{}
		req.Params.Name = "call_tool"
		req.Params.Arguments = map[string]any{"name": "up:" + t, "arguments": args(t)}
		// A call the server answers 403 insufficient_scope puts it in needs_auth: log in
		// again (a step-up) and retry, a bounded number of times.
		for attempt := 0; ; attempt++ {
			res, err := c.CallTool(ctx, req)
			if err == nil && !res.IsError {
				break
			}
			if attempt < 3 && a.needsAuth() {
				if err := a.waitReady(); err != nil {
					return err
				}
				continue
			}
			if err != nil {
				return fmt.Errorf("call %s: %w", t, err)
			}
			return fmt.Errorf("call %s: tool error %v", t, res.Content)
		}
	}
	return nil
}

// callDirect calls every tool through /mcp/server/up as an agent that declares elicitation
// and accepts every request with the schema's defaults.
func callDirect(a *api) error {
	tools, err := a.tools()
	if err != nil {
		return err
	}
	tr, err := transport.NewStreamableHTTP(a.base+"/mcp/server/up", transport.WithHTTPHeaders(map[string]string{"X-API-Key": a.key}),
		transport.WithContinuousListening())
	if err != nil {
		return err
	}
	c := client.NewClient(tr, client.WithElicitationHandler(defaults{}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		return err
	}
	defer c.Close()
	init := mcp.InitializeRequest{}
	init.Params.ClientInfo = mcp.Implementation{Name: "confclient", Version: "1"}
	init.Params.ProtocolVersion = mcp.ProtocolVersion20251125
	init.Params.Capabilities.Elicitation = &mcp.ElicitationCapability{}
	if _, err := c.Initialize(ctx, init); err != nil {
		return err
	}
	for _, t := range tools {
		req := mcp.CallToolRequest{}
		req.Params.Name = t
		req.Params.Arguments = args(t)
		if _, err := c.CallTool(ctx, req); err != nil {
			return fmt.Errorf("call %s: %w", t, err)
		}
	}
	return nil
}

// defaults accepts an elicitation with each property's default.
type defaults struct{}

func (defaults) Elicit(_ context.Context, req mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	content := map[string]any{}
	b, _ := json.Marshal(req.Params.RequestedSchema)
	var schema struct {
		Properties map[string]struct {
			Default any `json:"default"`
		} `json:"properties"`
	}
	_ = json.Unmarshal(b, &schema)
	for k, p := range schema.Properties {
		if p.Default != nil {
			content[k] = p.Default
		}
	}
	return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionAccept, Content: content}}, nil
}
