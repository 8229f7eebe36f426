package oauth

import (
	"net/url"
	"slices"
	"testing"
)

func TestParseChallenge(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want Challenge
	}{
		{[]string{`Bearer resource_metadata="https://a/.well-known/oauth-protected-resource/mcp", scope="read write"`},
			Challenge{ResourceMetadata: "https://a/.well-known/oauth-protected-resource/mcp", Scope: "read write"}},
		{[]string{`Basic realm="x"`, `Bearer error="insufficient_scope", scope="admin"`}, Challenge{Scope: "admin", Error: "insufficient_scope"}},
		{[]string{`bearer scope=read`}, Challenge{Scope: "read"}},
		{[]string{`Bearer scope="a \"quoted\" b"`}, Challenge{Scope: `a "quoted" b`}},
		{nil, Challenge{}},
	} {
		if got := ParseChallenge(tc.in); got != tc.want {
			t.Errorf("ParseChallenge(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
}

func TestServerMetadataURLs(t *testing.T) {
	if got, want := serverMetadataURLs("https://as.example/tenant1"), []string{
		"https://as.example/.well-known/oauth-authorization-server/tenant1",
		"https://as.example/.well-known/openid-configuration/tenant1",
		"https://as.example/tenant1/.well-known/openid-configuration",
	}; !slices.Equal(got, want) {
		t.Errorf("with path: %q", got)
	}
	if got, want := serverMetadataURLs("https://as.example"), []string{
		"https://as.example/.well-known/oauth-authorization-server",
		"https://as.example/.well-known/openid-configuration",
	}; !slices.Equal(got, want) {
		t.Errorf("without path: %q", got)
	}
}

func TestScopes(t *testing.T) {
	d := &Discovery{PRM: &ResourceMetadata{ScopesSupported: []string{"files"}}, AS: ServerMetadata{ScopesSupported: []string{"files", "offline_access"}}}
	for _, tc := range []struct {
		name       string
		configured []string
		ch         Challenge
		d          *Discovery
		want       []string
	}{
		{"configured wins", []string{"x"}, Challenge{Scope: "y"}, d, []string{"x", "offline_access"}},
		{"challenge", nil, Challenge{Scope: "a b"}, d, []string{"a", "b", "offline_access"}},
		{"scopes_supported", nil, Challenge{}, d, []string{"files", "offline_access"}},
		{"none", nil, Challenge{}, &Discovery{}, nil},
		{"no offline_access offered", nil, Challenge{Scope: "a"}, &Discovery{AS: ServerMetadata{ScopesSupported: []string{"a"}}}, []string{"a"}},
	} {
		if got := Scopes(tc.configured, tc.ch, tc.d); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.want)
		}
	}
}

func TestResourceCovers(t *testing.T) {
	for _, tc := range []struct {
		res, server string
		want        bool
	}{
		{"https://a/mcp", "https://a/mcp", true},
		{"https://a/", "https://a/mcp", true},
		{"https://a/mcp", "https://a/mcp/x", true},
		{"https://a/mc", "https://a/mcp", false},
		{"https://b/mcp", "https://a/mcp", false},
	} {
		if got := resourceCovers(tc.res, tc.server); got != tc.want {
			t.Errorf("resourceCovers(%s, %s) = %v", tc.res, tc.server, got)
		}
	}
}

func TestSameOrigin(t *testing.T) {
	u, _ := url.Parse("https://mcp.example/mcp")
	if !sameOrigin("https://MCP.example/.well-known/oauth-protected-resource/mcp", u) {
		t.Error("same origin refused")
	}
	for _, other := range []string{"http://mcp.example/x", "https://169.254.169.254/latest", "https://mcp.example:8443/x"} {
		if sameOrigin(other, u) {
			t.Errorf("%s accepted", other)
		}
	}
}
