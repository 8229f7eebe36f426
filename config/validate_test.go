package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

func ptr[T any](v T) *T { return &v }

func TestValidate(t *testing.T) {
	stdio := func(name string) ServerConfig { return ServerConfig{Name: name, Command: "npx"} }
	remote := func(name, url string) ServerConfig { return ServerConfig{Name: name, URL: url} }
	withServers := func(s ...ServerConfig) Config { return Config{Servers: s} }
	tests := []struct {
		name string
		cfg  Config
		want []string // error fields, in order; nil means valid
		msg  string   // substring of the first error's message
	}{
		{name: "zero config", cfg: Config{}},
		{name: "good servers", cfg: withServers(stdio("a"), remote("b", "https://x.example/mcp"),
			ServerConfig{Name: "c.d_e-1", Protocol: "sse", URL: "http://127.0.0.1:9/sse"})},
		{name: "good top level", cfg: Config{Listen: "[::1]:0", ToolsLimit: 1000, RestartConcurrency: 256,
			CallToolTimeout: Duration(time.Second), TrustedHosts: []string{"a.example"}}},
		{name: "listen all interfaces", cfg: Config{Listen: ":8080"}},
		{name: "disabled_tools", cfg: withServers(ServerConfig{Name: "a", Command: "npx", DisabledTools: []string{"rm", "write"}})},
		{name: "disabled_tools empty name", cfg: withServers(ServerConfig{Name: "a", Command: "npx", DisabledTools: []string{"rm", " "}}),
			want: []string{"mcpServers[0].disabled_tools[1]"}, msg: "empty tool name"},
		{name: "disabled_tools twice", cfg: withServers(ServerConfig{Name: "a", Command: "npx", DisabledTools: []string{"rm", "rm"}}),
			want: []string{"mcpServers[0].disabled_tools[1]"}, msg: "twice"},

		{name: "listen without port", cfg: Config{Listen: "localhost"}, want: []string{"listen"}, msg: "host:port"},
		{name: "listen bad port", cfg: Config{Listen: "localhost:http"}, want: []string{"listen"}, msg: "port"},
		{name: "listen port range", cfg: Config{Listen: "127.0.0.1:70000"}, want: []string{"listen"}, msg: "65535"},
		{name: "tools_limit high", cfg: Config{ToolsLimit: 1001}, want: []string{"tools_limit"}, msg: "between 0 and 1000"},
		{name: "tools_limit negative", cfg: Config{ToolsLimit: -1}, want: []string{"tools_limit"}},
		{name: "restart_concurrency negative", cfg: Config{RestartConcurrency: -1}, want: []string{"restart_concurrency"}},
		{name: "restart_concurrency high", cfg: Config{RestartConcurrency: 257}, want: []string{"restart_concurrency"}, msg: "256"},
		{name: "max_message_bytes at the floor", cfg: Config{MaxMessageBytes: MinMessageBytes}},
		{name: "max_message_bytes at the ceiling", cfg: Config{MaxMessageBytes: MaxMessageBytesLimit}},
		{name: "max_message_bytes too small", cfg: Config{MaxMessageBytes: MinMessageBytes - 1}, want: []string{"max_message_bytes"}, msg: "65536"},
		{name: "max_message_bytes too large", cfg: Config{MaxMessageBytes: MaxMessageBytesLimit + 1}, want: []string{"max_message_bytes"}, msg: "1 GiB"},
		{name: "max_message_bytes negative", cfg: Config{MaxMessageBytes: -1}, want: []string{"max_message_bytes"}},
		{name: "negative timeout", cfg: Config{CallToolTimeout: Duration(-time.Second)}, want: []string{"call_tool_timeout"}, msg: "negative"},
		{name: "empty trusted host", cfg: Config{TrustedHosts: []string{"ok", " "}}, want: []string{"trusted_hosts[1]"}},
		{name: "api key control char", cfg: Config{APIKey: "a\nb"}, want: []string{"api_key"}},
		{name: "default image as option", cfg: Config{DockerIsolation: DockerIsolation{DefaultImage: "--privileged"}},
			want: []string{"docker_isolation.default_image"}, msg: "docker"},

		{name: "protocol_version pinned", cfg: withServers(ServerConfig{Name: "a", URL: "https://x.example/mcp", ProtocolVersion: "2025-06-18"},
			ServerConfig{Name: "b", Command: "npx", ProtocolVersion: ProtocolLatest})},
		{name: "protocol_version unknown", cfg: withServers(ServerConfig{Name: "a", Command: "npx", ProtocolVersion: "2025-06"}),
			want: []string{"mcpServers[0].protocol_version"}, msg: "2025-11-25"},

		{name: "missing name", cfg: withServers(stdio("")), want: []string{"mcpServers[0].name"}, msg: "required"},
		{name: "name with colon", cfg: withServers(stdio("a:b")), want: []string{"mcpServers[0].name"}, msg: "not a valid name"},
		{name: "name starting with dot", cfg: withServers(stdio(".a")), want: []string{"mcpServers[0].name"}},
		{name: "name too long", cfg: withServers(stdio(strings.Repeat("a", 65))), want: []string{"mcpServers[0].name"}},
		{name: "name of 64 is fine", cfg: withServers(stdio(strings.Repeat("a", 64)))},
		{name: "duplicate names", cfg: withServers(stdio("a"), stdio("b"), stdio("a")), want: []string{"mcpServers[2].name"}, msg: "mcpServers[0]"},
		{name: "neither command nor url", cfg: withServers(ServerConfig{Name: "a"}), want: []string{"mcpServers[0].command"}, msg: "required"},
		{name: "http without url", cfg: withServers(ServerConfig{Name: "a", Protocol: "http"}), want: []string{"mcpServers[0].url"}, msg: "needs a url"},
		{name: "both command and url", cfg: withServers(ServerConfig{Name: "a", Command: "c", URL: "http://h"}), want: []string{"mcpServers[0].url"}, msg: "not both"},
		{name: "unknown protocol", cfg: withServers(ServerConfig{Name: "a", Protocol: "grpc", Command: "c"}), want: []string{"mcpServers[0].protocol"}, msg: "not a protocol"},
		{name: "protocol is case-sensitive", cfg: withServers(ServerConfig{Name: "a", Protocol: "HTTP", URL: "http://h"}), want: []string{"mcpServers[0].protocol"}},
		{name: "stdio with url", cfg: withServers(ServerConfig{Name: "a", Protocol: "stdio", URL: "http://h"}), want: []string{"mcpServers[0].command"}, msg: "needs a command"},
		{name: "sse with command", cfg: withServers(ServerConfig{Name: "a", Protocol: "sse", Command: "c"}), want: []string{"mcpServers[0].url"}, msg: "needs a url"},
		{name: "relative url", cfg: withServers(remote("a", "/mcp")), want: []string{"mcpServers[0].url"}, msg: "absolute"},
		{name: "ftp url", cfg: withServers(remote("a", "ftp://h/x")), want: []string{"mcpServers[0].url"}},
		{name: "url with reference in query", cfg: withServers(remote("a", "https://h.example/mcp?key=${secret:K}"))},
		{name: "url that is a reference", cfg: withServers(remote("a", "${env:MCP_URL}"))},
		{name: "isolation on http", cfg: withServers(ServerConfig{Name: "a", URL: "http://h", Isolation: &Isolation{Enabled: true}}),
			want: []string{"mcpServers[0].isolation"}, msg: "only stdio"},
		{name: "isolation off on http is fine", cfg: withServers(ServerConfig{Name: "a", URL: "http://h", Isolation: &Isolation{}})},
		{name: "isolation image as option", cfg: withServers(ServerConfig{Name: "a", Command: "c", Isolation: &Isolation{Enabled: true, Image: "-v/:/h"}}),
			want: []string{"mcpServers[0].isolation.image"}},
		{name: "isolation network with space", cfg: withServers(ServerConfig{Name: "a", Command: "c", Isolation: &Isolation{Enabled: true, Network: "a b"}}),
			want: []string{"mcpServers[0].isolation.network"}},
		{name: "env name with =", cfg: withServers(ServerConfig{Name: "a", Command: "c", Env: map[string]string{"A=B": "x"}}),
			want: []string{`mcpServers[0].env["A=B"]`}},
		{name: "empty env name", cfg: withServers(ServerConfig{Name: "a", Command: "c", Env: map[string]string{"": "x"}}), want: []string{"mcpServers[0].env"}},
		{name: "bad header name", cfg: withServers(ServerConfig{Name: "a", URL: "http://h", Headers: map[string]string{"X Y": "v"}}),
			want: []string{`mcpServers[0].headers["X Y"]`}},
		{name: "header value injection", cfg: withServers(ServerConfig{Name: "a", URL: "http://h", Headers: map[string]string{"X": "v\r\nEvil: 1"}}),
			want: []string{"mcpServers[0].headers.X"}, msg: "CR, LF"},
		{name: "good references", cfg: withServers(ServerConfig{Name: "a", Command: "c", Args: []string{"--token=${secret:T}", "${env:HOME}/x"},
			Env: map[string]string{"A": "${secret:gh.token-2}"}})},
		{name: "unclosed reference", cfg: withServers(ServerConfig{Name: "a", Command: "c", Args: []string{"ok", "${secret:TOKEN"}}),
			want: []string{"mcpServers[0].args[1]"}, msg: "closing"},
		{name: "empty reference name", cfg: withServers(ServerConfig{Name: "a", Command: "c", Env: map[string]string{"T": "${env:}"}}),
			want: []string{"mcpServers[0].env.T"}, msg: "bad reference"},
		{name: "reference name with space", cfg: withServers(ServerConfig{Name: "a", URL: "http://h", Headers: map[string]string{"Authorization": "Bearer ${secret:MY TOKEN}"}}),
			want: []string{"mcpServers[0].headers.Authorization"}},
		{name: "upper-case reference kind", cfg: withServers(ServerConfig{Name: "a", Command: "c", Args: []string{"${SECRET:X}"}}),
			want: []string{"mcpServers[0].args[0]"}, msg: "lower case"},
		{name: "bad reference in url", cfg: withServers(remote("a", "https://h/${env:}")), want: []string{"mcpServers[0].url"}},
		{name: "errors are in a stable order", cfg: withServers(ServerConfig{Name: "a", Command: "c", Env: map[string]string{"Z": "${env:}", "B": "${env:}", "M": "${env:}"}}),
			want: []string{"mcpServers[0].env.B", "mcpServers[0].env.M", "mcpServers[0].env.Z"}},
		{name: "several problems at once", cfg: Config{Listen: "x", ToolsLimit: -5, Servers: []ServerConfig{stdio("ok"), {Name: "bad name"}}},
			want: []string{"listen", "tools_limit", "mcpServers[1].name", "mcpServers[1].command"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := tt.cfg.Validate()
			if got := fields(errs); !slices.Equal(got, tt.want) {
				t.Fatalf("error fields = %q, want %q (errors: %v)", got, tt.want, errs)
			}
			for _, e := range errs {
				if e.Message == "" {
					t.Errorf("error on %s has no message", e.Field)
				}
			}
			if tt.msg != "" && !strings.Contains(errs[0].Message, tt.msg) {
				t.Errorf("message %q does not contain %q", errs[0].Message, tt.msg)
			}
		})
	}
}

func TestValidName(t *testing.T) {
	for _, tt := range []struct {
		name string
		ok   bool
	}{
		{"a", true}, {"A9", true}, {"9a", true}, {"a.b_c-d", true}, {strings.Repeat("x", 64), true},
		{"", false}, {"-a", false}, {"_a", false}, {"a b", false}, {"a/b", false}, {"é", false}, {strings.Repeat("x", 65), false},
	} {
		t.Run(fmt.Sprintf("%q", tt.name), func(t *testing.T) {
			if got := ValidName(tt.name); got != tt.ok {
				t.Errorf("ValidName(%q) = %v, want %v", tt.name, got, tt.ok)
			}
		})
	}
}

func TestValidationErrorMessage(t *testing.T) {
	err := &ValidationError{Errors: []FieldError{{"listen", "bad"}, {"mcpServers[0].name", "required"}}}
	want := "invalid config: listen: bad; mcpServers[0].name: required"
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
}

// TestActivityAndMetricsConfig: the activity and metrics sections parse, default, validate
// with the field named, and refuse unknown fields.
func TestActivityAndMetricsConfig(t *testing.T) {
	c, errs := Parse([]byte(`{"activity": {"record_arguments": false, "max_records": 50, "max_age": "1h"}, "metrics": {"open": true}, "mcpServers": []}`))
	if len(errs) > 0 || c.Activity.ArgumentsRecorded() || c.Activity.Records() != 50 || c.Activity.Age() != time.Hour || !c.Metrics.Open {
		t.Fatalf("parsed %+v %v", c.Activity, errs)
	}
	if d := (Activity{}); !d.ArgumentsRecorded() || d.Records() != DefaultActivityMaxRecords || d.Age() != DefaultActivityMaxAge {
		t.Errorf("defaults %+v", d)
	}
	if cl := c.Clone(); cl.Activity.RecordArguments == c.Activity.RecordArguments {
		t.Error("Clone shares record_arguments")
	}
	for doc, field := range map[string]string{
		`{"activity": {"max_records": -1}, "mcpServers": []}`:          "activity.max_records",
		`{"activity": {"max_records": 99999999999}, "mcpServers": []}`: "activity.max_records",
		`{"activity": {"max_age": "-1h"}, "mcpServers": []}`:           "activity.max_age",
		`{"activity": {"max_age": "soon"}, "mcpServers": []}`:          "activity.max_age",
		`{"activity": {"keep": 1}, "mcpServers": []}`:                  "activity.keep",
		`{"metrics": {"open": "yes"}, "mcpServers": []}`:               "metrics.open",
	} {
		_, errs := Parse([]byte(doc))
		if len(errs) == 0 || errs[0].Field != field {
			t.Errorf("%s: errors %v, want one on %s", doc, errs, field)
		}
	}
}
