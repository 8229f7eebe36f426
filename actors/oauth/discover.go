// Package oauth is the client side of the MCP authorization spec (2025-11-25, with the
// 2025-03-26 back-compat rules) for remote upstreams: reading a 401's WWW-Authenticate
// challenge, discovering the protected resource metadata (RFC 9728) and the authorization
// server's metadata (RFC 8414, OpenID Connect discovery), choosing a client identity
// (pre-registered, client ID metadata document, or dynamic registration, RFC 7591),
// building the authorization code request with PKCE (S256), state and the resource
// indicator (RFC 8707), exchanging the code and refreshing tokens.
//
// The grants themselves (code exchange, refresh, the token endpoint's client
// authentication) are golang.org/x/oauth2's: it is the Go team's well-kept implementation
// of RFC 6749 and PKCE, and its AuthStyle covers client_secret_basic, client_secret_post
// and none. Discovery and registration, which x/oauth2 lacks, are here. mcp-go's own OAuth
// handler was not used: it keeps tokens and the flow's state in itself (one handler per
// transport), where the daemon needs them owned by its store and an actor, and it has no
// scope selection from the challenge, no step-up and no client ID metadata documents.
//
// Nothing here keeps state: pending logins belong to the oauth actor (actors), tokens to
// the store (actors/store), and a connection's Transport reads them from a TokenStore.
// No function logs or returns a token value in an error.
package oauth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// maxDocBytes bounds a metadata or registration document read from a server.
const maxDocBytes = 1 << 20

// Challenge is what a 401 or 403 said in WWW-Authenticate (Bearer scheme).
type Challenge struct {
	ResourceMetadata string `json:"resource_metadata,omitempty"`
	Scope            string `json:"scope,omitempty"`
	Error            string `json:"error,omitempty"`
}

// ParseChallenge reads the Bearer challenge of WWW-Authenticate header values. Unknown
// schemes and parameters are ignored; quoted and bare values are both accepted.
func ParseChallenge(values []string) Challenge {
	var c Challenge
	for _, h := range values {
		i := strings.Index(strings.ToLower(h), "bearer")
		if i < 0 {
			continue
		}
		params := parseParams(h[i+len("bearer"):])
		if v := params["resource_metadata"]; v != "" {
			c.ResourceMetadata = v
		}
		if v := params["scope"]; v != "" {
			c.Scope = v
		}
		if v := params["error"]; v != "" {
			c.Error = v
		}
	}
	return c
}

// parseParams parses `k1="v 1", k2=v2` (RFC 7235 auth-params).
func parseParams(s string) map[string]string {
	out := map[string]string{}
	for {
		s = strings.TrimLeft(s, " \t,")
		eq := strings.IndexByte(s, '=')
		if eq <= 0 {
			return out
		}
		key := strings.ToLower(strings.TrimSpace(s[:eq]))
		s = strings.TrimLeft(s[eq+1:], " \t")
		var val string
		if strings.HasPrefix(s, `"`) {
			var b strings.Builder
			j := 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				b.WriteByte(s[j])
			}
			val = b.String()
			if j < len(s) {
				j++
			}
			s = s[j:]
		} else {
			end := strings.IndexAny(s, ", \t")
			if end < 0 {
				end = len(s)
			}
			val, s = s[:end], s[end:]
		}
		out[key] = val
	}
}

// ResourceMetadata is a protected resource's metadata (RFC 9728).
type ResourceMetadata struct {
	Resource             string   `json:"resource"`
	AuthorizationServers []string `json:"authorization_servers"`
	ScopesSupported      []string `json:"scopes_supported,omitempty"`
}

// ServerMetadata is an authorization server's metadata (RFC 8414 / OpenID Connect).
type ServerMetadata struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	RegistrationEndpoint              string   `json:"registration_endpoint,omitempty"`
	RevocationEndpoint                string   `json:"revocation_endpoint,omitempty"`
	ScopesSupported                   []string `json:"scopes_supported,omitempty"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported,omitempty"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported,omitempty"`
	ClientIDMetadataDocumentSupported bool     `json:"client_id_metadata_document_supported,omitempty"`
	GrantTypesSupported               []string `json:"grant_types_supported,omitempty"`
}

// Discovery is what discovery found for one server.
type Discovery struct {
	// Resource is the resource indicator (RFC 8707) sent with the grants: the protected
	// resource metadata's resource, else the server's URL.
	Resource string
	// Resource metadata; nil for a 2025-03-26 server that has none.
	PRM *ResourceMetadata
	// AS is the authorization server's metadata (for a 2025-03-26 server without metadata,
	// the default endpoints at its root).
	AS ServerMetadata
}

// ErrResourceMismatch is returned when the protected resource metadata names a resource
// the server's URL is not part of: a token for it must not be sent to this server.
var ErrResourceMismatch = errors.New("protected resource metadata names another resource")

// Discover finds the authorization server of the MCP server at serverURL, using the
// challenge of its 401 when there was one.
func Discover(ctx context.Context, hc *http.Client, serverURL string, ch Challenge) (*Discovery, error) {
	su, err := url.Parse(serverURL)
	if err != nil || su.Host == "" {
		return nil, fmt.Errorf("server url is not absolute")
	}
	var prm *ResourceMetadata
	var candidates []string
	if ch.ResourceMetadata != "" && sameOrigin(ch.ResourceMetadata, su) {
		// Only on the server's own origin (RFC 9728 serves the metadata from the
		// resource): a hostile server must not point the daemon's requests elsewhere.
		candidates = append(candidates, ch.ResourceMetadata)
	}
	origin := su.Scheme + "://" + su.Host
	if p := strings.TrimSuffix(su.Path, "/"); p != "" {
		candidates = append(candidates, origin+"/.well-known/oauth-protected-resource"+p)
	}
	candidates = append(candidates, origin+"/.well-known/oauth-protected-resource")
	for _, c := range candidates {
		var m ResourceMetadata
		if ok, err := getJSON(ctx, hc, c, &m); err != nil {
			return nil, err
		} else if ok && len(m.AuthorizationServers) > 0 {
			prm = &m
			break
		}
	}
	d := &Discovery{Resource: canonicalResource(su), PRM: prm}
	if prm == nil {
		// 2025-03-26: the authorization server is the MCP server's origin.
		var as ServerMetadata
		ok, err := getJSON(ctx, hc, origin+"/.well-known/oauth-authorization-server", &as)
		if err != nil {
			return nil, err
		}
		if !ok || as.AuthorizationEndpoint == "" || as.TokenEndpoint == "" {
			as = ServerMetadata{Issuer: origin, AuthorizationEndpoint: origin + "/authorize",
				TokenEndpoint: origin + "/token", RegistrationEndpoint: origin + "/register"}
		}
		d.AS = as
		return d, nil
	}
	if prm.Resource != "" {
		if !resourceCovers(prm.Resource, serverURL) {
			return nil, ErrResourceMismatch
		}
		d.Resource = prm.Resource
	}
	issuer := prm.AuthorizationServers[0]
	for _, c := range serverMetadataURLs(issuer) {
		var as ServerMetadata
		ok, err := getJSON(ctx, hc, c, &as)
		if err != nil {
			return nil, err
		}
		// A token endpoint is all the grants without a user need; RFC 8414 lets a server
		// that has no grant using it leave authorization_endpoint out, and a login there
		// is refused with a clear error (the oauth actor's prepareLogin).
		if ok && as.TokenEndpoint != "" {
			d.AS = as
			return d, nil
		}
	}
	return nil, fmt.Errorf("no authorization server metadata found for %s", issuer)
}

func sameOrigin(raw string, u *url.URL) bool {
	r, err := url.Parse(raw)
	return err == nil && strings.EqualFold(r.Scheme, u.Scheme) && strings.EqualFold(r.Host, u.Host)
}

// serverMetadataURLs are the well-known URLs of an issuer, path-aware (RFC 8414 section 3
// and OpenID Connect discovery, in the order the MCP spec gives).
func serverMetadataURLs(issuer string) []string {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" {
		return nil
	}
	origin := u.Scheme + "://" + u.Host
	p := strings.TrimSuffix(u.Path, "/")
	if p == "" {
		return []string{origin + "/.well-known/oauth-authorization-server", origin + "/.well-known/openid-configuration"}
	}
	return []string{origin + "/.well-known/oauth-authorization-server" + p,
		origin + "/.well-known/openid-configuration" + p, origin + p + "/.well-known/openid-configuration"}
}

// canonicalResource is the server's URL without fragment and query, as RFC 8707 wants it.
func canonicalResource(u *url.URL) string {
	c := *u
	c.Fragment, c.RawQuery, c.User = "", "", nil
	c.Scheme, c.Host = strings.ToLower(c.Scheme), strings.ToLower(c.Host)
	return c.String()
}

// resourceCovers says whether resource (from metadata) is the server's URL or a prefix of
// it on the same origin.
func resourceCovers(resource, serverURL string) bool {
	r, err1 := url.Parse(resource)
	s, err2 := url.Parse(serverURL)
	if err1 != nil || err2 != nil {
		return false
	}
	if !strings.EqualFold(r.Scheme, s.Scheme) || !strings.EqualFold(r.Host, s.Host) {
		return false
	}
	rp, sp := strings.TrimSuffix(r.Path, "/"), strings.TrimSuffix(s.Path, "/")
	return rp == "" || sp == rp || strings.HasPrefix(sp, rp+"/")
}

// getJSON fetches a JSON document; ok is false for a non-200 answer. The body is bounded.
func getJSON(ctx context.Context, hc *http.Client, u string, out any) (ok bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, nil
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	resp, err := hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		return false, nil
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDocBytes))
		return false, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocBytes+1))
	if err != nil || len(body) > maxDocBytes {
		return false, nil
	}
	return json.Unmarshal(body, out) == nil, nil
}

// Scopes picks the scopes to ask for: the configured ones, else the challenge's, else the
// resource metadata's scopes_supported, else none; offline_access is added where the
// authorization server offers it, so a refresh token comes with the grant.
func Scopes(configured []string, ch Challenge, d *Discovery) []string {
	var s []string
	switch {
	case len(configured) > 0:
		s = append(s, configured...)
	case ch.Scope != "":
		s = strings.Fields(ch.Scope)
	case d.PRM != nil && len(d.PRM.ScopesSupported) > 0:
		s = append(s, d.PRM.ScopesSupported...)
	}
	if len(s) > 0 || len(d.AS.ScopesSupported) > 0 {
		offered := false
		for _, v := range d.AS.ScopesSupported {
			offered = offered || v == "offline_access"
		}
		have := false
		for _, v := range s {
			have = have || v == "offline_access"
		}
		if offered && !have {
			s = append(s, "offline_access")
		}
	}
	return s
}
