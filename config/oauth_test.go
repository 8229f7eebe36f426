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
