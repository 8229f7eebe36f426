package oauth

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/mcpproxy/mcpproxy/config"
)

// Token and grant types of enterprise-managed authorization (SEP-990): the Identity
// Assertion JWT Authorization Grant (ID-JAG, draft-ietf-oauth-identity-assertion-authz-grant).
const (
	GrantTokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange" // RFC 8693
	GrantJWTBearer     = "urn:ietf:params:oauth:grant-type:jwt-bearer"     // RFC 7523 section 2.1
	TokenTypeIDToken   = "urn:ietf:params:oauth:token-type:id_token"
	TokenTypeIDJAG     = "urn:ietf:params:oauth:token-type:id-jag"
)

// IdP is the enterprise identity provider of the id_jag grant: its token endpoint and the
// daemon's client there (a secret, or none for a public client).
type IdP struct {
	TokenEndpoint string
	Client        Client
}

// DiscoverIdP finds the token endpoint of the identity provider whose issuer identifier is
// issuer: its authorization server metadata (RFC 8414), else its OpenID Connect discovery
// document. The metadata must name the same issuer (RFC 8414 section 3.3), so a document
// served for another issuer is not taken.
func DiscoverIdP(ctx context.Context, hc *http.Client, issuer string) (string, error) {
	for _, u := range serverMetadataURLs(issuer) {
		var m ServerMetadata
		ok, err := getJSON(ctx, hc, u, &m)
		if err != nil {
			return "", err
		}
		if ok && m.TokenEndpoint != "" && sameIssuer(m.Issuer, issuer) {
			if !config.SecureURL(m.TokenEndpoint) {
				// The ID token must not cross a network in clear.
				return "", fmt.Errorf("the identity provider's token_endpoint is not https: %s", clip(m.TokenEndpoint))
			}
			return m.TokenEndpoint, nil
		}
	}
	return "", fmt.Errorf("no metadata with a token_endpoint found for the identity provider %s", issuer)
}

// sameIssuer compares issuer identifiers, a trailing slash aside.
func sameIssuer(a, b string) bool { return strings.TrimSuffix(a, "/") == strings.TrimSuffix(b, "/") }

// ExchangeIDToken trades the user's ID token at the identity provider for an ID-JAG (RFC
// 8693 token exchange): subject_token_type id_token, requested_token_type id-jag, audience
// the issuer of the MCP server's authorization server, resource the MCP server (RFC 8707),
// and the scopes wanted. It returns the ID-JAG, a JWT the caller only passes on.
func ExchangeIDToken(ctx context.Context, hc *http.Client, idp IdP, idToken, audience, resource string, scopes []string) (string, error) {
	if idToken == "" {
		return "", errors.New("id_jag token exchange: no ID token")
	}
	params := url.Values{"grant_type": {GrantTokenExchange}, "subject_token": {idToken},
		"subject_token_type": {TokenTypeIDToken}, "requested_token_type": {TokenTypeIDJAG}, "audience": {audience}}
	if resource != "" {
		params.Set("resource", resource)
	}
	method := "none"
	if idp.Client.Secret != "" {
		method = "client_secret_basic"
	}
	tok, err := grant(ctx, hc, idp.TokenEndpoint, "", idp.Client, method, params, scopes)
	if err != nil {
		return "", grantError("id_jag token exchange at the identity provider", err)
	}
	// RFC 8693 section 2.2.1: issued_token_type is required; an identity provider that
	// answered another kind of token (an access token of its own) must not have it sent on.
	if it, _ := tok.Extra("issued_token_type").(string); it != TokenTypeIDJAG {
		return "", fmt.Errorf("id_jag token exchange: the identity provider issued %q, not an ID-JAG", clip(it))
	}
	return tok.AccessToken, nil
}

// clip keeps a value from a server's answer short in an error.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

// IDJAGGrant is the whole id_jag grant for the MCP server at serverURL: the ID token is
// exchanged at the identity provider for an ID-JAG (ExchangeIDToken), which the client c
// presents at the server's authorization server as a JWT bearer grant (RFC 7523: grant_type
// jwt-bearer, the ID-JAG as assertion), authenticating as the metadata says
// (client_secret_basic, client_secret_post, private_key_jwt or none). The tokens are bound to
// serverURL like those of a login; they are not refreshable unless the authorization server
// gives a refresh token, and when they expire the daemon runs the grant again.
func IDJAGGrant(ctx context.Context, hc *http.Client, serverURL string, d *Discovery, c Client, idp IdP, idToken string, scopes []string) (*Tokens, error) {
	// The audience is the authorization server the resource names (its protected resource
	// metadata; for a 2025-03-26 server without one, the server's own origin), and its
	// metadata must name that same issuer (RFC 8414 section 3.3): otherwise a hostile server
	// could serve metadata that claims another server's issuer and have the daemon fetch an
	// ID-JAG good at that server and send it, with the client's credentials, to itself.
	var audience string
	if d.PRM != nil && len(d.PRM.AuthorizationServers) > 0 {
		audience = d.PRM.AuthorizationServers[0]
	} else if u, err := url.Parse(serverURL); err == nil && u.Host != "" {
		audience = u.Scheme + "://" + u.Host
	}
	if audience == "" || !sameIssuer(d.AS.Issuer, audience) {
		return nil, fmt.Errorf("id_jag grant: the authorization server's metadata names the issuer %q, not %q", clip(d.AS.Issuer), clip(audience))
	}
	audience = d.AS.Issuer
	assertion, err := ExchangeIDToken(ctx, hc, idp, idToken, audience, d.Resource, scopes)
	if err != nil {
		return nil, err
	}
	params := url.Values{"grant_type": {GrantJWTBearer}, "assertion": {assertion}}
	// The scopes travel in the ID-JAG; the request names no other (the draft's access
	// token request has grant_type and assertion only).
	return serverGrant(ctx, hc, "id_jag grant at the authorization server", serverURL, d, c, params, nil, scopes)
}
