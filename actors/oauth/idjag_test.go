package oauth

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// idjagServers are an identity provider and an authorization server on httptest, recording
// the forms (and Authorization headers) each token endpoint received. The IdP answers its
// token exchange with issued (the issued_token_type) and status.
type idjagServers struct {
	idp, as        *httptest.Server
	mu             sync.Mutex
	idpForms       []map[string]string
	asForms        []map[string]string
	issued         string
	status         int
	metadataIssuer string // the issuer the IdP's metadata names; "" = its own URL
	metadataToken  string // the token_endpoint it names; "" = its own
}

func newIDJAGServers(t *testing.T) *idjagServers {
	s := &idjagServers{issued: TokenTypeIDJAG, status: 200}
	record := func(r *http.Request, into *[]map[string]string) map[string]string {
		_ = r.ParseForm()
		f := map[string]string{"auth": r.Header.Get("Authorization")}
		for k := range r.PostForm {
			f[k] = r.PostForm.Get(k)
		}
		s.mu.Lock()
		*into = append(*into, f)
		s.mu.Unlock()
		return f
	}
	s.idp = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/openid-configuration":
			iss := s.metadataIssuer
			if iss == "" {
				iss = s.idp.URL
			}
			te := s.metadataToken
			if te == "" {
				te = s.idp.URL + "/oauth2/token"
			}
			_, _ = w.Write([]byte(`{"issuer":"` + iss + `","token_endpoint":"` + te + `"}`))
		case "/oauth2/token":
			f := record(r, &s.idpForms)
			if s.status != 200 {
				// A body that echoes what was sent: it must not reach an error.
				w.WriteHeader(s.status)
				_, _ = w.Write([]byte(`{"error":"invalid_grant","error_description":"bad token ` + f["subject_token"] + `"}`))
				return
			}
			_, _ = w.Write([]byte(`{"access_token":"the-id-jag","issued_token_type":"` + s.issued + `","token_type":"N_A","expires_in":300}`))
		default:
			http.NotFound(w, r)
		}
	}))
	s.as = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		record(r, &s.asForms)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"access_token":"as-access","token_type":"Bearer","expires_in":60,"scope":"read"}`))
	}))
	t.Cleanup(s.idp.Close)
	t.Cleanup(s.as.Close)
	return s
}

// TestIDJAGGrant: the id_jag grant exchanges the ID token at the IdP's token endpoint (found
// from its issuer) with the RFC 8693 parameters SEP-990 names (audience the authorization
// server's issuer, resource the MCP server, the scopes), then presents the ID-JAG at the
// authorization server as a jwt-bearer grant with the client's secret (Basic), and binds the
// tokens to the server's URL.
func TestIDJAGGrant(t *testing.T) {
	s := newIDJAGServers(t)
	ctx, hc := t.Context(), &http.Client{}
	te, err := DiscoverIdP(ctx, hc, s.idp.URL)
	if err != nil || te != s.idp.URL+"/oauth2/token" {
		t.Fatalf("discover: %q %v", te, err)
	}
	d := &Discovery{Resource: "https://mcp.example/mcp", PRM: &ResourceMetadata{AuthorizationServers: []string{s.as.URL + "/tenant/"}},
		AS: ServerMetadata{Issuer: s.as.URL + "/tenant", TokenEndpoint: s.as.URL + "/token", TokenEndpointAuthMethodsSupported: []string{"client_secret_basic"}}}
	idp := IdP{TokenEndpoint: te, Client: Client{ID: "idp-client"}}
	tok, err := IDJAGGrant(ctx, hc, "https://mcp.example/mcp", d, Client{ID: "xaa", Secret: "xaa-secret"}, idp, "the-id-token", []string{"read"})
	if err != nil {
		t.Fatal(err)
	}
	if tok.AccessToken != "as-access" || tok.URL != "https://mcp.example/mcp" || tok.Resource != d.Resource ||
		tok.Client.AuthMethod != "client_secret_basic" || tok.Expiry.IsZero() || strings.Join(tok.Scopes, " ") != "read" {
		t.Errorf("tokens %+v", tok)
	}
	if len(s.idpForms) != 1 || len(s.asForms) != 1 {
		t.Fatalf("requests: idp %d, as %d", len(s.idpForms), len(s.asForms))
	}
	want := map[string]string{"grant_type": GrantTokenExchange, "subject_token": "the-id-token", "subject_token_type": TokenTypeIDToken,
		"requested_token_type": TokenTypeIDJAG, "audience": s.as.URL + "/tenant", "resource": "https://mcp.example/mcp",
		"scope": "read", "client_id": "idp-client", "auth": ""}
	for k, v := range want {
		if got := s.idpForms[0][k]; got != v {
			t.Errorf("token exchange %s = %q, want %q", k, got, v)
		}
	}
	f := s.asForms[0]
	if f["grant_type"] != GrantJWTBearer || f["assertion"] != "the-id-jag" || !strings.HasPrefix(f["auth"], "Basic ") ||
		f["client_secret"] != "" || f["subject_token"] != "" {
		t.Errorf("jwt bearer grant %v", f)
	}

	// An IdP client with a secret authenticates with it (Basic) at the IdP too.
	idp.Client.Secret = "idp-secret"
	if _, err := IDJAGGrant(ctx, hc, "https://mcp.example/mcp", d, Client{ID: "xaa", Secret: "xaa-secret"}, idp, "the-id-token", nil); err != nil {
		t.Fatal(err)
	}
	if f := s.idpForms[1]; !strings.HasPrefix(f["auth"], "Basic ") || f["client_secret"] != "" || f["scope"] != "" {
		t.Errorf("token exchange with an IdP secret %v", f)
	}
}

// TestIDJAGGrantRefusals: an IdP that answers another token type, refuses the ID token (with
// a body that echoes it) or serves metadata of another issuer fails the grant before
// anything reaches the authorization server, and no error quotes the ID token.
func TestIDJAGGrantRefusals(t *testing.T) {
	s := newIDJAGServers(t)
	ctx, hc := t.Context(), &http.Client{}
	d := &Discovery{Resource: "https://mcp.example/mcp", PRM: &ResourceMetadata{AuthorizationServers: []string{s.as.URL}},
		AS: ServerMetadata{Issuer: s.as.URL, TokenEndpoint: s.as.URL + "/token"}}
	idp := IdP{TokenEndpoint: s.idp.URL + "/oauth2/token", Client: Client{ID: "idp-client"}}
	c := Client{ID: "xaa", Secret: "xaa-secret"}

	// Metadata that claims another authorization server's issuer (a hostile server wanting
	// an ID-JAG good elsewhere) is refused before the IdP is asked; so is one without a
	// resource metadata whose issuer is not the server's origin.
	hostile := *d
	hostile.AS.Issuer = "https://real-as.example"
	if _, err := IDJAGGrant(ctx, hc, "https://mcp.example/mcp", &hostile, c, idp, "id-token-value", nil); err == nil {
		t.Error("an issuer other than the resource's authorization server was taken")
	}
	legacy := &Discovery{Resource: "https://mcp.example/mcp", AS: ServerMetadata{Issuer: s.as.URL, TokenEndpoint: s.as.URL + "/token"}}
	if _, err := IDJAGGrant(ctx, hc, "https://mcp.example/mcp", legacy, c, idp, "id-token-value", nil); err == nil {
		t.Error("a 2025-03-26 server's metadata named another origin's issuer and was taken")
	}
	if len(s.idpForms) != 0 {
		t.Fatalf("the IdP was asked %d times for a refused audience", len(s.idpForms))
	}

	s.issued = "urn:ietf:params:oauth:token-type:access_token"
	if _, err := IDJAGGrant(ctx, hc, "https://mcp.example/mcp", d, c, idp, "id-token-value", nil); err == nil || !strings.Contains(err.Error(), "not an ID-JAG") {
		t.Errorf("another token type: %v", err)
	}
	s.issued, s.status = TokenTypeIDJAG, 400
	_, err := IDJAGGrant(ctx, hc, "https://mcp.example/mcp", d, c, idp, "id-token-value", nil)
	if err == nil || !strings.Contains(err.Error(), "invalid_grant") || strings.Contains(err.Error(), "id-token-value") {
		t.Errorf("a refused ID token: %v", err)
	}
	if _, err := IDJAGGrant(ctx, hc, "https://mcp.example/mcp", d, c, idp, "", nil); err == nil {
		t.Error("an empty ID token was sent")
	}
	if len(s.asForms) != 0 {
		t.Errorf("the authorization server got %d requests", len(s.asForms))
	}
	s.metadataIssuer = "https://other.example"
	if _, err := DiscoverIdP(ctx, hc, s.idp.URL); err == nil {
		t.Error("metadata of another issuer was taken")
	}
	s.metadataIssuer, s.metadataToken = "", "http://idp.example/token"
	if _, err := DiscoverIdP(ctx, hc, s.idp.URL); err == nil || !strings.Contains(err.Error(), "not https") {
		t.Errorf("a token endpoint in clear over the network: %v", err)
	}
	if _, err := IDJAGGrant(ctx, hc, "https://mcp.example/mcp", &Discovery{AS: ServerMetadata{TokenEndpoint: s.as.URL}}, c, idp, "x", nil); err == nil {
		t.Error("a grant without an audience")
	}
}

// TestDiscoverTokenOnlyServer: an authorization server whose metadata has a token endpoint
// but no authorization endpoint (it serves only grants without a user, as RFC 8414 allows)
// is found, under the first well-known URL that names a token endpoint.
func TestDiscoverTokenOnlyServer(t *testing.T) {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/.well-known/oauth-protected-resource/mcp":
			_, _ = w.Write([]byte(`{"resource":"` + srv.URL + `/mcp","authorization_servers":["` + srv.URL + `/as"]}`))
		case "/.well-known/oauth-authorization-server/as":
			_, _ = w.Write([]byte(`{"issuer":"` + srv.URL + `/as"}`)) // no endpoints: not this one
		case "/.well-known/openid-configuration/as":
			_, _ = w.Write([]byte(`{"issuer":"` + srv.URL + `/as","token_endpoint":"` + srv.URL + `/as/token","grant_types_supported":["` + GrantJWTBearer + `"]}`))
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	d, err := Discover(t.Context(), srv.Client(), srv.URL+"/mcp", Challenge{})
	if err != nil || d.AS.TokenEndpoint != srv.URL+"/as/token" || d.AS.AuthorizationEndpoint != "" || d.Resource != srv.URL+"/mcp" {
		t.Fatalf("discover: %v %+v", err, d)
	}
}
