package config

import (
	"reflect"
	"testing"
)

func TestCompare(t *testing.T) {
	base := func() *Config {
		return &Config{
			Listen: "127.0.0.1:8080",
			Servers: []ServerConfig{
				{Name: "a", Command: "npx", Args: []string{"x"}},
				{Name: "b", URL: "https://h/mcp", Headers: map[string]string{"H": "1"}},
				{Name: "c", Command: "uvx"},
			},
		}
	}
	empty := []string{}
	tests := []struct {
		name string
		edit func(c *Config)
		old  *Config
		want Diff
	}{
		{
			name: "identical",
			edit: func(c *Config) {},
			want: Diff{Added: empty, Removed: empty, Changed: empty, FlagsChanged: empty, Unchanged: []string{"a", "b", "c"}, RestartRequired: empty},
		},
		{
			name: "disabled_tools is a flag; its order does not count",
			old: func() *Config {
				c := base()
				c.Servers[1].DisabledTools = []string{"x", "y"}
				c.Servers[2].DisabledTools = []string{"p", "q"}
				return c
			}(),
			edit: func(c *Config) {
				c.Servers[0].DisabledTools = []string{"rm"}
				c.Servers[1].DisabledTools = []string{"x"}
				c.Servers[2].DisabledTools = []string{"q", "p"}
			},
			want: Diff{Added: empty, Removed: empty, Changed: empty, FlagsChanged: []string{"a", "b"}, Unchanged: []string{"c"}, RestartRequired: empty},
		},
		{
			name: "order, defaults written out and empty lists do not count",
			edit: func(c *Config) {
				c.Servers[0], c.Servers[2] = c.Servers[2], c.Servers[0]
				c.Servers[2].Protocol = "stdio"
				c.Servers[1].Env = map[string]string{}
				c.ToolsLimit = DefaultToolsLimit
			},
			want: Diff{Added: empty, Removed: empty, Changed: empty, FlagsChanged: empty, Unchanged: []string{"a", "b", "c"}, RestartRequired: empty},
		},
		{
			name: "added removed changed",
			edit: func(c *Config) {
				c.Servers = c.Servers[1:]                          // remove a
				c.Servers[0].Headers = map[string]string{"H": "2"} // change b
				c.Servers = append(c.Servers, ServerConfig{Name: "d", Command: "d"}, ServerConfig{Name: "aa", Command: "x"})
			},
			want: Diff{Added: []string{"aa", "d"}, Removed: []string{"a"}, Changed: []string{"b"}, FlagsChanged: empty, Unchanged: []string{"c"}, RestartRequired: empty},
		},
		{
			name: "protocol_version is part of the definition",
			edit: func(c *Config) { c.Servers[1].ProtocolVersion = "2025-06-18" },
			want: Diff{Added: empty, Removed: empty, Changed: []string{"b"}, FlagsChanged: empty, Unchanged: []string{"a", "c"}, RestartRequired: empty},
		},
		{
			name: "flags only",
			edit: func(c *Config) {
				c.Servers[0].Enabled = ptr(false)
				c.Servers[1].Quarantined = ptr(false)
				c.Servers[2].Quarantined = ptr(true) // the default, written out: no change
			},
			want: Diff{Added: empty, Removed: empty, Changed: empty, FlagsChanged: []string{"a", "b"}, Unchanged: []string{"c"}, RestartRequired: empty},
		},
		{
			name: "definition and flags",
			edit: func(c *Config) {
				c.Servers[0].Args = []string{"y"}
				c.Servers[0].Enabled = ptr(false)
			},
			want: Diff{Added: empty, Removed: empty, Changed: []string{"a"}, FlagsChanged: []string{"a"}, Unchanged: []string{"b", "c"}, RestartRequired: empty},
		},
		{
			name: "global docker isolation changes servers that inherit it",
			edit: func(c *Config) {
				c.DockerIsolation.Enabled = true
				c.Servers[2].Isolation = &Isolation{} // c opts out, so it runs as before
			},
			old:  func() *Config { c := base(); c.Servers[2].Isolation = &Isolation{}; return c }(),
			want: Diff{Added: empty, Removed: empty, Changed: []string{"a"}, FlagsChanged: empty, Unchanged: []string{"b", "c"}, RestartRequired: empty},
		},
		{
			name: "restart required and live top-level fields",
			edit: func(c *Config) {
				c.Listen = "127.0.0.1:9090"
				c.DataDir = "/elsewhere"
				c.APIKey = "new"
				c.ToolsLimit = 50
			},
			want: Diff{Added: empty, Removed: empty, Changed: empty, FlagsChanged: empty, Unchanged: []string{"a", "b", "c"}, RestartRequired: []string{"listen", "data_dir"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old := tt.old
			if old == nil {
				old = base()
			}
			next := base()
			tt.edit(next)
			if got := Compare(old, next); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Compare =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
	t.Run("nil configs", func(t *testing.T) {
		d := Compare(nil, base())
		if !reflect.DeepEqual(d.Added, []string{"a", "b", "c"}) || len(d.RestartRequired) != 0 {
			t.Errorf("Compare(nil, base) = %+v", d)
		}
		if d := Compare(base(), nil); !reflect.DeepEqual(d.Removed, []string{"a", "b", "c"}) {
			t.Errorf("Compare(base, nil) = %+v", d)
		}
	})
}

// diffEmpty reports whether nothing at all differs that the registry must act on.
func diffEmpty(d Diff) bool {
	return len(d.Added)+len(d.Removed)+len(d.Changed)+len(d.FlagsChanged)+len(d.RestartRequired) == 0
}
