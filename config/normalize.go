package config

import (
	"maps"
	"slices"
	"time"
)

// Normalize fills defaults in place: each server's Protocol (command -> stdio, url -> http),
// Listen, ToolsLimit, CallToolTimeout, RestartConcurrency, MaxMessageBytes,
// DockerIsolation.DefaultImage, and an
// empty (not nil) server list. Enabled and Quarantined are left as written; read them with
// IsEnabled and IsQuarantined. Normalize is idempotent.
//
// Keep an unnormalised copy for writing the file back, so that defaults are not written into it
// as if the user had chosen them.
func (c *Config) Normalize() {
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.ToolsLimit == 0 {
		c.ToolsLimit = DefaultToolsLimit
	}
	if c.MCPMode == "" {
		c.MCPMode = MCPModeSearch
	}
	if c.ToolNameSeparator == "" {
		c.ToolNameSeparator = DefaultToolNameSeparator
	}
	if c.CallToolTimeout == 0 {
		c.CallToolTimeout = Duration(DefaultCallToolTimeout)
	}
	if c.RestartConcurrency == 0 {
		c.RestartConcurrency = DefaultRestartConcurrency
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.DockerIsolation.DefaultImage == "" {
		c.DockerIsolation.DefaultImage = DefaultDockerImage
	}
	if c.Servers == nil {
		c.Servers = []ServerConfig{}
	}
	for i := range c.Servers {
		c.Servers[i].Protocol = c.Servers[i].EffectiveProtocol()
	}
}

// Timeout returns CallToolTimeout as a time.Duration, or the default when unset.
func (c *Config) Timeout() time.Duration {
	if c.CallToolTimeout <= 0 {
		return DefaultCallToolTimeout
	}
	return time.Duration(c.CallToolTimeout)
}

// MessageLimit returns MaxMessageBytes, or the default when unset.
func (c *Config) MessageLimit() int {
	if c.MaxMessageBytes <= 0 {
		return DefaultMaxMessageBytes
	}
	return c.MaxMessageBytes
}

// MCPAuthRequired reports whether /mcp needs the API key; it does unless the config says
// "require_mcp_auth": false.
func (c *Config) MCPAuthRequired() bool { return c.RequireMCPAuth == nil || *c.RequireMCPAuth }

// Prepared returns s as it is started under c: its maps and slices copied (so the caller
// may expand references in place) and, for a stdio server, the isolation in force fixed in
// s.Isolation (Enabled false when it runs on the host). Fixing it when the server starts
// means an apply that changes docker_isolation cannot race with a start that reads it, and
// the Docker wrapper needs nothing but the server's own config.
func (c *Config) Prepared(s ServerConfig) ServerConfig {
	s.Args = slices.Clone(s.Args)
	s.Env = maps.Clone(s.Env)
	s.Headers = maps.Clone(s.Headers)
	if iso := c.IsolationFor(s); iso != nil {
		s.Isolation = iso
	} else if s.EffectiveProtocol() == ProtocolStdio {
		s.Isolation = &Isolation{Enabled: false}
	}
	return s
}

// IsolatedServers names the servers that run in Docker under c (IsolationFor), sorted.
func (c *Config) IsolatedServers() []string {
	out := []string{}
	for _, sc := range c.Servers {
		if c.IsolationFor(sc) != nil {
			out = append(out, sc.Name)
		}
	}
	slices.Sort(out)
	return out
}

// IsolationFor returns how server s runs in Docker, or nil when it runs directly on the host.
// The server's own isolation setting wins over docker_isolation; an empty image falls back to
// docker_isolation.default_image and then to DefaultDockerImage. Only stdio servers are
// isolated.
func (c *Config) IsolationFor(s ServerConfig) *Isolation {
	if s.EffectiveProtocol() != ProtocolStdio {
		return nil
	}
	var iso Isolation
	switch {
	case s.Isolation != nil:
		iso = *s.Isolation
	case c.DockerIsolation.Enabled:
		iso = Isolation{Enabled: true}
	}
	if !iso.Enabled {
		return nil
	}
	if iso.Image == "" {
		iso.Image = c.DockerIsolation.DefaultImage
	}
	if iso.Image == "" {
		iso.Image = DefaultDockerImage
	}
	return &iso
}

// Clone returns a deep copy: no map, slice or pointer is shared with c. Clone of nil is nil.
func (c *Config) Clone() *Config {
	if c == nil {
		return nil
	}
	out := *c
	out.RequireMCPAuth = clonePtr(c.RequireMCPAuth)
	out.Activity.RecordArguments = clonePtr(c.Activity.RecordArguments)
	out.TrustedHosts = slices.Clone(c.TrustedHosts)
	if c.Servers != nil {
		out.Servers = make([]ServerConfig, len(c.Servers))
		for i, s := range c.Servers {
			out.Servers[i] = s.clone()
		}
	}
	return &out
}

func (s ServerConfig) clone() ServerConfig {
	s.Args = slices.Clone(s.Args)
	s.Env = maps.Clone(s.Env)
	s.Headers = maps.Clone(s.Headers)
	s.Enabled = clonePtr(s.Enabled)
	s.Quarantined = clonePtr(s.Quarantined)
	s.Isolation = clonePtr(s.Isolation)
	s.DisabledTools = slices.Clone(s.DisabledTools)
	if s.OAuth != nil {
		o := *s.OAuth
		o.Scopes = slices.Clone(o.Scopes)
		o.IdP = clonePtr(o.IdP)
		s.OAuth = &o
	}
	return s
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// Server returns a copy of the entry with that name.
func (c *Config) Server(name string) (ServerConfig, bool) {
	if c == nil {
		return ServerConfig{}, false
	}
	for _, s := range c.Servers {
		if s.Name == name {
			return s.clone(), true
		}
	}
	return ServerConfig{}, false
}
