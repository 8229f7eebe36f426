package actors

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/mcpproxy/mcpproxy/actors/oauth"
	"github.com/mcpproxy/mcpproxy/actors/store"
	"github.com/mcpproxy/mcpproxy/config"
)

// OAuthStore keeps sealed OAuth records (actors/store implements it).
type OAuthStore interface {
	SetOAuth(key string, value []byte) error
	OAuth(key string) ([]byte, error)
	DeleteOAuth(key string) error
}

// loginTTL is how long a login in progress accepts its callback.
const loginTTL = 10 * time.Minute

// maxStepUps bounds the step-up logins (after a 403 insufficient_scope) of a server: with
// the first login that makes three authorization requests at most; past it the login is
// refused until a logout, so a server that never accepts a scope cannot make the daemon (or
// an agent driving it) log in forever.
const maxStepUps = 2

// serverTokens is the oauth.TokenStore of one server, in the store under "tok/<server>".
type serverTokens struct {
	st     OAuthStore
	server string
}

func (s serverTokens) Get() (*oauth.Tokens, error) {
	b, err := s.st.OAuth("tok/" + s.server)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var t oauth.Tokens
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("decode tokens: %w", err)
	}
	return &t, nil
}

func (s serverTokens) Put(t *oauth.Tokens) error {
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	return s.st.SetOAuth("tok/"+s.server, b)
}

func (s serverTokens) delete() error { return s.st.DeleteOAuth("tok/" + s.server) }

// Messages of the OAuth logins (registry and oauth actor).
type (
	// startLogin (Client.Login) asks for an authorization URL for a server; the answer is
	// a LoginStart.
	startLogin struct{ Name string }
	// stopLogin (Client.Logout) revokes and deletes a server's tokens.
	stopLogin struct{ Name string }
	// completeLogin (Client.CompleteLogin) is the redirect's state and code (or error).
	completeLogin struct{ State, Code, Error string }
	// beginLogin is startLogin forwarded by the registry to the oauth actor with what the
	// login needs; the caller is the sender.
	beginLogin struct {
		Name      string
		Cfg       config.ServerConfig // prepared, references unexpanded
		Resolve   func(config.ServerConfig) (config.ServerConfig, *config.Scrubber, error)
		Challenge *oauth.AuthRequiredError
	}
	// grantSelf is sent by the registry when a client_credentials or id_jag server goes to
	// needs_auth: the oauth actor gets tokens itself (no user), a bounded number of times.
	// Renew is set for a renewal before expiry (renewGrant): the connection stays, so it
	// is not restarted, and the sender, if any, is answered with a reply.
	grantSelf struct {
		Login beginLogin
		Renew bool
	}
	// renewGrant asks the registry, from the connection of a self-granting server, for
	// new tokens before its access token expires (regrantHook); answered with a reply once
	// the tokens are stored or the grant failed.
	renewGrant struct{ Name string }
	// resetSelfGrants: a secret the server uses changed; its grant budget starts over.
	resetSelfGrants struct{ Name string }
	grantSelfDone   struct {
		name  string
		err   error
		renew bool
	}
	// endLogin is stopLogin forwarded to the oauth actor.
	endLogin   struct{ Name string }
	loginReady struct {
		req     *oauth.Request
		replyTo *actor.PID
		err     error
	}
	// authUpdated tells the registry a server's tokens changed (login, logout): its
	// connection is restarted to use them.
	authUpdated struct{ Name string }
)

// LoginStart is the answer of Client.Login.
type LoginStart struct {
	AuthorizationURL string `json:"authorization_url"`
}

// LoginDone is the answer of Client.CompleteLogin: the server that is now logged in.
type LoginDone struct {
	Server string `json:"server"`
}

// oauthOptions configure the oauth actor.
type oauthOptions struct {
	store       OAuthStore
	redirectURI string
	clientName  string
	http        *http.Client
	logger      *slog.Logger
	registry    *actor.PID
	logs        *actor.PID // the servers' logs (nil: none)
}

// pendingLogin is a login in progress, keyed by its state.
type pendingLogin struct {
	req     *oauth.Request
	expires time.Time
}

// oauthActor owns the logins in progress (state -> PKCE verifier, client, expiry) and the
// step-up counts; a child of the registry. Discovery, registration, the code exchange and
// revocation run in goroutines that report back; each state is accepted once, within
// loginTTL.
type oauthActor struct {
	o       oauthOptions
	pending map[string]pendingLogin
	stepUps map[string]int
	// selfGrants are the recent client_credentials and id_jag grants per server; more than
	// maxSelfGrants within selfGrantWindow and the server waits in needs_auth instead.
	selfGrants map[string][]time.Time
}

// Bounds of the automatic client_credentials and id_jag grants: an authorization server that issues
// tokens the resource rejects would otherwise make a grant loop.
const (
	maxSelfGrants   = 3
	selfGrantWindow = time.Minute
)

func (a *oauthActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.pending, a.stepUps, a.selfGrants = map[string]pendingLogin{}, map[string]int{}, map[string][]time.Time{}
	case grantSelf:
		a.grantSelf(ctx, m)
	case resetSelfGrants:
		delete(a.selfGrants, m.Name)
	case grantSelfDone:
		if m.err == nil && m.renew {
			a.o.logger.Info("oauth tokens renewed before expiry", "server", m.name)
		}
		if m.err != nil {
			a.o.logger.Warn("oauth grant without a user failed", "server", m.name, "err", m.err)
			if a.o.logs != nil {
				// In the server's own log too (GET .../logs), where its user looks for why
				// it stays in needs_auth (an expired ID token, a refused client).
				ctx.Send(a.o.logs, appendLogs{Server: m.name, Stream: LogProxy, Lines: []string{"oauth grant failed: " + m.err.Error()}})
			}
		}
	case beginLogin:
		a.begin(ctx, m)
	case loginReady:
		if m.err != nil {
			ctx.Send(m.replyTo, reply{err: m.err})
			return
		}
		a.expire()
		a.pending[m.req.State] = pendingLogin{req: m.req, expires: time.Now().Add(loginTTL)}
		ctx.Send(m.replyTo, reply{v: LoginStart{AuthorizationURL: m.req.AuthorizationURL()}})
	case completeLogin:
		a.complete(ctx, m)
	case endLogin:
		a.end(ctx, m)
	case authUpdated:
		// a logout or a server that accepted its scope resets the step-ups
		delete(a.stepUps, m.Name)
	}
}

// expire drops logins whose callback never came.
func (a *oauthActor) expire() {
	now := time.Now()
	for k, p := range a.pending {
		if now.After(p.expires) {
			delete(a.pending, k)
		}
	}
}

// grantSelf runs the client_credentials or id_jag grant for a server that asked for a login
// or whose token is about to expire; both count against the one budget.
func (a *oauthActor) grantSelf(ctx actor.Context, m grantSelf) {
	name, now, replyTo := m.Login.Name, time.Now(), ctx.Sender()
	recent := a.selfGrants[name][:0]
	for _, t := range a.selfGrants[name] {
		if now.Sub(t) < selfGrantWindow {
			recent = append(recent, t)
		}
	}
	if len(recent) >= maxSelfGrants {
		a.selfGrants[name] = recent
		if m.Renew {
			// The token goes out as it is; once it expires, the 401 leads to needs_auth.
			a.o.logger.Warn("oauth grant without a user: too many grants in a row; the token is not renewed before expiry", "server", name)
		} else {
			a.o.logger.Warn("oauth grant without a user: too many grants in a row; the server stays in needs_auth", "server", name)
		}
		if replyTo != nil {
			ctx.Respond(reply{err: Errorf(CodeConflict, "server %q: %d grants within %s; no renewal now", name, maxSelfGrants, selfGrantWindow)})
		}
		return
	}
	a.selfGrants[name] = append(recent, now)
	o, self, sys := a.o, ctx.Self(), ctx.ActorSystem()
	go func() {
		gctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := runSelfGrant(gctx, o, m.Login)
		if err == nil && !m.Renew {
			sys.Root.Send(o.registry, authUpdated{Name: name})
		}
		if replyTo != nil {
			sys.Root.Send(replyTo, reply{err: err})
		}
		sys.Root.Send(self, grantSelfDone{name: name, err: err, renew: m.Renew})
	}()
}

// configuredClient is the pre-registered client of a server's (resolved) oauth config: a
// client secret, or a private key for private_key_jwt.
func configuredClient(o *config.OAuth) oauth.Client {
	return oauth.Client{ID: o.ClientID, Secret: o.ClientSecret, PrivateKey: o.PrivateKey, SigningAlg: o.SigningAlg}
}

// runSelfGrant gets a self-granting server's tokens (client_credentials or id_jag) and
// stores them.
func runSelfGrant(ctx context.Context, o oauthOptions, m beginLogin) error {
	cfg, scrub, err := m.Resolve(m.Cfg)
	if err != nil {
		return err
	}
	var ch oauth.Challenge
	if m.Challenge != nil {
		ch = m.Challenge.Challenge
	}
	d, err := oauth.Discover(ctx, o.http, cfg.URL, ch)
	if err != nil {
		return errors.New(scrub.Scrub(err.Error()))
	}
	c := configuredClient(cfg.OAuth)
	scopes := oauth.Scopes(cfg.OAuth.Scopes, ch, d)
	var tok *oauth.Tokens
	if cfg.OAuth.Grant == config.GrantIDJAG {
		tok, err = idJAG(ctx, o.http, cfg, d, c, scopes)
	} else {
		tok, err = oauth.ClientCredentials(ctx, o.http, cfg.URL, d, c, scopes)
	}
	if err != nil {
		return errors.New(scrub.Scrub(err.Error()))
	}
	return serverTokens{st: o.store, server: m.Name}.Put(tok)
}

// idJAG runs the id_jag grant of a server whose config was resolved just now, so the ID
// token is the secret's current value: the identity provider's token endpoint (discovered
// from its issuer when the config names that), the token exchange there and the JWT bearer
// grant at the server's authorization server.
func idJAG(ctx context.Context, hc *http.Client, cfg config.ServerConfig, d *oauth.Discovery, c oauth.Client, scopes []string) (*oauth.Tokens, error) {
	p := cfg.OAuth.IdP
	idp := oauth.IdP{TokenEndpoint: p.TokenEndpoint, Client: oauth.Client{ID: p.ClientID, Secret: p.ClientSecret}}
	if idp.TokenEndpoint == "" {
		te, err := oauth.DiscoverIdP(ctx, hc, p.Issuer)
		if err != nil {
			return nil, err
		}
		idp.TokenEndpoint = te
	}
	return oauth.IDJAGGrant(ctx, hc, cfg.URL, d, c, idp, p.IDToken, scopes)
}

func (a *oauthActor) begin(ctx actor.Context, m beginLogin) {
	replyTo := ctx.Sender()
	if m.Cfg.OAuth.SelfGrant() {
		ctx.Respond(reply{err: Errorf(CodeConflict, "server %q uses the %s grant: it logs in by itself when it needs to", m.Name, m.Cfg.OAuth.Grant)})
		return
	}
	if m.Challenge != nil && m.Challenge.StepUp {
		a.stepUps[m.Name]++
		if a.stepUps[m.Name] > maxStepUps {
			ctx.Respond(reply{err: Errorf(CodeConflict, "server %q still asks for a wider scope after %d step-up logins; log out to start over", m.Name, maxStepUps)})
			return
		}
	}
	o, self, sys := a.o, ctx.Self(), ctx.ActorSystem()
	go func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		req, err := prepareLogin(dctx, o, m)
		sys.Root.Send(self, loginReady{req: req, replyTo: replyTo, err: err})
	}()
}

// prepareLogin discovers the authorization server and picks the client (see package
// oauth): the configured one, a client ID metadata document, a stored registration, or a
// new dynamic registration, stored per authorization server and redirect URI.
func prepareLogin(ctx context.Context, o oauthOptions, m beginLogin) (*oauth.Request, error) {
	cfg, scrub, err := m.Resolve(m.Cfg)
	if err != nil {
		return nil, Errorf(CodeUnavailable, "server %q: %s", m.Name, err)
	}
	var ch oauth.Challenge
	if m.Challenge != nil {
		ch = m.Challenge.Challenge
	}
	if ch.ResourceMetadata == "" && ch.Scope == "" {
		ch = probeChallenge(ctx, o.http, cfg)
	}
	d, err := oauth.Discover(ctx, o.http, cfg.URL, ch)
	if err != nil {
		return nil, Errorf(CodeUpstream, "server %q: oauth discovery: %s", m.Name, scrub.Scrub(err.Error()))
	}
	if d.AS.AuthorizationEndpoint == "" {
		return nil, Errorf(CodeUpstream, "server %q: its authorization server has no authorization_endpoint, so no user can log in there; configure a grant without a user (oauth.grant client_credentials or id_jag)", m.Name)
	}
	var configured []string
	if cfg.OAuth != nil {
		configured = cfg.OAuth.Scopes
	}
	scopes := oauth.Scopes(configured, ch, d)
	var client oauth.Client
	switch {
	case cfg.OAuth != nil && cfg.OAuth.ClientID != "":
		client = configuredClient(cfg.OAuth)
	case cfg.OAuth != nil && cfg.OAuth.ClientMetadataURL != "" && d.AS.ClientIDMetadataDocumentSupported:
		client = oauth.Client{ID: cfg.OAuth.ClientMetadataURL, AuthMethod: "none"}
	default:
		key := "client/" + d.AS.Issuer + " " + o.redirectURI
		if b, err := o.store.OAuth(key); err == nil && json.Unmarshal(b, &client) == nil && client.ID != "" {
			break
		}
		client, err = oauth.Register(ctx, o.http, d.AS, o.redirectURI, o.clientName, scopes)
		if err != nil {
			return nil, Errorf(CodeUpstream, "server %q: %s", m.Name, scrub.Scrub(err.Error()))
		}
		if b, err := json.Marshal(client); err == nil {
			_ = o.store.SetOAuth(key, b)
		}
	}
	return oauth.NewRequest(m.Name, cfg.URL, d, client, o.redirectURI, scopes), nil
}

// probeChallenge asks the server once without a token for its challenge (a login started before the
// server was ever reached, or after a restart).
func probeChallenge(ctx context.Context, hc *http.Client, cfg config.ServerConfig) oauth.Challenge {
	body := `{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"mcpproxy","version":"probe"}}}`
	method := http.MethodPost
	if cfg.Protocol == "sse" {
		method, body = http.MethodGet, ""
	}
	req, err := http.NewRequestWithContext(ctx, method, cfg.URL, strings.NewReader(body))
	if err != nil {
		return oauth.Challenge{}
	}
	for k, v := range cfg.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := hc.Do(req)
	if err != nil {
		return oauth.Challenge{}
	}
	resp.Body.Close()
	return oauth.ParseChallenge(resp.Header.Values("WWW-Authenticate"))
}

func (a *oauthActor) complete(ctx actor.Context, m completeLogin) {
	a.expire()
	p, ok := a.pending[m.State]
	if !ok || m.State == "" {
		ctx.Respond(reply{err: Errorf(CodeInvalidArgument, "unknown, expired or already used login state")})
		return
	}
	delete(a.pending, m.State) // once, whatever comes of it
	if m.Error != "" || m.Code == "" {
		ctx.Respond(reply{err: Errorf(CodeInvalidArgument, "the authorization server refused the login (%s)", oauthErrCode(m.Error))})
		return
	}
	replyTo, o, sys := ctx.Sender(), a.o, ctx.ActorSystem()
	go func() {
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		tok, err := p.req.Exchange(cctx, o.http, m.Code)
		if err == nil {
			err = serverTokens{st: o.store, server: p.req.Server}.Put(tok)
		}
		if err != nil {
			sys.Root.Send(replyTo, reply{err: Errorf(CodeUpstream, "server %q: %s", p.req.Server, err)})
			return
		}
		o.logger.Info("oauth login completed", "server", p.req.Server, "scopes", tok.Scopes)
		sys.Root.Send(o.registry, authUpdated{Name: p.req.Server})
		sys.Root.Send(replyTo, reply{v: LoginDone{Server: p.req.Server}})
	}()
}

// oauthErrCode keeps an error code from the redirect printable and short.
func oauthErrCode(s string) string {
	if len(s) > 64 {
		s = s[:64]
	}
	for _, c := range s {
		if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return "invalid"
		}
	}
	return s
}

func (a *oauthActor) end(ctx actor.Context, m endLogin) {
	delete(a.stepUps, m.Name)
	for k, p := range a.pending {
		if p.req.Server == m.Name {
			delete(a.pending, k)
		}
	}
	replyTo, o := ctx.Sender(), a.o
	sys := ctx.ActorSystem()
	go func() {
		ts := serverTokens{st: o.store, server: m.Name}
		tok, err := ts.Get()
		if err == nil && tok != nil {
			rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if rerr := oauth.Revoke(rctx, o.http, tok); rerr != nil {
				o.logger.Warn("oauth revocation failed; tokens deleted anyway", "server", m.Name, "err", rerr)
			}
			cancel()
		}
		if err := ts.delete(); err != nil {
			sys.Root.Send(replyTo, reply{err: Errorf(CodeInternal, "delete tokens: %s", err)})
			return
		}
		sys.Root.Send(o.registry, authUpdated{Name: m.Name})
		sys.Root.Send(replyTo, reply{v: struct{}{}})
	}()
}

// oauthPID returns the oauth actor, spawning it on first use.
func (r *registry) oauthPID(ctx actor.Context) *actor.PID {
	if r.oauth == nil {
		redirect := r.opts.OAuthRedirectURI
		if redirect == "" {
			redirect = "http://127.0.0.1/oauth/callback"
		}
		o := oauthOptions{store: r.opts.OAuth, redirectURI: redirect, clientName: "mcpproxy",
			http: &http.Client{Timeout: 30 * time.Second}, logger: r.log, registry: ctx.Self(), logs: r.logs}
		pid, err := ctx.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &oauthActor{o: o} }), "oauth")
		if err != nil {
			return nil
		}
		r.oauth = pid
	}
	return r.oauth
}

// selfLoginDue: a client_credentials or id_jag server went to needs_auth (registry message).
type selfLoginDue struct{ Name string }

// maybeSelfLogin is called by onStatus: a server with the client_credentials or id_jag grant
// that enters needs_auth gets its tokens without a user.
func (r *registry) maybeSelfLogin(ctx actor.Context, name string, prev State, m upstreamStatus) {
	rw := r.rows[name]
	if rw == nil || m.State != StateNeedsAuth || prev == StateNeedsAuth || !rw.cfg.OAuth.SelfGrant() {
		return
	}
	ctx.Send(ctx.Self(), selfLoginDue{Name: name})
}

// selfLogin is what the grant of a self-granting server needs.
func (r *registry) selfLogin(name string, rw *row) beginLogin {
	return beginLogin{Name: name, Cfg: r.eff.Prepared(rw.cfg), Resolve: r.resolver(), Challenge: rw.st.Challenge}
}

// regrantHook is the oauth.Transport.Regrant of a self-granting server's connections: it
// asks the registry, which hands the request to the oauth actor (the owner of the grant and
// of its budget), and waits for the tokens to be stored, as long as ctx allows.
func regrantHook(sys *actor.ActorSystem, registry *actor.PID, name string) func(context.Context) error {
	return func(ctx context.Context) error {
		res, err := ask(sys, registry, ctx, renewGrant{Name: name}, timeoutOf(ctx), "the proxy")
		if err != nil {
			return err
		}
		if rep, ok := res.(reply); ok {
			return rep.err
		}
		return Errorf(CodeInternal, "internal error: unexpected reply %T", res)
	}
}

// tokensFor is the token store of a server, nil without an OAuth store.
func (r *registry) tokensFor(name string) oauth.TokenStore {
	if r.opts.OAuth == nil {
		return nil
	}
	return serverTokens{st: r.opts.OAuth, server: name}
}

// receiveOAuth handles the registry's OAuth messages; false if m is not one.
func (r *registry) receiveOAuth(ctx actor.Context, m any) bool {
	switch m := m.(type) {
	case startLogin, stopLogin:
		name := ""
		if s, ok := m.(startLogin); ok {
			name = s.Name
		} else {
			name = m.(stopLogin).Name
		}
		rw, err := r.row(name)
		if err != nil {
			ctx.Respond(reply{err: err})
			return true
		}
		if rw.cfg.Protocol != "http" && rw.cfg.Protocol != "sse" {
			ctx.Respond(reply{err: Errorf(CodeInvalidArgument, "server %q is %s; only http and sse servers log in with OAuth", name, rw.cfg.Protocol)})
			return true
		}
		if r.opts.OAuth == nil {
			ctx.Respond(reply{err: Errorf(CodeUnavailable, "no token store")})
			return true
		}
		pid := r.oauthPID(ctx)
		if _, ok := m.(stopLogin); ok {
			ctx.RequestWithCustomSender(pid, endLogin{Name: name}, ctx.Sender())
			return true
		}
		ctx.RequestWithCustomSender(pid, beginLogin{Name: name, Cfg: r.eff.Prepared(rw.cfg), Resolve: r.resolver(),
			Challenge: rw.st.Challenge}, ctx.Sender())
	case completeLogin:
		if r.opts.OAuth == nil {
			ctx.Respond(reply{err: Errorf(CodeInvalidArgument, "unknown, expired or already used login state")})
			return true
		}
		ctx.RequestWithCustomSender(r.oauthPID(ctx), m, ctx.Sender())
	case selfLoginDue:
		if rw, ok := r.rows[m.Name]; ok && r.opts.OAuth != nil {
			ctx.Send(r.oauthPID(ctx), grantSelf{Login: r.selfLogin(m.Name, rw)})
		}
	case renewGrant:
		rw, ok := r.rows[m.Name]
		if !ok || r.opts.OAuth == nil || !rw.cfg.OAuth.SelfGrant() {
			ctx.Respond(reply{err: Errorf(CodeConflict, "server %q does not grant itself its tokens", m.Name)})
			return true
		}
		ctx.RequestWithCustomSender(r.oauthPID(ctx), grantSelf{Login: r.selfLogin(m.Name, rw), Renew: true}, ctx.Sender())
	case authUpdated:
		if rw, ok := r.rows[m.Name]; ok && rw.pid != nil {
			r.restartChild(ctx, rw)
		}
	default:
		return false
	}
	return true
}

// Login starts an OAuth login for a remote server and returns the URL the user opens. The
// authorization server redirects to the daemon's GET /oauth/callback, which completes it.
func (c *Client) Login(ctx context.Context, name string) (LoginStart, error) {
	return askValue[LoginStart](c, ctx, startLogin{Name: name})
}

// Logout revokes (where the authorization server offers it) and deletes a server's tokens;
// the server reconnects and, if it requires a login, goes to needs_auth.
func (c *Client) Logout(ctx context.Context, name string) error {
	_, err := askValue[struct{}](c, ctx, stopLogin{Name: name})
	return err
}

// CompleteLogin is the redirect of a login: its state (accepted once, within ten minutes)
// and code, or the error the authorization server gave.
func (c *Client) CompleteLogin(ctx context.Context, state, code, errCode string) (LoginDone, error) {
	return askValue[LoginDone](c, ctx, completeLogin{State: state, Code: code, Error: errCode})
}
