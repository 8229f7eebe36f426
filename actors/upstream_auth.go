package actors

import (
	"errors"
	"slices"

	"github.com/mcpproxy/mcpproxy/actors/oauth"
	"github.com/mcpproxy/mcpproxy/config"
)

// Messages of the upstream actor about OAuth.
type (
	// authChanged: the connection refreshed its tokens or was asked for a login; the
	// status is read again (off the mailbox) and reported.
	authChanged struct{ gen int }
	authRead    struct {
		gen  int
		auth *AuthStatus
	}
)

// needsAuth moves to needs_auth when err says the server wants a login: no backoff timer,
// no retry; a login (or logout, restart, config change) restarts the actor's connection.
func (u *upstreamActor) needsAuth(err error) bool {
	var ae *oauth.AuthRequiredError
	if !errors.As(err, &ae) || u.p.tokens == nil {
		return false
	}
	u.stopRetry()
	u.challenge = ae
	u.lastError = ae.Error()
	u.state = StateNeedsAuth
	if u.auth == nil {
		u.auth = &AuthStatus{Scopes: []string{}}
	}
	a := *u.auth
	a.Required = true
	if !ae.StepUp {
		a.LoggedIn = false
		a.ExpiresAt = nil
	}
	u.auth = &a
	u.report(nil)
	u.p.logger.Info("upstream needs an OAuth login", "server", u.p.name, "step_up", ae.StepUp)
	return true
}

func (u *upstreamActor) onAuthChanged(m authChanged) {
	if m.gen != u.gen {
		return
	}
	u.refreshAuth()
}

// refreshAuth reads the token store in a goroutine (no I/O in Receive).
func (u *upstreamActor) refreshAuth() {
	if u.p.tokens == nil {
		return
	}
	gen, self, sys, ts, cfg := u.gen, u.self, u.sys, u.p.tokens, u.p.cfg
	if u.authURL != nil {
		cfg.URL = *u.authURL // the resolved URL, which the tokens are bound to
	}
	required := u.auth != nil && u.auth.Required
	go func() {
		a := readAuth(ts, cfg, nil)
		if a != nil && required {
			a.Required = true
		}
		sys.Root.Send(self, authRead{gen: gen, auth: a})
	}()
}

func (u *upstreamActor) onAuthRead(m authRead) {
	if m.gen != u.gen || m.auth == nil {
		return
	}
	if u.state == StateNeedsAuth || (u.auth != nil && u.auth.Required) {
		// The read may have started before the connect reported the login request.
		a := *m.auth
		a.Required = true
		m.auth = &a
	}
	if m.auth.equal(u.auth) {
		return
	}
	u.auth = m.auth
	u.report(nil)
}

// readAuth is the OAuth status of a remote server from its stored tokens; dialErr is the
// connect's outcome (a login request makes it required). Nil for servers without OAuth.
func readAuth(ts oauth.TokenStore, cfg config.ServerConfig, dialErr error) *AuthStatus {
	if ts == nil || (cfg.Protocol != "http" && cfg.Protocol != "sse") {
		return nil
	}
	a := &AuthStatus{Required: cfg.OAuth != nil || errors.Is(dialErr, oauth.ErrAuthRequired), Scopes: []string{}}
	tok, err := ts.Get()
	if err == nil && tok != nil && tok.URL == cfg.URL && tok.AccessToken != "" {
		a.Required, a.LoggedIn = true, true
		if !tok.Expiry.IsZero() {
			t := tok.Expiry.UTC()
			a.ExpiresAt = &t
		}
		a.Scopes = slices.Clone(tok.Scopes)
		if a.Scopes == nil {
			a.Scopes = []string{}
		}
	}
	if errors.Is(dialErr, oauth.ErrAuthRequired) {
		var ae *oauth.AuthRequiredError
		if errors.As(dialErr, &ae) && !ae.StepUp {
			a.LoggedIn, a.ExpiresAt = false, nil
		}
	}
	return a
}
