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
