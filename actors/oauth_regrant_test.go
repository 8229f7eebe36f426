package actors

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcpproxy/mcpproxy/actors/store"
	"github.com/mcpproxy/mcpproxy/config"
)

// TestOAuthActorRenewal: a renewal (grantSelf with Renew, as the registry forwards a
// connection's renewGrant) runs the client_credentials grant, stores the tokens and answers
// its sender, without asking the registry to restart the connection; renewals and the
// needs_auth grants share the budget of maxSelfGrants a minute, and a renewal past it is
// answered with a conflict and makes no token request.
func TestOAuthActorRenewal(t *testing.T) {
	var tokenRequests atomic.Int32
	var as *httptest.Server
	as = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/oauth-protected-resource/mcp":
			_ = json.NewEncoder(w).Encode(map[string]any{"resource": as.URL + "/mcp", "authorization_servers": []string{as.URL}})
		case "/.well-known/oauth-authorization-server":
			_ = json.NewEncoder(w).Encode(map[string]any{"issuer": as.URL, "token_endpoint": as.URL + "/token",
				"token_endpoint_auth_methods_supported": []string{"client_secret_basic"}})
		case "/token":
			n := tokenRequests.Add(1)
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "access-" + string(rune('0'+n)), "token_type": "Bearer", "expires_in": 60})
		default:
			http.NotFound(w, r)
		}
	}))
	defer as.Close()
	st, err := store.Open(filepath.Join(t.TempDir(), "db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.OpenSecrets(filepath.Join(t.TempDir(), "key")); err != nil {
		t.Fatal(err)
	}
	quiet := slog.New(slog.DiscardHandler)
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger { return quiet }))
	defer sys.Shutdown()
	restarts := make(chan string, 8)
	registry := sys.Root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch m := c.Message().(type) {
		case authUpdated:
			restarts <- m.Name
		case string: // a ping: every message sent before it was handled
			c.Respond(m)
		}
	}))
	o := oauthOptions{store: st, http: as.Client(), logger: quiet, registry: registry}
	pid := sys.Root.Spawn(actor.PropsFromProducer(func() actor.Actor { return &oauthActor{o: o} }))
	cfg := config.ServerConfig{Name: "svc", Protocol: "http", URL: as.URL + "/mcp",
		OAuth: &config.OAuth{Grant: config.GrantClientCredentials, ClientID: "c", ClientSecret: "client-secret-1234"}}
	login := beginLogin{Name: "svc", Cfg: cfg, Resolve: func(c config.ServerConfig) (config.ServerConfig, *config.Scrubber, error) {
		return c, nil, nil
	}}
	ts := serverTokens{st: st, server: "svc"}
	renew := func() error {
		res, err := sys.Root.RequestFuture(pid, grantSelf{Login: login, Renew: true}, 10*time.Second).Result()
		if err != nil {
			t.Fatalf("no answer to a renewal: %v", err)
		}
		return res.(reply).err
	}

	// One grant on needs_auth (the registry restarts the connection), then two renewals.
	sys.Root.Send(pid, grantSelf{Login: login})
	select {
	case name := <-restarts:
		if name != "svc" {
			t.Fatalf("restart of %q", name)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the needs_auth grant did not restart the connection")
	}
	for i := 2; i <= maxSelfGrants; i++ {
		if err := renew(); err != nil {
			t.Fatalf("renewal %d: %v", i, err)
		}
		tok, err := ts.Get()
		if err != nil || tok == nil || tok.AccessToken != "access-"+string(rune('0'+i)) || tok.Issued.IsZero() {
			t.Fatalf("tokens after renewal %d: %+v %v", i, tok, err)
		}
	}
	err = renew()
	if e, ok := err.(*Error); !ok || e.Code != CodeConflict {
		t.Fatalf("a renewal past the budget: %v, want a conflict", err)
	}
	if n := tokenRequests.Load(); n != maxSelfGrants {
		t.Errorf("%d token requests, want %d", n, maxSelfGrants)
	}
	// A needs_auth grant is refused too (the budget is shared; the renewal after it is
	// handled after it), and renewals restart nothing: a restart would drop the connection
	// the call waits on. authUpdated is sent before the answer, so the ping comes after it.
	sys.Root.Send(pid, grantSelf{Login: login})
	if err := renew(); err == nil {
		t.Fatal("a renewal past the budget succeeded")
	}
	if _, err := sys.Root.RequestFuture(registry, "ping", 10*time.Second).Result(); err != nil {
		t.Fatal(err)
	}
	select {
	case name := <-restarts:
		t.Errorf("a renewal or a grant past the budget restarted %q", name)
	default:
	}
	if n := tokenRequests.Load(); n != maxSelfGrants {
		t.Errorf("a grant past the budget made a token request (%d)", n)
	}
}
