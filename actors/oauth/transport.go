package oauth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// ErrAuthRequired is why a connection to a server that needs a login fails: it answered
// 401 (or 403 insufficient_scope) and no stored token, refreshed or not, satisfied it.
// errors.As with *AuthRequiredError gives the challenge.
var ErrAuthRequired = errors.New("login required")

// AuthRequiredError carries the challenge of the answer that asked for a login.
type AuthRequiredError struct {
	Challenge Challenge
	// StepUp is set for a 403 insufficient_scope: a token exists but needs wider scopes.
	StepUp bool
}

func (e *AuthRequiredError) Error() string {
	if e.StepUp {
		return "login required: the server asks for a wider scope"
	}
	return "login required"
}

// Unwrap makes errors.Is(err, ErrAuthRequired) true.
func (e *AuthRequiredError) Unwrap() error { return ErrAuthRequired }

// TokenStore keeps the tokens of one server (the store's sealed records). Get returns nil,
// nil when there are none.
type TokenStore interface {
	Get() (*Tokens, error)
	Put(*Tokens) error
}

// refreshSkew is how long before expiry a token is refreshed, or granted again by Regrant.
const refreshSkew = 30 * time.Second

// renewDue says whether tok has a known expiry within skew.
func renewDue(tok *Tokens, skew time.Duration) bool {
	return tok != nil && !tok.Expiry.IsZero() && time.Until(tok.Expiry) < skew
}

// regrantSkew is when tok is due for Regrant: refreshSkew before expiry, or in the second
// half of its life when it lives less than twice that. A grant counts against the oauth
// actor's budget, so a server that issues short-lived tokens must not get one with every
// request (a refresh has no budget and keeps refreshSkew).
func regrantSkew(tok *Tokens) time.Duration {
	if tok.Issued.IsZero() {
		return refreshSkew
	}
	return min(refreshSkew, tok.Expiry.Sub(tok.Issued)/2)
}

// regrantWait bounds how long a request waits for Regrant.
const regrantWait = 30 * time.Second

// Transport adds the server's bearer token to every request of a connection, refreshes the
// token shortly before it expires and once on a 401 (a token without a refresh token is
// renewed before it expires by Regrant, when set), and remembers the challenge of an
// answer that still asks for a login (AuthRequired). The tokens are read from the store on
// each request, so the store stays their one owner and a login or logout takes effect on
// the next request; the mutex only keeps two requests from spending one refresh token
// twice (a rotated refresh token is good once).
type Transport struct {
	Base  http.RoundTripper
	Store TokenStore
	// URL is the server's URL: tokens bound to another URL are not sent.
	URL string
	// HTTP is the client for the token endpoint. Default: Base with a 30 s timeout.
	HTTP *http.Client
	// OnChange is told when tokens were refreshed or found unusable (it must not block).
	OnChange func()
	// Regrant, when set, renews the tokens of a server that grants itself its tokens
	// (client_credentials, id_jag: no refresh token) and stores them: a token that is
	// about to expire (regrantSkew) is renewed before the request instead of meeting a 401,
	// which would lose the connection. The Transport calls it at most once per access
	// token, one request at a time, with a context bounded by regrantWait, and sends the
	// request with the token then in the store; on an error it sends the old token, and a
	// 401 leads to needs_auth as without it. Its error is not shown anywhere.
	Regrant func(ctx context.Context) error
	// Scrub, when set, is given the secret values of every token set the Transport is
	// about to send (Tokens.Values): those it read at first, those a refresh got (before
	// they are stored), and those another connection of the server stored meanwhile. The
	// connection adds them to its Scrubber, so that a token can never reach an error,
	// last_error or a log line, however often it is refreshed.
	Scrub func(values ...string)

	refreshMu sync.Mutex
	mu        sync.Mutex
	required  *AuthRequiredError
	// scrubbed is the access token last given to Scrub.
	scrubbed string
	// regranted is the access token Regrant was last called for.
	regranted string
}

// AuthRequired returns the last unanswered login request, if any.
func (t *Transport) AuthRequired() *AuthRequiredError {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.required
}

func (t *Transport) setRequired(e *AuthRequiredError) {
	t.mu.Lock()
	t.required = e
	t.mu.Unlock()
	if e != nil && t.OnChange != nil {
		t.OnChange()
	}
}

func (t *Transport) client() *http.Client {
	if t.HTTP != nil {
		return t.HTTP
	}
	return &http.Client{Transport: t.Base, Timeout: 30 * time.Second}
}

func (t *Transport) tokens() *Tokens {
	tok, err := t.Store.Get()
	if err != nil || tok == nil || tok.URL != t.URL || tok.AccessToken == "" {
		return nil
	}
	t.scrub(tok)
	return tok
}

// scrub gives tok's values to Scrub unless they were the last given.
func (t *Transport) scrub(tok *Tokens) {
	if t.Scrub == nil {
		return
	}
	t.mu.Lock()
	fresh := t.scrubbed != tok.AccessToken
	t.scrubbed = tok.AccessToken
	t.mu.Unlock()
	if fresh {
		t.Scrub(tok.Values()...)
	}
}

// refresh refreshes the tokens unless another request did since used was read.
func (t *Transport) refresh(ctx context.Context, used *Tokens) *Tokens {
	t.refreshMu.Lock()
	defer t.refreshMu.Unlock()
	cur := t.tokens()
	if cur != nil && used != nil && cur.AccessToken != used.AccessToken {
		return cur
	}
	if cur == nil || cur.RefreshToken == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	n, err := Refresh(ctx, t.client(), cur)
	if err != nil {
		if errors.Is(err, ErrRefreshRejected) {
			// Useless now: keep the client, drop the tokens, so the state says logged out.
			_ = t.Store.Put(&Tokens{URL: cur.URL, TokenURL: cur.TokenURL, RevokeURL: cur.RevokeURL, Client: cur.Client})
			if t.OnChange != nil {
				t.OnChange()
			}
		}
		return nil
	}
	t.scrub(n)
	if err := t.Store.Put(n); err != nil {
		return nil
	}
	if t.OnChange != nil {
		t.OnChange()
	}
	return n
}

// regrant renews used with Regrant unless another request did since used was read, or
// Regrant was already called for it; it returns the new tokens, nil if there are none.
func (t *Transport) regrant(ctx context.Context, used *Tokens) *Tokens {
	t.refreshMu.Lock()
	defer t.refreshMu.Unlock()
	cur := t.tokens()
	if cur == nil || cur.AccessToken != used.AccessToken {
		return cur
	}
	t.mu.Lock()
	tried := t.regranted == used.AccessToken
	t.regranted = used.AccessToken
	t.mu.Unlock()
	if tried {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, regrantWait)
	defer cancel()
	if err := t.Regrant(ctx); err != nil {
		return nil
	}
	n := t.tokens()
	if n == nil || n.AccessToken == used.AccessToken {
		return nil
	}
	if t.OnChange != nil {
		t.OnChange()
	}
	return n
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	tok := t.tokens()
	var n *Tokens
	switch {
	case tok == nil:
	case tok.RefreshToken != "" && renewDue(tok, refreshSkew):
		n = t.refresh(req.Context(), tok)
	case tok.RefreshToken == "" && t.Regrant != nil && renewDue(tok, regrantSkew(tok)):
		n = t.regrant(req.Context(), tok)
	}
	if n != nil {
		tok = n
	}
	resp, err := t.Base.RoundTrip(t.withToken(req, tok))
	if err != nil {
		return resp, err
	}
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		ch := ParseChallenge(resp.Header.Values("WWW-Authenticate"))
		if tok != nil && tok.RefreshToken != "" && (req.Body == nil || req.GetBody != nil) {
			if n := t.refresh(req.Context(), tok); n != nil {
				retry, rerr := rewind(req)
				if rerr == nil {
					drain(resp)
					resp, err = t.Base.RoundTrip(t.withToken(retry, n))
					if err != nil || resp.StatusCode != http.StatusUnauthorized {
						return resp, err
					}
					ch = ParseChallenge(resp.Header.Values("WWW-Authenticate"))
				}
			}
		}
		t.setRequired(&AuthRequiredError{Challenge: ch})
	case http.StatusForbidden:
		ch := ParseChallenge(resp.Header.Values("WWW-Authenticate"))
		if ch.Error == "insufficient_scope" {
			t.setRequired(&AuthRequiredError{Challenge: ch, StepUp: true})
		}
	}
	return resp, nil
}

func (t *Transport) withToken(req *http.Request, tok *Tokens) *http.Request {
	if tok == nil {
		return req
	}
	r := req.Clone(req.Context())
	r.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	return r
}

func rewind(req *http.Request) (*http.Request, error) {
	r := req.Clone(req.Context())
	if req.GetBody != nil {
		b, err := req.GetBody()
		if err != nil {
			return nil, fmt.Errorf("rewind body: %w", err)
		}
		r.Body = b
	}
	return r, nil
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
}

// CloseIdleConnections is forwarded to Base.
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.Base.(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}
