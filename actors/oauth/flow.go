package oauth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// Client is an OAuth client identity at one authorization server.
type Client struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret,omitempty"`
	// PrivateKey (PEM) and SigningAlg are for private_key_jwt: the client signs an
	// assertion instead of sending a secret (ClientAssertion).
	PrivateKey string `json:"private_key,omitempty"`
	SigningAlg string `json:"signing_alg,omitempty"`
	// AuthMethod is the token endpoint's client authentication: client_secret_basic,
	// client_secret_post, private_key_jwt or none.
	AuthMethod string `json:"token_endpoint_auth_method,omitempty"`
}

// Tokens is what the store keeps for one server: the grant's tokens and what refreshing and
// revoking them needs, bound to the server's URL (a URL change drops them).
type Tokens struct {
	URL          string    `json:"url"`
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	TokenType    string    `json:"token_type,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
	// Issued is when the access token was received: with Expiry it gives the token's
	// lifetime, so a short-lived token is not granted again with every request (see
	// regrantSkew).
	Issued    time.Time `json:"issued,omitzero"`
	Scopes    []string  `json:"scopes,omitempty"`
	Resource  string    `json:"resource,omitempty"`
	TokenURL  string    `json:"token_url"`
	RevokeURL string    `json:"revoke_url,omitempty"`
	// Issuer is the authorization server's identifier, the audience of a private_key_jwt
	// assertion.
	Issuer string `json:"issuer,omitempty"`
	Client Client `json:"client"`
}

// Values are the secret strings of t, for scrubbing.
func (t *Tokens) Values() []string {
	if t == nil {
		return nil
	}
	return []string{t.AccessToken, t.RefreshToken, t.Client.Secret, t.Client.PrivateKey}
}

// ChooseAuthMethod picks the token endpoint authentication: the registered one, else the
// first of the metadata's methods that the client can do, else client_secret_basic for a
// client with a secret (RFC 8414's default) and none without.
func ChooseAuthMethod(c Client, as ServerMetadata) string {
	if c.AuthMethod != "" {
		return c.AuthMethod
	}
	if c.PrivateKey != "" {
		return "private_key_jwt"
	}
	for _, m := range as.TokenEndpointAuthMethodsSupported {
		switch {
		case m == "none" && c.Secret == "":
			return m
		case (m == "client_secret_basic" || m == "client_secret_post") && c.Secret != "":
			return m
		}
	}
	if c.Secret != "" {
		return "client_secret_basic"
	}
	return "none"
}

func authStyle(method string) oauth2.AuthStyle {
	if method == "client_secret_basic" {
		return oauth2.AuthStyleInHeader
	}
	return oauth2.AuthStyleInParams
}

// Register registers a client dynamically (RFC 7591) for redirectURI.
func Register(ctx context.Context, hc *http.Client, as ServerMetadata, redirectURI, name string, scopes []string) (Client, error) {
	if as.RegistrationEndpoint == "" {
		return Client{}, errors.New("the authorization server offers no dynamic client registration; configure oauth.client_id")
	}
	method := "none"
	if len(as.TokenEndpointAuthMethodsSupported) > 0 && !slices.Contains(as.TokenEndpointAuthMethodsSupported, "none") {
		method = as.TokenEndpointAuthMethodsSupported[0]
	}
	body := map[string]any{
		"client_name": name, "redirect_uris": []string{redirectURI},
		"grant_types": []string{"authorization_code", "refresh_token"}, "response_types": []string{"code"},
		"token_endpoint_auth_method": method,
	}
	if len(scopes) > 0 {
		body["scope"] = strings.Join(scopes, " ")
	}
	b, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, as.RegistrationEndpoint, bytes.NewReader(b))
	if err != nil {
		return Client{}, fmt.Errorf("client registration: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return Client{}, fmt.Errorf("client registration: %w", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxDocBytes))
	if err != nil {
		return Client{}, fmt.Errorf("client registration: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		return Client{}, fmt.Errorf("client registration failed with status %d", resp.StatusCode)
	}
	var c Client
	if err := json.Unmarshal(raw, &c); err != nil || c.ID == "" {
		return Client{}, errors.New("client registration answered no client_id")
	}
	if c.AuthMethod == "" {
		c.AuthMethod = method
		if c.Secret == "" {
			c.AuthMethod = "none"
		}
	}
	return c, nil
}

// Request is one authorization code request in progress.
type Request struct {
	Server      string
	URL         string // the MCP server's URL the tokens will be bound to
	Discovery   *Discovery
	Client      Client
	RedirectURI string
	Scopes      []string
	State       string
	Verifier    string
}

func (r *Request) config() *oauth2.Config {
	return &oauth2.Config{
		ClientID: r.Client.ID, ClientSecret: r.Client.Secret, RedirectURL: r.RedirectURI, Scopes: r.Scopes,
		Endpoint: oauth2.Endpoint{AuthURL: r.Discovery.AS.AuthorizationEndpoint, TokenURL: r.Discovery.AS.TokenEndpoint,
			AuthStyle: authStyle(ChooseAuthMethod(r.Client, r.Discovery.AS))},
	}
}

// NewRequest makes a request with a fresh state and PKCE verifier.
func NewRequest(server, serverURL string, d *Discovery, c Client, redirectURI string, scopes []string) *Request {
	return &Request{Server: server, URL: serverURL, Discovery: d, Client: c, RedirectURI: redirectURI,
		Scopes: scopes, State: oauth2.GenerateVerifier(), Verifier: oauth2.GenerateVerifier()}
}

// AuthorizationURL is where the user logs in.
func (r *Request) AuthorizationURL() string {
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(r.Verifier)}
	if r.Discovery.Resource != "" {
		opts = append(opts, oauth2.SetAuthURLParam("resource", r.Discovery.Resource))
	}
	return r.config().AuthCodeURL(r.State, opts...)
}

// Exchange trades the code for tokens.
func (r *Request) Exchange(ctx context.Context, hc *http.Client, code string) (*Tokens, error) {
	ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)
	opts := []oauth2.AuthCodeOption{oauth2.VerifierOption(r.Verifier)}
	if r.Discovery.Resource != "" {
		opts = append(opts, oauth2.SetAuthURLParam("resource", r.Discovery.Resource))
	}
	tok, err := r.config().Exchange(ctx, code, opts...)
	if err != nil {
		return nil, grantError("token exchange", err)
	}
	t := &Tokens{URL: r.URL, Resource: r.Discovery.Resource, TokenURL: r.Discovery.AS.TokenEndpoint,
		RevokeURL: r.Discovery.AS.RevocationEndpoint, Issuer: r.Discovery.AS.Issuer, Client: r.Client, Scopes: r.Scopes}
	t.Client.AuthMethod = ChooseAuthMethod(r.Client, r.Discovery.AS)
	fill(t, tok)
	return t, nil
}

func fill(t *Tokens, tok *oauth2.Token) {
	t.AccessToken, t.TokenType, t.Expiry, t.Issued = tok.AccessToken, tok.TokenType, tok.Expiry, time.Now()
	if tok.RefreshToken != "" {
		t.RefreshToken = tok.RefreshToken
	}
	if s, ok := tok.Extra("scope").(string); ok && s != "" {
		t.Scopes = strings.Fields(s)
	}
}

// ErrRefreshRejected is returned by Refresh when the authorization server refused the
// refresh token (revoked, expired): only a new login helps.
var ErrRefreshRejected = errors.New("refresh token rejected")

// Refresh uses the refresh token (grant refresh_token) and returns the new tokens. The
// request carries the resource indicator the tokens were issued for (RFC 8707 section 2.2:
// a refresh names the resource again, so the new access token stays bound to it).
func Refresh(ctx context.Context, hc *http.Client, t *Tokens) (*Tokens, error) {
	if t.RefreshToken == "" {
		return nil, ErrRefreshRejected
	}
	params := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {t.RefreshToken}}
	if t.Resource != "" {
		params.Set("resource", t.Resource)
	}
	tok, err := grant(ctx, hc, t.TokenURL, t.Issuer, t.Client, t.Client.AuthMethod, params, nil)
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && re.Response != nil && re.Response.StatusCode/100 == 4 {
			return nil, ErrRefreshRejected
		}
		return nil, grantError("token refresh", err)
	}
	n := *t
	fill(&n, tok)
	return &n, nil
}

// grant makes one token request with x/oauth2's clientcredentials.Config, which lets
// params replace grant_type: so the refresh_token grant can carry the resource indicator,
// which oauth2.Config's refresh cannot send. The client authenticates by method; for
// private_key_jwt with an assertion signed for the authorization server issuer (the token
// endpoint's URL when the issuer is unknown).
func grant(ctx context.Context, hc *http.Client, tokenURL, issuer string, c Client, method string, params url.Values, scopes []string) (*oauth2.Token, error) {
	conf := &clientcredentials.Config{ClientID: c.ID, ClientSecret: c.Secret, TokenURL: tokenURL,
		Scopes: scopes, AuthStyle: authStyle(method), EndpointParams: params}
	if method == "private_key_jwt" {
		aud := issuer
		if aud == "" {
			aud = tokenURL
		}
		assertion, err := ClientAssertion(c, aud, time.Now())
		if err != nil {
			return nil, fmt.Errorf("%w: %v", errAssertion, err)
		}
		conf.ClientSecret = ""
		params.Set("client_assertion_type", ClientAssertionType)
		params.Set("client_assertion", assertion)
	}
	return conf.Token(context.WithValue(ctx, oauth2.HTTPClient, hc))
}

// errAssertion marks a client assertion that could not be made (a bad key or algorithm):
// its message names the problem, never the key.
var errAssertion = errors.New("client assertion")

// grantError keeps the OAuth error code of a failed grant but never the response body,
// which might echo what was sent.
func grantError(what string, err error) error {
	if errors.Is(err, errAssertion) {
		return fmt.Errorf("%s failed: %w", what, err)
	}
	var re *oauth2.RetrieveError
	if errors.As(err, &re) {
		if re.ErrorCode != "" {
			return fmt.Errorf("%s failed: %s", what, re.ErrorCode)
		}
		if re.Response != nil {
			return fmt.Errorf("%s failed with status %d", what, re.Response.StatusCode)
		}
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s failed: %s %s: %v", what, ue.Op, ue.URL, ue.Err)
	}
	return fmt.Errorf("%s failed", what)
}

// Revoke revokes the refresh token (else the access token) where the authorization server
// offers revocation (RFC 7009). Errors are reported but the caller deletes the tokens anyway.
func Revoke(ctx context.Context, hc *http.Client, t *Tokens) error {
	if t.RevokeURL == "" {
		return nil
	}
	form := url.Values{}
	if t.RefreshToken != "" {
		form.Set("token", t.RefreshToken)
		form.Set("token_type_hint", "refresh_token")
	} else {
		form.Set("token", t.AccessToken)
		form.Set("token_type_hint", "access_token")
	}
	switch t.Client.AuthMethod {
	case "client_secret_basic":
	case "private_key_jwt":
		aud := t.Issuer
		if aud == "" {
			aud = t.TokenURL
		}
		assertion, err := ClientAssertion(t.Client, aud, time.Now())
		if err != nil {
			return fmt.Errorf("revoke: %w", err)
		}
		form.Set("client_id", t.Client.ID)
		form.Set("client_assertion_type", ClientAssertionType)
		form.Set("client_assertion", assertion)
	default:
		form.Set("client_id", t.Client.ID)
		if t.Client.Secret != "" {
			form.Set("client_secret", t.Client.Secret)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.RevokeURL, strings.NewReader(form.Encode()))
	if err != nil {
		return fmt.Errorf("revoke: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if t.Client.AuthMethod == "client_secret_basic" {
		req.SetBasicAuth(url.QueryEscape(t.Client.ID), url.QueryEscape(t.Client.Secret))
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("revoke failed")
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDocBytes))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("revoke failed with status %d", resp.StatusCode)
	}
	return nil
}

// ClientCredentials gets tokens with the client_credentials grant (the MCP
// client-credentials extension: no user, the client authenticates itself), with the
// resource indicator, for the server at serverURL.
func ClientCredentials(ctx context.Context, hc *http.Client, serverURL string, d *Discovery, c Client, scopes []string) (*Tokens, error) {
	params := url.Values{}
	if d.Resource != "" {
		params.Set("resource", d.Resource)
	}
	return serverGrant(ctx, hc, "client credentials grant", serverURL, d, c, params, scopes, scopes)
}

// serverGrant makes one grant without a user at the server's authorization server (params
// name it; send are the scopes the request names) and returns the tokens, bound to
// serverURL, with scopes as granted unless the answer names others. The client
// authenticates as ChooseAuthMethod says.
func serverGrant(ctx context.Context, hc *http.Client, what, serverURL string, d *Discovery, c Client, params url.Values, send, scopes []string) (*Tokens, error) {
	method := ChooseAuthMethod(c, d.AS)
	tok, err := grant(ctx, hc, d.AS.TokenEndpoint, d.AS.Issuer, c, method, params, send)
	if err != nil {
		return nil, grantError(what, err)
	}
	t := &Tokens{URL: serverURL, Resource: d.Resource, TokenURL: d.AS.TokenEndpoint, RevokeURL: d.AS.RevocationEndpoint,
		Issuer: d.AS.Issuer, Client: c, Scopes: scopes}
	t.Client.AuthMethod = method
	fill(t, tok)
	return t, nil
}
