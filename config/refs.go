package config

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
)

// RefNamePattern is what a secret or environment variable name inside ${secret:NAME} or
// ${env:NAME} must match.
const RefNamePattern = `^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`

var refNameRE = MustNameMatcher(RefNamePattern)

// Reference kinds, as written in ${kind:NAME}.
const (
	RefSecret = "secret"
	RefEnv    = "env"
)

// ReferenceError is returned by Expand when a referenced secret or environment variable does
// not exist; the registry can tell "waiting for a secret" apart from other failures with it.
type ReferenceError struct {
	Kind string // RefSecret or RefEnv
	Name string
}

func (e *ReferenceError) Error() string { return fmt.Sprintf("%s %q not found", e.Kind, e.Name) }

// ref is one well-formed reference found in a value, s[start:end] == "${kind:name}".
type ref struct {
	start, end int
	kind, name string
}

// scanRefs finds the references in s. Only "${secret:" and "${env:" start a reference; any
// other "${" is left alone, so shell snippets in args ("echo ${HOME}") keep working. A
// reference that starts like one but is malformed is an error rather than literal text: a typo
// would otherwise send "${secret:TOKEN" to the upstream as a credential.
func scanRefs(s string) ([]ref, error) {
	var refs []ref
	for i := 0; ; {
		j := strings.Index(s[i:], "${")
		if j < 0 {
			return refs, nil
		}
		start := i + j
		rest := s[start+2:]
		var kind string
		for _, k := range []string{RefSecret, RefEnv} {
			if len(rest) > len(k) && strings.EqualFold(rest[:len(k)+1], k+":") {
				if rest[:len(k)] != k {
					return refs, fmt.Errorf("write %q in lower case", "${"+k+":")
				}
				kind = k
			}
		}
		if kind == "" {
			i = start + 2
			continue
		}
		nameStart := start + 2 + len(kind) + 1
		closing := strings.IndexByte(s[nameStart:], '}')
		if closing < 0 {
			return refs, fmt.Errorf("reference %q has no closing '}'", clip(s[start:]))
		}
		end := nameStart + closing + 1
		name := s[nameStart : end-1]
		if !refNameRE.MatchString(name) {
			return refs, fmt.Errorf("bad reference %q: want ${%s:NAME} with NAME matching %s", s[start:end], kind, RefNamePattern)
		}
		refs = append(refs, ref{start: start, end: end, kind: kind, name: name})
		i = end
	}
}

// clip shortens a value quoted in an error message.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// isExactRef reports whether v is nothing but one reference, which Redact may show as written.
func isExactRef(v string) bool {
	refs, err := scanRefs(v)
	return err == nil && len(refs) == 1 && refs[0].start == 0 && refs[0].end == len(v)
}

// References returns the secret and environment variable names the server's env, headers, args
// and url reference, each sorted and without repeats. Malformed references are skipped
// (Validate reports them).
func (s ServerConfig) References() (secrets, envs []string) {
	seen := map[string]map[string]bool{RefSecret: {}, RefEnv: {}}
	s.eachRefField(func(_ string, v string) {
		refs, _ := scanRefs(v)
		for _, r := range refs {
			seen[r.kind][r.name] = true
		}
	})
	return sortedKeys(seen[RefSecret]), sortedKeys(seen[RefEnv])
}

// SecretAtGrantOnly reports whether the server references the secret name only where it is
// read at each OAuth grant and nowhere a connection uses it: oauth.idp.id_token. A running
// connection then has no use for a new value; its next grant reads it.
func (s ServerConfig) SecretAtGrantOnly(name string) bool {
	grant, other := false, false
	s.eachRefField(func(path, v string) {
		refs, _ := scanRefs(v)
		for _, r := range refs {
			if r.kind == RefSecret && r.name == name {
				if path == "oauth.idp.id_token" {
					grant = true
				} else {
					other = true
				}
			}
		}
	})
	return grant && !other
}

// ArgSecrets returns the secret names the server's args reference, sorted and without
// repeats. Args end up on the process's command line, which every local user can read
// (/proc/PID/cmdline), so secrets belong in env instead; the doctor warns about these.
func (s ServerConfig) ArgSecrets() []string {
	seen := map[string]bool{}
	for _, a := range s.Args {
		refs, _ := scanRefs(a)
		for _, r := range refs {
			if r.kind == RefSecret {
				seen[r.name] = true
			}
		}
	}
	return sortedKeys(seen)
}

func sortedKeys(m map[string]bool) []string {
	if len(m) == 0 {
		return nil
	}
	return slices.Sorted(maps.Keys(m))
}

// eachRefField calls fn for every value that may hold references, with its path relative to
// the server entry ("args[0]", "env.TOKEN", "headers.Authorization", "url"), in a fixed order.
func (s ServerConfig) eachRefField(fn func(path, value string)) {
	for i, a := range s.Args {
		fn(fmt.Sprintf("args[%d]", i), a)
	}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		fn(joinPath("env", k), s.Env[k])
	}
	for _, k := range slices.Sorted(maps.Keys(s.Headers)) {
		fn(joinPath("headers", k), s.Headers[k])
	}
	if s.URL != "" {
		fn("url", s.URL)
	}
	for _, f := range s.OAuth.secretFields() {
		if *f.v != "" {
			fn(f.path, *f.v)
		}
	}
}

// Expand returns a copy of s with every ${secret:NAME} and ${env:NAME} in its env values, header
// values, args and url replaced by the value the lookup gives. A nil secret lookup finds nothing;
// a nil env lookup uses the process environment. Substituted values are inserted as they are
// (not URL-escaped, not scanned again). The first missing name, in the order args, env, headers,
// url, is returned as a *ReferenceError ("secret \"GITHUB_TOKEN\" not found").
func (s ServerConfig) Expand(secret func(string) (string, bool), env func(string) (string, bool)) (ServerConfig, error) {
	out, _, err := s.Resolve(secret, env)
	return out, err
}

// Resolve is Expand that also returns the Scrubber of the expanded server: it replaces every
// value a reference resolved to, wherever the reference was (args included), and every value
// Redact hides in the config (env and header values, literal or not, and the credentials of
// the url), so that no error, stderr excerpt or log line about the server can carry them.
func (s ServerConfig) Resolve(secret func(string) (string, bool), env func(string) (string, bool)) (ServerConfig, *Scrubber, error) {
	if secret == nil {
		secret = func(string) (string, bool) { return "", false }
	}
	if env == nil {
		env = os.LookupEnv
	}
	lookup := map[string]func(string) (string, bool){RefSecret: secret, RefEnv: env}
	var resolved []string
	expand := func(path, v string) (string, error) {
		refs, err := scanRefs(v)
		if err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		if len(refs) == 0 {
			return v, nil
		}
		var b strings.Builder
		last := 0
		for _, r := range refs {
			val, ok := lookup[r.kind](r.name)
			if !ok {
				return "", &ReferenceError{Kind: r.kind, Name: r.name}
			}
			resolved = append(resolved, val)
			b.WriteString(v[last:r.start])
			b.WriteString(val)
			last = r.end
		}
		b.WriteString(v[last:])
		return b.String(), nil
	}

	out := s.clone()
	var err error
	for i, a := range out.Args {
		if out.Args[i], err = expand(fmt.Sprintf("args[%d]", i), a); err != nil {
			return ServerConfig{}, nil, err
		}
	}
	for _, m := range []struct {
		name string
		vals map[string]string
	}{{"env", out.Env}, {"headers", out.Headers}} {
		for _, k := range slices.Sorted(maps.Keys(m.vals)) {
			if m.vals[k], err = expand(joinPath(m.name, k), m.vals[k]); err != nil {
				return ServerConfig{}, nil, err
			}
			resolved = append(resolved, m.vals[k])
		}
	}
	if out.URL, err = expand("url", out.URL); err != nil {
		return ServerConfig{}, nil, err
	}
	resolved = append(resolved, URLSecrets(out.URL)...)
	for _, f := range out.OAuth.secretFields() {
		if *f.v == "" {
			continue
		}
		if *f.v, err = expand(f.path, *f.v); err != nil {
			return ServerConfig{}, nil, err
		}
		resolved = append(resolved, *f.v)
	}
	return out, NewScrubber(resolved...), nil
}

// SecretUsers maps each secret name referenced by a server of c to the names of the servers
// that reference it, sorted. It is the one answer to "who uses this secret" for the daemon's
// secrets API and for the offline CLI.
func (c *Config) SecretUsers() map[string][]string {
	users := map[string][]string{}
	if c == nil {
		return users
	}
	for _, sc := range c.Servers {
		secrets, _ := sc.References()
		for _, s := range secrets {
			users[s] = append(users[s], sc.Name)
		}
	}
	for _, names := range users {
		slices.Sort(names)
	}
	return users
}
