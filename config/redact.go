package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Redact returns a copy of c for API responses with api_key, literal env values and header
// values replaced by Redacted. A value that is exactly one reference ("${secret:X}",
// "${env:X}") reveals nothing and is kept as written; empty values stay empty.
func Redact(c *Config) *Config {
	out := c.Clone()
	if out == nil {
		return nil
	}
	if out.APIKey != "" {
		out.APIKey = Redacted
	}
	for i := range out.Servers {
		redactValues(out.Servers[i].Env)
		redactValues(out.Servers[i].Headers)
	}
	return out
}

func redactValues(m map[string]string) {
	for k, v := range m {
		if v != "" && !isExactRef(v) {
			m[k] = Redacted
		}
	}
}

// KeepRedacted returns a copy of incoming in which every Redacted placeholder (api_key, env and
// header values) is replaced by current's value for the same field: the same env key, or header
// name (matched exactly, else case-insensitively), of the server with the same name. A
// placeholder with no current value to keep is a FieldError naming it. current may be nil.
func KeepRedacted(current, incoming *Config) (*Config, []FieldError) {
	out := incoming.Clone()
	if out == nil {
		return nil, nil
	}
	if current == nil {
		current = &Config{}
	}
	var errs []FieldError
	missing := func(path string) {
		errs = append(errs, FieldError{Field: path, Message: fmt.Sprintf("%q means keep the current value, but there is none", Redacted)})
	}
	if out.APIKey == Redacted {
		if current.APIKey == "" {
			missing("api_key")
		} else {
			out.APIKey = current.APIKey
		}
	}
	// Current entries by name: a lookup in the list for each incoming server would make an
	// apply of n servers O(n^2).
	byName := make(map[string]*ServerConfig, len(current.Servers))
	for i := range current.Servers {
		if _, dup := byName[current.Servers[i].Name]; !dup {
			byName[current.Servers[i].Name] = &current.Servers[i]
		}
	}
	for i := range out.Servers {
		s := &out.Servers[i]
		path := fmt.Sprintf("mcpServers[%d]", i)
		var cur ServerConfig
		if c := byName[s.Name]; c != nil {
			cur = *c
		}
		for _, k := range slices.Sorted(maps.Keys(s.Env)) {
			if s.Env[k] != Redacted {
				continue
			}
			if v, ok := cur.Env[k]; ok && v != "" {
				s.Env[k] = v
			} else {
				missing(path + "." + joinPath("env", k))
			}
		}
		for _, k := range slices.Sorted(maps.Keys(s.Headers)) {
			if s.Headers[k] != Redacted {
				continue
			}
			if v, ok := lookupHeader(cur.Headers, k); ok && v != "" {
				s.Headers[k] = v
			} else {
				missing(path + "." + joinPath("headers", k))
			}
		}
	}
	return out, errs
}

// lookupHeader finds a header by name; HTTP header names are case-insensitive, so a UI that
// re-cases "authorization" still keeps the current "Authorization".
func lookupHeader(h map[string]string, name string) (string, bool) {
	if v, ok := h[name]; ok {
		return v, true
	}
	for _, k := range slices.Sorted(maps.Keys(h)) {
		if strings.EqualFold(k, name) {
			return h[k], true
		}
	}
	return "", false
}
