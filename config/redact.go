package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Redact returns a copy of c for API responses with api_key, literal env values and header
// values replaced by Redacted, and each url's credentials (userinfo password, or a lone user
// name, and query values) as RedactURL replaces them. A value that is exactly one reference
// ("${secret:X}", "${env:X}") reveals nothing and is kept as written; empty values stay
// empty.
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
		out.Servers[i].URL = RedactURL(out.Servers[i].URL)
		for _, f := range out.Servers[i].OAuth.secretFields() {
			if *f.v != "" && !isExactRef(*f.v) {
				*f.v = Redacted
			}
		}
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
// header values, url credentials) is replaced by current's value for the same field: the same
// env key, or header name (matched exactly, else case-insensitively), of the server with the
// same name; in a url, the password of the same user name, a lone user name, or the value of
// the same query key (the n-th of that key for the n-th). A placeholder with no current value
// to keep is a FieldError naming it. current may be nil.
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
		curOAuth := map[string]string{}
		for _, f := range cur.OAuth.secretFields() {
			curOAuth[f.path] = *f.v
		}
		for _, f := range s.OAuth.secretFields() {
			if *f.v != Redacted {
				continue
			}
			if v := curOAuth[f.path]; v != "" {
				*f.v = v
			} else {
				missing(path + "." + f.path)
			}
		}
		if u, ok := keepRedactedURL(cur.URL, s.URL); ok {
			s.URL = u
		} else {
			missing(path + ".url")
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

// Where a config to apply comes from; Check treats the Redacted placeholder by it.
const (
	SourceAPI  = "api"
	SourceFile = "file"
)

// Check is the one pipeline a parsed config goes through before it runs, for an apply and
// for POST /api/v1/config/validate alike. From the API, "********" means "keep the value of
// current" (KeepRedacted: it answers a GET that showed it). From the file it cannot: the file
// is what the next start loads, and it would hand the placeholder to the upstream as the
// value, so a file holding it is invalid and names the field. Then a normalised copy is
// validated. Check returns the config as it is kept in the file (next), the normalised one
// that runs (eff), and the field errors (nil configs then).
func Check(current, incoming *Config, source string) (next, eff *Config, errs []FieldError) {
	if source == SourceFile {
		next, errs = incoming.Clone(), placeholders(incoming)
	} else {
		next, errs = KeepRedacted(current, incoming)
	}
	if len(errs) > 0 {
		return nil, nil, errs
	}
	eff = next.Clone()
	eff.Normalize()
	if errs = eff.Validate(); len(errs) > 0 {
		return nil, nil, errs
	}
	return next, eff, nil
}

// placeholders lists every Redacted placeholder in c (api_key, env and header values, url
// credentials) as a field error. KeepRedacted against an empty config finds exactly those,
// with the same field paths an API apply would report.
func placeholders(c *Config) []FieldError {
	_, errs := KeepRedacted(nil, c)
	for i := range errs {
		errs[i].Message = fmt.Sprintf("%q is how the API hides a value; the file must hold the value itself or a ${secret:NAME} reference", Redacted)
	}
	return errs
}
