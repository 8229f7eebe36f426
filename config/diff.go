package config

import (
	"maps"
	"slices"
)

// Diff is what changed between two configs, by server name. Every list is sorted and non-nil (so
// it encodes as [] in JSON).
//
//   - Added, Removed: names only in the new or only in the old config.
//   - Changed: servers in both whose definition differs in anything but the enabled and
//     quarantined flags (command, args, env, url, headers, isolation, ...), including a change
//     of docker_isolation that alters how the server would run. These need a restart with the
//     new definition.
//   - FlagsChanged: servers in both whose enabled or quarantined flag or disabled_tools
//     differs, so the registry can apply the flags without a restart. A server whose definition and flags both changed is
//     in Changed and in FlagsChanged.
//   - Unchanged: servers in both with nothing different.
//   - RestartRequired: top-level fields that differ and only take effect when the daemon
//     restarts: "listen", "data_dir". (api_key, trusted_hosts, require_mcp_auth, tools_limit,
//     call_tool_timeout, restart_concurrency apply live; max_message_bytes applies to every
//     upstream connection made after the change, without restarting running ones.)
type Diff struct {
	Added, Removed, Changed, FlagsChanged, Unchanged, RestartRequired []string
}

// Compare compares two configs by server name (see Diff). Both are normalised (on copies) first,
// so a default written out and the same default left implicit compare equal. A nil config is an
// empty one.
func Compare(old, new *Config) Diff {
	o, n := normalisedCopy(old), normalisedCopy(new)
	d := Diff{
		Added: []string{}, Removed: []string{}, Changed: []string{}, FlagsChanged: []string{},
		Unchanged: []string{}, RestartRequired: []string{},
	}
	if o.Listen != n.Listen {
		d.RestartRequired = append(d.RestartRequired, "listen")
	}
	if o.DataDir != n.DataDir {
		d.RestartRequired = append(d.RestartRequired, "data_dir")
	}
	oldByName := make(map[string]ServerConfig, len(o.Servers))
	for _, s := range o.Servers {
		oldByName[s.Name] = s
	}
	newNames := make(map[string]bool, len(n.Servers))
	for _, ns := range n.Servers {
		newNames[ns.Name] = true
		prev, ok := oldByName[ns.Name]
		if !ok {
			d.Added = append(d.Added, ns.Name)
			continue
		}
		changed := !sameDefinition(prev, ns) || !sameIsolation(o.IsolationFor(prev), n.IsolationFor(ns))
		flags := prev.IsEnabled() != ns.IsEnabled() || prev.IsQuarantined() != ns.IsQuarantined() ||
			!sameToolSet(prev.DisabledTools, ns.DisabledTools)
		if changed {
			d.Changed = append(d.Changed, ns.Name)
		}
		if flags {
			d.FlagsChanged = append(d.FlagsChanged, ns.Name)
		}
		if !changed && !flags {
			d.Unchanged = append(d.Unchanged, ns.Name)
		}
	}
	for _, prev := range o.Servers {
		if !newNames[prev.Name] {
			d.Removed = append(d.Removed, prev.Name)
		}
	}
	for _, l := range [][]string{d.Added, d.Removed, d.Changed, d.FlagsChanged, d.Unchanged} {
		slices.Sort(l)
	}
	return d
}

func normalisedCopy(c *Config) *Config {
	if c == nil {
		c = &Config{}
	}
	c = c.Clone()
	c.Normalize()
	return c
}

// sameDefinition compares every field but the flags (enabled, quarantined, disabled_tools). An empty and a
// missing list or map are the same.
func sameDefinition(a, b ServerConfig) bool {
	return a.Name == b.Name && a.Protocol == b.Protocol && a.Command == b.Command &&
		slices.Equal(a.Args, b.Args) && maps.Equal(a.Env, b.Env) && a.WorkingDir == b.WorkingDir &&
		a.URL == b.URL && maps.Equal(a.Headers, b.Headers) && sameIsolation(a.Isolation, b.Isolation) &&
		sameOAuth(a.OAuth, b.OAuth) && a.ProtocolVersion == b.ProtocolVersion
}

// sameToolSet compares two disabled_tools lists as sets: their order means nothing.
func sameToolSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, t := range a {
		if !slices.Contains(b, t) {
			return false
		}
	}
	return true
}

func sameOAuth(a, b *OAuth) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.ClientID == b.ClientID && a.ClientSecret == b.ClientSecret &&
		slices.Equal(a.Scopes, b.Scopes) && a.ClientMetadataURL == b.ClientMetadataURL && a.Grant == b.Grant &&
		a.PrivateKey == b.PrivateKey && a.SigningAlg == b.SigningAlg && sameIdP(a.IdP, b.IdP)
}

func sameIdP(a, b *IdP) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func sameIsolation(a, b *Isolation) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
