package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// fields returns the Field of each error, for comparing against the paths a case expects.
func fields(errs []FieldError) []string {
	out := make([]string, len(errs))
	for i, e := range errs {
		out[i] = e.Field
	}
	return out
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name  string
		input string
		check func(t *testing.T, c *Config)
	}{
		{
			name:  "empty object",
			input: `{}`,
			check: func(t *testing.T, c *Config) {
				if len(c.Servers) != 0 {
					t.Errorf("servers = %v, want none", c.Servers)
				}
			},
		},
		{
			name: "list form with every field",
			input: `{
				"listen": "127.0.0.1:9000", "data_dir": "/var/lib/mcpproxy", "api_key": "k",
				"require_mcp_auth": false, "trusted_hosts": ["proxy.example.com"], "tools_limit": 20,
				"call_tool_timeout": "90s", "restart_concurrency": 4, "max_message_bytes": 1048576,
				"docker_isolation": {"enabled": true, "default_image": "python:3.12-slim"},
				"mcpServers": [
					{"name": "gh", "protocol": "stdio", "command": "npx", "args": ["-y", "server-github"],
					 "env": {"GITHUB_TOKEN": "${secret:GITHUB_TOKEN}"}, "working_dir": "/tmp",
					 "enabled": false, "quarantined": false,
					 "isolation": {"enabled": true, "image": "node:22", "network": "bridge"}},
					{"name": "remote", "url": "https://example.com/mcp", "headers": {"Authorization": "Bearer x"}}
				]}`,
			check: func(t *testing.T, c *Config) {
				if c.Listen != "127.0.0.1:9000" || c.DataDir != "/var/lib/mcpproxy" || c.APIKey != "k" {
					t.Errorf("top-level strings wrong: %+v", c)
				}
				if c.RequireMCPAuth == nil || *c.RequireMCPAuth || c.MCPAuthRequired() {
					t.Errorf("require_mcp_auth = %v, want explicit false", c.RequireMCPAuth)
				}
				if c.ToolsLimit != 20 || c.RestartConcurrency != 4 || time.Duration(c.CallToolTimeout) != 90*time.Second || c.MaxMessageBytes != 1<<20 {
					t.Errorf("numbers wrong: %+v", c)
				}
				if !c.DockerIsolation.Enabled || c.DockerIsolation.DefaultImage != "python:3.12-slim" {
					t.Errorf("docker_isolation = %+v", c.DockerIsolation)
				}
				if len(c.Servers) != 2 {
					t.Fatalf("got %d servers, want 2", len(c.Servers))
				}
				gh := c.Servers[0]
				if gh.Name != "gh" || gh.Command != "npx" || !slices.Equal(gh.Args, []string{"-y", "server-github"}) ||
					gh.Env["GITHUB_TOKEN"] != "${secret:GITHUB_TOKEN}" || gh.WorkingDir != "/tmp" {
					t.Errorf("gh = %+v", gh)
				}
				if gh.IsEnabled() || gh.IsQuarantined() {
					t.Errorf("gh flags: enabled %v quarantined %v, want false false", gh.IsEnabled(), gh.IsQuarantined())
				}
				if gh.Isolation == nil || *gh.Isolation != (Isolation{Enabled: true, Image: "node:22", Network: "bridge"}) {
					t.Errorf("gh isolation = %+v", gh.Isolation)
				}
				r := c.Servers[1]
				if r.URL != "https://example.com/mcp" || r.Headers["Authorization"] != "Bearer x" || r.Protocol != "" {
					t.Errorf("remote = %+v (protocol must stay empty before Normalize)", r)
				}
			},
		},
		{
			name: "map form keeps document order and takes names from keys",
			input: `{"mcpServers": {
				"zeta": {"command": "z"},
				"alpha": {"name": "alpha", "url": "http://127.0.0.1:3000/mcp"},
				"mid": {"command": "m", "args": []}
			}}`,
			check: func(t *testing.T, c *Config) {
				var names []string
				for _, s := range c.Servers {
					names = append(names, s.Name)
				}
				if !slices.Equal(names, []string{"zeta", "alpha", "mid"}) {
					t.Errorf("names = %v, want [zeta alpha mid]", names)
				}
			},
		},
		{
			name:  "null values mean unset",
			input: `{"listen": null, "call_tool_timeout": null, "mcpServers": [{"name": "a", "command": "x", "enabled": null, "isolation": null}]}`,
			check: func(t *testing.T, c *Config) {
				if c.Listen != "" || c.CallToolTimeout != 0 || c.Servers[0].Enabled != nil || c.Servers[0].Isolation != nil {
					t.Errorf("nulls were not unset: %+v", c)
				}
			},
		},
		{
			name:  "byte order mark is ignored",
			input: "\xEF\xBB\xBF" + `{"tools_limit": 3}`,
			check: func(t *testing.T, c *Config) {
				if c.ToolsLimit != 3 {
					t.Errorf("tools_limit = %d, want 3", c.ToolsLimit)
				}
			},
		},
		{
			name:  "shell variables in args are not references",
			input: `{"mcpServers": [{"name": "sh", "command": "sh", "args": ["-c", "echo ${HOME} $${x}"]}]}`,
			check: func(t *testing.T, c *Config) {
				if c.Servers[0].Args[1] != "echo ${HOME} $${x}" {
					t.Errorf("args = %q", c.Servers[0].Args)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, errs := Parse([]byte(tt.input))
			if len(errs) > 0 {
				t.Fatalf("Parse errors: %v", errs)
			}
			tt.check(t, c)
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name  string
		input string
		want  []string // error fields, in order
		msg   string   // substring of the first error's message
	}{
		{"not JSON", `{"listen": }`, []string{"$"}, "line 1, column 12"},
		{"syntax error line", "{\n  \"listen\": \"x\",\n  oops\n}", []string{"$"}, "line 3, column 3"},
		{"empty", "  ", []string{"$"}, "empty"},
		{"not an object", `[]`, []string{"$"}, "want an object, got array"},
		{"trailing data", `{} {}`, []string{"$"}, "invalid JSON"},
		{"unknown top-level field", `{"lisen": "x"}`, []string{"lisen"}, `did you mean "listen"`},
		{"field names are case-sensitive", `{"Listen": "x"}`, []string{"Listen"}, "unknown field"},
		{"all unknown fields reported", `{"a": 1, "mcpServers": [{"name": "x", "command": "c"}, {"name": "y", "comand": "c", "bogus": true}]}`,
			[]string{"a", "mcpServers[1].comand", "mcpServers[1].bogus", "mcpServers[1].command"}, "unknown field"},
		{"unknown field in map form", `{"mcpServers": {"x": {"command": "c", "type": "stdio"}}}`, []string{"mcpServers[0].type"}, `did you mean "protocol"`},
		{"unknown field in isolation", `{"mcpServers": [{"name": "x", "command": "c", "isolation": {"enabled": true, "img": "i"}}]}`,
			[]string{"mcpServers[0].isolation.img"}, "unknown field"},
		{"unknown field in docker_isolation", `{"docker_isolation": {"enabled": true, "image": "i"}}`, []string{"docker_isolation.image"}, "unknown field"},
		{"duplicate key", `{"listen": "127.0.0.1:1", "listen": "127.0.0.1:2"}`, []string{"listen"}, "duplicate key"},
		{"duplicate key in map form", `{"mcpServers": {"x": {"command": "a"}, "x": {"command": "b"}}}`, []string{"mcpServers[1]"}, "duplicate key"},
		{"listen wrong type", `{"listen": 8080}`, []string{"listen"}, "want a string, got number"},
		{"tools_limit wrong type", `{"tools_limit": "15"}`, []string{"tools_limit"}, "want a number, got string"},
		{"tools_limit fraction", `{"tools_limit": 1.5}`, []string{"tools_limit"}, "whole number"},
		{"tools_limit huge", `{"tools_limit": 99999999999999999999999}`, []string{"tools_limit"}, "out of range"},
		{"require_mcp_auth wrong type", `{"require_mcp_auth": "no"}`, []string{"require_mcp_auth"}, "want true or false"},
		{"trusted_hosts not a list", `{"trusted_hosts": "a"}`, []string{"trusted_hosts"}, "want a list of strings"},
		{"trusted_hosts item", `{"trusted_hosts": ["a", 2]}`, []string{"trusted_hosts[1]"}, "want a string"},
		{"duration as number", `{"call_tool_timeout": 120}`, []string{"call_tool_timeout"}, `want a duration string like "2m"`},
		{"duration bad string", `{"call_tool_timeout": "2 minutes"}`, []string{"call_tool_timeout"}, "invalid duration"},
		{"mcpServers wrong type", `{"mcpServers": "x"}`, []string{"mcpServers"}, "want a list of servers"},
		{"server not an object", `{"mcpServers": [1]}`, []string{"mcpServers[0]"}, "want an object, got number"},
		{"server field type", `{"mcpServers": [{"name": "x", "command": ["npx"]}]}`, []string{"mcpServers[0].command"}, "want a string, got array"},
		{"args item type", `{"mcpServers": [{"name": "x", "command": "c", "args": ["a", null]}]}`, []string{"mcpServers[0].args[1]"}, "want a string, got null"},
		{"env value type", `{"mcpServers": [{"name": "x", "command": "c", "env": {"PORT": 8080}}]}`, []string{"mcpServers[0].env.PORT"}, "want a string, got number"},
		{"header key with dot is quoted", `{"mcpServers": [{"name": "x", "url": "http://h", "headers": {"X.Y": 1}}]}`, []string{`mcpServers[0].headers["X.Y"]`}, "want a string"},
		{"enabled type", `{"mcpServers": [{"name": "x", "command": "c", "enabled": "yes"}]}`, []string{"mcpServers[0].enabled"}, "want true or false"},
		{"map form name mismatch", `{"mcpServers": {"x": {"name": "y", "command": "c"}}}`, []string{"mcpServers[0].name"}, `"y" does not match its key "x"`},
		{"parse and validate errors together", `{"tools_limit": 5000, "mcpServers": [{"name": "x", "comand": "c"}]}`,
			[]string{"mcpServers[0].comand", "tools_limit", "mcpServers[0].command"}, "unknown field"},
		{"validate error under a bad field is not repeated", `{"mcpServers": [{"name": "x", "command": 1}]}`, []string{"mcpServers[0].command"}, "want a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, errs := Parse([]byte(tt.input))
			if c == nil {
				t.Fatal("Parse returned a nil config")
			}
			if got := fields(errs); !slices.Equal(got, tt.want) {
				t.Fatalf("error fields = %q, want %q (errors: %v)", got, tt.want, errs)
			}
			if !strings.Contains(errs[0].Message, tt.msg) {
				t.Errorf("message %q does not contain %q", errs[0].Message, tt.msg)
			}
		})
	}
}

func TestDurationJSON(t *testing.T) {
	var d Duration
	if err := d.UnmarshalJSON([]byte(`"1m30s"`)); err != nil || time.Duration(d) != 90*time.Second {
		t.Fatalf("UnmarshalJSON = %v, %v", time.Duration(d), err)
	}
	b, err := d.MarshalJSON()
	if err != nil || string(b) != `"1m30s"` {
		t.Fatalf("MarshalJSON = %s, %v", b, err)
	}
	if err := d.UnmarshalJSON([]byte(`90`)); err == nil || !strings.Contains(err.Error(), `"2m"`) {
		t.Fatalf("number accepted or unclear error: %v", err)
	}
}

func TestParseLimitsErrors(t *testing.T) {
	var b strings.Builder
	b.WriteString("{")
	for i := range 150 {
		if i > 0 {
			b.WriteString(",")
		}
		fmt.Fprintf(&b, `"unknown%d": 1`, i)
	}
	b.WriteString(`, "` + strings.Repeat("k", 100000) + `": 1}`)
	_, errs := Parse([]byte(b.String()))
	if len(errs) != MaxErrors+1 {
		t.Fatalf("got %d errors, want %d", len(errs), MaxErrors+1)
	}
	if last := errs[MaxErrors]; last.Field != RootField || !strings.Contains(last.Message, "51 more") {
		t.Errorf("last error = %+v", last)
	}
}

// TestParseRejectsNullDocument: a body of null must not become an empty config, which an
// apply would take as "remove every server".
func TestParseRejectsNullDocument(t *testing.T) {
	for _, in := range []string{"null", " null\n"} {
		if _, errs := Parse([]byte(in)); len(errs) != 1 || errs[0].Field != RootField {
			t.Errorf("Parse(%q) errors = %v, want one error on %q", in, errs, RootField)
		}
	}
}
