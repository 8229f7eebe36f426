package config

import (
	"reflect"
	"testing"
	"time"
)

func TestNormalize(t *testing.T) {
	c, errs := Parse([]byte(`{"mcpServers": [
		{"name": "local", "command": "npx"},
		{"name": "remote", "url": "https://h.example/mcp"},
		{"name": "events", "protocol": "sse", "url": "https://h.example/sse"},
		{"name": "off", "command": "x", "enabled": false, "quarantined": false}
	]}`))
	if errs != nil {
		t.Fatal(errs)
	}
	c.Normalize()
	t.Run("protocol inferred", func(t *testing.T) {
		for name, want := range map[string]string{"local": "stdio", "remote": "http", "events": "sse", "off": "stdio"} {
			if s, _ := c.Server(name); s.Protocol != want {
				t.Errorf("%s: protocol %q, want %q", name, s.Protocol, want)
			}
		}
	})
	t.Run("defaults", func(t *testing.T) {
		if c.Listen != DefaultListen || c.ToolsLimit != DefaultToolsLimit || c.RestartConcurrency != DefaultRestartConcurrency ||
			time.Duration(c.CallToolTimeout) != DefaultCallToolTimeout || c.DockerIsolation.DefaultImage != DefaultDockerImage ||
			c.MaxMessageBytes != DefaultMaxMessageBytes || c.MessageLimit() != DefaultMaxMessageBytes {
			t.Errorf("defaults not applied: %+v", c)
		}
		if !c.MCPAuthRequired() || c.Timeout() != DefaultCallToolTimeout {
			t.Errorf("MCPAuthRequired %v, Timeout %v", c.MCPAuthRequired(), c.Timeout())
		}
	})
	t.Run("quarantine and enabled defaults", func(t *testing.T) {
		local, _ := c.Server("local")
		if !local.IsEnabled() || !local.IsQuarantined() {
			t.Errorf("a server that says nothing must be enabled and quarantined: %v %v", local.IsEnabled(), local.IsQuarantined())
		}
		if local.Enabled != nil || local.Quarantined != nil {
			t.Errorf("Normalize must leave flag pointers alone")
		}
		off, _ := c.Server("off")
		if off.IsEnabled() || off.IsQuarantined() {
			t.Errorf("explicit false flags lost: %v %v", off.IsEnabled(), off.IsQuarantined())
		}
	})
	t.Run("idempotent", func(t *testing.T) {
		again := c.Clone()
		again.Normalize()
		if !reflect.DeepEqual(c, again) {
			t.Errorf("second Normalize changed the config:\n%+v\n%+v", c, again)
		}
	})
	t.Run("explicit values kept", func(t *testing.T) {
		d := &Config{Listen: "127.0.0.1:1", ToolsLimit: 3, CallToolTimeout: Duration(time.Second), RestartConcurrency: 1, MaxMessageBytes: 1 << 20}
		d.Normalize()
		if d.Listen != "127.0.0.1:1" || d.ToolsLimit != 3 || d.CallToolTimeout != Duration(time.Second) || d.RestartConcurrency != 1 ||
			d.MessageLimit() != 1<<20 {
			t.Errorf("explicit values overwritten: %+v", d)
		}
		if d.Servers == nil {
			t.Error("Servers must be an empty list after Normalize")
		}
	})
}

func TestCloneIsDeep(t *testing.T) {
	c := &Config{
		RequireMCPAuth: ptr(true),
		TrustedHosts:   []string{"a"},
		Servers: []ServerConfig{{
			Name: "s", Command: "c", Args: []string{"x"}, Env: map[string]string{"K": "v"},
			Headers: map[string]string{"H": "v"}, Enabled: ptr(true), Quarantined: ptr(true),
			Isolation: &Isolation{Enabled: true, Image: "i"},
		}},
	}
	d := c.Clone()
	if !reflect.DeepEqual(c, d) {
		t.Fatalf("clone differs: %+v", d)
	}
	*d.RequireMCPAuth = false
	d.TrustedHosts[0] = "changed"
	s := &d.Servers[0]
	s.Args[0], s.Env["K"], s.Headers["H"] = "changed", "changed", "changed"
	*s.Enabled, *s.Quarantined, s.Isolation.Image = false, false, "changed"
	d.Servers = append(d.Servers, ServerConfig{Name: "new"})

	o := c.Servers[0]
	if !*c.RequireMCPAuth || c.TrustedHosts[0] != "a" || o.Args[0] != "x" || o.Env["K"] != "v" || o.Headers["H"] != "v" ||
		!*o.Enabled || !*o.Quarantined || o.Isolation.Image != "i" || len(c.Servers) != 1 {
		t.Errorf("changing the clone changed the original: %+v %+v", c, o)
	}
	if (*Config)(nil).Clone() != nil {
		t.Error("Clone of nil must be nil")
	}
}

func TestServerReturnsCopy(t *testing.T) {
	c := &Config{Servers: []ServerConfig{{Name: "a", Command: "c", Env: map[string]string{"K": "v"}}}}
	s, ok := c.Server("a")
	if !ok || s.Command != "c" {
		t.Fatalf("Server(a) = %+v, %v", s, ok)
	}
	s.Env["K"] = "changed"
	if c.Servers[0].Env["K"] != "v" {
		t.Error("Server returned a map shared with the config")
	}
	if _, ok := c.Server("missing"); ok {
		t.Error("Server(missing) found something")
	}
}

func TestIsolationFor(t *testing.T) {
	global := &Config{DockerIsolation: DockerIsolation{Enabled: true, DefaultImage: "python:3"}}
	off := &Config{}
	tests := []struct {
		name string
		cfg  *Config
		s    ServerConfig
		want *Isolation
	}{
		{"global on inherits", global, ServerConfig{Command: "c"}, &Isolation{Enabled: true, Image: "python:3"}},
		{"global off", off, ServerConfig{Command: "c"}, nil},
		{"own setting wins over global", global, ServerConfig{Command: "c", Isolation: &Isolation{}}, nil},
		{"own image", off, ServerConfig{Command: "c", Isolation: &Isolation{Enabled: true, Image: "alpine", Network: "n"}},
			&Isolation{Enabled: true, Image: "alpine", Network: "n"}},
		{"package default image", off, ServerConfig{Command: "c", Isolation: &Isolation{Enabled: true}}, &Isolation{Enabled: true, Image: DefaultDockerImage}},
		{"http never isolated", global, ServerConfig{URL: "http://h"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.cfg.IsolationFor(tt.s); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("IsolationFor = %+v, want %+v", got, tt.want)
			}
		})
	}
}
