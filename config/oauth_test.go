package config

import (
	"strings"
	"testing"
)

// TestOAuthConfig: the oauth entry parses, validates only on remote servers, resolves its
// client_secret reference (and scrubs the value), and is redacted in views unless it is a
// reference; an apply of the placeholder keeps the secret.
func TestOAuthConfig(t *testing.T) {
	c, errs := Parse([]byte(`{"mcpServers":[{"name":"gh","url":"https://x/mcp","oauth":{"client_id":"id","client_secret":"${secret:GH}","scopes":["repo"]}},
		{"name":"lit","url":"https://y/mcp","oauth":{"client_id":"id","client_secret":"literal-secret"}}]}`))
	if len(errs) > 0 {
		t.Fatalf("parse: %v", errs)
	}
	if errs := c.Validate(); len(errs) > 0 {
		t.Fatalf("validate: %v", errs)
	}
	gh, _ := c.Server("gh")
	res, scrub, err := gh.Resolve(func(n string) (string, bool) { return "resolved-secret", n == "GH" }, nil)
	if err != nil || res.OAuth.ClientSecret != "resolved-secret" || gh.OAuth.ClientSecret != "${secret:GH}" {
		t.Fatalf("resolve: %v %+v", err, res.OAuth)
	}
	if got := scrub.Scrub("boom resolved-secret"); strings.Contains(got, "resolved-secret") {
		t.Errorf("not scrubbed: %s", got)
	}
	r := Redact(c)
	if s, _ := r.Server("gh"); s.OAuth.ClientSecret != "${secret:GH}" {
		t.Errorf("a reference was redacted: %q", s.OAuth.ClientSecret)
	}
	if s, _ := r.Server("lit"); s.OAuth.ClientSecret != Redacted {
		t.Errorf("a literal secret shown: %q", s.OAuth.ClientSecret)
	}
	kept, ferrs := KeepRedacted(c, r)
	if s, _ := kept.Server("lit"); len(ferrs) > 0 || s.OAuth.ClientSecret != "literal-secret" {
		t.Errorf("keep redacted: %v %q", ferrs, s.OAuth.ClientSecret)
	}
	bad, _ := Parse([]byte(`{"mcpServers":[{"name":"s","command":"x","oauth":{"client_secret":"z","client_metadata_url":"http://a"}}]}`))
	got := bad.Validate()
	if len(got) != 3 {
		t.Errorf("want 3 problems (stdio, secret without id, http metadata url), got %v", got)
	}
	cc, _ := Parse([]byte(`{"mcpServers":[{"name":"a","url":"https://x/mcp","oauth":{"grant":"client_credentials","client_id":"i"}},
		{"name":"b","url":"https://x/mcp","oauth":{"grant":"password"}}]}`))
	if got := cc.Validate(); len(got) != 2 {
		t.Errorf("want 2 grant problems (no secret, unknown grant), got %v", got)
	}
}

// TestOAuthPrivateKeyConfig: a private_key (private_key_jwt) stands in for the client
// secret: it needs a client_id, excludes a secret, takes ES256 or RS256, is resolved and
// scrubbed like a secret, redacted unless it is a reference, and kept by an apply of the
// placeholder.
func TestOAuthPrivateKeyConfig(t *testing.T) {
	c, errs := Parse([]byte(`{"mcpServers":[{"name":"k","url":"https://x/mcp","oauth":{"grant":"client_credentials","client_id":"id","private_key":"${secret:KEY}","signing_alg":"ES256"}},
		{"name":"lit","url":"https://y/mcp","oauth":{"grant":"client_credentials","client_id":"id","private_key":"literal-private-key"}}]}`))
	if len(errs) > 0 {
		t.Fatalf("parse: %v", errs)
	}
	if errs := c.Validate(); len(errs) > 0 {
		t.Fatalf("validate: %v", errs)
	}
	k, _ := c.Server("k")
	res, scrub, err := k.Resolve(func(n string) (string, bool) { return "resolved-pem-value", n == "KEY" }, nil)
	if err != nil || res.OAuth.PrivateKey != "resolved-pem-value" || k.OAuth.PrivateKey != "${secret:KEY}" {
		t.Fatalf("resolve: %v %+v", err, res.OAuth)
	}
	if got := scrub.Scrub("boom resolved-pem-value"); strings.Contains(got, "resolved-pem-value") {
		t.Errorf("not scrubbed: %s", got)
	}
	if secrets, _ := k.References(); len(secrets) != 1 || secrets[0] != "KEY" {
		t.Errorf("references %v, want KEY", secrets)
	}
	r := Redact(c)
	if s, _ := r.Server("k"); s.OAuth.PrivateKey != "${secret:KEY}" {
		t.Errorf("a reference was redacted: %q", s.OAuth.PrivateKey)
	}
	if s, _ := r.Server("lit"); s.OAuth.PrivateKey != Redacted {
		t.Errorf("a literal key shown: %q", s.OAuth.PrivateKey)
	}
	kept, ferrs := KeepRedacted(c, r)
	if s, _ := kept.Server("lit"); len(ferrs) > 0 || s.OAuth.PrivateKey != "literal-private-key" {
		t.Errorf("keep redacted: %v %q", ferrs, s.OAuth.PrivateKey)
	}
	bad, _ := Parse([]byte(`{"mcpServers":[{"name":"a","url":"https://x/mcp","oauth":{"private_key":"p"}},
		{"name":"b","url":"https://x/mcp","oauth":{"client_id":"i","client_secret":"s","private_key":"p"}},
		{"name":"c","url":"https://x/mcp","oauth":{"client_id":"i","private_key":"p","signing_alg":"HS256"}},
		{"name":"d","url":"https://x/mcp","oauth":{"client_id":"i","signing_alg":"ES256"}}]}`))
	got := bad.Validate()
	want := []string{"mcpServers[0].oauth.client_id", "mcpServers[1].oauth.private_key", "mcpServers[2].oauth.signing_alg", "mcpServers[3].oauth.signing_alg"}
	if len(got) != len(want) {
		t.Fatalf("want %d problems, got %v", len(want), got)
	}
	for i, w := range want {
		if got[i].Field != w {
			t.Errorf("problem %d is %s, want %s: %v", i, got[i].Field, w, got)
		}
	}
}

// TestOAuthIDJAGConfig: the id_jag grant needs its client_id and idp (token_endpoint or
// issuer, secure, not both; client_id; id_token), each problem named by its field; the
// idp's client_secret and id_token resolve, scrub, redact and keep like client_secret; an ID
// token referenced only there is read at the grant (SecretAtGrantOnly); a change of the idp
// changes the server's definition.
func TestOAuthIDJAGConfig(t *testing.T) {
	c, errs := Parse([]byte(`{"mcpServers":[{"name":"x","url":"https://mcp.example/mcp","oauth":{"grant":"id_jag","client_id":"app","client_secret":"${secret:APP}",
		"idp":{"issuer":"https://idp.example","client_id":"idp-app","client_secret":"idp-literal-secret","id_token":"${secret:IDT}"}}},
		{"name":"both","url":"https://mcp.example/mcp","headers":{"X-Id":"${secret:IDT}"},"oauth":{"grant":"id_jag","client_id":"app",
		"idp":{"token_endpoint":"http://127.0.0.1:9/token","client_id":"i","id_token":"literal-id-token"}}}]}`))
	if len(errs) > 0 {
		t.Fatalf("parse: %v", errs)
	}
	if errs := c.Validate(); len(errs) > 0 {
		t.Fatalf("validate: %v", errs)
	}
	x, _ := c.Server("x")
	res, scrub, err := x.Resolve(func(n string) (string, bool) {
		return map[string]string{"APP": "app-secret-v", "IDT": "id-token-v"}[n], n != ""
	}, nil)
	if err != nil || res.OAuth.IdP.IDToken != "id-token-v" || x.OAuth.IdP.IDToken != "${secret:IDT}" {
		t.Fatalf("resolve: %v %+v", err, res.OAuth.IdP)
	}
	if got := scrub.Scrub("a id-token-v b idp-literal-secret c"); strings.Contains(got, "id-token-v") || strings.Contains(got, "idp-literal-secret") {
		t.Errorf("not scrubbed: %s", got)
	}
	if secrets, _ := x.References(); strings.Join(secrets, ",") != "APP,IDT" {
		t.Errorf("references %v", secrets)
	}
	if !x.SecretAtGrantOnly("IDT") || x.SecretAtGrantOnly("APP") {
		t.Error("SecretAtGrantOnly: the ID token is read at the grant only, the client secret is not")
	}
	if both, _ := c.Server("both"); both.SecretAtGrantOnly("IDT") {
		t.Error("a secret also in a header is read by the connection")
	}
	r := Redact(c)
	rx, _ := r.Server("x")
	rb, _ := r.Server("both")
	if rx.OAuth.IdP.IDToken != "${secret:IDT}" || rx.OAuth.IdP.ClientSecret != Redacted || rb.OAuth.IdP.IDToken != Redacted {
		t.Errorf("redacted: %+v %+v", rx.OAuth.IdP, rb.OAuth.IdP)
	}
	if x.OAuth.IdP.ClientSecret != "idp-literal-secret" {
		t.Error("Redact changed the original")
	}
	kept, ferrs := KeepRedacted(c, r)
	if k, _ := kept.Server("both"); len(ferrs) > 0 || k.OAuth.IdP.IDToken != "literal-id-token" {
		t.Errorf("keep redacted: %v %+v", ferrs, k.OAuth.IdP)
	}
	if _, ferrs := KeepRedacted(&Config{}, r); len(ferrs) != 2 || ferrs[0].Field != "mcpServers[0].oauth.idp.client_secret" {
		t.Errorf("nothing to keep: %v", ferrs)
	}
	changed := c.Clone()
	changed.Servers[0].OAuth.IdP.Issuer = "https://idp2.example"
	if sameDefinition(c.Servers[0], changed.Servers[0]) || !sameDefinition(c.Servers[0], c.Clone().Servers[0]) {
		t.Error("an idp change is not a definition change, or a clone is")
	}

	for _, tc := range []struct{ oauth, field string }{
		{`{"grant":"id_jag","idp":{"issuer":"https://i","client_id":"c","id_token":"t"}}`, "mcpServers[0].oauth.client_id"},
		{`{"grant":"id_jag","client_id":"a"}`, "mcpServers[0].oauth.idp"},
		{`{"grant":"client_credentials","client_id":"a","client_secret":"s","idp":{"issuer":"https://i","client_id":"c","id_token":"t"}}`, "mcpServers[0].oauth.idp"},
		{`{"grant":"id_jag","client_id":"a","idp":{"client_id":"c","id_token":"t"}}`, "mcpServers[0].oauth.idp.token_endpoint"},
		{`{"grant":"id_jag","client_id":"a","idp":{"issuer":"https://i","token_endpoint":"https://i/t","client_id":"c","id_token":"t"}}`, "mcpServers[0].oauth.idp.issuer"},
		{`{"grant":"id_jag","client_id":"a","idp":{"token_endpoint":"http://idp.example/token","client_id":"c","id_token":"t"}}`, "mcpServers[0].oauth.idp.token_endpoint"},
		{`{"grant":"id_jag","client_id":"a","idp":{"issuer":"idp.example","client_id":"c","id_token":"t"}}`, "mcpServers[0].oauth.idp.issuer"},
		{`{"grant":"id_jag","client_id":"a","idp":{"issuer":"https://i","id_token":"t"}}`, "mcpServers[0].oauth.idp.client_id"},
		{`{"grant":"id_jag","client_id":"a","idp":{"issuer":"https://i","client_id":"c"}}`, "mcpServers[0].oauth.idp.id_token"},
		{`{"grant":"id_jag","client_id":"a","idp":{"issuer":"https://i","client_id":"c","id_token":"${secret:bad"}}`, "mcpServers[0].oauth.idp.id_token"},
	} {
		// Parse validates too.
		_, got := Parse([]byte(`{"mcpServers":[{"name":"s","url":"https://x/mcp","oauth":` + tc.oauth + `}]}`))
		if len(got) != 1 || got[0].Field != tc.field {
			t.Errorf("%s: want one problem at %s, got %v", tc.oauth, tc.field, got)
		}
	}
	if _, perrs := Parse([]byte(`{"mcpServers":[{"name":"s","url":"https://x/mcp","oauth":{"idp":{"tokenendpoint":"x"}}}]}`)); len(perrs) == 0 ||
		perrs[0].Field != "mcpServers[0].oauth.idp.tokenendpoint" || !strings.Contains(perrs[0].Message, `did you mean "token_endpoint"`) {
		t.Errorf("unknown idp field: %v", perrs)
	}
}

// TestSecureURL: where an ID token may go: https anywhere, http only on a loopback host.
func TestSecureURL(t *testing.T) {
	for raw, want := range map[string]bool{"https://idp.example/t": true, "http://127.0.0.1:9/t": true, "http://localhost/t": true,
		"http://[::1]:8/t": true, "http://idp.example/t": false, "http://127.0.0.1.example/t": false, "ftp://idp.example/t": false, "/t": false} {
		if SecureURL(raw) != want {
			t.Errorf("SecureURL(%s) = %v", raw, !want)
		}
	}
}
